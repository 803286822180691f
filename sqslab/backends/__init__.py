"""Targets: where a scenario runs. Each is registered through `register_targets`.

A target object has this interface, which the runner calls (the local and AWS targets
both implement it; a plugin target must too):

    provision(scenario, run_dir) -> Endpoints      queue + DLQ (+ the service)
    sqs_client() -> boto3 SQS client               for the producer, sampler and audit
    start_consumers(count, knobs)                  the service at its desired count
    kill(count, rng) -> list[str]                  stop N running tasks abruptly
    scale(to)                                      change the desired count
    set_consumer(knobs)                            roll the tasks to new knobs
    tasks() -> TaskCounts                          running and desired
    consumer_events() -> list[dict]                consumer events since the last call
    stop_consumers(grace)                          stop every task (SIGTERM, then kill)
    teardown()                                     release everything; idempotent
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Endpoints:
    """Where the run's queues are."""

    queue_url: str
    dlq_url: str | None
    endpoint_url: str | None
    region: str


@dataclass(frozen=True)
class TaskCounts:
    """Consumer tasks running, wanted, and started so far (replacements included)."""

    running: int
    desired: int
    started: int = 0


_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def queue_counts(client: Any, queue_url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) of a queue, from one GetQueueAttributes call."""
    attrs = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_COUNTS))["Attributes"]
    visible, in_flight, delayed = (int(attrs.get(name, 0)) for name in _COUNTS)
    return visible, in_flight, delayed


class TargetError(Exception):
    """The target could not do what was asked: provisioning, a task operation, teardown."""
