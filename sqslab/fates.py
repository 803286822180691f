"""The fates of a message: every sent id has exactly one at the end of a run.

One home for their names, their order of precedence, their figure names and how they are
said, imported by the ledger, the journal, the expectations and every reporter.

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

#: The fates, in their order of precedence (the first that holds is an id's fate).
FATES = ("processed_once", "duplicate", "dead_lettered", "still_queued", "expired", "purged", "lost")

#: How each fate is said in a sentence or a table row.
LABELS = {
    "processed_once": "processed once",
    "duplicate": "processed more than once",
    "dead_lettered": "dead-lettered",
    "still_queued": "still queued",
    "expired": "expired (retention)",
    "purged": "purged",
    "lost": "LOST",
}

#: The figure (summary.json `figures`, `expect`) that counts each fate.
FIGURES = {"processed_once": "processed_once", "duplicate": "duplicates", "dead_lettered": "dead_lettered",
           "still_queued": "still_queued", "expired": "expired", "purged": "purged", "lost": "lost"}

#: The fates a summary lists message by message (its problem list).
PROBLEMS = ("duplicate", "dead_lettered", "still_queued", "expired", "purged", "lost")
