"""Consumer processes supervised the way an ECS service keeps its tasks.

The supervisor keeps the desired count: a task that dies (crash knob, kill action) is
replaced after the restart delay; scale-in sends SIGTERM so a task finishes the message
in hand; a new revision (`set_consumer`) starts tasks with the new environment and then
stops the old ones, as a rolling ECS deployment does. Each task's stdout is its event
stream (docs/contracts.md), read incrementally from `RUN_DIR/tasks/<id>.out`.

A task is a process group (sqslab.targets.processes.ProcessGroup), as a container is everything
in it: a kill signals the whole group; a stop (scale-in, a roll, teardown) sends SIGTERM to
the task's main process only, as `docker stop` does to a container's, so a framework's
parent (Celery's, dramatiq's) shuts its workers down its own way, and SIGKILL to the whole
group after the stop timeout; when the main process exits whatever it forked is killed
with it. Like ECS's service scheduler, the
supervisor backs off restarting tasks that keep exiting soon after they start, and says
the service is failing (`failing()`) when none stays up, or when a task cannot start.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.consumers import LocalTask
from sqslab.rundir import JsonTail
from sqslab.targets import Log, TaskCounts
from sqslab.targets.processes import ProcessGroup, die_with_parent, live_groups

# How long a task stopped with SIGTERM gets before SIGKILL, as ECS's stopTimeout.
STOP_TIMEOUT = 30.0
SUPERVISE_INTERVAL = 0.05
#: A task that ends on its own within this many seconds of its start exited quickly; one
#: that stays up longer shows the service can, and ends the back-off.
QUICK_EXIT = 10.0
#: Quick exits in a row (no task staying up meanwhile) after which the service is failing.
FAILING_AFTER = 4
#: The back-off's ceiling: after quick exits the restart delay doubles up to this.
MAX_RESTART_DELAY = 30.0
#: The back-off's first step when the restart delay is 0.
MIN_BACKOFF = 0.1
#: The lines of the latest task's output that `failing()` quotes.
TAIL_LINES = 5
#: How long stop_all waits, after the groups got SIGKILL, for their processes to be gone.
GONE_TIMEOUT = 5.0


@dataclass
class _Task:
    id: str
    revision: int
    group: ProcessGroup
    started_at: float
    out_path: Path
    err_path: Path
    argv: list[str]
    cwd: Path
    stopping: bool = False
    killed: bool = False
    stop_deadline: float | None = None
    exited: bool = False
    tail: JsonTail | None = None
    drained: bool = False  # its output read to the end (after it exited)
    kill_signal: int | None = None  # what kill_consumer sends its main process instead (LocalTask.kill_signal)
    told_crash: bool = False  # it printed a `crashed` event: a crash it meant (the crash knob)

    def kill(self) -> None:
        """kill_consumer: SIGKILL the whole group (it is replaced), or send kill_signal to
        its main process, which kills a part of itself (a Lambda environment)."""
        if self.kill_signal is not None:
            self.group.process.send_signal(self.kill_signal)
            return
        self.killed = True
        self.group.kill()

    @property
    def active(self) -> bool:
        """Alive and neither stopping nor killed: it counts towards the desired count."""
        return not self.exited and not self.stopping and not self.killed


class ServiceHealth:
    """ECS's service throttle: tasks that exit on their own soon after they start are
    restarted later and later, and after FAILING_AFTER of them in a row (or a task that
    cannot start at all) the service is failing, with what to tell about it."""

    def __init__(self, restart_delay: float, quick_exit: float, log: Log) -> None:
        self.restart_delay, self.quick_exit = restart_delay, quick_exit
        self._emit = log
        self.quick_exits = 0
        self.failure: str | None = None
        self.cannot_start = False  # a start failed: trying again would fail the same way
        self.latest: _Task | None = None  # the latest quick exit, for the message

    def exited(self, task: _Task, uptime: float, told: bool, cwd: Path) -> float:
        """A task ended: the delay before its replacement starts. A quick exit the task did
        not tell of (a crash the built-in consumer's knob makes is the experiment) counts,
        and doubles the delay up to MAX_RESTART_DELAY; one that stayed up ends the count."""
        if task.killed or task.stopping or told or uptime >= self.quick_exit:
            if uptime >= self.quick_exit:
                self.quick_exits = 0
            return self.restart_delay
        self.quick_exits += 1
        self.latest = task
        if self.quick_exits >= FAILING_AFTER and self.failure is None:
            self.fail(self._never_up_message(cwd), "quick_exits")
        step = max(self.restart_delay, MIN_BACKOFF) * 2 ** (self.quick_exits - 1)
        return max(self.restart_delay, min(MAX_RESTART_DELAY, step))

    def stayed_up(self) -> None:
        """A task has been up past quick_exit: so can the service."""
        self.quick_exits = 0

    def fail(self, message: str, cause: str) -> None:
        """The service is failing, for this reason (the first one is kept)."""
        if self.failure is None:
            self.failure = message
            self._emit({"event": "service_failing", "cause": cause, "quick_exits": self.quick_exits, "message": message})

    def _never_up_message(self, cwd: Path) -> str:
        task = self.latest
        assert task is not None
        code = task.group.returncode or 0
        how = f"exit code {code}" if code >= 0 else f"signal {_signal_name(-code)}"
        message = (f"the consumer service does not stay up: {self.quick_exits} tasks in a row exited within "
                   f"{self.quick_exit:g}s of their start (the latest, {task.id}, with {how}), running "
                   f"`{shlex.join(task.argv)}` in {cwd}")
        for path in (task.err_path, task.out_path):
            lines = _tail_lines(path, TAIL_LINES)
            if lines:
                return message + f"; the end of {path}:\n" + "\n".join("    " + line for line in lines)
        return message + f"; it wrote nothing ({task.err_path} and {task.out_path.name} are empty)"


class Supervisor:
    """Keeps `desired` consumer processes of the current revision running.

    `command(task_id)` gives the argv and `environment(task_id)` the environment of a new
    task; both are read at each start, so a new revision takes effect for the next task.
    """

    def __init__(self, tasks_dir: Path, task: Callable[[str], LocalTask], restart_delay: float, log: Log,
                 stop_timeout: float | None = None, events: frozenset[str] | None = None,
                 on_start: Callable[[str, float, Path, Path], None] | None = None, quick_exit: float = QUICK_EXIT) -> None:
        """`task(task_id)`: how a task starts (sqslab.consumers.LocalTask; its cwd defaults to
        tasks_dir); `stop_timeout`: SIGTERM to SIGKILL for a stopped task (default
        STOP_TIMEOUT); `events`: the event names read from a task's output (None: every JSON
        line); `on_start(task_id, started, out, err)` on each start; `quick_exit`: a task
        exiting on its own sooner than this after its start did not stay up."""
        self.tasks_dir = tasks_dir
        self._stop_timeout = STOP_TIMEOUT if stop_timeout is None else stop_timeout
        self._event_names = events
        self._on_start = on_start
        self._task = task
        self._restart_delay = restart_delay
        self._quick_exit = quick_exit
        self._emit = log
        self._lock = threading.RLock()
        # Reading tasks' output: the runner's thread (events) and this one (at a task's exit)
        # share each task's tail. Taken after self._lock, never before it.
        self._read_lock = threading.Lock()
        self._unread: list[dict[str, Any]] = []  # events read at a task's exit, not yet handed out
        self._tasks: list[_Task] = []
        self._desired = 0
        self._revision = 0
        self._pending_starts: list[float] = []  # times at which replacements are due
        self._started = 0
        self._roll_pending = False
        self._health = ServiceHealth(restart_delay, quick_exit, log)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, count: int) -> None:
        """Start supervising with `count` tasks wanted."""
        with self._lock:
            self._desired = count
        self._thread = threading.Thread(target=self._supervise, name="sqslab-supervisor", daemon=True)
        self._thread.start()

    def kill(self, count: int, rng: Any) -> list[str]:
        """SIGKILL `count` running tasks chosen at random (seeded), each whole process
        group; they are replaced."""
        with self._lock:
            candidates = [t for t in self._tasks if t.active]
            chosen = rng.sample(candidates, min(count, len(candidates)))
            for task in sorted(chosen, key=lambda t: t.id):
                task.kill()
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

    def failing(self) -> str | None:
        """Why the service is failing, once it is: FAILING_AFTER tasks in a row exited on
        their own within `quick_exit` seconds of their start (a crash the task told, the
        crash knob's, is not one), or a task could not start at all. It names the command,
        and quotes the end of the latest such task's stderr. None while the service is fine."""
        with self._lock:
            return self._health.failure

    def events(self) -> list[dict[str, Any]]:
        """Consumer events written since the last call, each tagged `source: consumer`."""
        with self._lock:
            tasks = [t for t in self._tasks if not t.drained]
        with self._read_lock:
            events, self._unread = self._unread, []
            for task in tasks:
                if not task.drained:  # it may have exited, and been read to the end, meanwhile
                    events.extend(read_events(task, self._event_names, final=False))
        events.sort(key=lambda e: e.get("ts", 0))
        return events

    def stop_all(self, grace: float) -> None:
        """Stop every task: SIGTERM to each task's main process, SIGKILL after `grace` seconds; wait (a
        bounded time) until no process of any task's group runs, and for the supervising thread."""
        with self._lock:
            self._desired = 0
            self._pending_starts.clear()
            for task in self._tasks:
                if not task.exited:
                    self._stop_task(task, timeout=grace)
        deadline = time.monotonic() + grace + GONE_TIMEOUT
        while time.monotonic() < deadline:
            with self._lock:
                self._watch(time.monotonic())  # not left to the thread: it may never have started
                if all(t.exited for t in self._tasks):
                    break
            time.sleep(SUPERVISE_INTERVAL)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for task in self._tasks:
                if not task.exited:
                    task.group.kill()
                    task.group.wait(timeout=5)
                    self._reap(task, time.monotonic())
            groups = {t.group.pid: t for t in self._tasks}
        # SIGKILL takes a moment to end a process; one in uninterruptible sleep, longer.
        gone_by = time.monotonic() + GONE_TIMEOUT
        while (left := live_groups(set(groups))) and time.monotonic() < gone_by:
            time.sleep(SUPERVISE_INTERVAL)
        for pgid, pids in sorted(left.items()):
            self._emit({"event": "task_survived", "task": groups[pgid].id, "pids": pids})

    # ------------------------------------------------------------ the loop

    def _supervise(self) -> None:
        # Every task is started from this one thread: PR_SET_PDEATHSIG is tied to the
        # thread that forks, and it must outlive the tasks.
        while not self._stop.is_set():
            with self._lock:
                try:
                    self._tick(time.monotonic())
                except Exception as exc:  # noqa: BLE001 - the run must hear of it, and stop_all still work
                    self._health.fail(f"the consumer supervisor failed: {type(exc).__name__}: {exc}", "internal")
            self._stop.wait(SUPERVISE_INTERVAL)

    def _watch(self, now: float) -> None:
        """Reap the tasks whose group has ended, SIGKILL those past their stop deadline."""
        for task in self._tasks:
            if task.exited:
                continue
            if task.group.poll() is not None:
                self._reap(task, now)
            elif task.stop_deadline is not None and now > task.stop_deadline:
                task.group.kill()
                task.stop_deadline = None
            elif self._health.quick_exits and task.active and now - task.started_at >= self._quick_exit:
                self._health.stayed_up()

    def _tick(self, now: float) -> None:
        self._watch(now)
        if self._health.cannot_start:
            return
        # A killed task counts until it is reaped; its replacement then waits the restart delay.
        current = [t for t in self._tasks if not t.exited and not t.stopping and t.revision == self._revision]
        for _ in range(max(0, self._desired - len(current) - len(self._pending_starts))):
            if not self._start_task():
                return
        for at in [at for at in self._pending_starts if at <= now]:
            self._pending_starts.remove(at)
            if not self._start_task():
                return
        if self._roll_pending:
            self._roll_pending = False
            for task in self._tasks:
                if task.revision < self._revision and not task.exited and not task.stopping:
                    self._stop_task(task)

    def _start_task(self) -> bool:
        task_id = f"task-{self._started + 1}"
        launch = self._task(task_id)
        argv, cwd = launch.command, launch.cwd or self.tasks_dir
        out_path, err_path = self.tasks_dir / f"{task_id}.out", self.tasks_dir / f"{task_id}.err"
        try:
            self.tasks_dir.mkdir(exist_ok=True)
            with out_path.open("wb") as out, err_path.open("wb") as err:
                process = subprocess.Popen(
                    argv, env=launch.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                    cwd=cwd, start_new_session=True, preexec_fn=die_with_parent(),
                )
        except (OSError, subprocess.SubprocessError) as exc:
            # A missing or non-executable command, a cwd that is gone: starting again would
            # fail the same way, so the service fails now, saying why.
            why = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror and exc.filename else str(exc)
            self._health.cannot_start = True
            self._emit({"event": "task_start_failed", "task": task_id, "command": argv, "error": why})
            self._health.fail(f"consumer task {task_id} could not start `{shlex.join(argv)}` in {cwd}: {why}", "start_failed")
            return False
        self._started += 1
        started = time.monotonic()
        self._tasks.append(_Task(task_id, self._revision, ProcessGroup(process), started, out_path, err_path, argv, cwd,
                                 kill_signal=launch.kill_signal))
        self._emit({"event": "task_started", "task": task_id, "revision": self._revision, "pid": process.pid})
        if self._on_start is not None:
            self._on_start(task_id, started, out_path, err_path)
        return True

    def _stop_task(self, task: _Task, timeout: float | None = None) -> None:
        if task.exited:
            return
        task.stopping = True
        task.stop_deadline = time.monotonic() + (self._stop_timeout if timeout is None else timeout)
        task.group.signal_leader(signal.SIGTERM)
        self._emit({"event": "task_stopping", "task": task.id})

    def _reap(self, task: _Task, now: float) -> None:
        """A task whose group has ended: say how, and schedule its replacement."""
        code = task.group.returncode
        if task.exited or code is None:
            return
        task.exited = True
        told = self._drain(task)
        uptime = now - task.started_at
        if task.killed:
            reason = "killed"
        elif task.stopping:
            reason = "stopped"
        elif code != 0:
            reason = "crashed"  # the built-in consumer's crash knob exits EXIT_CRASH; a program, anything but 0
        else:
            reason = "exited"
        delay = self._health.exited(task, uptime, told, task.cwd)
        replaced = not task.stopping and task.revision == self._revision and not self._stop.is_set()
        if replaced:
            self._pending_starts.append(now + delay)
        self._emit({"event": "task_exited", "task": task.id, "exit_code": code, "reason": reason, "told": told,
                    "uptime": round(uptime, 3), "orphans": task.group.orphans, "restart_in": delay if replaced else None})

    def _drain(self, task: _Task) -> bool:
        """Read an exited task's output to its end (handed out by the next `events()`);
        whether it told a crash."""
        with self._read_lock:
            while batch := read_events(task, self._event_names, final=False):
                self._unread.extend(batch)
            self._unread.extend(read_events(task, self._event_names, final=True))
            task.drained = True
        return task.told_crash



def read_events(task: _Task, names: frozenset[str] | None, final: bool) -> list[dict[str, Any]]:
    """The consumer events a task wrote since the last read (of `names`; None: every JSON
    line), each tagged `source: consumer` and its task; `final`: its output has ended."""
    if task.tail is None:
        task.tail = JsonTail(task.out_path)
    events = task.tail.read(final)
    if names is not None:
        events = [e for e in events if e.get("event") in names]
    for event in events:
        event["source"] = "consumer"
        event.setdefault("task", task.id)
        task.told_crash = task.told_crash or event.get("event") == "crashed"
    return events


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _tail_lines(path: Path, count: int, limit: int = 8192) -> list[str]:
    """The last `count` non-blank lines of a file (of its last `limit` bytes), each cut to 300 characters."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if size > limit and lines:
        lines = lines[1:]  # the first may be cut
    return [line[:300] for line in lines[-count:]]
