"""Every scenario in scenarios/ runs to its verdict on the local target, and none loses a
message. These are the README's experiments, run as a user would (about 30-45 s each)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_seed_scenario_passes_and_loses_nothing(path, tmp_path):
    out = tmp_path / "run"
    completed = subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(path), "--out", str(out)],
                               capture_output=True, text=True, timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"]["lost"] == 0, summary["ledger"]["problems"][:5]
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert all(e["passed"] for e in summary["expectations"])
    counts = summary["ledger"]["counts"]
    assert sum(counts.values()) == summary["figures"]["sent"] > 0
