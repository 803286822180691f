"""The run's record as it happens: events.jsonl, metrics.jsonl, the clock, live counters.

Every event (the runner's, the producer's, the target's, the consumers', the actions')
goes through `emit` or one of the intakes below, gets its time (`ts`, epoch seconds,
and `t`, seconds from t0), and is appended to events.jsonl at once. Nothing is kept in
memory per event: the ledger's feed folds the file into the ledger's store as it grows
(sqslab.truth.feed), and the ledger is judged from it at the end. What the run needs
live (the counters `when` conditions read, the age of the oldest unfinished message) is
kept in fixed-size form: one byte and one float per message, indexed by the producer's
sequence number.
"""

from __future__ import annotations

import threading
import time
from array import array
from pathlib import Path
from typing import Any

from sqslab.rundir import JsonLines
from sqslab.truth.feed import LedgerFeed


class OldestUnfinished:
    """The send time of the oldest message not yet finished (processed, or failed on its
    last receive before the DLQ), by the producer's sequence number: an exact,
    target-independent view of ApproximateAgeOfOldestMessage in 9 bytes per message."""

    def __init__(self) -> None:
        self._sent_at = array("d")  # by seq - 1; 0.0: not sent (yet)
        self._done = bytearray()  # by seq - 1; 1: finished, or never sent
        self._first = 0  # every index below is done

    def _grow(self, seq: int) -> None:
        missing = seq - len(self._done)
        if missing > 0:
            self._sent_at.extend([0.0] * missing)
            self._done.extend(b"\0" * missing)

    def sent(self, seq: int, sent_at: float) -> None:
        """A message was sent."""
        self._grow(seq)
        self._sent_at[seq - 1] = sent_at

    def finished(self, seq: int) -> None:
        """A message is finished (or its send failed: it will never be)."""
        self._grow(seq)
        self._done[seq - 1] = 1

    def oldest(self, scan: int = 1000) -> float | None:
        """The send time of the oldest unfinished message, or None when there is none.
        Messages handed to the senders but not reported sent yet are skipped (at most
        `scan` of them are looked past)."""
        done, sent_at = self._done, self._sent_at
        first = self._first
        while first < len(done) and done[first]:
            first += 1
        self._first = first
        for index in range(first, min(len(done), first + scan)):
            if not done[index] and sent_at[index]:
                return sent_at[index]
        return None


