"""The producer: sends a phase's messages to the queue on the run's clock.

A phase (``sqslab.scenario.timeline.Phase``) says how many messages and when. The producer
schedules by deadlines: message k of a rate phase is due at start + k/rate, of a ramp
where the integral of the linear rate reaches k, of a count phase at start +
k * duration/count. A scheduler thread (the caller's) hands every message that is due
to a small pool of sender threads; each sender takes what is waiting, up to ten
messages, and sends them with one SendMessageBatch. When the senders keep up a batch
holds one message; when they fall behind, batches fill up, so the rate stays on the
clock instead of drifting by the cost of each call. A burst hands everything over at
once and the senders run flat out.

Every message is a payload as docs/contracts.md describes. ``on_sent`` receives one
record per sent message, ``on_failed`` one per message that could not be sent; both
are called from sender threads, one call at a time.
"""

from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqslab.contracts import message_id
from sqslab.run.batches import DONE, MAX_BATCH_ENTRIES, Item, describe, entry, send_with_retry, take_batch
from sqslab.run.batches import MAX_BATCH_BYTES as MAX_BATCH_BYTES  # re-exported: callers import it from here
from sqslab.scenario.bodies import PhaseBodies, body_problem, render_error, sqslab_payload
from sqslab.scenario.timeline import Phase

__all__ = ["PhaseResult", "Producer", "due_offsets", "produce_cli"]

#: Sender threads per phase. A boto3 client is thread-safe; its pool holds 10 connections.
DEFAULT_SENDERS = 4
#: Batches per sender the scheduler may hand over ahead of the senders (the bounded window).
QUEUE_WINDOW_BATCHES = 4


@dataclass
class PhaseResult:
    """What one phase did. Times are epoch seconds; ``rate`` is sent / (ended_at - started_at)."""

    phase: str
    kind: str
    planned: int
    sent: int = 0
    failed: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    interrupted: bool = False
    #: Seconds the latest send completed after its due time (0 for bursts and pauses).
    max_lag: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    #: Messages sent a second time (phase.duplicate_sends), not counted in `sent`.
    duplicate_sends: int = 0
    #: A producer program's phase (sqslab.run.program_phase): its command, exit code, what stopped it.
    producer_program: dict[str, Any] | None = None

    @property
    def elapsed(self) -> float:
        """Seconds from the start of the phase to its end."""
        return max(self.ended_at - self.started_at, 0.0)

    @property
    def rate(self) -> float:
        """Achieved rate in msg/s over the whole phase (0 for an instant phase)."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able data, rate included."""
        return {
            "phase": self.phase,
            "kind": self.kind,
            "planned": self.planned,
            "sent": self.sent,
            "failed": self.failed,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "elapsed": self.elapsed,
            "rate": self.rate,
            "interrupted": self.interrupted,
            "max_lag": self.max_lag,
            "errors": dict(self.errors),
            "duplicate_sends": self.duplicate_sends,
            **({"producer_program": self.producer_program} if self.producer_program else {}),
        }


def due_offsets(phase: Phase) -> Iterator[float]:
    """Yield each message's due time, in seconds from the start of the phase.

    The count is ``phase.planned_messages()``. Bursts yield 0 for every message;
    pauses yield nothing.
    """
    n = phase.planned_messages() or 0
    kind = phase.kind
    if kind == "rate":
        rate = float(phase.rate or 0.0)
        for k in range(n):
            yield k / rate
    elif kind == "count":
        duration = float(phase.duration or 0.0)
        for k in range(n):
            yield k * duration / n
    elif kind == "ramp":
        a = float(phase.rate_from or 0.0)
        b = float(phase.rate_to or 0.0)
        duration = float(phase.duration or 0.0)
        c = (b - a) / duration if duration > 0 else 0.0
        for k in range(n):
            # Solve a*t + c*t^2/2 = k for t; this form stays exact when a = 0 or c < 0.
            root = math.sqrt(max(a * a + 2.0 * c * k, 0.0))
            t = 2.0 * k / (a + root) if a + root > 0 else 0.0
            yield min(t, duration)
    elif kind == "burst":
        for _ in range(n):
            yield 0.0
    elif kind != "pause":
        raise ValueError(f"unknown phase kind {kind!r}")


class _PhaseRun:
    """Book-keeping of one phase, shared by the scheduler and the sender threads."""

    def __init__(self, result: PhaseResult, stop: threading.Event, maxsize: int = 0) -> None:
        self.result = result
        self.stop = stop
        self.lock = threading.Lock()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        #: The first exception a sender met (a callback's, say): the phase ends and raises it.
        self.error: BaseException | None = None

    def halted(self) -> bool:
        return self.error is not None or self.stop.is_set()

    def tally(self, sent: list[dict[str, Any]], failed: list[dict[str, Any]], lag: float = 0.0) -> None:
        """Count sent and failed records (each failure under its error's code) in the result,
        and `lag`, the latest send's lateness, in max_lag (not for a burst)."""
        with self.lock:
            duplicates = sum(1 for rec in sent if rec.get("duplicate_send"))
            self.result.sent += len(sent) - duplicates
            self.result.duplicate_sends += duplicates
            self.result.failed += len(failed)
            for rec in failed:
                code = str(rec["error"]).split(":", 1)[0]
                self.result.errors[code] = self.result.errors.get(code, 0) + 1
            if self.result.kind != "burst":
                self.result.max_lag = max(self.result.max_lag, lag)


