"""The local Lambda, rule by rule (docs/lambda.md), against real execution environment
processes (awslambdaric) and, for the event source mapping, the real emulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sqslab.credentials import DEFAULT_REGION
from sqslab.lambdas.environment import Environment, Function
from sqslab.lambdas.event import failed_ids
from sqslab.lambdas.mapping import ENV_CONFIG, MappingConfig
from tests.conftest import FIXTURES

pytest.importorskip("awslambdaric", reason="awslambdaric (pip install -e '.[test]') runs the execution environments")

CODE = FIXTURES / "lambda"


def _function(handler: str, timeout: float = 3.0, memory: int = 256, **env: str) -> Function:
    return Function("orders", f"handlers.{handler}" if "." not in handler else handler, CODE, timeout, memory, DEFAULT_REGION, env)


@pytest.fixture
def environment(tmp_path):
    made: list[Environment] = []

    def make(function: Function) -> Environment:
        env = Environment(function, f"env-{len(made) + 1}", tmp_path / f"env-{len(made) + 1}.log")
        made.append(env)
        return env

    yield make
    for env in made:
        env.stop()


# ---------------------------------------------------------------- the environment


def test_a_new_environment_imports_the_module_once_and_is_reused_warm(environment):
    env = environment(_function("context_handler", TABLE="orders"))
    first, second = env.invoke({"n": 1}), env.invoke({"n": 2})
    assert (first.kind, second.kind) == ("ok", "ok")
    assert first.init_ms is not None and first.init_ms > 0, "a cold start records its init time"
    assert second.init_ms is None, "a warm invocation has no init"
    assert first.payload["pid"] == second.payload["pid"] and second.payload["imports"] == 1
    assert (first.payload["calls"], second.payload["calls"]) == (1, 2)
    assert second.payload["event"] == {"n": 2}
    log = env.log.read_text()
    assert log.count("START RequestId:") == 2 and "Init Duration:" in log and "Max Memory Used:" in log


def test_the_context_object_is_lambdas(environment):
    env = environment(_function("context_handler", timeout=3.0, memory=512, TABLE="orders"))
    request_id = str(uuid.uuid4())
    answer = env.invoke({}, request_id).payload
    assert answer["request_id"] == request_id
    assert answer["function_name"] == "orders" and answer["memory"] == "512"
    assert answer["arn"] == f"arn:aws:lambda:{DEFAULT_REGION}:123456789012:function:orders"
    assert 2000 < answer["remaining_ms"] <= 3000
    assert answer["log_group"] == "/aws/lambda/orders" and answer["table"] == "orders"


def test_a_handler_error_has_the_runtimes_shape_and_the_environment_stays_warm(environment):
    env = environment(_function("behave"))
    failed = env.invoke({"do": "raise"})
    assert failed.kind == "error"
    assert failed.payload["errorType"] == "KeyError" and "no such order" in failed.payload["errorMessage"]
    assert any("raise KeyError" in line for line in failed.payload["stackTrace"])
    assert env.invoke({}).init_ms is None, "an error does not cost the environment"


def test_the_function_timeout_kills_the_environment(environment):
    env = environment(_function("behave", timeout=1.0))
    pid = env.invoke({})
    timed_out = env.invoke({"do": "sleep", "s": 5})
    assert timed_out.kind == "timeout" and 1000 <= timed_out.duration_ms < 1500
    assert "Task timed out after 1.00 seconds" in timed_out.payload["errorMessage"]
    assert not env.alive
    after = env.invoke({})
    assert after.init_ms is not None and after.payload["pid"] != pid.payload["pid"], "the next invocation is a cold start"


def test_more_memory_than_the_function_has_kills_it(environment):
    env = environment(_function("behave", timeout=10.0, memory=128))
    outcome = env.invoke({"do": "eat", "mb": 300})
    assert outcome.kind == "out_of_memory" and outcome.payload["errorType"] == "Runtime.OutOfMemory"
    assert outcome.max_memory_mb > 128 and not env.alive


def test_an_init_error_fails_the_invocation_with_the_runtimes_error(environment):
    outcome = environment(_function("broken.handler")).invoke({})
    assert outcome.kind == "init_error"
    assert outcome.payload["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module_anywhere" in outcome.payload["errorMessage"]
    missing = environment(_function("handlers.no_such_function")).invoke({})
    assert (missing.kind, missing.payload["errorType"]) == ("init_error", "Runtime.HandlerNotFound")


def test_a_handler_that_exits_is_a_runtime_exit_error(environment):
    outcome = environment(_function("behave")).invoke({"do": "exit"})
    assert outcome.kind == "exit_error" and "exit status 3" in outcome.payload["errorMessage"]


# ---------------------------------------------------------------- partial batch responses


@pytest.mark.parametrize(("response", "failed", "whole"), [
    (None, set(), False), ({}, set(), False), ({"batchItemFailures": []}, set(), False),
    ({"batchItemFailures": None}, set(), False),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}, False),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}, True),
    ({"batchItemFailures": [{"itemIdentifier": None}]}, {"a", "b"}, True),
    ({"batchItemFailures": [{"itemId": "b"}]}, {"a", "b"}, True),
    ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, {"a", "b"}, True),
    ("not a response", {"a", "b"}, True),
])
def test_partial_batch_responses_as_lambda_reads_them(response, failed, whole):
    ids, why = failed_ids(response, ["a", "b"])
    assert ids == failed and bool(why) == whole


# ---------------------------------------------------------------- the event source mapping


class Run:
    """A mapping process on a queue of the session's emulator."""

    def __init__(self, emulator, sqs, tmp_path: Path, queue_attributes: dict[str, str] | None = None,
                 fifo: bool = False) -> None:
        self.sqs, self.tmp = sqs, tmp_path
        name = f"q{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
        attributes = {"VisibilityTimeout": "2", **(queue_attributes or {})}
        if fifo:
            attributes.update(FifoQueue="true", ContentBasedDeduplication="true")
        self.url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.endpoint = emulator.endpoint_url
        self.events_file = tmp_path / "events.jsonl"
        self.process: subprocess.Popen[bytes] | None = None

    def send(self, count: int, poison: set[int] = frozenset(), group: str | None = None, first: int = 0) -> None:
        for start in range(first, first + count, 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps({"id": f"m{i}", "poison": i in poison})}
                       for i in range(start, min(first + count, start + 10))]
            if group:
                for entry in entries:
                    entry["MessageGroupId"] = group
            self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)

    def start(self, function: Function, **settings: Any) -> None:
        config = MappingConfig(function, self.url, logs=self.tmp / "lambda", **settings)
        env = {**os.environ, ENV_CONFIG: config.to_json(), "AWS_ENDPOINT_URL": self.endpoint,
               "AWS_ACCESS_KEY_ID": "sqslab-mapping", "AWS_SECRET_ACCESS_KEY": "x", "SQSLAB_TASK_ID": "mapping"}
        self.process = subprocess.Popen([sys.executable, "-m", "sqslab.lambdas.mapping"], env=env,
                                        stdout=self.events_file.open("w"), stderr=(self.tmp / "stderr").open("w"))

    def counts(self) -> tuple[int, int]:
        a = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def until(self, done, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"not done in {timeout}s: {Counter(e['event'] for e in self.events())}"
            assert self.process is None or self.process.poll() is None, (self.tmp / "stderr").read_text()
            time.sleep(0.2)

    def drained(self) -> bool:
        return self.counts() == (0, 0)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.events_file.read_text().splitlines() if line.strip()]
        return [e for e in lines if name is None or e["event"] == name]

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@pytest.fixture
def mapping_run(emulator, sqs, tmp_path):
    runs: list[Run] = []

    def make(**kwargs: Any) -> Run:
        run = Run(emulator, sqs, tmp_path / f"run{len(runs)}", **kwargs)
        run.tmp.mkdir()
        runs.append(run)
        return run

    yield make
    for run in runs:
        if run.process is not None and run.process.poll() is None:
            run.process.kill()
            run.process.wait(10)


