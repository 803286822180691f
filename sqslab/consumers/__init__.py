"""Kinds of consumer: what each consumer task of a scenario runs, through one door.

A kind is registered through `register_consumer_kinds`, the way targets are; the built-in
consumer (`sqslab.consumers.builtin`) and your own program (`sqslab.consumers.program`)
are the first two, and a plugin's kind is a third with nothing more to it.

A kind (`ConsumerKind`) says which section of `consumer:` selects it (`key`; the kind
without a key is the default, the built-in consumer with the settings table's
`consumer.*` knobs), that section's schema, the checks of a scenario that uses it, and
resolves the section to a `Consumer`. That object is all the targets, the runner, the
summary and the Terraform variables know of what runs: how one task starts and stops on
this machine (`local_task`, `stop_grace`, readiness), what it needs on AWS (`image`,
`environment`, `aws_problems`), which events it tells (`events`) and how its messages'
fates are found (`own`: sqslab's own consumer, whose events the SQS journal checks; else
the journal, or what it tells, speaks for it). No code outside the kinds asks which kind
it runs.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqslab.contracts import ACCESS_KEY_PREFIX, ENV_DLQ_URL, ENV_EFFECTS_TABLE, ENV_EFFECTS_URL, ENV_QUEUE_URL, ENV_TASK_ID, Endpoints
from sqslab.credentials import emulator_env

if TYPE_CHECKING:
    from sqslab.scenario.document import Document, Problem


@dataclass(frozen=True)
class LocalTask:
    """How one task of a consumer starts on this machine: its argv, its environment and
    its working directory (None: its own folder under RUN_DIR/tasks). Each task runs in a
    process group of its own, which its stop ends whole (sqslab.targets.processes)."""

    command: list[str]
    env: dict[str, str]
    cwd: Path | None = None
    #: What `kill_consumer` sends the task's main process instead of SIGKILL to its group
    #: (the Lambda mapping kills one execution environment mid-invocation on SIGUSR1).
    kill_signal: int | None = None


class TaskWatch(ABC):
    """What a target learns of a consumer's tasks beyond the events they print, as the run
    goes: when each is ready, and what the SQS journal shows of them."""

    @abstractmethod
    def watch(self, task_id: str, started: float, out: Path, err: Path) -> None:
        """A task started (monotonic `started`), its output in out and err."""

    @abstractmethod
    def poll(self, told: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Events learnt since the last call (`started` once per task that became ready, ...);
        `told` are the events the tasks printed since then."""


