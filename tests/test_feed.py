"""The ledger fed while the run goes (sqslab.truth.feed) holds the facts that folding the
run's files whole afterwards gives: a run's ledger.sqlite against a fold of its
events.jsonl and SQS journal from scratch, table by table."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from sqslab.plugins import load_plugins
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.rundir import JsonTail, read_jsonl
from sqslab.scenario.load import load_scenario_text
from sqslab.truth import journal
from sqslab.truth.feed import THREAD_NAME, LedgerFeed
from sqslab.truth.store import LedgerStore
from tests.conftest import ROOT

#: The tables the events and the journal are folded into (the audit's and the views are the ledger's own, at its end).
FOLDED = ("message", "copy", "delivery", "failure", "task", "sqs_dup", "jsend", "jrecv", "jdel", "jvis", "jgone", "jdlq",
          "jreq", "jeffect", "jfault", "erecv", "edone", "edelfail", "etask")

BUILT_IN = """
version: 1
name: fed-built-in
seed: 3
sample_interval: 250ms
infra: {consumers: 3, queue: {visibility_timeout: 1s}, dlq: {max_receive_count: 3}, task: {restart_delay: 300ms}}
consumer: {work_time: 5ms..30ms, error_rate: 0.1, crash_rate: 0.02, delete: batch}
sqs: {duplicates: 0.05}
effects: {}
load: [{rate: 150/s, duration: 3s}]
actions: [{at: 1500ms, do: kill_consumer, count: 1}]
settle: {timeout: 30s}
"""

PROGRAM = f"""
version: 1
name: fed-program
seed: 4
sample_interval: 250ms
infra: {{consumers: 2, queue: {{visibility_timeout: 2s}}, task: {{restart_delay: 300ms}}}}
consumer:
  program:
    command: [python3, worker.py]
    cwd: {ROOT / "consumer/examples/python-worker"}
    env: {{WORK_SECONDS: "0.01"}}
    ready: {{log: worker ready, timeout: 30s}}
load:
  - rate: 80/s
    duration: 3s
    body: '{{"orderId": "{{{{ id }}}}", "amount": 1, "currency": "EUR"}}'

actions: [{{at: 1500ms, do: kill_consumer, count: 1}}]
settle: {{timeout: 30s}}
"""


def rows(db: sqlite3.Connection, table: str) -> list[tuple]:
    return sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


@pytest.mark.integration
@pytest.mark.parametrize("text", [BUILT_IN, PROGRAM], ids=["built-in", "program"])
def test_the_ledger_fed_during_the_run_holds_what_folding_its_files_afterwards_gives(tmp_path: Path, text: str,
                                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    live_turns = []
    turn = LedgerFeed._turn

    def counted(self: LedgerFeed, final: bool) -> bool:
        gained = turn(self, final)
        if gained and not final:
            live_turns.append(self)
        return gained

    monkeypatch.setattr(LedgerFeed, "_turn", counted)
    host = load_plugins(entry_points=False)
    result = run_scenario(load_scenario_text(text, host), host, RunOptions(out=tmp_path / "run", handle_signals=False))
    run_dir = result.run_dir
    assert result.summary["errors"] == [], result.summary["errors"]
    figures = result.summary["figures"]
    assert figures["sent"] >= 240 and figures["receives"] >= figures["sent"], figures
    assert len(live_turns) >= 5, "the feed folded while the run went, not only at its end"
    assert not [e for e in read_jsonl(run_dir / "events.jsonl") if e.get("event") == "threads_still_alive"]
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME], "the feed's thread ended with the run"
    whole = LedgerStore(None)
    whole.add(read_jsonl(run_dir / "events.jsonl"))
    lines = journal.fold(whole.db, journal.JournalTail(run_dir / journal.JOURNAL_FILE, None))
    assert lines > figures["sent"] * 3, "the journal holds each send, receive and delete"
    if not journal.has_consumer_events(whole):  # the program told nothing: the ledger took its facts from the journal
        journal.prepare(whole)
        journal.facts_from_journal(whole)
    fed = sqlite3.connect(f"file:{run_dir / 'ledger.sqlite'}?mode=ro", uri=True)
    for table in FOLDED:
        assert rows(fed, table) == rows(whole.db, table), table
    assert sum(n for _, n in fed.execute("SELECT fate, count(*) FROM fates GROUP BY fate")) == figures["sent"]
    assert result.summary["ledger"]["journal"].get("check", {}).get("agree", True), result.summary["ledger"]["journal"]


def test_a_feed_never_started_folds_the_files_whole_and_a_torn_last_line_is_left_out(tmp_path: Path) -> None:
    events = [{"event": "sent", "source": "producer", "id": f"m{i}", "seq": i, "sent_at": 1.0 + i, "phase": "p"} for i in range(1, 4)]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "sent", "id": "m9')
    store, lines, forged = LedgerFeed(tmp_path).finish()
    assert [r[0] for r in store.query("SELECT id FROM message ORDER BY seq")] == ["m1", "m2", "m3"]
    assert (lines, forged) == (-1, 0), "no journal: -1 lines"
    store.close()


def test_a_feed_abandoned_before_its_ledger_leaves_no_partial_ledger(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text("")
    feed = LedgerFeed(tmp_path)
    feed.start(None)
    assert (tmp_path / "ledger.sqlite").exists()
    feed.abandon()
    assert not (tmp_path / "ledger.sqlite").exists()


def test_a_tail_read_to_its_end_keeps_the_line_that_spans_a_read(tmp_path: Path) -> None:
    """A last read (`final`) of more than MAX_READ bytes: the line cut by the read's limit is
    whole in the next one, not dropped as torn."""
    path = tmp_path / "lines.jsonl"
    path.write_text("".join(json.dumps({"n": n, "pad": "x" * 40}) + "\n" for n in range(200)))
    tail = JsonTail(path)
    tail.MAX_READ = 1000  # an instance's limit: reads of 1,000 bytes
    seen: list[int] = []
    while batch := tail.read_lines(final=True):
        seen += [json.loads(line)["n"] for line in batch]
    assert seen == list(range(200))


def test_finish_folds_the_files_as_far_as_they_reach_though_a_process_keeps_writing_the_journal(tmp_path: Path) -> None:
    """A process that outlived its task may go on polling: finish must not chase it."""
    (tmp_path / "events.jsonl").write_text("")
    path = tmp_path / journal.JOURNAL_FILE
    line = json.dumps({"op": "receive", "mid": "m", "rc": 1, "by": "task-9", "ts": 1.0}) + "\n"
    path.write_text(line * 1000)
    stop = threading.Event()

    def poller() -> None:
        with path.open("a") as handle:
            while not stop.is_set():
                handle.write(line * 50)
                handle.flush()

    writer = threading.Thread(target=poller, daemon=True)
    writer.start()
    try:
        store, lines, _ = LedgerFeed(tmp_path).finish()
    finally:
        stop.set()
        writer.join(5)
    assert lines >= 1000
    store.close()