def test_the_event_has_every_field_of_a_lambda_sqs_record(mapping_run, tmp_path):
    run = mapping_run()
    run.sqs.send_message(QueueUrl=run.url, MessageBody='{"id": "m1"}',
                         MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}})
    run.start(_function("echo_event", EVENT_FILE=str(tmp_path / "event.jsonl")))
    run.until(run.drained)
    assert run.stop() == 0
    record = json.loads((tmp_path / "event.jsonl").read_text().splitlines()[0])["Records"][0]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"}
    assert record["body"] == '{"id": "m1"}' and record["eventSource"] == "aws:sqs" and record["awsRegion"] == DEFAULT_REGION
    assert record["eventSourceARN"].startswith("arn:aws:sqs:") and record["eventSourceARN"].endswith(run.url.rsplit("/", 1)[1])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(record["attributes"])
    assert record["messageAttributes"]["tenant"] == {"stringValue": "acme", "stringListValues": [], "binaryListValues": [],
                                                     "dataType": "String"}


def test_success_deletes_the_batch_and_an_error_brings_the_whole_batch_back(mapping_run):
    run = mapping_run()
    run.send(20, poison={3})
    run.start(_function("records", RAISE="1"), batch_size=10)
    run.until(lambda: Counter(e["id"] for e in run.events("failed")).get("m3", 0) >= 2)
    run.stop()
    failed = Counter(e["id"] for e in run.events("failed"))
    processed = {e["id"] for e in run.events("processed")}
    assert failed["m3"] >= 2, "the batch with the poison failed again after its visibility timeout"
    errors = [e for e in run.events("invocation") if e["outcome"] == "error"]
    assert errors and all(e["failed"] == e["batch_size"] for e in errors), "an error fails every message of the batch"
    assert any(e["batch_size"] > 1 for e in errors) and len(failed) > 1, "the poison's batch mates came back with it"
    assert processed.isdisjoint({"m3"}) and processed | set(failed) == {f"m{i}" for i in range(20)}
    receive_counts = [e["receive_count"] for e in run.events("failed") if e["id"] == "m3"]
    assert receive_counts[:2] == [1, 2]


