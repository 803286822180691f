"""Your own consumer program (`consumer.program`): what each task runs instead of the
built-in consumer, and how sqslab accounts for it.

A program knows nothing of sqslab. It gets what any AWS SDK reads (the endpoint, the
region, credentials of its own: the access key id names its task in the emulator's
journal) and `SQSLAB_QUEUE_URL`, `SQSLAB_DLQ_URL`, `SQSLAB_TASK_ID`, plus its scenario's
`program.env` (docs/contracts.md, "A consumer program's environment"). A task counts as
started when a line of its output contains `ready.log`, `ready.delay` after its process
started, or by default at its first ReceiveMessage call as the journal shows; the runner
waits for that before t0, as for the built-in consumer's `started` event. Its messages'
fates come from the SQS journal (locally), checked against the event lines it prints if
it prints them. sqslab.consumers.program_checks says, before the run, why its command cannot start.
On the aws target it is `program.image`, with `program.env` as its container environment.
"""

from __future__ import annotations

import random
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqslab.consumer.events import PROGRAM_EVENTS
from sqslab.consumers import Consumer, ConsumerKind, LocalTask, TaskWatch, env_text, sdk_env, task_env
from sqslab.consumers.program_checks import program_problems
from sqslab.contracts import seq_of
from sqslab.hookspecs import hookimpl
from sqslab.rundir import JsonTail
from sqslab.scenario.document import scenario_folder
from sqslab.scenario.units import parse_duration

if TYPE_CHECKING:
    from sqslab.contracts import Endpoints
    from sqslab.scenario.document import Document, Problem

#: The most bytes of a task's output read per look for the ready line.
READ_CHUNK = 1 << 20


@dataclass
class _Watch:
    started: float  # monotonic
    files: tuple[Path, Path]
    offsets: list[int] = field(default_factory=lambda: [0, 0])
    carry: list[bytes] = field(default_factory=lambda: [b"", b""])


