"""A Lambda function behind an SQS event source mapping (`consumer.lambda` and
`consumer.event_source`): what runs instead of consumer tasks.

Locally the one task is the mapping (sqslab.lambdas.mapping): it polls the queue, runs your
handler in execution environments of its own (processes of the runtime interface client
AWS ships) and tells every receive, success and failure as consumer events, with an
`invocation` event per invocation (docs/contracts.md). `validate` refuses what Lambda
refuses of such a mapping (sqslab.consumers.lambda_checks).
"""

from __future__ import annotations

import random
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqslab.consumer.events import LAMBDA_EVENTS
from sqslab.consumers import Consumer, ConsumerKind, LocalTask, env_text, sdk_env, task_env
from sqslab.contracts import ACCESS_KEY_PREFIX
from sqslab.hookspecs import hookimpl
from sqslab.scenario.document import scenario_folder
from sqslab.scenario.units import parse_duration

if TYPE_CHECKING:
    from sqslab.contracts import Endpoints
    from sqslab.scenario.document import Document, Problem

#: The runtimes a scenario may name (the local environment runs the Python that runs sqslab).
RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")

#: The JSON Schema of `consumer.lambda`.
LAMBDA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["handler", "code"],
    "description": "A Lambda function that consumes the queue through an SQS event source mapping.",
    "properties": {
        "handler": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$",
                    "description": "module.function, imported from `code`."},
        "code": {"type": "string", "minLength": 1, "description": "The function's folder, relative to the scenario file."},
        "runtime": {"enum": list(RUNTIMES), "default": "python3.11",
                    "description": "The runtime on AWS; locally the environment runs the Python that runs sqslab, `code` "
                                   "first on its path."},
        "timeout": {"$ref": "#/$defs/duration", "default": "3s", "description": "The function timeout (1s to 15m)."},
        "memory": {"type": "integer", "minimum": 128, "maximum": 10240, "default": 128,
                   "description": "Memory in MB (128 to 10,240); an environment that uses more is killed."},
        "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "The function's environment variables."},
        "reserved_concurrency": {"type": "integer", "minimum": 0, "maximum": 1000,
                                 "description": "Reserved concurrency: invocations beyond it are throttled (0: none run)."},
    },
}

#: The JSON Schema of `consumer.event_source`.
EVENT_SOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "The SQS event source mapping of consumer.lambda.",
    "properties": {
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10,
                       "description": "The most messages per invocation (above 10 needs a batching window; FIFO: 10)."},
        "batching_window": {"$ref": "#/$defs/duration", "default": "0s",
                            "description": "How long the mapping gathers messages before it invokes (0s to 5m; not on FIFO)."},
        "report_batch_item_failures": {"type": "boolean", "default": False,
                                       "description": "Partial batch responses: only the batchItemFailures come back."},
        "max_concurrency": {"type": "integer", "minimum": 2, "maximum": 1000,
                            "description": "The most concurrent invocations the mapping makes (2 to 1,000)."},
    },
}


#: set_consumer keys that change the running function and mapping, with no new version.
IN_PLACE = frozenset({"reserved_concurrency", "enabled", "max_concurrency"})