def test_with_partial_batch_responses_only_the_reported_messages_come_back(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "1"})
    run.send(30, poison={4, 17})
    run.start(_function("records"), batch_size=10, report_batch_item_failures=True)
    run.until(lambda: Counter(e["id"] for e in run.events("failed")).get("m17", 0) >= 2)
    run.stop()
    processed = Counter(e["id"] for e in run.events("processed"))
    assert set(processed) == {f"m{i}" for i in range(30)} - {"m4", "m17"}
    assert max(processed.values()) == 1, "the batch's other messages are deleted once, not redelivered"
    assert {e["id"] for e in run.events("failed")} == {"m4", "m17"}


def test_an_invalid_item_identifier_fails_the_whole_batch(mapping_run):
    run = mapping_run()
    run.send(5)
    run.start(_function("records", ANSWER='{"batchItemFailures": [{"itemIdentifier": ""}]}'), batch_size=10,
              report_batch_item_failures=True)
    run.until(lambda: len(run.events("failed")) >= 5)
    run.stop()
    assert not run.events("processed")
    assert all("the whole batch" in e["reason"] for e in run.events("failed"))


def test_without_partial_batch_responses_the_answer_is_ignored(mapping_run):
    run = mapping_run()
    run.send(10, poison={2})
    run.start(_function("records"), batch_size=10)  # it reports m2, but the mapping does not read it
    run.until(run.drained)
    run.stop()
    assert {e["id"] for e in run.events("processed")} == {f"m{i}" for i in range(10)} and not run.events("failed")


def test_scaling_starts_at_five_and_grows_while_messages_wait_capped_by_max_concurrency(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "30"})
    run.send(200)
    run.start(_function("records", WORK="0.5"), batch_size=1, max_concurrency=8)
    run.until(lambda: len(run.events("processed")) >= 60, timeout=30)
    run.stop()
    assert run.events("started")[0]["config"]["pollers"] == 5
    pollers = [e["pollers"] for e in run.events("scaled")]
    assert pollers and pollers[0] == 8 and max(pollers) == 8
    environments = {e["environment"] for e in run.events("invocation")}
    assert 5 < len(environments) <= 8


def test_reserved_concurrency_throttles_and_the_batch_comes_back(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "2"})
    run.send(20)
    run.start(_function("records", WORK="1.5"), batch_size=2, reserved_concurrency=1)
    run.until(lambda: any(e["reason"] == "throttled" for e in run.events("abandoned")), timeout=30)
    run.stop()
    assert run.events("throttled")
    assert len({e["environment"] for e in run.events("invocation")}) == 1, "one at a time: one environment"


def test_a_batching_window_gathers_more_than_ten(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "30"})
    run.send(40)
    run.start(_function("records"), batch_size=40, batching_window=2.0, max_concurrency=2)
    run.until(run.drained)
    run.stop()
    assert max(e["batch_size"] for e in run.events("invocation")) > 10


