"""A Celery worker on SQS (kombu's SQS transport), as a team would write one: a task that
charges an order, with Celery's default early acknowledgement, or ACKS_LATE=true for
`task_acks_late` (the message is deleted after the task, not before).

It knows nothing of sqslab but the environment: the queue (QUEUE_URL or SQSLAB_QUEUE_URL),
the endpoint, region and credentials the way every AWS SDK reads them, and the effects
URL (EFFECTS_URL or SQSLAB_EFFECTS_URL), where the charge itself is posted so the lab can
tell whether the work happened exactly once. The task id is sqslab's id: the scenario
sends Celery's own message format (`format: {name: celery, task: orders.charge, ...}`).

Run it in a scenario with `consumer.program` (scenarios/celery_early_ack.yaml):
    celery -A tasks worker --pool solo --without-gossip --without-mingle --without-heartbeat
"""

import json
import logging
import os
import time
import urllib.parse
import urllib.request
from typing import Any

from celery import Celery

log = logging.getLogger("orders")

QUEUE_URL = os.environ.get("QUEUE_URL") or os.environ["SQSLAB_QUEUE_URL"]
QUEUE_NAME = QUEUE_URL.rstrip("/").rsplit("/", 1)[-1]
ENDPOINT = urllib.parse.urlsplit(os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL") or "")
WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.2"))
EFFECTS_URL = os.environ.get("EFFECTS_URL") or os.environ.get("SQSLAB_EFFECTS_URL")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def broker_url() -> str:
    """kombu's SQS URL: credentials in it, the endpoint (a local emulator's) as its host."""
    user = urllib.parse.quote(os.environ.get("AWS_ACCESS_KEY_ID", ""), safe="")
    password = urllib.parse.quote(os.environ.get("AWS_SECRET_ACCESS_KEY", ""), safe="")
    where = f"{ENDPOINT.hostname}:{ENDPOINT.port}" if ENDPOINT.hostname and ENDPOINT.port else (ENDPOINT.hostname or "")
    return f"sqs://{user}:{password}@{where}" if user else f"sqs://{where}"


app = Celery("orders", broker=broker_url())
app.conf.update(
    broker_transport_options={
        "region": REGION,
        "predefined_queues": {QUEUE_NAME: {"url": QUEUE_URL}},
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
        "is_secure": ENDPOINT.scheme == "https",
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE_NAME,
    task_acks_late=os.environ.get("ACKS_LATE", "false") == "true",
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)


@app.task(name="orders.charge", bind=True)
def charge(self: Any, order_id: str, amount: int) -> None:
    """Charge the order: the work, then its effect (posted), which must happen exactly once."""
    log.warning("START %s", self.request.id)
    time.sleep(WORK_SECONDS)
    if EFFECTS_URL:
        body = json.dumps({"id": self.request.id, "order": order_id, "amount": amount}).encode()
        request = urllib.request.Request(EFFECTS_URL, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
    log.warning("DONE %s", self.request.id)
