"""The SQS journal: what the emulator writes for every operation on a message (over HTTP,
per caller), and what sqslab.truth.journal makes of it: fates from SQS's side, per-task counts,
and the self-check that fails when the consumers' events and the journal disagree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from sqslab.emulator import Emulator
from sqslab.emulator.journal import handle_facts, receipt_handle
from sqslab.truth.ledger import build_ledger
from sqslab.truth.store import Audit


def _client(endpoint: str, key: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-west-1", aws_access_key_id=key, aws_secret_access_key="any")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_receipt_handles_name_their_message_and_receive():
    handle = receipt_handle("6f1c0a2e-0000-4000-8000-000000000001", 3)
    assert handle_facts(handle) == ("6f1c0a2e-0000-4000-8000-000000000001", 3)
    assert handle_facts("not-a-handle-of-ours") is None
    assert receipt_handle("m", 1) != receipt_handle("m", 1)  # opaque: random beyond the facts


@pytest.mark.integration
def test_journal_attributes_every_operation_to_its_caller(tmp_path):
    journal = tmp_path / "journal.jsonl"
    with Emulator(journal_path=journal, lab={"behavior": {"behavior": "exact", "stale_receipt": "ignore"}}) as emu:
        producer, task = _client(emu.endpoint_url, "sqslab-producer"), _client(emu.endpoint_url, "sqslab-task-7")
        dlq = producer.create_queue(QueueName="j-dlq")["QueueUrl"]
        arn = producer.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = producer.create_queue(QueueName="j", Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})})["QueueUrl"]
        producer.send_message(QueueUrl=queue, MessageBody="body of the user's own",
                              MessageAttributes={"sqslab-id": {"DataType": "String", "StringValue": "A"}})
        producer.send_message(QueueUrl=queue, MessageBody='{"id": "B"}')
        first = task.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1)["Messages"]
        a = next(m for m in first if m["Body"].startswith("body"))
        task.change_message_visibility(QueueUrl=queue, ReceiptHandle=a["ReceiptHandle"], VisibilityTimeout=30)
        task.delete_message(QueueUrl=queue, ReceiptHandle=a["ReceiptHandle"])
        # B was received once (maxReceiveCount 1): the next receive moves it to the DLQ.
        assert task.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages") is None
    lines = _lines(journal)
    sends = {line["id"]: line for line in lines if line["op"] == "send"}
    assert set(sends) == {"A", "B"} and {line["by"] for line in sends.values()} == {"producer"}
    a_mid, b_mid = sends["A"]["mid"], sends["B"]["mid"]
    receives = [line for line in lines if line["op"] == "receive"]
    assert {(r["mid"], r["rc"], r["by"]) for r in receives} == {(a_mid, 1, "task-7"), (b_mid, 1, "task-7")}
    assert [(v["mid"], v["rc"], v["effect"]) for v in lines if v["op"] == "visibility"] == [(a_mid, 1, "changed")]
    assert [(d["mid"], d["rc"], d["effect"], d["by"]) for d in lines if d["op"] == "delete"] == [(a_mid, 1, "deleted", "task-7")]
    assert [(d["mid"], d["to"]) for d in lines if d["op"] == "dead_letter"] == [(b_mid, "j-dlq")]
    assert {(f["by"], f["api"]) for f in lines if f["op"] == "first_call"} >= {("task-7", "ReceiveMessage"), ("producer", "SendMessage")}


@pytest.mark.integration
def test_a_stale_delete_is_journalled_against_the_receive_it_came_from(tmp_path):
    journal = tmp_path / "journal.jsonl"
    with Emulator(journal_path=journal, lab={"behavior": {"behavior": "exact", "stale_receipt": "ignore"}}) as emu:
        task = _client(emu.endpoint_url, "sqslab-task-1")
        queue = task.create_queue(QueueName="stale")["QueueUrl"]
        task.send_message(QueueUrl=queue, MessageBody="x")
        old = task.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"][0]
        new = task.receive_message(QueueUrl=queue, VisibilityTimeout=30, WaitTimeSeconds=1)["Messages"][0]
        task.delete_message(QueueUrl=queue, ReceiptHandle=old["ReceiptHandle"])  # succeeds, deletes nothing
        task.delete_message(QueueUrl=queue, ReceiptHandle=new["ReceiptHandle"])
        task.delete_message(QueueUrl=queue, ReceiptHandle=new["ReceiptHandle"])  # again: succeeds
    deletes = [(d["rc"], d["effect"]) for d in _lines(journal) if d["op"] == "delete"]
    assert deletes == [(1, "stale_ignored"), (2, "deleted"), (2, "again")]


@pytest.mark.integration
def test_observer_calls_and_faulted_calls_are_told_apart(tmp_path):
    journal = tmp_path / "journal.jsonl"
    lab = {"behavior": {"behavior": "exact"}, "faults": [{"api": ["DeleteMessage"], "error": "internal", "rate": 1.0}], "seed": 1}
    with Emulator(journal_path=journal, lab=lab) as emu:
        task = boto3.client("sqs", endpoint_url=emu.endpoint_url, region_name="us-west-1", aws_access_key_id="sqslab-task-2",
                            aws_secret_access_key="x", config=__import__("botocore.config").config.Config(retries={"total_max_attempts": 1}))
        observer = _client(emu.endpoint_url, "sqslab-producer")
        observer.meta.events.register("before-sign.sqs", lambda request, **_: request.headers.__setitem__("X-Sqslab-Observer", "1"))
        queue = observer.create_queue(QueueName="f")["QueueUrl"]
        observer.send_message(QueueUrl=queue, MessageBody="x")
        handle = task.receive_message(QueueUrl=queue)["Messages"][0]["ReceiptHandle"]
        with pytest.raises(Exception, match="InternalFailure"):
            task.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    lines = _lines(journal)
    assert [line["by"] for line in lines if line["op"] == "send"] == ["observer"]
    assert [(f["by"], f["api"], f["error"]) for f in lines if f["op"] == "fault"] == [("task-2", "DeleteMessage", "internal")]
    assert not [d for d in lines if d["op"] == "delete"]


# ---------------------------------------------------------------- the self-check, on made-up runs


def _story(*, processed_twice: bool = False, unreported_delete: bool = False, kill: bool = False) -> tuple[list, list]:
    """A run of two messages told twice: consumer events and the journal (m1 processed once by
    task-1; m2 failed once by task-1, then processed by task-2)."""
    sent = [{"event": "sent", "source": "producer", "id": i, "seq": n, "sent_at": 1.0} for n, i in enumerate(("A", "B"), 1)]
    journal = [{"op": "send", "by": "producer", "mid": "m1", "id": "A"}, {"op": "send", "by": "producer", "mid": "m2", "id": "B"},
               {"op": "receive", "by": "task-1", "mid": "m1", "rc": 1, "ts": 2.0},
               {"op": "receive", "by": "task-1", "mid": "m2", "rc": 1, "ts": 2.0},
               {"op": "delete", "by": "task-1", "mid": "m1", "rc": 1, "effect": "deleted", "ts": 2.1},
               {"op": "receive", "by": "task-2", "mid": "m2", "rc": 2, "ts": 9.0},
               {"op": "delete", "by": "task-2", "mid": "m2", "rc": 2, "effect": "deleted", "ts": 9.1}]

    def ev(kind: str, task: str, ident: str, mid: str, rc: int, ts: float) -> dict[str, Any]:
        return {"event": kind, "source": "consumer", "task": task, "id": ident, "message_id": mid, "receive_count": rc, "ts": ts}

    events = sent + [ev("received", "task-1", "A", "m1", 1, 2.0), ev("processed", "task-1", "A", "m1", 1, 2.05),
                     ev("received", "task-1", "B", "m2", 1, 2.0), ev("failed", "task-1", "B", "m2", 1, 2.05),
                     ev("received", "task-2", "B", "m2", 2, 9.0), ev("processed", "task-2", "B", "m2", 2, 9.05)]
    if processed_twice:  # the consumer claims a second processing SQS never delivered
        events.append(ev("processed", "task-2", "A", "m1", 2, 9.5))
    if unreported_delete:  # SQS saw a delete of m2's first receive the consumer says failed
        journal.append({"op": "delete", "by": "task-1", "mid": "m2", "rc": 1, "effect": "stale_deleted", "ts": 9.2})
    if kill:  # task-3 took a receive with it when it was killed: explained, not a disagreement
        journal.append({"op": "receive", "by": "task-3", "mid": "m2", "rc": 3, "ts": 9.3})
        events.append({"event": "task_exited", "source": "target", "task": "task-3", "reason": "killed", "ts": 9.4})
    return events, journal


def _check(events: list, journal: list) -> dict[str, Any]:
    ledger = build_ledger(events, Audit(at=100.0), sqs_journal=journal)
    return ledger.journal


def test_the_two_stories_agree_on_an_honest_run():
    section = _check(*_story())
    assert section["check"] == {"agree": True, "disagreements": [], "disagreement_count": 0, "explained": {}}
    assert section["counts"]["processed_once"] == 2 and section["redelivered_then_deleted_once"] == 1
    assert section["per_task"] == {"task-1": {"received": 2, "deleted": 1}, "task-2": {"received": 1, "deleted": 1}}


def test_a_processing_sqs_never_delivered_is_a_disagreement():
    check = _check(*_story(processed_twice=True))["check"]
    assert not check["agree"] and check["disagreement_count"] >= 1
    assert any("processed by a consumer, but SQS saw no delete" in d for d in check["disagreements"])


def test_a_delete_the_consumer_never_reported_is_a_disagreement():
    check = _check(*_story(unreported_delete=True))["check"]
    assert not check["agree"]
    assert any("delete seen by SQS of a receive its task did not report processing" in d for d in check["disagreements"])


def test_receives_a_killed_task_took_with_it_are_explained():
    check = _check(*_story(kill=True))["check"]
    assert check["agree"], check
    assert check["explained"] == {"receives a task took with it when it died or was stopped": 1}


def test_without_consumer_events_the_journal_is_the_ledger():
    events, journal = _story()
    only_sent = [e for e in events if e["source"] == "producer"]
    ledger = build_ledger(only_sent, Audit(at=100.0), sqs_journal=journal)
    assert ledger.source == "SQS journal" and "check" not in ledger.journal
    assert ledger.fates() == {"A": "processed_once", "B": "processed_once"}
    assert ledger.figures["receives"] == 3 and ledger.figures["redeliveries"] == 1
    assert ledger.figures["latency.max"] == pytest.approx(8.1)
    assert ledger.per_task == {"task-1": {"received": 2, "processed": 1}, "task-2": {"received": 1, "processed": 1}}


def test_a_silent_program_with_no_journal_gets_fates_from_the_queues_and_no_made_up_figures():
    events, _ = _story()
    only_sent = [e for e in events if e["source"] == "producer"]
    ledger = build_ledger(only_sent, Audit(at=100.0, dlq_ids={"B"}), program=True)
    assert ledger.source == "queue audit" and ledger.fates() == {"A": "processed_once", "B": "dead_lettered"}
    assert ledger.figures["lost"] == 0 and ledger.figures["processed"] == 1
    assert ledger.figures["receives"] is None and ledger.figures["duplicates"] is None and ledger.figures["latency.p50"] is None


def test_expired_and_purged_messages_are_fates_of_their_own():
    """Retention ran out for C, a PurgeQueue by task-2 dropped D: SQS says so in the journal,
    so neither is LOST (a bug somewhere); each has its fate, in both stories."""
    events, journal = _story()
    sent = [e for e in events if e["source"] == "producer"]
    sent += [{"event": "sent", "source": "producer", "id": i, "seq": n, "sent_at": 1.0} for n, i in ((3, "C"), (4, "D"))]
    journal += [{"op": "send", "by": "producer", "mid": "m3", "id": "C"}, {"op": "send", "by": "producer", "mid": "m4", "id": "D"},
                {"op": "expired", "by": "?", "mid": "m3", "q": "q"}, {"op": "purged", "by": "task-2", "mid": "m4", "q": "q"}]
    for consumer_events in (True, False):
        ledger = build_ledger((events[:2] + sent[2:] + events[2:]) if consumer_events else sent, Audit(at=100.0, exact=True),
                              sqs_journal=journal)
        fates = ledger.fates()
        assert fates["C"] == "expired" and fates["D"] == "purged", fates
        assert ledger.figures["expired"] == 1 and ledger.figures["purged"] == 1 and ledger.figures["lost"] == 0
        assert ledger.journal["counts"]["expired"] == 1 and ledger.journal["counts"]["purged"] == 1
        [purged] = [p for p in ledger.problems if p["fate"] == "purged"]
        assert purged["purged_by"] == "task-2"
        assert ledger.journal.get("check", {"agree": True})["agree"], ledger.journal["check"]


def test_fates_hold_whoever_deleted():
    """A program that signs with `testing` (as test setups often do), not its task's key: its
    deletes still process the messages (it was 20/20 LOST)."""
    events, journal = _story()
    only_sent = [e for e in events if e["source"] == "producer"]
    for line in journal:
        if line["by"].startswith("task-"):
            line["by"] = "testing"
    ledger = build_ledger(only_sent, Audit(at=100.0, exact=True), sqs_journal=journal)
    assert ledger.fates() == {"A": "processed_once", "B": "processed_once"}
    assert ledger.figures["lost"] == 0 and "testing" in ledger.journal["per_task"]


def test_calls_under_a_tasks_identity_after_it_ended_are_a_finding():
    """task-3 was killed at 9.4; a worker it forked went on deleting at 15 and receiving at
    40 (dramatiq's and celery's CLIs fork): that is a finding, not a quiet success."""
    from sqslab.truth.journal import after_end_finding

    events, journal = _story(kill=True)
    assert after_end_finding(_check(events, journal)) is None, "a receive just before the kill is no finding"
    journal += [{"op": "receive", "by": "task-3", "mid": "m1", "rc": 2, "ts": 40.0},
                {"op": "delete", "by": "task-3", "mid": "m1", "rc": 2, "effect": "stale_deleted", "ts": 15.0}]
    section = _check(events, journal)
    assert section["after_end"] == {"task-3": {"ended": "killed", "ended_at": 9.4, "receives": 1, "deletes": 1, "last_call": 40.0}}
    finding = after_end_finding(section)
    assert finding is not None and "task-3 (killed): 1 receive(s) and 1 delete(s) after it ended" in finding


def test_a_malformed_event_line_is_left_out_and_said_not_an_internal_error():
    """A program printed `{"event": "received"}`: the run ended in 'internal error:
    IntegrityError'. Such a line is left out, counted in the anomalies, and the journal
    gives the fates."""
    events, journal = _story()
    only_sent = [e for e in events if e["source"] == "producer"]
    bad = [{"event": "received", "source": "consumer", "task": "task-1", "ts": 2.0},
           {"event": "processed", "source": "consumer", "task": "task-1", "id": 5, "receive_count": "x", "ts": 2.1}]
    ledger = build_ledger(only_sent + bad, Audit(at=100.0, exact=True), sqs_journal=journal)
    assert ledger.fates() == {"A": "processed_once", "B": "processed_once"} and ledger.source == "SQS journal"
    assert any("2 consumer event line(s) named no message" in a for a in ledger.anomalies)


def test_a_processing_whose_delete_a_stop_cut_short_is_explained():
    """A program without a SIGTERM handler said `processed`, then the roll's SIGTERM ended it
    before its delete (exit -15); SQS gave the message to another task. The two stories differ
    for a reason the lab knows, as for a killed task: no finding (CI saw it once)."""
    events, journal = _story()
    journal = [line for line in journal if not (line["op"] == "delete" and line["mid"] == "m1")]
    journal += [{"op": "receive", "by": "task-2", "mid": "m1", "rc": 2, "ts": 9.2},
                {"op": "delete", "by": "task-2", "mid": "m1", "rc": 2, "effect": "deleted", "ts": 9.3}]
    def ev(kind: str, task: str, rc: int, ts: float) -> dict[str, Any]:
        return {"event": kind, "source": "consumer", "task": task, "id": "A", "message_id": "m1", "receive_count": rc, "ts": ts}
    events += [ev("received", "task-2", 2, 9.2), ev("processed", "task-2", 2, 9.25),
               {"event": "task_stopping", "source": "target", "task": "task-1", "ts": 2.06},
               {"event": "task_exited", "source": "target", "task": "task-1", "reason": "stopped", "exit_code": -15, "ts": 2.1}]
    check = _check(events, journal)["check"]
    assert check["agree"], check
    graceful = [e if e.get("event") != "task_exited" else {**e, "exit_code": 0} for e in events]
    assert not _check(graceful, journal)["check"]["agree"], "a task that stopped cleanly had no excuse"
