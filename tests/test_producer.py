"""Tests for the producer (sqslab.run.producer): schedules, counts, payloads, failures."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import botocore.exceptions
import pytest

from sqslab.emulator import Emulator
from sqslab.run.producer import MAX_BATCH_BYTES, PhaseResult, Producer, due_offsets, produce_cli
from sqslab.scenario.timeline import Phase

REGION = "us-west-1"
RECORD_KEYS = {"id", "seq", "message_id", "sent_at", "phase", "poison"}

# ``emulator`` (one sqslab Emulator for the session) comes from conftest.py.


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return sqs.create_queue(QueueName=f"p-{uuid.uuid4().hex[:10]}")["QueueUrl"]


def depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def rate(name: str, r: float, duration: float, **kw: Any) -> Phase:
    return Phase(name=name, kind="rate", start=0.0, rate=r, duration=duration, **kw)


# --------------------------------------------------------------------------- schedules


def test_rate_and_count_offsets_are_evenly_spaced() -> None:
    assert list(due_offsets(rate("r", 4, 1))) == [0, 0.25, 0.5, 0.75]
    count = list(due_offsets(Phase("c", "count", 0.0, duration=2.0, count=5)))
    assert count == pytest.approx([0, 0.4, 0.8, 1.2, 1.6])
    assert list(due_offsets(Phase("p", "pause", 0.0, duration=3))) == []
    assert list(due_offsets(Phase("b", "burst", 0.0, count=3))) == [0, 0, 0]


@pytest.mark.parametrize("a, b", [(0, 100), (100, 0), (20, 80), (50, 50), (80, 20)])
def test_ramp_offsets_follow_the_integral_of_the_rate(a: float, b: float) -> None:
    phase = Phase("ramp", "ramp", 0.0, duration=4.0, rate_from=a, rate_to=b)
    offsets = list(due_offsets(phase))
    assert len(offsets) == phase.planned_messages() == round((a + b) / 2 * 4)
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] <= 4.0
    for k, t in enumerate(offsets):
        # Messages sent by t, by the linear rate's integral, is k.
        assert a * t + (b - a) / 4.0 * t * t / 2 == pytest.approx(k, abs=1e-6)


# --------------------------------------------------------------------------- against the emulator


@pytest.mark.integration
def test_phase_counts_are_exact_and_seq_rises_across_phases(sqs: Any, queue_url: str) -> None:
    records: list[dict[str, Any]] = []
    producer = Producer(sqs, queue_url, seed=3, on_sent=records.extend)
    phases = [
        rate("steady", 60, 1.0),
        Phase("ramp", "ramp", 0.0, duration=1.0, rate_from=0, rate_to=90),
        Phase("gap", "pause", 0.0, duration=0.2),
        Phase("spread", "count", 0.0, duration=0.5, count=17),
        Phase("flood", "burst", 0.0, count=333),
    ]
    results = [producer.run_phase(p) for p in phases]
    assert [r.sent for r in results] == [60, 45, 0, 17, 333]
    assert [r.failed for r in results] == [0] * 5
    assert all(not r.interrupted for r in results)
    assert depth(sqs, queue_url) == 455

    assert all(rec.keys() == RECORD_KEYS for rec in records)
    assert all(rec["message_id"] for rec in records)
    assert sorted(rec["seq"] for rec in records) == list(range(1, 456))
    assert len({rec["id"] for rec in records}) == 455
    # Each phase's seqs come after the previous phase's, and follow send order.
    by_phase: dict[str, list[int]] = {}
    for rec in sorted(records, key=lambda r: r["seq"]):
        by_phase.setdefault(rec["phase"], []).append(rec["seq"])
    assert list(by_phase) == ["steady", "ramp", "spread", "flood"]
    spans = list(by_phase.values())
    assert all(a[-1] < b[0] for a, b in zip(spans, spans[1:]))
    ordered = sorted(records, key=lambda r: r["seq"])
    assert all(x["sent_at"] <= y["sent_at"] for x, y in zip(ordered, ordered[1:]))
    # Phases are back to back on one clock: a timed phase ends at its duration.
    for r, p in zip(results, phases):
        if p.kind != "burst":
            assert p.duration <= r.elapsed < p.duration + 1.0, (p.name, r.elapsed)  # headroom for a busy machine
    assert all(x.ended_at <= y.started_at for x, y in zip(results, results[1:]))


@pytest.mark.integration
def test_rate_phase_keeps_to_the_clock(sqs: Any, queue_url: str) -> None:
    records: list[dict[str, Any]] = []
    producer = Producer(sqs, queue_url, on_sent=records.extend)
    result = producer.run_phase(rate("r", 150, 2.0))
    assert result.sent == 300
    # The rate holds over the whole phase: a drift by the cost of each call (a few ms per
    # send, 300 sends) would take it well below 150/s.
    assert result.rate == pytest.approx(150, rel=0.1)
    assert result.max_lag < 1.5  # a late send catches up (batches fill) instead of shifting the rest
    for rec in records:
        due = result.started_at + (rec["seq"] - 1) / 150
        assert -0.01 <= rec["sent_at"] - due < 1.0, rec


@pytest.mark.integration
def test_payloads_match_the_contract(sqs: Any, queue_url: str) -> None:
    records: list[dict[str, Any]] = []
    producer = Producer(sqs, queue_url, seed=11, on_sent=records.extend)
    producer.run_phase(Phase("p", "burst", 0.0, count=20, payload_size=1000, poison_rate=0.5))
    bodies = []
    while len(bodies) < 20:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        assert msgs
        bodies += [m["Body"] for m in msgs]
    by_id = {r["id"]: r for r in records}
    for text in bodies:
        assert len(text.encode()) == 1000
        body = json.loads(text)
        assert {"id", "work", "seq", "sent_at", "phase", "pad"} <= body.keys()
        assert str(uuid.UUID(body["id"], version=4)) == body["id"]
        assert 0 <= body["work"] <= 1 and body["phase"] == "p"
        rec = by_id[body["id"]]
        assert (rec["seq"], rec["sent_at"], rec["poison"]) == (body["seq"], body["sent_at"], body.get("poison", False))
        assert body.get("poison", True) is True  # present only when true


def _drain(sqs: Any, queue_url: str, n: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while len(messages) < n:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["sqslab-id"]).get("Messages", [])
        assert got
        messages += got
    return messages


TEMPLATE = '{"orderId": "{{ id }}", "n": {{ index }}, "amount": {{ rand_int(1, 500) }}, "cur": "{{ choice(["EUR", "USD"]) }}"}'


def test_a_body_template_gives_the_body_and_the_id_rides_in_an_attribute(sqs: Any, queue_url: str) -> None:
    records: list[dict[str, Any]] = []
    Producer(sqs, queue_url, seed=5, on_sent=records.extend).run_phase(Phase("orders", "burst", 0.0, count=12, body=TEMPLATE))
    messages = _drain(sqs, queue_url, 12)
    sent = {r["id"]: r for r in records}
    amounts = []
    for message in messages:
        ident = message["MessageAttributes"]["sqslab-id"]["StringValue"]
        body = json.loads(message["Body"])
        assert body["orderId"] == ident and ident in sent and not sent[ident]["poison"]
        assert 1 <= body["amount"] <= 500 and body["cur"] in ("EUR", "USD")
        amounts.append((body["n"], body["amount"]))
    assert sorted(n for n, _ in amounts) == list(range(12))
    # Seeded: the same seed draws the same amounts, message by message.
    again = sqs.create_queue(QueueName=f"p-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    Producer(sqs, again, seed=5).run_phase(Phase("orders", "burst", 0.0, count=12, body=TEMPLATE))
    replay = sorted((json.loads(m["Body"])["n"], json.loads(m["Body"])["amount"]) for m in _drain(sqs, again, 12))
    assert replay == sorted(amounts)


@pytest.mark.integration
def test_poison_fraction_is_seeded(sqs: Any, queue_url: str) -> None:
    def poison_pattern(seed: int) -> list[bool]:
        records: list[dict[str, Any]] = []
        Producer(sqs, queue_url, seed=seed, on_sent=records.extend).run_phase(
            Phase("b", "burst", 0.0, count=600, poison_rate=0.2, payload_size=64)
        )
        return [r["poison"] for r in sorted(records, key=lambda r: r["seq"])]

    first = poison_pattern(5)
    assert 0.15 < sum(first) / len(first) < 0.25
    assert poison_pattern(5) == first
    assert poison_pattern(6) != first


@pytest.mark.integration
def test_stop_ends_a_phase_early(sqs: Any, queue_url: str) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    producer = Producer(sqs, queue_url)
    t0 = time.monotonic()
    result = producer.run_phase(rate("long", 100, 30.0), stop)
    assert time.monotonic() - t0 < 3.0, "stopped at 0.5 s of a 30 s phase"
    assert result.interrupted and 30 <= result.sent <= 100
    assert depth(sqs, queue_url) == result.sent

    stop.clear()
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    assert producer.run_phase(Phase("gap", "pause", 0.0, duration=30.0), stop).interrupted
    assert time.monotonic() - t0 < 3.0, "stopped at 0.2 s of a 30 s pause"


@pytest.mark.integration
def test_produce_cli(emulator: Emulator, queue_url: str, sqs: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    burst = produce_cli(120, None, queue_url, emulator.endpoint_url, REGION, None)
    assert isinstance(burst, PhaseResult) and (burst.kind, burst.sent, burst.failed) == ("burst", 120, 0)
    paced = produce_cli(20, 40.0, queue_url, emulator.endpoint_url, REGION, None)
    assert paced.sent == 20 and 0.5 <= paced.elapsed < 2.0, paced.elapsed  # 20 at 40/s: 0.5 s, paced not burst
    assert depth(sqs, queue_url) == 140
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="rate must be above 0"):
        produce_cli(1, 0, queue_url, emulator.endpoint_url, REGION, None)


# --------------------------------------------------------------------------- failures (fake client)


class FlakyClient:
    """send_message_batch that throttles, fails entries, or fails whole calls, as told."""

    def __init__(self, throttle_first: int = 0, fail_every: int = 0, error: Exception | None = None) -> None:
        self.throttle_first = throttle_first
        self.fail_every = fail_every
        self.error = error
        self.calls: list[list[dict[str, str]]] = []
        self.lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(Entries)
            n = len(self.calls)
        if self.error is not None:
            raise self.error
        if n <= self.throttle_first:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "RequestThrottled", "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
                "SendMessageBatch",
            )
        ok, failed = [], []
        for e in Entries:
            body = json.loads(e["MessageBody"])
            if self.fail_every and body["seq"] % self.fail_every == 0:
                failed.append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "boom"})
            else:
                ok.append({"Id": e["Id"], "MessageId": f"m-{body['seq']}"})
        return {"Successful": ok, "Failed": failed}


def test_throttling_is_retried_with_backoff() -> None:
    client = FlakyClient(throttle_first=3)
    sent: list[dict[str, Any]] = []
    result = Producer(client, "q", on_sent=sent.extend, senders=1).run_phase(Phase("b", "burst", 0.0, count=10))
    assert (result.sent, result.failed) == (10, 0)
    assert len(client.calls) >= 4 and sorted(r["seq"] for r in sent) == list(range(1, 11))


def test_failed_entries_are_counted_and_reported() -> None:
    client = FlakyClient(fail_every=4)
    sent: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    result = Producer(client, "q", on_sent=sent.extend, on_failed=failed.extend).run_phase(Phase("b", "burst", 0.0, count=40))
    assert (result.sent, result.failed) == (30, 10)
    assert sorted(r["seq"] for r in failed) == list(range(4, 41, 4))
    assert all(r["error"] == "InternalError: boom" and r["message_id"] is None for r in failed)
    assert result.errors == {"InternalError": 10}
    assert {r["message_id"] for r in sent} == {f"m-{r['seq']}" for r in sent}


def test_a_call_that_keeps_failing_fails_its_messages() -> None:
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "SendMessageBatch"
    )
    client = FlakyClient(error=error)
    failed: list[dict[str, Any]] = []
    result = Producer(client, "q", on_failed=failed.extend).run_phase(Phase("b", "burst", 0.0, count=25))
    assert (result.sent, result.failed) == (0, 25)
    assert sum(len(c) for c in client.calls) == 25  # not retryable: each message tried once
    assert {r["error"] for r in failed} == {"AccessDenied: no"}


def test_batches_respect_the_size_limit() -> None:
    client = FlakyClient()
    Producer(client, "q", senders=1).run_phase(Phase("big", "burst", 0.0, count=7, payload_size=100_000))
    assert sum(len(c) for c in client.calls) == 7
    assert all(sum(len(e["MessageBody"]) for e in c) <= MAX_BATCH_BYTES for c in client.calls)
    assert all(len(c) <= 2 for c in client.calls)


def test_on_sent_is_called_one_batch_at_a_time() -> None:
    inside = 0
    overlaps = 0

    def slow(records: list[dict[str, Any]]) -> None:
        nonlocal inside, overlaps
        inside += 1
        overlaps += inside > 1
        time.sleep(0.002)
        inside -= 1

    Producer(FlakyClient(), "q", on_sent=slow, senders=4).run_phase(Phase("b", "burst", 0.0, count=200))
    assert overlaps == 0


def test_an_error_in_a_callback_ends_the_phase_and_is_raised() -> None:
    def broken(records: list[dict[str, Any]]) -> None:
        raise OSError("disk full")

    t0 = time.monotonic()
    with pytest.raises(OSError, match="disk full"):
        Producer(FlakyClient(), "q", on_sent=broken).run_phase(Phase("b", "burst", 0.0, count=100_000))
    with pytest.raises(OSError, match="disk full"):
        Producer(FlakyClient(), "q", on_sent=broken).run_phase(rate("r", 50, 30.0))
    assert time.monotonic() - t0 < 2
