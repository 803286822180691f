"""Consumer processes supervised the way an ECS service keeps its tasks.

The supervisor keeps the desired count: a task that dies (crash knob, kill action) is
replaced after the restart delay; scale-in sends SIGTERM so a task finishes the message
in hand; a new revision (`set_consumer`) starts tasks with the new environment and then
stops the old ones, as a rolling ECS deployment does. Each task's stdout is its event
stream (docs/contracts.md), read incrementally from `RUN_DIR/tasks/<id>.out`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.backends import Log, TaskCounts
from sqslab.processes import die_with_parent, send_signal
from sqslab.rundir import JsonTail

# How long a task stopped with SIGTERM gets before SIGKILL, as ECS's stopTimeout.
STOP_TIMEOUT = 30.0
SUPERVISE_INTERVAL = 0.05


@dataclass
class _Task:
    id: str
    revision: int
    process: subprocess.Popen[bytes]
    started_at: float
    out_path: Path
    stopping: bool = False
    killed: bool = False
    stop_deadline: float | None = None
    exited: bool = False
    tail: JsonTail | None = None

    @property
    def active(self) -> bool:
        """Alive and neither stopping nor killed: it counts towards the desired count."""
        return not self.exited and not self.stopping and not self.killed


class Supervisor:
    """Keeps `desired` consumer processes of the current revision running.

    `command(task_id)` gives the argv and `environment(task_id)` the environment of a new
    task; both are read at each start, so a new revision takes effect for the next task.
    """

    def __init__(self, tasks_dir: Path, command: Callable[[str], list[str]], environment: Callable[[str], dict[str, str]],
                 restart_delay: float, log: Log, cwd: Path | None = None, stop_timeout: float = STOP_TIMEOUT,
                 events: frozenset[str] | None = None, on_start: Callable[[str, float, Path, Path], None] | None = None) -> None:
        """`cwd`: the tasks' working directory (default: tasks_dir); `stop_timeout`: SIGTERM
        to SIGKILL for a stopped task; `events`: the event names read from a task's output
        (None: every JSON line); `on_start(task_id, started, out, err)` on each start."""
        self._tasks_dir = tasks_dir
        self._cwd = cwd or tasks_dir
        self._stop_timeout = stop_timeout
        self._event_names = events
        self._on_start = on_start
        self._command, self._environment = command, environment
        self._restart_delay = restart_delay
        self._emit = log
        self._lock = threading.RLock()
        self._tasks: list[_Task] = []
        self._desired = 0
        self._revision = 0
        self._pending_starts: list[float] = []  # times at which replacements are due
        self._started = 0
        self._roll_pending = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, count: int) -> None:
        """Start supervising with `count` tasks wanted."""
        with self._lock:
            self._desired = count
        self._thread = threading.Thread(target=self._supervise, name="sqslab-supervisor", daemon=True)
        self._thread.start()

    def kill(self, count: int, rng: Any) -> list[str]:
        """SIGKILL `count` running tasks chosen at random (seeded); they are replaced."""
        with self._lock:
            candidates = [t for t in self._tasks if t.active]
            chosen = rng.sample(candidates, min(count, len(candidates)))
            for task in sorted(chosen, key=lambda t: t.id):
                task.killed = True
                send_signal(task.process, signal.SIGKILL)
            return sorted(t.id for t in chosen)

    def scale(self, to: int) -> None:
        """Set the desired count; surplus tasks get SIGTERM (newest first), missing ones start."""
        with self._lock:
            self._desired = to
            active = [t for t in self._tasks if t.active and t.revision == self._revision]
            surplus = len(active) + len(self._pending_starts) - to
            while surplus > 0 and self._pending_starts:
                self._pending_starts.pop()
                surplus -= 1
            for task in sorted(active, key=lambda t: t.started_at, reverse=True)[:max(0, surplus)]:
                self._stop_task(task)

    def roll(self) -> None:
        """A new revision: new tasks start from now on, then the old ones are stopped."""
        with self._lock:
            self._revision += 1
            self._pending_starts.clear()
            self._roll_pending = True

    def counts(self) -> TaskCounts:
        """Tasks running (alive, stopping ones included, like ECS's runningCount) and desired."""
        with self._lock:
            running = sum(1 for t in self._tasks if not t.exited)
            return TaskCounts(running, self._desired, self._started)

    def events(self) -> list[dict[str, Any]]:
        """Consumer events written since the last call, each tagged `source: consumer`."""
        with self._lock:
            tasks = list(self._tasks)
        events: list[dict[str, Any]] = []
        for task in tasks:
            events.extend(self._read_events(task, final=task.exited))
        events.sort(key=lambda e: e.get("ts", 0))
        return events

    def stop_all(self, grace: float) -> None:
        """Stop every task: SIGTERM, then SIGKILL after `grace` seconds; wait for all and
        for the supervising thread."""
        with self._lock:
            self._desired = 0
            self._pending_starts.clear()
            for task in self._tasks:
                if not task.exited:
                    self._stop_task(task, timeout=grace)
        deadline = time.monotonic() + grace + 5
        while time.monotonic() < deadline:
            with self._lock:
                if all(t.process.poll() is not None for t in self._tasks):
                    break
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for task in self._tasks:
                if task.process.poll() is None:
                    send_signal(task.process, signal.SIGKILL)
                    task.process.wait(timeout=5)
                self._reap(task)

    # ------------------------------------------------------------ the loop

    def _supervise(self) -> None:
        # Every task is started from this one thread: PR_SET_PDEATHSIG is tied to the
        # thread that forks, and it must outlive the tasks.
        while not self._stop.is_set():
            with self._lock:
                self._tick(time.monotonic())
            self._stop.wait(SUPERVISE_INTERVAL)

    def _tick(self, now: float) -> None:
        for task in self._tasks:
            if not task.exited and task.process.poll() is not None:
                self._reap(task)
            elif task.stop_deadline is not None and now > task.stop_deadline and task.process.poll() is None:
                send_signal(task.process, signal.SIGKILL)
                task.stop_deadline = None
        # A killed task counts until it is reaped; its replacement then waits the restart delay.
        current = [t for t in self._tasks if not t.exited and not t.stopping and t.revision == self._revision]
        for _ in range(max(0, self._desired - len(current) - len(self._pending_starts))):
            self._start_task()
        for at in [at for at in self._pending_starts if at <= now]:
            self._pending_starts.remove(at)
            self._start_task()
        if self._roll_pending:
            self._roll_pending = False
            for task in self._tasks:
                if task.revision < self._revision and not task.exited and not task.stopping:
                    self._stop_task(task)

    def _start_task(self) -> None:
        self._started += 1
        task_id = f"task-{self._started}"
        self._tasks_dir.mkdir(exist_ok=True)
        out_path, err_path = self._tasks_dir / f"{task_id}.out", self._tasks_dir / f"{task_id}.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            process = subprocess.Popen(
                self._command(task_id), env=self._environment(task_id), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                cwd=self._cwd, start_new_session=True, preexec_fn=die_with_parent(),
            )
        started = time.monotonic()
        self._tasks.append(_Task(task_id, self._revision, process, started, out_path))
        self._emit({"event": "task_started", "task": task_id, "revision": self._revision, "pid": process.pid})
        if self._on_start is not None:
            self._on_start(task_id, started, out_path, err_path)

    def _stop_task(self, task: _Task, timeout: float | None = None) -> None:
        if task.exited:
            return
        task.stopping = True
        task.stop_deadline = time.monotonic() + (self._stop_timeout if timeout is None else timeout)
        send_signal(task.process, signal.SIGTERM)
        self._emit({"event": "task_stopping", "task": task.id})

    def _reap(self, task: _Task) -> None:
        if task.exited:
            return
        code = task.process.poll()
        if code is None:
            return
        task.exited = True
        if task.killed:
            reason = "killed"
        elif task.stopping:
            reason = "stopped"
        elif code != 0:
            reason = "crashed"  # the built-in consumer's crash knob exits EXIT_CRASH; a program, anything but 0
        else:
            reason = "exited"
        self._emit({"event": "task_exited", "task": task.id, "exit_code": code, "reason": reason})
        if not task.stopping and task.revision == self._revision and not self._stop.is_set():
            self._pending_starts.append(time.monotonic() + self._restart_delay)

    def _read_events(self, task: _Task, final: bool) -> list[dict[str, Any]]:
        if task.tail is None:
            task.tail = JsonTail(task.out_path)
        events = task.tail.read(final)
        if self._event_names is not None:
            events = [e for e in events if e.get("event") in self._event_names]
        for event in events:
            event["source"] = "consumer"
            event.setdefault("task", task.id)
        return events


def python_command(program: Path) -> Callable[[str], list[str]]:
    """The argv of a task running a Python program with this interpreter."""
    return lambda task_id: [sys.executable, str(program)]
