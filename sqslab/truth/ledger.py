"""The ledger: the fate of every message id, from what was sent, what consumers did and
what the queues hold at the end.

Fates, one per id, in this order of precedence (sqslab.truth.fates): processed more than once,
processed once, dead-lettered (found in the DLQ), still queued (found in the queue in any
state; read through SQS, where a message in flight cannot be seen, also an id whose last
receive or send is within the visibility timeout or the delay at the audit), expired or
purged (the SQS journal says SQS dropped it), and lost: sent, and none of the above.

The per-message facts are folded from the events into SQLite (`RUN_DIR/ledger.sqlite`,
or memory), during the run by its feed (sqslab.truth.feed), so sqslab's own memory does not
grow with the number of messages and the end of a run is left with little to fold; the
figures are queries over it (`judge`). The file stays in the run directory: `sqlite3
runs/RUN/ledger.sqlite "select * from fates where fate = 'lost'"` lists any id's fate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqslab.truth import effects, journal
from sqslab.truth.fates import DEAD_LETTERED, DUPLICATE, FATES, FIGURES, PROBLEMS, PROCESSED_ONCE, PURGED, STILL_QUEUED
from sqslab.truth.feed import LedgerFeed
from sqslab.truth.ordering import duplicate_figures, ordering
from sqslab.truth.store import Audit, LedgerStore

# How many problem messages (duplicates, dead-lettered, lost) the summary lists by id.
PROBLEM_LIST_LIMIT = 500
#: How many anomalies are listed one by one (the rest are counted).
ANOMALY_LIST_LIMIT = 20
@dataclass
class Ledger:
    """Fates and figures of one run; the per-message facts stay in the store."""

    store: LedgerStore
    counts: dict[str, int]
    figures: dict[str, Any]
    receive_histogram: dict[int, int]
    per_task: dict[str, dict[str, int]]
    problems: list[dict[str, Any]]
    anomalies: list[str]
    ordering: dict[str, Any] = field(default_factory=dict)  # FIFO: violations and blocked groups
    sqs: dict[str, Any] = field(default_factory=dict)  # faults, SQS's behaviour, SDK retries (sqslab.truth.sqs_facts)
    source: str = "consumer events"  # where the processing facts came from: consumer events, or the SQS journal
    journal: dict[str, Any] = field(default_factory=dict)  # the SQS journal's fates, per task, self-check (sqslab.truth.journal)
    lambdas: dict[str, Any] = field(default_factory=dict)  # a Lambda consumer's invocations (sqslab.truth.lambda_facts)
    #: SQS requests per caller, from the journal (None without one), for what the run costs (sqslab.truth.cost).
    requests: dict[str, dict[str, int]] | None = None

    def fates(self) -> dict[str, str]:
        """Every sent id's fate (a whole-run dict: for tests and small runs)."""
        return {str(row[0]): str(row[1]) for row in self.store.query("SELECT id, fate FROM fates ORDER BY seq, id")}

    def latencies(self) -> Iterator[float]:
        """Send-to-first-processing times, ascending."""
        for (value,) in self.store.db.execute(
                "SELECT first_processed - sent_at AS l FROM fates WHERE processed > 0 AND sent_at IS NOT NULL ORDER BY l"):
            yield value

    def as_dict(self) -> dict[str, Any]:
        """The ledger for summary.json."""
        return {
            "counts": self.counts,
            "receive_histogram": {str(k): v for k, v in sorted(self.receive_histogram.items())},
            "per_task": self.per_task,
            "problems": self.problems,
            "problems_truncated": sum(self.counts[f] for f in PROBLEMS) > len(self.problems),
            "anomalies": self.anomalies,
            **({"ordering": self.ordering} if self.ordering else {}),
            **({"sqs": self.sqs} if self.sqs else {}),
            "source": self.source,
            **({"journal": self.journal} if self.journal else {}),
            **({"lambda": self.lambdas} if self.lambdas else {}),
        }


#: Figures the SQS journal cannot give for a consumer program that prints no events: a
#: failure is only the program's to tell (the message just comes back), and so is a skip.
JOURNAL_UNTOLD = ("failures", "duplicate_skipped")
#: Figures a consumer program that prints no events cannot give where there is no journal (AWS).
UNTOLD = ("receives", "redeliveries", "failures", "duplicate_skipped", "duplicates", "processed_once",
          "receive_count.max", "latency.p50", "latency.p95", "latency.p99", "latency.max")


def build_ledger(events: Iterable[dict[str, Any]], audit: Audit, path: Path | None = None,
                 sqs_journal: Iterable[dict[str, Any]] | None = None, program: bool = False,
                 effects_on: bool = False) -> Ledger:
    """The ledger of these events (and SQS journal lines, when the run has a journal) and
    this audit, folded into a new store at `path` (in memory when None); see judge."""
    store = LedgerStore(path)
    store.add(events)
    lines = journal.fold(store.db, sqs_journal) if sqs_journal is not None else -1
    return judge(store, lines, audit, program, effects_on)


