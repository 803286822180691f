"""A Lambda handler made idempotent with AWS Lambda Powertools (pip install
aws-lambda-powertools): its BatchProcessor calls `charge` per record, and
`@idempotent_function` keys each charge by the order's id in a DynamoDB table of
Powertools' own (IDEMPOTENCY_TABLE), so an order delivered twice is charged once; a
delivery while the same order is still in progress fails its record (partial batch
response), which comes back later and finds the charge done.

The charge itself writes the order's row to ORDERS_TABLE, or SQSLAB_EFFECTS_TABLE, which
sqslab sets when a scenario counts effects: each write that takes is an effect
(scenarios/lambda_idempotent.yaml). The mapping needs `report_batch_item_failures: true`.
IDEMPOTENT=false charges without the decorator, to see the difference.
"""

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function

IDEMPOTENCY_TABLE = os.environ.get("IDEMPOTENCY_TABLE", "orders-idempotency")
ORDERS_TABLE = os.environ.get("ORDERS_TABLE") or os.environ["SQSLAB_EFFECTS_TABLE"]
dynamodb = boto3.client("dynamodb")


def _idempotency_table() -> str:
    """Powertools' table, made on a cold start when it is missing (on AWS the stack makes it)."""
    try:
        dynamodb.create_table(TableName=IDEMPOTENCY_TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    except dynamodb.exceptions.ResourceInUseException:
        pass  # made already (by another environment)
    return IDEMPOTENCY_TABLE


processor = BatchProcessor(event_type=EventType.SQS)
config = IdempotencyConfig(event_key_jmespath="orderId", raise_on_no_idempotency_key=True)
persistence = DynamoDBPersistenceLayer(table_name=_idempotency_table())


@idempotent_function(data_keyword_argument="order", config=config, persistence_store=persistence)
def charge(order: dict[str, Any]) -> dict[str, Any]:
    """The work that must happen once per order: its row, written without a condition (the
    idempotency is Powertools')."""
    dynamodb.put_item(TableName=ORDERS_TABLE, Item={"orderId": {"S": order["orderId"]}, "amount": {"N": str(order["amount"])}})
    return {"charged": order["orderId"]}


if os.environ.get("IDEMPOTENT", "true") == "false":  # the same charge without Powertools: a repeated delivery charges again
    charge = charge.__wrapped__


def record_handler(record: SQSRecord) -> None:
    charge(order=json.loads(record.body))


def handler(event: dict[str, Any], context: Any) -> Any:
    config.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
