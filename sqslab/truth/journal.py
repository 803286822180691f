"""The SQS journal read back: every message's fate as SQS saw it, and the lab's self-check.

The embedded emulator writes `RUN_DIR/sqs_journal.jsonl` (sqslab.emulator.journal): each
send, receive, delete, visibility change, DLQ move, redrive, expiry and purge, with its
caller (`by`: `task-N` for a consumer task, `producer`, `observer` for sqslab's own
readings, `sqs:redrive`). Folded into the ledger's SQLite store, it tells, for any consumer
program, whether it cooperates or not:

* fates from SQS's side: a message whose handles were used to delete it by one receive was
  processed once; by two or more receives, possibly processed more than once (a receiver's
  delete came too late, or was stale); never deleted and in the DLQ, dead-lettered; still in
  the queue, still queued; dropped when its retention ran out, expired; dropped by a
  PurgeQueue, purged; gone otherwise, lost. Whoever deleted it: any caller but the lab's own
  (its setup, its readings, its producer, SQS's redrive) is a consumer, whatever key it signs
  with (a program that signs with `testing` is still one);
* per task: receives, deletes, visibility changes.

Where the consumers also tell what they did (the built-in consumer always; a program that
prints sqslab's event lines), both stories are compared receive by receive (a receive is a
message id and its receive count, which the journal knows from the receipt handle):

1. every receive a consumer reported was made by SQS, to that task;
2. every receive SQS made to a task was reported by it, unless the task died (killed,
   crashed) or was being stopped when it was made;
3. every message a consumer reported processed (or skipped as a duplicate) was deleted with
   that receive's handle, unless the delete failed (a `delete_failed` event) or the task
   died before its delete;
4. every delete SQS saw from a task was of a message that task reported processed;
5. every id the producer reported sent reached SQS;
6. each id's fate is the same both ways, unless one of the explained differences above
   concerns it.

A difference not explained is a disagreement: the lab would be lying about some message,
and the run fails with an error naming them (summary.json `ledger.journal.check`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqslab.consumer import events as ev
from sqslab.contracts import PRODUCER_PROGRAM_CALLER, line_mac, unsigned_line
from sqslab.rundir import JsonTail
from sqslab.truth.fates import DEAD_LETTERED, DUPLICATE, EXPIRED, FATES, LOST, PROCESSED_ONCE, PURGED, STILL_QUEUED

#: The journal's file in the run directory (the local target has the emulator write it there).
JOURNAL_FILE = "sqs_journal.jsonl"
#: Disagreements listed one by one (the rest are counted).
DISAGREEMENT_LIST_LIMIT = 20
#: A receive this close before a task was told to stop may be one its poll never read.
STOP_SLACK = 2.0
#: Journal lines folded per transaction.
BATCH = 5000
#: Delete effects that show a receiver tried to delete (so had done with the message).
_ATTEMPTS = "('deleted', 'stale_deleted', 'stale_ignored', 'again', 'copy_kept')"
#: Callers that are the lab itself (sqslab.emulator.middleware.LAB_CALLERS, the producer,
#: SQS's own redrive); every other caller is a consumer, whichever key it signs with.
LAB_CALLERS = ("setup", "observer", "producer", "sqs:redrive")
_CONSUMER = "NOT IN (" + ", ".join(f"'{c}'" for c in LAB_CALLERS) + ")"

SCHEMA = """
CREATE TABLE jsend (mid TEXT PRIMARY KEY, sid TEXT, q TEXT, by TEXT, dropped INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX jsend_sid ON jsend (sid);
CREATE TABLE jrecv (mid TEXT NOT NULL, rc INTEGER NOT NULL, by TEXT, ts REAL, lost INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (mid, rc)) WITHOUT ROWID;
CREATE TABLE jdel (mid TEXT, rc INTEGER, by TEXT, effect TEXT, ts REAL);
CREATE INDEX jdel_mid ON jdel (mid, rc);
CREATE TABLE jvis (by TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE jgone (mid TEXT PRIMARY KEY, how TEXT, by TEXT) WITHOUT ROWID;
CREATE TABLE jdlq (mid TEXT PRIMARY KEY, ts REAL) WITHOUT ROWID;
CREATE TABLE jreq (by TEXT NOT NULL, api TEXT NOT NULL, calls INTEGER, billed INTEGER, empty INTEGER,
  PRIMARY KEY (by, api)) WITHOUT ROWID;
CREATE TABLE jeffect (id TEXT, by TEXT, ts REAL);  -- effects the consumers posted (sqslab.truth.effects)
CREATE TABLE jfault (by TEXT NOT NULL, api TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (by, api)) WITHOUT ROWID;
CREATE TABLE erecv (mid TEXT NOT NULL, rc INTEGER NOT NULL, task TEXT, PRIMARY KEY (mid, rc)) WITHOUT ROWID;
CREATE TABLE edone (mid TEXT NOT NULL, rc INTEGER NOT NULL, task TEXT, kind TEXT, ts REAL, PRIMARY KEY (mid, rc)) WITHOUT ROWID;
CREATE TABLE edelfail (mid TEXT NOT NULL, rc INTEGER NOT NULL, PRIMARY KEY (mid, rc)) WITHOUT ROWID;
CREATE TABLE etask (task TEXT PRIMARY KEY, reason TEXT, stopping REAL, ended REAL) WITHOUT ROWID;
"""

#: Consumer events (kind -> the receive table they go to): a receive, done with it, its delete failed.
RECEIVE_EVENTS = {**dict.fromkeys(sorted(ev.RECEIVES), "erecv"), **dict.fromkeys(sorted(ev.DONE), "edone"),
                  ev.DELETE_FAILED: "edelfail"}

STATEMENTS = {
    "erecv": "INSERT OR IGNORE INTO erecv VALUES (?, ?, ?)",
    "edone": "INSERT OR IGNORE INTO edone VALUES (?, ?, ?, ?, ?)",
    "edelfail": "INSERT OR IGNORE INTO edelfail VALUES (?, ?)",
    "etask_exit": "INSERT INTO etask (task, reason, ended) VALUES (?, ?, ?) ON CONFLICT (task) DO UPDATE SET reason = excluded.reason, "
                  "ended = excluded.ended",
    "etask_stop": "INSERT INTO etask (task, stopping) VALUES (?, ?) ON CONFLICT (task) DO UPDATE SET "
                  "stopping = min(coalesce(stopping, excluded.stopping), excluded.stopping)",
    "send": "INSERT OR IGNORE INTO jsend VALUES (?, ?, ?, ?, ?)",
    "receive": "INSERT OR REPLACE INTO jrecv VALUES (?, ?, ?, ?, ?)",
    "delete": "INSERT INTO jdel VALUES (?, ?, ?, ?, ?)",
    "visibility": "INSERT INTO jvis VALUES (?, 1) ON CONFLICT (by) DO UPDATE SET n = n + 1",
    "gone": "INSERT OR REPLACE INTO jgone VALUES (?, ?, ?)",
    "dead_letter": "INSERT OR IGNORE INTO jdlq VALUES (?, ?)",
    "fault": "INSERT INTO jfault VALUES (?, ?, 1) ON CONFLICT (by, api) DO UPDATE SET n = n + 1",
    "requests": "INSERT OR REPLACE INTO jreq VALUES (?, ?, ?, ?, ?)",
    "effect": "INSERT INTO jeffect VALUES (?, ?, ?)",
}


class JournalTail:
    """The journal's lines, read from its file as the emulator appends them (`read`), or
    to its end (iterating), each authenticated with the run's key (when there is one): a
    line whose MAC does not hold was not written by the emulator (a task can write to the
    run directory) and is left out, and counted in `forged`."""

    #: The longest journal line taken: a line carries ids and counts, never a body (an id
    #: read from a body is at most a message's size).
    MAX_LINE = 4 << 20

    def __init__(self, path: Path, key: bytes | None) -> None:
        self.path, self.key = path, key
        self.forged = 0
        self._tail = JsonTail(path, max_line=self.MAX_LINE)

    @property
    def offset(self) -> int:
        """How many bytes of the journal have been read."""
        return self._tail.offset

    def read(self, final: bool = False) -> list[dict[str, Any]]:
        """The authentic records appended since the last call (a torn last line is left
        out); with final, the writer has ended."""
        records = []
        for raw in self._tail.read_lines(final):
            line = raw.decode("utf-8", errors="replace").strip()
            if self.key is not None:
                signed = unsigned_line(line)
                if signed is None or not hmac.compare_digest(signed[0], line_mac(self.key, signed[1])):
                    self.forged += 1
                    continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line (a killed run)
            if isinstance(record, dict):
                records.append(record)
        return records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            offset = self.offset
            yield from self.read(final=True)
            if self.offset == offset:
                return


def forged_finding(forged: int, path: Path) -> str | None:
    """The finding when lines of the journal were not the emulator's, else None."""
    if not forged:
        return None
    return (f"{forged} line(s) of the SQS journal ({path.name}) were not written by the emulator (their MAC does not hold): "
            "something else wrote to the run directory; they were left out of the fates")


def receive_rows(event: dict[str, Any]) -> tuple[str, tuple[Any, ...]] | None:
    """The row a consumer or target event adds to the self-check's tables, if any."""
    kind = event.get("event")
    if event.get("source") == "target" and isinstance(event.get("task"), str):
        if kind == "task_exited":
            reason = event.get("reason")
            if reason == "stopped" and event.get("exit_code") not in (0, None):
                reason = "stopped_abruptly"  # SIGTERM ended it before it finished (no handler), or SIGKILL after the grace
            return "etask_exit", (event["task"], reason, event.get("ts"))
        if kind == "task_stopping":
            return "etask_stop", (event["task"], event.get("ts"))
        return None
    table = RECEIVE_EVENTS.get(str(kind))
    mid, rc = event.get("message_id"), event.get("receive_count")
    if table is None or event.get("source") != "consumer" or not isinstance(mid, str) or not isinstance(rc, int):
        return None
    if table == "erecv":
        return "erecv", (mid, rc, str(event.get("task") or "?"))
    if table == "edone":
        return "edone", (mid, rc, str(event.get("task") or "?"), kind, event.get("ts"))
    return "edelfail", (mid, rc)


def journal_rows(line: dict[str, Any]) -> Iterable[tuple[str, tuple[Any, ...]]]:
    """The rows one journal line adds."""
    op, mid, by = line.get("op"), line.get("mid"), str(line.get("by") or "?")
    if op == "fault":
        yield "fault", (by, str(line.get("api")))
        return
    if op == "requests":  # cumulative counts (sqslab.emulator.usage): a later line replaces an earlier one
        yield from _request_rows(line.get("counts"))
        return
    if op == "effect":
        ident = line.get("id")
        yield "effect", (ident if isinstance(ident, str) else None, by, line.get("ts"))
        return
    if not isinstance(mid, str):
        return
    if op == "send":
        yield "send", (mid, line.get("id"), line.get("q"), by, 1 if line.get("dropped") else 0)
    elif op == "receive":
        yield "receive", (mid, line.get("rc"), by, line.get("ts"), 1 if line.get("lost") else 0)
    elif op == "delete":
        yield "delete", (mid, line.get("rc"), by, line.get("effect"), line.get("ts"))
        if line.get("effect") in ("deleted", "stale_deleted"):
            yield "gone", (mid, "deleted", by)
    elif op == "visibility" and by != "observer":
        yield "visibility", (by,)
    elif op == "dead_letter":
        yield "dead_letter", (mid, line.get("ts"))
    elif op in ("redrive", "expired", "purged"):
        yield "gone", (mid, op, by)


def _request_rows(counts: Any) -> Iterable[tuple[str, tuple[Any, ...]]]:
    for row in counts if isinstance(counts, list) else []:
        if isinstance(row, dict):
            yield "requests", (str(row.get("by")), str(row.get("api")), _whole(row.get("calls")), _whole(row.get("billed")),
                               _whole(row.get("empty")))


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def consumer_receives(store: Any) -> int:
    """Receives SQS handed to consumers (not the lab's own, not lost on the way)."""
    (count,), = store.query(f"SELECT count(*) FROM jrecv WHERE by {_CONSUMER} AND lost = 0")
    return int(count)


def requests_by_caller(store: Any) -> dict[str, dict[str, int]]:
    """The journal's request counts (its last `requests` line) per caller: calls, billed
    requests, empty receives; {} when the journal has none (an emulator before it counted)."""
    rows = store.query("SELECT by, sum(calls), sum(billed), sum(empty) FROM jreq GROUP BY by ORDER BY by")
    return {by: {"calls": calls, "billed": billed, "empty_receives": empty} for by, calls, billed, empty in rows}


def fold(db: Any, lines: Iterable[dict[str, Any]]) -> int:
    """Fold journal lines into the store's tables; how many lines there were."""
    pending: dict[str, list[tuple[Any, ...]]] = {}
    count = 0
    for count, line in enumerate(lines, 1):
        for statement, row in journal_rows(line):
            pending.setdefault(statement, []).append(row)
        if count % BATCH == 0:
            _flush(db, pending)
    _flush(db, pending)
    return count


def _flush(db: Any, pending: dict[str, list[tuple[Any, ...]]]) -> None:
    if not pending:
        return
    db.execute("BEGIN")
    for statement, rows in pending.items():
        db.executemany(STATEMENTS[statement], rows)
    db.execute("COMMIT")
    pending.clear()


# Per message id: how many of its consumer receives tried to delete it, were made, and where
# it is. Each table is aggregated once in its own key's order and joined by message id (a
# table: a view, or a subquery per id, reads the tables at random, many times slower at 100k).
_PER_MESSAGE = f"""
CREATE TEMP TABLE jmsg AS SELECT s.mid, s.sid,
  coalesce(d.deleting, 0) AS deleting, coalesce(r.receives, 0) AS receives, r.max_rc, r.last_receive, d.first_delete,
  g.mid IS NOT NULL AS gone, g.how AS gone_how, q.mid IS NOT NULL AS in_dlq
FROM jsend s
LEFT JOIN (SELECT mid, count(DISTINCT rc) AS deleting, min(ts) AS first_delete FROM jdel
           WHERE by {_CONSUMER} AND effect IN {_ATTEMPTS} GROUP BY mid) d ON d.mid = s.mid
LEFT JOIN (SELECT mid, sum(lost = 0) AS receives, max(rc) AS max_rc, max(CASE WHEN lost = 0 THEN ts END) AS last_receive
           FROM jrecv WHERE by {_CONSUMER} GROUP BY mid) r ON r.mid = s.mid
LEFT JOIN jgone g ON g.mid = s.mid
LEFT JOIN jdlq q ON q.mid = s.mid
WHERE s.dropped = 0 AND s.sid IS NOT NULL;
CREATE TEMP TABLE jfates AS SELECT sid, CASE
    WHEN sum(deleting) > 1 THEN '{DUPLICATE}'
    WHEN sum(deleting) = 1 THEN '{PROCESSED_ONCE}'
    WHEN max(in_dlq AND NOT gone) THEN '{DEAD_LETTERED}'
    WHEN max(NOT gone) THEN '{STILL_QUEUED}'
    WHEN max(gone_how = 'expired') THEN '{EXPIRED}'
    WHEN max(gone_how = 'purged') THEN '{PURGED}'
    ELSE '{LOST}' END AS fate,
  sum(deleting) AS deleting, sum(receives) AS receives, max(max_rc) AS max_rc, max(last_receive) AS last_receive,
  min(first_delete) AS first_delete
FROM jmsg GROUP BY sid;
CREATE UNIQUE INDEX temp.jfates_sid ON jfates (sid);
"""


def disagreement(section: dict[str, Any], program: bool = False) -> str | None:
    """When the self-check found the two stories differ, what that says, else None. Told by
    the built-in consumer, the difference is a bug of sqslab (the run's error, exit 3); told
    by a consumer program of the user's, it is a finding about that program (exit 1)."""
    check = section.get("check")
    if not check or check["agree"]:
        return None
    listed = "; ".join(check["disagreements"][:3])
    if program:
        return (f"your consumer's events disagree with the SQS journal: {check['disagreement_count']} fact(s) it told differently from "
                f"what SQS saw (summary.json ledger.journal.check; fates follow the journal's side only when it tells nothing): {listed}")
    return (f"the lab disagrees with itself: {check['disagreement_count']} fact(s) the consumers' events and the SQS journal "
            f"tell differently, a bug of sqslab (summary.json ledger.journal.check): {listed}")


def has_consumer_events(store: Any) -> bool:
    """Whether the consumers told of their receives (the built-in consumer, or a program
    that prints sqslab's event lines)."""
    return bool(store.query("SELECT 1 FROM erecv LIMIT 1"))


def prepare(store: Any) -> None:
    """The per-message view over the folded journal, and each id's fate from it (a table,
    made once: a view would be grouped again for every id it is joined with)."""
    store.db.executescript(_PER_MESSAGE)


def facts_from_journal(store: Any) -> None:
    """For a consumer that tells nothing: take each sent id's processing (a receive that
    deleted it), receives, receive counts and first processing (its first delete) from
    the journal, so the ledger's fates and latencies are SQS's view."""
    store.db.execute("BEGIN")
    store.db.execute("""UPDATE message SET processed = f.deleting, receives = f.receives, max_rc = coalesce(f.max_rc, 0),
                        last_receive = f.last_receive, first_processed = f.first_delete FROM jfates f WHERE f.sid = message.id""")
    # Which tasks had each message, and what each task did: the problem list's and per_task's facts.
    store.db.execute(f"""INSERT OR IGNORE INTO delivery SELECT s.sid, r.by FROM jrecv r JOIN jsend s ON s.mid = r.mid
                         WHERE r.by {_CONSUMER} AND r.lost = 0 AND s.sid IS NOT NULL""")
    store.db.execute(f"""INSERT INTO task (task, received, processed) SELECT r.by, count(*),
                         (SELECT count(*) FROM (SELECT DISTINCT d.mid, d.rc FROM jdel d WHERE d.by = r.by AND d.effect IN {_ATTEMPTS}))
                         FROM jrecv r WHERE r.by {_CONSUMER} AND r.lost = 0 GROUP BY r.by
                         ON CONFLICT (task) DO UPDATE SET received = excluded.received, processed = excluded.processed""")
    store.db.execute("COMMIT")


def section(store: Any, compare: bool, lines: int) -> dict[str, Any]:
    """summary.json's `ledger.journal`: the fates as SQS saw them, per-task counts, and
    (when the consumers told their side) the self-check."""
    counts = dict(store.query("SELECT fate, count(*) FROM jfates GROUP BY fate"))
    (redelivered,), = store.query(f"SELECT count(*) FROM jfates WHERE fate = '{PROCESSED_ONCE}' AND receives > 1")
    (stale,), = store.query(f"SELECT count(*) FROM jdel WHERE by {_CONSUMER} AND effect IN ('stale_ignored', 'stale_deleted')")
    result: dict[str, Any] = {
        "lines": lines,
        "counts": {fate: int(counts.get(fate, 0)) for fate in FATES},
        "redelivered_then_deleted_once": redelivered,
        "stale_deletes": stale,
        "per_task": per_task(store),
    }
    # Messages the consumers sent to the queues themselves (dramatiq's retries, a re-queue by hand):
    # those naming no id of the run are in no fate, and are said so.
    (sends, unnamed), = store.query(f"SELECT count(*), count(*) - count(sid) FROM jsend WHERE by {_CONSUMER} "
                                    f"AND by NOT LIKE '{PRODUCER_PROGRAM_CALLER}%'")
    if sends:
        result["consumer_sends"] = {"sent": sends, "naming_no_message": unnamed}
    after = calls_after_end(store)
    if after:
        result["after_end"] = after
    if compare:
        result["check"] = check(store)
    return result


#: How long after a task ended a delete may still be journalled (a request already sent).
END_SLACK = 1.0
#: How long after a task ended a receive may still be journalled: a long poll it began before
#: (at most 20 s) can still be answered, as SQS would answer it, to a connection nobody reads.
RECEIVE_END_SLACK = 21.0


def calls_after_end(store: Any) -> dict[str, dict[str, Any]]:
    """Receives and deletes made under a task's identity after that task ended, by task: a
    process of the task outlived it (a forked worker, a child the task did not stop), as
    ECS's StopTask would never let happen. Empty when there were none."""
    rows = store.query(f"""SELECT t.task, t.reason, t.ended,
        (SELECT count(*) FROM jrecv r WHERE r.by = t.task AND r.ts > t.ended + {RECEIVE_END_SLACK!r}),
        (SELECT count(*) FROM jdel d WHERE d.by = t.task AND d.ts > t.ended + {END_SLACK!r}),
        (SELECT max(ts) FROM (SELECT r.ts FROM jrecv r WHERE r.by = t.task UNION ALL SELECT d.ts FROM jdel d WHERE d.by = t.task))
        FROM etask t WHERE t.ended IS NOT NULL ORDER BY t.task""")
    return {task: {"ended": reason, "ended_at": ended, "receives": receives, "deletes": deletes, "last_call": last}
            for task, reason, ended, receives, deletes, last in rows if receives or deletes}


def after_end_finding(section: dict[str, Any]) -> str | None:
    """The finding when calls were made under the identity of tasks that had ended, else None."""
    after = section.get("after_end")
    if not after:
        return None
    listed = "; ".join(f"{task} ({facts['ended']}): {facts['receives']} receive(s) and {facts['deletes']} delete(s) after it ended, "
                       f"the last {facts['last_call'] - facts['ended_at']:.1f} s after" for task, facts in list(after.items())[:5])
    return (f"calls were made under the identity of {len(after)} task(s) after they ended: a process of the task outlived it "
            f"(summary.json ledger.journal.after_end): {listed}")


def per_task(store: Any) -> dict[str, dict[str, int]]:
    """What SQS served each caller: receives (delivered), deletes, visibility changes, faults."""
    tasks: dict[str, dict[str, int]] = {}
    for by, n in store.query(f"SELECT by, count(*) FROM jrecv WHERE lost = 0 AND by {_CONSUMER} GROUP BY by"):
        tasks.setdefault(by, {})["received"] = n
    for by, n in store.query(f"SELECT by, count(*) FROM jdel WHERE by {_CONSUMER} AND effect IN {_ATTEMPTS} GROUP BY by"):
        tasks.setdefault(by, {})["deleted"] = n
    for by, n in store.query(f"SELECT by, n FROM jvis WHERE by {_CONSUMER}"):
        tasks.setdefault(by, {})["visibility_changes"] = n
    for by, n in store.query(f"SELECT by, sum(n) FROM jfault WHERE by {_CONSUMER} GROUP BY by"):
        tasks.setdefault(by, {})["faults"] = n
    return dict(sorted(tasks.items(), key=lambda item: _task_order(item[0])))


def _task_order(task: str) -> tuple[int, str]:
    number = task.rsplit("-", 1)[-1]
    return (int(number), task) if number.isdigit() else (1 << 30, task)


_DIED = "(SELECT task FROM etask WHERE reason IN ('killed', 'crashed'))"
#: A processing (edone e) whose task died before its delete: killed, crashed, or ended by its
#: stop before it was done (SIGTERM with no handler, SIGKILL after the grace) within
#: STOP_SLACK of it. A task that says "processed" long before its stop and never deletes
#: has no excuse: that is a consumer whose events disagree with SQS.
_CUT_SHORT = (f"(e.task IN {_DIED} OR EXISTS (SELECT 1 FROM etask t WHERE t.task = e.task AND t.reason = 'stopped_abruptly' "
              f"AND t.stopping IS NOT NULL AND e.ts >= t.stopping - {STOP_SLACK}))")

# (name, explained?, query of (sqslab id, what)) -- one row per receive or id.
_CHECKS: list[tuple[str, str | None, str]] = [
    ("receive reported by a consumer that SQS did not make to it", None,
     ("SELECT coalesce(s.sid, e.mid), 'message ' || e.mid || ' receive ' || e.rc || ' by ' || e.task FROM erecv e "
     "LEFT JOIN jsend s ON s.mid = e.mid LEFT JOIN jrecv r ON r.mid = e.mid AND r.rc = e.rc "
     "WHERE r.mid IS NULL OR r.by != e.task OR r.lost = 1")),
    ("receive made by SQS that its task never reported", None,
     (f"SELECT coalesce(s.sid, r.mid), 'message ' || r.mid || ' receive ' || r.rc || ' by ' || r.by FROM jrecv r "
     f"LEFT JOIN jsend s ON s.mid = r.mid LEFT JOIN etask t ON t.task = r.by "
     f"WHERE r.by {_CONSUMER} AND r.lost = 0 AND NOT EXISTS (SELECT 1 FROM erecv e WHERE e.mid = r.mid AND e.rc = r.rc) "
     f"AND r.by NOT IN {_DIED} AND (t.stopping IS NULL OR t.stopping > r.ts + {STOP_SLACK})")),
    ("receives a task took with it when it died or was stopped", "explained",
     (f"SELECT coalesce(s.sid, r.mid), r.by FROM jrecv r LEFT JOIN jsend s ON s.mid = r.mid LEFT JOIN etask t ON t.task = r.by "
     f"WHERE r.by {_CONSUMER} AND r.lost = 0 AND NOT EXISTS (SELECT 1 FROM erecv e WHERE e.mid = r.mid AND e.rc = r.rc) "
     f"AND (r.by IN {_DIED} OR t.stopping <= r.ts + {STOP_SLACK})")),
    ("processed by a consumer, but SQS saw no delete for that receive", None,
     (f"SELECT coalesce(s.sid, e.mid), 'message ' || e.mid || ' receive ' || e.rc || ' by ' || e.task FROM edone e "
     f"LEFT JOIN jsend s ON s.mid = e.mid WHERE NOT EXISTS (SELECT 1 FROM jdel d WHERE d.mid = e.mid AND d.rc = e.rc "
     f"AND d.effect IN {_ATTEMPTS}) AND NOT EXISTS (SELECT 1 FROM edelfail f WHERE f.mid = e.mid AND f.rc = e.rc) "
     f"AND NOT {_CUT_SHORT}")),
    ("deletes that failed or died with their task", "explained",
     (f"SELECT coalesce(s.sid, e.mid), e.task FROM edone e LEFT JOIN jsend s ON s.mid = e.mid "
     f"WHERE NOT EXISTS (SELECT 1 FROM jdel d WHERE d.mid = e.mid AND d.rc = e.rc AND d.effect IN {_ATTEMPTS}) "
     f"AND (EXISTS (SELECT 1 FROM edelfail f WHERE f.mid = e.mid AND f.rc = e.rc) OR {_CUT_SHORT})")),
    ("delete seen by SQS of a receive its task did not report processing", None,
     (f"SELECT coalesce(s.sid, d.mid), 'message ' || d.mid || ' receive ' || d.rc || ' by ' || d.by FROM jdel d "
     f"LEFT JOIN jsend s ON s.mid = d.mid WHERE d.by {_CONSUMER} AND d.effect IN {_ATTEMPTS} "
     f"AND NOT EXISTS (SELECT 1 FROM edone e WHERE e.mid = d.mid AND e.rc = d.rc AND e.task = d.by)")),
    ("id the producer reported sent that never reached SQS", None,
     "SELECT m.id, m.id FROM message m WHERE m.sent = 1 AND NOT EXISTS (SELECT 1 FROM jsend s WHERE s.sid = m.id)"),
    ("ids skipped as duplicates by the consumer (SQS saw a second delete)", "explained",
     (f"SELECT DISTINCT coalesce(s.sid, e.mid), e.task FROM edone e LEFT JOIN jsend s ON s.mid = e.mid "
     f"WHERE e.kind = '{ev.DUPLICATE_SKIPPED}'")),
]


def check(store: Any) -> dict[str, Any]:
    """Compare the consumers' story with SQS's, receive by receive and fate by fate."""
    disagreements: list[str] = []
    total = 0
    explained: dict[str, int] = {}
    store.db.execute("CREATE TEMP TABLE explained_id (id TEXT PRIMARY KEY) WITHOUT ROWID")
    for name, kind, sql in _CHECKS:
        rows = store.query(sql)
        if kind == "explained":
            if rows:
                explained[name] = len(rows)
                store.db.executemany("INSERT OR IGNORE INTO explained_id VALUES (?)", ((row[0],) for row in rows))
            continue
        total += len(rows)
        disagreements += [f"{name}: {what} (id {sid})" for sid, what in rows[:max(0, DISAGREEMENT_LIST_LIMIT - len(disagreements))]]
    fates = store.query(f"SELECT f.id, f.fate, coalesce(j.fate, '{LOST}') FROM fates f LEFT JOIN jfates j ON j.sid = f.id "
                        f"WHERE f.fate != coalesce(j.fate, '{LOST}')")
    differing = 0
    for sid, ours, theirs in fates:
        if store.query("SELECT 1 FROM explained_id WHERE id = ?", sid):
            differing += 1
            continue
        total += 1
        if len(disagreements) < DISAGREEMENT_LIST_LIMIT:
            disagreements.append(f"fate: id {sid} is {ours} by the consumers' events but {theirs} by the SQS journal")
    if differing:
        explained["fates that differ for one of these reasons"] = differing
    if total > len(disagreements):
        disagreements.append(f"... {total - len(disagreements)} more")
    return {"agree": total == 0, "disagreements": disagreements, "disagreement_count": total, "explained": explained}


def findings(section: dict[str, Any], own: bool, journal_path: Path) -> tuple[list[tuple[str, str]], str | None]:
    """What the journal section says beyond the fates: (about, finding) pairs, each a reason
    the run fails (forged lines, your consumer's events disagreeing with SQS, calls after a
    task ended), and the lab's own error (sqslab's consumer disagreeing: a bug, exit 3)."""
    found = []
    forged = forged_finding(int(section.get("forged_lines") or 0), journal_path)
    if forged:
        found.append(("run directory", forged))
    told = disagreement(section, program=not own)
    if told and not own:
        found.append(("consumer", told))  # about the user's program, not the lab
    orphans = after_end_finding(section)
    if orphans:
        found.append(("tasks", orphans))
    return found, told if own else None
