"""The ledger with the SQS journal and the self-check, against the ledger from the events
alone, on the same made-up run: N messages, each sent, received and processed once by one of
4 tasks, and the journal's send, receive and delete of each.

    python benchmarks/bench_journal.py [--messages N ...]

Prints seconds and the ratio per size; exits 1 when folding the journal and checking it
costs more than 3x the events-only ledger, or when the ratio grows with N (a quadratic
query: a missing index once made 100k messages take 198 s instead of 4).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqslab.truth.ledger import build_ledger
from sqslab.truth.store import Audit


def made_up_run(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events and the journal of n messages processed once each."""
    events: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    for i in range(n):
        sid, mid, task = f"id-{i}", f"m-{i}", f"task-{i % 4 + 1}"
        facts = {"id": sid, "message_id": mid, "receive_count": 1, "task": task, "source": "consumer"}
        events += [{"event": "sent", "source": "producer", "id": sid, "seq": i + 1, "sent_at": 1.0},
                   {"event": "received", "ts": 2.0, **facts}, {"event": "processed", "ts": 2.1, **facts}]
        journal += [{"op": "send", "by": "producer", "mid": mid, "id": sid},
                    {"op": "receive", "by": task, "mid": mid, "rc": 1, "ts": 2.0},
                    {"op": "delete", "by": task, "mid": mid, "rc": 1, "effect": "deleted", "ts": 2.1, "id": sid}]
    return events, journal


def main(argv: list[str] | None = None) -> int:
    """Time both ledgers per size; exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[20_000, 100_000])
    args = parser.parse_args(argv)
    print("| messages | events only s | with journal + self-check s | ratio |\n| ---: | ---: | ---: | ---: |")
    ratios = []
    for n in args.messages:
        events, journal = made_up_run(n)
        t0 = time.perf_counter()
        build_ledger(events, Audit(at=100.0))
        t1 = time.perf_counter()
        ledger = build_ledger(events, Audit(at=100.0), sqs_journal=journal)
        t2 = time.perf_counter()
        assert ledger.journal["check"]["agree"], ledger.journal["check"]
        ratios.append((t2 - t1) / (t1 - t0))
        print(f"| {n:,} | {t1 - t0:.2f} | {t2 - t1:.2f} | {ratios[-1]:.2f}x |")
    failed = max(ratios) > 3 or (len(ratios) > 1 and ratios[-1] > 1.5 * ratios[0])
    if failed:
        print("goal missed: the journal costs more than 3x, or its cost grows faster than the run", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
