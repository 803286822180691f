"""The lab never falls over: each way it used to (issue 10), reproduced, and what it does now.

One run per directory, bounded actions, bounded load, a full disk, the run-directory name
race, the emulator dying under a run, an AWS profile that does not exist, Ctrl-C from the
first line, big and hostile input. Scale (memory that does not grow with the run) is
measured by benchmarks/bench_scale.py, not here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sqslab.run.runner import RunOptions, run_scenario
from sqslab.rundir import RunDirInUse, claim, load_run, new_run_dir, read_jsonl
from sqslab.scenario.load import check_file, load_scenario_text
from tests.conftest import FIXTURES, ROOT

QUICK = """
version: 1
name: quick
seed: 1
infra: {consumers: 1, queue: {visibility_timeout: 2s}}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{burst: 10}]
expect: [lost == 0, processed == 10]
"""


@pytest.fixture(scope="module")
def plugin_host():
    from sqslab.plugins import load_plugins

    return load_plugins([FIXTURES / "plugins"], entry_points=False)


@pytest.fixture
def hanging(plugin_host):
    """The `hang` action blocks until the test is over, then lets go of its thread."""
    release = sys.modules["sqslab_plugin_mischief"].RELEASE
    release.clear()
    yield
    release.set()


def run(text: str, host, out: Path, **options):
    return run_scenario(load_scenario_text(text, host), host, RunOptions(out=out, handle_signals=False, **options))


def sqslab(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sqslab", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout)


# -- 1. one run per directory -----------------------------------------------------------------------


@pytest.mark.integration
def test_a_directory_that_holds_a_run_is_refused(tmp_path, write):
    path = write(QUICK)
    first = sqslab("run", "-q", "--out", tmp_path / "run", path)
    assert first.returncode == 0, first.stderr
    events_before = (tmp_path / "run" / "events.jsonl").read_text()
    again = sqslab("run", "-q", "--out", tmp_path / "run", path)
    assert again.returncode == 2
    assert f"{tmp_path / 'run'} already holds the run quick of " in again.stderr and "(passed)" in again.stderr
    assert (tmp_path / "run" / "events.jsonl").read_text() == events_before, "nothing of the second run written"
    assert sum(1 for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e.get("event") == "run_started") == 1


def test_a_directory_in_use_by_a_running_sqslab_is_refused(tmp_path):
    held = claim(tmp_path / "run")
    try:
        with pytest.raises(RunDirInUse, match=r"is in use by a run going on now \(sqslab pid \d+"):
            claim(tmp_path / "run")
    finally:
        held.release()
    claim(tmp_path / "run").release()  # free again once released (and empty)


def test_run_directory_names_are_made_atomically(tmp_path):
    """Many runs of one scenario in the same second: every one gets a directory of its own."""
    made: list[Path] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:
            made.append(new_run_dir(tmp_path, "same", now=1_800_000_000.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(made)) == 40


# -- 2. actions are bounded -------------------------------------------------------------------------


@pytest.mark.integration
def test_an_action_that_never_returns_times_out(plugin_host, tmp_path, hanging):
    started = time.monotonic()
    result = run("""
version: 1
name: hang-at
infra: {consumers: 1}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{burst: 5}]
actions: [{at: 500ms, do: hang, timeout: 1s}]
""", plugin_host, tmp_path / "run")
    assert result.exit_code == 3
    assert time.monotonic() - started < 30
    action = result.summary["actions"][0]
    assert action["status"] == "timed out" and "did not finish within its timeout of 1s" in action["error"]
    assert "action hang-1 (hang) failed: did not finish within its timeout of 1s" in result.summary["errors"]


@pytest.mark.integration
def test_an_action_still_running_at_the_end_is_reported_in_every_format(plugin_host, tmp_path, hanging):
    from sqslab.reports.html import render_reports

    result = run("""
