"""The consumer's ECS service, as the AWS target drives and watches it.

Kill is StopTask, scale is UpdateService, a knob change is a new task definition
revision the service rolls to. Watching: task ARNs seen (task_started), stopped ones
with why (task_exited: killed, crashed, exited, stopped), and a task that stopped before
it ever ran, which fails the run at once instead of waiting for a service that will
never come up.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from typing import Any

from sqslab.contracts import EXIT_CRASH
from sqslab.targets import Log, TargetError, TaskCounts

KILL_REASON = "sqslab kill_consumer"
#: Task definition fields RegisterTaskDefinition takes back from DescribeTaskDefinition.
_REGISTER_KEYS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
)  # fmt: skip
#: Why a task stopped before it ever ran: the service will not come up by waiting.
_START_FAILURES = re.compile(
    r"CannotPull|ResourceInitializationError|Essential container in task exited|TaskFailedToStart|ResourceNotFound", re.I)


class EcsService:
    """One ECS service in one cluster, through a boto3 ECS client."""

    def __init__(self, ecs: Any, cluster: str, service: str, emit: Log, region: str, log_group: str) -> None:
        self._ecs, self.cluster, self.service = ecs, cluster, service
        self._emit, self._region, self._log_group = emit, region, log_group
        self._lock = threading.RLock()
        self.seen: set[str] = set()
        self._stopped: set[str] = set()
        self._inspected: set[str] = set()
        self.last_counts = TaskCounts(0, 0, 0)
        self.last_poll = float("-inf")

    # ------------------------------------------------------------ reads

    def describe(self) -> dict[str, Any]:
        """DescribeServices for the service; TargetError when it is gone."""
        found = self._ecs.describe_services(cluster=self.cluster, services=[self.service])
        if not found.get("services"):
            raise TargetError(f"the ECS service {self.service} is not in cluster {self.cluster}: {found.get('failures')}")
        service: dict[str, Any] = found["services"][0]
        return service

    def container_env(self, task_definition: str) -> dict[str, str]:
        """The environment of the first container of a task definition."""
        definition = self._ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        containers = definition.get("containerDefinitions") or [{}]
        return {e["name"]: e["value"] for e in containers[0].get("environment", [])}

    def list_tasks(self, desired: str) -> list[str]:
        """Task ARNs of the service with this desired status (RUNNING, STOPPED)."""
        arns: list[str] = []
        pages = self._ecs.get_paginator("list_tasks").paginate(cluster=self.cluster, serviceName=self.service, desiredStatus=desired)
        for page in pages:
            arns.extend(page.get("taskArns", []))
        return arns

    def describe_tasks(self, arns: list[str]) -> list[dict[str, Any]]:
        """DescribeTasks, 100 at a time."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):
            found.extend(self._ecs.describe_tasks(cluster=self.cluster, tasks=arns[start:start + 100]).get("tasks", []))
        return found

    # ------------------------------------------------------------ changes

    def kill(self, count: int, rng: Any) -> list[str]:
        """StopTask on `count` running tasks chosen by rng (over the sorted ARNs)."""
        with self._lock:
            running = sorted(self.list_tasks("RUNNING"))  # sorted: the same tasks give the same choice
            chosen = sorted(rng.sample(running, min(count, len(running))))
            for arn in chosen:
                self._ecs.stop_task(cluster=self.cluster, task=arn, reason=KILL_REASON)
            return [task_id(arn) for arn in chosen]

    def scale(self, to: int) -> None:
        """UpdateService to a desired count."""
        with self._lock:
            self._ecs.update_service(cluster=self.cluster, service=self.service, desiredCount=to)

    def roll(self, env_changes: dict[str, str]) -> dict[str, Any]:
        """Register a revision of the service's task definition with these changes to the
        container environment (the rest kept), roll the service to it; the new revision."""
        with self._lock:
            service = self.describe()
            found = self._ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
            definition = found["taskDefinition"]
            request = {key: copy.deepcopy(definition[key]) for key in _REGISTER_KEYS if definition.get(key) not in (None, [], {})}
            for container in request["containerDefinitions"]:
                env = {e["name"]: e["value"] for e in container.get("environment", [])}
                env.update(env_changes)
                container["environment"] = [{"name": k, "value": env[k]} for k in sorted(env)]
            if found.get("tags"):
                request["tags"] = found["tags"]
            new: dict[str, Any] = self._ecs.register_task_definition(**request)["taskDefinition"]
            self._ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=new["taskDefinitionArn"])
            return new

    # ------------------------------------------------------------ watching

    def wait_running(self, count: int, timeout: float, poll: float, interrupted: threading.Event) -> None:
        """Wait until ECS reports `count` tasks running; TargetError when a task stops
        before it ran, after `timeout`, or when interrupted."""
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            service = self.describe()
            running = service["runningCount"]
            if running != last:
                self._emit({"event": "notice", "message": f"ecs: {running} of {count} consumer tasks running"})
                self._emit({"event": "tasks_waiting", "running": running, "desired": count})
                last = running
            if running >= count:
                return
            failure = self.start_failure()
            if failure:
                raise TargetError(failure)
            if time.monotonic() > deadline:
                events = "; ".join(e.get("message", "") for e in service.get("events", [])[:3])
                raise TargetError(f"only {running} of {count} consumer tasks were running after {timeout:g}s"
                                  + (f"; the service says: {events}" if events else ""))
            if interrupted.wait(poll):
                raise TargetError("interrupted while waiting for the consumer tasks to start")

    def start_failure(self) -> str | None:
        """A message when a task of the service stopped without ever working, else None."""
        arns = [a for a in self.list_tasks("STOPPED") if a not in self._inspected]
        self._inspected.update(arns)
        for task in self.describe_tasks(arns) if arns else []:
            reasons = [task.get("stoppedReason") or "", task.get("stopCode") or ""]
            reasons += [c.get("reason") or "" for c in task.get("containers", [])]
            text = " ".join(r for r in reasons if r)
            if task.get("stopCode") == "TaskFailedToStart" or _START_FAILURES.search(text):
                return f"consumer task {task_id(task['taskArn'])} stopped before it ran: {text.strip()}{self._hint(task, text)}"
        return None

    def _hint(self, task: dict[str, Any], text: str) -> str:
        exit_codes = [c["exitCode"] for c in task.get("containers", []) if c.get("exitCode") is not None]
        if re.search(r"CannotPull|ResourceNotFound", text, re.I):
            return f"; is the image pushed? run `sqslab image push --region {self._region}`"
        if "ResourceInitializationError" in text:
            return "; the task could not reach ECR or CloudWatch Logs (network, or the execution role)"
        if exit_codes:
            return f"; the consumer exited with {exit_codes[0]}: see its log group {self._log_group}"
        return ""

    def counts(self, poll_interval: float) -> TaskCounts:
        """Running and desired from DescribeServices; started = task ARNs ever seen
        (ListTasks, at most every poll_interval). The last counts when AWS does not answer."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            described = self.describe()
            self.poll_tasks(poll_interval)
        except (ClientError, BotoCoreError) as exc:
            self._emit({"event": "target_error", "call": "tasks", "error": str(exc)})
            return self.last_counts
        self.last_counts = TaskCounts(described["runningCount"], described["desiredCount"], len(self.seen))
        return self.last_counts

    def stop_all(self, logs: Any, timeout: float, poll: float, tasks_poll: float) -> None:
        """Desired count 0; wait up to `timeout` until no task runs, reading the logs as it
        goes (`logs`: sqslab.targets.aws.logs.LogReader), then until they are quiet."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.scale(0)
            self._emit({"event": "service_scaled", "desired": 0})
            deadline = time.monotonic() + timeout
            running = self.describe()["runningCount"]
            while running > 0 and time.monotonic() < deadline:
                time.sleep(poll)
                logs.drain_once()
                running = self.describe()["runningCount"]
            if running:
                self._emit({"event": "tasks_still_running", "running": running})
        except (ClientError, BotoCoreError) as exc:
            self._emit({"event": "target_error", "call": "stop_consumers", "error": str(exc)})
        logs.drain_until_quiet()
        try:
            self.poll_tasks(tasks_poll, force=True)
        except (ClientError, BotoCoreError):
            pass

    def poll_tasks(self, interval: float, force: bool = False) -> None:
        """Note new tasks (task_started) and newly stopped ones (task_exited, with why);
        at most every `interval` seconds unless forced."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self.last_poll < interval:
                return
            self.last_poll = now
            running, stopped = self.list_tasks("RUNNING"), self.list_tasks("STOPPED")
            for arn in running + stopped:
                if arn not in self.seen:
                    self.seen.add(arn)
                    self._emit({"event": "task_started", "task": task_id(arn)})
            newly = [arn for arn in stopped if arn not in self._stopped]
            self._stopped.update(newly)
        for task in self.describe_tasks(newly) if newly else []:
            reason = task.get("stoppedReason") or ""
            codes = [c.get("exitCode") for c in task.get("containers", []) if c.get("exitCode") is not None]
            if reason == KILL_REASON:
                kind = "killed"
            elif "Essential container" in reason:
                kind = "crashed" if EXIT_CRASH in codes else "exited"
            else:
                kind = "stopped"  # scale-in, a new revision, the end of the run
            self._emit({"event": "task_exited", "task": task_id(task["taskArn"]), "reason": kind, "stopped_reason": reason,
                        "stop_code": task.get("stopCode"), "exit_code": codes[0] if codes else None})


def task_id(arn: str) -> str:
    """The task id at the end of a task ARN."""
    return arn.rsplit("/", 1)[-1]
