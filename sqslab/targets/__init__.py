"""Targets: where a scenario runs. Each is registered through `register_targets`.

A target is made by its factory, `factory(log, **options)`: `log` receives the target's
events (the runner records them in events.jsonl; a `notice` event is a line for the
person running it), `options` are the target's own options, which it declares when it
registers (`TargetOption`) and the command line offers as `--NAME` flags. The object
then does what `Target` says; the local and AWS targets are two such objects, and a
plugin's target is a third with nothing more to it.

What every target shares is not here: the producer, the sampler's queue depths and the
final audit of the queues all go through the SQS client the target hands out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqslab.contracts import Endpoints

if TYPE_CHECKING:
    from sqslab.consumers import Consumer
    from sqslab.scenario.model import Scenario

#: Where a target's events go: the runner records each one in events.jsonl.
Log = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TaskCounts:
    """Consumer tasks running, wanted, and started so far (replacements included)."""

    running: int
    desired: int
    started: int = 0


@dataclass(frozen=True)
class HeldMessage:
    """One message a queue holds, as the lab's exact view sees it."""

    id: str  # sqslab's id, or `?MessageId` for a message not ours
    state: str  # ready, inflight or delayed
    until: float | None  # epoch seconds its visibility timeout or delay ends
    receive_count: int = 0
    group: str | None = None


@dataclass(frozen=True)
class QueueState:
    """A queue's exact state: its counts, and (when asked for) every message it holds."""

    visible: int
    in_flight: int
    delayed: int
    messages: tuple[HeldMessage, ...] | None = None
    truncated: bool = False

    @classmethod
    def of(cls, data: dict[str, Any]) -> QueueState:
        """From the emulator's answer (sqslab.emulator.state.snapshot)."""
        listed = data.get("messages")
        messages = None if listed is None else tuple(
            HeldMessage(str(m["id"]), str(m["state"]), m.get("until"), int(m.get("rc") or 0), m.get("group")) for m in listed)
        return cls(int(data["visible"]), int(data["in_flight"]), int(data["delayed"]), messages, bool(data.get("truncated")))


@dataclass(frozen=True)
class TargetOption:
    """One option of a target, offered on the command line as `--NAME` (dashes for
    underscores) by every command that takes `--target`, and handed to the factory as
    the keyword NAME."""

    name: str
    help: str
    flag: bool = False  # a switch: True when given
    choices: tuple[str, ...] = ()
    default: Any = None
    metavar: str | None = None

    @property
    def option(self) -> str:
        """The command-line spelling: `--endpoint-url`."""
        return "--" + self.name.replace("_", "-")


@runtime_checkable
class Target(Protocol):
    """What the runner asks of a place a scenario runs, in the order it asks."""

    def plan(self, scenario: Scenario) -> list[tuple[str, str]]:
        """What `sqslab plan` shows beyond the timeline, as (title, text) sections; no side effects."""
        ...

    def provision(self, scenario: Scenario, run_dir: Path) -> Endpoints:
        """Make the queue and DLQ (and the service), and say where they are."""
        ...

    def sqs_client(self, observer: bool = False) -> Any:
        """A boto3 SQS client for the run's queues. The producer's and the actions' calls are
        the system's, and injected faults hit them; `observer=True` is sqslab's own (the
        sampler, the final audit), which faults leave alone."""
        ...

    def start_consumers(self, count: int, consumer: Consumer) -> None:
        """Start the service at `count` tasks of this consumer (sqslab.consumers: what each
        task runs); return when they are starting."""
        ...

    def kill(self, count: int, rng: random.Random) -> list[str]:
        """Stop `count` running tasks abruptly (chosen with rng); the ids of those stopped."""
        ...

    def scale(self, to: int) -> None:
        """Change the desired number of tasks."""
        ...

    def set_consumer(self, consumer: Consumer) -> None:
        """Roll the tasks to this revision of the consumer, as a new task definition revision would."""
        ...

    def tune(self, consumer: Consumer) -> None:
        """Change the running tasks in place to this consumer's `live_state` (a Lambda
        function's reserved concurrency, its mapping's state), with no new revision."""
        ...

    def tasks(self) -> TaskCounts:
        """The target's part of a sample: tasks running, desired and started so far."""
        ...

    def consumer_events(self) -> list[dict[str, Any]]:
        """Consumer events (docs/contracts.md) that arrived since the last call, and what
        the target's SQS tells of itself (`source: sqs`: faults, behaviour), if anything."""
        ...

    def sqs_fault(self, rule: dict[str, Any]) -> None:
        """Put an SQS API fault rule (sqslab.consumer.sqsfaults) in force now: the `sqs_fault` action."""
        ...

    def stop_consumers(self, grace: float) -> None:
        """Stop every task (SIGTERM, then a kill after grace seconds) and collect their last events."""
        ...

    def teardown(self) -> None:
        """Release everything the target made; idempotent, called on every exit path."""
        ...

    def queue_states(self, queue_urls: list[str], messages: bool = False) -> list[QueueState] | None:
        """The lab's exact view of these queues, in order, read through the lab's own channel
        (never through the behaviour profile, the faults or the FIFO group locks a consumer
        meets); with `messages`, every message each holds. None where the target has no such
        view (real SQS, your own endpoint): the runner then reads the queues through SQS."""
        ...

    def journal_key(self) -> bytes | None:
        """The key the run's SQS journal lines are authenticated with (the embedded emulator
        holds it; no task sees it), or None where there is no journal."""
        ...

    def failure(self) -> str | None:
        """A fault of the target itself that ends the run (the emulator died), in words; else
        None. Asked several times a second, so it must be cheap."""
        ...


#: A target's factory: `factory(log, **options) -> Target`.
TargetFactory = Callable[..., Target]

_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed")


def queue_counts(client: Any, queue_url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) of a queue, from one GetQueueAttributes call."""
    attrs = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(_COUNTS))["Attributes"]
    visible, in_flight, delayed = (int(attrs.get(name, 0)) for name in _COUNTS)
    return visible, in_flight, delayed


class TargetError(Exception):
    """The target could not do what was asked: provisioning, a task operation, teardown."""
