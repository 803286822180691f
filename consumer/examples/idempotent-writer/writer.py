"""An SQS worker whose work is a DynamoDB write, made idempotent the usual way: a
conditional PutItem (`attribute_not_exists`) keyed by the order's id, so a message
delivered twice writes its order once. CONDITIONAL=false writes unconditionally (the
naive version: a second delivery writes again).

The table is ORDERS_TABLE, or SQSLAB_EFFECTS_TABLE, which sqslab sets when a scenario
counts effects: each write that takes is an effect (scenarios/effects_idempotent.yaml).
"""

import json
import logging
import os
import signal
import sys
import time
from typing import Any

import boto3

logging.basicConfig(level=logging.INFO, format="%(asctime)s writer %(message)s", stream=sys.stderr)
log = logging.getLogger()

QUEUE_URL = os.environ.get("QUEUE_URL") or os.environ["SQSLAB_QUEUE_URL"]
TABLE = os.environ.get("ORDERS_TABLE") or os.environ["SQSLAB_EFFECTS_TABLE"]
CONDITIONAL = os.environ.get("CONDITIONAL", "true") != "false"
WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "0.02"))

stopping = False


def on_sigterm(signum: int, frame: object) -> None:
    global stopping
    stopping = True


def write(dynamodb: Any, order: dict[str, Any]) -> bool:
    """The order's row; False when it was written before (a repeated delivery)."""
    item = {"id": {"S": str(order["id"])}, "amount": {"N": str(order.get("amount", 0))}}
    try:
        if CONDITIONAL:
            dynamodb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(id)")
        else:
            dynamodb.put_item(TableName=TABLE, Item=item)
        return True
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    log.info("writer ready, polling %s into %s", QUEUE_URL, TABLE)
    while not stopping:
        for message in sqs.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            time.sleep(WORK_SECONDS)
            if not write(dynamodb, json.loads(message["Body"])):
                log.info("order already written: a repeated delivery")
            sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
