"""The ledger's store: every message's facts in SQLite (`RUN_DIR/ledger.sqlite`, or
memory), folded from the run's events in batches, and the final `Audit` of the queues
beside them. The ledger (sqslab.truth.ledger) and the FIFO ordering figures
(sqslab.truth.ordering) are queries over it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqslab.consumer import events as ev
from sqslab.truth import journal
from sqslab.truth.cost import TaskClock
from sqslab.truth.fates import DEAD_LETTERED, DUPLICATE, EXPIRED, LOST, PROCESSED_ONCE, PURGED, STILL_QUEUED
from sqslab.truth.lambda_facts import EVENTS as LAMBDA_EVENTS
from sqslab.truth.lambda_facts import LambdaTally
from sqslab.truth.sqs_facts import EVENTS as SQS_EVENTS
from sqslab.truth.sqs_facts import SqsTally

#: Events folded per transaction.
BATCH = 5000

_SCHEMA = """
CREATE TABLE message (
  id TEXT PRIMARY KEY, seq INTEGER, sent INTEGER NOT NULL DEFAULT 0, sent_at REAL, phase TEXT,
  grp TEXT,                                 -- FIFO message group
  dup_sends INTEGER NOT NULL DEFAULT 0,     -- sent again by the producer (duplicate_sends)
  receives INTEGER NOT NULL DEFAULT 0,      -- delivery events seen from consumers
  max_rc INTEGER NOT NULL DEFAULT 0,        -- the highest ApproximateReceiveCount SQS reported
  last_receive REAL, processed INTEGER NOT NULL DEFAULT 0, first_processed REAL,
  failures INTEGER NOT NULL DEFAULT 0, first_failed REAL, last_failed REAL,
  skipped INTEGER NOT NULL DEFAULT 0, crashed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE copy (id TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (id, message_id)) WITHOUT ROWID;
CREATE TABLE delivery (id TEXT NOT NULL, task TEXT NOT NULL, PRIMARY KEY (id, task)) WITHOUT ROWID;
CREATE TABLE failure (id TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (id, reason)) WITHOUT ROWID;
CREATE TABLE task (task TEXT PRIMARY KEY, received INTEGER NOT NULL DEFAULT 0, processed INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0, duplicate_skipped INTEGER NOT NULL DEFAULT 0, crashed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE dlq (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE queued (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE held (id TEXT PRIMARY KEY, state TEXT NOT NULL, until REAL) WITHOUT ROWID;  -- in flight or delayed at the audit
CREATE TABLE gone (id TEXT PRIMARY KEY, how TEXT NOT NULL, by TEXT) WITHOUT ROWID;  -- expired or purged, by the SQS journal
CREATE TABLE totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE sqs_dup (message_id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;  -- copies SQS kept after a delete
"""

# Each consumer event kind: the message columns it adds to, and the task column it counts.
_CONSUMER = {
    **dict.fromkeys(sorted(ev.RECEIVES), ("receives", "received")),
    ev.PROCESSED: ("processed", "processed"),
    ev.FAILED: ("failures", "failed"),
    ev.DUPLICATE_SKIPPED: ("skipped", "duplicate_skipped"),
    ev.CRASHED: ("crashed", "crashed"),
}


@dataclass
class Audit:
    """What the queues held when the run ended."""

    at: float  # epoch seconds of the audit
    dlq_ids: set[str] = field(default_factory=set)
    queued_ids: set[str] = field(default_factory=set)
    visibility_timeout: float = 30.0
    delay: float = 0.0
    dlq_messages: int = 0
    queue_visible: int = 0
    queue_in_flight: int = 0
    t0: float | None = None  # epoch seconds of t0, for times in the ordering figures
    exact: bool = False  # read from the emulator's exact state: every message either queue holds, in any state
    held: dict[str, tuple[str, float | None]] = field(default_factory=dict)  # id -> (inflight|delayed, until epoch s)
    notes: list[str] = field(default_factory=list)  # what the audit could not read
    dlq_extra_copies: int = 0  # DLQ messages beyond the first with the same id (a duplicate send, say)


class LedgerStore:
    """Per-message facts in SQLite, folded from events in batches."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None and path.exists():
            path.unlink()  # a ledger is rebuilt whole from the events
        self.db = sqlite3.connect(str(path) if path is not None else ":memory:", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = OFF")  # derived data: events.jsonl is the record
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -4000")  # 4 MB of pages at most: memory flat whatever the run's size
        self.db.executescript(_SCHEMA + journal.SCHEMA)
        self._pending: dict[str, list[tuple[Any, ...]]] = {}
        self._send_failed = 0
        self.malformed = 0  # consumer event lines without the fields their kind must have
        self.sqs = SqsTally()
        self.lambdas = LambdaTally()
        self.tasks = TaskClock()  # each consumer task's life, for what it costs

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        """Fold events in (any order: each fact is a sum, a minimum or a maximum)."""
        for count, event in enumerate(events, 1):
            self._take(event)
            if count % BATCH == 0:
                self._flush()
        self._flush()

    def _take(self, event: dict[str, Any]) -> None:
        kind, mid = event.get("event"), event.get("id")
        if kind in ("task_started", "task_exited"):
            self.tasks.take(event)
        elif kind == ev.STARTED:
            self.lambdas.take(event)  # a mapping on AWS says which figures it cannot tell
        receive = journal.receive_rows(event)
        if receive is not None:
            self._row(*receive)
        if kind == "sent" and isinstance(mid, str):
            if event.get("duplicate_send"):
                self._row("dup_sends", (mid,))
            else:
                self._row("sent", (mid, event.get("seq"), event.get("sent_at"), event.get("phase"), event.get("group")))
        elif kind == "send_failed":
            self._send_failed += int(event.get("count") or 1)
        elif kind in LAMBDA_EVENTS:
            self.lambdas.take(event)
        elif kind in SQS_EVENTS:
            self.sqs.take(event)
            if kind == "sqs_behavior" and event.get("kind") == "duplicate" and isinstance(event.get("message_id"), str):
                self._row("sqs_dup", (event["message_id"],))
        elif kind == "task_exited" and event.get("source") == "target" and event.get("reason") == "crashed" \
                and event.get("told") is False:
            self._row("task:crashed", (str(event.get("task") or "?"),))  # a crash the task did not tell of
        elif event.get("source") == "consumer" and kind in _CONSUMER:
            if kind in journal.RECEIVE_EVENTS and not isinstance(mid, str) and not isinstance(event.get("message_id"), str):
                self.malformed += 1  # docs/contracts.md: these events name the message (id, message_id)
                return
            task = str(event.get("task") or "?")
            self._row("task:" + _CONSUMER[kind][1], (task,))
            if kind == ev.ABANDONED:
                self.lambdas.abandoned += 1  # a Lambda mapping's: received, never invoked
            if not isinstance(mid, str):
                return
            ts = event.get("ts")
            if kind == ev.PROCESSED:
                self._row("processed", (mid, ts))
            elif _CONSUMER[kind][0] == "receives":
                self._row("receive", (mid, _int(event.get("receive_count")), ts))
                self._row("delivery", (mid, task))
                if isinstance(event.get("message_id"), str):
                    self._row("copy", (mid, event["message_id"]))
            elif kind == ev.FAILED:
                self._row("failed", (mid, ts, ts))
                self._row("failure", (mid, str(event.get("reason") or "")))
            else:
                self._row(_CONSUMER[kind][0], (mid,))

    def _row(self, statement: str, values: tuple[Any, ...]) -> None:
        self._pending.setdefault(statement, []).append(values)

    def _flush(self) -> None:
        if not self._pending:
            return
        self.db.execute("BEGIN")
        for statement, rows in self._pending.items():
            self.db.executemany(_statement(statement), rows)
        self.db.execute("COMMIT")
        self._pending.clear()

    def set_audit(self, audit: Audit) -> None:
        """What the queues held at the end."""
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR IGNORE INTO dlq VALUES (?)", ((i,) for i in audit.dlq_ids))
        self.db.executemany("INSERT OR IGNORE INTO queued VALUES (?)", ((i,) for i in audit.queued_ids))
        self.db.executemany("INSERT OR IGNORE INTO held VALUES (?, ?, ?)", ((i, s, u) for i, (s, u) in audit.held.items()))
        self.db.execute("INSERT OR IGNORE INTO gone SELECT s.sid, g.how, g.by FROM jgone g JOIN jsend s ON s.mid = g.mid "
                        "WHERE g.how IN ('expired', 'purged') AND s.sid IS NOT NULL")
        # Read from the exact state, the queue's ids are all it holds, in flight or not; read
        # through SQS, a message in flight cannot be seen, so its last receive or its send
        # within the visibility timeout or the delay stands for it.
        guess = "" if audit.exact else f"""
                OR (m.last_receive IS NOT NULL AND m.last_receive + {float(audit.visibility_timeout)!r} > {float(audit.at)!r})
                OR (m.sent_at IS NOT NULL AND m.sent_at + {float(audit.delay)!r} > {float(audit.at)!r})"""
        self.db.execute("INSERT OR REPLACE INTO totals VALUES ('send_failed', ?)", (self._send_failed,))
        self.db.execute(f"""CREATE VIEW fates AS SELECT m.*, CASE
              WHEN m.processed > 1 THEN '{DUPLICATE}'
              WHEN m.processed = 1 THEN '{PROCESSED_ONCE}'
              WHEN m.id IN (SELECT id FROM dlq) THEN '{DEAD_LETTERED}'
              WHEN m.id IN (SELECT id FROM queued){guess} THEN '{STILL_QUEUED}'
              WHEN m.id IN (SELECT id FROM gone WHERE how = 'expired') THEN '{EXPIRED}'
              WHEN m.id IN (SELECT id FROM gone WHERE how = 'purged') THEN '{PURGED}'
              ELSE '{LOST}' END AS fate,
            max(m.receives, m.max_rc) AS deliveries
            FROM message m WHERE m.sent = 1""")
        self.db.execute("COMMIT")

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a query over the store."""
        return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the database (the file stays)."""
        self.db.close()


_STATEMENTS = {
    "sent": "INSERT INTO message (id, seq, sent, sent_at, phase, grp) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "seq = excluded.seq, sent = 1, sent_at = excluded.sent_at, phase = excluded.phase, grp = excluded.grp",
    "failed": "INSERT INTO message (id, failures, first_failed, last_failed) VALUES (?, 1, ?, ?) ON CONFLICT (id) DO UPDATE SET "
              "failures = failures + 1, first_failed = min(coalesce(first_failed, excluded.first_failed), excluded.first_failed), "
              "last_failed = max(coalesce(last_failed, excluded.last_failed), excluded.last_failed)",
    "copy": "INSERT OR IGNORE INTO copy VALUES (?, ?)",
    "receive": "INSERT INTO message (id, receives, max_rc, last_receive) VALUES (?, 1, ?, ?) ON CONFLICT (id) DO UPDATE SET "
               "receives = receives + 1, max_rc = max(max_rc, excluded.max_rc), "
               "last_receive = max(coalesce(last_receive, excluded.last_receive), excluded.last_receive)",
    "delivery": "INSERT OR IGNORE INTO delivery VALUES (?, ?)",
    "processed": "INSERT INTO message (id, processed, first_processed) VALUES (?, 1, ?) ON CONFLICT (id) DO UPDATE SET "
                 "processed = processed + 1, first_processed = min(coalesce(first_processed, excluded.first_processed), "
                 "excluded.first_processed)",
    "failure": "INSERT INTO failure (id, reason) VALUES (?, ?) ON CONFLICT (id, reason) DO UPDATE SET n = n + 1",
    "sqs_dup": "INSERT INTO sqs_dup (message_id) VALUES (?) ON CONFLICT (message_id) DO UPDATE SET n = n + 1",
}


def _statement(name: str) -> str:
    if name in _STATEMENTS:
        return _STATEMENTS[name]
    if name in journal.STATEMENTS:
        return journal.STATEMENTS[name]
    if name.startswith("task:"):
        column = name.split(":", 1)[1]
        return f"INSERT INTO task (task, {column}) VALUES (?, 1) ON CONFLICT (task) DO UPDATE SET {column} = {column} + 1"
    return f"INSERT INTO message (id, {name}) VALUES (?, 1) ON CONFLICT (id) DO UPDATE SET {name} = {name} + 1"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
