"""The emulator's lab, over HTTP against a real emulator child: SQS's documented departures
from exactness on demand (sqslab/emulator/lab.py, sqs_backend.py, sqs_queue.py), API faults
made in the emulator (middleware.py) and in a boto3 client (consumer/sqsfaults.py), and the
DLQ redrive API (redrive.py).

The behaviour tests share one emulator and change its settings through the control endpoint
(POST /_sqslab/behavior), back to `exact` after each test; fault rules cannot be taken out of
an emulator, so each fault test starts its own (half a second each).

Every rate is checked against the configured one with a binomial 4-sigma bound,
|measured - p| <= 4 * sqrt(p * (1 - p) / n): the draws are seeded, so a run is reproducible,
and a 4-sigma bound would still hold for any other seed with probability > 99.99 %, so a
change in the order of the draws (another test added, a call more) cannot make a test flaky.
The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from sqslab.consumer import sqsfaults
from sqslab.credentials import emulator_session
from sqslab.emulator import Emulator, EmulatorError
from sqslab.emulator.lab import PROFILES, REORDER_WINDOW, Behavior

OBSERVER = {"X-Sqslab-Observer": "1"}
#: What boto3 sees for each error kind: (HTTP status, Error.Code, retried by botocore's standard mode).
ERROR_KINDS: dict[str, tuple[int, str, bool]] = {
    "throttling": (403, "RequestThrottled", True),
    "internal": (500, "InternalFailure", True),
    "unavailable": (503, "ServiceUnavailable", True),
    "access_denied": (400, "AccessDeniedException", False),
}
#: The only SQS APIs whose answer the redrive module makes (answered before the fault plan is asked).
REDRIVE_APIS = ("StartMessageMoveTask", "ListMessageMoveTasks", "CancelMessageMoveTask")
QUERY_AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-west-1/sqs/aws4_request, "
              "SignedHeaders=host, Signature=0")

_sessions: list[Any] = []


# --------------------------------------------------------------------------- helpers


def _session() -> Any:
    if not _sessions:
        _sessions.append(emulator_session())
    return _sessions[0]


def _observe_header(request: Any, **_: Any) -> None:
    request.headers["X-Sqslab-Observer"] = "1"


def _sqs(endpoint: str, attempts: int = 1, observer: bool = False) -> Any:
    """A boto3 SQS client making at most `attempts` attempts per call (botocore's
    `total_max_attempts`; its `max_attempts` counts retries, not attempts)."""
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, max_pool_connections=10)
    sqs = _session().client("sqs", endpoint_url=endpoint, config=config)
    if observer:
        sqs.meta.events.register("before-sign.sqs", _observe_header)
    return sqs


def _queue(sqs: Any, fifo: bool = False, prefix: str = "q", **attributes: str) -> tuple[str, str]:
    """(url, arn) of a new queue with a unique name."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    attrs = {**({"FifoQueue": "true"} if fifo else {}), **attributes}
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    return url, f"arn:aws:sqs:us-west-1:123456789012:{name}"


def _name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _send(sqs: Any, url: str, bodies: list[str], group: str | None = None) -> list[str]:
    """Send bodies in order (batches of 10); their MessageIds, in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
        if group is not None:
            for entry in entries:
                entry.update(MessageGroupId=group, MessageDeduplicationId=entry["MessageBody"])
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not answer.get("Failed"), answer
        by_id = {e["Id"]: e["MessageId"] for e in answer["Successful"]}
        ids += [by_id[str(i)] for i in range(len(chunk))]
    return ids


def _receive(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("MaxNumberOfMessages", 10)
    return list(sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"], **kwargs).get("Messages", []))


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    if messages:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    """(ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible)."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _events(path: Path | None, event: str, **match: Any) -> list[dict[str, Any]]:
    """The events of the kind in an emulator's event file whose fields equal match."""
    assert path is not None
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == event and all(record.get(k) == v for k, v in match.items()):
            out.append(record)
    return out


def _bound(p: float, n: int) -> float:
    """The binomial 4-sigma bound on a measured rate of n draws at p."""
    return 4 * math.sqrt(p * (1 - p) / n)


def _check_rate(what: str, measured: float, p: float, n: int) -> None:
    bound = _bound(p, n)
    print(f"\n[rate] {what}: measured {measured:.4f} vs configured {p:.4g} (n={n}, 4-sigma bound ±{bound:.4f})")
    assert abs(measured - p) <= bound, f"{what}: measured {measured:.4f}, configured {p}, bound ±{bound:.4f}"


