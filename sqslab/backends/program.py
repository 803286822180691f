"""The user's own consumer program as a local task: its environment, and when it is ready.

A program knows nothing of sqslab. It gets what any AWS SDK reads (the endpoint, the
region, credentials of its own: the access key id names its task in the emulator's
journal) and `SQSLAB_QUEUE_URL`, `SQSLAB_DLQ_URL`, `SQSLAB_TASK_ID`, plus its scenario's
`program.env` (docs/contracts.md, "A consumer program's environment"). A task counts as
started when a line of its output contains `ready.log`, `ready.delay` after its process
started, or by default at its first ReceiveMessage call as the journal shows; the runner
waits for that before t0, as for the built-in consumer's `started` event.
`check_command` says, before the run, why a program's command cannot start.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqslab.backends import Endpoints
from sqslab.contracts import ACCESS_KEY_PREFIX, ENV_DLQ_URL, ENV_QUEUE_URL, ENV_TASK_ID, seq_of
from sqslab.credentials import emulator_env
from sqslab.rundir import JsonTail

#: The consumer events sqslab reads from a program's output (docs/contracts.md); any other
#: JSON line a program prints is its own log.
EVENTS = frozenset({"started", "received", "processed", "failed", "duplicate_skipped", "delete_failed", "crashed",
                    "abandoned", "released", "poll_error", "retried", "api_error", "stopped"})
#: The most bytes of a task's output read per look for the ready line.
READ_CHUNK = 1 << 20


def program_env(endpoints: Endpoints, program: Any, task_id: str, extra: dict[str, str]) -> dict[str, str]:
    """A program task's environment: no real AWS identity, the SDK settings for the run's
    endpoint and region, the queues, its task id, and the scenario's variables."""
    env = {k: v for k, v in emulator_env(region=endpoints.region).items() if not k.startswith("SQSLAB_")}
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY_PREFIX + task_id  # the journal's caller: this task
    if endpoints.endpoint_url:
        env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_SQS"] = endpoints.endpoint_url
    env.update({ENV_QUEUE_URL: endpoints.queue_url, ENV_TASK_ID: task_id})
    if endpoints.dlq_url:
        env[ENV_DLQ_URL] = endpoints.dlq_url
    env.update(program.env)
    env.update(extra)
    return env


def check_command(program: Any) -> str | None:
    """Why a task could not start `program.command` (an argv), or None: as the task will
    look for it, a name with a slash from the program's cwd, a bare name on the task's PATH
    (`program.env`'s, or sqslab's own; a relative entry from the cwd), with `shutil.which`
    semantics. The message names the path searched."""
    argv = list(program.command)
    if not argv:
        return "consumer.program.command is empty"
    cwd = Path(program.cwd)
    if not cwd.is_dir():
        return f"consumer.program.cwd: no directory {cwd}"
    name = argv[0]
    if "/" in name:
        path = cwd / name  # an absolute name stays itself
        if not path.exists():
            return f"consumer.program.command: `{name}` not found: no file {path}"
        if path.is_dir():
            return f"consumer.program.command: `{name}` is a directory: {path}"
        if not os.access(path, os.X_OK):
            return (f"consumer.program.command: `{name}`: {path} is not executable "
                    "(chmod +x it, or name its interpreter first)")
        return None
    search = (program.env or {}).get("PATH", os.environ.get("PATH", os.defpath))
    # The task looks from its own cwd: so do relative entries here ("" is the cwd itself).
    entries = [str(cwd / entry) if entry else str(cwd) for entry in search.split(os.pathsep)]
    if shutil.which(name, path=os.pathsep.join(entries)) is None:
        return f"consumer.program.command: `{name}` is not on the task's PATH (searched {search})"
    return None


def ecs_started(count: int) -> list[dict[str, Any]]:
    """On ECS a program says nothing of its start: `started` events for the `count` tasks ECS
    reports running."""
    now = time.time()
    return [{"ts": now, "event": "started", "task": f"ecs-{i + 1}", "source": "consumer", "ready": "ECS reports it running"}
            for i in range(count)]


@dataclass
class _Watch:
    started: float  # monotonic
    files: tuple[Path, Path]
    offsets: list[int] = field(default_factory=lambda: [0, 0])
    carry: list[bytes] = field(default_factory=lambda: [b"", b""])


class ProgramWatch:
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

    def poll(self) -> list[dict[str, Any]]:
        """`started` events of the tasks that became ready, and `sqs_delete` events of the
        deletes tasks made, since the last call."""
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
