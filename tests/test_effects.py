"""Effects: was the work done exactly once? The emulator's effects endpoint, the effect fates
beside the SQS fates, the built-in consumer's `effect` knob, and a program that acknowledges
before its work."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sqslab.plugins import load_plugins
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.scenario.load import load_scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def post(url: str, body: bytes, task: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"X-Sqslab-Task": task} if task else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=headers), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_effects_endpoint_journals_the_id_at_the_path_and_refuses_what_it_cannot_take(tmp_path: Path) -> None:
    from sqslab.emulator import Emulator

    journal = tmp_path / "journal.jsonl"
    with Emulator(journal_path=journal) as emulator:
        url = f"{emulator.endpoint_url}/_sqslab/effects"
        assert post(url + "?id=order.id", json.dumps({"order": {"id": "o-1"}, "amount": 3}).encode(), "task-2") == (200, {"id": "o-1"})
        assert post(url, json.dumps({"id": 42}).encode()) == (200, {"id": "42"})
        assert post(url, json.dumps({"other": 1}).encode()) == (200, {"id": None}), "an effect naming nothing is still counted"
        status, answer = post(url, b"[1, 2]")
        assert status == 400 and "POST a JSON object" in answer["error"]
        status, answer = post(url, b"{not json")
        assert status == 400
        status, answer = post(url, json.dumps({"id": "x", "blob": "y" * 70_000}).encode())
        assert status == 413 and "at most 65536 bytes (MAX_CONTROL_BODY)" in answer["error"]
        urllib.request.urlopen(urllib.request.Request(f"{emulator.endpoint_url}/_sqslab/journal/flush", data=b"", method="POST"))
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    effects = [(line["id"], line["by"]) for line in lines if line["op"] == "effect"]
    assert effects == [("o-1", "task-2"), ("42", "?"), (None, "?")]


def run(tmp_path: Path, text: str, *overrides: str) -> dict[str, Any]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    host = load_plugins(entry_points=False)
    scenario = load_scenario(path, host, overrides=list(overrides))
    result = run_scenario(scenario, host, RunOptions(out=tmp_path / "run", handle_signals=False))
    return result.summary


BUILT_IN = """
version: 1
name: effects
seed: 3
# maxReceiveCount 10: a message failed three times in a row (0.8 % each) must not reach the DLQ here.
infra: {queue: {visibility_timeout: 2s}, dlq: {max_receive_count: 10}, consumers: 2}
consumer: {work_time: 10ms, error_rate: 0.2}
effects: {}
load: [{rate: 40/s, duration: 1s}]
settle: {timeout: 40s}
"""


@pytest.mark.parametrize("effect, check", [
    # A failure after the work: SQS saw each message deleted once, the work happened twice.
    ("after_work", lambda f: f["effects.duplicates"] > f["duplicates"] and f["effects.lost_work"] == 0),
    # The effect only on success, just before the delete: exactly once, whatever failed before.
    ("before_delete", lambda f: f["effects.applied_once"] + f["effects.duplicates"] == f["sent"]
     and f["effects.duplicates"] <= f["duplicates"] and f["failures"] > 0),
    # No effect at all: every deleted message is lost work, though SQS lost nothing.
    ("none", lambda f: f["effects.lost_work"] == f["sent"] and f["lost"] == 0 and f["effects.total"] == 0),
])
def test_the_built_in_consumers_effect_knob_tells_both_stories(tmp_path: Path, effect: str, check: Any) -> None:
    summary = run(tmp_path, BUILT_IN, f"consumer.effect={effect}")
    figures = summary["figures"]
    assert summary["errors"] == [], summary["errors"]
    assert figures["sent"] == 40 and figures["lost"] == 0 and figures["processed_once"] + figures["duplicates"] == 40
    assert check(figures), {k: v for k, v in figures.items() if k.startswith("effects") or k in ("failures", "duplicates")}
    fates = ("effects.applied_once", "effects.duplicates", "effects.lost_work", "effects.applied_not_deleted", "effects.not_applied")
    assert sum(figures[name] for name in fates) == figures["sent"], "one effect fate per id"
    if figures["effects.duplicates"]:
        listed = [p for p in summary["ledger"]["problems"] if p.get("effect", {}).get("fate") == "applied more than once"]
        assert len(listed) == figures["effects.duplicates"] and all(p["effect"]["effects"] >= 2 for p in listed)
    report = (tmp_path / "run" / "summary.json").read_text()
    assert "effects.lost_work" in report


def test_an_effect_figure_without_effects_is_unknown_and_its_expectation_fails_with_the_reason(tmp_path: Path) -> None:
    summary = run(tmp_path, BUILT_IN.replace("effects: {}\n", "") + 'expect: ["effects.lost_work == 0"]\n')
    assert summary["figures"]["effects.lost_work"] is None
    (expectation,) = summary["expectations"]
    assert expectation["passed"] is False and "n/a" in expectation["measured"]


@pytest.mark.slow
@pytest.mark.parametrize("ack, lost_work", [("early", True), ("late", False)])
def test_a_program_that_acknowledges_before_its_work_loses_work_when_killed(tmp_path: Path, ack: str, lost_work: bool) -> None:
    """The Celery default (early acknowledgement) and acks_late, with python-worker's ACK:
    killed mid-work, an early-ack worker leaves messages deleted and never charged."""
    text = (ROOT / "scenarios" / "effects_early_ack.yaml").read_text().replace("../consumer", str(ROOT / "consumer"))
    text = text.replace("  - effects.lost_work > 0\n", "")
    summary = run(tmp_path, text, f"consumer.program.env.ACK={ack}")
    figures = summary["figures"]
    assert figures["lost"] == 0 and figures["sent"] == 60, "SQS lost nothing either way"
    assert (figures["effects.lost_work"] > 0) is lost_work, figures
    assert figures["effects.duplicates"] == 0 or ack == "late"
    problems = [p for p in summary["ledger"]["problems"] if p.get("effect", {}).get("fate") == "lost work"]
    assert len(problems) == figures["effects.lost_work"]


def test_validate_refuses_a_bad_effects_path_and_the_aws_target_says_it_does_not_count_effects(tmp_path: Path) -> None:
    from sqslab.scenario.load import check_file
    from sqslab.targets import TargetError
    from sqslab.targets.aws.target import AwsTarget

    host = load_plugins(entry_points=False)
    path = tmp_path / "s.yaml"
    path.write_text(BUILT_IN.replace("effects: {}", "effects: {id: 'order id'}"))
    problems = [str(p) for p in check_file(path, host)]
    line = path.read_text().splitlines().index("effects: {id: 'order id'}") + 1
    assert len(problems) == 1 and f":{line}:" in problems[0] and "effects.id" in problems[0], problems
    assert "give a dotted path of keys" in problems[0] and "does not match" not in problems[0]
    path.write_text(BUILT_IN)
    with pytest.raises(TargetError, match="the aws target does not count effects yet"):
        AwsTarget().plan(load_scenario(path, host))


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [True, False])
def test_writes_to_the_dynamodb_effects_table_are_effects_and_a_conditional_write_keeps_them_once(tmp_path: Path,
                                                                                                 conditional: bool) -> None:
    """SQS delivers some messages twice (sqs.duplicates); a worker writing each order with
    a conditional PutItem writes it once (more deliveries than effects), an unconditional
    one writes again. The table is the emulator's DynamoDB; a failed conditional write is
    no effect."""
    text = (ROOT / "scenarios" / "effects_idempotent.yaml").read_text().replace("../consumer", str(ROOT / "consumer"))
    text = text[:text.index("expect:")]
    summary = run(tmp_path, text, f"consumer.program.env.CONDITIONAL={'true' if conditional else 'false'}")
    figures = summary["figures"]
    assert summary["errors"] == [] and figures["lost"] == 0 and figures["sent"] == 80
    assert figures["duplicates"] > 0, "SQS delivered some messages twice"
    if conditional:
        assert figures["effects.applied_once"] == 80 and figures["effects.duplicates"] == 0 and figures["effects.total"] == 80
    else:
        assert figures["effects.duplicates"] > 0 and figures["effects.total"] > 80
    lines = (tmp_path / "run" / "sqs_journal.jsonl").read_text().splitlines()
    writes = [line for line in lines if '"op":"effect"' in line]
    assert writes and all('"via":"dynamodb"' in line and '"by":"task-' in line for line in writes), writes[:2]


def test_batch_and_transaction_writes_to_an_effects_table_are_effects_and_a_failed_condition_is_none(tmp_path: Path) -> None:
    """boto3's batch_writer (BatchWriteItem) and TransactWriteItems count one effect per
    item written; a conditional put that fails counts none; another table counts none."""
    import boto3

    from sqslab.emulator import Emulator

    journal = tmp_path / "journal.jsonl"
    with Emulator(journal_path=journal) as emulator:
        kw = {"endpoint_url": emulator.endpoint_url, "region_name": "us-west-1", "aws_access_key_id": "sqslab-task-4",
              "aws_secret_access_key": "x"}
        dynamodb = boto3.client("dynamodb", **kw)
        for name in ("effects-t", "other-t"):
            dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": "order", "KeyType": "HASH"}],
                                  AttributeDefinitions=[{"AttributeName": "order", "AttributeType": "S"}],
                                  BillingMode="PAY_PER_REQUEST")
        emulator.control("effects/table", {"table": "effects-t", "id": "order"})
        with boto3.resource("dynamodb", **kw).Table("effects-t").batch_writer() as batch:
            for i in range(3):
                batch.put_item(Item={"order": f"b-{i}", "n": i})
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "effects-t", "Item": {"order": {"S": "t-1"}}}},
            {"Update": {"TableName": "effects-t", "Key": {"order": {"S": "t-2"}}, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}}}},
            {"Put": {"TableName": "other-t", "Item": {"order": {"S": "o-1"}}}}])
        with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
            dynamodb.put_item(TableName="effects-t", Item={"order": {"S": "b-0"}}, ConditionExpression="attribute_not_exists(#o)",
                              ExpressionAttributeNames={"#o": "order"})
        dynamodb.put_item(TableName="other-t", Item={"order": {"S": "o-2"}})
        emulator.flush_journal()
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    effects = sorted((line["id"], line["by"], line["table"]) for line in lines if line["op"] == "effect")
    assert effects == [(i, "task-4", "effects-t") for i in ("b-0", "b-1", "b-2", "t-1", "t-2")]


@pytest.mark.slow
@pytest.mark.parametrize("idempotent", [True, False])
def test_a_powertools_idempotent_lambda_charges_each_order_once_though_sqs_delivers_some_twice(tmp_path: Path,
                                                                                           idempotent: bool) -> None:
    """consumer/examples/lambda-python's idempotent_app: Powertools' @idempotent_function
    (its records in a DynamoDB table of its own) around a plain PutItem to the effects
    table. SQS delivers some orders twice; with the decorator each is charged once, without
    it the repeated deliveries charge again."""
    pytest.importorskip("aws_lambda_powertools", reason="the idempotency example needs aws-lambda-powertools")
    text = (ROOT / "scenarios" / "lambda_idempotent.yaml").read_text().replace("../consumer", str(ROOT / "consumer"))
    summary = run(tmp_path, text[:text.index("expect:")], f"consumer.lambda.env.IDEMPOTENT={str(idempotent).lower()}")
    figures = summary["figures"]
    assert summary["errors"] == [] and figures["lost"] == 0 and figures["sent"] == 80
    assert figures["duplicates"] > 0 and figures["receives"] > 80, "SQS delivered some orders twice"
    if idempotent:
        assert figures["effects.applied_once"] == 80 and figures["effects.duplicates"] == 0 and figures["effects.total"] == 80
    else:
        assert figures["effects.duplicates"] > 0 and figures["effects.total"] > 80