@dataclass(frozen=True)
class LambdaConsumer(Consumer):
    """A function and its event source mapping, as a scenario resolved them."""

    handler: str
    code: str  # absolute
    runtime: str = "python3.11"
    timeout: float = 3.0
    memory: int = 128
    env: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    max_concurrency: int | None = None
    enabled: bool = True  # the event source mapping polls (set_consumer `enabled: false` disables it)
    version: int = 1
    name: str = "sqslab-consumer"

    kind: ClassVar[str] = "lambda"
    events: ClassVar[frozenset[str] | None] = LAMBDA_EVENTS
    compute: ClassVar[str] = "lambda"

    def describe(self) -> str:
        """The function and its mapping."""
        partial = ", partial batch responses" if self.report_batch_item_failures else ""
        return (f"Lambda {self.handler} from {self.code} ({self.memory} MB, timeout {self.timeout:g}s) behind an SQS event "
                f"source mapping (batch size {self.batch_size}{partial})")

    def facts(self) -> dict[str, Any]:
        """summary.json's `consumer`."""
        return {"kind": "lambda", "handler": self.handler, "code": self.code, "runtime": self.runtime, "timeout": self.timeout,
                "memory": self.memory, "batch_size": self.batch_size, "batching_window": self.batching_window,
                "report_batch_item_failures": self.report_batch_item_failures, "max_concurrency": self.max_concurrency,
                "reserved_concurrency": self.reserved_concurrency, "version": self.version}

    def notes(self, infra: Any) -> list[str]:
        """AWS's advice: a visibility timeout of at least 6 x the function timeout; and a
        max_concurrency above the local cap on environments, which the local run keeps to."""
        from sqslab.lambdas.mapping import ENV_MAX_ENVIRONMENTS, local_cap

        notes = []
        if infra.visibility_timeout < 6 * self.timeout:
            notes.append(f"infra.queue.visibility_timeout {infra.visibility_timeout:g}s is under 6 x the function timeout "
                         f"({self.timeout:g}s), which AWS advises for an SQS event source mapping: a batch whose invocation is "
                         "retried or throttled can become visible again while it is still being handled (redeliveries, duplicates)")
        try:
            cap = local_cap()
        except ValueError as exc:
            return [*notes, str(exc)]
        if self.max_concurrency is not None and self.max_concurrency > cap:
            notes.append(f"event_source.max_concurrency {self.max_concurrency} is above the local cap of {cap} execution "
                         f"environments: on the local target at most {cap} invocations run at once (set {ENV_MAX_ENVIRONMENTS} "
                         "to raise the cap; each environment is a process)")
        return notes

    def executes(self) -> dict[str, Any]:
        """Your handler's module is imported on this machine."""
        return {"command": [sys.executable, "-m", "awslambdaric", self.handler], "cwd": self.code,
                "as": "Lambda execution environment"}

    def resolved(self) -> dict[str, Any]:
        """Every field."""
        return {"kind": self.kind, **asdict(self)}

    @property
    def folder(self) -> Path:
        """The function's code: a phase's body_file may be there."""
        return Path(self.code)

    @property
    def stop_grace(self) -> float:
        """In-flight invocations finish (within the function timeout) before the mapping ends."""
        return self.timeout + 10.0

    def environment(self) -> dict[str, str]:
        """The function's environment variables."""
        return dict(self.env)

    def mapping_config(self, endpoints: Endpoints, task_id: str) -> Any:
        """The mapping's settings for task `task_id` (sqslab.lambdas.mapping.MappingConfig)."""
        from sqslab.lambdas.environment import Function
        from sqslab.lambdas.mapping import MappingConfig, local_cap

        function = Function(self.name, self.handler, Path(self.code), self.timeout, self.memory, endpoints.region,
                            self.environment(), str(self.version))
        function_env = {**sdk_env(endpoints.region), **task_env(endpoints, task_id),
                        "AWS_ACCESS_KEY_ID": f"{ACCESS_KEY_PREFIX}{task_id}-function"}
        return MappingConfig(function, endpoints.queue_url, self.batch_size, self.batching_window,
                             self.report_batch_item_failures, self.max_concurrency, self.reserved_concurrency,
                             max_environments=local_cap(), logs=Path("lambda") / task_id, environment_env=function_env,
                             enabled=self.enabled)

    def local_task(self, task_id: str, endpoints: Endpoints) -> LocalTask:
        """The mapping, with this interpreter; its environments log in RUN_DIR/tasks/lambda/<task>/;
        `kill_consumer` kills one of its environments mid-invocation (SIGUSR1)."""
        from sqslab.lambdas.mapping import ENV_CONFIG

        env = {**sdk_env(endpoints.region), **task_env(endpoints, task_id), "PYTHONUNBUFFERED": "1",
               ENV_CONFIG: self.mapping_config(endpoints, task_id).to_json()}
        return LocalTask([sys.executable, "-m", "sqslab.lambdas.mapping"], env, kill_signal=signal.SIGUSR1)

    def revised(self, changes: dict[str, Any]) -> LambdaConsumer:
        """A new version for env added, timeout, memory; reserved concurrency and the
        mapping's `enabled` and `max_concurrency` change in place (no version, as on AWS)."""
        env = {**self.env, **{str(k): env_text(v) for k, v in (changes.get("env") or {}).items()}}
        timeout = parse_duration(changes["timeout"]) if "timeout" in changes else self.timeout
        version = self.version if self.in_place(changes) else self.version + 1
        return replace(self, env=env, timeout=timeout, memory=changes.get("memory", self.memory),
                       reserved_concurrency=changes.get("reserved_concurrency", self.reserved_concurrency),
                       enabled=changes.get("enabled", self.enabled),
                       max_concurrency=changes.get("max_concurrency", self.max_concurrency), version=version)

    def in_place(self, changes: dict[str, Any]) -> bool:
        """Reserved concurrency (PutFunctionConcurrency) and the mapping's state and
        concurrency (UpdateEventSourceMapping) change the running function and mapping."""
        return bool(changes) and set(changes) <= IN_PLACE

    def live_state(self) -> tuple[str, dict[str, Any]]:
        """The file the mapping watches (sqslab.lambdas.mapping.LIVE_FILE) and its content."""
        from sqslab.lambdas.mapping import LIVE_FILE

        return str(LIVE_FILE), {"enabled": self.enabled, "reserved_concurrency": self.reserved_concurrency,
                                "max_concurrency": self.max_concurrency}

    def aws_problems(self) -> list[str]:
        """What Lambda takes in whole seconds (the runtimes are RUNTIMES, those of the schema)."""
        problems = []
        if self.timeout != int(self.timeout):
            problems.append(f"consumer.lambda.timeout {self.timeout:g}s: Lambda takes whole seconds")
        if self.batching_window != int(self.batching_window):
            problems.append(f"consumer.event_source.batching_window {self.batching_window:g}s: Lambda takes whole seconds")
        return problems

    def aws_notes(self) -> list[str]:
        """The package, the entry in front of the handler, what AWS cannot do that the local target does."""
        return [(f"the function's package is {self.code} zipped as it is, with sqslab's entry (sqslab_entry.handler, "
                f"which calls {self.handler} and logs what became of each record); vendor dependencies into the folder "
                "(pip install -t) or give a layer"),
                "kill_consumer is refused: nothing on AWS ends a Lambda execution environment mid-invocation"]