class ProgramWatch(TaskWatch):
    """What sqslab learns of a program's tasks as the run goes: when each is ready (a
    `started` event per task, once), and, from the SQS journal, each delete a task makes
    (`sqs_delete` events, source `sqs`: the live `processed` counter and the age of the
    oldest unfinished message), until the program tells its own story in event lines."""

    def __init__(self, program: Any, journal: Path) -> None:
        self._log = program.ready_log.encode() if program.ready_log else None
        self._delay = program.ready_delay
        self._journal = JsonTail(journal)
        self._waiting: dict[str, _Watch] = {}
        self._ready: set[str] = set()
        self._polling: set[str] = set()  # tasks the journal shows polling (default criterion)
        self.tells = False  # the program prints sqslab's event lines: its deletes need no telling

    @property
    def how(self) -> str:
        """The criterion, for the event."""
        return "log" if self._log is not None else "delay" if self._delay is not None else "first receive call"

    def watch(self, task_id: str, started: float, out: Path, err: Path) -> None:
        """A task started: watch it until it is ready."""
        if task_id not in self._ready and task_id not in self._waiting:
            self._waiting[task_id] = _Watch(started, (out, err))

    def poll(self, told: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`started` events of the tasks that became ready, and `sqs_delete` events of the
        deletes tasks made, since the last call (none once the tasks `told` of a receive)."""
        self.tells = self.tells or any(e.get("event") == "received" for e in told)
        events = []
        for line in self._journal.read():
            op, by = line.get("op"), str(line.get("by"))
            if op == "first_call" and line.get("api") == "ReceiveMessage":
                self._polling.add(by)
            elif op == "delete" and "id" in line and by.startswith("task-") and not self.tells:
                ident = str(line["id"])
                events.append({"ts": line.get("ts"), "event": "sqs_delete", "source": "sqs", "id": ident, "seq": seq_of(ident),
                               "task": by, "message_id": line.get("mid")})
        if not self._waiting:
            return events
        now = time.monotonic()
        for task_id, watch in list(self._waiting.items()):
            if self._is_ready(task_id, watch, now):
                del self._waiting[task_id]
                self._ready.add(task_id)
                events.append({"ts": time.time(), "event": "started", "task": task_id, "source": "consumer", "ready": self.how})
        return events

    def _is_ready(self, task_id: str, watch: _Watch, now: float) -> bool:
        if self._delay is not None:
            return now - watch.started >= self._delay
        if self._log is None:
            return task_id in self._polling
        for i, path in enumerate(watch.files):
            try:
                with path.open("rb") as handle:
                    handle.seek(watch.offsets[i])
                    chunk = handle.read(READ_CHUNK)
            except OSError:
                continue
            watch.offsets[i] += len(chunk)
            text = watch.carry[i] + chunk
            if self._log in text:
                return True
            watch.carry[i] = text[-len(self._log):]
        return False


#: What the stack sets in a task's environment itself (terraform/variables.tf, consumer_env).
RESERVED_ENV = ("SQSLAB_QUEUE_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

#: The JSON Schema of `consumer.program`.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "description": "Your own consumer program, run as each consumer task instead of the built-in consumer.",
    "properties": {
        "command": {"oneOf": [{"type": "string", "minLength": 1},
                              {"type": "array", "items": {"type": "string"}, "minItems": 1}],
                    "description": "The program: a list (argv), or a string split like a shell would."},
        "cwd": {"type": "string", "description": "Its working directory, relative to the scenario file (default: the scenario's)."},
        "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "Its own environment variables (besides the SDK settings and SQSLAB_* sqslab gives)."},
        "ready": {"type": "object", "additionalProperties": False,
                  "description": "When a task counts as started: a line in its output, or a delay "
                                 "(default: its first receive, as the SQS journal shows); and how long to wait for it.",
                  "properties": {"log": {"type": "string", "minLength": 1, "description": "Text a line of its output contains."},
                                 "timeout": {"$ref": "#/$defs/duration", "description": "How long to wait for it (default 60s)."},
                                 "delay": {"$ref": "#/$defs/duration", "description": "Started this long after its process."}}},
        "stop_grace": {"$ref": "#/$defs/duration", "default": "10s",
                       "description": "How long a stopped task has after SIGTERM before SIGKILL."},
        "image": {"type": "string", "minLength": 1, "description": "The aws target: the container image of the program."},
    },
}


@dataclass(frozen=True)
class Program(Consumer):
    """The user's own consumer program (`consumer.program`): what each task runs."""

    command: tuple[str, ...]
    cwd: str  # absolute
    env: dict[str, str] = field(default_factory=dict)
    ready_log: str | None = None  # a line of its output containing this: started
    ready_delay: float | None = None  # or: started this long after its process
    ready_timeout: float = 60.0  # ready.timeout
    stop_grace: float = 10.0  # SIGTERM to SIGKILL
    image: str | None = None  # the aws target's container image
    revision_env: dict[str, str] = field(default_factory=dict)  # what set_consumer added to env

    kind: ClassVar[str] = "program"
    needs_emulator: ClassVar[str | None] = ("consumer.program needs the embedded emulator, whose journal accounts for a "
                                            "program's messages: run without --endpoint-url")
    # The consumer events read from its output (docs/contracts.md); any other JSON line is its own log.
    events: ClassVar[frozenset[str] | None] = PROGRAM_EVENTS
    says_started: ClassVar[bool] = False

    @property
    def text(self) -> str:
        """The command as a person would type it."""
        return shlex.join(self.command)

    def describe(self) -> str:
        """The command and its folder."""
        return f"`{self.text}` in {self.cwd}"

    def facts(self) -> dict[str, Any]:
        """Its command, folder and image."""
        return {"kind": "program", "command": self.text, "cwd": self.cwd, "image": self.image}

    def executes(self) -> dict[str, Any]:
        """Its command runs on this machine."""
        return {"command": list(self.command), "cwd": self.cwd}

    def resolved(self) -> dict[str, Any]:
        """Every field."""
        return {"kind": self.kind, **asdict(self)}

    @property
    def folder(self) -> Path:
        """Its working directory: a phase's body_file may be there."""
        return Path(self.cwd)

    @property
    def readiness(self) -> str:
        """When a task counts as started, in words."""
        if self.ready_log is not None:
            return f"a line of its output containing {self.ready_log!r}"
        if self.ready_delay is not None:
            return f"{self.ready_delay:g}s after it starts"
        return "its first ReceiveMessage call"

    def environment(self) -> dict[str, str]:
        """program.env, and what set_consumer added."""
        return {**self.env, **self.revision_env}

    def local_task(self, task_id: str, endpoints: Endpoints) -> LocalTask:
        """Its command in its cwd; no real AWS identity, the SDK settings for the run's
        endpoint and region, the queues, its task id, then the scenario's variables."""
        env = {**sdk_env(endpoints.region), **task_env(endpoints, task_id), **self.environment()}
        return LocalTask(list(self.command), env, Path(self.cwd))

    def watcher(self, journal: Path) -> ProgramWatch:
        """Readiness, and the live deletes from the journal."""
        return ProgramWatch(self, journal)

    def revised(self, changes: dict[str, Any]) -> Program:
        """`env` added to its environment."""
        env = {str(k): env_text(v) for k, v in (changes.get("env") or {}).items()}
        return replace(self, revision_env={**self.revision_env, **env})

    def revision_text(self, changes: dict[str, Any]) -> str:
        """The variables set."""
        return ", ".join(f"{k}={env_text(v)}" for k, v in (changes.get("env") or {}).items())

    def aws_problems(self) -> list[str]:
        """Its image, and environment names Terraform takes."""
        if not self.image:
            return [("consumer.program needs program.image on the aws target: the image ECS runs as each task "
                     "(an ECR URI such as 123456789012.dkr.ecr.us-west-1.amazonaws.com/my-worker:1.4)")]
        bad = sorted(k for k in self.env if not re.fullmatch(r"[A-Z][A-Z0-9_]*", k) or k in RESERVED_ENV)
        if bad:
            return [(f"program.env on the aws target takes upper-case names other than {', '.join(RESERVED_ENV)}: "
                     f"not {', '.join(bad)}")]
        return []

    def aws_notes(self) -> list[str]:
        """What `sqslab plan --target aws` says of it (docs/aws.md)."""
        return [f"each task runs your image {self.image} with program.env as its environment (and SQSLAB_QUEUE_URL, AWS_REGION)",
                "a task counts as started when ECS reports it running (ready.log and ready.delay apply on the local target)",
                ("there is no SQS journal on AWS: fates come from the program's sqslab event lines in CloudWatch Logs if it "
                 "prints them, else from the queues at the end (receives, duplicates and latencies are then unavailable)")]


def resolve_program(raw: dict[str, Any], scenario_path: str) -> Program:
    """`consumer.program` (assumed valid), its cwd made absolute against the scenario's folder."""
    command = raw["command"]
    argv = tuple(shlex.split(command) if isinstance(command, str) else command)
    base = scenario_folder(scenario_path)
    ready = raw.get("ready") or {}
    return Program(
        command=argv,
        cwd=str((base / raw.get("cwd", ".")).resolve()),
        env={str(k): env_text(v) for k, v in (raw.get("env") or {}).items()},
        ready_log=ready.get("log"),
        ready_delay=parse_duration(ready["delay"]) if "delay" in ready else None,
        ready_timeout=parse_duration(ready["timeout"]) if "timeout" in ready else 60.0,
        stop_grace=parse_duration(raw.get("stop_grace", "10s")),
        image=raw.get("image"),
    )


class ProgramKind(ConsumerKind):
    """`consumer.program`: your own consumer."""

    name: ClassVar[str] = "program"
    key: ClassVar[str | None] = "program"

    def schema(self) -> dict[str, Any]:
        """SCHEMA."""
        return SCHEMA

    def problems(self, doc: Document, data: dict[str, Any]) -> list[Problem]:
        """Its readiness, command and folder; `set_consumer` takes `env` (sqslab.consumers.program_checks)."""
        return program_problems(doc, data)

    def revision_schema(self) -> dict[str, Any]:
        """`env`."""
        return {"env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}, "minProperties": 1,
                        "description": "consumer.program: environment variables the new revision's tasks get (added to program.env)."}}

    def resolve(self, consumer: dict[str, Any], scenario_path: str, seed: int | None) -> Program:
        """Its section."""
        return resolve_program(consumer["program"], scenario_path)

    def absolute_paths(self, section: Any, folder: Path) -> Any:
        """Its cwd, and the files its command names, absolute."""
        if not isinstance(section, dict):
            return section
        cwd = (folder / str(section.get("cwd", "."))).resolve()
        command = section.get("command")
        argv = shlex.split(command) if isinstance(command, str) else list(command or [])
        return {**section, "cwd": str(cwd),
                "command": [str((cwd / a).resolve()) if not a.startswith("-") and not Path(a).is_absolute() and (cwd / a).is_file()
                            else a for a in argv]}

    def draw_revision(self, rng: random.Random, facts: Any, draw: Callable[[str], Any]) -> dict[str, Any]:
        """A rollout of the same program: a new revision's tasks, with a variable it ignores."""
        return {"env": {"SQSLAB_HUNT_REVISION": str(rng.randint(1, 999))}}


KIND = ProgramKind()


@hookimpl
def register_consumer_kinds(register: Callable[..., None]) -> None:
    """Register `consumer.program`."""
    register(KIND, description="your own consumer program (consumer.program), accounted for by the SQS journal")
