"""A Lambda consumer on the aws target: its package, sqslab's entry in front of the handler,
the stack's function, role and event source mapping (applied to the emulator), and the
target's calls on them."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from sqslab.consumer.events import FIELDS
from sqslab.targets.aws import function_zip
from sqslab.targets.aws.terraform import Terraform, find_plugin_mirror, find_terraform, render_tfvars, stack_variables

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "consumer" / "examples" / "lambda-python"

try:
    MIRROR = find_plugin_mirror()
except Exception:  # noqa: BLE001 - no mirror: the apply test skips
    MIRROR = None
needs_mirror = pytest.mark.skipif(find_terraform() is None or MIRROR is None,
                                  reason="terraform or a hashicorp/aws 5.x filesystem mirror is missing "
                                         "(set SQSLAB_TF_PLUGIN_MIRROR, or put one in /opt/tf-plugins or ~/.terraform.d/plugins)")

SCENARIO = """
    version: 1
    name: lam
    infra:
      queue: {{visibility_timeout: 60s}}
    consumer:
      lambda: {{handler: app.partial, code: {code}, timeout: 10s, memory: 256, env: {{WORK_MS: "5"}}, reserved_concurrency: 4}}
      event_source: {{batch_size: 10, batching_window: 1s, report_batch_item_failures: true, max_concurrency: 3}}
    load: [{{rate: 5/s, duration: 2s}}]
"""


def scenario(write: Any, host: Any, code: Path = EXAMPLE, **over: str) -> Any:
    from sqslab.scenario.load import load_scenario

    return load_scenario(write(SCENARIO.format(code=code)), host, overrides=[f"{k}={v}" for k, v in over.items()])


# -- the package -----------------------------------------------------------------------------


def test_the_package_is_the_same_bytes_for_the_same_code_and_holds_the_entry(tmp_path: Path) -> None:
    code = tmp_path / "fn"
    (code / "pkg" / "__pycache__").mkdir(parents=True)
    (code / "app.py").write_text("def handler(event, context):\n    return None\n")
    (code / "pkg" / "__init__.py").write_text("")
    (code / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    first = function_zip.build(code, tmp_path / "a.zip")
    os.utime(code / "app.py", (1_000_000_000, 1_000_000_000))  # another mtime: the same package
    second = function_zip.build(code, tmp_path / "b.zip")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.source_code_hash == second.source_code_hash and len(first.source_code_hash) == 44
    names = zipfile.ZipFile(first.path).namelist()
    assert names == sorted(names) == ["app.py", "pkg/__init__.py", "sqslab_entry.py", "sqslab_event.py"]
    (code / "app.py").write_text("def handler(event, context):\n    return {}\n")
    assert function_zip.build(code, tmp_path / "c.zip").source_code_hash != first.source_code_hash, "new code, new hash"


def test_the_package_refuses_a_clash_with_the_entry_and_names_lambdas_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "sqslab_entry.py").write_text("")
    with pytest.raises(function_zip.PackageError, match="sqslab's entry in front of your handler; rename your file"):
        function_zip.build(code, tmp_path / "a.zip")
    (code / "sqslab_entry.py").unlink()
    (code / "big.bin").write_bytes(os.urandom(4096))
    monkeypatch.setattr(function_zip, "MAX_ZIPPED_BYTES", 1024)
    with pytest.raises(function_zip.PackageError, match=r"over Lambda's 0 MB for a zip uploaded directly; put dependencies in a layer"):
        function_zip.build(code, tmp_path / "a.zip")
    with pytest.raises(function_zip.PackageError, match="is not a folder"):
        function_zip.build(tmp_path / "nothing", tmp_path / "a.zip")


# -- sqslab's entry --------------------------------------------------------------------------


class Context:
    """What Lambda's context offers the entry."""

    aws_request_id = "req-1"
    log_stream_name = "2026/12/03/[$LATEST]abc"
    memory_limit_in_mb = 256

    def __init__(self, left_s: float = 10.0) -> None:
        self._end = time.monotonic() + left_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


def record(seq: int, body: dict[str, Any]) -> dict[str, Any]:
    from sqslab.contracts import message_id

    ident = message_id(seq)
    return {"messageId": f"m-{seq}", "body": json.dumps({"id": ident, **body}), "attributes": {"ApproximateReceiveCount": "2"},
            "messageAttributes": {}, "eventSource": "aws:sqs"}


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """sqslab.lambdas.entry with the example's code importable, cold each time."""
    from sqslab.lambdas import entry as module

    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("WORK_MS", "1")
    module._warm.clear()
    yield module
    module._warm.clear()
    sys.modules.pop("app", None)