class Consumer(ABC):
    """One scenario's consumer, as its kind resolved it: what every task of it runs.

    Immutable: `revised` gives the consumer of a new task definition revision."""

    #: The kind's registered name.
    kind: ClassVar[str]
    #: sqslab's own consumer: its events and the SQS journal are the lab's two stories of the
    #: same run, and a disagreement is a bug of sqslab (exit 3); else it is a finding about
    #: your consumer (exit 1), and where it tells nothing, the journal speaks for it.
    own: ClassVar[bool] = False
    #: Why its tasks need the embedded emulator on the local target (its journal accounts for
    #: their messages), or None when any SQS endpoint will do.
    needs_emulator: ClassVar[str | None] = None
    #: The consumer event names read from its tasks' output (docs/contracts.md); None: every
    #: JSON line it prints is one.
    events: ClassVar[frozenset[str] | None] = None
    #: Whether its tasks print a `started` event when ready; else the target says one for each
    #: task ECS reports running (on AWS) and its `watch` does (locally).
    says_started: ClassVar[bool] = True
    #: Whether its tasks apply the run's client-side SQS faults from their environment
    #: (SQSLAB_SQS_FAULTS, sqslab.consumer.sqsfaults) where SQS takes none (AWS).
    applies_faults: ClassVar[bool] = False
    #: What its compute is billed as (sqslab.truth.cost): `tasks`, ECS Fargate tasks per
    #: vCPU and GB-hour of each task's life; `lambda`, a function's requests and GB-seconds.
    compute: ClassVar[str] = "tasks"

    @abstractmethod
    def describe(self) -> str:
        """What each task runs, in words (`sqslab plan`)."""

    @abstractmethod
    def facts(self) -> dict[str, Any]:
        """summary.json's `consumer`: its `kind` and what it runs."""

    def executes(self) -> dict[str, Any] | None:
        """A command of yours that runs on this machine as each task ({command, cwd}, and `as`:
        what each process is, when not a consumer task), which `validate` and `run` say before
        anything runs; None when it is sqslab's own."""
        return None

    def resolved(self) -> dict[str, Any]:
        """The consumer as `sqslab run --dry-run`-style output shows it (resolved.yaml)."""
        return self.facts()

    def notes(self, infra: Any) -> list[str]:
        """What `validate` notes of a valid scenario running it (infra: sqslab.scenario.model.Infra):
        advice its settings go against, which may be the experiment."""
        return []

    @property
    def folder(self) -> Path | None:
        """A folder of its own whose files a scenario may name (a phase's body_file), or None."""
        return None

    # ------------------------------------------------------------ a run

    @property
    def ready_timeout(self) -> float:
        """How long the runner waits for every task to be ready before t0."""
        return 60.0

    @property
    def readiness(self) -> str:
        """When a task counts as ready, in words, for the error when one is not; "" for a `started` event."""
        return ""

    @property
    def stop_grace(self) -> float | None:
        """SIGTERM to SIGKILL when its tasks stop (None: the runner's)."""
        return None

    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The kind's own part of every task's environment: the container environment of its
        task definition on AWS (beside the queue URL and region the stack sets), the scenario's
        settings for it locally."""

    @abstractmethod
    def local_task(self, task_id: str, endpoints: Endpoints) -> LocalTask:
        """How task `task_id` starts on this machine against the run's queues (see task_env)."""

    def watcher(self, journal: Path) -> TaskWatch | None:
        """What watches its tasks locally (readiness, the journal), or None."""
        return None

    @abstractmethod
    def revised(self, changes: dict[str, Any]) -> Consumer:
        """The consumer after a `set_consumer` action with these (validated) parameters."""

    def revision_text(self, changes: dict[str, Any]) -> str:
        """What a `set_consumer` with these parameters changed, for the action's record."""
        return ", ".join(f"{k}={v}" for k, v in changes.items())

    def in_place(self, changes: dict[str, Any]) -> bool:
        """Whether a `set_consumer` with these parameters changes the running tasks as they
        are, with no new revision (a Lambda function's reserved concurrency, its mapping's
        state), rather than rolling them."""
        return False

    def live_state(self) -> tuple[str, dict[str, Any]] | None:
        """What its running tasks read of the settings `in_place` changes: (a file relative
        to the tasks' folder, its JSON content), or None when there are none."""
        return None

    # ------------------------------------------------------------ AWS

    @property
    def image(self) -> str | None:
        """The container image of its tasks on ECS; None: the project's consumer image in ECR."""
        return None

    def aws_problems(self) -> list[str]:
        """Why it cannot run on the aws target, if anything (the run stops before AWS is touched)."""
        return []

    def aws_notes(self) -> list[str]:
        """What `sqslab plan --target aws` says of it."""
        return []


