"""The AWS target: the project's Terraform stack applied with your credentials, the
consumer as an ECS Fargate service, its events read back from CloudWatch Logs.

A run: the consumer image must be in ECR already (`sqslab image push`); `provision`
renders tfvars from the scenario, applies `terraform/` into `RUN_DIR/terraform` (state,
working copy, `.env`) and returns the queues. The service starts with the scenario's
consumer count; actions become ECS calls (StopTask, UpdateService, a new task definition
revision); events come from the tasks' log group with CloudWatch's ingestion lag. At the
end the stack is destroyed, unless `keep` (then the service is scaled to 0 and
`sqslab destroy RUN_DIR` removes it later).

Every stack gets a name of its own (the scenario's plus 4 hex digits), so a kept stack
never collides with the next run of the same scenario. The ECR repository is not part
of a run's stack: `sqslab image push` makes it, and every run uses it
(`ecr_create_repository = false`).

`endpoint_url` points everything (Terraform included) at an emulator, for tests only.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqslab.backends import Endpoints, TargetError, TaskCounts
from sqslab.hookspecs import hookimpl

__all__ = ["AwsTarget", "destroy_run", "find_kept_run", "stack_has_resources"]

KILL_REASON = "sqslab kill_consumer"
#: Written next to the Terraform state: region, endpoint and the task definition
#: revisions sqslab registered (Terraform does not know them), for `sqslab destroy`.
STATE_FILE = "sqslab_aws.json"
#: Task definition fields RegisterTaskDefinition takes back from DescribeTaskDefinition.
_REGISTER_KEYS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
)  # fmt: skip
#: Why a task stopped before it ever ran: the service will not come up by waiting.
_START_FAILURES = re.compile(r"CannotPull|ResourceInitializationError|Essential container in task exited|TaskFailedToStart|ResourceNotFound", re.I)
_PLAN = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
_DONE = re.compile(r"^(?P<address>\S+): (?P<what>Creation|Destruction|Modifications) complete after")

Log = Callable[[dict[str, Any]], None]


class AwsTarget:
    """Real SQS + DLQ and ECS Fargate consumers, from the project's Terraform stack."""

    name = "aws"

    # Waits, in seconds; instance attributes so tests can shorten them.
    start_timeout = 600.0  # Fargate: ENI, image pull, start; usually 30-90 s
    stop_timeout = 120.0  # beyond the grace: ECS's 30 s stopTimeout, then deprovisioning
    poll_interval = 2.0  # DescribeServices while waiting for a count
    tasks_poll_interval = 1.0  # ListTasks for tasks.started, at most this often
    log_poll_interval = 2.0  # FilterLogEvents, at most this often (a throttled API)
    log_lookback = 30.0  # re-read this much before the newest event seen (ingestion lag)
    log_quiet = 10.0  # after the tasks stopped: no new event for this long ends the drain
    log_drain_timeout = 90.0
    log_page_limit: int | None = None  # FilterLogEvents' own default: 10 000 events or 1 MB

    def __init__(
        self,
        log: Log | None = None,
        keep: bool = False,
        image_tag: str | None = None,
        endpoint_url: str | None = None,
        state_dir: Path | str | None = None,
        quiet: bool = False,
    ) -> None:
        """log receives the target's events (the runner records them); keep leaves the
        stack up after the run; image_tag is the consumer image's tag in ECR (default:
        the git revision); endpoint_url is for tests against an emulator; state_dir
        replaces RUN_DIR/terraform; quiet hides the progress lines on stderr."""
        self._emit = log or (lambda event: None)
        self.keep = keep
        self._image_tag = image_tag
        self._endpoint_url = endpoint_url
        self._state_dir_option = Path(state_dir) if state_dir is not None else None
        self._quiet = quiet
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._run_dir: Path | None = None
        self.state_dir: Path | None = None
        self._terraform: Any = None
        self._endpoints: Endpoints | None = None
        self._region = "us-west-1"
        self._cluster = self._service = self._log_group = ""
        self._ecs: Any = None
        self._logs: Any = None
        self._desired = 0
        self._last_counts = TaskCounts(0, 0, 0)
        self._seen_tasks: set[str] = set()
        self._stopped_tasks: set[str] = set()
        self._inspected_failures: set[str] = set()
        self._last_tasks_poll = float("-inf")
        self._pending: list[dict[str, Any]] = []
        self._seen_events: dict[str, int] = {}
        self._log_floor_ms = 0
        self._newest_ms = 0
        self._last_log_poll = float("-inf")
        self._log_backoff = 0.0
        self._registered: list[str] = []
        self._torn_down = False

    # ------------------------------------------------------------ provisioning

    def provision(self, scenario: Any, run_dir: Path) -> Endpoints:
        """Apply the stack for this scenario into RUN_DIR/terraform and return its queues."""
        from sqslab import terraform
        from sqslab.image import git_revision

        self._run_dir = Path(run_dir)
        self.state_dir = (self._state_dir_option or self._run_dir / "terraform").resolve()
        tag = self._image_tag or git_revision()
        if not tag:
            raise TargetError("no consumer image tag: pass --image-tag TAG (the tag `sqslab image push` printed), "
                              "or run from a git checkout, whose revision is the default tag")
        context, tfvars = aws_tfvars(scenario, tag)
        self._region = context["region"]
        self._check_image(context["ecr_repository_name"], tag)
        self._emit({"event": "stack", "name": context["name"], "region": self._region, "image_tag": tag, "state_dir": str(self.state_dir)})
        self._save_state(name=context["name"], image_tag=tag)
        try:
            self._terraform = terraform.Terraform(self.state_dir, endpoint_url=self._endpoint_url)
        except terraform.TerraformError as exc:
            raise TargetError(str(exc)) from exc
        progress = _TerraformProgress(self._emit, self._show)
        self._show(f"terraform: applying stack {context['name']} in {self._region} (2-3 minutes); state in {self.state_dir}")
        try:
            self._terraform.init(on_line=progress.for_command("init"))
            outputs = self._terraform.apply(tfvars, on_line=progress.for_command("apply"))
        except terraform.TerraformError as exc:
            raise TargetError(_failed_message("apply", exc, self._run_dir)) from exc
        terraform.write_env_file(outputs, self.state_dir / ".env", endpoint_url=self._endpoint_url)
        return self.use_stack(outputs)

    def use_stack(self, outputs: dict[str, Any]) -> Endpoints:
        """Work with an applied stack, given its Terraform outputs (``{name: value}``)."""
        try:
            self._cluster, self._service = outputs["cluster_name"], outputs["service_name"]
            self._log_group = outputs["log_group_name"]
            queue_url = outputs["queue_url"]
        except KeyError as exc:
            raise TargetError(f"the stack has no output {exc}; is terraform/ the sqslab stack?") from None
        self._region = outputs.get("region") or self._region
        self._ecs, self._logs = self._client("ecs"), self._client("logs")
        self._log_floor_ms = int((time.time() - 120) * 1000)
        self._endpoints = Endpoints(queue_url, outputs.get("dlq_url") or None, self._endpoint_url, self._region)
        return self._endpoints

    def _client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        credentials: dict[str, str] = {}
        if self._endpoint_url:  # an emulator: never the user's real credentials
            from sqslab.emulator import DUMMY_ENV

            credentials = {"aws_access_key_id": DUMMY_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": DUMMY_ENV["AWS_SECRET_ACCESS_KEY"]}
        session = boto3.session.Session(region_name=self._region, **credentials)
        config = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=32)
        return session.client(service, endpoint_url=self._endpoint_url, config=config)

    def _check_image(self, repository: str, tag: str) -> None:
        """Refuse to apply for 3 minutes when the tasks could never pull their image."""
        from botocore.exceptions import BotoCoreError, ClientError

        ecr = self._client("ecr")
        push = f"`sqslab image push --region {self._region}`"
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ecr.exceptions.RepositoryNotFoundException:
            raise TargetError(f"there is no ECR repository {repository} in {self._region}: run {push} first (docs/aws.md)") from None
        except ecr.exceptions.ImageNotFoundException:
            raise TargetError(f"the consumer image {repository}:{tag} is not in ECR ({self._region}): run {push}, "
                              "then pass the tag it prints as --image-tag") from None
        except (ClientError, BotoCoreError) as exc:
            raise TargetError(f"cannot check the consumer image in ECR ({self._region}): {exc}; "
                              "are AWS credentials set (AWS_PROFILE, aws sso login)?") from exc

    def sqs_client(self) -> Any:
        """A boto3 SQS client for the stack's region, with your credential chain."""
        assert self._endpoints is not None, "provision first"
        return self._client("sqs")

    # ------------------------------------------------------------ the service

    def start_consumers(self, count: int, knobs: Any) -> None:
        """Make sure the service runs `count` tasks with these knobs, and wait until ECS
        reports them running (a task that cannot start fails the run at once)."""
        service = self._describe_service()
        current = self._container_env(service["taskDefinition"])
        if any(current.get(key) != value for key, value in knobs.to_env().items()):
            self.set_consumer(knobs)
        if service["desiredCount"] != count:
            self.scale(count)
        self._desired = count
        self._wait_running(count)

    def _wait_running(self, count: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = -1
        with _interruptible() as interrupted:
            while True:
                service = self._describe_service()
                running = service["runningCount"]
                if running != last:
                    self._show(f"ecs: {running} of {count} consumer tasks running")
                    self._emit({"event": "tasks_waiting", "running": running, "desired": count})
                    last = running
                if running >= count:
                    return
                failure = self._start_failure()
                if failure:
                    raise TargetError(failure)
                if time.monotonic() > deadline:
                    events = "; ".join(e.get("message", "") for e in service.get("events", [])[:3])
                    raise TargetError(f"only {running} of {count} consumer tasks were running after {self.start_timeout:g}s"
                                      + (f"; the service says: {events}" if events else ""))
                if interrupted.wait(self.poll_interval):
                    raise TargetError("interrupted while waiting for the consumer tasks to start")

    def _start_failure(self) -> str | None:
        """A message when a task of the service stopped without ever working, else None."""
        arns = [a for a in self._list_tasks("STOPPED") if a not in self._inspected_failures]
        if not arns:
            return None
        self._inspected_failures.update(arns)
        for task in self._describe_tasks(arns):
            reasons = [task.get("stoppedReason") or "", task.get("stopCode") or ""]
            reasons += [c.get("reason") or "" for c in task.get("containers", [])]
            text = " ".join(r for r in reasons if r)
            if task.get("stopCode") == "TaskFailedToStart" or _START_FAILURES.search(text):
                exit_codes = [c["exitCode"] for c in task.get("containers", []) if c.get("exitCode") is not None]
                hint = ""
                if re.search(r"CannotPull|ResourceNotFound", text, re.I):
                    hint = f"; is the image pushed? run `sqslab image push --region {self._region}`"
                elif "ResourceInitializationError" in text:
                    hint = "; the task could not reach ECR or CloudWatch Logs (network, or the execution role)"
                elif exit_codes:
                    hint = f"; the consumer exited with {exit_codes[0]}: see its log group {self._log_group}"
                return f"consumer task {_task_id(task['taskArn'])} stopped before it ran: {text.strip()}{hint}"
        return None

    def kill(self, count: int, rng: Any) -> list[str]:
        """StopTask on `count` running tasks chosen by the seeded rng; the service replaces them.

        ECS stops a task with SIGTERM and SIGKILL 30 s later: the consumer finishes the
        message in hand (locally a kill is SIGKILL at once)."""
        with self._lock:
            running = sorted(self._list_tasks("RUNNING"))  # sorted: the same tasks give the same choice
            chosen = sorted(rng.sample(running, min(count, len(running))))
            for arn in chosen:
                self._ecs.stop_task(cluster=self._cluster, task=arn, reason=KILL_REASON)
            killed = [_task_id(arn) for arn in chosen]
        self._emit({"event": "tasks_killed", "tasks": killed})
        return killed

    def scale(self, to: int) -> None:
        """Set the service's desired count (scale-in: ECS stops tasks with SIGTERM)."""
        with self._lock:
            self._ecs.update_service(cluster=self._cluster, service=self._service, desiredCount=to)
            self._desired = to
        self._emit({"event": "service_scaled", "desired": to})

    def set_consumer(self, knobs: Any) -> None:
        """Register a revision of the service's task definition with these knobs in the
        container environment (QUEUE_URL, AWS_REGION, SEED and the rest kept), and roll
        the service to it."""
        with self._lock:
            service = self._describe_service()
            found = self._ecs.describe_task_definition(taskDefinition=service["taskDefinition"], include=["TAGS"])
            definition = found["taskDefinition"]
            request = {key: copy.deepcopy(definition[key]) for key in _REGISTER_KEYS if definition.get(key) not in (None, [], {})}
            changes = knobs.to_env()
            for container in request["containerDefinitions"]:
                env = {e["name"]: e["value"] for e in container.get("environment", [])}
                env.update(changes)
                container["environment"] = [{"name": k, "value": env[k]} for k in sorted(env)]
            if found.get("tags"):
                request["tags"] = found["tags"]
            new = self._ecs.register_task_definition(**request)["taskDefinition"]
            self._registered.append(new["taskDefinitionArn"])
            self._save_state()
            self._ecs.update_service(cluster=self._cluster, service=self._service, taskDefinition=new["taskDefinitionArn"])
        self._emit({"event": "task_definition_registered", "revision": new["revision"], "task_definition": new["taskDefinitionArn"]})

    def tasks(self) -> TaskCounts:
        """Running and desired from DescribeServices; started = task ARNs ever seen
        (ListTasks, at most once a second). The last counts when AWS does not answer."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            service = self._describe_service()
            self._poll_tasks()
        except (ClientError, BotoCoreError) as exc:
            self._emit({"event": "target_error", "call": "tasks", "error": str(exc)})
            return self._last_counts
        with self._lock:
            self._last_counts = TaskCounts(service["runningCount"], service["desiredCount"], len(self._seen_tasks))
            return self._last_counts

    def consumer_events(self) -> list[dict[str, Any]]:
        """Consumer events from the log group since the last read, each `source: consumer`.

        They arrive with CloudWatch's ingestion lag (seconds); the log group is read at
        most every log_poll_interval, the rest of the time this returns what is pending."""
        with self._log_lock:
            if self._logs is not None and time.monotonic() - self._last_log_poll >= self.log_poll_interval + self._log_backoff:
                self._poll_logs()
            events, self._pending = self._pending, []
        events.sort(key=lambda e: e.get("ts", 0))
        return events

    def stop_consumers(self, grace: float = 10.0) -> None:
        """Desired count 0; wait (bounded) until no task runs (ECS sends SIGTERM, the
        consumer finishes its message); then read the logs until they are quiet."""
        if self._ecs is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.scale(0)
            deadline = time.monotonic() + max(grace, 30.0) + self.stop_timeout
            running = self._describe_service()["runningCount"]
            while running > 0 and time.monotonic() < deadline:
                time.sleep(self.poll_interval)
                self._drain_logs_once()
                running = self._describe_service()["runningCount"]
            if running:
                self._emit({"event": "tasks_still_running", "running": running})
        except (ClientError, BotoCoreError) as exc:
            self._emit({"event": "target_error", "call": "stop_consumers", "error": str(exc)})
        quiet_since = time.monotonic()
        end = quiet_since + self.log_drain_timeout
        while time.monotonic() < end:
            if self._drain_logs_once():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= self.log_quiet:
                break
            time.sleep(self.log_poll_interval)
        try:
            self._poll_tasks(force=True)
        except (ClientError, BotoCoreError):
            pass

    def teardown(self) -> None:
        """Destroy the stack (or, with keep, scale it to 0 and say how to destroy it later).
        Idempotent; raises TargetError when the destroy fails."""
        if self._torn_down:
            return
        self._torn_down = True
        terraform, self._terraform = self._terraform, None
        if terraform is None:
            return
        try:
            if self.keep:
                self._keep_stack()
                return
            progress = _TerraformProgress(self._emit, self._show)
            if self.state_dir is not None and stack_has_resources(self.state_dir):
                self._show("terraform: destroying the stack (1-3 minutes)")
            _destroy(terraform, self.state_dir, self._run_dir, progress.for_command("destroy"), self._emit)
        finally:
            terraform.close()

    def _keep_stack(self) -> None:
        if self._ecs is not None:
            try:
                self.scale(0)  # a kept stack costs nothing while no task runs
            except Exception as exc:
                self._emit({"event": "target_error", "call": "scale", "error": str(exc)})
        hint = f"sqslab destroy {self._run_dir}"
        self._emit({"event": "stack_kept", "state_dir": str(self.state_dir), "destroy": hint})
        self._show(f"the stack is kept (service at 0 tasks); remove it with: {hint}")

    # ------------------------------------------------------------ AWS reads

    def _describe_service(self) -> dict[str, Any]:
        found = self._ecs.describe_services(cluster=self._cluster, services=[self._service])
        if not found.get("services"):
            raise TargetError(f"the ECS service {self._service} is not in cluster {self._cluster}: {found.get('failures')}")
        return found["services"][0]

    def _container_env(self, task_definition: str) -> dict[str, str]:
        definition = self._ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        containers = definition.get("containerDefinitions") or [{}]
        return {e["name"]: e["value"] for e in containers[0].get("environment", [])}

    def _list_tasks(self, desired: str) -> list[str]:
        arns: list[str] = []
        for page in self._ecs.get_paginator("list_tasks").paginate(cluster=self._cluster, serviceName=self._service, desiredStatus=desired):
            arns.extend(page.get("taskArns", []))
        return arns

    def _describe_tasks(self, arns: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):
            found.extend(self._ecs.describe_tasks(cluster=self._cluster, tasks=arns[start:start + 100]).get("tasks", []))
        return found

    def _poll_tasks(self, force: bool = False) -> None:
        """Note new tasks (task_started) and newly stopped ones (task_exited, with why)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_tasks_poll < self.tasks_poll_interval:
                return
            self._last_tasks_poll = now
            running, stopped = self._list_tasks("RUNNING"), self._list_tasks("STOPPED")
            for arn in running + stopped:
                if arn not in self._seen_tasks:
                    self._seen_tasks.add(arn)
                    self._emit({"event": "task_started", "task": _task_id(arn)})
            newly = [arn for arn in stopped if arn not in self._stopped_tasks]
            self._stopped_tasks.update(newly)
        for task in self._describe_tasks(newly) if newly else []:
            reason = task.get("stoppedReason") or ""
            codes = [c.get("exitCode") for c in task.get("containers", []) if c.get("exitCode") is not None]
            if reason == KILL_REASON:
                kind = "killed"
            elif "Essential container" in reason:
                kind = "crashed" if 137 in codes else "exited"
            else:
                kind = "stopped"  # scale-in, a new revision, the end of the run
            self._emit({"event": "task_exited", "task": _task_id(task["taskArn"]), "reason": kind, "stopped_reason": reason,
                        "stop_code": task.get("stopCode"), "exit_code": codes[0] if codes else None})

    def _drain_logs_once(self) -> int:
        with self._log_lock:
            before = len(self._pending)
            self._poll_logs()
            return len(self._pending) - before

    def _poll_logs(self) -> None:
        """FilterLogEvents from a little before the newest event seen, every page; events
        already seen (by eventId) are skipped, so late ones are caught and none twice."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._last_log_poll = time.monotonic()
        start = max(self._log_floor_ms, self._newest_ms - int(self.log_lookback * 1000))
        request: dict[str, Any] = {"logGroupName": self._log_group, "startTime": start}
        if self.log_page_limit:
            request["limit"] = self.log_page_limit
        try:
            while True:
                page = self._logs.filter_log_events(**request)
                for item in page.get("events", []):
                    self._take_log_event(item)
                token = page.get("nextToken")
                if not token:  # a page may be empty while a token says there is more
                    break
                request["nextToken"] = token
            self._log_backoff = 0.0
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return  # the group appears with the stack
            if code in ("ThrottlingException", "LimitExceededException"):
                self._log_backoff = min(30.0, max(2.0, self._log_backoff * 2))
            self._emit({"event": "target_error", "call": "filter_log_events", "error": str(exc)})
        except BotoCoreError as exc:
            self._emit({"event": "target_error", "call": "filter_log_events", "error": str(exc)})
        horizon = start - int(self.log_lookback * 1000)
        self._seen_events = {k: ts for k, ts in self._seen_events.items() if ts >= horizon}

    def _take_log_event(self, item: dict[str, Any]) -> None:
        event_id, timestamp = item.get("eventId"), int(item.get("timestamp", 0))
        if event_id in self._seen_events:
            return
        self._seen_events[event_id] = timestamp
        self._newest_ms = max(self._newest_ms, timestamp)
        try:
            event = json.loads(item.get("message", ""))
        except ValueError:
            return  # a diagnostic line from stderr, a traceback
        if not isinstance(event, dict) or "event" not in event:
            return
        event["source"] = "consumer"
        event.setdefault("task", item.get("logStreamName", "").rsplit("/", 1)[-1])
        event.setdefault("ts", timestamp / 1000)
        self._pending.append(event)

    # ------------------------------------------------------------ helpers

    def _show(self, line: str) -> None:
        """A line for the person running it: a `notice` event, and stderr unless quiet."""
        self._emit({"event": "notice", "message": line})
        if not self._quiet:
            print(f"aws: {line}", file=sys.stderr, flush=True)

    def _save_state(self, **fields: Any) -> None:
        """Keep what `sqslab destroy` needs beyond Terraform's state."""
        if self.state_dir is None:
            return
        path = self.state_dir / STATE_FILE
        data = _read_json(path)
        data.update(fields)
        data.update({"region": self._region, "endpoint_url": self._endpoint_url,
                     "task_definitions": sorted(set(data.get("task_definitions", [])) | set(self._registered))})
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")


class _TerraformProgress:
    """Every terraform line to the log as `{"event": "terraform", ...}` (the CLI shows the
    ones that matter); resources done so far as `terraform_progress` events; the plan's
    size as a notice."""

    def __init__(self, emit: Log, show: Callable[[str], None]) -> None:
        self._emit, self._show = emit, show

    def for_command(self, command: str) -> Callable[[str], None]:
        state = {"total": None, "done": 0}

        def on_line(line: str) -> None:
            self._emit({"event": "terraform", "command": command, "line": line})
            plan = _PLAN.search(line)
            if plan:
                add, change, destroy = (int(n) for n in plan.groups())
                state["total"] = destroy if command == "destroy" else add + change
                self._show(f"terraform {command}: {line.strip()}")
                return
            done = _DONE.match(line.strip())
            if done:
                state["done"] += 1
                self._emit({"event": "terraform_progress", "command": command, "done": state["done"],
                            "total": state["total"], "resource": done.group("address")})

        return on_line


# ---------------------------------------------------------------- destroy


def stack_has_resources(state_dir: Path) -> bool:
    """True when the Terraform state under ``state_dir`` still holds managed resources."""
    path = Path(state_dir) / "stack" / "terraform.tfstate"
    if not path.is_file():
        return False
    try:
        state = json.loads(path.read_text() or "{}")
    except ValueError:
        return True  # let terraform say what is wrong with it
    return any(r.get("mode") == "managed" and r.get("instances") for r in state.get("resources", []))


def _recorded_endpoint(state_dir: Path) -> str | None:
    return _read_json(Path(state_dir) / "target.json").get("endpoint_url")


def find_kept_run(runs_dir: Path) -> Path | None:
    """The latest run directory under ``runs_dir`` (sweeps included) whose AWS stack
    still has resources, by the time its state was written; None when there is none."""
    found = []
    for pattern in ("*/terraform", "*/*/terraform"):
        for state_dir in Path(runs_dir).glob(pattern):
            if stack_has_resources(state_dir) and _recorded_endpoint(state_dir) is None:
                found.append((state_dir.joinpath("stack", "terraform.tfstate").stat().st_mtime, state_dir.parent))
    return max(found)[1] if found else None


def destroy_run(run_dir: Path | str, on_line: Callable[[str], None] | None = None, endpoint_url: str | None = None) -> bool:
    """Destroy the stack a run kept, from RUN_DIR/terraform. Idempotent: False when there
    is nothing to destroy. TargetError when terraform fails (run it again to finish)."""
    from sqslab import terraform

    run_dir = Path(run_dir)
    state_dir = run_dir / "terraform"
    if not stack_has_resources(state_dir):
        return False
    recorded = _recorded_endpoint(state_dir)
    if recorded and not endpoint_url:
        raise TargetError(f"{run_dir} holds a stack applied to the local emulator at {recorded}, not to AWS: "
                          "nothing billable was created, and that emulator is gone with its run")
    show = on_line or (lambda line: None)

    def emit(event: dict[str, Any]) -> None:
        if event.get("event") == "target_error":
            show(f"warning: {event['call']}: {event['error']}")

    try:
        tf = terraform.Terraform(state_dir, endpoint_url=endpoint_url)
    except terraform.TerraformError as exc:
        raise TargetError(str(exc)) from exc
    with tf:
        return _destroy(tf, state_dir, run_dir, show, emit)


def _destroy(tf: Any, state_dir: Path | None, run_dir: Path | None, on_line: Callable[[str], None], emit: Log) -> bool:
    """terraform destroy, then deregister the task definition revisions sqslab added."""
    from sqslab import terraform

    try:
        destroyed = tf.destroy(on_line=on_line)
    except terraform.TerraformError as exc:
        raise TargetError(_failed_message("destroy", exc, run_dir)) from exc
    if state_dir is not None:
        _deregister(Path(state_dir), emit)
    emit({"event": "stack_destroyed" if destroyed else "stack_empty"})
    return destroyed


def _deregister(state_dir: Path, emit: Log) -> None:
    """Task definition revisions registered by set_consumer: Terraform never knew them."""
    path = state_dir / STATE_FILE
    data = _read_json(path)
    arns = data.get("task_definitions") or []
    if not arns:
        return
    import boto3

    from sqslab.emulator import DUMMY_ENV

    credentials = {}
    if data.get("endpoint_url"):  # an emulator: never the user's real credentials
        credentials = {"aws_access_key_id": DUMMY_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": DUMMY_ENV["AWS_SECRET_ACCESS_KEY"]}
    ecs = boto3.session.Session(region_name=data.get("region"), **credentials).client("ecs", endpoint_url=data.get("endpoint_url"))
    left = []
    for arn in arns:
        try:
            ecs.deregister_task_definition(taskDefinition=arn)
        except Exception as exc:  # harmless leftovers: an inactive revision costs nothing
            if "INACTIVE" not in str(exc):
                left.append(arn)
                emit({"event": "target_error", "call": "deregister_task_definition", "error": str(exc)})
    data["task_definitions"] = left
    path.write_text(json.dumps(data, indent=2) + "\n")


def _failed_message(command: str, exc: Exception, run_dir: Path | None) -> str:
    where = str(run_dir) if run_dir is not None else "RUN_DIR"
    text = str(exc)
    if command == "apply":
        after = ("What was created is destroyed as the run ends (unless --keep); "
                 f"if that fails too, run `sqslab destroy {where}` to clean up what was created.")
    else:
        after = f"Some resources may be left: run `sqslab destroy {where}` to clean up what was created."
    if not text.startswith(f"terraform {command} failed"):
        text = f"terraform {command} failed: {text}"
    return f"{text}\n{after}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def aws_tfvars(scenario: Any, image_tag: str) -> tuple[dict[str, Any], str]:
    """The Terraform context and tfvars text of one AWS run of this scenario (what
    `sqslab plan --target aws` shows): a stack name of its own, and the shared ECR
    repository that `sqslab image push` made."""
    from sqslab import terraform

    context = scenario.terraform_context(image_tag)
    context["name"] = stack_name(context["name"])
    tfvars = terraform.render_tfvars(context) + "\n# Added by the aws target: the repository exists already.\necr_create_repository = false\n"
    return context, tfvars


def stack_name(base: str) -> str:
    """The scenario's stack name plus 4 hex digits: one stack per run (at most 37 characters)."""
    return f"{base[:32].rstrip('-')}-{uuid.uuid4().hex[:4]}"


def _task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """An Event that SIGINT or SIGTERM sets while inside, so a long wait ends at Ctrl-C.

    The handlers already installed (the runner's) are still called, and restored after.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        interrupted.set()
        earlier = previous.get(signum)
        if callable(earlier):
            earlier(signum, frame)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield interrupted
    finally:
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)


@hookimpl
def register_targets(register: Callable[..., None]) -> None:
    """Register the AWS target."""
    register("aws", AwsTarget, description="real SQS + DLQ and ECS Fargate consumers from the project's Terraform stack (your AWS account; costs money)")