class Producer:
    """Sends load phases to one queue.

    ``client`` is a boto3 SQS client (thread-safe; used by several sender threads).
    ``seed`` makes the poison draws and the payloads' ``work`` figures reproducible.
    ``seq`` increases across all phases run by one Producer.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        seed: int | None = None,
        on_sent: Callable[[list[dict[str, Any]]], None] | None = None,
        on_failed: Callable[[list[dict[str, Any]]], None] | None = None,
        senders: int = DEFAULT_SENDERS,
        fifo: bool = False,
        content_based_deduplication: bool = False,
        formats: Mapping[str, Any] | None = None,
        programs: Any = None,
    ) -> None:
        if senders < 1:
            raise ValueError("senders must be at least 1")
        self.client = client
        self.queue_url = queue_url
        self.fifo, self.content_based_deduplication = fifo, content_based_deduplication
        # A FIFO queue orders a group by arrival: parallel senders would interleave one
        # group's batches, so FIFO sends go through one sender, in order.
        senders = 1 if fifo else senders
        self.rng = random.Random(seed)
        self._group_draws = random.Random(f"{seed}-groups")  # its own stream: group choice leaves the rest as it was
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.senders = senders
        self.seq = 0
        # Each phase's compiled body template, or its body format (sqslab.scenario.bodies, .formats).
        self._bodies = PhaseBodies(seed, queue_url, formats)
        self._callback_lock = threading.Lock()
        self._programs = programs  # runs a producer program's phase (sqslab.run.program_phase.ProgramPhases)

    # ----- public

    def run_phase(self, phase: Phase, stop: threading.Event | None = None) -> PhaseResult:
        """Run ``phase`` from now; return when it ends or ``stop`` is set.

        A rate, ramp or count phase ends at start + duration, or later if its last
        sends complete later; a burst ends when its last message is sent; a pause
        sleeps its duration. Messages not yet sent when ``stop`` is set are dropped
        (never sent, never reported).
        """
        stop = stop if stop is not None else threading.Event()
        result = PhaseResult(phase=phase.name, kind=phase.kind, planned=phase.planned_messages() or 0)
        t0 = time.monotonic()
        result.started_at = time.time()
        end = t0 + float(phase.duration or 0.0) if phase.kind != "burst" else t0

        if phase.kind == "producer":
            if self._programs is None:
                raise ValueError(f"phase {phase.name} runs a producer program, which needs the run's journal (sqslab run)")
            return self._programs.run(phase, self._sent, stop)
        if phase.kind == "pause":
            result.interrupted = stop.wait(max(end - time.monotonic(), 0.0))
            result.ended_at = time.time()
            return result

        # No phase builds payloads far ahead of the senders: a burst would build them all,
        # and a rate the senders cannot keep up with would pile them up. Past this window
        # the scheduler waits (the lag shows in max_lag) whatever the scenario asks.
        run = _PhaseRun(result, stop, QUEUE_WINDOW_BATCHES * MAX_BATCH_ENTRIES * self.senders)
        threads = [
            threading.Thread(target=self._sender, args=(run,), name=f"sqslab-sender-{i}", daemon=True)
            for i in range(self.senders)
        ]
        for th in threads:
            th.start()
        try:
            self._schedule(phase, t0, run)
        finally:
            run.queue.put(DONE)
            for th in threads:
                th.join()
        if run.error is not None:
            raise run.error
        if not stop.is_set():
            left = end - time.monotonic()
            if left > 0:
                stop.wait(left)
        result.interrupted = stop.is_set() and (result.sent + result.failed) < result.planned
        result.ended_at = time.time()
        return result

    def _sent(self, records: list[dict[str, Any]]) -> None:
        """A producer program's sends, told as the senders tell theirs."""
        with self._callback_lock:
            if self.on_sent is not None:
                self.on_sent(records)

    # ----- scheduler (caller's thread)

    def _hand_over(self, run: _PhaseRun, item: Item) -> bool:
        """Put an item in the senders' bounded queue; False when the phase is halted."""
        while True:
            try:
                run.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if run.halted():
                    return False

    def _schedule(self, phase: Phase, t0: float, run: _PhaseRun) -> None:
        stop = run.stop
        for index, offset in enumerate(due_offsets(phase)):
            due = t0 + offset
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return
            if run.halted():
                return
            item = self._build(phase, due, index)
            if item.error is not None:
                self._fail_unsent(run, item)
                continue
            copies = [item]
            if phase.duplicate_sends and self._group_draws.random() < phase.duplicate_sends:
                # The same message again (body, id, deduplication id), right after: a producer
                # retrying a send it believed had failed.
                copies.append(Item({**item.record, "duplicate_send": True}, item.body, due, item.group))
            for copy in copies:
                if not self._hand_over(run, copy):
                    return

    def _group(self, phase: Phase, index: int) -> str | None:
        """The message group of the phase's index-th message: round robin over the groups,
        or, with a hot group, that one for its share of messages (seeded) and round robin
        over the others for the rest."""
        if phase.groups is None:
            return None
        if phase.hot is not None and phase.groups > 1:
            if self._group_draws.random() < phase.hot:
                return "g-0"
            return f"g-{1 + index % (phase.groups - 1)}"
        return f"g-{index % phase.groups}"

    def _build(self, phase: Phase, due: float, index: int = 0) -> Item:
        # Draws in a fixed order per message, so a seed gives the same poison/work sequence.
        poison = self.rng.random() < phase.poison_rate
        work = round(self.rng.random(), 6)
        self.seq += 1
        ident = message_id(self.seq)
        sent_at = round(time.time(), 6)
        group = self._group(phase, index)
        error = None
        if phase.body is not None or phase.format is not None:  # the body your consumer expects; our id is in the attribute
            poison = False
            try:
                text = self._bodies.render(phase, ident, self.seq, index, sent_at)
            except Exception as exc:  # noqa: BLE001 - a template that fails for one message fails that message's send, not the run
                text, error = "", f"BodyTemplateError: {render_error(exc)}"
            else:
                # What SQS would refuse (or boto3 could not even encode, a lone surrogate) fails
                # alone, instead of failing the whole batch it would travel in.
                problem = body_problem(text)
                error = f"InvalidBody: {problem}" if problem else None
        else:
            text = sqslab_payload(phase, ident, work, self.seq, sent_at, poison)
        record = {"id": ident, "seq": self.seq, "message_id": None, "sent_at": sent_at, "phase": phase.name, "poison": poison}
        if group is not None:
            record["group"] = group
        return Item(record, text, due, group, error)

    def _fail_unsent(self, run: _PhaseRun, item: Item) -> None:
        """A message whose body could not be made or would be refused: a failed send with its reason."""
        record = {**item.record, "error": item.error}
        run.tally([], [record])
        with self._callback_lock:
            if self.on_failed is not None:
                self.on_failed([record])

    # ----- senders

    def _sender(self, run: _PhaseRun) -> None:
        carry: Item | None = None
        done = False
        while not done:
            taken = take_batch(run.queue, carry)
            if taken is None:
                return
            batch, carry, done = taken
            if run.halted():
                continue  # stopping: what is not sent yet is dropped
            try:
                self._send(batch, run)
            except BaseException as exc:  # noqa: BLE001 - handed to run_phase, which raises it
                with run.lock:
                    run.error = run.error or exc

    def _send(self, batch: list[Item], run: _PhaseRun) -> None:
        entries = [entry(i, item, self.fifo, self.content_based_deduplication) for i, item in enumerate(batch)]
        sent: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        try:
            resp = send_with_retry(self.client, self.queue_url, entries, run.stop)
        except Exception as exc:  # noqa: BLE001 - the whole batch failed; say why per message
            reason = describe(exc)
            failed = [{**item.record, "error": reason} for item in batch]
        else:
            for ok in resp.get("Successful", []):
                item = batch[int(ok["Id"])]
                sent.append({**item.record, "message_id": ok.get("MessageId")})
            for bad in resp.get("Failed", []):
                item = batch[int(bad["Id"])]
                reason = f"{bad.get('Code', 'Failed')}: {bad.get('Message', '')}".strip()
                failed.append({**item.record, "error": reason})
        done_at = time.monotonic()
        run.tally(sent, failed, max((done_at - item.due for item in batch), default=0.0))
        with self._callback_lock:
            if sent and self.on_sent is not None:
                self.on_sent(sent)
            if failed and self.on_failed is not None:
                self.on_failed(failed)


def produce_cli(
    n: int,
    rate: float | None,
    queue_url: str,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
) -> PhaseResult:
    """Send ``n`` messages to ``queue_url``, at ``rate`` msg/s or as a burst when None.

    For ``sqslab produce``: builds its own boto3 client, prints nothing, returns the
    result. Raises ValueError on a bad ``n`` or ``rate``.
    """
    if n < 0:
        raise ValueError(f"the number of messages must be 0 or more, not {n}")
    if rate is not None and not rate > 0:
        raise ValueError(f"the rate must be above 0 msg/s, not {rate}")
    import boto3
    import botocore.config

    session = boto3.session.Session(profile_name=profile, region_name=region)
    client = session.client(
        "sqs",
        endpoint_url=endpoint_url,
        config=botocore.config.Config(max_pool_connections=DEFAULT_SENDERS * 2, retries={"mode": "standard"}),
    )
    if rate is None:
        phase = Phase(name="produce", kind="burst", start=0.0, count=n)
    else:
        phase = Phase(name="produce", kind="count", start=0.0, count=n, duration=n / rate)
    return Producer(client, queue_url).run_phase(phase)
