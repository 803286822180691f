"""A producer as a team might write one: it publishes COUNT orders to its queue with boto3
(SendMessageBatch, RATE orders per second), each a JSON body with an `orderId`
of its own, and exits. It knows nothing of sqslab: the queue is QUEUE_URL (or
SQSLAB_QUEUE_URL, which sqslab sets), the endpoint, region and credentials come from the
environment the way every AWS SDK reads them.

Run it as a load phase (scenarios/own_producer.yaml): `producer: {program: ...}`; with
`effects: {id: orderId}` the lab knows each message by its orderId, so the producer needs
no change to be accounted for. ID_ATTRIBUTE=true also gives each message its orderId as
the `sqslab-id` attribute, which names it whatever effects.id says.
"""

import json
import logging
import os
import random
import sys
import time
import uuid
from typing import Any

import boto3

logging.basicConfig(level=logging.INFO, format="%(asctime)s producer %(message)s", stream=sys.stderr)
log = logging.getLogger()

QUEUE_URL = os.environ.get("QUEUE_URL") or os.environ["SQSLAB_QUEUE_URL"]
COUNT = int(os.environ.get("COUNT", "50"))
RATE = float(os.environ.get("RATE", "20"))  # orders per second
BATCH = 10
ID_ATTRIBUTE = os.environ.get("ID_ATTRIBUTE", "false") == "true"


def entry(i: int, order: dict[str, Any]) -> dict[str, Any]:
    """One SendMessageBatch entry for the order."""
    item: dict[str, Any] = {"Id": str(i), "MessageBody": json.dumps(order)}
    if ID_ATTRIBUTE:
        item["MessageAttributes"] = {"sqslab-id": {"DataType": "String", "StringValue": order["orderId"]}}
    return item


def main() -> int:
    sqs = boto3.client("sqs")
    rng = random.Random(os.environ.get("SEED", "1"))
    sent, started = 0, time.monotonic()
    while sent < COUNT:
        orders = [{"orderId": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "amount": rng.randint(1, 500)}
                  for _ in range(min(BATCH, COUNT - sent))]
        answer = sqs.send_message_batch(QueueUrl=QUEUE_URL, Entries=[entry(i, order) for i, order in enumerate(orders)])
        for failed in answer.get("Failed", []):
            log.warning("order %s not sent: %s", orders[int(failed["Id"])]["orderId"], failed.get("Message"))
        sent += len(orders)
        time.sleep(max(0.0, started + sent / RATE - time.monotonic()))  # on the clock, not drifting
    log.info("published %d orders in %.1fs", sent, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
