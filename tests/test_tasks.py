"""A consumer task is a process group, supervised like an ECS service's task: kill, stop,
scale-in and teardown end every process of it; a task that keeps dying soon after it
starts is restarted ever later and named as a failure; a command that cannot run is
refused before the run. Real processes throughout: small Python programs that fork."""

from __future__ import annotations

import os
import random
import shlex
import stat
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqslab.consumers import LocalTask
from sqslab.consumers.program import Program
from sqslab.consumers.program_checks import check_command
from sqslab.targets.supervisor import FAILING_AFTER, Supervisor

#: A task whose leader forks a worker that keeps running (as the dramatiq and celery CLIs
#: do); both write their pid next to PIDS_DIR/<task>. With IGNORE_TERM the worker ignores
#: SIGTERM (only SIGKILL ends it); with LEADER_EXITS the leader exits 3 once the worker runs.
FORKING = """
import os, signal, sys, time
base = sys.argv[1]
child = os.fork()
if child == 0:
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(base + ".worker.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(base + ".worker.tmp", base + ".worker")
    while True:
        time.sleep(1)
while not os.path.exists(base + ".worker"):
    time.sleep(0.01)
with open(base + ".leader.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(base + ".leader.tmp", base + ".leader")
if os.environ.get("LEADER_EXITS"):
    sys.exit(3)
while True:
    time.sleep(1)
"""


def alive(pid: int) -> bool:
    """Whether the process runs: a zombie (exited, not yet reaped by whoever adopted it) does not."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return text[text.rindex(")") + 2] not in "ZX"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """check()'s first truthy value within timeout, or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"not within {timeout}s: {what}")


