"""The local target: the embedded emulator (or `--endpoint-url`) and consumer processes
supervised the way an ECS service keeps its tasks.

The supervisor keeps the desired count: a task that dies (crash knob, kill action) is
replaced after the scenario's restart delay; scale-in sends SIGTERM so a task finishes
the message in hand; `set_consumer` starts tasks of a new revision and then stops the
old ones, as a rolling ECS deployment does. Consumers are `consumer/consume.py`, the
same program the container image runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sqslab.backends import Endpoints, TargetError, TaskCounts
from sqslab.emulator import client as emulator_client
from sqslab.hookspecs import hookimpl

# How long a task stopped with SIGTERM gets before SIGKILL, as ECS's stopTimeout.
STOP_TIMEOUT = 30.0
SUPERVISE_INTERVAL = 0.05


@dataclass
class _Task:
    id: str
    revision: int
    process: subprocess.Popen
    started_at: float
    out_path: Path
    stopping: bool = False
    killed: bool = False
    stop_deadline: float | None = None
    exited: bool = False
    offset: int = 0
    partial: bytes = b""


class LocalTarget:
    """Queues on the embedded emulator (or a given endpoint) and consumer processes."""

    name = "local"

    def __init__(self, log: Callable[[dict[str, Any]], None] | None = None, endpoint_url: str | None = None, provision: str = "boto3") -> None:
        """log receives the target's events; endpoint_url replaces the embedded emulator;
        provision is "boto3" (create the queues directly) or "terraform" (apply the stack)."""
        self._emit = log or (lambda event: None)
        self._endpoint_url, self._provision_with = endpoint_url, provision
        self._emulator: Any = None
        self._endpoints: Endpoints | None = None
        self._run_dir: Path | None = None
        self._lock = threading.RLock()
        self._tasks: list[_Task] = []
        self._desired = 0
        self._revision = 0
        self._knobs_env: dict[str, str] = {}
        self._seed: int | None = None
        self._restart_delay = 2.0
        self._pending_starts: list[float] = []  # times at which replacements are due
        self._started = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._torn_down = False
        self._terraform: Any = None
        self._roll_pending = False

    # ------------------------------------------------------------ provisioning

    def provision(self, scenario: Any, run_dir: Path) -> Endpoints:
        """Start the emulator unless an endpoint was given, then create the queue and DLQ."""
        from sqslab.emulator import Emulator, EmulatorError

        self._run_dir = run_dir
        self._seed = scenario.seed
        self._restart_delay = scenario.infra.restart_delay
        endpoint = self._endpoint_url
        # boto3 and the SQS model take a few hundred ms to load: do it while the emulator starts.
        importer = threading.Thread(target=emulator_client, args=("http://127.0.0.1:9",), kwargs={"region": scenario.infra.region}, daemon=True)
        importer.start()
        if endpoint is None:
            try:
                self._emulator = Emulator(log_path=run_dir / "emulator.log").start()
            except EmulatorError as exc:
                raise TargetError(f"the embedded SQS emulator did not start: {exc}") from exc
            endpoint = self._emulator.endpoint_url
        importer.join()
        self._emit({"event": "emulator_started" if self._emulator else "endpoint", "endpoint_url": endpoint})
        region = scenario.infra.region
        if self._provision_with == "terraform":
            queue_url, dlq_url = self._provision_terraform(scenario, run_dir, endpoint)
        else:
            queue_url, dlq_url = create_queues(emulator_client(endpoint, region=region), scenario, run_dir.name)
        self._endpoints = Endpoints(queue_url, dlq_url, endpoint, region)
        return self._endpoints

    def _provision_terraform(self, scenario: Any, run_dir: Path, endpoint: str) -> tuple[str, str | None]:
        """Apply the project's Terraform stack to the emulator: what ships is what runs."""
        from sqslab import terraform

        try:
            self._terraform = terraform.Terraform(run_dir / "terraform", endpoint_url=endpoint)
            tfvars = terraform.render_tfvars(scenario.terraform_context(image_tag="local"))
            outputs = self._terraform.apply(tfvars, on_line=lambda line: self._emit({"event": "terraform", "line": line}))
        except terraform.TerraformError as exc:
            raise TargetError(f"terraform apply on the emulator failed: {exc}") from exc
        return outputs["queue_url"], outputs.get("dlq_url") or None

    def sqs_client(self) -> Any:
        """A boto3 SQS client for the run's endpoint, with dummy credentials."""
        assert self._endpoints is not None, "provision first"
        return emulator_client(self._endpoints.endpoint_url, region=self._endpoints.region, max_pool_connections=32)

    # ------------------------------------------------------------ the service

    def start_consumers(self, count: int, knobs: Any) -> None:
        """Start the service: `count` consumer tasks with these knobs, supervised from now on."""
        with self._lock:
            self._desired = count
            self._knobs_env = knobs.to_env()
        self._thread = threading.Thread(target=self._supervise, name="sqslab-supervisor", daemon=True)
        self._thread.start()

    def kill(self, count: int, rng: Any) -> list[str]:
        """SIGKILL `count` running tasks chosen at random (seeded); the supervisor replaces them."""
        with self._lock:
            candidates = [t for t in self._tasks if not t.exited and not t.stopping and not t.killed]
            chosen = rng.sample(candidates, min(count, len(candidates)))
            for task in sorted(chosen, key=lambda t: t.id):
                task.killed = True
                _signal(task.process, signal.SIGKILL)
            return sorted(t.id for t in chosen)

    def scale(self, to: int) -> None:
        """Set the desired count; surplus tasks get SIGTERM (newest first), missing ones start."""
        with self._lock:
            self._desired = to
            active = [t for t in self._tasks if not t.exited and not t.stopping and not t.killed and t.revision == self._revision]
            surplus = len(active) + len(self._pending_starts) - to
            while surplus > 0 and self._pending_starts:
                self._pending_starts.pop()
                surplus -= 1
            for task in sorted(active, key=lambda t: t.started_at, reverse=True)[:max(0, surplus)]:
                self._stop_task(task)

    def set_consumer(self, knobs: Any) -> None:
        """Roll to a new revision: start new tasks with these knobs, then stop the old ones."""
        with self._lock:
            self._revision += 1
            self._knobs_env = knobs.to_env()
            self._pending_starts.clear()
            self._roll_pending = True

    def tasks(self) -> TaskCounts:
        """Tasks running (alive, stopping ones included, like ECS's runningCount) and desired."""
        with self._lock:
            running = sum(1 for t in self._tasks if not t.exited)
            return TaskCounts(running, self._desired, self._started)

    def consumer_events(self) -> list[dict[str, Any]]:
        """Consumer events written since the last call, each tagged `source: consumer`."""
        with self._lock:
            tasks = list(self._tasks)
        events: list[dict[str, Any]] = []
        for task in tasks:
            events.extend(self._read_events(task, final=task.exited))
        events.sort(key=lambda e: e.get("ts", 0))
        return events

    def stop_consumers(self, grace: float = 10.0) -> None:
        """Stop every task: SIGTERM, then SIGKILL after `grace` seconds; wait for all."""
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
                    _signal(task.process, signal.SIGKILL)
                    task.process.wait(timeout=5)
                self._reap(task)

    def teardown(self) -> None:
        """Stop all tasks and the emulator (destroying the Terraform stack first, if any)."""
        if self._torn_down:
            return
        self._torn_down = True
        try:
            self.stop_consumers(grace=2.0)
        finally:
            if self._emulator is None and self._terraform is None and self._endpoints is not None:
                self._delete_queues()  # your own endpoint: leave nothing of this run behind
            if self._terraform is not None:
                try:
                    self._terraform.destroy(on_line=lambda line: self._emit({"event": "terraform", "line": line}))
                except Exception as exc:  # the emulator goes away next anyway
                    self._emit({"event": "terraform_destroy_failed", "error": str(exc)})
                finally:
                    self._terraform.close()
            if self._emulator is not None:
                self._emulator.stop()
                self._emit({"event": "emulator_stopped"})

    def _delete_queues(self) -> None:
        assert self._endpoints is not None
        client = self.sqs_client()
        for url in (self._endpoints.queue_url, self._endpoints.dlq_url):
            if url:
                try:
                    client.delete_queue(QueueUrl=url)
                    self._emit({"event": "queue_deleted", "queue_url": url})
                except Exception as exc:  # teardown goes on; the run's result stands
                    self._emit({"event": "queue_delete_failed", "queue_url": url, "error": str(exc)})

    # ------------------------------------------------------------ supervisor

    def _supervise(self) -> None:
        # Every task is started from this one thread: PR_SET_PDEATHSIG is tied to the
        # thread that forks, and it must outlive the tasks.
        while not self._stop.is_set():
            with self._lock:
                now = time.monotonic()
                for task in self._tasks:
                    if not task.exited and task.process.poll() is not None:
                        self._reap(task)
                    elif task.stop_deadline is not None and now > task.stop_deadline and task.process.poll() is None:
                        _signal(task.process, signal.SIGKILL)
                        task.stop_deadline = None
                # A killed task counts until it is reaped; its replacement then waits the restart delay.
                current = [t for t in self._tasks if not t.exited and not t.stopping and t.revision == self._revision]
                missing = self._desired - len(current) - len(self._pending_starts)
                for _ in range(max(0, missing)):
                    self._start_task()
                due = [at for at in self._pending_starts if at <= now]
                for at in due:
                    self._pending_starts.remove(at)
                    self._start_task()
                if self._roll_pending:
                    self._roll_pending = False
                    for task in self._tasks:
                        if task.revision < self._revision and not task.exited and not task.stopping:
                            self._stop_task(task)
            self._stop.wait(SUPERVISE_INTERVAL)

    def _start_task(self) -> None:
        assert self._endpoints is not None and self._run_dir is not None
        self._started += 1
        task_id = f"task-{self._started}"
        tasks_dir = self._run_dir / "tasks"
        tasks_dir.mkdir(exist_ok=True)
        out_path, err_path = tasks_dir / f"{task_id}.out", tasks_dir / f"{task_id}.err"
        env = consumer_env(self._endpoints, self._knobs_env, task_id, self._seed)
        with out_path.open("wb") as out, err_path.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, str(consumer_program())],
                env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                cwd=self._run_dir, start_new_session=True, preexec_fn=_die_with_parent,
            )
        self._tasks.append(_Task(task_id, self._revision, process, time.monotonic(), out_path))
        self._emit({"event": "task_started", "task": task_id, "revision": self._revision, "pid": process.pid})

    def _stop_task(self, task: _Task, timeout: float = STOP_TIMEOUT) -> None:
        if task.exited:
            return
        task.stopping = True
        task.stop_deadline = time.monotonic() + timeout
        _signal(task.process, signal.SIGTERM)
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
        elif code == 137:
            reason = "crashed"
        else:
            reason = "exited"
        self._emit({"event": "task_exited", "task": task.id, "exit_code": code, "reason": reason})
        if not task.stopping and task.revision == self._revision and not self._stop.is_set():
            self._pending_starts.append(time.monotonic() + self._restart_delay)

    def _read_events(self, task: _Task, final: bool) -> list[dict[str, Any]]:
        try:
            with task.out_path.open("rb") as handle:
                handle.seek(task.offset)
                chunk = handle.read()
        except OSError:
            return []
        task.offset += len(chunk)
        data = task.partial + chunk
        lines = data.split(b"\n")
        task.partial = b"" if final else lines.pop()
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line torn by SIGKILL
            if isinstance(event, dict):
                event["source"] = "consumer"
                event.setdefault("task", task.id)
                events.append(event)
        return events


