"""The AWS target, offline: ECS actions and log reading against moto in-process, a whole
provision and teardown with Terraform against the embedded emulator, a failed apply,
`destroy_run`, and a whole run through the runner with ECS simulated (a fake agent runs
consumer processes for the service and ships their stdout to CloudWatch Logs).

moto does not start a service's tasks by itself (and ignores ListTasks' serviceName):
the fixture runs them with RunTask as the service scheduler would, `startedBy`
ecs-svc and group `service:NAME`. UpdateService's desiredCount becomes runningCount at
once there, which is what a stopped (or scaled) service converges to on AWS.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqslab.consumers.builtin import BuiltinConsumer, Knobs, task_environment
from sqslab.targets import TargetError, TaskCounts
from sqslab.targets.aws.logs import LogReader
from sqslab.targets.aws.stack import stack_name
from sqslab.targets.aws.target import AwsTarget, destroy_run, find_kept_run, stack_has_resources

REGION = "us-west-1"
CLUSTER, SERVICE, FAMILY, LOG_GROUP = "lab-1a2b", "lab-1a2b-consumer", "lab-1a2b-consumer", "/ecs/lab-1a2b/consumer"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials only: nothing here may reach a real account."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")


class QuickLogReader(LogReader):
    poll_interval = 0.0
    quiet = 0.2
    drain_timeout = 5.0


def _quick(target: AwsTarget) -> AwsTarget:
    target.poll_interval = 0.01
    target.tasks_poll_interval = 0.0
    target.reader_class = QuickLogReader
    target.stop_timeout = 5.0
    target.start_timeout = 5.0
    return target


class Stack:
    """A service as the Terraform stack leaves it, in moto; and the target attached to it."""

    def __init__(self, desired: int, env: dict[str, str]) -> None:
        import boto3

        self.ecs = boto3.client("ecs", region_name=REGION)
        self.logs = boto3.client("logs", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        self.ecs.create_cluster(clusterName=CLUSTER)
        environment = [{"name": k, "value": v} for k, v in sorted(env.items())]
        self.taskdef = self.ecs.register_task_definition(
            family=FAMILY, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            executionRoleArn="arn:aws:iam::123456789012:role/lab-1a2b-consumer-execution",
            taskRoleArn="arn:aws:iam::123456789012:role/lab-1a2b-consumer-task",
            containerDefinitions=[{
                "name": "consumer", "image": "123456789012.dkr.ecr.us-west-1.amazonaws.com/sqs-demo/consumer:abc",
                "essential": True, "memory": 512, "environment": environment,
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": LOG_GROUP, "awslogs-region": REGION,
                                                                         "awslogs-stream-prefix": "consumer"}},
            }],
        )["taskDefinition"]  # fmt: skip
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/24")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the stack's; moto's ENIs need it
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/25")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="lab-1a2b-consumer", Description="tasks", VpcId=vpc)["GroupId"]
        self.network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "ENABLED"}}
        self.ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=self.taskdef["taskDefinitionArn"],
                                desiredCount=desired, launchType="FARGATE", networkConfiguration=self.network)
        self.logs.create_log_group(logGroupName=LOG_GROUP)
        queue_url = sqs.create_queue(QueueName="lab-1a2b-queue")["QueueUrl"]
        self.outputs = {"queue_url": queue_url, "dlq_url": None, "cluster_name": CLUSTER, "service_name": SERVICE,
                        "log_group_name": LOG_GROUP, "region": REGION}
        self.events: list[dict[str, Any]] = []
        self.target = _quick(AwsTarget(log=self.events.append))
        self.target.use_stack(self.outputs)

    def run_tasks(self, count: int) -> list[str]:
        """Start tasks the way the service scheduler does."""
        found = self.ecs.run_task(cluster=CLUSTER, taskDefinition=self.service()["taskDefinition"], count=count,
                                  launchType="FARGATE", startedBy="ecs-svc/0123456789", group=f"service:{SERVICE}",
                                  networkConfiguration=self.network)
        return [t["taskArn"] for t in found["tasks"]]

    def service(self) -> dict[str, Any]:
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def running_arns(self) -> list[str]:
        return self.ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]

    def log(self, stream: str, lines: list[str], ts: int | None = None) -> None:
        try:
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        base = ts or int(time.time() * 1000)
        self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                                 logEvents=[{"timestamp": base + i, "message": line} for i, line in enumerate(lines)])


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "3")  # the running count moto reports for a new service
    with mock_aws():
        lab = Stack(3, {"SQSLAB_QUEUE_URL": "https://sqs.us-west-1.amazonaws.com/123456789012/lab-1a2b-queue",
                        "AWS_REGION": REGION, **task_environment(Knobs(), 7)})
        lab.run_tasks(3)
        yield lab


# -- ECS actions -------------------------------------------------------------------------------


def test_registered_as_the_aws_target() -> None:
    from sqslab.plugins import load_plugins

    host = load_plugins(entry_points=False)
    assert host.targets["aws"].factory is AwsTarget
    assert [o.option for o in host.targets["aws"].options] == ["--keep", "--image-tag"]
    assert "Fargate" in host.targets["aws"].description


def test_kill_stops_the_tasks_the_seeded_rng_picks(stack: Stack) -> None:
    arns = sorted(stack.running_arns())
    expected = sorted(a.rsplit("/", 1)[1] for a in random.Random("7-0").sample(arns, 2))
    killed = stack.target.kill(2, random.Random("7-0"))
    assert killed == expected, "same seed, same tasks: the choice is made over the sorted task list"
    left = stack.running_arns()
    assert len(left) == 1 and left[0].rsplit("/", 1)[1] not in killed
    stopped = stack.ecs.describe_tasks(cluster=CLUSTER, tasks=[a for a in arns if a.rsplit("/", 1)[1] in killed])["tasks"]
    assert {t["stoppedReason"] for t in stopped} == {"sqslab kill_consumer"}
    assert {"event": "tasks_killed", "tasks": killed} in stack.events
    assert stack.target.kill(5, random.Random(1)) == [left[0].rsplit("/", 1)[1]], "no more than are running"
    assert stack.target.kill(1, random.Random(1)) == []


def test_scale_sets_the_desired_count(stack: Stack) -> None:
    stack.target.scale(5)
    assert stack.service()["desiredCount"] == 5
    stack.target.scale(1)
    assert stack.service()["desiredCount"] == 1


def test_set_consumer_registers_the_next_revision_and_rolls_the_service(stack: Stack) -> None:
    stack.target.set_consumer(BuiltinConsumer(Knobs(), 7).revised({"error_rate": 0.5, "work_time": "1s..2s"}))
    service = stack.service()
    assert service["taskDefinition"].endswith(f"{FAMILY}:2")
    new = stack.ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    env = {e["name"]: e["value"] for e in new["containerDefinitions"][0]["environment"]}
    assert env["SQSLAB_ERROR_RATE"] == "0.5" and (env["SQSLAB_WORK_TIME_MIN_MS"], env["SQSLAB_WORK_TIME_MAX_MS"]) == ("1000", "2000")
    assert env["SQSLAB_QUEUE_URL"].endswith("/lab-1a2b-queue") and env["AWS_REGION"] == REGION and env["SQSLAB_SEED"] == "7", "kept"
    old = stack.taskdef
    for key in ("cpu", "memory", "executionRoleArn", "taskRoleArn", "networkMode", "requiresCompatibilities"):
        assert new[key] == old[key], key
    assert new["containerDefinitions"][0]["logConfiguration"] == old["containerDefinitions"][0]["logConfiguration"]
    assert new["containerDefinitions"][0]["image"] == old["containerDefinitions"][0]["image"]
    assert any(e["event"] == "task_definition_registered" and e["revision"] == 2 for e in stack.events)


def test_sqs_fault_on_aws_is_client_side_in_the_producer_and_rolled_out_to_the_tasks(stack: Stack) -> None:
    """Real SQS takes no injected faults: the producer's client makes them itself at once,
    an observer's never, and the consumer tasks get the rule in their environment
    (SQSLAB_SQS_FAULTS) through a new task definition revision."""
    import json

    from botocore.exceptions import ClientError

    from sqslab.scenario.load import resolve_fault

    stack.target.set_consumer(BuiltinConsumer(Knobs(), 7))  # what start_consumers does first: the run's consumer
    stack.target.sqs_fault(resolve_fault({"api": "SendMessage", "error": "throttling"}, "action t", start=time.time() - 1))
    producer, observer = stack.target.sqs_client(), stack.target.sqs_client(observer=True)
    queue_url = stack.outputs["queue_url"]
    with pytest.raises(ClientError) as caught:
        producer.send_message(QueueUrl=queue_url, MessageBody="x")
    assert caught.value.response["Error"]["Code"] == "RequestThrottled"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    observer.send_message(QueueUrl=queue_url, MessageBody="x")  # sqslab's own calls are not the system's
    new = stack.ecs.describe_task_definition(taskDefinition=stack.service()["taskDefinition"])["taskDefinition"]
    env = {e["name"]: e["value"] for e in new["containerDefinitions"][0]["environment"]}
    rules = json.loads(env["SQSLAB_SQS_FAULTS"])
    assert [(r["api"], r["error"], r["label"]) for r in rules] == [(["SendMessage"], "throttling", "action t")]
    faults = [e for e in stack.events if e.get("event") == "sqs_fault"]
    assert faults and faults[0]["api"] == "SendMessage" and faults[0]["side"] == "client"


def test_tasks_counts_running_desired_and_every_task_started(stack: Stack) -> None:
    assert stack.target.tasks() == TaskCounts(running=3, desired=3, started=3)
    stack.target.kill(1, random.Random(3))
    stack.run_tasks(1)  # the service's replacement
    stack.target.scale(4)
    assert stack.target.tasks() == TaskCounts(running=4, desired=4, started=4)
    started = [e["task"] for e in stack.events if e["event"] == "task_started"]
    exited = [e for e in stack.events if e["event"] == "task_exited"]
    assert len(started) == len(set(started)) == 4
    assert [(e["reason"], e["stopped_reason"]) for e in exited] == [("killed", "sqslab kill_consumer")]


def test_tasks_poll_listtasks_at_most_once_a_second(stack: Stack) -> None:
    stack.target.tasks_poll_interval = 1.0
    assert stack.target.tasks().started == 3
    stack.run_tasks(1)
    assert stack.target.tasks().started == 3, "within the interval: counted later"
    assert stack.target.ecs is not None
    stack.target.ecs.last_poll -= 1.0
    assert stack.target.tasks().started == 4


def test_consumer_events_parse_json_lines_across_pages_once_each(stack: Stack) -> None:
    assert stack.target.logs is not None
    stack.target.logs.page_limit = 3  # FilterLogEvents pages of 3 events
    t = int(time.time() * 1000)
    stack.log("consumer/consumer/task-a", [
        json.dumps({"ts": t / 1000, "event": "started", "task": "task-a", "config": {}}),
        "consume: no task id from ECS metadata (URLError: ...)",
        json.dumps({"ts": t / 1000 + 0.1, "event": "received", "task": "task-a", "id": "m1", "receive_count": 1}),
        "[1, 2, 3]",
        "Traceback (most recent call last):",
        json.dumps({"ts": t / 1000 + 0.2, "event": "processed", "task": "task-a", "id": "m1", "receive_count": 1}),
    ], ts=t)
    stack.log("consumer/consumer/task-b", [json.dumps({"ts": t / 1000 + 0.05, "event": "started", "config": {}})], ts=t + 50)
    first = stack.target.consumer_events()
    assert [(e["event"], e["task"]) for e in first] == [
        ("started", "task-a"), ("started", "task-b"), ("received", "task-a"), ("processed", "task-a")
    ], "JSON objects only, in time order; the task from the stream when the line has none"
    assert all(e["source"] == "consumer" for e in first)
    assert stack.target.consumer_events() == [], "each event once"
    # Ingestion lag: an event older than the newest one seen arrives late; it is still read.
    stack.log("consumer/consumer/task-b", [json.dumps({"ts": t / 1000 + 0.15, "event": "failed", "id": "m2"})], ts=t + 150)
    late = stack.target.consumer_events()
    assert [(e["event"], e["task"], e["id"]) for e in late] == [("failed", "task-b", "m2")]


def test_consumer_events_are_read_at_most_every_poll_interval(stack: Stack) -> None:
    assert stack.target.logs is not None
    stack.target.logs.poll_interval = 60.0
    stack.target.consumer_events()
    stack.log("consumer/consumer/task-a", [json.dumps({"ts": time.time(), "event": "started"})])
    assert stack.target.consumer_events() == [], "the runner asks every 50 ms; CloudWatch is asked less"


def test_stop_consumers_scales_to_zero_and_collects_the_last_events(stack: Stack) -> None:
    stack.log("consumer/consumer/task-a", [json.dumps({"ts": time.time(), "event": "stopped", "reason": "SIGTERM", "processed": 3})])
    stack.target.stop_consumers(grace=0)
    service = stack.service()
    assert (service["desiredCount"], service["runningCount"]) == (0, 0)
    events = stack.target.consumer_events()
    assert [e["event"] for e in events] == ["stopped"], "read while stopping, handed over on the next call"


def test_start_consumers_sets_the_count_and_waits_until_running(stack: Stack) -> None:
    stack.target.start_consumers(2, BuiltinConsumer(Knobs(), 7))
    service = stack.service()
    assert (service["desiredCount"], service["runningCount"]) == (2, 2)
    assert service["taskDefinition"].endswith(":1"), "same knobs: no new revision"
    stack.target.start_consumers(2, BuiltinConsumer(Knobs(error_rate=0.3), 7))
    assert stack.service()["taskDefinition"].endswith(":2"), "other knobs: a revision with them"


def test_a_task_that_cannot_start_fails_at_once(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    with mock_aws():
        lab = Stack(1, Knobs().to_env())
        arn = lab.run_tasks(1)[0]
        lab.ecs.stop_task(cluster=CLUSTER, task=arn, reason="CannotPullContainerError: pull image manifest has been retried 5 time(s)")
        lab.target.start_timeout = 60.0
        t0 = time.monotonic()
        with pytest.raises(TargetError) as err:
            lab.target.start_consumers(1, BuiltinConsumer(Knobs()))
        assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert "stopped before it ran: CannotPullContainerError" in message and "sqslab image push --region us-west-1" in message


def test_start_consumers_gives_up_after_the_timeout_with_the_service_events(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    with mock_aws():
        lab = Stack(2, Knobs().to_env())
        lab.target.start_timeout = 0.2
        with pytest.raises(TargetError, match=r"only 0 of 2 consumer tasks were running after 0.2s"):
            lab.target.start_consumers(2, BuiltinConsumer(Knobs()))


class FakeTerraform:
    """Records what teardown asks of the Terraform object."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def destroy(self, on_line: Any = None) -> bool:
        self.calls.append("destroy")
        if on_line:
            on_line("Destroy complete! Resources: 23 destroyed.")
        return True

    def close(self) -> None:
        self.calls.append("close")