class Service:
    """A Supervisor of real tasks in tmp_path, with the events it emits."""

    def __init__(self, tmp_path: Path, argv: Callable[[str], list[str]], env: dict[str, str] | None = None,
                 restart_delay: float = 0.2, stop_timeout: float = 30.0, **kwargs: Any) -> None:
        self.dir = tmp_path
        self.events: list[dict[str, Any]] = []
        environment = {**os.environ, **(env or {})}
        self.supervisor = Supervisor(tmp_path / "tasks", lambda task_id: LocalTask(argv(task_id), environment, tmp_path),
                                     restart_delay, self.events.append, stop_timeout=stop_timeout, **kwargs)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == name]

    def pids(self, task_id: str) -> tuple[int, int]:
        """The (leader, worker) pids of a FORKING task, once both run."""
        base = self.dir / task_id
        wait_for(lambda: (base.parent / (base.name + ".leader")).exists(), 15, f"{task_id} running")
        return (int((base.parent / (base.name + ".leader")).read_text()),
                int((base.parent / (base.name + ".worker")).read_text()))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    made: list[Service] = []

    def make(argv: Callable[[str], list[str]], **kwargs: Any) -> Service:
        made.append(Service(tmp_path, argv, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.supervisor.stop_all(grace=1.0)  # a failed test leaves nothing running either


def forking(tmp_path: Path) -> Callable[[str], list[str]]:
    (tmp_path / "forking.py").write_text(FORKING)
    return lambda task_id: [sys.executable, str(tmp_path / "forking.py"), str(tmp_path / task_id)]


# ------------------------------------------------------------ a task is its process group


def test_kill_ends_the_worker_a_task_forked(tmp_path: Path, service: Callable[..., Service]) -> None:
    svc = service(forking(tmp_path), restart_delay=30.0)
    svc.supervisor.start(1)
    leader, worker = svc.pids("task-1")
    assert svc.supervisor.kill(1, random.Random(1)) == ["task-1"]
    wait_for(lambda: not alive(leader) and not alive(worker), 10, "the killed task's leader and worker gone")
    exited = wait_for(lambda: svc.of("task_exited"), 10, "task_exited")
    assert exited[0]["task"] == "task-1" and exited[0]["reason"] == "killed"


def test_a_task_whose_leader_exits_takes_its_forked_worker_with_it(tmp_path: Path, service: Callable[..., Service]) -> None:
    svc = service(forking(tmp_path), env={"LEADER_EXITS": "1"}, restart_delay=30.0)
    svc.supervisor.start(1)
    leader, worker = svc.pids("task-1")
    exited = wait_for(lambda: svc.of("task_exited"), 10, "task_exited")
    wait_for(lambda: not alive(worker), 10, "the worker of a task whose leader exited gone")
    assert not alive(leader)
    assert exited[0]["exit_code"] == 3 and exited[0]["reason"] == "crashed" and exited[0]["orphans"] == 1
    assert svc.supervisor.counts().running == 0  # the task is over once its whole group is


def test_stop_all_leaves_no_process_of_any_task_alive(tmp_path: Path, service: Callable[..., Service]) -> None:
    svc = service(forking(tmp_path), env={"IGNORE_TERM": "1"})
    svc.supervisor.start(2)
    pids = [*svc.pids("task-1"), *svc.pids("task-2")]
    began = time.monotonic()
    svc.supervisor.stop_all(grace=1.0)
    took = time.monotonic() - began
    # The workers ignore SIGTERM: only the group's SIGKILL after the grace ends them.
    assert [pid for pid in pids if alive(pid)] == []
    assert took < 15  # bounded, however the tasks behave
    assert {e["reason"] for e in svc.of("task_exited")} == {"stopped"}


def test_scale_in_stops_the_whole_group_after_its_stop_timeout(tmp_path: Path, service: Callable[..., Service]) -> None:
    svc = service(forking(tmp_path), env={"IGNORE_TERM": "1"}, stop_timeout=1.0)
    svc.supervisor.start(2)
    first, second = svc.pids("task-1"), svc.pids("task-2")
    svc.supervisor.scale(1)  # the newest goes
    wait_for(lambda: not any(alive(pid) for pid in second), 15, "the scaled-in task's leader and worker gone")
    assert all(alive(pid) for pid in first)
    assert [e["task"] for e in svc.of("task_exited")] == ["task-2"]


def test_a_rolled_revision_leaves_no_worker_of_the_old_tasks(tmp_path: Path, service: Callable[..., Service]) -> None:
    svc = service(forking(tmp_path), env={"IGNORE_TERM": "1"}, stop_timeout=1.0)
    svc.supervisor.start(1)
    old = svc.pids("task-1")
    svc.supervisor.roll()
    new = svc.pids("task-2")
    wait_for(lambda: not any(alive(pid) for pid in old), 15, "the old revision's leader and worker gone")
    assert all(alive(pid) for pid in new)


# ------------------------------------------------------------ restarts and crash loops

CRASHING = "import sys\nprint('starting up', file=sys.stderr)\nprint('fatal: no QUEUE_NAME set', file=sys.stderr)\nsys.exit(2)\n"


def test_a_crash_loop_backs_off_and_is_named_with_its_stderr(tmp_path: Path, service: Callable[..., Service]) -> None:
    (tmp_path / "crash.py").write_text(CRASHING)
    argv = [sys.executable, str(tmp_path / "crash.py")]
    svc = service(lambda task_id: list(argv), restart_delay=0.2)
    began = time.monotonic()
    svc.supervisor.start(1)
    message = wait_for(svc.supervisor.failing, 20, "failing() naming the crash loop")
    time.sleep(max(0.0, began + 5.0 - time.monotonic()))
    # Without back-off a task dying at once restarts every 0.2s: 25 starts in 5s. With it:
    # 0.2, 0.4, 0.8, 1.6, 3.2s between starts, so 6 at the very most.
    assert FAILING_AFTER <= len(svc.of("task_started")) <= 7
    assert shlex.join(argv) in message
    assert f"{FAILING_AFTER} tasks in a row" in message
    assert "fatal: no QUEUE_NAME set" in message and "starting up" in message
    exits = svc.of("task_exited")
    assert all(e["reason"] == "crashed" and e["exit_code"] == 2 and e["told"] is False for e in exits)
    delays = [e["restart_in"] for e in exits]
    assert delays[:3] == pytest.approx([0.2, 0.4, 0.8])
    assert svc.of("service_failing")[0]["message"] == message


def test_a_task_that_stays_up_is_restarted_without_back_off(tmp_path: Path, service: Callable[..., Service]) -> None:
    (tmp_path / "late.py").write_text("import sys, time\ntime.sleep(0.6)\nsys.exit(1)\n")
    svc = service(lambda task_id: [sys.executable, str(tmp_path / "late.py")], restart_delay=0.1, quick_exit=0.3)
    svc.supervisor.start(1)
    exits = wait_for(lambda: len(svc.of("task_exited")) >= FAILING_AFTER + 1 and svc.of("task_exited"), 30,
                     "tasks that stayed up exiting")
    assert [e["restart_in"] for e in exits] == [0.1] * len(exits)
    assert svc.supervisor.failing() is None


def test_a_crash_the_consumer_tells_is_the_experiment_not_a_failing_service(tmp_path: Path,
                                                                              service: Callable[..., Service]) -> None:
    # The built-in consumer's crash knob: a `crashed` event, then exit 137 at once.
    (tmp_path / "knob.py").write_text(textwrap.dedent("""
        import json, os, sys, time
        print(json.dumps({"ts": time.time(), "event": "crashed", "id": "m-1", "message_id": "x"}), flush=True)
        os._exit(137)
    """))
    svc = service(lambda task_id: [sys.executable, str(tmp_path / "knob.py")], restart_delay=0.1)
    svc.supervisor.start(1)
    exits = wait_for(lambda: len(svc.of("task_exited")) >= FAILING_AFTER + 1 and svc.of("task_exited"), 30,
                     "crash-knob tasks exiting")
    assert all(e["reason"] == "crashed" and e["told"] is True and e["restart_in"] == 0.1 for e in exits)
    assert svc.supervisor.failing() is None
    told = [e for e in svc.supervisor.events() if e.get("event") == "crashed"]
    assert len(told) >= len(exits)  # read at the exit, still handed to the runner, once each
    assert len({e["task"] for e in told}) == len(told)


def test_a_command_that_cannot_start_fails_at_once_without_a_traceback(tmp_path: Path, service: Callable[..., Service]) -> None:
    hooked: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: hooked.append(args.exc_value)
    try:
        svc = service(lambda task_id: [str(tmp_path / "no-such-worker")], restart_delay=0.1)
        svc.supervisor.start(2)
        message = wait_for(svc.supervisor.failing, 5, "failing() naming the command that did not start")
        time.sleep(0.5)
    finally:
        threading.excepthook = previous
    assert hooked == []
    assert str(tmp_path / "no-such-worker") in message and "No such file or directory" in message
    assert len(svc.of("task_start_failed")) == 1  # tried once, not in a loop
    assert svc.supervisor.counts().running == 0


# ------------------------------------------------------------ the command, checked before the run


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_bare_name_is_looked_up_on_the_tasks_path(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    executable(tmp_path / "bin" / "my-worker")
    assert check_command(Program(command=("my-worker", "--queue", "q"), cwd=str(tmp_path),
                                 env={"PATH": str(tmp_path / "bin")})) is None
    message = check_command(Program(command=("my-worker",), cwd=str(tmp_path), env={"PATH": f"/nonexistent:{tmp_path}"}))
    assert message == f"consumer.program.command: `my-worker` is not on the task's PATH (searched /nonexistent:{tmp_path})"
    assert check_command(Program(command=(sys.executable, "-c", "pass"), cwd=str(tmp_path))) is None
    assert check_command(Program(command=("python3",), cwd=str(tmp_path))) is None  # the PATH sqslab has


def test_a_relative_path_is_resolved_against_the_programs_cwd(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    executable(tmp_path / "app" / "run.sh")
    assert check_command(Program(command=("./run.sh",), cwd=str(tmp_path / "app"))) is None
    missing = check_command(Program(command=("./run.sh",), cwd=str(tmp_path)))
    assert missing == f"consumer.program.command: `./run.sh` not found: no file {tmp_path / 'run.sh'}"
    (tmp_path / "plain.sh").write_text("exit 0\n")
    refused = check_command(Program(command=("./plain.sh",), cwd=str(tmp_path)))
    assert refused is not None and f"{tmp_path / 'plain.sh'} is not executable" in refused
    folder = check_command(Program(command=("app",), cwd=str(tmp_path), env={"PATH": "."}))
    assert folder is not None and "not on the task's PATH" in folder  # a directory on PATH's "." is no command
    assert check_command(Program(command=("run.sh",), cwd=str(tmp_path / "app"), env={"PATH": "."})) is None
    assert check_command(Program(command=("./app",), cwd=str(tmp_path))) == \
        f"consumer.program.command: `./app` is a directory: {tmp_path / 'app'}"


def test_a_missing_working_directory_or_empty_command_is_named(tmp_path: Path) -> None:
    assert check_command(Program(command=(sys.executable,), cwd=str(tmp_path / "gone"))) == \
        f"consumer.program.cwd: no directory {tmp_path / 'gone'}"
    assert check_command(Program(command=(), cwd=str(tmp_path))) == "consumer.program.command is empty"


# ------------------------------------------------------------ end to end: the run says why


@pytest.mark.integration
def test_a_run_whose_consumer_never_stays_up_fails_at_once_saying_why(tmp_path: Path, host: Any) -> None:
    from sqslab.run.runner import RunOptions, run_scenario
    from sqslab.scenario.load import load_scenario

    (tmp_path / "crash.py").write_text(CRASHING)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        version: 1
        name: crash-loop
        infra: {{consumers: 2, task: {{restart_delay: 100ms}}}}
        consumer:
          program: {{command: [{sys.executable}, crash.py], stop_grace: 1s}}
        load: [{{burst: 5}}]
    """).lstrip())
    began = time.monotonic()
    result: Any = run_scenario(load_scenario(path, host), host, RunOptions(out=tmp_path / "run", handle_signals=False))
    assert result.exit_code == 3
    errors = result.summary["errors"]
    assert errors and "crash.py" in errors[0] and "fatal: no QUEUE_NAME set" in errors[0], errors
    assert time.monotonic() - began < 40  # not the 60s ready timeout