def create_queues(client: Any, scenario: Any, run_name: str) -> tuple[str, str | None]:
    """Create the DLQ and the queue (with its redrive policy) from the scenario's infra,
    named after the run directory so runs never share a queue."""
    infra = scenario.infra
    # A unique suffix: a user's own endpoint (--endpoint-url) may keep queues between runs.
    base = _queue_name(f"{run_name[:60]}-{uuid.uuid4().hex[:6]}")
    dlq_url = dlq_arn = None
    if infra.dlq_enabled:
        dlq_url = client.create_queue(QueueName=f"{base}-dlq", Attributes={"MessageRetentionPeriod": str(int(infra.dlq_retention))})["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": str(int(infra.visibility_timeout)),
        "MessageRetentionPeriod": str(int(infra.retention)),
        "ReceiveMessageWaitTimeSeconds": str(int(infra.receive_wait)),
        "DelaySeconds": str(int(infra.delay)),
    }
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(infra.max_receive_count)})
    queue_url = client.create_queue(QueueName=base, Attributes=attributes)["QueueUrl"]
    return queue_url, dlq_url


def _queue_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in text)
    return cleaned[:70]


def consumer_program() -> Path:
    """The consumer program shipped in the package (the same file the image runs)."""
    return Path(str(resources.files("sqslab.consumer").joinpath("consume.py")))


def consumer_env(endpoints: Endpoints, knobs_env: dict[str, str], task_id: str, seed: int | None) -> dict[str, str]:
    """A consumer task's environment: dummy credentials, the endpoint, the knobs, its id."""
    from sqslab.emulator import child_env

    env = child_env()
    env.update(knobs_env)
    env.update({"QUEUE_URL": endpoints.queue_url, "AWS_REGION": endpoints.region, "AWS_DEFAULT_REGION": endpoints.region, "TASK_ID": task_id, "PYTHONUNBUFFERED": "1"})
    if endpoints.endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoints.endpoint_url
    if seed is not None:
        env["SEED"] = str(seed)
    return env


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """In the child: get SIGKILL if sqslab dies, so no consumer outlives a killed run."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@hookimpl
def register_targets(register: Callable[..., None]) -> None:
    """Register the local target."""
    register("local", LocalTarget, description="embedded SQS emulator on 127.0.0.1 and consumer processes supervised like an ECS service")