def test_teardown_destroys_once(stack: Stack, tmp_path: Path) -> None:
    fake = FakeTerraform()
    stack.target._terraform, stack.target.state_dir, stack.target._run_dir = fake, tmp_path, tmp_path
    stack.target.teardown()
    stack.target.teardown()
    assert fake.calls == ["destroy", "close"]
    assert {"event": "terraform", "command": "destroy", "line": "Destroy complete! Resources: 23 destroyed."} in stack.events


def test_teardown_with_keep_scales_to_zero_and_says_how_to_destroy(stack: Stack, tmp_path: Path) -> None:
    fake = FakeTerraform()
    stack.target.keep = True
    stack.target._terraform, stack.target.state_dir, stack.target._run_dir = fake, tmp_path / "terraform", tmp_path
    stack.target.teardown()
    assert fake.calls == ["close"], "no destroy"
    assert stack.service()["desiredCount"] == 0, "a kept stack runs no task"
    kept = next(e for e in stack.events if e["event"] == "stack_kept")
    assert kept["destroy"] == f"sqslab destroy {tmp_path}"


# -- provision's checks before Terraform ----------------------------------------------------------


@pytest.fixture
def scenario(host: Any) -> Any:
    from sqslab.scenario.load import load_scenario_text

    text = """
        version: 1
        name: aws-target
        seed: 3
        infra: {queue: {visibility_timeout: 5s}, dlq: {max_receive_count: 2}, consumers: 1}
        consumer: {error_rate: 0.1}
        load: [{rate: 1/s, duration: 1s}]
    """
    import textwrap

    return load_scenario_text(textwrap.dedent(text), host)


