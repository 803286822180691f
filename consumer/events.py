"""The consumer events: what a consumer writes, one JSON object per line on its stdout.

One home for their names and their fields (docs/contracts.md, "Consumer events", documents
them; tests/test_contracts_doc.py holds that table and this module to each other, both
ways). The built-in consumer writes them (consume.py; sqsfaults.py for the SDK's
`retried` and `api_error` and the client-side `sqs_fault`); sqslab's targets read them from
a consumer program's output; the ledger and the SQS journal's self-check fold them.

Standard library only and nothing of sqslab: the consumer's image holds boto3 and the files
of this directory, and consume.py imports this one from beside it (as sqslab.consumer.events
in the package).
"""

from __future__ import annotations

from typing import NamedTuple


class Fields(NamedTuple):
    """An event's fields beyond COMMON: those it always has (a value may be null, as
    docs/contracts.md says: `id` of an unreadable message) and those it has only sometimes."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


#: What every consumer event has: when (epoch seconds, float), which event, which task.
COMMON = ("ts", "event", "task")
#: On a FIFO queue every event about a message also has its MessageGroupId.
GROUP = "group"

STARTED = "started"
CONFIG_WARNING = "config_warning"
RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"
DUPLICATE_SKIPPED = "duplicate_skipped"
DELETE_FAILED = "delete_failed"
CRASHED = "crashed"
ABANDONED = "abandoned"
RELEASED = "released"
POLL_ERROR = "poll_error"
RETRIED = "retried"
API_ERROR = "api_error"
SQS_FAULT = "sqs_fault"
STOPPED = "stopped"
INVOCATION = "invocation"
THROTTLED = "throttled"
SCALED = "scaled"
ENVIRONMENT_KILLED = "environment_killed"
MAPPING_CHANGED = "mapping_changed"

#: What an event about one receive of a message says of it: SQS's id, ours (the ledger's
#: key), the producer's sequence number, the receive count.
_RECEIVE = ("message_id", "id", "seq", "receive_count")

#: Every consumer event and its fields, in docs/contracts.md's order.
FIELDS: dict[str, Fields] = {
    STARTED: Fields(("config",)),
    CONFIG_WARNING: Fields(("variable", "message")),
    RECEIVED: Fields(_RECEIVE, (GROUP,)),
    PROCESSED: Fields(_RECEIVE + ("work_ms",), (GROUP,)),
    FAILED: Fields(_RECEIVE + ("reason",), (GROUP,)),
    DUPLICATE_SKIPPED: Fields(_RECEIVE, (GROUP,)),
    DELETE_FAILED: Fields(_RECEIVE + ("reason",), (GROUP,)),
    CRASHED: Fields(("message_id", "id", "seq"), (GROUP,)),
    ABANDONED: Fields(_RECEIVE + ("reason",), (GROUP,)),
    RELEASED: Fields(_RECEIVE + ("reason",), (GROUP,)),
    POLL_ERROR: Fields(("reason",)),
    RETRIED: Fields(("api", "attempt", "error")),
    API_ERROR: Fields(("api", "error", "attempts")),
    SQS_FAULT: Fields(("api", "kind", "latency", "rule", "side")),
    STOPPED: Fields(("reason", "processed")),
    INVOCATION: Fields(("request_id", "environment", "cold", "outcome", "batch_size", "failed", "init_ms", "duration_ms",
                        "billed_ms", "max_memory_mb", "memory_mb", "error")),
    THROTTLED: Fields(("reserved_concurrency",)),
    SCALED: Fields(("pollers",)),
    ENVIRONMENT_KILLED: Fields(("environment",)),
    MAPPING_CHANGED: Fields(("enabled", "reserved_concurrency", "max_concurrency")),
}

#: Every consumer event's name.
EVENTS = frozenset(FIELDS)
#: The events about a message: they name it (`id`, `message_id`), and have GROUP on a FIFO queue.
ABOUT_A_MESSAGE = frozenset(name for name, fields in FIELDS.items() if "message_id" in fields.required)
#: The events that stand for one receive of a message, whatever the consumer did with it then.
RECEIVES = frozenset({RECEIVED, ABANDONED, RELEASED})
#: The events that say a consumer is done with a received message: its delete follows.
DONE = frozenset({PROCESSED, DUPLICATE_SKIPPED})
#: The events only the built-in consumer writes: about its own SQSLAB_* variables, and about
#: faults it makes in its own SQS client (SQSLAB_SQS_FAULTS).
BUILT_IN_ONLY = frozenset({CONFIG_WARNING, SQS_FAULT})
#: The events only the Lambda event source mapping writes (sqslab.lambdas.mapping).
MAPPING_ONLY = frozenset({INVOCATION, THROTTLED, SCALED, ENVIRONMENT_KILLED, MAPPING_CHANGED})
#: The consumer events sqslab reads from a consumer program's output; any other JSON line a
#: program prints is its own log.
PROGRAM_EVENTS = EVENTS - BUILT_IN_ONLY - MAPPING_ONLY
#: The events the Lambda event source mapping writes.
LAMBDA_EVENTS = frozenset({STARTED, RECEIVED, PROCESSED, FAILED, DELETE_FAILED, ABANDONED, POLL_ERROR, STOPPED}) | MAPPING_ONLY
