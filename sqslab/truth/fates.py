"""The fates of a message: every sent id has exactly one at the end of a run.

One home for their names, their order of precedence, their figure names, what each figure
means and how each fate is said, imported by the ledger, the journal, the expectations and
every reporter (the HTML templates get the labels from the reporters).

  processed_once   processed exactly once
  duplicate        processed more than once
  dead_lettered    in the DLQ
  still_queued     in the queue, in any state (in flight until its visibility timeout
                   ends, delayed, or visible)
  expired          dropped by SQS when its retention period ran out (the SQS journal says so)
  purged           dropped by a PurgeQueue call (the journal says by whom)
  lost             sent, and none of the above: a bug somewhere (consumer, emulator, or an
                   action that deleted it unprocessed)
"""

from __future__ import annotations

PROCESSED_ONCE = "processed_once"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
STILL_QUEUED = "still_queued"
EXPIRED = "expired"
PURGED = "purged"
LOST = "lost"

#: The fates, in their order of precedence (the first that holds is an id's fate).
FATES = (PROCESSED_ONCE, DUPLICATE, DEAD_LETTERED, STILL_QUEUED, EXPIRED, PURGED, LOST)

#: How each fate is said in a sentence or a table row.
LABELS = {
    PROCESSED_ONCE: "processed once",
    DUPLICATE: "processed more than once",
    DEAD_LETTERED: "dead-lettered",
    STILL_QUEUED: "still queued",
    EXPIRED: "expired (retention)",
    PURGED: "purged",
    LOST: "LOST",
}

#: The figure (summary.json `figures`, `expect`) that counts each fate.
FIGURES = {PROCESSED_ONCE: "processed_once", DUPLICATE: "duplicates", DEAD_LETTERED: "dead_lettered",
           STILL_QUEUED: "still_queued", EXPIRED: "expired", PURGED: "purged", LOST: "lost"}

#: What each fate's figure counts (the catalogue of figures, sqslab.truth.expectations).
MEANINGS = {
    PROCESSED_ONCE: "ids processed exactly once",
    DUPLICATE: "ids processed more than once",
    DEAD_LETTERED: "ids that ended in the DLQ",
    STILL_QUEUED: "ids still in the queue at the end, in any state (in flight, delayed, visible)",
    EXPIRED: "ids SQS dropped when their retention period ran out (by the SQS journal; local target)",
    PURGED: "ids a PurgeQueue call dropped (by the SQS journal; local target)",
    LOST: "ids sent but nowhere: not processed, not in the DLQ, not queued",
}

#: The fates a summary lists message by message (its problem list): all but processed once.
PROBLEMS = tuple(fate for fate in FATES if fate != PROCESSED_ONCE)


def tone(fate: str, count: int) -> str:
    """How a report marks a fate's count: "bad" for any lost id, "warn" for any id of
    another problem fate, "" otherwise."""
    if not count or fate not in PROBLEMS:
        return ""
    return "bad" if fate == LOST else "warn"


def said(fates: tuple[str, ...] | list[str], last: str = "or") -> str:
    """Fates as a phrase: `processed more than once, dead-lettered or LOST`."""
    labels = [LABELS[fate] for fate in fates]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} {last} {labels[-1]}"
