"""Your own consumer in the lab (`consumer.program`): real programs written here, run by the
local target with the real emulator, accounted for by the SQS journal."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from sqslab.run.runner import RunOptions, run_scenario
from sqslab.rundir import read_jsonl
from sqslab.scenario.load import load_scenario

pytestmark = pytest.mark.integration

#: A worker that tells its side: it prints sqslab's event lines (docs/contracts.md), exits 1
#: (a crash) on its CRASH_AFTER-th message when told to, and says which VERSION it is.
TELLING_WORKER = """
import json, os, sys, time
import boto3

def emit(event, **fields):
    print(json.dumps({"ts": time.time(), "event": event, "task": os.environ["SQSLAB_TASK_ID"], **fields}), flush=True)

queue = os.environ["SQSLAB_QUEUE_URL"]
sqs = boto3.client("sqs")
crash_after = int(os.environ.get("CRASH_AFTER", "0"))
print("version " + os.environ.get("VERSION", "?") + " up", file=sys.stderr, flush=True)
emit("started", config={})
done = 0
while True:
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=2, WaitTimeSeconds=1, MessageAttributeNames=["sqslab-id"],
                              MessageSystemAttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
    for m in got:
        facts = {"id": m["MessageAttributes"]["sqslab-id"]["StringValue"], "message_id": m["MessageId"],
                 "receive_count": int(m["Attributes"]["ApproximateReceiveCount"])}
        emit("received", **facts)
        done += 1
        if crash_after and done == crash_after:
            sys.exit(1)
        time.sleep(0.02)
        emit("processed", **facts)
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
"""


def _run(tmp_path: Path, text: str, host) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    scenario = load_scenario(path, host)
    return run_scenario(scenario, host, RunOptions(out=tmp_path / "run", handle_signals=False))


def test_a_program_that_tells_its_side_is_checked_against_the_journal(tmp_path, host):
    (tmp_path / "w.py").write_text(TELLING_WORKER)
    result = _run(tmp_path, f"""
        version: 1
        name: telling
        seed: 3
        infra: {{consumers: 2, queue: {{visibility_timeout: 2s}}, task: {{restart_delay: 500ms}}}}
        consumer:
          program: {{command: [{sys.executable}, w.py], env: {{CRASH_AFTER: 15, VERSION: 1}}, ready: {{delay: 500ms}}}}
        load: [{{rate: 20/s, duration: 3s, body: '{{"order": {{{{ index }}}}}}'}}]
        actions:
          - {{at: 2s, do: set_consumer, env: {{VERSION: 2, CRASH_AFTER: 0}}}}
        settle: {{timeout: 30s}}
        expect: [lost == 0]
    """, host)
    summary = result.summary  # type: ignore[attr-defined]
    assert result.exit_code == 0, (summary["errors"], summary["expectations"])  # type: ignore[attr-defined]
    ledger = summary["ledger"]
    assert ledger["source"] == "consumer events"
    check = ledger["journal"]["check"]
    assert check["agree"], check["disagreements"]
    assert summary["figures"]["processed"] == summary["figures"]["sent"] == 60
    run_dir = result.run_dir  # type: ignore[attr-defined]
    exits = [e for e in read_jsonl(run_dir / "events.jsonl") if e.get("event") == "task_exited"]
    assert any(e["reason"] == "crashed" and e["exit_code"] == 1 for e in exits)  # exit 1 is a crash, and replaced
    # The roll to VERSION 2: tasks started after it run with the new environment.
    versions = {p.name: p.read_text() for p in (run_dir / "tasks").glob("*.err")}
    assert any("version 2 up" in text for text in versions.values()) and any("version 1 up" in text for text in versions.values())
    assert summary["consumer"]["kind"] == "program" and "w.py" in summary["consumer"]["command"]


def test_a_program_that_never_gets_ready_fails_the_run_saying_why(tmp_path, host):
    (tmp_path / "idle.py").write_text("import time\nprint('booting', flush=True)\ntime.sleep(60)\n")
    result = _run(tmp_path, f"""
        version: 1
        name: never-ready
        consumer:
          program: {{command: [{sys.executable}, idle.py], ready: {{log: accepting work, timeout: 2s}}, stop_grace: 1s}}
        load: [{{burst: 5}}]
    """, host)
    assert result.exit_code == 3  # type: ignore[attr-defined]
    errors = result.summary["errors"]  # type: ignore[attr-defined]
    assert errors and "only 0 of 1 consumer tasks started within 2s (ready: a line of its output containing 'accepting work')" in errors[0]


def test_the_built_in_consumer_takes_a_body_of_yours_and_the_check_holds_through_a_kill(tmp_path, host):
    result = _run(tmp_path, """
        version: 1
        name: own-body
        seed: 4
        infra: {consumers: 2, queue: {visibility_timeout: 2s}, task: {restart_delay: 500ms}}
        consumer: {work_time: 50ms..100ms, batch_size: 5}
        load: [{rate: 30/s, duration: 3s, body: '{"sku": "{{ choice(["a", "b"]) }}", "qty": {{ rand_int(1, 9) }}}'}]
        actions: [{at: 1500ms, do: kill_consumer}]
        settle: {timeout: 30s}
        expect: [lost == 0, processed == sent]
    """, host)
    summary = result.summary  # type: ignore[attr-defined]
    assert result.exit_code == 0, (summary["errors"], summary["expectations"])  # type: ignore[attr-defined]
    assert summary["figures"]["failures"] == 0  # a body not of sqslab's is no problem for it
    check = summary["ledger"]["journal"]["check"]
    assert check["agree"], check["disagreements"]


def test_run_says_which_command_it_will_execute_even_when_quiet(tmp_path, cli):
    """A scenario runs a command on this machine: `run` says so before it does, also with -q."""
    worker = Path(__file__).resolve().parent.parent / "consumer" / "examples" / "python-worker"
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        version: 1
        name: says-command
        infra: {{consumers: 1}}
        consumer: {{program: {{command: [python3, worker.py], cwd: "{worker}", ready: {{log: worker ready}}, stop_grace: 2s}}}}
        load: [{{burst: 3}}]
        settle: {{timeout: 20s}}
        expect: [lost == 0]
        """).lstrip())
    result = cli("run", "-q", "--out", str(tmp_path / "run"), str(path))
    assert result.exit_code == 0, result.output
    assert f"executes: python3 worker.py (in {worker}) as each consumer task" in result.output


def test_what_a_silent_program_did_not_tell_is_unknown_and_an_expectation_on_it_fails(tmp_path, cli):
    """A program that prints no events: the SQS journal gives its fates, but not its
    failures (a failed message just comes back): `failures` is n/a, not a made-up 0."""
    worker = Path(__file__).resolve().parent.parent / "consumer" / "examples" / "python-worker"
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        version: 1
        name: untold
        infra: {{consumers: 1}}
        consumer: {{program: {{command: [python3, worker.py], cwd: "{worker}", ready: {{log: worker ready}}, stop_grace: 2s}}}}
        load: [{{burst: 3}}]
        settle: {{timeout: 20s}}
        expect: [lost == 0, failures == 0]
        """).lstrip())
    result = cli("run", "-q", "--out", str(tmp_path / "run"), str(path))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ledger"]["source"] == "SQS journal" and summary["figures"]["processed_once"] == 3
    assert summary["figures"]["failures"] is None and summary["figures"]["duplicate_skipped"] is None
    failed = [e for e in summary["expectations"] if not e["passed"]]
    assert [e["text"] for e in failed] == ["failures == 0"] and "n/a" in failed[0]["measured"]
    assert result.exit_code == 1
