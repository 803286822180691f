"""`sqslab run` end to end on the local target: the real emulator, real consumer
processes, runs of a few seconds. Each test asserts what a user would check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqslab.run.runner import RunOptions, run_scenario
from sqslab.rundir import load_run, read_jsonl
from sqslab.scenario.load import load_scenario_text
from tests.conftest import FIXTURES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plugin_host():
    from sqslab.plugins import load_plugins

    return load_plugins([FIXTURES / "plugins"], entry_points=False)


def run(text: str, host, tmp_path: Path, **options):
    scenario = load_scenario_text(text, host)
    return run_scenario(scenario, host, RunOptions(out=tmp_path / "run", handle_signals=False, **options))


def events(result, kind=None, source=None):
    return [e for e in read_jsonl(result.run_dir / "events.jsonl")
            if (kind is None or e.get("event") == kind) and (source is None or e.get("source") == source)]


def test_kill_and_scale_change_the_task_count(plugin_host, tmp_path):
    result = run("""
version: 1
name: kill-scale
seed: 1
sample_interval: 250ms
infra: {consumers: 2, queue: {visibility_timeout: 2s}, task: {restart_delay: 1s}}
consumer: {work_time: 10ms..30ms}
load: [{rate: 20/s, duration: 6s}]
actions:
  - {at: 1500ms, do: scale, to: 3}
  - {at: 3500ms, do: kill_consumer, count: 1}
expect: [lost == 0, tasks.started == 4]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary
    samples = load_run(result.run_dir).metrics()
    assert {s["tasks.desired"] for s in samples if s["t"] < 1.4} == {2}
    assert {s["tasks.desired"] for s in samples if s["t"] > 1.6} == {3}
    assert any(s["tasks.running"] == 3 for s in samples if 2.0 < s["t"] < 3.5)
    exits = [e for e in events(result, "task_exited") if e["reason"] == "killed"]
    assert len(exits) == 1
    # the killed task is replaced after the restart delay, and 3 run again
    restarted = [e for e in events(result, "task_started") if (e["t"] or 0) > 3.5]
    assert len(restarted) == 1 and restarted[0]["t"] >= exits[0]["t"] + 0.9
    assert samples[-1]["tasks.running"] == 3