class ConsumerKind(ABC):
    """A kind of consumer, registered through `register_consumer_kinds`."""

    #: Its registered name (summary.json's consumer.kind).
    name: ClassVar[str]
    #: The section of `consumer:` that selects it (`consumer.<key>`); None: the default kind.
    key: ClassVar[str | None]
    #: Actions a scenario of this kind cannot have (its checks say why); a hunt never draws them.
    refused_actions: ClassVar[frozenset[str]] = frozenset()

    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema of `consumer.<key>` (None for the default kind, whose settings are rows of the table)."""
        return None

    def sections(self) -> dict[str, dict[str, Any]]:
        """The sections of `consumer:` that belong to it, with their schemas: `consumer.<key>`,
        and any beside it that only it reads (consumer.lambda's `event_source`)."""
        section = self.schema()
        return {self.key: section} if self.key is not None and section is not None else {}

    def problems(self, doc: Document, data: dict[str, Any]) -> list[Problem]:
        """What is wrong, beyond the schema, with a scenario (all of it) that runs this kind."""
        return []

    @abstractmethod
    def resolve(self, consumer: dict[str, Any], scenario_path: str, seed: int | None) -> Consumer:
        """The consumer of a valid scenario's `consumer` section; relative paths from the scenario's folder."""

    def absolute_paths(self, section: Any, folder: Path) -> Any:
        """`consumer.<key>` with its relative paths made absolute against folder (a hunt's
        variations run from another directory)."""
        return section

    def revision_schema(self) -> dict[str, Any]:
        """The `set_consumer` parameters it takes, as JSON Schema properties (its problems say
        when a scenario gives another kind's)."""
        return {}

    def draw_revision(self, rng: random.Random, facts: Any, draw: Callable[[str], Any]) -> dict[str, Any]:
        """Valid `set_consumer` parameters for a hunt's variation (facts: sqslab.hunt.space.Facts;
        `draw(key)` draws a value for a setting of the table as the hunt does)."""
        return {}


#: What `register_consumer_kinds` hands each plugin: `register(kind, description=...)`.
Register = Callable[..., None]


def kind_of(consumer: Mapping[str, Any] | None, kinds: Mapping[str, ConsumerKind]) -> ConsumerKind:
    """The kind a `consumer` section selects: the one whose key it has, else the default."""
    section = consumer if isinstance(consumer, Mapping) else {}
    for kind in kinds.values():
        if kind.key is not None and kind.key in section:
            return kind
    return default_kind(kinds)


def default_kind(kinds: Mapping[str, ConsumerKind]) -> ConsumerKind:
    """The kind without a key (the built-in consumer)."""
    for kind in kinds.values():
        if kind.key is None:
            return kind
    raise LookupError("no default consumer kind is registered (sqslab.consumers.builtin)")


def knobs_beside(doc: Document, consumer: Mapping[str, Any], key: str, hint: str) -> list[Problem]:
    """A problem for each key of `consumer` beside a kind's `key`: the built-in consumer's
    knobs do nothing to another kind; `hint` says what does."""
    return [doc.problem(("consumer", other), f"{other} is a knob of the built-in consumer and does nothing to consumer.{key}; {hint}")
            for other in consumer if other != key]


def sdk_env(region: str) -> dict[str, str]:
    """What any AWS SDK reads, for a task on this machine: dummy credentials, the region,
    no config files of yours; sqslab's own SQSLAB_* settings in your environment are not
    the task's."""
    return {k: v for k, v in emulator_env(region=region).items() if not k.startswith("SQSLAB_")}


def task_env(endpoints: Endpoints, task_id: str) -> dict[str, str]:
    """What sqslab tells every local task: its access key id (by which the SQS journal tells
    the tasks apart), the endpoint, the queues and its task id (docs/contracts.md)."""
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_PREFIX + task_id, ENV_QUEUE_URL: endpoints.queue_url, ENV_TASK_ID: task_id}
    if endpoints.endpoint_url:
        env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_SQS"] = endpoints.endpoint_url
    if endpoints.dlq_url:
        env[ENV_DLQ_URL] = endpoints.dlq_url
    if endpoints.effects_url:
        env[ENV_EFFECTS_URL] = endpoints.effects_url
    if endpoints.effects_table:
        env[ENV_EFFECTS_TABLE] = endpoints.effects_table
    return env


def env_text(value: Any) -> str:
    """An environment variable's value as a scenario writes it (true/false for booleans)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