def _error(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _call(sqs: Any, api: str, url: str, arn: str) -> Any:
    """Call `api` with parameters botocore accepts (the fault tests never let them reach moto)."""
    params: dict[str, dict[str, Any]] = {
        "AddPermission": {"QueueUrl": url, "Label": "l", "AWSAccountIds": ["123456789012"], "Actions": ["SendMessage"]},
        "CancelMessageMoveTask": {"TaskHandle": "x"},
        "ChangeMessageVisibility": {"QueueUrl": url, "ReceiptHandle": "x", "VisibilityTimeout": 0},
        "ChangeMessageVisibilityBatch": {"QueueUrl": url, "Entries": [{"Id": "1", "ReceiptHandle": "x"}]},
        "CreateQueue": {"QueueName": "created-under-fault"},
        "DeleteMessage": {"QueueUrl": url, "ReceiptHandle": "x"},
        "DeleteMessageBatch": {"QueueUrl": url, "Entries": [{"Id": "1", "ReceiptHandle": "x"}]},
        "DeleteQueue": {"QueueUrl": url},
        "GetQueueAttributes": {"QueueUrl": url, "AttributeNames": ["All"]},
        "GetQueueUrl": {"QueueName": _name(url)},
        "ListDeadLetterSourceQueues": {"QueueUrl": url},
        "ListMessageMoveTasks": {"SourceArn": arn},
        "ListQueueTags": {"QueueUrl": url},
        "ListQueues": {},
        "PurgeQueue": {"QueueUrl": url},
        "ReceiveMessage": {"QueueUrl": url},
        "RemovePermission": {"QueueUrl": url, "Label": "l"},
        "SendMessage": {"QueueUrl": url, "MessageBody": "x"},
        "SendMessageBatch": {"QueueUrl": url, "Entries": [{"Id": "1", "MessageBody": "x"}]},
        "SetQueueAttributes": {"QueueUrl": url, "Attributes": {"VisibilityTimeout": "30"}},
        "StartMessageMoveTask": {"SourceArn": arn},
        "TagQueue": {"QueueUrl": url, "Tags": {"k": "v"}},
        "UntagQueue": {"QueueUrl": url, "TagKeys": ["k"]},
    }
    return getattr(sqs, xform_name(api))(**params[api])


def _seed_with(rule: dict[str, Any], api: str, pattern: list[bool]) -> int:
    """The first seed whose fault plan fires for the first calls of `api` as `pattern` says
    (the emulator's plan draws from the same seeded generator: its decisions are these)."""
    for seed in range(10_000):
        plan = sqsfaults.FaultPlan([rule], seed=seed)
        if [plan.decide(api) is not None for _ in pattern] == pattern:
            return seed
    raise AssertionError(f"no seed gives {pattern}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One exact emulator for the behaviour, client-side fault and redrive tests."""
    events = tmp_path_factory.mktemp("lab") / "events.jsonl"
    with Emulator(lab={"behavior": {"behavior": "exact"}, "seed": 7}, events_path=events) as running:
        yield running


@pytest.fixture()
def behave(emu: Emulator) -> Iterator[Callable[..., dict[str, Any]]]:
    """behave(setting=value...): change the shared emulator's behaviour; `exact` again after the test."""

    def change(**settings: Any) -> dict[str, Any]:
        return dict(emu.control("behavior", settings))

    yield change
    emu.control("behavior", PROFILES["exact"])


@pytest.fixture()
def sqs(emu: Emulator) -> Any:
    return _sqs(emu.endpoint_url)


@pytest.fixture()
def lab_emulator(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """lab_emulator(faults=[...], seed=N, name=...): a dedicated emulator with its own event file."""
    started: list[Emulator] = []

    def start(faults: list[dict[str, Any]] | None = None, seed: int = 7, name: str = "ev") -> Emulator:
        emulator = Emulator(lab={"behavior": {"behavior": "exact"}, "faults": faults or [], "seed": seed},
                            events_path=tmp_path / f"{name}.jsonl").start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


# =========================================================================== behaviour


@pytest.mark.integration
def test_duplicates_redeliver_deleted_messages_at_the_configured_rate(emu: Emulator, behave: Any, sqs: Any) -> None:
    p, n = 0.2, 400
    url, _ = _queue(sqs)
    ids = _send(sqs, url, [f"m{i}" for i in range(n)])
    behave(duplicates=p)
    deliveries: Counter[str] = Counter()
    deleted: set[str] = set()
    deletes = 0  # each delete made under `duplicates` is one draw
    deadline = time.monotonic() + 20
    while len(deleted) < n:
        assert time.monotonic() < deadline, f"only {len(deleted)} of {n} received"
        got = _receive(sqs, url, VisibilityTimeout=1)
        deliveries.update(m["MessageId"] for m in got)
        _delete(sqs, url, got)
        deletes += len(got)
        deleted.update(m["MessageId"] for m in got)
    behave(duplicates=0.0)  # the copies that survived now come back once, and their delete is exact
    deadline = time.monotonic() + 10
    while sum(_counts(sqs, url)):
        assert time.monotonic() < deadline, "the surviving copies never came back"
        got = _receive(sqs, url, VisibilityTimeout=1, WaitTimeSeconds=1)
        deliveries.update(m["MessageId"] for m in got)
        _delete(sqs, url, got)
    assert set(deliveries) == set(ids)
    redelivered = Counter({mid: count - 1 for mid, count in deliveries.items() if count > 1})
    duplicates = _events(emu.events_path, "sqs_behavior", kind="duplicate", queue=_name(url))
    assert Counter(e["message_id"] for e in duplicates) == redelivered, "one duplicate event per extra delivery"
    assert all(e["api"] == "DeleteMessage" for e in duplicates)
    print(f"\n[duplicates] {sum(redelivered.values())} redeliveries after {deletes} deletes")
    _check_rate("duplicates (redeliveries per delete)", len(duplicates) / deletes, p, deletes)


@pytest.mark.integration
def test_duplicates_never_touch_a_fifo_queue(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(duplicates=1.0)
    fifo, _ = _queue(sqs, fifo=True)
    standard, _ = _queue(sqs)
    for group in ("a", "b", "c", "d"):
        _send(sqs, fifo, [f"{group}{i}" for i in range(5)], group=group)
    _send(sqs, standard, [f"s{i}" for i in range(10)])
    fifo_seen: list[str] = []
    for _ in range(20):
        got = _receive(sqs, fifo, VisibilityTimeout=1)
        fifo_seen += [m["Body"] for m in got]
        _delete(sqs, fifo, got)
        if len(fifo_seen) == 20:
            break
    standard_got = _receive(sqs, standard, VisibilityTimeout=1)
    _delete(sqs, standard, standard_got)
    assert sorted(fifo_seen) == sorted(f"{g}{i}" for g in "abcd" for i in range(5))
    assert len(standard_got) == 10
    time.sleep(1.3)
    assert _receive(sqs, fifo, WaitTimeSeconds=1) == [], "a FIFO queue keeps exactly-once delivery"
    assert _counts(sqs, fifo) == (0, 0)
    assert _events(emu.events_path, "sqs_behavior", kind="duplicate", queue=_name(fifo)) == []
    again = _receive(sqs, standard)
    assert sorted(m["Body"] for m in again) == sorted(m["Body"] for m in standard_got), "duplicates 1.0: every delete survives"


def _inversions(order: list[int]) -> int:
    return sum(1 for i in range(len(order)) for j in range(i + 1, len(order)) if order[i] > order[j])


def _drain_in_order(sqs: Any, url: str, n: int) -> list[int]:
    """Receive n messages (bodies m0..m{n-1}) in batches of 10, deleting as it goes: their order."""
    order: list[int] = []
    for _ in range(3 * n):
        got = _receive(sqs, url)
        order += [int(m["Body"][1:]) for m in got]
        _delete(sqs, url, got)
        if len(order) >= n:
            break
    return order


@pytest.mark.integration
def test_reorder_breaks_the_send_order_but_delivers_each_message_once(emu: Emulator, behave: Any, sqs: Any) -> None:
    n = 200
    exact_url, _ = _queue(sqs)
    _send(sqs, exact_url, [f"m{i}" for i in range(n)])
    assert _drain_in_order(sqs, exact_url, n) == list(range(n)), "exact: the send order"

    behave(reorder=True)
    url, _ = _queue(sqs)
    _send(sqs, url, [f"m{i}" for i in range(n)])
    order = _drain_in_order(sqs, url, n)
    assert sorted(order) == list(range(n)), "every message exactly once"
    assert _receive(sqs, url) == []
    inversions = _inversions(order)
    print(f"\n[reorder] {inversions} inversions of {n * (n - 1) // 2} pairs; the furthest a message came early "
          f"{max(body - pos for pos, body in enumerate(order))}, late {max(pos - body for pos, body in enumerate(order))}")
    assert inversions > 0
    assert _events(emu.events_path, "sqs_behavior", kind="reorder", queue=_name(url))
    # A receive draws from the oldest REORDER_WINDOW x 10 ready messages: no message overtakes
    # more older ones than that window holds (one passed over can come late by any number of draws).
    assert all(body - pos < REORDER_WINDOW * 10 for pos, body in enumerate(order))


@pytest.mark.integration
def test_reorder_keeps_a_fifo_queue_in_order(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(reorder=True)
    url, _ = _queue(sqs, fifo=True)
    _send(sqs, url, [f"m{i}" for i in range(50)], group="g")
    assert _drain_in_order(sqs, url, 50) == list(range(50))
    assert _events(emu.events_path, "sqs_behavior", kind="reorder", queue=_name(url)) == []


@pytest.mark.integration
def test_short_poll_sample_sees_the_configured_share_of_the_scanned_messages(emu: Emulator, behave: Any, sqs: Any) -> None:
    p, visible, polls = 0.5, 100, 150
    url, _ = _queue(sqs)
    _send(sqs, url, [f"m{i:03d}" for i in range(visible)])
    behave(short_poll_sample=p)
    seen = scanned = 0
    for _ in range(polls):
        # VisibilityTimeout=0 leaves every message ready, in send order: a poll scans the oldest
        # until 10 are seen, so it scanned up to its newest message (all 100 when it got fewer).
        got = _receive(sqs, url, VisibilityTimeout=0, WaitTimeSeconds=0)
        positions = [int(m["Body"][1:]) for m in got]
        seen += len(got)
        scanned += max(positions) + 1 if len(got) == 10 else visible
    # seen/scanned pools negative-binomial polls: its expectation is p, its spread that of
    # `scanned` Bernoulli draws (the stopping rule does not bias a ratio of sums).
    _check_rate("short_poll_sample (seen / scanned, 100 visible)", seen / scanned, p, scanned)


@pytest.mark.integration
def test_short_poll_sample_makes_empty_receives_but_not_long_polls(emu: Emulator, behave: Any, sqs: Any) -> None:
    p, polls = 0.2, 200
    url, _ = _queue(sqs)
    _send(sqs, url, ["a", "b"])
    behave(short_poll_sample=p)
    sizes = [len(_receive(sqs, url, VisibilityTimeout=0, WaitTimeSeconds=0)) for _ in range(polls)]
    empty = sizes.count(0)
    # Both messages visible all along: a poll is empty when neither is sampled, (1 - p)^2.
    _check_rate("short_poll_sample: empty short polls with 2 visible", empty / polls, (1 - p) ** 2, polls)
    _check_rate("short_poll_sample: messages seen per visible message", sum(sizes) / (2 * polls), p, 2 * polls)
    events = _events(emu.events_path, "sqs_behavior", kind="empty_receive", queue=_name(url))
    assert len(events) == empty and all(e["visible"] == 2 for e in events)
    long_polls = [len(_receive(sqs, url, VisibilityTimeout=0, WaitTimeSeconds=1)) for _ in range(20)]
    assert long_polls == [2] * 20, "a long poll is not sampled"


@pytest.mark.integration
def test_count_lag_reports_an_older_count_within_the_lag_only(emu: Emulator, behave: Any, sqs: Any) -> None:
    n, lag = 50, 2.0
    exact_url, _ = _queue(sqs)
    _send(sqs, exact_url, [f"m{i}" for i in range(n)])
    assert _counts(sqs, exact_url) == (n, 0), "exact: the truth at once"

    behave(count_lag=lag)
    url, _ = _queue(sqs)
    t0 = time.monotonic()
    assert _counts(sqs, url) == (0, 0)  # the first read: the queue's count history starts here, at 0
    t0 = (t0 + time.monotonic()) / 2
    _send(sqs, url, [f"m{i}" for i in range(n)])
    # The history holds the counts GetQueueAttributes read (one point per 0.1 s at most); a read
    # reports the point at a uniform moment within the lag. The point at t0 (0 messages) is
    # reported iff that moment is before t0: probability max(0, 1 - age / lag), age = now - t0.
    readings: list[tuple[float, int]] = []
    for i in range(20):
        time.sleep(max(0.0, t0 + 0.1 * (i + 1) - time.monotonic()))
        before = time.monotonic()
        visible = _counts(sqs, url)[0]
        readings.append(((before + time.monotonic()) / 2 - t0, visible))
    assert {v for _, v in readings} <= {0, n}, "a value the queue had"
    lagged = sum(1 for _, v in readings if v < n)
    chances = [max(0.0, 1 - age / lag) for age, _ in readings]
    expected = sum(chances)
    sigma = math.sqrt(sum(q * (1 - q) for q in chances))
    print(f"\n[rate] count_lag: {lagged} of {len(readings)} reads within the lag lagged, expected {expected:.2f} "
          f"(4-sigma bound ±{4 * sigma:.2f})")
    assert lagged > 0, "sometimes less than the truth within the lag"
    assert abs(lagged - expected) <= 4 * sigma + 0.5
    events = _events(emu.events_path, "sqs_behavior", kind="count_lag", queue=_name(url))
    assert len(events) == lagged and all(0 < e["lag"] <= lag for e in events)
    time.sleep(max(0.0, t0 + lag + 0.3 - time.monotonic()))
    assert [_counts(sqs, url)[0] for _ in range(5)] == [n] * 5, "past the lag: the truth"


@pytest.mark.integration
def test_stale_receipt_ignore_succeeds_and_does_nothing(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(stale_receipt="ignore")
    url, _ = _queue(sqs)
    _send(sqs, url, ["one"])
    h1 = _receive(sqs, url, VisibilityTimeout=0)[0]["ReceiptHandle"]
    second = _receive(sqs, url, VisibilityTimeout=0)[0]
    h2 = second["ReceiptHandle"]
    assert h1 != h2
    sqs.delete_message(QueueUrl=url, ReceiptHandle=h1)  # succeeds...
    assert _counts(sqs, url) == (1, 0), "...but the message is still there"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=h1, VisibilityTimeout=30)
    assert _counts(sqs, url) == (1, 0), "a stale handle's visibility change does nothing"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=h2, VisibilityTimeout=30)
    assert _counts(sqs, url) == (0, 1), "the latest handle acts"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=h2)
    assert _counts(sqs, url) == (0, 0)
    stale = _events(emu.events_path, "sqs_behavior", kind="stale_receipt", queue=_name(url))
    assert [(e["api"], e["acted"]) for e in stale] == [("DeleteMessage", False), ("ChangeMessageVisibility", False)]
    assert {e["message_id"] for e in stale} == {second["MessageId"]}


@pytest.mark.integration
def test_stale_receipt_delete_acts(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(stale_receipt="delete")
    url, _ = _queue(sqs)
    _send(sqs, url, ["one", "two"])
    first = _receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=0)[0]
    assert _receive(sqs, url, MaxNumberOfMessages=1, VisibilityTimeout=0)[0]["MessageId"] == first["MessageId"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=30)
    assert _counts(sqs, url) == (1, 1), "a stale handle's visibility change acts"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert _counts(sqs, url) == (1, 0), "a stale handle deletes"
    assert [m["Body"] for m in _receive(sqs, url)] == ["two"]
    stale = _events(emu.events_path, "sqs_behavior", kind="stale_receipt", queue=_name(url))
    assert [(e["api"], e["acted"]) for e in stale] == [("ChangeMessageVisibility", True), ("DeleteMessage", True)]


def _expired(sqs: Any, url: str, count: int) -> list[str]:
    """Receipt handles of `count` messages received with a 1 s visibility timeout that has run out."""
    _send(sqs, url, [f"m{i}" for i in range(count)])
    handles = [m["ReceiptHandle"] for m in _receive(sqs, url, VisibilityTimeout=1)]
    assert len(handles) == count
    time.sleep(1.2)
    return handles


@pytest.mark.integration
def test_not_inflight_error_vs_accept(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(not_inflight="error")
    url, _ = _queue(sqs)
    one, two, three = _expired(sqs, url, 3)
    assert _counts(sqs, url) == (3, 0)
    with pytest.raises(ClientError) as caught:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=one, VisibilityTimeout=10)
    error = caught.value.response["Error"]
    # botocore takes Code from the x-amzn-query-error header: SQS's query code for this error is
    # AWS.SimpleQueueService.MessageNotInflight; QueryErrorCode (the __type) and the exception class
    # carry the modelled name.
    assert isinstance(caught.value, sqs.exceptions.MessageNotInflight)
    assert error["QueryErrorCode"] == "MessageNotInflight" and error["Code"].endswith("MessageNotInflight")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    batch = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[{"Id": "two", "ReceiptHandle": two, "VisibilityTimeout": 10}])
    assert batch.get("Successful", []) == []
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]] == [("two", "MessageNotInflight", True)]
    assert _counts(sqs, url) == (3, 0), "refused: nothing changed"

    behave(not_inflight="accept")
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=three, VisibilityTimeout=10)
    assert _counts(sqs, url) == (2, 1), "accepted: in flight again"
    events = _events(emu.events_path, "sqs_behavior", kind="not_inflight", queue=_name(url))
    assert [(e["api"], e["refused"]) for e in events] == [("ChangeMessageVisibility", True)] * 2 + [("ChangeMessageVisibility", False)]


