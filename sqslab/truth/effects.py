"""Effects: was the work done exactly once? A message's SQS fate says whether it was deleted;
its effect fate says whether the consumer's work happened.

With the scenario's `effects:` on, the consumers post their side effects (each result,
a JSON object) to `SQSLAB_EFFECTS_URL`, the embedded emulator's effects endpoint, which
journals each with the message id found at the scenario's `effects.id` path in it
(sqslab.emulator.middleware). Every sent id then also gets one effect fate:

* applied once: one effect, and the message was deleted;
* applied more than once: two or more effects (a duplicate side effect), deleted or not;
* lost work: deleted with no effect at all (a consumer that acknowledged before its work
  and died, or never did it);
* applied, never deleted: one effect, and the message is in the DLQ or still queued
  (it will be worked again);
* not applied: no effect and not deleted (a poison message dead-lettered untouched).

Effects that name no message of the run are counted apart (`effects.unmatched`).
"""

from __future__ import annotations

from typing import Any

from sqslab.truth.fates import DUPLICATE, PROCESSED_ONCE

APPLIED_ONCE = "applied once"
APPLIED_TWICE = "applied more than once"
LOST_WORK = "lost work"
NOT_DELETED = "applied, never deleted"
NOT_APPLIED = "not applied"
#: The effect fates, in the order the reports show them; those that are a problem.
EFFECT_FATES = (APPLIED_ONCE, APPLIED_TWICE, LOST_WORK, NOT_DELETED, NOT_APPLIED)
EFFECT_PROBLEMS = (APPLIED_TWICE, LOST_WORK)

#: The figures (all None when the run had no effects).
FIGURES: dict[str, tuple[str, str]] = {
    "effects.total": ("count", "effects the consumers posted"),
    "effects.applied_once": ("count", "messages deleted whose work was applied exactly once"),
    "effects.duplicates": ("count", "messages whose work was applied more than once (a duplicate side effect)"),
    "effects.lost_work": ("count", "messages deleted with no effect: acknowledged, never worked"),
    "effects.applied_not_deleted": ("count", "messages worked once and left in the DLQ or the queue"),
    "effects.not_applied": ("count", "messages neither worked nor deleted"),
    "effects.unmatched": ("count", "effects naming no message of the run"),
}

_DELETED = f"('{PROCESSED_ONCE}', '{DUPLICATE}')"

#: Per sent id: its effects and its effect fate (a temporary table over the ledger's fates).
_EFFECT_FATES = f"""
CREATE TEMP TABLE IF NOT EXISTS effect_fates AS
SELECT f.id AS id, coalesce(e.n, 0) AS effects, CASE
    WHEN coalesce(e.n, 0) > 1 THEN '{APPLIED_TWICE}'
    WHEN coalesce(e.n, 0) = 1 AND f.fate IN {_DELETED} THEN '{APPLIED_ONCE}'
    WHEN coalesce(e.n, 0) = 1 THEN '{NOT_DELETED}'
    WHEN f.fate IN {_DELETED} THEN '{LOST_WORK}'
    ELSE '{NOT_APPLIED}' END AS fate
FROM fates f LEFT JOIN (SELECT id, count(*) AS n FROM jeffect WHERE id IS NOT NULL GROUP BY id) e ON e.id = f.id;
"""


def figures(store: Any, on: bool) -> dict[str, Any]:
    """The effect figures of a run (None each when effects were off, or the run has no journal)."""
    if not on or not _has_journal(store):
        return dict.fromkeys(FIGURES)
    store.db.executescript(_EFFECT_FATES)
    counts = dict(store.query("SELECT fate, count(*) FROM effect_fates GROUP BY fate"))
    (total,), = store.query("SELECT count(*) FROM jeffect")
    (unmatched,), = store.query("SELECT count(*) FROM jeffect WHERE id IS NULL OR id NOT IN (SELECT id FROM fates)")
    return {
        "effects.total": total,
        "effects.applied_once": counts.get(APPLIED_ONCE, 0),
        "effects.duplicates": counts.get(APPLIED_TWICE, 0),
        "effects.lost_work": counts.get(LOST_WORK, 0),
        "effects.applied_not_deleted": counts.get(NOT_DELETED, 0),
        "effects.not_applied": counts.get(NOT_APPLIED, 0),
        "effects.unmatched": unmatched,
    }


def problem_ids(store: Any) -> str:
    """SQL for the ids whose effect fate is a problem (after figures() made the table)."""
    listed = ", ".join(f"'{fate}'" for fate in EFFECT_PROBLEMS)
    return f"SELECT id FROM effect_fates WHERE fate IN ({listed})"


def of(store: Any, ident: str) -> dict[str, Any] | None:
    """One id's effect fate and count, or None (no effects in the run)."""
    if not store.query("SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = 'effect_fates'"):
        return None
    rows = store.query("SELECT fate, effects FROM effect_fates WHERE id = ?", ident)
    return {"fate": rows[0][0], "effects": rows[0][1]} if rows else None


def _has_journal(store: Any) -> bool:
    return bool(store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jeffect'"))
