"""The AWS target: the project's Terraform stack applied with your credentials, the
consumer as an ECS Fargate service, its events read back from CloudWatch Logs.

A Lambda consumer (consumer.lambda) is a function behind an SQS event source mapping
instead (sqslab.targets.aws.function): its package is built from your folder at provision
(sqslab.targets.aws.function_zip) and no image is needed; its events come from the
function's log group, written by sqslab's entry in front of your handler.

A run: the consumer image must be in ECR already (`sqslab image push`); `provision`
renders tfvars from the scenario, applies `terraform/` into `RUN_DIR/terraform` (state,
working copy, `.env`) and returns the queues (sqslab.targets.aws.stack). The service
starts with the scenario's consumer count; actions become ECS calls (StopTask,
UpdateService, a new task definition revision); events come from the tasks' log group
(sqslab.targets.aws.logs). At the end the stack is destroyed, unless `keep` (then the
service is scaled to 0 and `sqslab destroy RUN_DIR` removes it later).

`endpoint_url` points everything (Terraform included) at an emulator, for tests only.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqslab.consumers import Consumer
from sqslab.hookspecs import hookimpl
from sqslab.targets import Endpoints, Log, Target, TargetError, TargetOption, TaskCounts
from sqslab.targets.aws.faults import ClientFaults, plan_notes
from sqslab.targets.aws.function import LambdaFunction
from sqslab.targets.aws.logs import LogReader
from sqslab.targets.aws.service import KILL_REASON, EcsService
from sqslab.targets.aws.stack import (
    TerraformProgress,
    aws_client,
    check_image,
    destroy,
    destroy_run,
    failed_message,
    find_kept_run,
    save_state,
    stack_has_resources,
    stack_tfvars,
)

__all__ = ["KILL_REASON", "AwsTarget", "destroy_run", "find_kept_run", "stack_has_resources"]

OPTIONS = (
    TargetOption("keep", "Keep the stack after the run (tear it down later with `sqslab destroy`).", flag=True, default=False),
    TargetOption("image_tag", "The consumer image's tag in ECR (default: the git revision).", metavar="TAG"),
)


class AwsStack:
    """The AWS target's stack: the project's Terraform applied for a scenario, and the
    clients of what it made (AwsTarget drives the consumers on it)."""

    name = "aws"

    # Waits, in seconds; instance attributes so tests can shorten them.
    start_timeout = 600.0  # Fargate: ENI, image pull, start; usually 30-90 s
    stop_timeout = 120.0  # beyond the grace: ECS's 30 s stopTimeout, then deprovisioning
    poll_interval = 2.0  # DescribeServices while waiting for a count
    tasks_poll_interval = 1.0  # ListTasks for tasks.started, at most this often
    reader_class = LogReader  # its intervals can be shortened in a subclass, for tests

    def __init__(self, log: Log | None = None, keep: bool = False, image_tag: str | None = None,
                 endpoint_url: str | None = None, state_dir: Path | str | None = None) -> None:
        """log receives the target's events (`notice` events are lines for the person
        running it); keep leaves the stack up after the run; image_tag is the consumer
        image's tag in ECR (default: the git revision); endpoint_url is for tests against
        an emulator; state_dir replaces RUN_DIR/terraform."""
        self._emit = log or (lambda event: None)
        self.keep = keep
        self._image_tag = image_tag
        self._consumer: Consumer | None = None  # what the tasks run (sqslab.consumers); set_consumer revises it
        self._pending: list[dict[str, Any]] = []  # consumer events of the target's own making
        self._endpoint_url = endpoint_url
        self._state_dir_option = Path(state_dir) if state_dir is not None else None
        self._lock = threading.RLock()
        self._run_dir: Path | None = None
        self.state_dir: Path | None = None
        self._terraform: Any = None
        self._endpoints: Endpoints | None = None
        self._region = "us-west-1"
        self.ecs: EcsService | None = None
        self.function: LambdaFunction | None = None  # a Lambda consumer's function and mapping, instead of ECS
        self.logs: LogReader | None = None
        self._registered: list[str] = []
        self._torn_down = False
        self._faults = ClientFaults(self._emit)  # real SQS takes no injected faults

    def plan(self, scenario: Any) -> list[tuple[str, str]]:
        """The Terraform variables a run would apply (no AWS call)."""
        from sqslab.targets.aws.image import git_revision

        check_scenario(scenario)
        _, tfvars = stack_tfvars(scenario, self._image_tag or git_revision() or "GIT-REVISION")
        sections = [("terraform.tfvars", tfvars)]
        notes = plan_notes(scenario)
        if notes:
            sections.append(("sqs", "".join(f"- {n}\n" for n in notes)))
        consumer_notes = scenario.consumer.aws_notes()
        if consumer_notes:
            sections.append(("consumer", "".join(f"- {n}\n" for n in consumer_notes)))
        return sections

    # ------------------------------------------------------------ provisioning

    def provision(self, scenario: Any, run_dir: Path) -> Endpoints:
        """Apply the stack for this scenario into RUN_DIR/terraform and return its queues."""
        from sqslab.targets.aws import terraform
        from sqslab.targets.aws.image import git_revision

        consumer = self._consumer = scenario.consumer
        check_scenario(scenario)
        self._run_dir = Path(run_dir)
        self.state_dir = (self._state_dir_option or self._run_dir / "terraform").resolve()
        lambda_kind = consumer.compute == "lambda"
        tag = "" if lambda_kind else self._image_tag or git_revision() or ("own-image" if consumer.image else "")
        if not tag and not lambda_kind:
            raise TargetError("no consumer image tag: pass --image-tag TAG (the tag `sqslab image push` printed), "
                              "or run from a git checkout, whose revision is the default tag")
        package = lambda_package(consumer, self.state_dir) if lambda_kind else None
        variables, tfvars = stack_tfvars(scenario, tag, package=package)
        self._region = variables["region"]
        self._faults.start(scenario)
        if consumer.image is None and not lambda_kind:  # an image of your own is yours to have pushed (docs/aws.md)
            check_image(self._client("ecr"), variables["ecr_repository_name"], tag, self._region)
        self._emit({"event": "stack", "name": variables["name"], "region": self._region, "image_tag": tag,
                    "state_dir": str(self.state_dir)})
        save_state(self.state_dir, name=variables["name"], image_tag=tag, region=self._region, endpoint_url=self._endpoint_url)
        try:
            self._terraform = terraform.Terraform(self.state_dir, endpoint_url=self._endpoint_url)
        except terraform.TerraformError as exc:
            raise TargetError(str(exc)) from exc
        progress = TerraformProgress(self._emit)
        self._show(f"terraform: applying stack {variables['name']} in {self._region} (2-3 minutes); state in {self.state_dir}")
        try:
            self._terraform.init(on_line=progress.for_command("init"))
            outputs = self._terraform.apply(tfvars, on_line=progress.for_command("apply"))
        except terraform.TerraformError as exc:
            raise TargetError(failed_message("apply", exc, self._run_dir)) from exc
        terraform.write_env_file(outputs, self.state_dir / ".env", endpoint_url=self._endpoint_url)
        return self.use_stack(outputs)

    def use_stack(self, outputs: dict[str, Any]) -> Endpoints:
        """Work with an applied stack, given its Terraform outputs (``{name: value}``)."""
        lambda_kind = outputs.get("consumer_kind") == "lambda"
        needed = ("function_name", "mapping_uuid") if lambda_kind else ("cluster_name", "service_name")
        missing = [name for name in ("queue_url", "log_group_name", *needed) if not outputs.get(name)]
        if missing:
            raise TargetError(f"the stack has no output {', '.join(missing)}; is terraform/ the sqslab stack?")
        queue_url, log_group = outputs["queue_url"], outputs["log_group_name"]
        self._region = outputs.get("region") or self._region
        if lambda_kind:
            reserved = getattr(self._consumer, "reserved_concurrency", None)
            self.function = LambdaFunction(self._client("lambda"), outputs["function_name"], outputs["mapping_uuid"],
                                           self._emit, reserved)
        else:
            self.ecs = EcsService(self._client("ecs"), outputs["cluster_name"], outputs["service_name"], self._emit,
                                  self._region, log_group)
        self.logs = self.reader_class(self._client("logs"), log_group, self._emit, since=time.time() - 120)
        self._endpoints = Endpoints(queue_url, outputs.get("dlq_url") or None, self._endpoint_url, self._region)
        return self._endpoints

    def _client(self, service: str) -> Any:
        return aws_client(service, self._region, self._endpoint_url)

    def sqs_client(self, observer: bool = False) -> Any:
        """A boto3 SQS client for the stack's region, with your credential chain. Real SQS
        takes no injected faults: the scenario's are made client-side, in the clients of
        the system (the producer's, the actions'; the consumers make their own), not in an
        observer's."""
        assert self._endpoints is not None, "provision first"
        client = self._client("sqs")
        return client if observer else self._faults.install(client)

    def _show(self, line: str) -> None:
        """A line for the person running it (the CLI shows `notice` events unless quiet)."""
        self._emit({"event": "notice", "message": line})



