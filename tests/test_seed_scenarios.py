"""Every scenario in scenarios/ runs to its verdict on the local target, and none loses a
message. These are the README's experiments, run as a user would (about 30-45 s each)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
#: backlog_drain is made for a sweep over infra.consumers (README): the test runs its
#: 3-consumer variant (21 s) rather than the 1-consumer default (a minute).
OVERRIDES = {"backlog_drain": ["--set", "infra.consumers=3"]}
pytestmark = [pytest.mark.integration, pytest.mark.slow]


NODE_WORKER = ROOT / "consumer" / "examples" / "node-worker"


#: The framework scenarios' commands and the modules they import (sqslab[test] installs them).
FRAMEWORKS = {"celery_early_ack": ("celery", ("celery", "pycurl")), "dramatiq_worker": ("dramatiq", ("dramatiq", "dramatiq_sqs")),
              "lambda_idempotent": ("python3", ("aws_lambda_powertools",))}


def _needs(path):
    """Skip a scenario whose consumer program cannot run here, saying why."""
    if path.stem in FRAMEWORKS:
        command, modules = FRAMEWORKS[path.stem]
        for module in modules:
            pytest.importorskip(module, reason=f"{path.stem} needs {module}: pip install sqslab[test] installs it")
        if shutil.which(command) is None:
            pytest.skip(f"{path.stem} runs `{command}`, which is not on PATH")
    if path.stem == "own_consumer_node":
        if shutil.which("node") is None:
            pytest.skip("node is not installed: own_consumer_node runs a Node worker (.ci/run installs Debian's nodejs)")
        if not (NODE_WORKER / "node_modules" / "sqs-consumer").is_dir():
            pytest.skip(f"the Node worker's packages are not installed: run `npm ci` in {NODE_WORKER} (.ci/run does)")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_seed_scenario_passes_and_loses_nothing(path, tmp_path):
    _needs(path)
    out = tmp_path / "run"
    completed = subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(path), "--out", str(out),
                                *OVERRIDES.get(path.stem, [])], capture_output=True, text=True, timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"]["lost"] == 0, summary["ledger"]["problems"][:5]
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert all(e["passed"] for e in summary["expectations"])
    counts = summary["ledger"]["counts"]
    assert sum(counts.values()) == summary["figures"]["sent"] > 0
    # The lab checks itself: SQS's journal and the consumers' events tell the same story.
    journal = summary["ledger"]["journal"]
    assert sum(journal["counts"].values()) == summary["figures"]["sent"]
    if summary["ledger"]["source"] == "consumer events":
        assert journal["check"]["agree"], journal["check"]["disagreements"]
    else:  # a program that prints nothing: the journal is the only story, and it is the ledger
        assert journal["counts"] == counts and "check" not in journal
        assert summary["ledger"]["per_task"] and all(p["tasks"] for p in summary["ledger"]["problems"])
        # its deletes, read from the journal as the run goes, are the live `processed` counter
        assert summary["counters"]["processed"] >= summary["figures"]["sent"]
    assert journal["per_task"] and all(t.get("received", 0) >= t.get("deleted", 0) for t in journal["per_task"].values())
    if summary["ledger"].get("ordering"):  # a FIFO scenario: the report explains the order
        report = subprocess.run([sys.executable, "-m", "sqslab", "report", str(out), "--html", "-o", str(tmp_path / "r.html")],
                                capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stderr
        page = (tmp_path / "r.html").read_text()
        assert 'id="ordering"' in page and f"Ordering: {summary['figures']['groups']} message groups" in page
        if summary["figures"]["group_blocked.max"]:
            assert 'id="chart-blocked"' in page and 'id="blocked-groups"' in page
    if summary["ledger"].get("sqs"):  # SQS misbehaved on purpose: the report says what it did
        report = subprocess.run([sys.executable, "-m", "sqslab", "report", str(out), "--html", "-o", str(tmp_path / "s.html")],
                                capture_output=True, text=True, timeout=120)
        assert report.returncode == 0, report.stderr
        assert 'id="sqs"' in (tmp_path / "s.html").read_text()


def test_at_least_once_with_idempotency_skips_every_copy_sqs_added(tmp_path):
    """The README's second run of at_least_once.yaml: with one consumer and idempotency on,
    every delivery SQS added is skipped, none is processed twice."""
    out = tmp_path / "run"
    completed = subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(ROOT / "scenarios" / "at_least_once.yaml"),
                                "--set", "consumer.idempotency=true", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    figures = json.loads((out / "summary.json").read_text())["figures"]
    assert figures["duplicates"] == 0 and figures["lost"] == 0
    assert figures["duplicate_skipped"] == figures["sqs_duplicates"] > 0
