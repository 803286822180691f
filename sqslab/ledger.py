"""The ledger: the fate of every message id, from what was sent, what consumers did and
what the queues hold at the end.

Fates, one per id, in this order of precedence:
  duplicate       processed more than once
  processed_once  processed exactly once
  dead_lettered   found in the DLQ
  still_queued    found in the queue, or not findable only because it is in flight or
                  delayed (its last receive or its send is within the visibility timeout
                  or the delay at the time of the audit)
  lost            sent, and none of the above: a bug somewhere (consumer, emulator, or an
                  action that deleted it unprocessed)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

FATES = ("processed_once", "duplicate", "dead_lettered", "still_queued", "lost")
# How many problem messages (duplicates, dead-lettered, lost) the summary lists by id.
PROBLEM_LIST_LIMIT = 500


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


@dataclass
class _Message:
    sent_at: float | None = None
    phase: str | None = None
    receives: int = 0  # delivery events seen from consumers
    max_receive_count: int = 0  # the highest ApproximateReceiveCount SQS reported
    last_receive: float | None = None
    processed: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: int = 0
    crashed: int = 0
    tasks: list[str] = field(default_factory=list)


    @property
    def deliveries(self) -> int:
        """How often SQS delivered it: the events seen, or SQS's own receive count where that
        is higher (a task killed before it logged the delivery, a batch it never started)."""
        return max(self.receives, self.max_receive_count)


@dataclass
class Ledger:
    """Fates and figures of one run."""

    fates: dict[str, str]
    counts: dict[str, int]
    figures: dict[str, Any]
    receive_histogram: dict[int, int]
    per_task: dict[str, dict[str, int]]
    problems: list[dict[str, Any]]
    latencies: list[float]
    anomalies: list[str]

    def as_dict(self) -> dict[str, Any]:
        """The ledger for summary.json."""
        return {
            "counts": self.counts,
            "receive_histogram": {str(k): v for k, v in sorted(self.receive_histogram.items())},
            "per_task": self.per_task,
            "problems": self.problems,
            "problems_truncated": sum(self.counts[f] for f in ("duplicate", "dead_lettered", "lost", "still_queued")) > len(self.problems),
            "anomalies": self.anomalies,
        }


def build_ledger(events: Iterable[dict[str, Any]], audit: Audit) -> Ledger:
    """Every sent id's fate, and the run's message figures, from the events and the audit."""
    messages: dict[str, _Message] = defaultdict(_Message)
    per_task: dict[str, Counter] = defaultdict(Counter)
    send_failed = crashes = failures = skipped_total = 0
    sent_ids: list[str] = []
    for event in events:
        kind, mid = event.get("event"), event.get("id")
        if kind == "sent":
            sent_ids.append(mid)
            message = messages[mid]
            message.sent_at, message.phase = event.get("sent_at"), event.get("phase")
        elif kind == "send_failed":
            send_failed += event.get("count", 1)
        elif event.get("source") != "consumer":
            continue
        elif kind in ("received", "abandoned", "released"):
            task = event.get("task", "?")
            per_task[task]["received"] += 1
            if mid is not None:
                message = messages[mid]
                message.receives += 1
                message.max_receive_count = max(message.max_receive_count, int(event.get("receive_count") or 0))
                message.last_receive = event.get("ts")
                if task not in message.tasks:
                    message.tasks.append(task)
        elif kind == "processed":
            per_task[event.get("task", "?")]["processed"] += 1
            if mid is not None:
                messages[mid].processed.append(event.get("ts"))
        elif kind == "failed":
            failures += 1
            per_task[event.get("task", "?")]["failed"] += 1
            if mid is not None:
                messages[mid].failures.append(event.get("reason", ""))
        elif kind == "duplicate_skipped":
            skipped_total += 1
            per_task[event.get("task", "?")]["duplicate_skipped"] += 1
            if mid is not None:
                messages[mid].skipped += 1
        elif kind == "crashed":
            crashes += 1
            per_task[event.get("task", "?")]["crashed"] += 1
            if mid is not None:
                messages[mid].crashed += 1

    fates: dict[str, str] = {}
    anomalies: list[str] = []
    latencies: list[float] = []
    for mid in sent_ids:
        message = messages[mid]
        if message.processed:
            fate = "duplicate" if len(message.processed) > 1 else "processed_once"
            if mid in audit.dlq_ids:
                anomalies.append(f"{mid}: processed and also in the DLQ (its delete did not take)")
            if message.sent_at is not None:
                latencies.append(min(message.processed) - message.sent_at)
        elif mid in audit.dlq_ids:
            fate = "dead_lettered"
        elif mid in audit.queued_ids or _in_flight_or_delayed(message, audit):
            fate = "still_queued"
        else:
            fate = "lost"
        fates[mid] = fate
    unknown = len(audit.dlq_ids - set(fates))
    if unknown:
        anomalies.append(f"{unknown} message(s) in the DLQ were not sent by this run's producer")

    counts = {fate: 0 for fate in FATES}
    counts.update(Counter(fates.values()))
    histogram = Counter(messages[mid].max_receive_count for mid in sent_ids)
    latencies.sort()
    figures = {
        "sent": len(sent_ids),
        "send_failed": send_failed,
        "processed": counts["processed_once"] + counts["duplicate"],
        "processed_once": counts["processed_once"],
        "duplicates": counts["duplicate"],
        "dead_lettered": counts["dead_lettered"],
        "still_queued": counts["still_queued"],
        "lost": counts["lost"],
        "receives": sum(messages[mid].deliveries for mid in sent_ids),
        "redeliveries": sum(max(0, messages[mid].deliveries - 1) for mid in sent_ids),
        "failures": failures,
        "crashes": crashes,
        "duplicate_skipped": skipped_total,
        "dlq.messages": audit.dlq_messages,
        "queue.visible": audit.queue_visible,
        "queue.in_flight": audit.queue_in_flight,
        "receive_count.max": max(histogram, default=0),
        "latency.p50": percentile(latencies, 50),
        "latency.p95": percentile(latencies, 95),
        "latency.p99": percentile(latencies, 99),
        "latency.max": latencies[-1] if latencies else None,
    }
    problems = []
    for mid in sent_ids:
        if fates[mid] in ("duplicate", "dead_lettered", "lost", "still_queued") and len(problems) < PROBLEM_LIST_LIMIT:
            message = messages[mid]
            problems.append({
                "id": mid,
                "fate": fates[mid],
                "phase": message.phase,
                "receive_count": message.max_receive_count,
                "receives": message.deliveries,
                "processed": len(message.processed),
                "failures": Counter(message.failures),
                "tasks": message.tasks,
            })
    return Ledger(
        fates=fates,
        counts=counts,
        figures=figures,
        receive_histogram=dict(histogram),
        per_task={task: dict(counter) for task, counter in sorted(per_task.items())},
        problems=problems,
        latencies=latencies,
        anomalies=anomalies,
    )


def _in_flight_or_delayed(message: _Message, audit: Audit) -> bool:
    if message.last_receive is not None and message.last_receive + audit.visibility_timeout > audit.at:
        return True
    return message.sent_at is not None and message.sent_at + audit.delay > audit.at


def percentile(values: list[float], pct: float) -> float | None:
    """The pct-th percentile of sorted values (nearest rank), or None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]