version: 1
name: hang-when
infra: {consumers: 1}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{burst: 5}]
actions: [{when: "elapsed >= 0s", do: hang}]
settle: {timeout: 3s}
""", plugin_host, tmp_path / "run")
    assert result.exit_code == 0, result.summary
    assert result.summary["figures"]["duration"] < 10, "a running `when` action holds the run until the settle timeout, no longer"
    action = result.summary["actions"][0]
    assert action["status"] == "still running" and action["still_running"] is True
    warning = "action(s) still running when the run ended (they could no longer act): hang-1 (hang)"
    assert warning in result.summary["warnings"]
    run_dir = load_run(result.run_dir)
    outcomes = {o.format: o for o in render_reports([run_dir], ["text", "markdown", "junit", "json", "html"], plugin_host, ["r"])}
    for name in ("text", "markdown", "junit", "json", "html"):
        assert outcomes[name].ok and "still running" in str(outcomes[name].output), name


# -- 3. load is bounded before it starts ------------------------------------------------------------


@pytest.mark.parametrize("load, expected", [
    ("[{rate: 1000000000/s, duration: 5s}]",
     "load[0].rate: 1000000000 msg/s is above limits.max_rate of 5000/s; to ask for it on purpose, set limits.max_rate: 1000000000/s"),
    ("[{burst: 10000000}]",
     "load: the load sends 10000000 messages in all, above limits.max_messages of 1000000; "
     "to send that many on purpose, set limits.max_messages: 10000000"),
    ("[{burst: 20000, payload_size: 256KiB}]",
     "load: the load sends 4.9 GiB of message bodies, above limits.max_payload_total of 1.0 GiB "
     "(the emulator holds queued bodies in memory); to send that on purpose, set limits.max_payload_total: 5000MiB"),
])
def test_load_beyond_the_limits_is_refused(write, host, load, expected):
    problems = [f"{p.path}: {p.message}" for p in check_file(write(f"version: 1\nname: x\nload: {load}\n"), host)]
    assert expected in problems


def test_limits_are_lifted_on_purpose(write, host):
    text = "version: 1\nname: x\nlimits: {max_messages: 2000000}\nload: [{burst: 1500000, payload_size: 64}]\n"
    assert check_file(write(text), host) == []


def test_the_producer_never_buffers_more_than_its_window():
    """A rate no sender keeps up with: the messages handed over but not sent stay bounded."""
    from sqslab.run.producer import MAX_BATCH_ENTRIES, QUEUE_WINDOW_BATCHES, Producer
    from sqslab.scenario.timeline import Phase

    class Slow:
        def send_message_batch(self, QueueUrl, Entries):
            time.sleep(0.01)
            return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"]} for e in Entries]}

    producer = Producer(Slow(), "q", senders=2)
    stop = threading.Event()
    peak = [0]
    original = producer._schedule

    def watch(phase, t0, run_):
        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], run_.queue.qsize())
                time.sleep(0.005)
        threading.Thread(target=sample, daemon=True).start()
        original(phase, t0, run_)

    producer._schedule = watch
    threading.Timer(1.0, stop.set).start()
    result = producer.run_phase(Phase("flood", "rate", 0.0, duration=60.0, rate=1_000_000.0), stop)
    assert result.interrupted and result.sent > 0
    assert 0 < peak[0] <= QUEUE_WINDOW_BATCHES * MAX_BATCH_ENTRIES * 2


# -- 4. a full disk -----------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_full_disk_is_named_and_leaves_a_readable_directory(tmp_path, write):
    """metrics.jsonl and summary.json's temporary file on /dev/full: every write to them
    fails with ENOSPC, as on a full disk."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").symlink_to("/dev/full")
    (out / "summary.json.tmp").symlink_to("/dev/full")
    result = sqslab("run", "-q", "--out", out, write(QUICK))
    assert result.returncode == 3, result.stderr
    assert f"no space left in {out}" in result.stderr and "Traceback" not in result.stderr
    assert not (out / "summary.json.tmp").exists() and not (out / "summary.json").exists()
    run_dir = load_run(out)
    assert run_dir.summary["status"] == "incomplete" and any(e.get("event") == "run_started" for e in run_dir.events())


# -- 6. the emulator dying under a run -----------------------------------------------------------------


@pytest.mark.integration
def test_the_emulators_death_is_noticed_at_once(plugin_host, tmp_path):
    result = run("""
version: 1
name: emulator-dies
infra: {consumers: 1}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{rate: 20/s, duration: 30s}]
actions: [{at: 2s, do: kill_emulator}]
""", plugin_host, tmp_path / "run")
    assert result.exit_code == 3
    assert any("the SQS emulator exited (killed by SIGKILL)" in e for e in result.summary["errors"]), result.summary["errors"]
    events = list(read_jsonl(result.run_dir / "events.jsonl"))
    killed_at = next(e["t"] for e in events if e.get("event") == "emulator_killed")
    last_send = max(e["t"] for e in events if e.get("event") == "sent")
    ended = next(e["t"] for e in events if e.get("event") == "run_ended")
    assert last_send < killed_at + 1.0, "the run stops sending within a second"
    assert ended < killed_at + 20, "and ends, instead of sending to a dead endpoint for the rest of the load"
    from sqslab.reports.formats import render_text

    text = render_text(load_run(result.run_dir), {})
    sent = sum(1 for e in events if e.get("event") == "sent")
    assert f"so far (no ledger: the run ended before it): sent {sent}," in text, text
    assert "action kill_emulator-1 (kill_emulator): done" in text, "the report of a cut-short run keeps what it got through"


# -- 7. an AWS profile that does not exist --------------------------------------------------------------