def test_provision_needs_the_image_in_ecr(aws_env: None, scenario: Any, tmp_path: Path) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        target = AwsTarget(image_tag="abc123")
        with pytest.raises(TargetError, match=r"no ECR repository sqs-demo/consumer in us-west-1: run `sqslab image push --region us-west-1` first"):
            target.provision(scenario, tmp_path)
        boto3.client("ecr", region_name=REGION).create_repository(repositoryName="sqs-demo/consumer")
        with pytest.raises(TargetError, match=r"sqs-demo/consumer:abc123 is not in ECR \(us-west-1\).*--image-tag"):
            target.provision(scenario, tmp_path)
    assert not (tmp_path / "terraform" / "stack").exists(), "nothing applied"
    target.teardown()  # nothing to tear down: no error


def test_provision_without_a_tag_outside_git_says_what_to_pass(scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqslab.targets.aws.image

    monkeypatch.setattr(sqslab.targets.aws.image, "git_revision", lambda root=None: None)
    with pytest.raises(TargetError, match=r"pass --image-tag TAG \(the tag `sqslab image push` printed\)"):
        AwsTarget().provision(scenario, tmp_path)


def test_stack_names_are_unique_and_valid() -> None:
    import re

    names = {stack_name("a" * 32) for _ in range(20)}
    assert len(names) == 20
    for name in names | {stack_name("dlq-growth")}:
        assert re.fullmatch(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", name), name


# -- destroy_run without Terraform ------------------------------------------------------------------


def _fake_state(run_dir: Path, resources: int, endpoint_url: str | None = None) -> Path:
    state_dir = run_dir / "terraform"
    (state_dir / "stack").mkdir(parents=True)
    instances = [{"attributes": {}}]
    state = {"version": 4, "resources": [{"mode": "managed", "type": "aws_sqs_queue", "name": f"q{i}", "instances": instances} for i in range(resources)]}
    (state_dir / "stack" / "terraform.tfstate").write_text(json.dumps(state))
    (state_dir / "target.json").write_text(json.dumps({"endpoint_url": endpoint_url}))
    return run_dir


def test_destroy_run_with_nothing_to_destroy_is_a_no_op(tmp_path: Path) -> None:
    assert destroy_run(tmp_path / "never-ran") is False
    assert destroy_run(_fake_state(tmp_path / "destroyed", 0)) is False


def test_destroy_run_refuses_an_emulator_stack(tmp_path: Path) -> None:
    run = _fake_state(tmp_path / "local", 3, endpoint_url="http://127.0.0.1:4566")
    with pytest.raises(TargetError, match="applied to the local emulator at http://127.0.0.1:4566, not to AWS"):
        destroy_run(run)


def test_find_kept_run_takes_the_latest_aws_stack_with_resources(tmp_path: Path) -> None:
    import os

    assert find_kept_run(tmp_path) is None
    old = _fake_state(tmp_path / "20260101-000000-a", 2)
    _fake_state(tmp_path / "20260102-000000-b", 0)  # destroyed
    _fake_state(tmp_path / "20260103-000000-c", 2, endpoint_url="http://127.0.0.1:1")  # local terraform run
    swept = _fake_state(tmp_path / "20260104-000000-s-sweep" / "01-infra.consumers_1", 1)
    assert find_kept_run(tmp_path) == swept
    os.utime(old / "terraform" / "stack" / "terraform.tfstate", (time.time() + 60, time.time() + 60))
    assert find_kept_run(tmp_path) == old
    assert stack_has_resources(old / "terraform") and not stack_has_resources(tmp_path / "20260102-000000-b" / "terraform")


# -- Terraform against the emulator ------------------------------------------------------------------

try:
    from sqslab.targets.aws import terraform as tfmod

    TERRAFORM = tfmod.find_terraform()
    MIRROR = tfmod.find_plugin_mirror() if TERRAFORM else None
except Exception:
    TERRAFORM = MIRROR = None

needs_mirror = pytest.mark.skipif(
    TERRAFORM is None or MIRROR is None,
    reason="terraform or a hashicorp/aws 5.x filesystem mirror is missing "
    "(set SQSLAB_TF_PLUGIN_MIRROR, or put one in /opt/tf-plugins or ~/.terraform.d/plugins)",
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An emulator with its service backends loaded, and the consumer image "in ECR"."""
    import boto3

    from sqslab.emulator import Emulator

    with Emulator() as emulator:
        url = emulator.endpoint_url
        kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        for service, call in (("ec2", "describe_availability_zones"), ("sts", "get_caller_identity"), ("iam", "list_roles"),
                              ("ecs", "list_clusters"), ("logs", "describe_log_groups"), ("sqs", "list_queues")):
            getattr(boto3.client(service, **kw), call)()
        ecr = boto3.client("ecr", **kw)
        ecr.create_repository(repositoryName="sqs-demo/consumer", imageTagMutability="IMMUTABLE")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:" + "0" * 64},
                    "layers": []}  # fmt: skip
        ecr.put_image(repositoryName="sqs-demo/consumer", imageManifest=json.dumps(manifest), imageTag="test")
        yield url


@pytest.mark.terraform
@needs_mirror
@pytest.mark.xdist_group("terraform-apply")  # one at a time: each runs terraform and its provider flat out
def test_provision_use_and_teardown_against_the_emulator(endpoint: str, scenario: Any, tmp_path: Path) -> None:
    import boto3

    events: list[dict[str, Any]] = []
    target = AwsTarget(log=events.append, endpoint_url=endpoint, image_tag="test")
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    try:
        endpoints = target.provision(scenario, run_dir)
        apply_s = time.monotonic() - t0
        assert endpoints.endpoint_url == endpoint and endpoints.region == REGION
        name = next(e["name"] for e in events if e["event"] == "stack")
        assert name.startswith("aws-target-") and endpoints.queue_url.endswith(f"/{name}-queue")
        assert endpoints.dlq_url and endpoints.dlq_url.endswith(f"/{name}-dlq")

        sqs = target.sqs_client()
        sqs.send_message(QueueUrl=endpoints.queue_url, MessageBody=json.dumps({"id": "m-1"}))
        got = sqs.receive_message(QueueUrl=endpoints.queue_url, WaitTimeSeconds=1)["Messages"]
        assert json.loads(got[0]["Body"]) == {"id": "m-1"}
        sqs.delete_message(QueueUrl=endpoints.queue_url, ReceiptHandle=got[0]["ReceiptHandle"])

        env = (run_dir / "terraform" / ".env").read_text()
        assert f"QUEUE_URL={endpoints.queue_url}" in env.splitlines() and "SECRET" not in env and "testing" not in env
        tfvars = (run_dir / "terraform" / "stack" / "sqslab.tfvars").read_text()
        assert 'image_tag                     = "test"' in tfvars and "ecr_create_repository         = false" in tfvars
        lines = [e["line"] for e in events if e["event"] == "terraform"]
        assert any("Apply complete!" in line for line in lines), "every terraform line goes to the log"
        progress = [e for e in events if e["event"] == "terraform_progress" and e["command"] == "apply"]
        assert progress and progress[-1]["done"] == progress[-1]["total"] and progress[-1]["total"] >= 20

        service = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                               aws_secret_access_key="testing").describe_services(cluster=name, services=[f"{name}-consumer"])["services"][0]
        assert service["desiredCount"] == 1
        target.scale(0)  # an ECS call on the stack Terraform made
        assert target.tasks().desired == 0
        assert stack_has_resources(run_dir / "terraform")
    finally:
        t1 = time.monotonic()
        target.teardown()
        destroy_s = time.monotonic() - t1
    assert not stack_has_resources(run_dir / "terraform"), "teardown destroyed the stack"
    assert any(e["event"] == "stack_destroyed" for e in events)
    target.teardown()  # idempotent
    assert destroy_run(run_dir, endpoint_url=endpoint) is False, "nothing left for sqslab destroy"
    assert destroy_run(run_dir, endpoint_url=endpoint) is False
    print(f"\naws target on the emulator: provision {apply_s:.1f} s, teardown {destroy_s:.1f} s")


@pytest.mark.terraform
@needs_mirror
def test_a_failed_apply_says_what_failed_and_how_to_clean_up(endpoint: str, scenario: Any, tmp_path: Path) -> None:
    # 4096 MiB is no Fargate size for 256 CPU units: only Terraform's validation says so.
    import dataclasses

    oversized = dataclasses.replace(scenario, infra=dataclasses.replace(scenario.infra, memory=4096))

    run_dir = tmp_path / "run"
    target = AwsTarget(endpoint_url=endpoint, image_tag="test")
    try:
        with pytest.raises(TargetError) as err:
            target.provision(oversized, run_dir)
    finally:
        target.teardown()
    message = str(err.value)
    assert message.startswith("terraform apply failed"), message
    assert "task_memory is not a valid Fargate size" in " ".join(message.split()), message
    assert f"run `sqslab destroy {run_dir}` to clean up what was created" in message


@pytest.mark.terraform
@needs_mirror
def test_destroy_run_destroys_a_kept_stack_once(endpoint: str, tmp_path: Path) -> None:
    """A stack kept by a run (here: only its log group, applied with -target to be quick)."""
    from sqslab.targets.aws.terraform import Terraform, render_tfvars

    context = {
        "region": REGION, "name": "kept-" + uuid.uuid4().hex[:6], "dlq_enabled": False, "desired_count": 0,
        "image_tag": "test", "consumer_env": {}, "log_retention_days": 1, "ecr_create_repository": False,
    }  # fmt: skip
    run_dir = tmp_path / "run"
    with Terraform(run_dir / "terraform", endpoint_url=endpoint) as tf:
        tf.prepare()
        (tf.workdir / "sqslab.tfvars").write_text(render_tfvars(context))
        tf.init()
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={tf.tfvars_path}",
                "-target=aws_cloudwatch_log_group.consumer"])
        (run_dir / "terraform" / "target.json").write_text(json.dumps({"endpoint_url": endpoint}))
    assert stack_has_resources(run_dir / "terraform")
    lines: list[str] = []
    assert destroy_run(run_dir, on_line=lines.append, endpoint_url=endpoint) is True
    assert any("Destroy complete!" in line for line in lines)
    assert not stack_has_resources(run_dir / "terraform")
    assert destroy_run(run_dir, endpoint_url=endpoint) is False, "a second call finds nothing"


# -- a whole run on the aws target, ECS simulated -----------------------------------------------------


class FakeEcsAgent(threading.Thread):
    """What ECS and its agent do for a service, in the emulator: keep desiredCount tasks of the
    service's task definition running as consumer processes (RunTask in moto, a process each),
    SIGTERM the ones StopTask or a scale-in stopped, roll to a new revision, and ship each
    task's stdout to CloudWatch Logs like the awslogs driver."""

    def __init__(self, endpoint: str, outputs: dict[str, Any], endpoints: Any, seed: int | None, consumer: Any) -> None:
        super().__init__(name="fake-ecs-agent", daemon=True)
        self.consumer = consumer  # its image "runs" what its local task runs, with the container's environment
        import boto3

        kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.ecs, self.logs = boto3.client("ecs", **kw), boto3.client("logs", **kw)
        self.cluster, self.service, self.group = outputs["cluster_name"], outputs["service_name"], outputs["log_group_name"]
        self.endpoints, self.seed = endpoints, seed
        self.procs: dict[str, Any] = {}  # task ARN -> Popen
        self.revision: dict[str, str] = {}
        self.terminating: set[str] = set()
        self.readers: list[threading.Thread] = []
        self.halt = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.halt.wait(0.1):
            try:
                self.step()
            except Exception as exc:
                self.errors.append(repr(exc))

    def step(self) -> None:
        service = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        desired, taskdef = service["desiredCount"], service["taskDefinition"]
        running = set(self.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING")["taskArns"])
        for arn, proc in list(self.procs.items()):
            if proc.poll() is not None:
                if arn in running:  # died on its own (the crash knob)
                    self.ecs.stop_task(cluster=self.cluster, task=arn, reason="Essential container in task exited")
                del self.procs[arn]
            elif arn not in running and arn not in self.terminating:  # StopTask: SIGTERM
                self.terminating.add(arn)
                proc.terminate()
        alive = [a for a in self.procs if a not in self.terminating]
        current = [a for a in alive if self.revision[a] == taskdef]
        for _ in range(desired - len(current)):
            self.start_task(taskdef)
        for arn in current[desired:] + ([a for a in alive if self.revision[a] != taskdef] if len(current) >= desired else []):
            self.ecs.stop_task(cluster=self.cluster, task=arn, reason="Scaling activity initiated by (deployment ecs-svc/1)")
            self.terminating.add(arn)
            self.procs[arn].terminate()

    def start_task(self, taskdef: str) -> None:
        import subprocess

        network = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]["networkConfiguration"]
        arn = self.ecs.run_task(cluster=self.cluster, taskDefinition=taskdef, launchType="FARGATE", networkConfiguration=network,
                                startedBy="ecs-svc/1", group=f"service:{self.service}")["tasks"][0]["taskArn"]
        task_id = arn.rsplit("/", 1)[1]
        container = self.ecs.describe_task_definition(taskDefinition=taskdef)["taskDefinition"]["containerDefinitions"][0]
        knobs = {e["name"]: e["value"] for e in container["environment"]}
        task = self.consumer.local_task(task_id, self.endpoints)
        proc = subprocess.Popen(task.command, env={**task.env, **knobs}, cwd=task.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True)
        self.procs[arn], self.revision[arn] = proc, taskdef
        stream = f"consumer/consumer/{task_id}"
        self.logs.create_log_stream(logGroupName=self.group, logStreamName=stream)

        def ship() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.logs.put_log_events(logGroupName=self.group, logStreamName=stream,
                                         logEvents=[{"timestamp": int(time.time() * 1000), "message": line.rstrip("\n")}])

        reader = threading.Thread(target=ship, daemon=True)
        reader.start()
        self.readers.append(reader)

    def close(self) -> None:
        self.halt.set()
        self.join(timeout=5)
        for proc in self.procs.values():
            proc.kill()
            proc.wait()


class SimLogReader(LogReader):
    poll_interval = 0.2
    quiet = 1.5
    drain_timeout = 5.0


class SimulatedStackTarget(AwsTarget):
    """The AWS target with the stack made by boto3 in the emulator instead of Terraform
    (tested on its own above), and the fake ECS agent running the service's tasks."""

    endpoint = ""
    agents: list[FakeEcsAgent] = []

    def __init__(self, **options: Any) -> None:
        super().__init__(endpoint_url=self.endpoint, **options)
        _quick(self)
        self.poll_interval, self.tasks_poll_interval, self.start_timeout = 0.1, 0.2, 30.0
        self.reader_class = SimLogReader

    def provision(self, scenario: Any, run_dir: Path) -> Any:
        import boto3

        from sqslab.targets.local import create_queues

        kw = dict(endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        name = stack_name("sim")
        queue_url, dlq_url = create_queues(boto3.client("sqs", **kw), scenario, name)
        ecs, logs = boto3.client("ecs", **kw), boto3.client("logs", **kw)
        ecs.create_cluster(clusterName=name)
        ec2 = boto3.client("ec2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/24")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/25")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=f"{name}-consumer", Description="tasks", VpcId=vpc)["GroupId"]
        network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "ENABLED"}}
        env = {**scenario.consumer.environment(), "SQSLAB_QUEUE_URL": queue_url, "AWS_REGION": REGION}
        image = scenario.consumer.image or "sqs-demo/consumer:sim"
        taskdef = ecs.register_task_definition(
            family=f"{name}-consumer", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "consumer", "image": image, "essential": True, "memory": 512,
                                   "environment": [{"name": k, "value": v} for k, v in sorted(env.items())]}],
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        # Created at 0 tasks: moto reports runningCount = desiredCount after an UpdateService only.
        ecs.create_service(cluster=name, serviceName=f"{name}-consumer", taskDefinition=taskdef, desiredCount=0, launchType="FARGATE",
                           networkConfiguration=network)
        logs.create_log_group(logGroupName=f"/ecs/{name}/consumer")
        outputs = {"queue_url": queue_url, "dlq_url": dlq_url, "cluster_name": name, "service_name": f"{name}-consumer",
                   "log_group_name": f"/ecs/{name}/consumer", "region": REGION}
        endpoints = self.use_stack(outputs)
        agent = FakeEcsAgent(self.endpoint, outputs, endpoints, scenario.seed, scenario.consumer)
        agent.start()
        self.agents.append(agent)
        return endpoints


def run_on_simulated_aws(scenario: Any, endpoint: str, tmp_path: Path) -> tuple[Any, list[str]]:
    """Run a scenario on the aws target with the stack made by boto3 and ECS simulated; the
    result and what the fake ECS agents met."""
    from sqslab.hookspecs import hookimpl
    from sqslab.plugins import load_plugins
    from sqslab.run.runner import RunOptions, run_scenario

    SimulatedStackTarget.endpoint = endpoint

    class Plugin:
        @staticmethod
        @hookimpl
        def register_targets(register: Any) -> None:
            register("aws", SimulatedStackTarget, description="the AWS target, ECS simulated")

    sim_host = load_plugins(entry_points=False, extra=(Plugin,),
                            builtins=("sqslab.run.actions", "sqslab.reports.formats", "sqslab.consumers.builtin", "sqslab.consumers.program"))
    try:
        result = run_scenario(scenario, sim_host, RunOptions(target="aws", target_options={"keep": False, "image_tag": "sim"},
                                                             out=tmp_path / "run", handle_signals=False))
    finally:
        agent_errors = [e for a in SimulatedStackTarget.agents for e in a.errors]
        for agent in SimulatedStackTarget.agents:
            agent.close()
        SimulatedStackTarget.agents.clear()
    return result, agent_errors


def test_a_run_on_the_aws_target_with_ecs_simulated(endpoint: str, host: Any, tmp_path: Path) -> None:
    """The runner and the AWS target together: tasks started through UpdateService, events
    read back from CloudWatch Logs, a kill by StopTask, a scale-up, a new revision, the stop,
    and every message accounted for."""
    import textwrap

    from sqslab.scenario.load import load_scenario_text

    scenario = load_scenario_text(textwrap.dedent("""
        version: 1
        name: aws-sim
        seed: 5
        infra: {queue: {visibility_timeout: 2s}, dlq: {max_receive_count: 3}, consumers: 2}
        consumer: {work_time: 10ms..30ms, error_rate: 0.2, wait_time: 1s}
        load: [{name: steady, rate: 20/s, duration: 3s}]
        actions:
          - {at: 1s, do: kill_consumer, count: 1}
          - {at: 1500ms, do: scale, to: 3}
          - {at: 2s, do: set_consumer, error_rate: 0}
        settle: {until: drained, timeout: 40s}
        expect: ["lost == 0", "still_queued == 0"]
    """), host)
    result, agent_errors = run_on_simulated_aws(scenario, endpoint, tmp_path)
    summary = result.summary
    assert agent_errors == []
    assert result.exit_code == 0, json.dumps({k: summary.get(k) for k in ("status", "errors", "expectations", "actions")}, indent=1, default=str)
    figures = summary["figures"]
    assert figures["lost"] == 0 and figures["sent"] == 60
    assert figures["tasks.started"] >= 5, "2 + a replacement + the scale-up + the new revision's"
    assert [a["status"] for a in summary["actions"]] == ["done", "done", "done"]
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "task_exited" and e.get("reason") == "killed" for e in events)
    assert sum(1 for e in events if e.get("source") == "consumer" and e.get("event") == "started") >= 5
    assert any(e.get("event") == "task_definition_registered" for e in events)


