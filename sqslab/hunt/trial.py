"""One variation tried: written as a scenario file, validated like one, run with a hard
deadline, its expectations and the lab's invariants read from its run directory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqslab.hunt.generate import Variation, apply
from sqslab.hunt.invariants import Broken, check_run
from sqslab.run.runner import Runner, RunOptions
from sqslab.scenario.load import ScenarioError, dump_yaml, load_scenario
from sqslab.scenario.model import Scenario
from sqslab.scenario.timeline import plan

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost

__all__ = ["Trial", "planned_seconds", "prepare_trial", "run_prepared", "signature", "write_variation"]


@dataclass
class Trial:
    """A variation and what became of it."""

    index: int
    stage: str  # search | shrink | confirm
    variation: Variation
    path: Path  # the scenario file as run
    exit_code: int | None = None  # None: not run (invalid)
    status: str = "invalid"
    failed: list[str] = field(default_factory=list)  # expectations that failed
    broken: list[Broken] = field(default_factory=list)  # invariants it broke
    problems: list[str] = field(default_factory=list)  # why the variation is invalid (a generator bug)
    duration: float = 0.0  # wall seconds
    run_dir: Path | None = None
    cut: bool = False  # stopped by the budget's deadline
    planned: float = 0.0  # seconds of planned load and actions

    @property
    def finding(self) -> bool:
        """It failed its expectations or broke an invariant (and was not cut short by the budget)."""
        return not self.cut and self.exit_code is not None and (bool(self.broken) or self.exit_code == 1)

    def as_dict(self) -> dict[str, Any]:
        """The trial as hunt.json tells it."""
        return {"index": self.index, "stage": self.stage, "changes": [c.as_dict() for c in self.variation],
                "texts": [c.text for c in self.variation], "scenario": str(self.path), "exit_code": self.exit_code,
                "status": self.status, "failed_expectations": self.failed, "invariants": [b.as_dict() for b in self.broken],
                "problems": self.problems, "duration": round(self.duration, 2), "planned": round(self.planned, 2),
                "run_dir": str(self.run_dir) if self.run_dir else None, "cut_by_budget": self.cut}


def signature(trial: Trial) -> tuple[str, frozenset[str]]:
    """What kind of failure a trial shows: the invariants it broke, else the expectations
    that failed. A shrunk variation must fail the same way."""
    if trial.broken:
        return "invariant", frozenset(b.name for b in trial.broken)
    return "expectations", frozenset(trial.failed)


def write_variation(base: dict[str, Any], variation: Variation, path: Path, header: str = "") -> dict[str, Any]:
    """Write the varied scenario to path (after a comment header); return its data."""
    data = apply(base, variation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + dump_yaml(data), encoding="utf-8")
    return data


def prepare_trial(trial: Trial, base: dict[str, Any], host: PluginHost) -> Scenario | None:
    """Write the variation to trial.path and validate it like a file: its Scenario, or
    None (the problems recorded) when it is invalid."""
    write_variation(base, trial.variation, trial.path)
    try:
        scenario = load_scenario(trial.path, host)
    except ScenarioError as exc:
        trial.problems = [str(p) for p in exc.problems]
        return None
    trial.planned = planned_seconds(scenario)
    return scenario


def planned_seconds(scenario: Scenario) -> float:
    """Seconds from t0 to the last planned phase or action."""
    return max([r.end or r.start or 0.0 for r in plan(scenario)] + [0.0])


def run_prepared(trial: Trial, scenario: Scenario, host: PluginHost, run_dir: Path, deadline: float) -> Trial:
    """Run a prepared trial into run_dir, stopping it at `deadline` (time.monotonic())."""
    started = time.monotonic()
    runner = Runner(scenario, host, RunOptions(out=run_dir, handle_signals=threading.current_thread() is threading.main_thread()))
    # The budget is a hard bound: at the deadline the run is stopped as Ctrl-C stops it.
    watchdog = threading.Timer(max(0.0, deadline - started), _stop, args=(runner, trial))
    watchdog.daemon = True
    watchdog.start()
    try:
        result = runner.run()
    finally:
        watchdog.cancel()
    trial.duration = time.monotonic() - started
    trial.run_dir = result.run_dir
    trial.exit_code = result.exit_code
    trial.status = str(result.summary.get("status"))
    trial.failed = [e["text"] for e in result.summary.get("expectations", []) if not e.get("passed")]
    if not trial.cut and result.exit_code != 130:
        trial.broken = check_run(result.run_dir, result.exit_code)
    return trial


def _stop(runner: Runner, trial: Trial) -> None:
    trial.cut = True
    runner.interrupted.set()
    runner.stop.set()