@pytest.mark.integration
def test_not_inflight_error_when_nothing_else_touched_the_queue(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(not_inflight="error")
    url, _ = _queue(sqs)
    (handle,) = _expired(sqs, url, 1)
    with pytest.raises(sqs.exceptions.MessageNotInflight):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=10)


@pytest.mark.integration
def test_receive_loss_keeps_messages_in_flight_and_brings_them_back(emu: Emulator, behave: Any, sqs: Any) -> None:
    p, n = 0.3, 300
    url, _ = _queue(sqs)
    ids = set(_send(sqs, url, [f"m{i}" for i in range(n)]))
    behave(receive_loss=p)
    received: set[str] = set()
    first = time.monotonic()
    for _ in range(n // 10):  # each receive takes the 10 oldest, lost or not
        got = _receive(sqs, url, VisibilityTimeout=2)
        received.update(m["MessageId"] for m in got)
        _delete(sqs, url, got)
    behave(receive_loss=0.0)
    lost = ids - received
    assert _counts(sqs, url) == (0, len(lost)), "a lost message is in flight"
    events = _events(emu.events_path, "sqs_behavior", kind="receive_loss", queue=_name(url))
    assert {e["message_id"] for e in events} == lost and len(events) == len(lost)
    assert all(e["receive_count"] == 1 for e in events)
    _check_rate("receive_loss (lost / received)", len(lost) / n, p, n)
    time.sleep(max(0.0, first + 2.1 - time.monotonic()))
    back: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(back) < len(lost) and time.monotonic() < deadline:
        got = _receive(sqs, url, WaitTimeSeconds=1)
        back += got
        _delete(sqs, url, got)
    assert {m["MessageId"] for m in back} == lost, "they come back after the visibility timeout"
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"2"}