def test_fifo_batches_keep_group_order_and_a_failed_batch_blocks_its_group(mapping_run):
    run = mapping_run(fifo=True, queue_attributes={"VisibilityTimeout": "2"})
    run.send(12, poison={1}, group="g1")
    run.start(_function("records", RAISE="1"), batch_size=3)
    run.until(lambda: len([e for e in run.events("failed") if e["id"] == "m1"]) >= 2, timeout=20)
    run.stop()
    received = [e["id"] for e in run.events("received")]
    assert received[:3] == ["m0", "m1", "m2"], "a group's messages in order"
    assert "m3" not in received[:6], "the group waits for the failed batch's retry"
    assert not run.events("processed"), "the poison's batch fails every time, and nothing after it of its group goes"


def test_a_killed_environment_fails_its_invocation_and_the_batch_comes_back(mapping_run):
    run = mapping_run()
    run.send(3)
    run.start(_function("records", WORK="3"), batch_size=10, max_concurrency=2)
    run.until(lambda: len(run.events("received")) >= 3)
    time.sleep(1.0)  # the environment's init, then the handler's 3 s
    run.process.send_signal(signal.SIGUSR1)
    run.until(lambda: bool(run.events("failed")))
    run.until(run.drained, timeout=25)
    run.stop()
    assert run.events("environment_killed")[0]["environment"]
    assert any(e["outcome"] == "exit_error" for e in run.events("invocation"))
    assert {e["id"] for e in run.events("processed")} == {"m0", "m1", "m2"}


EXAMPLES = FIXTURES.parent.parent / "consumer" / "examples" / "lambda-python"


@pytest.mark.parametrize("handler", ["app.partial", "powertools_app.handler"])
def test_the_examples_partial_batch_handlers_bring_back_only_the_poison(mapping_run, handler):
    if handler.startswith("powertools"):
        pytest.importorskip("aws_lambda_powertools", reason="the Powertools example needs aws-lambda-powertools")
    run = mapping_run(queue_attributes={"VisibilityTimeout": "1"})
    run.send(20, poison={7})
    function = Function("orders", handler, EXAMPLES, 3.0, 256, DEFAULT_REGION, {"WORK_MS": "1"})
    run.start(function, batch_size=10, report_batch_item_failures=True)
    run.until(lambda: Counter(e["id"] for e in run.events("failed")).get("m7", 0) >= 2)
    run.stop()
    assert Counter(e["id"] for e in run.events("processed")) == Counter({f"m{i}": 1 for i in range(20) if i != 7})


# ---------------------------------------------------------------- the scenario


def test_validate_refuses_what_lambda_refuses_of_the_mapping_all_at_once(write, host, tmp_path):
    from sqslab.scenario.load import check_file

    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return None\n")
    path = write(f"""
        version: 1
        name: t
        infra:
          queue: {{visibility_timeout: 10s, fifo: true}}
          consumers: 2
        consumer:
          error_rate: 0.1
          lambda: {{handler: app.handler, code: fn, timeout: 30s}}
          event_source: {{batch_size: 20, batching_window: 2s}}
        load: [{{rate: 1/s, duration: 1s}}]
        actions: [{{at: 1s, do: scale, to: 3}}, {{at: 1s, do: set_consumer, work_time: 1s}}]
    """)
    got = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert any("infra.consumers" in g and "one event source mapping" in g for g in got)
    assert any("consumer.error_rate" in g and "does nothing to consumer.lambda" in g for g in got)
    assert any("consumer.lambda.timeout" in g and "Queue visibility timeout: 10 seconds is less than Function timeout: 30 "
               "seconds" in g for g in got)
    assert any("batching_window" in g and "FIFO" in g for g in got)
    assert any("batch_size" in g and "at most 10" in g for g in got)
    assert any("actions[0].do" in g and "scales itself" in g for g in got)
    assert any("actions[1].work_time" in g and "not a setting of the function or its mapping" in g and "max_concurrency" in g for g in got)
    assert all(g.split(":")[0].isdigit() for g in got), "every problem has its line"


def test_validate_names_a_missing_handler_module(write, host, tmp_path):
    from sqslab.scenario.load import check_file

    (tmp_path / "fn").mkdir()
    path = write("""
        version: 1
        name: t
        consumer:
          lambda: {handler: app.handler, code: fn}
          event_source: {batch_size: 20}
        load: [{rate: 1/s, duration: 1s}]
    """)
    got = [str(p) for p in check_file(path, host)]
    assert any("no module app.py" in g for g in got)
    assert any("batch size above 10 without a batching window" in g for g in got)