def resolve_lambda(consumer: dict[str, Any], scenario_path: str) -> LambdaConsumer:
    """`consumer.lambda` and `consumer.event_source` (assumed valid), code made absolute."""
    raw, source = consumer["lambda"], consumer.get("event_source") or {}
    return LambdaConsumer(
        handler=raw["handler"],
        code=str((scenario_folder(scenario_path) / raw["code"]).resolve()),
        runtime=raw.get("runtime", "python3.11"),
        timeout=parse_duration(raw.get("timeout", "3s")),
        memory=int(raw.get("memory", 128)),
        env={str(k): env_text(v) for k, v in (raw.get("env") or {}).items()},
        reserved_concurrency=raw.get("reserved_concurrency"),
        batch_size=int(source.get("batch_size", 10)),
        batching_window=parse_duration(source.get("batching_window", "0s")),
        report_batch_item_failures=bool(source.get("report_batch_item_failures", False)),
        max_concurrency=source.get("max_concurrency"),
    )


class LambdaKind(ConsumerKind):
    """`consumer.lambda`: a Lambda function behind an SQS event source mapping."""

    name: ClassVar[str] = "lambda"
    key: ClassVar[str | None] = "lambda"
    refused_actions: ClassVar[frozenset[str]] = frozenset({"scale"})  # the mapping scales itself

    def schema(self) -> dict[str, Any]:
        """LAMBDA_SCHEMA."""
        return LAMBDA_SCHEMA

    def sections(self) -> dict[str, dict[str, Any]]:
        """consumer.lambda and consumer.event_source."""
        return {"lambda": LAMBDA_SCHEMA, "event_source": EVENT_SOURCE_SCHEMA}

    def problems(self, doc: Document, data: dict[str, Any]) -> list[Problem]:
        """What Lambda refuses of the function and its mapping (sqslab.consumers.lambda_checks)."""
        from sqslab.consumers.lambda_checks import lambda_problems

        return lambda_problems(doc, data)

    def revision_schema(self) -> dict[str, Any]:
        """env, timeout, memory; reserved_concurrency, enabled, max_concurrency (in place)."""
        return {
            "timeout": {"$ref": "#/$defs/duration", "description": "consumer.lambda: the new version's function timeout."},
            "memory": {"type": "integer", "minimum": 128, "maximum": 10240,
                       "description": "consumer.lambda: the new version's memory (MB)."},
            "reserved_concurrency": {"type": "integer", "minimum": 0, "maximum": 1000,
                                     "description": "consumer.lambda: reserved concurrency from now on (0 throttles every invocation); "
                                                    "in place, no new version."},
            "enabled": {"type": "boolean", "description": "consumer.lambda: false disables the event source mapping (it stops "
                                                          "polling; invocations in progress finish), true enables it again; in place."},
            "max_concurrency": {"type": "integer", "minimum": 2, "maximum": 1000,
                                "description": "consumer.lambda: the mapping's maximum concurrency from now on; in place."},
        }

    def resolve(self, consumer: dict[str, Any], scenario_path: str, seed: int | None) -> LambdaConsumer:
        """Its two sections."""
        return resolve_lambda(consumer, scenario_path)

    def absolute_paths(self, section: Any, folder: Path) -> Any:
        """Its code folder, absolute."""
        if isinstance(section, dict) and isinstance(section.get("code"), str):
            return {**section, "code": str((folder / section["code"]).resolve())}
        return section

    def draw_revision(self, rng: random.Random, facts: Any, draw: Callable[[str], Any]) -> dict[str, Any]:
        """A new version with more memory, or reserved concurrency changed."""
        return rng.choice([{"memory": rng.choice([256, 512])}, {"reserved_concurrency": rng.randint(0, 5)},
                           {"enabled": rng.random() < 0.5}, {"max_concurrency": rng.randint(2, 6)}])


KIND = LambdaKind()


@hookimpl
def register_consumer_kinds(register: Callable[..., None]) -> None:
    """Register `consumer.lambda`."""
    register(KIND, description="a Lambda function behind an SQS event source mapping (consumer.lambda, consumer.event_source)")