@pytest.mark.integration
def test_inflight_limit_fails_a_short_poll_and_empties_a_long_poll(emu: Emulator, behave: Any, sqs: Any) -> None:
    behave(inflight_limit=5)
    url, _ = _queue(sqs)
    _send(sqs, url, [f"m{i}" for i in range(8)])
    held = _receive(sqs, url, MaxNumberOfMessages=5, VisibilityTimeout=30)
    assert len(held) == 5
    with pytest.raises(sqs.exceptions.OverLimit) as caught:
        _receive(sqs, url)
    assert _error(caught.value) == (403, "OverLimit")
    started = time.monotonic()
    assert _receive(sqs, url, WaitTimeSeconds=1) == [], "a long poll answers empty"
    assert time.monotonic() - started >= 0.9
    assert len(_events(emu.events_path, "sqs_behavior", kind="over_limit", queue=_name(url))) >= 2
    _delete(sqs, url, held[:1])
    assert len(_receive(sqs, url)) == 3, "under the limit again"


@pytest.mark.integration
def test_the_aws_profile_and_the_control_endpoint(emu: Emulator, behave: Any) -> None:
    assert Behavior.resolve("aws").as_dict() == PROFILES["aws"]
    assert Behavior.resolve("exact").as_dict() == PROFILES["exact"] == Behavior().as_dict()
    assert Behavior.resolve("aws", duplicates=0.3).duplicates == 0.3
    with pytest.raises(ValueError, match="duplicates"):
        Behavior.resolve("aws", duplicates=2)
    started = Emulator(lab={"behavior": {"behavior": "aws", "count_lag": 0.5}}).start()
    try:
        assert started.lab_state()["behavior"] == {**PROFILES["aws"], "count_lag": 0.5}
    finally:
        started.stop()
    # The control endpoint: a change merges into the settings in force; a bad value is refused with 400.
    assert behave(duplicates=0.5)["duplicates"] == 0.5
    before = emu.lab_state()["behavior"]
    for bad in ({"duplicates": 2}, {"stale_receipt": "maybe"}, {"inflight_limit": 0}, {"no_such_setting": 1}):
        request = urllib.request.Request(f"{emu.endpoint_url}/_sqslab/behavior", data=json.dumps(bad).encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 400, bad
        assert "error" in json.loads(caught.value.read())
    assert emu.lab_state()["behavior"] == before == {**PROFILES["exact"], "duplicates": 0.5}


# =========================================================================== server-side faults


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator where each error kind fails one API at every call."""
    faults = [{"api": [api], "error": kind, "rate": 1.0, "label": kind} for kind, api in KIND_APIS.items()]
    events = tmp_path_factory.mktemp("faulty") / "events.jsonl"
    with Emulator(lab={"faults": faults, "seed": 3}, events_path=events) as running:
        yield running


KIND_APIS = {"throttling": "ListQueueTags", "internal": "TagQueue", "unavailable": "UntagQueue",
             "access_denied": "ListDeadLetterSourceQueues"}


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(ERROR_KINDS))
def test_each_fault_kind_is_the_error_sqs_gives_and_botocore_retries_it_or_not(faulty: Emulator, kind: str) -> None:
    status, code, retried = ERROR_KINDS[kind]
    api = KIND_APIS[kind]
    raw = _sqs(faulty.endpoint_url, attempts=1)
    url, arn = _queue(raw)
    with pytest.raises(ClientError) as caught:
        _call(raw, api, url, arn)
    response = caught.value.response
    assert _error(caught.value) == (status, code)
    assert response["Error"]["Message"] == sqsfaults.ERRORS[kind][4]
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    if kind == "throttling":
        assert isinstance(caught.value, raw.exceptions.RequestThrottled)
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-query-error"] == "RequestThrottled;Sender"
    before = len(_events(faulty.events_path, "sqs_fault", api=api, kind=kind))
    attempts = 2 if kind == "throttling" else 3  # throttling backs off from 1 s, the others from 50 ms
    retrying = _sqs(faulty.endpoint_url, attempts=attempts)
    with pytest.raises(ClientError) as caught:
        _call(retrying, api, url, arn)
    assert _error(caught.value) == (status, code)
    made = attempts if retried else 1
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == made - 1
    events = _events(faulty.events_path, "sqs_fault", api=api, kind=kind)
    assert len(events) - before == made
    assert all(e["rule"] == kind and e["latency"] == 0.0 for e in events)


@pytest.mark.integration
def test_a_throttled_call_is_retried_until_it_succeeds(lab_emulator: Any) -> None:
    rule = {"api": ["GetQueueUrl"], "error": "throttling", "rate": 0.5, "label": "half"}
    seed = _seed_with(rule, "GetQueueUrl", [True, False])
    emulator = lab_emulator([rule], seed=seed)
    sqs = _sqs(emulator.endpoint_url, attempts=5)
    url, _ = _queue(sqs)
    answer = sqs.get_queue_url(QueueName=_name(url))
    assert answer["QueueUrl"] == url
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [e["kind"] for e in _events(emulator.events_path, "sqs_fault")] == ["throttling"]


@pytest.mark.integration
def test_a_timeout_carries_the_call_out_and_a_retried_send_sends_twice(lab_emulator: Any) -> None:
    rule = {"api": ["SendMessage"], "error": "timeout", "latency": [0.2, 0.2], "rate": 0.5, "label": "lost-answer"}
    seed = _seed_with(rule, "SendMessage", [True, True, False])
    emulator = lab_emulator([rule], seed=seed)
    raw = _sqs(emulator.endpoint_url, attempts=1)
    url, _ = _queue(raw)
    started = time.monotonic()
    with pytest.raises((ConnectionClosedError, ReadTimeoutError)):
        raw.send_message(QueueUrl=url, MessageBody="once")
    assert time.monotonic() - started >= 0.2
    assert _counts(raw, url) == (1, 0), "the call took effect, only its answer was lost"
    retrying = _sqs(emulator.endpoint_url, attempts=3)
    answer = retrying.send_message(QueueUrl=url, MessageBody="twice")
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    bodies = Counter(m["Body"] for m in _receive(raw, url))
    assert bodies == Counter({"once": 1, "twice": 2}), "at-least-once from the producer's side"
    events = _events(emulator.events_path, "sqs_fault", rule="lost-answer")
    assert [(e["kind"], e["latency"]) for e in events] == [("timeout", 0.2)] * 2


@pytest.mark.integration
def test_a_rule_fires_at_its_rate_with_the_same_draws_for_the_same_seed(lab_emulator: Any) -> None:
    p, calls = 0.3, 300
    rule = {"api": ["GetQueueUrl"], "error": "internal", "rate": p, "label": "r30"}

    def pattern(seed: int) -> list[bool]:
        emulator = lab_emulator([rule], seed=seed, name=f"seed{seed}-{uuid.uuid4().hex[:4]}")
        sqs = _sqs(emulator.endpoint_url, attempts=1)
        url, _ = _queue(sqs)
        failed = []
        for _ in range(calls):
            try:
                sqs.get_queue_url(QueueName=_name(url))
                failed.append(False)
            except ClientError as exc:
                assert _error(exc) == (500, "InternalFailure")
                failed.append(True)
        assert len(_events(emulator.events_path, "sqs_fault", rule="r30")) == sum(failed)
        emulator.stop()
        return failed

    first = pattern(5)
    _check_rate("fault rule rate (internal on GetQueueUrl)", sum(first) / calls, p, calls)
    assert pattern(5) == first, "the same seed, the same calls: the same faults"
    plan = sqsfaults.FaultPlan([rule], seed=5)
    assert [plan.decide("GetQueueUrl") is not None for _ in range(calls)] == first, "the plan's own draws"
    assert pattern(6) != first


@pytest.mark.integration
def test_rule_windows_and_rules_added_at_runtime(lab_emulator: Any) -> None:
    emulator = lab_emulator()
    sqs = _sqs(emulator.endpoint_url, attempts=1)
    url, _ = _queue(sqs)
    sqs.untag_queue(QueueUrl=url, TagKeys=["k"])
    taken = emulator.add_fault({"api": "UntagQueue", "error": "internal"})
    assert taken == {"api": ["UntagQueue"], "error": "internal", "rate": 1.0, "latency": None, "start": None, "end": None,
                     "label": "fault"}
    with pytest.raises(ClientError) as caught:
        sqs.untag_queue(QueueUrl=url, TagKeys=["k"])
    assert _error(caught.value) == (500, "InternalFailure"), "in force at once"
    now = time.time()
    emulator.add_fault({"api": ["GetQueueUrl"], "error": "internal", "start": now + 3600, "label": "future"})
    emulator.add_fault({"api": ["ListQueueTags"], "error": "internal", "end": now - 1, "label": "past"})
    ends = now + 1.0
    emulator.add_fault({"api": ["TagQueue"], "error": "unavailable", "start": now - 10, "end": ends, "label": "now"})
    assert [r["label"] for r in emulator.lab_state()["faults"]] == ["fault", "future", "past", "now"]
    assert sqs.get_queue_url(QueueName=_name(url))["QueueUrl"] == url, "a window not yet open"
    sqs.list_queue_tags(QueueUrl=url)  # a window closed
    with pytest.raises(ClientError) as caught:
        sqs.tag_queue(QueueUrl=url, Tags={"k": "v"})
    assert _error(caught.value) == (503, "ServiceUnavailable"), "a window open now"
    time.sleep(max(0.0, ends + 0.1 - time.time()))
    sqs.tag_queue(QueueUrl=url, Tags={"k": "v"})  # ...and closed since
    with pytest.raises(EmulatorError, match="not one of"):
        emulator.add_fault({"api": "SendMessage", "error": "nope"})
    with pytest.raises(EmulatorError, match="not an SQS API"):
        emulator.add_fault({"api": "SendMessages", "error": "internal"})
    fired = [e["rule"] for e in _events(emulator.events_path, "sqs_fault")]
    assert fired == ["fault", "now"]
    assert len(_events(emulator.events_path, "sqs_fault_rule")) == 4


@pytest.mark.integration
def test_a_latency_rule_slows_calls_down_without_failing_them(lab_emulator: Any) -> None:
    emulator = lab_emulator([{"api": ["GetQueueAttributes"], "latency": [0.3, 0.4], "label": "slow"}])
    sqs = _sqs(emulator.endpoint_url, attempts=1)
    url, _ = _queue(sqs)
    for _ in range(3):
        started = time.monotonic()
        assert _counts(sqs, url) == (0, 0)
        assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    sqs.get_queue_url(QueueName=_name(url))
    assert time.monotonic() - started < 0.3, "another API is not slowed"
    events = _events(emulator.events_path, "sqs_fault", rule="slow")
    assert len(events) == 3 and all(e["kind"] == "latency" and 0.3 <= e["latency"] <= 0.4 for e in events)


@pytest.mark.integration
def test_a_rule_on_every_api_hits_every_api_but_an_observer(lab_emulator: Any) -> None:
    emulator = lab_emulator()
    observer = _sqs(emulator.endpoint_url, attempts=1, observer=True)
    url, arn = _queue(observer)
    emulator.add_fault({"api": "*", "error": "unavailable", "label": "all"})
    raw = _sqs(emulator.endpoint_url, attempts=1)
    for api in sqsfaults.SQS_APIS:
        if api in REDRIVE_APIS:
            continue  # see test_a_fault_rule_hits_the_redrive_apis_too
        with pytest.raises(ClientError) as caught:
            _call(raw, api, url, arn)
        assert _error(caught.value) == (503, "ServiceUnavailable"), api
    hit = [e["api"] for e in _events(emulator.events_path, "sqs_fault", rule="all")]
    assert hit == [a for a in sqsfaults.SQS_APIS if a not in REDRIVE_APIS]
    # The observer header exempts a call from every fault.
    observer.send_message(QueueUrl=url, MessageBody="seen")
    assert [m["Body"] for m in _receive(observer, url)] == ["seen"]
    assert _counts(observer, url) == (0, 1)
    assert url in observer.list_queues()["QueueUrls"]
    assert len(_events(emulator.events_path, "sqs_fault", rule="all")) == len(hit)


@pytest.mark.integration
def test_an_api_not_in_a_rule_is_never_hit(lab_emulator: Any) -> None:
    emulator = lab_emulator([{"api": ["SendMessage", "DeleteMessage"], "error": "throttling", "label": "two"}])
    sqs = _sqs(emulator.endpoint_url, attempts=1)
    url, _ = _queue(sqs)
    _send(sqs, url, [f"m{i}" for i in range(20)])
    for _ in range(10):
        got = _receive(sqs, url, VisibilityTimeout=0)
        assert got
        _delete(sqs, url, got[:1])  # DeleteMessageBatch is not DeleteMessage
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        sqs.list_queues()
    with pytest.raises(sqs.exceptions.RequestThrottled):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert {e["api"] for e in _events(emulator.events_path, "sqs_fault")} == {"SendMessage"}


def _query(endpoint: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(endpoint + "/", data=b"Action=ListQueues&Version=2012-11-05", method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Authorization": QUERY_AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.integration
def test_a_fault_in_the_query_protocol_is_an_xml_error_response(lab_emulator: Any) -> None:
    emulator = lab_emulator()
    emulator.add_fault({"api": ["ListQueues"], "error": "throttling", "label": "query"})
    status, body = _query(emulator.endpoint_url)
    assert status == 403
    assert body.startswith('<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">')
    assert "<Type>Sender</Type><Code>RequestThrottled</Code><Message>Rate exceeded</Message>" in body
    status, body = _query(emulator.endpoint_url, OBSERVER)
    assert status == 200 and "ListQueuesResponse" in body, "an observer is exempt in the query protocol too"
    assert [e["api"] for e in _events(emulator.events_path, "sqs_fault", rule="query")] == ["ListQueues"]


@pytest.mark.integration
def test_an_emulator_with_a_fault_on_every_api_from_the_start_starts() -> None:
    with Emulator(lab={"faults": [{"api": "*", "error": "internal", "rate": 1.0}], "seed": 1}) as emulator:
        with pytest.raises(ClientError) as caught:
            _sqs(emulator.endpoint_url, attempts=1).list_queues()
        assert _error(caught.value) == (500, "InternalFailure")


@pytest.mark.integration
def test_a_fault_rule_hits_the_redrive_apis_too(lab_emulator: Any) -> None:
    emulator = lab_emulator([{"api": list(REDRIVE_APIS), "error": "internal", "label": "redrive"}])
    sqs = _sqs(emulator.endpoint_url, attempts=1)
    url, arn = _queue(sqs)
    for api in REDRIVE_APIS:
        with pytest.raises(ClientError) as caught:
            _call(sqs, api, url, arn)
        assert _error(caught.value) == (500, "InternalFailure"), api


# =========================================================================== client-side faults


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(ERROR_KINDS))
def test_a_client_side_fault_is_the_error_the_emulator_gives(emu: Emulator, kind: str) -> None:
    status, code, _ = ERROR_KINDS[kind]
    events: list[tuple[str, dict[str, Any]]] = []
    sqs = _sqs(emu.endpoint_url, attempts=1)
    url, _ = _queue(sqs)
    sqsfaults.install(sqs, sqsfaults.FaultPlan([{"api": ["GetQueueUrl"], "error": kind, "label": "c"}], seed=1),
                      lambda event, **fields: events.append((event, fields)))
    with pytest.raises(ClientError) as caught:
        sqs.get_queue_url(QueueName=_name(url))
    assert _error(caught.value) == (status, code)
    assert caught.value.response["Error"]["Message"] == sqsfaults.ERRORS[kind][4]
    if kind == "throttling":
        assert isinstance(caught.value, sqs.exceptions.RequestThrottled)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"], "another API is untouched"
    assert events == [("sqs_fault", {"side": "client", "api": "GetQueueUrl", "kind": kind, "latency": 0.0, "rule": "c"})]


@pytest.mark.integration
def test_a_client_side_timeout_is_a_read_timeout_and_the_call_is_not_carried_out(emu: Emulator) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    slept: list[float] = []
    sqs = _sqs(emu.endpoint_url, attempts=3)
    url, _ = _queue(sqs)
    sqsfaults.observe(sqs, lambda event, **fields: events.append((event, fields)))
    sqsfaults.install(sqs, sqsfaults.FaultPlan([{"api": ["SendMessage"], "error": "timeout", "latency": 0.05, "label": "t"}], seed=1),
                      lambda event, **fields: events.append((event, fields)), sleep=slept.append)
    with pytest.raises(ReadTimeoutError):
        sqs.send_message(QueueUrl=url, MessageBody="never")
    assert _counts(sqs, url) == (0, 0), "the client cannot do half a request"
    assert slept == [0.05] * 3
    assert [(e, f.get("side"), f.get("kind"), f.get("attempt"), f.get("error")) for e, f in events] == [
        ("sqs_fault", "client", "timeout", None, None),
        ("retried", None, None, 2, "ReadTimeoutError"),
        ("sqs_fault", "client", "timeout", None, None),
        ("retried", None, None, 3, "ReadTimeoutError"),
        ("sqs_fault", "client", "timeout", None, None),
        ("api_error", None, None, None, "ReadTimeoutError"),
    ]
    assert events[-1][1] == {"api": "SendMessage", "error": "ReadTimeoutError", "attempts": 3}


@pytest.mark.integration
def test_observe_tells_of_retries_and_of_a_call_that_gave_up(emu: Emulator) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    sqs = _sqs(emu.endpoint_url, attempts=2)
    url, _ = _queue(sqs)
    sqsfaults.observe(sqs, lambda event, **fields: events.append((event, fields)))
    sqsfaults.install(sqs, sqsfaults.FaultPlan([{"api": ["GetQueueUrl"], "error": "throttling", "label": "c"}], seed=1),
                      lambda event, **fields: None)
    with pytest.raises(sqs.exceptions.RequestThrottled) as caught:
        sqs.get_queue_url(QueueName=_name(url))
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert events == [("retried", {"api": "GetQueueUrl", "attempt": 2, "error": "RequestThrottled"}),
                      ("api_error", {"api": "GetQueueUrl", "error": "RequestThrottled", "attempts": 2})]
    events.clear()
    sqs.list_queues()
    assert events == [], "a call that succeeded at once tells of nothing"


@pytest.mark.integration
def test_observe_tells_of_retries_with_a_botocore_before_request_context(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.awsrequest import AWSPreparedRequest

    original = AWSPreparedRequest.__init__

    def as_before_botocore_1_44(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.__dict__.pop("context", None)  # what botocore 1.43 and older build: no context on the prepared request

    monkeypatch.setattr(AWSPreparedRequest, "__init__", as_before_botocore_1_44)
    events: list[tuple[str, dict[str, Any]]] = []
    sqs = _sqs(emu.endpoint_url, attempts=2)
    url, _ = _queue(sqs)
    sqsfaults.observe(sqs, lambda event, **fields: events.append((event, fields)))
    sqsfaults.install(sqs, sqsfaults.FaultPlan([{"api": ["GetQueueUrl"], "error": "throttling"}], seed=1), lambda event, **fields: None)
    with pytest.raises(sqs.exceptions.RequestThrottled) as caught:
        sqs.get_queue_url(QueueName=_name(url))
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 1, "botocore did retry"
    assert ("retried", {"api": "GetQueueUrl", "attempt": 2, "error": "RequestThrottled"}) in events


# =========================================================================== redrive


def _dead_lettered(sqs: Any, n: int, fifo: bool = False) -> tuple[str, str, str, str, list[str]]:
    """(queue url, queue arn, DLQ url, DLQ arn, the ids sent): n messages sent to the queue
    and moved to its DLQ (maxReceiveCount 1) by receives that do not delete."""
    dlq_url, dlq_arn = _queue(sqs, fifo=fifo, prefix="dlq")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    url, arn = _queue(sqs, fifo=fifo, RedrivePolicy=policy)
    ids = _send(sqs, url, [f"b{i:03d}" for i in range(n)], group="g" if fifo else None)
    for _ in range(n // 10 + 5):  # the receive after the first moves a message
        _receive(sqs, url, VisibilityTimeout=0)
        if _counts(sqs, dlq_url)[0] == n:
            break
    assert _counts(sqs, dlq_url) == (n, 0) and _counts(sqs, url) == (0, 0)
    return url, arn, dlq_url, dlq_arn, ids


def _task_end(sqs: Any, source_arn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"][0]
        if task["Status"] not in ("RUNNING", "CANCELLING"):
            return dict(task)
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


@pytest.mark.integration
def test_redrive_moves_the_dlq_back_as_new_messages(emu: Emulator, sqs: Any) -> None:
    url, _, dlq_url, dlq_arn, ids = _dead_lettered(sqs, 20)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    first = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert len(first) == 1 and first[0]["Status"] in ("RUNNING", "COMPLETED")
    task = _task_end(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == task["ApproximateNumberOfMessagesToMove"] == 20
    assert task["SourceArn"] == dlq_arn and "TaskHandle" not in task and "DestinationArn" not in task
    assert _counts(sqs, dlq_url) == (0, 0)
    back: list[dict[str, Any]] = []
    for _ in range(5):
        back += _receive(sqs, url, VisibilityTimeout=30)
    assert sorted(m["Body"] for m in back) == [f"b{i:03d}" for i in range(20)]
    assert not {m["MessageId"] for m in back} & set(ids), "redriven messages are new messages"
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in back} == {"1"}
    moves = _events(emu.events_path, "sqs_move_task", source=_name(dlq_url))
    assert [(e["status"], e.get("to_move"), e.get("moved")) for e in moves] == [("RUNNING", 20, None), ("COMPLETED", None, 20)]


@pytest.mark.integration
def test_redrive_refuses_what_sqs_refuses(emu: Emulator, sqs: Any) -> None:
    _, arn, dlq_url, dlq_arn, _ = _dead_lettered(sqs, 1)
    with pytest.raises(ClientError) as caught:
        sqs.start_message_move_task(SourceArn=arn)
    assert _error(caught.value) == (400, "InvalidParameterValue")
    assert caught.value.response["Error"]["Message"] == "Source queue must be configured as a Dead Letter Queue."
    with pytest.raises(sqs.exceptions.ResourceNotFoundException) as caught:
        sqs.start_message_move_task(SourceArn=dlq_arn + "-missing")
    assert _error(caught.value) == (404, "ResourceNotFoundException")
    with pytest.raises(ClientError) as caught:
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
    assert _error(caught.value) == (400, "InvalidParameterValue")
    with pytest.raises(ClientError) as caught:
        sqs.cancel_message_move_task(TaskHandle="garbage")
    assert _error(caught.value) == (400, "InvalidParameterValue")
    _, _, _, fifo_dlq_arn, _ = _dead_lettered(sqs, 1, fifo=True)
    with pytest.raises(ClientError) as caught:
        sqs.start_message_move_task(SourceArn=fifo_dlq_arn, DestinationArn=arn)
    assert _error(caught.value) == (400, "InvalidParameterValue"), "a FIFO DLQ redrives to a FIFO queue only"
    assert sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == [], "nothing was started"
    assert _counts(sqs, dlq_url) == (1, 0)


@pytest.mark.integration
def test_redrive_one_task_at_a_time_cancel_and_the_listing(emu: Emulator, sqs: Any) -> None:
    url, _, dlq_url, dlq_arn, _ = _dead_lettered(sqs, 30)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    with pytest.raises(ClientError) as caught:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert _error(caught.value) == (400, "InvalidParameterValue"), "one active task per source queue"
    running = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert [(t["Status"], t["TaskHandle"], t["MaxNumberOfMessagesPerSecond"]) for t in running] == [("RUNNING", handle, 1)]
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 0 <= moved < 30
    cancelled = _task_end(sqs, dlq_arn)
    assert cancelled["Status"] == "CANCELLED" and "TaskHandle" not in cancelled
    assert cancelled["ApproximateNumberOfMessagesToMove"] == 30
    left = 30 - cancelled["ApproximateNumberOfMessagesMoved"]
    assert _counts(sqs, dlq_url)[0] == left and _counts(sqs, url)[0] == 30 - left, "what moved stays moved"
    with pytest.raises(ClientError) as caught:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert _error(caught.value) == (400, "InvalidParameterValue"), "cancelled already"
    sqs.start_message_move_task(SourceArn=dlq_arn)  # allowed again
    assert _task_end(sqs, dlq_arn)["Status"] == "COMPLETED"
    listing = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert [t["Status"] for t in listing] == ["COMPLETED", "CANCELLED"], "newest first"
    assert len(sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]) == 1, "MaxResults defaults to 1"
    assert _counts(sqs, dlq_url) == (0, 0) and _counts(sqs, url) == (30, 0)


@pytest.mark.integration
def test_redrive_keeps_to_its_rate(emu: Emulator, sqs: Any) -> None:
    dlq_arn = _dead_lettered(sqs, 30)[3]
    started = time.monotonic()
    sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=10)
    task = _task_end(sqs, dlq_arn)
    took = time.monotonic() - started
    print(f"\n[redrive] 30 messages at MaxNumberOfMessagesPerSecond=10 took {took:.2f} s (expected about 2.9 s)")
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 30
    assert 1.5 < took < 8


@pytest.mark.integration
def test_redrive_to_an_explicit_destination(emu: Emulator, sqs: Any) -> None:
    url, _, dlq_url, dlq_arn, _ = _dead_lettered(sqs, 5)
    other_url, other_arn = _queue(sqs, prefix="other")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn)
    task = _task_end(sqs, dlq_arn)
    assert task["Status"] == "COMPLETED" and task["DestinationArn"] == other_arn
    assert _counts(sqs, other_url) == (5, 0) and _counts(sqs, url) == (0, 0) and _counts(sqs, dlq_url) == (0, 0)


@pytest.mark.integration
def test_redrive_a_fifo_dlq_back_to_its_fifo_queue_in_order(emu: Emulator, sqs: Any) -> None:
    url, _, _, dlq_arn, _ = _dead_lettered(sqs, 5, fifo=True)
    sqs.start_message_move_task(SourceArn=dlq_arn)
    assert _task_end(sqs, dlq_arn)["Status"] == "COMPLETED"
    back = _receive(sqs, url)
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in back] == [(f"b{i:03d}", "g") for i in range(5)]


# =========================================================================== the API list


def test_sqs_apis_are_botocores_sqs_operations() -> None:
    assert list(sqsfaults.SQS_APIS) == list(botocore.session.get_session().get_service_model("sqs").operation_names)


def test_the_behaviour_model_is_the_settings_tables() -> None:
    """Each `sqs` behaviour setting is one row of sqslab/scenario/settings.py: its name, its value per
    profile, its kind, limits and choices. The profiles, Behavior and its checks come from
    the rows; the lab configuration is built in one place (lab_config)."""
    from sqslab.emulator.lab import lab_config
    from sqslab.scenario import settings

    rows = settings.behavior_rows()
    assert [s.key for s in rows] == [s.key for s in settings.under("sqs") if s.key != "sqs.behavior"]
    assert list(PROFILES) == list(settings.BY_KEY["sqs.behavior"].choices) == ["exact", "aws"]
    assert PROFILES is settings.PROFILES
    for profile, values in PROFILES.items():
        assert list(values) == [s.name for s in rows]
        assert values == {s.name: s.resolve(s.profiles[profile]) for s in rows if s.profiles}
        assert Behavior.resolve(profile).as_dict() == values
    assert PROFILES["exact"] == {"duplicates": 0.0, "reorder": False, "short_poll_sample": 1.0, "count_lag": 0.0,
                                 "stale_receipt": "delete", "not_inflight": "accept", "receive_loss": 0.0, "inflight_limit": 120_000}
    assert PROFILES["aws"] == {"duplicates": 0.01, "reorder": True, "short_poll_sample": 0.5, "count_lag": 2.0,
                               "stale_receipt": "ignore", "not_inflight": "error", "receive_loss": 0.001, "inflight_limit": 120_000}
    behavior = Behavior.resolve("aws", count_lag=0.5)
    assert (behavior.count_lag, behavior.stale_receipt) == (0.5, "ignore") and behavior == Behavior.resolve("aws", count_lag=0.5)
    with pytest.raises(AttributeError):
        behavior.duplicates = 0.5  # type: ignore[misc]
    for bad, message in (({"duplicates": 2}, "duplicates must be a number from 0 to 1, not 2"),
                         ({"receive_loss": True}, "receive_loss must be a number from 0 to 1, not True"),
                         ({"reorder": 1}, "reorder must be true or false, not 1"),
                         ({"count_lag": 3601.0}, "count_lag must be 0 to 3600 seconds, not 3601.0"),
                         ({"stale_receipt": "maybe"}, "stale_receipt must be ignore or delete, not 'maybe'"),
                         ({"not_inflight": "x"}, "not_inflight must be error or accept, not 'x'"),
                         ({"inflight_limit": 0}, "inflight_limit must be a whole number of at least 1, not 0"),
                         ({"inflight_limit": 2.5}, "inflight_limit must be a whole number of at least 1, not 2.5"),
                         ({"no_such": 1}, "unknown sqs behaviour setting(s): no_such")):
        with pytest.raises(ValueError) as err:
            Behavior(**bad)
        assert str(err.value) == message
    with pytest.raises(ValueError, match="behavior must be one of exact, aws, not 'fast'"):
        Behavior.resolve("fast")
    assert lab_config("aws", {"duplicates": 0.05}, [], 3) == {"behavior": {"behavior": "aws", "duplicates": 0.05}, "faults": [], "seed": 3}
    with pytest.raises(ValueError, match="duplicates"):
        lab_config("exact", {"duplicates": 2})
    assert settings.behavior_options("aws", ["duplicates=5%", "count_lag=10s"]) == {"duplicates": 0.05, "count_lag": 10.0}
    with pytest.raises(settings.OptionError, match="did you mean 'reorder'"):
        settings.behavior_options("exact", ["reordr=true"])
