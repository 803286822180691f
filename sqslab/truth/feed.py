"""The ledger fed as the run goes: events.jsonl and the SQS journal folded into the
ledger's store while they are written, so that the step after the drain is left with the
rest of the files and the final queries (sqslab.truth.ledger), not the whole run.

A thread reads what both files gained every FEED_INTERVAL (at most JsonTail.MAX_READ of
each per turn) and folds it in; `finish` stops it and folds the rest, to the ends of the
files. The facts are those of folding the files whole after the run: the same lines, read
by the same readers, into sums, minima and maxima that do not depend on the order they
come in. A feed never started folds the files whole when it finishes (a rebuild of a run's
ledger from its directory; without the run's key, which lives only in the emulator and the
runner, the journal's lines are taken unauthenticated).
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqslab.rundir import JsonTail
from sqslab.truth import journal
from sqslab.truth.store import LedgerStore

#: The feed's thread (it goes on through the audit, after the run's other threads are joined).
THREAD_NAME = "sqslab-ledger-feed"
#: Seconds between the feed's turns.
FEED_INTERVAL = 0.5
#: The longest events.jsonl line folded: the recorder writes each event it took, and a
#: consumer's line is cut at the supervisor's 1 MiB before it is (JSON escapes can grow it).
EVENT_LINE_MAX = 8 << 20
#: The longest the feed's thread is waited for once told to stop (it ends after its turn).
STOP_TIMEOUT = 30.0


class LedgerFeed:
    """Folds a run's events and SQS journal into its ledger store as they are written."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._key: bytes | None = None
        self._store: LedgerStore | None = None
        self._events = JsonTail(run_dir / "events.jsonl", max_line=EVENT_LINE_MAX)
        self._journal: journal.JournalTail | None = None
        self._journal_lines = 0
        self._lock = threading.Lock()  # one turn at a time: the thread's, or finish's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None
        self._finished = False

    def _open(self) -> LedgerStore:
        if self._store is None:
            self._store = LedgerStore(self.run_dir / "ledger.sqlite")
            self._journal = journal.JournalTail(self.run_dir / journal.JOURNAL_FILE, self._key)
        return self._store

    def start(self, journal_key: bytes | None) -> None:
        """Fold from now on, as the files grow; the journal's lines are authenticated with
        `journal_key` (sqslab.truth.journal.JournalTail)."""
        self._key = journal_key
        self._open()
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FEED_INTERVAL):
            try:
                self._turn(final=False)
            except Exception as exc:  # noqa: BLE001 - a full disk, say: finish raises it in the runner's thread
                self._error = exc
                return

    def _turn(self, final: bool) -> bool:
        """Fold what both files gained since the last turn; whether they had gained any."""
        with self._lock:
            store = self._open()
            assert self._journal is not None
            before = (self._events.offset, self._journal.offset)
            store.add(self._events.read(final))
            self._journal_lines += journal.fold(store.db, self._journal.read(final))
            return (self._events.offset, self._journal.offset) != before

    def finish(self) -> tuple[LedgerStore, int, int]:
        """Stop the thread and fold the rest of both files, as far as they reach now (a
        process that outlived its task may still be adding to the journal): (the store; the
        journal's line count, -1 when the run has no journal; the journal lines whose MAC
        did not hold)."""
        self._halt()
        if self._error is not None:
            raise self._error
        store = self._open()
        assert self._journal is not None
        ends = (_size(self._events.path), _size(self._journal.path))
        while self._turn(final=True) and (self._events.offset < ends[0] or self._journal.offset < ends[1]):
            pass
        self._finished = True
        lines = self._journal_lines if self._journal.path.exists() else -1
        return store, lines, self._journal.forged

    def abandon(self) -> None:
        """A run that ends before its ledger: the thread is stopped and the partial store
        removed (derived data: events.jsonl and the journal are the record)."""
        self._halt()
        if self._store is not None and not self._finished:
            with self._lock:
                self._store.close()
                (self.run_dir / "ledger.sqlite").unlink(missing_ok=True)
            self._store = None

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