def invoke(entry: Any, handler: str, report: bool, records: list[dict[str, Any]], context: Any,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[dict[str, Any]]]:
    monkeypatch.setenv(entry.ENV_HANDLER, handler)
    monkeypatch.setenv(entry.ENV_REPORT, "true" if report else "false")
    out = io.StringIO()
    answer: Any = None
    with redirect_stdout(out):
        try:
            answer = entry.handler({"Records": records}, context)
        except Exception as exc:  # noqa: BLE001 - the test looks at what was said
            answer = exc
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    for event in events:  # every line keeps the contract of docs/contracts.md
        assert set(FIELDS[event["event"]].required) <= set(event), event
    return answer, events


def test_the_entry_says_what_became_of_each_record_by_lambdas_rules(entry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [record(1, {}), record(2, {"poison": True}), record(3, {})]
    answer, events = invoke(entry, "app.partial", True, records, Context(), monkeypatch)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    kinds = [(e["event"], e.get("message_id")) for e in events]
    assert kinds[:3] == [("received", "m-1"), ("received", "m-2"), ("received", "m-3")]
    assert sorted(kinds[3:6]) == [("failed", "m-2"), ("processed", "m-1"), ("processed", "m-3")]
    last = events[-1]
    assert (last["event"], last["outcome"], last["cold"], last["batch_size"], last["failed"]) == ("invocation", "ok", True, 3, 1)
    assert events[0]["seq"] == 1 and events[0]["receive_count"] == 2 and events[0]["task"] == "lambda"

    # Without ReportBatchItemFailures the mapping ignores the answer: every record succeeded (warm now).
    _, events = invoke(entry, "app.partial", False, records, Context(), monkeypatch)
    assert [e["event"] for e in events].count("processed") == 3 and events[-1]["cold"] is False


def test_the_entry_fails_the_whole_batch_on_an_error_and_on_the_timeout(entry: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    records = [record(1, {}), record(2, {"poison": True})]
    answer, events = invoke(entry, "app.whole_batch", True, records, Context(), monkeypatch)
    assert isinstance(answer, Exception), "the handler's error reaches Lambda"
    assert [e["event"] for e in events].count("failed") == 2
    assert events[-1]["outcome"] == "error" and "PoisonMessage" in events[-1]["error"]

    # A handler still at work when the function timeout comes: the entry speaks just before
    # (Lambda then ends the environment; here the handler returns later and nothing more is said).
    (tmp_path / "slow.py").write_text("import time\ndef handler(event, context):\n    time.sleep(1.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry._warm.clear()  # another function: a cold start
    _, events = invoke(entry, "slow.handler", True, records, Context(left_s=0.5), monkeypatch)
    assert [e["event"] for e in events] == ["received", "received", "failed", "failed", "invocation"]
    assert events[-1]["outcome"] == "timeout" and events[-1]["failed"] == 2
    assert all("Sandbox.Timedout" in e["reason"] for e in events if e["event"] == "failed")


# -- the stack -------------------------------------------------------------------------------


def test_a_lambda_scenarios_tfvars_are_declared_variables_and_no_ecs_ones(write: Any, host: Any) -> None:
    from test_terraform import _declared_variables, _rendered_values

    variables = stack_variables(scenario(write, host), "", name="lam")
    rendered = _rendered_values(render_tfvars(variables))
    declared = _declared_variables()
    assert set(rendered) <= set(declared), set(rendered) - set(declared)
    assert rendered["consumer_kind"] == "lambda" and rendered["lambda_handler"] == "app.partial"
    assert (rendered["lambda_timeout"], rendered["lambda_memory"], rendered["lambda_reserved_concurrency"]) == (10, 256, 4)
    assert (rendered["event_source_batch_size"], rendered["event_source_batching_window_seconds"],
            rendered["event_source_max_concurrency"], rendered["event_source_report_batch_item_failures"]) == (10, 1, 3, True)
    assert not {"image_tag", "consumer_image", "consumer_env", "ecr_repository_name"} & set(rendered)


def test_what_lambda_takes_in_whole_seconds_is_refused_before_aws_is_touched(write: Any, host: Any) -> None:
    from sqslab.targets import TargetError
    from sqslab.targets.aws.target import check_scenario

    sc = scenario(write, host, **{"consumer.lambda.timeout": "2.5s", "consumer.event_source.batching_window": "1.5s"})
    with pytest.raises(TargetError) as caught:
        check_scenario(sc)
    assert "consumer.lambda.timeout 2.5s: Lambda takes whole seconds" in str(caught.value)
    assert "consumer.event_source.batching_window 1.5s: Lambda takes whole seconds" in str(caught.value)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An emulator for this module alone, the backends Terraform uses loaded."""
    import boto3

    from sqslab.emulator import Emulator

    emulator = Emulator().start()
    kw = {"endpoint_url": emulator.endpoint_url, "region_name": "us-west-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    try:
        for service, call in (("sts", "get_caller_identity"), ("iam", "list_roles"), ("lambda", "list_functions"),
                              ("logs", "describe_log_groups"), ("sqs", "list_queues")):
            getattr(boto3.client(service, **kw), call)()
        yield emulator.endpoint_url
    finally:
        emulator.stop()


@pytest.mark.terraform
@needs_mirror
@pytest.mark.xdist_group("terraform-apply")  # one at a time: each runs terraform and its provider flat out
def test_the_lambda_stack_applies_with_a_least_privilege_role_and_the_target_drives_it(endpoint: str, write: Any, host: Any,
                                                                                      tmp_path: Path) -> None:
    import dataclasses

    import boto3

    from sqslab.targets.aws.function import LambdaFunction
    from sqslab.targets.aws.logs import LogReader

    name = "lam-" + uuid.uuid4().hex[:6]
    package = function_zip.build(EXAMPLE, tmp_path / "state" / "function.zip")
    sc = scenario(write, host)
    kw = {"endpoint_url": endpoint, "region_name": "us-west-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    lam, iam, ecs = (boto3.client(s, **kw) for s in ("lambda", "iam", "ecs"))
    with Terraform(tmp_path / "state", endpoint_url=endpoint) as tf:
        tf.init()
        outputs = tf.apply(render_tfvars(stack_variables(sc, "", name=name, package=package)))
        try:
            assert outputs["consumer_kind"] == "lambda" and outputs.get("cluster_name") is None and outputs.get("service_name") is None
            assert outputs["log_group_name"] == f"/aws/lambda/{name}-consumer"
            assert not [c for c in ecs.list_clusters()["clusterArns"] if name in c], "no ECS for a Lambda consumer"

            config = lam.get_function_configuration(FunctionName=outputs["function_name"])
            assert (config["Handler"], config["Runtime"], config["Timeout"], config["MemorySize"]) == (
                "sqslab_entry.handler", "python3.11", 10, 256)
            assert config["CodeSha256"] == package.source_code_hash
            assert config["Environment"]["Variables"] == {"WORK_MS": "5", "SQSLAB_HANDLER": "app.partial",
                                                          "SQSLAB_REPORT_BATCH_ITEM_FAILURES": "true"}
            assert lam.get_function_concurrency(FunctionName=outputs["function_name"])["ReservedConcurrentExecutions"] == 4
            mapping = lam.get_event_source_mapping(UUID=outputs["mapping_uuid"])
            assert mapping["EventSourceArn"] == outputs["queue_arn"] and mapping["State"] == "Enabled"
            assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"], mapping["FunctionResponseTypes"],
                    mapping["ScalingConfig"]) == (10, 1, ["ReportBatchItemFailures"], {"MaximumConcurrency": 3})

            # The role: what the mapping needs on this queue, its own log group; nothing wider.
            role = config["Role"].rsplit("/", 1)[1]
            doc = iam.get_role_policy(RoleName=role, PolicyName="queue-and-logs")["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            statements = {s["Sid"]: s for s in doc["Statement"]}
            assert sorted(statements["ConsumeQueue"]["Action"]) == [
                "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
            assert statements["ConsumeQueue"]["Resource"] in (outputs["queue_arn"], [outputs["queue_arn"]])
            logs_resource = statements["OwnLogs"]["Resource"]
            assert f"log-group:/aws/lambda/{name}-consumer:log-stream:*" in str(logs_resource)
            trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
            trust = json.loads(trust) if isinstance(trust, str) else trust
            assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}

            # The target's calls: in place (mapping, reserved concurrency), a new configuration, the stop.
            function = LambdaFunction(lam, outputs["function_name"], outputs["mapping_uuid"], lambda e: None, reserved=4)
            tuned = dataclasses.replace(sc.consumer, enabled=False, max_concurrency=5, reserved_concurrency=2)
            event = function.tune(tuned)
            assert event["event"] == "mapping_changed" and set(FIELDS["mapping_changed"].required) <= set(event)
            mapping = lam.get_event_source_mapping(UUID=outputs["mapping_uuid"])
            assert (mapping["State"], mapping["ScalingConfig"]) == ("Disabled", {"MaximumConcurrency": 5})
            assert lam.get_function_concurrency(FunctionName=outputs["function_name"])["ReservedConcurrentExecutions"] == 2
            assert function.counts().running == 0
            started = function.start(sc.consumer, timeout=30, poll=0.2, interrupted=threading.Event())
            assert started[0]["event"] == "started" and function.counts().running == 1
            assert lam.get_event_source_mapping(UUID=outputs["mapping_uuid"])["State"] == "Enabled"
            function.configure(dataclasses.replace(sc.consumer, env={"WORK_MS": "50"}, timeout=20.0, memory=512))
            config = lam.get_function_configuration(FunctionName=outputs["function_name"])
            assert (config["Timeout"], config["MemorySize"]) == (20, 512)
            assert config["Environment"]["Variables"] == {"WORK_MS": "50", "SQSLAB_HANDLER": "app.partial",
                                                          "SQSLAB_REPORT_BATCH_ITEM_FAILURES": "true"}, "the entry's variables kept"

            reader = LogReader(boto3.client("logs", **kw), outputs["log_group_name"], lambda e: None, since=time.time())
            reader.poll_interval, reader.quiet = 0.1, 0.3
            stopped = function.stop(reader, timeout=30, poll=0.2)
            assert stopped[0]["event"] == "stopped" and function.counts().running == 0
            assert lam.get_event_source_mapping(UUID=outputs["mapping_uuid"])["State"] == "Disabled"
        finally:
            assert tf.destroy() is True
    assert not [f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(name)]


# -- a run on the aws target, Lambda's service simulated -------------------------------------

FAKE_SERVICE = ROOT / "tests" / "fixtures" / "lambda" / "fake_lambda_service.py"


class SimulatedLambdaTarget:
    """Made in run_on_simulated_lambda: the aws target with the stack made by boto3 in the
    emulator (the apply is tested above) and Lambda's service a process that follows the
    mapping's state and the function's configuration (tests/fixtures/lambda/fake_lambda_service.py).
    The mapping moto knows points at a queue of its own, so moto never invokes anything."""


def run_on_simulated_lambda(scenario: Any, endpoint: str, tmp_path: Path) -> tuple[Any, list[str]]:
    import subprocess

    import boto3

    from sqslab.hookspecs import hookimpl
    from sqslab.plugins import load_plugins
    from sqslab.run.runner import RunOptions, run_scenario
    from sqslab.targets.aws.stack import stack_name
    from sqslab.targets.aws.target import AwsTarget, lambda_package
    from sqslab.targets.aws.logs import LogReader
    from sqslab.targets.local import create_queues

    kw = {"endpoint_url": endpoint, "region_name": "us-west-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    services: list[subprocess.Popen[bytes]] = []

    class QuickReader(LogReader):
        poll_interval, quiet, drain_timeout = 0.2, 1.5, 10.0

    class Target(AwsTarget):
        def __init__(self, **options: Any) -> None:
            super().__init__(endpoint_url=endpoint, **options)
            self.poll_interval, self.start_timeout, self.stop_timeout, self.reader_class = 0.1, 30.0, 20.0, QuickReader

        def provision(self, scenario: Any, run_dir: Path) -> Any:
            consumer, name = scenario.consumer, stack_name("lsim")
            self._consumer = consumer
            sqs, lam, iam = (boto3.client(s, **kw) for s in ("sqs", "lambda", "iam"))
            queue_url, dlq_url = create_queues(sqs, scenario, name)
            arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            elsewhere = sqs.create_queue(QueueName=f"{name}-moto")["QueueUrl"]
            elsewhere_arn = sqs.get_queue_attributes(QueueUrl=elsewhere, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            role = iam.create_role(RoleName=f"{name}-function", AssumeRolePolicyDocument=json.dumps({"Statement": []}))["Role"]["Arn"]
            package = lambda_package(consumer, run_dir / "terraform")
            function = lam.create_function(
                FunctionName=f"{name}-consumer", Runtime=consumer.runtime, Role=role, Handler=function_zip.ENTRY_HANDLER,
                Code={"ZipFile": package.path.read_bytes()}, Timeout=int(consumer.timeout), MemorySize=consumer.memory,
                Environment={"Variables": {**consumer.environment(), "SQSLAB_HANDLER": consumer.handler,
                                           "SQSLAB_REPORT_BATCH_ITEM_FAILURES": str(consumer.report_batch_item_failures).lower()}})
            mapping = lam.create_event_source_mapping(EventSourceArn=elsewhere_arn, FunctionName=function["FunctionArn"],
                                                      BatchSize=consumer.batch_size, Enabled=False)
            group = f"/aws/lambda/{name}-consumer"
            boto3.client("logs", **kw).create_log_group(logGroupName=group)
            endpoints = self.use_stack({"queue_url": queue_url, "dlq_url": dlq_url, "log_group_name": group, "region": "us-west-1",
                                        "consumer_kind": "lambda", "function_name": function["FunctionName"],
                                        "mapping_uuid": mapping["UUID"]})
            env = {**os.environ, "ENDPOINT": endpoint, "QUEUE_URL": queue_url, "QUEUE_ARN": arn, "GROUP": group,
                   "CODE": consumer.code, "FUNCTION": function["FunctionName"], "MAPPING": mapping["UUID"],
                   "PYTHONPATH": str(ROOT)}
            services.append(subprocess.Popen([sys.executable, str(FAKE_SERVICE)], env=env, stdout=subprocess.DEVNULL,
                                             stderr=open(run_dir / "fake-lambda.err", "wb")))
            return endpoints

    class Plugin:
        @staticmethod
        @hookimpl
        def register_targets(register: Any) -> None:
            register("aws", Target, description="the AWS target, Lambda simulated")

    host = load_plugins(entry_points=False, extra=(Plugin,),
                        builtins=("sqslab.run.actions", "sqslab.reports.formats", "sqslab.consumers.builtin",
                                  "sqslab.consumers.lambda_function"))
    try:
        result = run_scenario(scenario, host, RunOptions(target="aws", target_options={"keep": False}, out=tmp_path / "run",
                                                         handle_signals=False))
    finally:
        died = [service.poll() for service in services if service.poll() is not None]
        for service in services:
            service.terminate()
            service.wait(10)
    err = tmp_path / "run" / "fake-lambda.err"
    return result, [f"the fake Lambda service exited {code}: {err.read_text()[-2000:]}" for code in died]


def test_a_lambda_run_on_the_aws_target_takes_every_fate_from_the_functions_log(endpoint: str, host: Any,
                                                                                tmp_path: Path) -> None:
    """The runner and the aws target with a Lambda consumer: the mapping enabled through the
    Lambda API, sqslab's entry's lines read back from the function's log group, reserved
    concurrency changed in place and a new configuration mid-run, the mapping disabled at
    the end, and every message accounted for: the poison ones dead-lettered, the rest once."""
    from sqslab.scenario.load import load_scenario_text

    scenario = load_scenario_text(f"""
version: 1
name: aws-lambda-sim
seed: 5
infra: {{queue: {{visibility_timeout: 3s}}, dlq: {{max_receive_count: 2}}}}
consumer:
  poison_rate: 10%
  lambda: {{handler: app.partial, code: {EXAMPLE}, timeout: 2s, env: {{WORK_MS: "5"}}}}
  event_source: {{batch_size: 5, report_batch_item_failures: true}}
load: [{{name: steady, rate: 20/s, duration: 2s}}]
actions:
  - {{at: 1s, do: set_consumer, reserved_concurrency: 2}}
  - {{at: 1500ms, do: set_consumer, env: {{WORK_MS: "10"}}}}
settle: {{until: drained, timeout: 40s}}
expect: ["lost == 0", "duplicates == 0", "dead_lettered > 0", "still_queued == 0"]
""", host)
    result, service_errors = run_on_simulated_lambda(scenario, endpoint, tmp_path)
    summary = result.summary
    assert service_errors == []
    assert result.exit_code == 0, json.dumps({k: summary.get(k) for k in ("status", "errors", "expectations", "actions")},
                                             indent=1, default=str)
    figures = summary["figures"]
    assert figures["sent"] == 40 and figures["lost"] == 0
    assert figures["processed_once"] + figures["dead_lettered"] == 40 and figures["dead_lettered"] >= 1
    assert figures["lambda.invocations"] >= 8 and figures["cost.lambda.usd"] > 0
    assert figures["lambda.throttles"] is None, "Lambda tells nobody of its throttles: n/a, not a made-up 0"
    assert figures["cost.sqs.requests"] is None and figures["cost.total"] is None, "the mapping's polling is Lambda's own"
    assert [a["status"] for a in summary["actions"]] == ["done", "done"]
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    changed = [e for e in events if e.get("event") == "mapping_changed"]
    assert changed and changed[-1]["reserved_concurrency"] == 2
    assert any(e.get("event") == "function_configured" for e in events)
    assert any(e.get("event") == "invocation" and e.get("source") == "consumer" for e in events)