class AwsTarget(AwsStack, Target):
    """Real SQS + DLQ and ECS Fargate consumers (or a Lambda function), from the project's Terraform stack."""

    # ------------------------------------------------------------ the service

    def _service(self) -> EcsService:
        if self.ecs is None:
            raise TargetError("the AWS target has no stack yet")
        return self.ecs

    def start_consumers(self, count: int, consumer: Consumer) -> None:
        """Make sure the service runs `count` tasks of this consumer, and wait until ECS
        reports them running (a task that cannot start fails the run at once). A Lambda
        consumer's mapping is enabled (and its concurrency set) instead."""
        self._consumer = consumer
        if self.function is not None:
            with _interruptible() as interrupted:
                self._tell(self.function.start(consumer, self.start_timeout, self.poll_interval, interrupted))
            return
        service = self._service()
        described = service.describe()
        current = service.container_env(described["taskDefinition"])
        if any(current.get(key) != value for key, value in self._container_env(consumer).items()):
            self.set_consumer(consumer)
        if described["desiredCount"] != count:
            self.scale(count)
        with _interruptible() as interrupted:
            service.wait_running(count, self.start_timeout, self.poll_interval, interrupted)
        if not consumer.says_started:
            self._tell(ecs_started(count))

    def kill(self, count: int, rng: Any) -> list[str]:
        """StopTask on `count` running tasks chosen by the seeded rng; the service replaces them.

        ECS stops a task with SIGTERM and SIGKILL 30 s later: the consumer finishes the
        message in hand (locally a kill is SIGKILL at once). Lambda ends no execution
        environment on request: refused for a Lambda consumer."""
        if self.function is not None:
            raise TargetError("kill_consumer: on AWS nothing can end a Lambda execution environment mid-invocation "
                              "(the local target does it); a function timeout or an error in the handler fails a batch")
        killed = self._service().kill(count, rng)
        self._emit({"event": "tasks_killed", "tasks": killed})
        return killed

    def scale(self, to: int) -> None:
        """Set the service's desired count (scale-in: ECS stops tasks with SIGTERM)."""
        self._service().scale(to)
        self._emit({"event": "service_scaled", "desired": to})

    def set_consumer(self, consumer: Consumer) -> None:
        """Register a revision of the service's task definition with this consumer's
        environment (and the fault rules, for a consumer that applies them) in the container
        (the queue URL, region and the rest kept), and roll the service to it. A Lambda
        consumer gets a new function configuration instead (environment, timeout, memory)."""
        self._consumer = consumer
        if self.function is not None:
            answer = self.function.configure(consumer)
            self._emit({"event": "function_configured", "function": self.function.function,
                        "revision": answer.get("RevisionId")})
            return
        new = self._service().roll(self._container_env(consumer))
        self._registered.append(new["taskDefinitionArn"])
        if self.state_dir is not None:
            save_state(self.state_dir, task_definitions=self._registered)
        self._emit({"event": "task_definition_registered", "revision": new["revision"], "task_definition": new["taskDefinitionArn"]})

    def tune(self, consumer: Consumer) -> None:
        """A Lambda consumer's mapping state and concurrency and its reserved concurrency, in
        place; nothing on ECS changes in place."""
        if self.function is None:
            raise TargetError(f"the aws target cannot change a {consumer.kind} consumer in place")
        self._consumer = consumer
        self._tell([self.function.tune(consumer)])

    def _tell(self, events: list[dict[str, Any]]) -> None:
        """Consumer events of the target's own making, for the next consumer_events()."""
        with self._lock:
            self._pending += events

    def _container_env(self, consumer: Consumer) -> dict[str, str]:
        """What sqslab sets in the container: the consumer's environment, and the run's fault
        rules for a consumer that applies them."""
        return {**consumer.environment(), **(self._faults.task_env() if consumer.applies_faults else {})}

    def sqs_fault(self, rule: dict[str, Any]) -> None:
        """An API fault from now on: at once in the producer's and the actions' clients, and
        in the consumer tasks through a rolling deployment of their environment (the new
        tasks apply it; ECS takes its usual minute or two to replace them)."""
        self._faults.plan.add(rule)
        if self._consumer is not None and self._consumer.applies_faults:
            self.set_consumer(self._consumer)

    def tasks(self) -> TaskCounts:
        """Running and desired from DescribeServices; started = task ARNs ever seen
        (ListTasks, at most once a second). The last counts when AWS does not answer.
        A Lambda consumer's mapping counts as one task while it is enabled."""
        if self.function is not None:
            return self.function.counts()
        return self._service().counts(self.tasks_poll_interval)

    def consumer_events(self) -> list[dict[str, Any]]:
        """Consumer events from the log group since the last read, each `source: consumer`,
        with CloudWatch's ingestion lag (seconds)."""
        events = self.logs.events() if self.logs is not None else []
        names = self._consumer.events if self._consumer is not None else None
        if names is not None:
            events = [e for e in events if e.get("event") in names]  # the rest is the consumer's own log
        with self._lock:  # the actions' thread may tell one meanwhile
            events, self._pending = self._pending + events, []
        return events

    def stop_consumers(self, grace: float = 10.0) -> None:
        """Desired count 0; wait (bounded) until no task runs (ECS sends SIGTERM, the
        consumer finishes its message); then read the logs until they are quiet. A Lambda
        consumer's mapping is disabled instead, its invocations in flight let end."""
        if self.function is not None and self.logs is not None:
            grace = (self._consumer.stop_grace if self._consumer is not None else None) or grace
            self._tell(self.function.stop(self.logs, grace + self.stop_timeout, self.poll_interval))
            return
        if self.ecs is None or self.logs is None:
            return
        self.ecs.stop_all(self.logs, max(grace, 30.0) + self.stop_timeout, self.poll_interval, self.tasks_poll_interval)

    def queue_states(self, queue_urls: list[str], messages: bool = False) -> None:
        """Real SQS has no exact view: the runner reads the queues through SQS."""
        return None

    def journal_key(self) -> None:
        """No SQS journal on AWS."""
        return None

    def failure(self) -> str | None:
        """Nothing of the AWS target's own dies unnoticed: AWS errors surface as they happen."""
        return None

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
            progress = TerraformProgress(self._emit)
            if self.state_dir is not None and stack_has_resources(self.state_dir):
                self._show("terraform: destroying the stack (1-3 minutes)")
            destroy(terraform, self.state_dir, self._run_dir, progress.for_command("destroy"), self._emit)
        finally:
            terraform.close()

    def _keep_stack(self) -> None:
        if self.ecs is not None or self.function is not None:
            try:  # a kept stack costs nothing while no task runs, no mapping polls
                if self.function is not None:
                    self.function.disable()
                else:
                    self.scale(0)
            except Exception as exc:  # noqa: BLE001 - keeping the stack goes on; say why it was not scaled
                self._emit({"event": "target_error", "call": "scale", "error": str(exc)})
        hint = f"sqslab destroy {self._run_dir}"
        self._emit({"event": "stack_kept", "state_dir": str(self.state_dir), "destroy": hint})
        idle = "the mapping disabled" if self.function is not None else "service at 0 tasks"
        self._show(f"the stack is kept ({idle}); remove it with: {hint}")


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
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