def judge(store: LedgerStore, lines: int, audit: Audit, program: bool = False, effects_on: bool = False) -> Ledger:
    """Every sent id's fate, and the run's message figures, from the store's folded events
    and the audit. With the emulator's journal (`lines` folded, -1 when there is none), its
    fates and per-task counts too; the processing facts come from it when no consumer
    told its side, else the two are compared (sqslab.truth.journal). A consumer `program` that
    told nothing, with no journal (AWS): a sent id neither in the DLQ nor in the queue at
    the end was processed, at least once; the figures only a consumer or the journal can
    tell (UNTOLD) are unavailable. `effects_on`: the scenario counted effects (sqslab.truth.effects)."""
    source, told = "consumer events", True
    if lines >= 0:
        journal.prepare(store)
        told = journal.has_consumer_events(store)
        if not told:
            journal.facts_from_journal(store)
            source = "SQS journal"
    store.set_audit(audit)
    untold = program and lines < 0 and not journal.has_consumer_events(store)
    if untold:
        source = "queue audit"
        store.db.execute("UPDATE message SET processed = 1 WHERE id NOT IN (SELECT id FROM dlq) AND id NOT IN (SELECT id FROM queued)")
    counts = dict.fromkeys(FATES, 0)
    counts.update(dict(store.query("SELECT fate, count(*) FROM fates GROUP BY fate")))
    histogram = {int(k): v for k, v in store.query("SELECT max_rc, count(*) FROM fates GROUP BY max_rc")}
    figures = _figures(store, counts, audit, histogram)
    figures.update(duplicate_figures(store))
    group_figures, section = ordering(store, audit)
    figures.update(group_figures)
    figures.update(store.sqs.figures())
    figures.update(store.lambdas.figures())
    figures.update(effects.figures(store, effects_on and lines >= 0))
    if untold:
        figures.update(dict.fromkeys(UNTOLD))
    elif source == "SQS journal":
        figures.update(dict.fromkeys(JOURNAL_UNTOLD))
    journal_section = journal.section(store, compare=told, lines=lines) if lines >= 0 else {}
    if journal_section.get("check"):
        figures["self_check.disagreements"] = journal_section["check"]["disagreement_count"]
    requests = (journal.requests_by_caller(store) or None) if lines >= 0 else None
    return Ledger(store, counts, figures, histogram, _per_task(store), _problems(store), _anomalies(store, audit.notes), section,
                  store.sqs.section(), source, journal_section,
                  store.lambdas.section(audit.t0, audit.at, journal.consumer_receives(store) if lines >= 0 else None), requests)


def ledger_of_run(feed: LedgerFeed, audit: Audit, program: bool = False, effects_on: bool = False) -> Ledger:
    """The ledger of the run whose events.jsonl and SQS journal `feed` folded (finished here,
    to the ends of both files), kept in RUN_DIR/ledger.sqlite; `program`: the consumer was
    the user's own."""
    store, lines, forged = feed.finish()
    ledger = judge(store, lines, audit, program, effects_on)
    if forged:
        ledger.journal["forged_lines"] = forged
    ledger.store.close()
    return ledger


def _figures(store: LedgerStore, counts: dict[str, int], audit: Audit, histogram: dict[int, int]) -> dict[str, Any]:
    (sent, receives, redeliveries), = store.query(
        "SELECT count(*), coalesce(sum(deliveries), 0), coalesce(sum(max(deliveries - 1, 0)), 0) FROM fates")
    totals = dict(store.query("SELECT 'failures', coalesce(sum(failed), 0) FROM task UNION ALL "
                              "SELECT 'crashes', coalesce(sum(crashed), 0) FROM task UNION ALL "
                              "SELECT 'duplicate_skipped', coalesce(sum(duplicate_skipped), 0) FROM task UNION ALL "
                              "SELECT name, value FROM totals"))
    figures: dict[str, Any] = {
        "sent": sent,
        "send_failed": totals.get("send_failed", 0),
        "processed": counts[PROCESSED_ONCE] + counts[DUPLICATE],
        **{FIGURES[fate]: counts[fate] for fate in FATES},
        "receives": receives,
        "redeliveries": redeliveries,
        "failures": totals["failures"],
        "crashes": totals["crashes"],
        "duplicate_skipped": totals["duplicate_skipped"],
        "dlq.messages": audit.dlq_messages,
        "dlq.other": _dlq_other(store, audit),
        "queue.visible": audit.queue_visible,
        "queue.in_flight": audit.queue_in_flight,
        "receive_count.max": max(histogram, default=0),
    }
    figures.update(_latency_figures(store))
    return figures


def _dlq_other(store: LedgerStore, audit: Audit) -> int:
    """DLQ messages that stand for no dead-lettered id: copies of ids with another fate (a
    processed id whose second send ended there), further copies of an id, messages not of
    this run. dlq.messages = dead_lettered + dlq.other when the audit read the whole DLQ."""
    (others,), = store.query(f"SELECT count(*) FROM dlq WHERE id NOT IN (SELECT id FROM fates WHERE fate = '{DEAD_LETTERED}')")
    return int(others) + audit.dlq_extra_copies