def test_your_own_consumer_on_the_aws_target_with_ecs_simulated(endpoint: str, host: Any, tmp_path: Path) -> None:
    """consumer.program on the aws target: its image is the task definition's, its env the
    container's (set_consumer rolls a new one), a task counts as started when ECS runs it,
    and with no journal on AWS and no events from the program the fates come from the
    queues at the end, the figures only a consumer or the journal could give unavailable."""
    from sqslab.scenario.load import load_scenario

    worker = Path(__file__).resolve().parents[1] / "consumer" / "examples" / "python-worker"
    path = tmp_path / "own.yaml"
    path.write_text(f"""
version: 1
name: aws-own
seed: 6
infra: {{queue: {{visibility_timeout: 2s}}, consumers: 2}}
consumer:
  program:
    command: [{sys.executable}, worker.py]
    cwd: {worker}
    env: {{WORK_SECONDS: "0.02"}}
    image: 123456789012.dkr.ecr.us-west-1.amazonaws.com/my-worker:1.4
load: [{{rate: 20/s, duration: 3s, body: '{{"orderId": "{{{{ id }}}}"}}'}}]
actions:
  - {{at: 1s, do: kill_consumer}}
  - {{at: 2s, do: set_consumer, env: {{WORK_SECONDS: "0.01"}}}}
settle: {{until: drained, timeout: 40s}}
expect: ["lost == 0", "still_queued == 0", "duplicates == 0"]
""")
    scenario = load_scenario(path, host)
    result, agent_errors = run_on_simulated_aws(scenario, endpoint, tmp_path)
    assert agent_errors == []
    summary = result.summary
    assert summary["ledger"]["source"] == "queue audit"
    figures = summary["figures"]
    assert figures["lost"] == 0 and figures["processed"] == figures["sent"] == 60
    assert figures["receives"] is None and figures["duplicates"] is None  # unavailable, never a made-up 0
    expectations = {e["text"]: e for e in summary["expectations"]}
    assert expectations["lost == 0"]["passed"] and not expectations["duplicates == 0"]["passed"]
    assert "n/a" in expectations["duplicates == 0"]["measured"]
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert sum(1 for e in events if e.get("event") == "started" and e.get("ready") == "ECS reports it running") == 2
    assert any(e.get("event") == "task_definition_registered" for e in events)
    assert any(e.get("event") == "task_exited" and e.get("reason") == "killed" for e in events)