def test_a_hunt_of_a_lambda_scenario_never_draws_a_scale(host):
    from sqslab.hunt.space import space_of
    from sqslab.scenario.load import load_scenario

    scenario = load_scenario(str(FIXTURES.parent.parent / "scenarios" / "lambda_poison_partial.yaml"), host)
    space = space_of(scenario, host.consumer_kinds)
    assert "scale" not in space.actions and "kill_consumer" in space.actions and "set_consumer" in space.actions


def test_a_lambda_scenario_runs_and_its_summary_tells_the_invocations(tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"""
version: 1
name: lambda-figures
seed: 3
infra:
  queue: {{visibility_timeout: 3s}}
  dlq: {{max_receive_count: 2}}
consumer:
  poison_rate: 5%
  lambda: {{handler: app.partial, code: {EXAMPLES}, timeout: 1s, env: {{WORK_MS: "5"}}}}
  event_source: {{batch_size: 10, batching_window: 1s, report_batch_item_failures: true, max_concurrency: 2}}
load:
  - {{burst: 60}}
settle: {{until: drained, timeout: 40s}}
expect:
  - lost == 0
  - duplicates == 0
  - lambda.invocations > 0
  - lambda.partial_failures > 0
""")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "sqslab", "run", str(scenario), "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    figures = summary["figures"]
    assert figures["processed_once"] + figures["dead_lettered"] == 60 and figures["dead_lettered"] > 0
    assert 1 <= figures["lambda.cold_starts"] <= 2 and figures["lambda.concurrency.max"] <= 2
    assert figures["lambda.batch_size.max"] > 1 and figures["lambda.gb_seconds"] > 0
    assert summary["ledger"]["lambda"]["outcomes"]["ok"] == figures["lambda.invocations"]
    assert "lambda: " in done.stdout and "partial failures" in done.stdout
    assert list((out / "tasks" / "lambda").glob("task-*/env-1.log")), "each environment's log is in the run directory"
    report = subprocess.run([sys.executable, "-m", "sqslab", "report", "--html", str(out)], capture_output=True, text=True,
                            timeout=60)
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    assert 'id="lambda"' in page and f"{figures['lambda.invocations']} invocations" in page and "partial batch failures" in page
    assert 'id="chart-concurrency"' in page and 'id="cost"' in page and "GB-seconds" in page
    series = summary["ledger"]["lambda"]["concurrency_series"]
    assert max(series["concurrency"]) == figures["lambda.concurrency.max"] and len(series["t"]) == len(series["concurrency"])
    assert figures["cost.lambda.usd"] > 0 and figures["cost.ecs.usd"] == 0.0, "the mapping is Lambda's: no Fargate task to pay"
    check = summary["ledger"]["lambda"]["journal_check"]
    assert check["agree"] and check["records_invoked"] + check["abandoned"] == check["journal_receives"] >= 60
    assert "invocations and SQS journal agree" in done.stdout


def test_validate_notes_a_visibility_timeout_under_six_times_the_function_timeout(write, cli):
    path = write(f"""
        version: 1
        name: t
        infra: {{queue: {{visibility_timeout: 10s}}}}
        consumer:
          lambda: {{handler: app.partial, code: {EXAMPLES}, timeout: 5s}}
        load: [{{rate: 1/s, duration: 1s}}]
    """)
    result = cli("validate", "--json", path)
    assert result.exit_code == 0
    notes = json.loads(result.stdout)["files"][0]["notes"]
    assert any("under 6 x the function timeout" in n for n in notes)


def test_the_mapping_scales_up_by_five_a_second_while_busy_and_down_by_one_when_idle(tmp_path):
    import io

    from sqslab.lambdas.mapping import Events, Mapping

    config = MappingConfig(_function("records"), "http://127.0.0.1:1/q", max_concurrency=12, logs=tmp_path)
    out = io.StringIO()
    mapping = Mapping(config, None, Events(out, "mapping", False), "arn:aws:sqs:r:1:q", 30.0)
    assert mapping.target == 5
    mapping._busy[0] = True
    mapping.scale()
    assert mapping.target == 10
    mapping.scale()
    assert mapping.target == 12, "never above max_concurrency"
    mapping._busy = [False] * len(mapping._busy)
    for expected in (11, 10, 9, 8, 7, 6, 5, 5):
        mapping.scale()
        assert mapping.target == expected, "one fewer a second when idle, never below five"
    assert [json.loads(line)["pollers"] for line in out.getvalue().splitlines()] == [10, 12, 11, 10, 9, 8, 7, 6, 5]