def _latency_figures(store: LedgerStore) -> dict[str, float | None]:
    """latency.p50/p95/p99/max in one ordered pass (nearest rank)."""
    (n,), = store.query("SELECT count(*) FROM fates WHERE processed > 0 AND sent_at IS NOT NULL")
    ranks = {name: max(1, math.ceil(pct / 100 * n)) for name, pct in (("latency.p50", 50), ("latency.p95", 95), ("latency.p99", 99))}
    ranks["latency.max"] = n
    found: dict[str, float | None] = dict.fromkeys(ranks)
    if not n:
        return found
    wanted = {rank: [name for name, r in ranks.items() if r == rank] for rank in set(ranks.values())}
    cursor = store.db.execute("SELECT first_processed - sent_at AS l FROM fates WHERE processed > 0 AND sent_at IS NOT NULL ORDER BY l")
    for position, (value,) in enumerate(cursor, 1):
        for name in wanted.get(position, ()):
            found[name] = value
        if position >= n:
            break
    return found


def _per_task(store: LedgerStore) -> dict[str, dict[str, int]]:
    columns = ("received", "processed", "failed", "duplicate_skipped", "crashed")
    per_task = {}
    for row in store.query(f"SELECT task, {', '.join(columns)} FROM task ORDER BY task"):
        per_task[row[0]] = {name: value for name, value in zip(columns, row[1:], strict=False) if value}
    return per_task


def _problems(store: LedgerStore) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT id, fate, phase, max_rc, deliveries, processed, dup_sends, "
        "(SELECT coalesce(sum(d.n), 0) FROM copy c JOIN sqs_dup d ON d.message_id = c.message_id WHERE c.id = fates.id) "
        f"FROM fates WHERE fate IN ({', '.join(repr(f) for f in PROBLEMS)}){_effect_problems(store)} ORDER BY seq, id LIMIT ?",
        PROBLEM_LIST_LIMIT)
    problems = []
    for mid, fate, phase, max_rc, deliveries, processed, dup_sends, sqs_copies in rows:
        failures = dict(store.query("SELECT reason, n FROM failure WHERE id = ? ORDER BY reason", mid))
        tasks = [task for (task,) in store.query("SELECT task FROM delivery WHERE id = ? ORDER BY task", mid)]
        problem = {"id": mid, "fate": fate, "phase": phase, "receive_count": max_rc, "receives": deliveries,
                   "processed": processed, "failures": failures, "tasks": tasks}
        if fate == PURGED:
            for (by,) in store.query("SELECT by FROM gone WHERE id = ?", mid):
                problem["purged_by"] = by
        if fate == STILL_QUEUED:
            for state, until in store.query("SELECT state, until FROM held WHERE id = ?", mid):
                problem["held"] = {"state": state, "until": until}  # "still queued (in flight until T)"
        effect = effects.of(store, mid)
        if effect is not None:
            problem["effect"] = effect  # its effect fate and how many effects it had
        if fate == DUPLICATE:
            # Who made the extra processing: SQS (a copy survived a delete), the producer (it
            # sent the id twice), else the consumer side (a visibility overrun, a crash, a lost delete).
            problem["cause"] = "sqs" if sqs_copies else "producer" if dup_sends else "consumer"
        problems.append(problem)
    return problems


def _effect_problems(store: LedgerStore) -> str:
    """The clause that lists a message whose work was lost or applied twice, with effects on."""
    made = store.query("SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = 'effect_fates'")
    return f" OR id IN ({effects.problem_ids(store)})" if made else ""


def _anomalies(store: LedgerStore, notes: list[str]) -> list[str]:
    anomalies = list(notes)
    if store.malformed:
        anomalies.append(f"{store.malformed} consumer event line(s) named no message (neither id nor message_id) "
                         "(docs/contracts.md, Consumer events): left out")
    both = store.query("SELECT id, dup_sends > 0 FROM fates WHERE processed > 0 AND id IN (SELECT id FROM dlq) ORDER BY seq LIMIT ?",
                       ANOMALY_LIST_LIMIT + 1)
    anomalies += [f"{mid}: processed and also in the DLQ ({'a second copy the producer sent' if sent_twice else 'its delete did not take'})"
                  for mid, sent_twice in both[:ANOMALY_LIST_LIMIT]]
    if len(both) > ANOMALY_LIST_LIMIT:
        (total,), = store.query("SELECT count(*) FROM fates WHERE processed > 0 AND id IN (SELECT id FROM dlq)")
        anomalies.append(f"... {total - ANOMALY_LIST_LIMIT} more processed and also in the DLQ")
    (unknown,), = store.query("SELECT count(*) FROM dlq WHERE id NOT IN (SELECT id FROM fates)")
    if unknown:
        anomalies.append(f"{unknown} message(s) in the DLQ were not sent by this run's producer")
    return anomalies


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile of sorted values (nearest rank), or None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]
