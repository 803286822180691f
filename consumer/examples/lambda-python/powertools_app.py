"""The same handler with AWS Lambda Powertools' BatchProcessor (pip install
aws-lambda-powertools): it calls record_handler per record and builds the partial batch
response itself. The mapping needs `report_batch_item_failures: true`."""

import json
import os
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

processor = BatchProcessor(event_type=EventType.SQS)
WORK_S = float(os.environ.get("WORK_MS", "20")) / 1000


def record_handler(record: SQSRecord) -> None:
    order = json.loads(record.body)
    if order.get("poison"):
        raise ValueError(f"order {order.get('id')} cannot be processed")
    time.sleep(WORK_S)


def handler(event: dict[str, Any], context: Any) -> Any:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
