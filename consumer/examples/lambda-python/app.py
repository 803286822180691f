"""SQS handlers as a team might write them: each record's body is an order (JSON); a
record marked `"poison": true` always fails. It knows nothing of sqslab.

* `partial`: reports the records that failed (a partial batch response), so only those come
  back; the event source mapping must have `report_batch_item_failures: true` to read it.
* `whole_batch`: raises when a record fails, so the whole batch comes back, the records
  that succeeded included (they are processed again: duplicates).

WORK_MS (environment) is the work per record, in milliseconds; SLOW_SHARE of the records
(by the `work` figure sqslab's producer puts in each body) take SLOW_MS instead.
"""

import json
import logging
import os
import time
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)
WORK_S = float(os.environ.get("WORK_MS", "20")) / 1000
SLOW_SHARE = float(os.environ.get("SLOW_SHARE", "0"))
SLOW_S = float(os.environ.get("SLOW_MS", "0")) / 1000


class PoisonMessage(Exception):
    """A record that can never be processed."""


def process(record: dict[str, Any]) -> None:
    order = json.loads(record["body"])
    if order.get("poison"):
        raise PoisonMessage(f"order {order.get('id')} cannot be processed")
    slow = SLOW_SHARE > 0 and float(order.get("work", 0)) >= 1 - SLOW_SHARE
    time.sleep(SLOW_S if slow else WORK_S)


def partial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process every record; report those that failed."""
    failures = []
    for record in event["Records"]:
        try:
            process(record)
        except Exception:
            logger.exception("record %s failed", record["messageId"])
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def whole_batch(event: dict[str, Any], context: Any) -> None:
    """Process every record; any failure fails the invocation."""
    for record in event["Records"]:
        process(record)
    return None
