"""FIFO figures over the ledger: order within groups, deduplication, head-of-line blocking.

Definitions (docs and README say the same):

- A message is *finished* when it is first processed, or, when it ends in the DLQ, when
  SQS moved it there (the SQS journal's time), else when its last failed (or, for a
  message that never failed, its last) receive's visibility timeout ran out: the next
  receive moves it. A FIFO batch's messages behind a failure are released unprocessed,
  so they reach maxReceiveCount and the DLQ without failing themselves.
- An *order violation*: a message processed before an earlier-sent message of its group
  was finished. With `on_failure: stop_group` there are none; with `continue` a failure
  lets the rest of its group overtake it.
- *Blocked*: a group waits behind a message that failed, from that message's first
  failure until it is finished, for as long as a later message of the group is still
  waiting (a later message already processed waits no more).
- `dedup_dropped`: duplicate sends SQS did not deliver (the consumers saw one SQS copy of
  the id); `producer_duplicates`: duplicate sends it did deliver (two copies or more).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqslab.truth.store import Audit, LedgerStore

#: Groups listed one by one in the summary (the worst first); the rest are counted.
GROUPS_LISTED = 10
#: Points of the blocked-groups series, at most.
SERIES_POINTS = 1500
#: Finished never (still queued, lost): later than any time of the run.
NEVER = 9e18


def duplicate_figures(store: LedgerStore) -> dict[str, int]:
    """duplicate_sends, and of them producer_duplicates and dedup_dropped, from the SQS
    copies of each id the consumers received."""
    rows = store.query(
        "SELECT coalesce(sum(dup_sends), 0), coalesce(sum(copies >= 2), 0), coalesce(sum(copies = 1), 0) FROM "
        "(SELECT f.dup_sends, (SELECT count(*) FROM copy c WHERE c.id = f.id) AS copies FROM fates f WHERE f.dup_sends > 0)")
    sends, delivered, dropped = rows[0]
    return {"duplicate_sends": int(sends), "producer_duplicates": int(delivered), "dedup_dropped": int(dropped)}


def ordering(store: LedgerStore, audit: Audit) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, the ordering section of the summary's ledger) of a run with message groups."""
    (groups,), = store.query("SELECT count(DISTINCT grp) FROM fates WHERE grp IS NOT NULL")
    if not groups:
        none = {"groups": 0, "order_violations": None, "group_blocked.max": None, "group_blocked.p95": None}
        return none, {}
    violations = _violations(store, audit)
    blocked = _blocked(store, audit)
    waited = {group: _union(spans) for group, spans in blocked.items()}
    totals = sorted(waited.values(), reverse=True)
    totals += [0.0] * (groups - len(totals))
    figures = {
        "groups": groups,
        "order_violations": sum(violations.values()),
        "group_blocked.max": totals[0] if totals else 0.0,
        "group_blocked.p95": sorted(totals)[max(0, math.ceil(0.95 * len(totals)) - 1)] if totals else 0.0,
    }
    t0 = audit.t0 or 0.0
    worst = sorted(blocked.items(), key=lambda item: (-waited[item[0]], item[0]))[:GROUPS_LISTED]
    section = {
        "groups": groups,
        "violations_by_group": [{"group": g, "violations": n} for g, n in
                                sorted(violations.items(), key=lambda item: (-item[1], item[0]))[:GROUPS_LISTED]],
        "groups_with_violations": len(violations),
        "blocked_groups": [{"group": g, "blocked": round(waited[g], 3),
                            "intervals": [{"start": round(s - t0, 3), "end": round(e - t0, 3), "id": mid} for s, e, mid in spans]}
                           for g, spans in worst],
        "groups_blocked": len(blocked),
        "blocked_series": _series(blocked, t0, audit.at),
    }
    return figures, section


def _finished(audit: Audit, row: str = "fates") -> str:
    """SQL: when a message (the row named `row`) was finished (see the module docstring)."""
    timeout = float(audit.visibility_timeout)
    moved = f"(SELECT min(q.ts) FROM jdlq q JOIN jsend s ON s.mid = q.mid WHERE s.sid = {row}.id)"
    return (f"CASE WHEN {row}.processed > 0 THEN {row}.first_processed "
            f"WHEN {row}.id IN (SELECT id FROM dlq) THEN coalesce({moved}, coalesce({row}.last_failed, {row}.last_receive) + {timeout!r}, "
            f"{NEVER!r}) ELSE {NEVER!r} END")


def _violations(store: LedgerStore, audit: Audit) -> dict[str, int]:
    rows = store.query(
        f"SELECT grp, count(*) FROM (SELECT grp, first_processed AS done, "
        f"max({_finished(audit)}) OVER (PARTITION BY grp ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before "
        f"FROM fates WHERE grp IS NOT NULL AND seq IS NOT NULL) "
        f"WHERE done IS NOT NULL AND before IS NOT NULL AND done < before GROUP BY grp")
    return {str(group): int(n) for group, n in rows}


def _blocked(store: LedgerStore, audit: Audit) -> dict[str, list[tuple[float, float, str]]]:
    """Per group, the (start, end, id) spans it waited behind a failed message."""
    at = float(audit.at)
    rows = store.query(
        f"SELECT grp, id, first_failed, min({_finished(audit, 'f')}, {at!r}) AS ends, later FROM ("
        f"SELECT *, max(coalesce(first_processed, {at!r})) OVER (PARTITION BY grp ORDER BY seq "
        f"ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later FROM fates WHERE grp IS NOT NULL AND seq IS NOT NULL) AS f "
        f"WHERE first_failed IS NOT NULL AND later IS NOT NULL ORDER BY grp, first_failed")
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for group, mid, start, ends, later in rows:
        end = min(ends, later)
        if end > start:
            spans.setdefault(str(group), []).append((start, end, str(mid)))
    return spans


def _union(spans: list[tuple[float, float, str]]) -> float:
    """Seconds covered by the spans (two failing messages at once are one wait)."""
    total, reach = 0.0, float("-inf")
    for start, end, _ in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _series(blocked: dict[str, list[tuple[float, float, str]]], t0: float, at: float) -> dict[str, Any]:
    """How many groups were blocked, per time bucket (a second, or wider for long runs)."""
    length = max(0.0, at - t0)
    width = max(1, math.ceil(length / SERIES_POINTS))
    count = int(length // width) + 1
    buckets = [0] * count
    for spans in blocked.values():
        touched: set[int] = set()
        for start, end, _ in spans:
            first, last = int(max(0.0, start - t0) // width), int(max(0.0, end - t0) // width)
            touched.update(range(first, min(last, count - 1) + 1))
        for index in touched:
            buckets[index] += 1
    return {"bucket": width, "t": [i * width for i in range(count)], "blocked": buckets}