@pytest.mark.integration
def test_a_local_run_ignores_an_unusable_aws_profile(tmp_path, write):
    result = sqslab("run", "-q", "--out", tmp_path / "run", write(QUICK), env={"AWS_PROFILE": "no-such-profile",
                                                                                "AWS_DEFAULT_PROFILE": "no-such-profile"})
    assert result.returncode == 0, result.stderr
    assert "ProfileNotFound" not in result.stderr and "Traceback" not in result.stderr


# -- 8. Ctrl-C and SIGTERM from the first line ----------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_early_interrupt_exits_130_without_a_traceback(tmp_path, sig):
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\nname: x\nload:\n" + "".join(f"  - {{burst: {i + 1}}}\n" for i in range(9000)))
    # `python -m sqslab`, but saying when its main() is about to run: a signal while Python
    # itself starts (imports its site module, then sqslab.__main__) comes before sqslab's
    # first line, and on a loaded machine that takes longer than the delays below.
    launch = "import sys, sqslab.__main__ as m; sys.stdout.write('.'); sys.stdout.flush(); m.main()"
    for delay in (0.1, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", launch, "validate", str(big)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.read(1) == "."
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "Traceback" not in err and "Aborted!" not in err, (delay, proc.returncode, err)


# -- 9, 10. big and hostile input ---------------------------------------------------------------------------


def test_a_big_file_is_refused_at_once_with_the_limit(tmp_path, host):
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:
        handle.write("version: 1\nname: x\nload:\n")
        for i in range(1_100_000):
            handle.write(f"  - {{burst: {i % 9 + 1}}}\n")
    started = time.monotonic()
    problems = check_file(big, host)
    assert time.monotonic() - started < 1.0
    assert [p.message for p in problems] == [
        "the file is larger than 256 KiB, the most a scenario file may be (scenarios are a few KB); "
        "split it, or generate the load with `count`/`rate` phases instead of listing it"]


def test_an_alias_bomb_given_through_set_is_refused_at_once(write, host):
    from sqslab.scenario.load import ScenarioError, load_scenario

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = "{" + ", ".join(levels) + "}"
    started = time.monotonic()
    with pytest.raises(ScenarioError) as info:
        load_scenario(write("version: 1\nname: x\n"), host, [f"description={bomb}"])
    assert time.monotonic() - started < 1.0
    assert info.value.problems[0].message.startswith("the document has more than 100000 values (aliases expanding?)")


def test_a_huge_set_value_is_refused(write, host):
    from sqslab.scenario.load import ScenarioError, load_scenario

    with pytest.raises(ScenarioError) as info:
        load_scenario(write("version: 1\nname: x\n"), host, ["description=" + "x" * 300_000])
    assert "larger than 256 KiB" in info.value.problems[0].message
    assert len(info.value.problems[0].file) <= 90, "the value is not repeated in the message"


def test_an_unsafe_yaml_tag_is_named(write, host):
    problems = check_file(write("version: 1\nname: x\nseed: !!python/object/apply:os.system [echo hi]\n"), host)
    assert [f"{p.line}:{p.col}: {p.path}: {p.message}" for p in problems] == [
        "3:7: seed: the YAML tag !!python/object/apply:os.system is not allowed: "
        "a scenario is plain data (text, numbers, booleans, lists and mappings)"]
    custom = check_file(write("version: 1\nname: !shout x\n"), host)
    assert "the YAML tag !shout is not allowed" in custom[0].message


def test_every_limit_hit_says_how_to_lift_it(write, host):
    """The messages name the limit and the key or flag that raises it."""
    problems = check_file(write("version: 1\nname: x\ninfra: {consumers: 9}\nload: [{burst: 2000000}]\n"), host)
    messages = " | ".join(p.message for p in problems)
    assert "set infra.max_consumers: 9" in messages and "set limits.max_messages: 2000000" in messages
    assert json.loads(json.dumps(messages))  # plain text, nothing that needs escaping


@pytest.mark.integration
def test_a_run_directory_deleted_mid_run_stops_the_run_saying_so(tmp_path, write):
    """Someone deletes the run directory while the run goes on: it was an internal error
    (exit 3 with a traceback of a failed traceback write). The run stops, says why, and
    leaves no process behind."""
    import shutil

    out = tmp_path / "run"
    path = write(QUICK.replace("load: [{burst: 10}]", "load: [{rate: 20/s, duration: 8s}]"))
    proc = subprocess.Popen([sys.executable, "-m", "sqslab", "run", "-q", "--out", str(out), str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    shutil.rmtree(out)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert f"the run directory {out} was deleted while the run went on" in stdout + stderr
    assert "Traceback" not in stderr and "internal error" not in stdout + stderr