def test_the_local_cap_on_environments_comes_from_sqslab_lambda_max_environments(monkeypatch, host):
    from sqslab.contracts import Endpoints
    from sqslab.lambdas.mapping import DEFAULT_MAX_ENVIRONMENTS, ENV_MAX_ENVIRONMENTS, local_cap
    from sqslab.scenario.load import load_scenario_text

    text = f"version: 1\nname: t\nconsumer:\n  lambda: {{handler: app.partial, code: {EXAMPLES}}}\nload: [{{burst: 1}}]\n"
    consumer = load_scenario_text(text, host).consumer
    endpoints = Endpoints("http://127.0.0.1:1/1/q", None, "http://127.0.0.1:1", DEFAULT_REGION)
    monkeypatch.delenv(ENV_MAX_ENVIRONMENTS, raising=False)
    assert consumer.mapping_config(endpoints, "task-1").max_environments == DEFAULT_MAX_ENVIRONMENTS
    monkeypatch.setenv(ENV_MAX_ENVIRONMENTS, "40")
    assert consumer.mapping_config(endpoints, "task-1").max_environments == 40
    with pytest.raises(ValueError, match=f"{ENV_MAX_ENVIRONMENTS} must be a whole number"):
        local_cap({ENV_MAX_ENVIRONMENTS: "many"})


def _live(run: Run, **settings: Any) -> None:
    """What the local target's `tune` writes: the mapping's live settings file."""
    path = run.tmp / "live.json"
    scratch = run.tmp / "live.json.new"
    scratch.write_text(json.dumps({"enabled": True, "reserved_concurrency": None, "max_concurrency": None, **settings}))
    os.replace(scratch, path)


def test_a_disabled_mapping_stops_polling_and_enabled_again_drains(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "30"})
    run.start(_function("records"), batch_size=1, max_concurrency=2, live=run.tmp / "live.json")
    run.send(10)
    run.until(run.drained)
    _live(run, enabled=False)
    run.until(lambda: bool(run.events("mapping_changed")))
    off = time.time()
    run.send(20, first=10)
    time.sleep(2.0)
    # No new poll starts; the 2 long polls already waiting may each still take a message (as on AWS).
    visible, in_flight = run.counts()
    assert visible >= 18 and visible + in_flight == 20 - len(run.events("processed")) + 10, run.counts()
    assert len([e for e in run.events("received") if e["ts"] > off]) <= 2
    _live(run, enabled=True)
    run.until(run.drained)
    run.stop()
    changes = [(e["enabled"], e["reserved_concurrency"]) for e in run.events("mapping_changed")]
    assert changes == [(False, None), (True, None)]
    assert len(run.events("processed")) == 30 and not run.events("failed")


def test_reserved_concurrency_changes_in_place_without_a_new_environment(mapping_run):
    run = mapping_run(queue_attributes={"VisibilityTimeout": "2"})
    run.start(_function("records"), batch_size=5, max_concurrency=2, live=run.tmp / "live.json")
    run.send(5)
    run.until(run.drained)
    cold = sum(e["cold"] for e in run.events("invocation"))
    _live(run, reserved_concurrency=0)  # the console's Throttle button
    run.until(lambda: bool(run.events("mapping_changed")))
    run.send(5, first=5)
    run.until(lambda: bool(run.events("throttled")), timeout=20)
    _live(run, reserved_concurrency=5)
    run.until(run.drained, timeout=30)
    run.stop()
    assert all(e["reserved_concurrency"] == 0 for e in run.events("throttled"))
    assert sum(e["cold"] for e in run.events("invocation")) == cold, "warm environments stay: no new version"
    assert len({e["id"] for e in run.events("processed")}) == 10


def test_validate_notes_a_max_concurrency_above_the_local_cap(write, cli, monkeypatch):
    monkeypatch.setenv("SQSLAB_LAMBDA_MAX_ENVIRONMENTS", "4")
    path = write(f"""
        version: 1
        name: wide
        infra: {{queue: {{visibility_timeout: 30s}}}}
        consumer:
          lambda: {{handler: app.partial, code: {EXAMPLES}, timeout: 1s}}
          event_source: {{batch_size: 10, max_concurrency: 50}}
        load: [{{rate: 1/s, duration: 1s}}]
    """)
    result = cli("validate", "--json", path)
    assert result.exit_code == 0
    notes = json.loads(result.stdout)["files"][0]["notes"]
    assert any("max_concurrency 50 is above the local cap of 4" in n and "SQSLAB_LAMBDA_MAX_ENVIRONMENTS" in n for n in notes)