class Recorder:
    """Writes a run's events and samples, and keeps the live counters."""

    def __init__(self, run_dir: Path, max_receive_count: int, dlq_enabled: bool) -> None:
        self.events = JsonLines(run_dir / "events.jsonl")
        self.metrics = JsonLines(run_dir / "metrics.jsonl")
        self.feed = LedgerFeed(run_dir)  # started once the target is up (it knows the journal's key)
        self._final_receive = max_receive_count if dlq_enabled else None
        self._lock = threading.Lock()
        self.t0 = 0.0  # monotonic
        self.t0_wall = 0.0  # epoch
        # processed: distinct messages (it never passes sent); processed_again: the extra times.
        self._counters = {"sent": 0, "processed": 0, "processed_again": 0, "failed": 0}
        self._oldest = OldestUnfinished()
        self._processed = bytearray()  # by seq - 1; 1: processed at least once
        # The highest seq the producer has handed out: a seq a consumer or an id tells beyond
        # it is not the producer's (a program's own, a producer program's id) and indexes nothing.
        self._max_seq = 0
        self._processed_ids: set[str] = set()  # messages processed that have no seq of the producer's

    def start_clock(self) -> None:
        """t0: the start of the load."""
        self.t0, self.t0_wall = time.monotonic(), time.time()

    def since_t0(self) -> float:
        """Seconds from t0 (monotonic)."""
        return time.monotonic() - self.t0

    def _t(self, ts: float) -> float | None:
        return round(ts - self.t0_wall, 4) if self.t0_wall else None

    def emit(self, event: dict[str, Any]) -> None:
        """Record an event (runner, producer, target or action) with its time."""
        now = time.time()
        self.events.write({"ts": now, "t": self._t(now), "source": "runner", **event})

    def on_sent(self, records: list[dict[str, Any]]) -> None:
        """The producer sent these messages (one record each)."""
        now = time.time()
        events = [{"ts": now, "t": self._t(now), "source": "producer", "event": "sent", **r} for r in records]
        with self._lock:
            self._counters["sent"] += sum(1 for r in records if not r.get("duplicate_send"))
            for record in records:
                if isinstance(record.get("seq"), int):
                    self._max_seq = max(self._max_seq, record["seq"])
                    self._oldest.sent(record["seq"], record.get("sent_at") or now)
        self.events.write_many(events)

    def on_send_failed(self, records: list[dict[str, Any]]) -> None:
        """The producer could not send these messages."""
        with self._lock:
            for record in records:
                if isinstance(record.get("seq"), int):
                    self._max_seq = max(self._max_seq, record["seq"])
                    self._oldest.finished(record["seq"])
        self.emit({"source": "producer", "event": "send_failed", "count": len(records), "errors": [r.get("error") for r in records[:5]]})

    def take_consumer_events(self, events: list[dict[str, Any]]) -> None:
        """Record consumer events (from the target) and count what they say."""
        if not events:
            return
        with self._lock:
            for event in events:
                event["t"] = self._t(event.get("ts") or 0) if isinstance(event.get("ts"), (int, float)) else None
                kind = event.get("event")
                if kind == "processed" or kind == "sqs_delete":  # sqs_delete: a program's delete, from the SQS journal
                    self._counters["processed" if self._first_processing(event) else "processed_again"] += 1
                    self._finish(event)
                elif kind == "failed":
                    self._counters["failed"] += 1
                    if self._final_receive is not None and _int(event.get("receive_count")) >= self._final_receive:
                        self._finish(event)  # its next receive moves it to the DLQ
        self.events.write_many(events)

    def _seq(self, event: dict[str, Any]) -> int | None:
        """The event's seq when it is one the producer handed out, else None."""
        seq = event.get("seq")
        return seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq <= self._max_seq else None

    def _first_processing(self, event: dict[str, Any]) -> bool:
        """Whether this is the first processing of its message: by the producer's seq, else by
        its id (a producer program's message); one with neither counts as one."""
        seq = self._seq(event)
        if seq is None:
            ident = event.get("id")
            if not isinstance(ident, str) or ident not in self._processed_ids:
                if isinstance(ident, str):
                    self._processed_ids.add(ident)
                return True
            return False
        missing = seq - len(self._processed)
        if missing > 0:
            self._processed.extend(b"\0" * missing)
        if self._processed[seq - 1]:
            return False
        self._processed[seq - 1] = 1
        return True

    def _finish(self, event: dict[str, Any]) -> None:
        seq = self._seq(event)
        if seq is not None:
            self._oldest.finished(seq)

    def counters(self) -> dict[str, int]:
        """sent, processed (distinct messages), processed_again (the extra times) and failed so far."""
        with self._lock:
            return dict(self._counters)

    def oldest_age(self) -> float:
        """Age in seconds of the oldest message sent and not yet finished (0 when none)."""
        with self._lock:
            oldest = self._oldest.oldest()
        return round(time.time() - oldest, 3) if oldest else 0.0

    def write_error(self) -> OSError | None:
        """The first failed write into events.jsonl or metrics.jsonl (a full disk), if any."""
        return self.events.error or self.metrics.error

    def write_sample(self, sample: dict[str, Any]) -> None:
        """Append one sample to metrics.jsonl."""
        self.metrics.write(sample)

    def close(self) -> None:
        """Close both files (later writes are dropped) and the feed, if no ledger took it."""
        self.feed.abandon()
        self.events.close()
        self.metrics.close()


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
