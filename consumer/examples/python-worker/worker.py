"""A plain SQS worker, as a team might write one: boto3, long polling, one message at a
time, delete after the work. It knows nothing of sqslab: it reads its queue from
QUEUE_URL (or SQSLAB_QUEUE_URL, which sqslab sets), its endpoint, region and credentials
the way every AWS SDK does, and logs in plain text.

ACK=early deletes each message before its work, as Celery's default early acknowledgement
does; the default (late) deletes after. The work's result (charging the order) is posted
to EFFECTS_URL (or SQSLAB_EFFECTS_URL, which sqslab sets when a scenario counts effects),
so the lab can tell whether the work happened exactly once.

Run it in a scenario with `consumer.program` (scenarios/own_consumer_python.yaml,
scenarios/effects_early_ack.yaml).
"""

import json
import logging
import os
import random
import signal
import sys
import time
import urllib.request

import boto3

logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s", stream=sys.stderr)
log = logging.getLogger()

QUEUE_URL = os.environ.get("QUEUE_URL") or os.environ["SQSLAB_QUEUE_URL"]
WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.05"))
EARLY_ACK = os.environ.get("ACK", "late") == "early"
EFFECTS_URL = os.environ.get("EFFECTS_URL") or os.environ.get("SQSLAB_EFFECTS_URL")

stopping = False


def on_sigterm(signum: int, frame: object) -> None:
    global stopping
    stopping = True  # finish the message in hand, then leave
    log.info("SIGTERM: stopping after the current message")


def handle(body: str) -> None:
    """The business logic: here, parse the order and pretend to charge it."""
    try:
        order = json.loads(body)
    except ValueError:
        order = {"raw": body[:40]}
    time.sleep(WORK_SECONDS * random.uniform(0.75, 1.25))  # real work varies
    if EFFECTS_URL:  # the charge itself: what must happen exactly once
        order_id = order.get("orderId") or order.get("id")
        charge = json.dumps({"id": order_id, "orderId": order_id, "charged": True}).encode()  # effects.id: id or orderId
        request = urllib.request.Request(EFFECTS_URL, data=charge, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
    log.debug("handled %s", order.get("orderId") or order.get("id"))


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    sqs = boto3.client("sqs")  # endpoint, region, credentials: from the environment
    log.info("worker ready, polling %s", QUEUE_URL)
    handled = 0
    while not stopping:
        response = sqs.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=5, WaitTimeSeconds=2)
        for message in response.get("Messages", []):
            if EARLY_ACK:
                sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
            handle(message["Body"])
            if not EARLY_ACK:
                sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
            handled += 1
    log.info("stopped after %d messages", handled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