@hookimpl
def register_targets(register: Callable[..., None]) -> None:
    """Register the AWS target."""
    register("aws", AwsTarget, options=OPTIONS,
             description="real SQS + DLQ and ECS Fargate consumers from the project's Terraform stack (your AWS account; costs money)")


def check_scenario(scenario: Any) -> None:
    """What the consumer needs on ECS (its image, environment names Terraform takes), and
    what the aws target cannot do yet (count effects, account for a producer program's
    sends), before AWS is touched."""
    problems = scenario.consumer.aws_problems()
    if scenario.effects_id is not None:
        problems.append("effects: the aws target does not count effects yet (the effects endpoint is the local "
                        "emulator's, which Fargate tasks cannot reach); run it on the local target")
    programs = [p.name for p in scenario.phases if p.kind == "producer"]
    if programs:
        problems.append(f"load: the aws target cannot account for a producer program's sends yet (phase {', '.join(programs)}: "
                        "they are read from the local emulator's SQS journal); run it on the local target")
    if problems:
        raise TargetError("; ".join(problems))


def ecs_started(count: int) -> list[dict[str, Any]]:
    """For a consumer that says nothing of its start: `started` events for the `count` tasks
    ECS reports running."""
    now = time.time()
    return [{"ts": now, "event": "started", "task": f"ecs-{i + 1}", "source": "consumer", "ready": "ECS reports it running"}
            for i in range(count)]


def lambda_package(consumer: Consumer, state_dir: Path) -> Any:
    """The Lambda consumer's deployment package, in the state folder (TargetError: a limit, a clash)."""
    from sqslab.targets.aws.function_zip import PackageError, build

    if consumer.folder is None:
        raise TargetError(f"a {consumer.kind} consumer has no code to package")
    try:
        return build(consumer.folder, state_dir / "function.zip")
    except (PackageError, OSError) as exc:
        raise TargetError(str(exc)) from exc
