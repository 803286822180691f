"""Names and numbers shared by sqslab's parts and the programs it runs (docs/contracts.md).

The built-in consumer (consumer/consume.py) is a standalone program for its image and
cannot import sqslab: it restates the names it reads, and tests/test_consumer.py holds
both sides to this module. The consumer events' names and fields live beside it, in
sqslab.consumer.events (consumer/events.py), which both the consumer and sqslab import.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Exit(IntEnum):
    """sqslab's exit codes, an interface: README.md documents them."""

    PASSED = 0  # every expectation held (or the files are valid)
    FAILED = 1  # an expectation failed
    USAGE = 2  # usage error or invalid scenario
    ERROR = 3  # infrastructure or internal error
    INTERRUPTED = 130  # Ctrl-C or SIGTERM


#: What a consumer process that died abruptly exits with (a SIGKILLed container's 137).
EXIT_CRASH = 137
#: The payload field that, when true, makes the built-in consumer fail a message every time.
POISON_MARKER = "poison"
#: The ECR repository `sqslab image push` makes and every AWS run pulls from.
ECR_REPOSITORY = "sqs-demo/consumer"

#: The consumer's environment beyond its knobs (the knobs: sqslab.scenario.settings).
ENV_QUEUE_URL = "SQSLAB_QUEUE_URL"
ENV_DLQ_URL = "SQSLAB_DLQ_URL"
ENV_TASK_ID = "SQSLAB_TASK_ID"
#: Where a consumer POSTs its effects (a JSON object each) when the scenario counts them (sqslab.truth.effects).
ENV_EFFECTS_URL = "SQSLAB_EFFECTS_URL"
#: The DynamoDB table (in the same emulator) whose writes are effects, for a consumer that writes its results there.
ENV_EFFECTS_TABLE = "SQSLAB_EFFECTS_TABLE"
ENV_SEED = "SQSLAB_SEED"
ENV_POISON_MARKER = "SQSLAB_POISON_MARKER"
ENV_LOG_LEVEL = "SQSLAB_LOG_LEVEL"
#: Fault rules (JSON, sqslab.consumer.sqsfaults) the consumer applies to its own SQS calls (the aws target).
ENV_SQS_FAULTS = "SQSLAB_SQS_FAULTS"
#: The message attribute that carries sqslab's id of a message, so its body is the user's own.
ID_ATTRIBUTE = "sqslab-id"
#: Access key ids the local target gives the SQS clients it runs: the emulator's journal
#: attributes each call to its caller by the key in the request's signature.
ACCESS_KEY_PREFIX = "sqslab-"
#: The caller a producer program's phase signs as (after ACCESS_KEY_PREFIX), then the phase's name.
PRODUCER_PROGRAM_CALLER = "producer-"

#: The low 48 bits of an id (a version-4 UUID's node field) carry the producer's sequence number.
_SEQ_BITS = (1 << 48) - 1


def message_id(seq: int) -> str:
    """sqslab's id of the producer's seq-th message: a random version-4 UUID whose last 12 hex
    digits are seq, so whatever sees only the id (the SQS journal) knows the message's place."""
    import uuid

    return str(uuid.UUID(int=(uuid.uuid4().int & ~_SEQ_BITS) | (seq & _SEQ_BITS)))


def seq_of(ident: str) -> int | None:
    """The producer's sequence number in an id made by message_id (None for another string)."""
    try:
        return int(ident[-12:], 16) if len(ident) == 36 else None
    except ValueError:
        return None


def sqslab_id(body: str, attributes: dict[str, Any] | None, path: str = "id") -> str | None:
    """sqslab's id of a message: its `sqslab-id` attribute (as SQS answers it, or as moto
    keeps it: {"StringValue": ...}), else the text at the dotted `path` of its JSON body
    (`effects.id`'s, default `id`); None for a message not ours."""
    attribute = (attributes or {}).get(ID_ATTRIBUTE)
    if isinstance(attribute, dict) and isinstance(attribute.get("StringValue"), str):
        return str(attribute["StringValue"])
    try:
        ident = value_at(json.loads(body), path)
    except (ValueError, TypeError):
        return None
    return ident if isinstance(ident, str) else None


def value_at(data: Any, path: str) -> Any:
    """What the dotted `path` names in decoded JSON (`order.id`: data["order"]["id"]),
    None where a step is not an object or lacks the key."""
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


# The SQS journal's line authentication (sqslab.emulator.journal writes, sqslab.truth.journal reads):
# here, so reading a journal does not import the emulator.
#: The environment variable that gives the emulator the journal's key (hex).
ENV_JOURNAL_KEY = "SQSLAB_JOURNAL_KEY"
#: The start of an authenticated line, before its MAC.
MAC_PREFIX = '{"mac":"'
#: Hex digits of the MAC kept (128 bits).
MAC_HEX = 32


def line_mac(key: bytes, unsigned: str) -> str:
    """The MAC of one journal line's JSON (as written before the MAC was put in front)."""
    return hmac.new(key, unsigned.encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def unsigned_line(line: str) -> tuple[str, str] | None:
    """(the MAC, the line's JSON as it was signed) of an authenticated line, else None."""
    if not line.startswith(MAC_PREFIX) or line[len(MAC_PREFIX) + MAC_HEX:len(MAC_PREFIX) + MAC_HEX + 2] != '",':
        return None
    return line[len(MAC_PREFIX):len(MAC_PREFIX) + MAC_HEX], "{" + line[len(MAC_PREFIX) + MAC_HEX + 2:]


@dataclass(frozen=True)
class Endpoints:
    """Where the run's queues are."""

    queue_url: str
    dlq_url: str | None
    endpoint_url: str | None
    region: str
    effects_url: str | None = None  # the emulator's effects endpoint, when the scenario counts effects
    effects_table: str | None = None  # and its DynamoDB effects table