def test_crash_knob_keeps_desired_count_running(plugin_host, tmp_path):
    result = run("""
version: 1
name: crashes
seed: 2
sample_interval: 250ms
infra: {consumers: 2, queue: {visibility_timeout: 1s}, task: {restart_delay: 500ms}}
consumer: {work_time: 10ms..20ms, crash_rate: 0.05, batch_size: 1}
load: [{count: 120, duration: 4s}]
settle: {timeout: 30s}
expect: [lost == 0, crashes > 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    figures = result.summary["figures"]
    crashed = [e for e in events(result, "task_exited") if e["reason"] == "crashed"]
    assert len(crashed) == figures["crashes"] > 0
    # every crashed task was replaced: 2 at the start plus one per crash
    assert figures["tasks.started"] == 2 + len(crashed)
    samples = load_run(result.run_dir).metrics()
    assert samples[-1]["tasks.running"] == 2
    # messages held by a crashing task came back and were processed later
    assert figures["redeliveries"] >= len(crashed)


def test_visibility_overrun_redeliveries_are_counted(plugin_host, tmp_path):
    result = run("""
version: 1
name: overrun
seed: 3
sample_interval: 250ms
infra: {consumers: 2, queue: {visibility_timeout: 1s}, dlq: {max_receive_count: 10}}
consumer: {work_time: 1500ms, batch_size: 1}
load: [{count: 4, duration: 1s}]
settle: {timeout: 40s}
expect: [lost == 0, redeliveries > 0, duplicates > 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    ledger = result.summary["ledger"]
    duplicates = [p for p in ledger["problems"] if p["fate"] == "duplicate"]
    assert duplicates and all(p["processed"] >= 2 and p["receives"] >= 2 for p in duplicates)
    processed = events(result, "processed", "consumer")
    assert len(processed) == 4 + sum(p["processed"] - 1 for p in duplicates)


def test_errors_fill_the_dlq_after_max_receive_count(plugin_host, tmp_path):
    result = run("""
version: 1
name: dlq
seed: 4
sample_interval: 250ms
infra: {consumers: 3, queue: {visibility_timeout: 1s}, dlq: {max_receive_count: 3}}
consumer: {work_time: 5ms..10ms, error_rate: 0.5}
load: [{burst: 200}]
settle: {timeout: 40s}
expect: [lost == 0, dead_lettered > 0, dlq.messages == dead_lettered]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    figures, ledger = result.summary["figures"], result.summary["ledger"]
    dead = [p for p in ledger["problems"] if p["fate"] == "dead_lettered"]
    assert len(dead) == figures["dead_lettered"]
    # each failed exactly max_receive_count times, then moved on the next receive
    assert all(sum(p["failures"].values()) == 3 and p["receive_count"] == 3 for p in dead), dead[:3]
    assert figures["processed"] + figures["dead_lettered"] == figures["sent"] == 200
    # about 0.5^3 = 12.5 % of 200 end in the DLQ
    assert 8 <= figures["dead_lettered"] <= 45


@pytest.mark.parametrize("release", [False, True])
def test_scale_in_leaves_or_releases_unstarted_messages(plugin_host, tmp_path, release):
    # The backlog is there before the first task starts, so its first receive takes all 10.
    result = run(f"""
version: 1
name: scale-in
sample_interval: 250ms
infra: {{consumers: 0, queue: {{visibility_timeout: 8s}}}}
consumer: {{work_time: 200ms, release_on_stop: {str(release).lower()}}}
load: [{{burst: 10}}]
actions:
  - {{at: 500ms, do: scale, to: 1}}
  - {{at: 2s, do: scale, to: 0}}
  - {{at: 3s, do: scale, to: 1}}
settle: {{timeout: 30s}}
expect: [lost == 0, processed == 10]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    left = events(result, "released" if release else "abandoned", "consumer")
    assert len(left) >= 3
    first_start = min(e["t"] for e in events(result, "started", "consumer"))
    processed = {e["id"]: e["t"] for e in events(result, "processed", "consumer")}
    back = [processed[e["id"]] for e in left]
    if release:  # the next task takes them at once
        assert max(back) < first_start + 8
    else:  # they wait out the 8 s visibility timeout from the first receive
        assert min(back) >= first_start + 8
    assert result.summary["figures"]["redeliveries"] == len(left)


def test_batch_deletes_turn_crashes_into_duplicates(plugin_host, tmp_path):
    result = run("""
version: 1
name: batch-delete
seed: 8
sample_interval: 250ms
infra: {consumers: 2, queue: {visibility_timeout: 1s}, dlq: {max_receive_count: 10}, task: {restart_delay: 300ms}}
consumer: {work_time: 5ms..10ms, crash_rate: 0.05, delete: batch}
load: [{burst: 200}]
settle: {timeout: 40s}
expect: [lost == 0, crashes > 0, duplicates > 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    duplicates = [p for p in result.summary["ledger"]["problems"] if p["fate"] == "duplicate"]
    # processed in a batch whose task then crashed before the batch delete
    assert all(p["processed"] >= 2 for p in duplicates)


def test_injected_loss_is_reported_as_lost(plugin_host, tmp_path):
    result = run("""
version: 1
name: loss
seed: 5
sample_interval: 250ms
infra: {consumers: 0}
load: [{burst: 30}]
actions:
  - {after: burst-1, do: steal_messages, count: 7}
  - {after: burst-1 + 1s, do: scale, to: 2}
settle: {timeout: 20s}
expect: [lost == 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 1
    assert result.summary["figures"]["lost"] == 7
    stolen = events(result, "stolen")[0]["ids"]
    lost = sorted(p["id"] for p in result.summary["ledger"]["problems"] if p["fate"] == "lost")
    assert lost == sorted(stolen)
    assert "7 message(s) LOST" in result.summary["warnings"][0]
    assert result.summary["expectations"] == [{"text": "lost == 0", "passed": False, "measured": "lost = 7 (23.3%)"}]


def test_failed_action_exits_3_and_still_tears_down(plugin_host, tmp_path):
    result = run("""
version: 1
name: failing-action
sample_interval: 250ms
infra: {consumers: 1}
load: [{rate: 10/s, duration: 5s}]
actions: [{at: 1s, do: explode}]
settle: {timeout: 20s}
expect: [lost == 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 3
    assert result.summary["status"] == "error"
    assert result.summary["errors"] == ["action explode-1 (explode) failed: boom: this action always fails"]
    # the load stopped early, the run still settled and accounted for every message
    assert result.summary["figures"]["sent"] < 50 and result.summary["figures"]["lost"] == 0
    pids = [e["pid"] for e in events(result, "task_started")]
    assert pids and not any(_alive(pid) for pid in pids)


def test_continue_on_error_keeps_the_run_going(plugin_host, tmp_path):
    result = run("""
version: 1
name: tolerant
sample_interval: 250ms
infra: {consumers: 1}
load: [{rate: 10/s, duration: 2s}]
actions: [{at: 500ms, do: explode, continue_on_error: true}]
expect: [actions.failed == 1, sent == 20]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary
    assert [a["status"] for a in result.summary["actions"]] == ["failed"]


def test_when_and_wait_actions(plugin_host, tmp_path):
    result = run("""
version: 1
name: when-wait
sample_interval: 200ms
infra: {consumers: 0}
load: [{burst: 50}, {pause: 3s}]
actions:
  - {name: backlog, when: "queue.visible >= 50", do: scale, to: 2}
  - {name: drained, after: backlog, do: wait, until: "queue.visible == 0 and queue.in_flight == 0", timeout: 20s}
  - {after: drained, do: scale, to: 1}
expect: [lost == 0, processed == 50]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary
    records = {a["name"]: a for a in result.summary["actions"]}
    assert [records[n]["status"] for n in ("backlog", "drained", "scale-3")] == ["done", "done", "done"]
    assert records["drained"]["started"] >= records["backlog"]["started"]
    assert records["scale-3"]["started"] >= records["drained"]["ended"]


def test_sigint_exits_130_quickly_leaving_no_process(tmp_path):
    scenario = tmp_path / "long.yaml"
    scenario.write_text("version: 1\nname: long\nsample_interval: 250ms\ninfra: {consumers: 2}\n"
                        "consumer: {work_time: 2s}\nload: [{rate: 5/s, duration: 60s}]\n")
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "sqslab", "run", "-q", str(scenario), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(read_jsonl(out / "metrics.jsonl"))) < 6:
        time.sleep(0.2)
    pids = [e["pid"] for e in read_jsonl(out / "events.jsonl") if e.get("event") == "task_started"]
    assert len(pids) >= 2
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    elapsed = time.monotonic() - started
    assert process.returncode == 130, stderr
    assert elapsed < 5, elapsed
    assert not any(_alive(pid) for pid in pids)
    run = load_run(out)
    assert run.summary["status"] == "interrupted"
    assert run.summary["counters"]["sent"] > 0
    assert not (out / "ledger.sqlite").exists(), "no half-fed ledger is left to be mistaken for one"
    assert any(e.get("event") == "emulator_stopped" for e in run.events())


def test_cli_run_json_and_exit_code(tmp_path, cli):
    scenario = tmp_path / "quick.yaml"
    scenario.write_text("version: 1\nname: quick\ninfra: {consumers: 1}\nload: [{burst: 20}]\n"
                        "expect: [processed == 20, duplicates > 0]\n")
    result = cli("run", "-q", "--json", scenario, "--out", tmp_path / "run")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert [e["passed"] for e in summary["expectations"]] == [True, False]
    assert "FAIL  duplicates > 0" in result.stderr
    for name in ("scenario.yaml", "resolved.json", "events.jsonl", "metrics.jsonl", "summary.json", "tasks/task-1.out"):
        assert (tmp_path / "run" / name).exists(), name


def test_no_secrets_in_the_run_directory(tmp_path):
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": "hunter2-very-secret", "AWS_ACCESS_KEY_ID": "AKIAREALKEY123"}
    scenario = tmp_path / "s.yaml"
    scenario.write_text("version: 1\nname: secret\ninfra: {consumers: 1}\nload: [{burst: 5}]\n")
    subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(scenario), "--out", str(tmp_path / "run")],
                   env=env, check=True, capture_output=True)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "hunter2" not in text and "AKIAREALKEY123" not in text, path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes; check its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sweep_runs_each_variant_into_one_directory(tmp_path, cli):
    scenario = tmp_path / "sweep.yaml"
    scenario.write_text("version: 1\nname: sweepy\ninfra: {consumers: 1}\nload: [{burst: 30}]\nexpect: [lost == 0]\n")
    result = cli("sweep", "-q", scenario, "--set", "infra.consumers=1,2", "--out", tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    sweep = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [r["variant"] for r in sweep["runs"]] == [["infra.consumers=1"], ["infra.consumers=2"]]
    assert [r["status"] for r in sweep["runs"]] == ["passed", "passed"]
    second = load_run(Path(sweep["runs"][1]["run_dir"]))
    assert second.summary["figures"]["tasks.started"] == 2
    assert Path(sweep["runs"][0]["run_dir"]).parent == tmp_path / "sweep"


def test_sweep_validates_every_variant_first(tmp_path, cli):
    scenario = tmp_path / "sweep.yaml"
    scenario.write_text("version: 1\nname: sweepy\nload: [{burst: 3}]\n")
    result = cli("sweep", "-q", scenario, "--set", "infra.consumers=1,9", "--out", tmp_path / "sweep")
    assert result.exit_code == 2
    assert "--set infra.consumers=9:1:1: infra.consumers: 9 tasks is above the cost guard of 5" in result.stderr
    assert not (tmp_path / "sweep").exists()


@pytest.mark.terraform
@pytest.mark.slow
@pytest.mark.xdist_group("terraform-apply")  # one at a time: each runs terraform and its provider flat out
def test_provision_with_terraform_runs_on_the_stack_it_applied(tmp_path, cli):
    """`--provision terraform`: the project's stack applied to the emulator, then the
    experiment; a FIFO scenario, so the stack's FIFO variables are applied too."""
    from tests.test_terraform import MIRROR, TERRAFORM

    if TERRAFORM is None or MIRROR is None:
        pytest.skip("terraform or a hashicorp/aws 5.x filesystem mirror is missing (set SQSLAB_TF_PLUGIN_MIRROR)")
    scenario = tmp_path / "tf.yaml"
    scenario.write_text("version: 1\nname: tf-provisioned\n"
                        "infra: {consumers: 2, queue: {visibility_timeout: 7s, fifo: true, high_throughput: true}, dlq: {max_receive_count: 4}}\n"
                        "load: [{burst: 40, groups: 4}]\nexpect: [lost == 0, processed == 40, groups == 4, order_violations == 0]\n")
    out = tmp_path / "run"
    result = cli("run", "-q", scenario, "--provision", "terraform", "--out", out)
    assert result.exit_code == 0, result.output
    provisioned = next(e for e in load_run(out).events() if e.get("event") == "provisioned")
    assert provisioned["queue_url"].endswith("/tf-provisioned-queue.fifo") and provisioned["dlq_url"].endswith("/tf-provisioned-dlq.fifo")
    lines = [e["line"] for e in load_run(out).events() if e.get("event") == "terraform"]
    assert any("Apply complete!" in line for line in lines) and any("Destroy complete!" in line for line in lines)


def test_own_endpoint_audit_leaves_queue_as_it_was_and_queues_go(plugin_host, tmp_path, emulator, sqs):
    """--endpoint-url: a run on your own SQS-compatible service. Messages still queued at the
    end are counted by id, made visible again, and the run's queues are deleted."""
    before = set(sqs.list_queues().get("QueueUrls", []))
    result = run("""
version: 1
name: own-endpoint
sample_interval: 250ms
infra: {consumers: 0}
load: [{burst: 12}]
settle: {until: none}
expect: [still_queued == 12, lost == 0]
""", plugin_host, tmp_path, target_options={"endpoint_url": emulator.endpoint_url})
    assert result.exit_code == 0, result.summary["expectations"]
    assert result.summary["environment"]["endpoint_url"] == emulator.endpoint_url
    deleted = [e["queue_url"] for e in events(result, "queue_deleted")]
    assert len(deleted) == 2 and set(sqs.list_queues().get("QueueUrls", [])) == before


def test_reading_ids_for_the_audit_leaves_messages_visible(sqs):
    from sqslab.run.settle import read_ids

    url = sqs.create_queue(QueueName="audit-read")["QueueUrl"]
    for i in range(13):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": f"m{i}"}))
    sqs.send_message(QueueUrl=url, MessageBody="not ours")
    ids = read_ids(sqs, url)
    assert ids - {i for i in ids if i.startswith("?")} == {f"m{i}" for i in range(13)} and len(ids) == 14
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("14", "0")


# -- targets through one door ---------------------------------------------------------------------------

TWIN = """
version: 1
name: twin
seed: 1
infra: {consumers: 1, queue: {visibility_timeout: 2s}}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{burst: 20}]
expect: [lost == 0, processed == 20]
"""


def test_a_plugin_target_runs_end_to_end_with_its_own_option(tmp_path, cli, write):
    """A target from a plugin directory: chosen with --target, its option on the command
    line, its plan section in `sqslab plan`; the CLI knows nothing of it."""
    from tests.conftest import FIXTURES

    path = write(TWIN)
    targets = FIXTURES / "targets"
    result = cli("run", "--plugins-dir", targets, "--target", "twin", "--label", "hello", "-q", "--out", tmp_path / "run", path)
    assert result.exit_code == 0, result.output
    recorded = [e for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e.get("event") == "twin_label"]
    assert [e["label"] for e in recorded] == ["hello"]
    plan = cli("plan", "--plugins-dir", targets, "--target", "twin", "--label", "hi", path)
    assert plan.exit_code == 0 and "twin target:\nlabel hi" in plan.stdout
    misplaced = cli("plan", "--plugins-dir", targets, "--label", "hi", path)
    assert misplaced.exit_code == 2 and "--label is for --target twin, not --target local" in misplaced.stderr
    unknown = cli("plan", "--plugins-dir", targets, "--target", "twins", path)
    assert unknown.exit_code == 2 and "did you mean 'twin'?" in unknown.stderr
    listed = cli("plugins", "--plugins-dir", targets)
    assert "twin" in listed.stdout and "--label: A label the twin records." in listed.stdout


EXAMPLE_ACTION = """\
version: 1
name: example-action
infra: {consumers: 1, queue: {visibility_timeout: 2s}}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{rate: 20/s, duration: 2s}]
actions:
  - {name: longer, at: 500ms, do: set_visibility_timeout, to: 7s}
  - {name: dlq-too, at: 600ms, do: set_visibility_timeout, to: 9s, queue: dlq}
expect: [lost == 0]
"""


def test_the_example_action_plugin_changes_the_visibility_timeout(tmp_path, cli, write):
    """plugins/visibility_timeout.py, as a user would load it: validated parameters (a
    misspelled one is refused with a suggestion), then the queue's attribute changed."""
    from tests.conftest import ROOT

    plugins = ROOT / "plugins"
    bad = cli("validate", "--plugins-dir", plugins, write(EXAMPLE_ACTION.replace("to: 7s", "too: 7s")))
    assert bad.exit_code == 2 and "did you mean 'to'?" in bad.stdout
    result = cli("run", "--plugins-dir", plugins, "-q", "--out", tmp_path / "run", write(EXAMPLE_ACTION))
    assert result.exit_code == 0, result.output
    changed = [e for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e.get("event") == "visibility_timeout_set"]
    assert [(e["queue"], e["from"], e["to"]) for e in changed] == [("queue", 2, 7), ("dlq", 30, 9)]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {a["name"]: a["result"] for a in summary["actions"]} == {"longer": "queue visibility timeout 2s -> 7s",
                                                                     "dlq-too": "dlq visibility timeout 30s -> 9s"}


FAULT_WINDOW = """\
version: 1
name: fault-window
seed: 3
sample_interval: 200ms
infra: {consumers: 1, queue: {visibility_timeout: 2s}}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{rate: 20/s, duration: 3s}]
actions:
  - {name: outage, at: 1s, do: sqs_fault, api: "*", error: unavailable, for: 1500ms}
expect: [lost == 0, send_failed <= 10%]
"""


def test_a_timed_sqs_fault_hits_the_system_in_its_window_and_never_the_lab(tmp_path, cli, write):
    """Every SQS call fails with 503 from 1 s to 2.5 s (longer than the consumer's 1 s long
    poll, so a receive starts within it however the machine is loaded): the producer's and
    the consumer's calls are hit (and retried), only within the window; sqslab's own
    readings are exempt, so the samples go on every 200 ms through the outage."""
    result = cli("run", "-q", "--out", tmp_path / "run", write(FAULT_WINDOW))
    assert result.exit_code == 0, result.output
    events = list(read_jsonl(tmp_path / "run" / "events.jsonl"))
    faults = [e for e in events if e.get("event") == "sqs_fault"]
    assert faults and all(e["source"] == "sqs" and e["kind"] == "unavailable" and e["rule"] == "action outage" for e in faults)
    assert all(0.9 <= e["t"] <= 2.7 for e in faults), sorted(e["t"] for e in faults)
    apis = {e["api"] for e in faults}
    assert {"SendMessageBatch", "ReceiveMessage"} <= apis and "GetQueueAttributes" not in apis
    samples = [m["t"] for m in read_jsonl(tmp_path / "run" / "metrics.jsonl") if 1.0 <= m.get("t", -1) <= 2.0]
    assert len(samples) >= 4, samples
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["figures"]["faults.injected"] == len(faults) and summary["figures"]["lost"] == 0


def test_sqs_behaviour_needs_the_embedded_emulator(tmp_path, cli, write, emulator):
    text = FAULT_WINDOW.replace("expect:", "sqs: {behavior: aws}\nexpect:")
    result = cli("run", "-q", "--endpoint-url", emulator.endpoint_url, "--out", tmp_path / "run", write(text))
    assert result.exit_code == 3
    assert "needs the embedded emulator: run without --endpoint-url" in " ".join(json.loads((tmp_path / "run" / "summary.json").read_text())["errors"])


# -- no thread outlives its run, nothing touches a torn-down target -----------------------------------


class _Calls:
    """Target method calls, and those made after teardown."""

    def __init__(self) -> None:
        self.after_teardown: list[str] = []
        self.torn_down = False


def _recording_target(calls: _Calls, fail_reads_after: float | None = None) -> type:
    import time as _time

    from sqslab.targets.local import LocalTarget

    class Recording(LocalTarget):
        """The local target, noting every call after teardown; its queue reads can fail
        from a time on (a broken endpoint while settling)."""

        def __getattribute__(self, name: str) -> object:
            attribute = object.__getattribute__(self, name)
            if callable(attribute) and not name.startswith("_") and calls.torn_down:
                calls.after_teardown.append(name)
            return attribute

        def provision(self, scenario: object, run_dir: Path) -> object:
            self._born = _time.monotonic()
            return super().provision(scenario, run_dir)

        def sqs_client(self, observer: bool = False) -> object:
            client = super().sqs_client(observer=observer)
            if fail_reads_after is None or not observer:  # the lab's own readings fail
                return client
            born = self._born

            class Failing:
                def __getattr__(self, name: str) -> object:
                    attribute = getattr(client, name)
                    if name == "get_queue_attributes" and _time.monotonic() - born > fail_reads_after:
                        def fail(**kwargs: object) -> object:
                            raise ConnectionError("the endpoint went away")
                        return fail
                    return attribute

            return Failing()

        def queue_states(self, queue_urls: list[str], messages: bool = False) -> object:
            if fail_reads_after is not None and _time.monotonic() - self._born > fail_reads_after:
                raise ConnectionError("the endpoint went away")  # the lab's exact view fails too
            return super().queue_states(queue_urls, messages)

        def teardown(self) -> None:
            super().teardown()
            calls.torn_down = True

    return Recording


def _sqslab_threads(wait: float = 1.0) -> list[str]:
    import threading

    deadline = time.monotonic() + wait
    while True:
        alive = sorted(t.name for t in threading.enumerate() if t.name.startswith("sqslab-"))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def test_a_failed_run_leaves_no_thread_and_no_call_after_teardown(tmp_path):
    """The queue cannot be read while settling: exit 3, and one second later no sampler, no
    `when` action thread, nothing calling the target."""
    from sqslab.hookspecs import hookimpl
    from sqslab.plugins import load_plugins

    calls = _Calls()
    target = _recording_target(calls, fail_reads_after=0.0)

    class Plugin:
        @staticmethod
        @hookimpl
        def register_targets(register):
            register("recording", target)

    host = load_plugins(entry_points=False, extra=(Plugin,))
    scenario = load_scenario_text("""
version: 1
name: broken-reads
infra: {consumers: 1}
consumer: {work_time: 5ms, wait_time: 1s}
sample_interval: 100ms
load: [{burst: 5}]
actions: [{when: "queue.visible > 100000", do: scale, to: 2}]
settle: {timeout: 5s}
""", host)
    result = run_scenario(scenario, host, RunOptions(target="recording", out=tmp_path / "run", handle_signals=False))
    assert result.exit_code == 3
    assert "cannot read the queue while settling" in " ".join(result.summary["errors"])
    assert _sqslab_threads() == []
    time.sleep(1.0)
    assert calls.torn_down and calls.after_teardown == []


def test_a_sweep_of_three_runs_leaves_no_thread(tmp_path, cli, write):
    path = write(TWIN.replace("burst: 20", "burst: 5").replace("processed == 20", "processed == 5"))
    result = cli("sweep", path, "--set", "infra.consumers=1,2,1", "-q", "--out", tmp_path / "sweep")
    assert result.exit_code == 0, result.output
    assert len(json.loads((tmp_path / "sweep" / "sweep.json").read_text())["runs"]) == 3
    assert _sqslab_threads() == []


def test_duplicate_sends_on_a_standard_queue_are_both_delivered(plugin_host, tmp_path):
    """A producer's retries on a standard queue: each copy is delivered and processed, so
    each such id is processed twice, and the figures say it was the producer's doing."""
    result = run("""
version: 1
name: retries-standard
seed: 3
infra: {consumers: 2}
consumer: {work_time: 5ms, wait_time: 1s}
load: [{burst: 200, duplicate_sends: 10%}]
expect: [lost == 0, duplicate_sends > 0, producer_duplicates == duplicate_sends, duplicates == producer_duplicates,
         dedup_dropped == 0]
""", plugin_host, tmp_path)
    assert result.exit_code == 0, result.summary["expectations"]
    assert result.summary["figures"]["sent"] == 200, "an id sent twice is one message"
    assert sum(1 for e in events(result, "sent") if e.get("duplicate_send")) == result.summary["figures"]["duplicate_sends"]
