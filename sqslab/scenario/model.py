"""The resolved scenario: the validated file with every default filled in and every unit
resolved (seconds, messages per second, bytes): the settings from the table in
sqslab.scenario.settings as `Infra`, the consumer as its kind resolved it
(sqslab.consumers; the built-in consumer's `Knobs`), the load phases on one clock, the
actions with their triggers, the expectations parsed. sqslab.scenario.load makes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqslab.consumers import Consumer
from sqslab.consumers.builtin import BuiltinConsumer, Knobs
from sqslab.scenario.settings import BY_KEY
from sqslab.scenario.timeline import Phase
from sqslab.truth.expectations import Condition


def _default(key: str) -> Any:
    """A setting's default in resolved units, from the settings table."""
    return BY_KEY[key].resolve(None)


# ---------------------------------------------------------------- resolved scenario


@dataclass(frozen=True)
class Infra:
    """Queue, DLQ and consumer service settings; times in seconds. One field per `infra.*`
    setting; defaults from the settings table."""

    region: str = _default("infra.region")
    visibility_timeout: float = _default("infra.queue.visibility_timeout")
    retention: float = _default("infra.queue.retention")
    receive_wait: float = _default("infra.queue.receive_wait")
    delay: float = _default("infra.queue.delay")
    fifo: bool = _default("infra.queue.fifo")
    content_based_deduplication: bool = _default("infra.queue.content_based_deduplication")
    high_throughput: bool = _default("infra.queue.high_throughput")
    dlq_enabled: bool = _default("infra.dlq.enabled")
    max_receive_count: int = _default("infra.dlq.max_receive_count")
    dlq_retention: float = _default("infra.dlq.retention")
    consumers: int = _default("infra.consumers")
    max_consumers: int = _default("infra.max_consumers")
    cpu: int = _default("infra.task.cpu")
    memory: int = _default("infra.task.memory")
    restart_delay: float = _default("infra.task.restart_delay")


@dataclass(frozen=True)
class SqsConfig:
    """How the embedded SQS behaves: the `behavior` profile, every behaviour setting
    resolved against it (the `sqs` behaviour rows of sqslab.scenario.settings), and the API faults of
    the whole run as fault rules (sqslab.consumer.sqsfaults)."""

    behavior: str = "exact"
    settings: dict[str, Any] = field(default_factory=dict)
    faults: tuple[dict[str, Any], ...] = ()

    @property
    def exact(self) -> bool:
        """Whether SQS is left exact: exact settings and no faults."""
        from sqslab.scenario.settings import PROFILES

        return not self.faults and self.settings == PROFILES["exact"]

    def lab(self, seed: int | None) -> dict[str, Any]:
        """The emulator's lab configuration (sqslab.emulator.lab)."""
        from sqslab.emulator.lab import lab_config

        return lab_config(self.behavior, self.settings, self.faults, seed)


@dataclass(frozen=True)
class ActionSpec:
    """One scheduled action: its trigger, what it does and with which parameters."""

    index: int
    name: str
    do: str
    params: dict[str, Any]
    at: float | None = None
    after: str | None = None
    after_offset: float = 0.0
    when: Condition | None = None
    continue_on_error: bool = False
    timeout: float | None = None  # None: the scheduler's default

    @property
    def trigger(self) -> str:
        """The trigger as the scenario wrote it."""
        if self.at is not None:
            return f"at {self.at:g}s"
        if self.after is not None:
            return f"after {self.after}" + (f" + {self.after_offset:g}s" if self.after_offset else "")
        return f"when {self.when.text}" if self.when else ""


@dataclass(frozen=True)
class Scenario:
    """A validated scenario with every default filled in and every unit resolved."""

    name: str
    description: str
    seed: int | None
    sample_interval: float
    infra: Infra
    knobs: Knobs
    phases: tuple[Phase, ...]
    actions: tuple[ActionSpec, ...]
    settle_until: str
    settle_timeout: float
    expect: tuple[Condition, ...]
    sqs: SqsConfig = field(default_factory=SqsConfig)
    consumer: Consumer = field(default_factory=BuiltinConsumer)  # what each consumer task runs (sqslab.consumers)
    effects_id: str | None = None  # with `effects:` given: where an effect's body names its message (sqslab.truth.effects)
    data: dict[str, Any] = field(repr=False, default_factory=dict)
    path: str = ""

    @property
    def stack_name(self) -> str:
        """The scenario's name as AWS resource names take it (lowercase, at most 32 characters)."""
        return re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-")[:32] or "sqslab"
