"""The built-in consumer: `sqslab/consumer/consume.py`, the same program the container
image runs, its behaviour set by the `consumer.*` knobs of the settings table.

It is sqslab's own: it tells every receive, processing and delete as an event line
(docs/contracts.md), which the SQS journal checks (the self-check); it applies the run's
client-side SQS faults where SQS takes none (AWS); a `set_consumer` changes its live knobs.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqslab.consumers import Consumer, ConsumerKind, LocalTask, sdk_env, task_env
from sqslab.contracts import ENV_POISON_MARKER, ENV_SEED, POISON_MARKER
from sqslab.hookspecs import hookimpl
from sqslab.scenario.settings import BY_KEY, consumer_env, live_knobs, resolve_section

if TYPE_CHECKING:
    from sqslab.contracts import Endpoints
    from sqslab.scenario.document import Document, Problem


def _default(key: str) -> Any:
    """A setting's default in resolved units, from the settings table."""
    return BY_KEY[key].resolve(None)


@dataclass(frozen=True)
class Knobs:
    """The built-in consumer's behaviour; times in seconds. One field per `consumer.*`
    setting (tests hold the two to each other); defaults from the settings table."""

    work_time: tuple[float, float] = _default("consumer.work_time")
    error_rate: float = _default("consumer.error_rate")
    crash_rate: float = _default("consumer.crash_rate")
    slow_rate: float = _default("consumer.slow_rate")
    slow_time: float = _default("consumer.slow_time")
    idempotency: bool = _default("consumer.idempotency")
    idempotency_window: float = _default("consumer.idempotency_window")
    poison_rate: float = _default("consumer.poison_rate")
    release_on_stop: bool = _default("consumer.release_on_stop")
    delete: str = _default("consumer.delete")
    on_failure: str = _default("consumer.on_failure")
    effect: str = _default("consumer.effect")
    batch_size: int = _default("consumer.batch_size")
    wait_time: float = _default("consumer.wait_time")
    startup_time: float = _default("consumer.startup_time")

    def to_env(self) -> dict[str, str]:
        """The consumer's environment for these knobs (docs/contracts.md)."""
        return consumer_env(asdict(self))

    def updated(self, changes: dict[str, Any]) -> Knobs:
        """These knobs with scenario-style changes (`work_time: 1s..2s`, `error_rate: 0`) applied."""
        values = asdict(self)
        values.update(resolve_section("consumer", changes, only_given=True))
        return Knobs(**values)


def resolve_knobs(consumer: dict[str, Any]) -> Knobs:
    """Consumer knobs from the scenario's `consumer` mapping (assumed valid, without another
    kind's section), defaults filled."""
    return Knobs(**resolve_section("consumer", consumer))


def task_environment(knobs: Knobs, seed: int | None) -> dict[str, str]:
    """The built-in consumer's environment on any target, but for where it runs (queue
    URL, endpoint, task id, credentials): its knobs, the poison marker, the run's seed."""
    env = knobs.to_env()
    env[ENV_POISON_MARKER] = POISON_MARKER
    if seed is not None:
        env[ENV_SEED] = str(seed)
    return env


def consumer_program() -> Path:
    """The consumer program shipped in the package (the same file the image runs)."""
    return Path(str(resources.files("sqslab.consumer").joinpath("consume.py")))


#: Knobs a hunt's set_consumer never draws alone: slow_time needs slow_rate beside it.
_PAIRED = {"slow_time"}


@dataclass(frozen=True)
class BuiltinConsumer(Consumer):
    """The built-in consumer with these knobs, in a run seeded with `seed`."""

    knobs: Knobs = Knobs()
    seed: int | None = None

    kind: ClassVar[str] = "builtin"
    own: ClassVar[bool] = True
    applies_faults: ClassVar[bool] = True

    def describe(self) -> str:
        """The built-in consumer."""
        return "the built-in consumer"

    def facts(self) -> dict[str, Any]:
        """summary.json's `consumer`."""
        return {"kind": "built-in", "command": "consumer/consume.py"}

    def resolved(self) -> dict[str, Any]:
        """Its knobs."""
        return {"kind": self.kind, "knobs": asdict(self.knobs)}

    def environment(self) -> dict[str, str]:
        """Its knobs, the poison marker and the seed."""
        return task_environment(self.knobs, self.seed)

    def local_task(self, task_id: str, endpoints: Endpoints) -> LocalTask:
        """consume.py with this interpreter; what sqslab tells a task wins over its knobs."""
        env = {**sdk_env(endpoints.region), **self.environment(), **task_env(endpoints, task_id), "PYTHONUNBUFFERED": "1"}
        return LocalTask([sys.executable, str(consumer_program())], env)

    def revised(self, changes: dict[str, Any]) -> BuiltinConsumer:
        """New knobs."""
        return replace(self, knobs=self.knobs.updated(changes))


class BuiltinKind(ConsumerKind):
    """The default kind: the `consumer.*` knobs of the settings table."""

    name: ClassVar[str] = "builtin"
    key: ClassVar[str | None] = None

    def problems(self, doc: Document, data: dict[str, Any]) -> list[Problem]:
        """`set_consumer` changes its knobs: `env` is a program's."""
        from sqslab.scenario.document import items, mapping
        from sqslab.scenario.names import ACTION_KEYS

        knobs = {s.name for s in live_knobs()}
        problems = [doc.problem(("actions", i, key), f"{key} is not a knob of the built-in consumer, which this scenario runs "
                                "(env sets a consumer program's environment; timeout, memory and reserved_concurrency a "
                                "Lambda function's)")
                    for i, action in enumerate(items(data, "actions"))
                    if isinstance(action, dict) and action.get("do") == "set_consumer"
                    for key in action if key not in ACTION_KEYS and key not in knobs]
        if "event_source" in mapping(data, "consumer"):
            problems.append(doc.problem(("consumer", "event_source"), "event_source configures the event source mapping of "
                                        "consumer.lambda; give consumer.lambda (handler, code) or drop it"))
        return problems

    def revision_schema(self) -> dict[str, Any]:
        """The knobs the settings table marks live."""
        from sqslab.scenario.settings import live_knobs, schema_property

        return {s.name: schema_property(s) for s in live_knobs()}

    def resolve(self, consumer: dict[str, Any], scenario_path: str, seed: int | None) -> BuiltinConsumer:
        """Its knobs from the section."""
        return BuiltinConsumer(resolve_knobs(consumer), seed)

    def draw_revision(self, rng: random.Random, facts: Any, draw: Callable[[str], Any]) -> dict[str, Any]:
        """One live knob; slow_time is drawn only beside slow_rate (with a slow_time longer than
        the visibility timeout), on_failure only for a FIFO queue."""
        names = [s.name for s in live_knobs() if s.name not in _PAIRED and (facts.fifo or s.name != "on_failure")]
        name = rng.choice(names)
        params = {name: draw(f"consumer.{name}")}
        if name == "slow_rate":
            params["slow_time"] = draw("consumer.slow_time")
        return params


KIND = BuiltinKind()


@hookimpl
def register_consumer_kinds(register: Callable[..., None]) -> None:
    """Register the built-in consumer."""
    register(KIND, description="sqslab's consumer (consumer/consume.py), its behaviour set by the consumer.* knobs")
