"""A dramatiq worker on SQS (dramatiq-sqs), as a team would write one: an actor that
charges an order. dramatiq-sqs finds its queue by name: the actor's queue is the run's
(the last part of QUEUE_URL or SQSLAB_QUEUE_URL), the endpoint, region and credentials
come from the environment the way every AWS SDK reads them. A message is deleted once the
actor has run (dramatiq acknowledges late); one that fails is retried by dramatiq itself,
re-sent to the queue, up to MAX_RETRIES times.

The charge is posted to EFFECTS_URL (or SQSLAB_EFFECTS_URL, which sqslab sets when a
scenario counts effects); dramatiq's message id is sqslab's id, since the scenario sends
dramatiq-sqs's own message format (`format: {name: dramatiq, actor: charge, ...}`).

Run it in a scenario with `consumer.program` (scenarios/dramatiq_worker.yaml):
    dramatiq actors --processes 1 --threads 2
"""

import json
import logging
import os
import time
import urllib.request

import dramatiq
from dramatiq.middleware import CurrentMessage
from dramatiq_sqs import SQSBroker

log = logging.getLogger("orders")

QUEUE_URL = os.environ.get("QUEUE_URL") or os.environ["SQSLAB_QUEUE_URL"]
QUEUE_NAME = QUEUE_URL.rstrip("/").rsplit("/", 1)[-1]
WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.1"))
EFFECTS_URL = os.environ.get("EFFECTS_URL") or os.environ.get("SQSLAB_EFFECTS_URL")
MAX_RETRIES = int(os.environ.get("MAX_RETRIES", "3"))
FAIL_EVERY = int(os.environ.get("FAIL_EVERY", "0"))  # every Nth order fails its first try (0: none)

broker = SQSBroker(endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL"),
                   visibility_timeout=int(os.environ.get("VISIBILITY_TIMEOUT", "30")))
broker.add_middleware(CurrentMessage())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE_NAME, max_retries=MAX_RETRIES, min_backoff=100, max_backoff=500)
def charge(order_id: str, amount: int) -> None:
    """Charge the order; its effect (the charge, posted) must happen exactly once."""
    message = CurrentMessage.get_current_message()
    ident = message.message_id if message else order_id
    retries = message.options.get("retries", 0) if message else 0
    log.warning("START %s (try %d)", ident, retries + 1)
    time.sleep(WORK_SECONDS)
    if FAIL_EVERY and int(order_id.rsplit("-", 1)[-1]) % FAIL_EVERY == 0 and retries == 0:
        raise RuntimeError(f"order {order_id}: the payment service timed out")
    if EFFECTS_URL:
        body = json.dumps({"id": ident, "order": order_id, "amount": amount}).encode()
        request = urllib.request.Request(EFFECTS_URL, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
    log.warning("DONE %s", ident)
