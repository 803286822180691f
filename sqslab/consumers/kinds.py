"""The kinds of consumer sqslab registers itself, for code that has no plugin host (the
schema without plugins, a scenario resolved from data, the hunt's campaign)."""

from __future__ import annotations

from sqslab.consumers import ConsumerKind
from sqslab.consumers.builtin import KIND as BUILTIN
from sqslab.consumers.lambda_function import KIND as LAMBDA
from sqslab.consumers.program import KIND as PROGRAM


def builtin_kinds() -> dict[str, ConsumerKind]:
    """The built-in consumer, consumer.program and consumer.lambda, by name, in registration order."""
    return {BUILTIN.name: BUILTIN, PROGRAM.name: PROGRAM, LAMBDA.name: LAMBDA}
