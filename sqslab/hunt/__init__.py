"""`sqslab hunt`: run variations of a scenario within a budget, find one that fails,
shrink it to the smallest that still fails, and write it as a scenario file.

Like Jepsen's generators and Hypothesis's shrinking, for queues:

- `space`: what may vary (the scenario's `hunt:` section; a draw per setting);
- `generate`: seeded variations, each a list of named changes to the scenario's data;
- `trial`: one variation written, validated like a file (an invalid one is a generator
  bug: recorded, never run), run with a hard deadline, its verdict and invariants read;
- `invariants`: the lab's own, checked on every run;
- `shrink`: candidates smaller than a failing variation;
- `campaign`: random valid scenarios over the whole feature space, for CI.

The budget is a hard bound. The search starts a variation only when its estimate (its
planned load and actions, plus the most any run so far took beyond its plan) fits in
what is left; it keeps 40% of the budget (SHRINK_SHARE) for shrinking and confirming,
and spends that share searching too while it has found nothing. A run still going at the
end of the budget is stopped as Ctrl-C stops it (it counts as cut, not as a finding).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqslab.consumers import ConsumerKind
from sqslab.consumers.kinds import builtin_kinds
from sqslab.hunt.generate import Change, Variation, variation_key, variations
from sqslab.hunt.shrink import candidates
from sqslab.hunt.space import Space, space_of
from sqslab.hunt.trial import Trial, prepare_trial, run_prepared, signature, write_variation
from sqslab.rundir import write_json
from sqslab.scenario.document import scenario_folder
from sqslab.scenario.load import load_scenario
from sqslab.scenario.model import Scenario

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost

__all__ = ["SHRINK_SHARE", "Change", "HuntOptions", "HuntResult", "absolute_paths", "hunt"]

#: The share of the budget kept for shrinking and confirming once a failure is found.
SHRINK_SHARE = 0.4
#: Re-runs of the minimal variation that must each fail as the finding did for it to be
#: confirmed: a failure that comes back only every other time (which task held the one
#: message) is flaky at that size, and the next larger one of the chain is tried.
CONFIRM_RUNS = 2
#: What a run is assumed to take beyond its plan before one has run (start, settle, stop).
FIRST_OVERHEAD = 15.0
#: Exit codes of a hunt (as sqslab's): a failing variation found, none, interrupted.
FOUND, NONE_FOUND, INTERRUPTED = 1, 0, 130


@dataclass
class HuntOptions:
    """How to hunt: the budget in seconds, the seed, the output directory, progress."""

    out: Path
    budget: float = 600.0
    seed: int = 0
    on_line: Callable[[str], None] | None = None  # one line per variation, for stderr


@dataclass
class HuntResult:
    """What a hunt ended with: exit code, hunt.json's content, minimal.yaml (if found)."""

    exit_code: int
    report: dict[str, Any]
    minimal: Path | None
    text: str  # the human summary


def absolute_paths(data: dict[str, Any], folder: Path, kinds: Mapping[str, ConsumerKind] | None = None) -> dict[str, Any]:
    """Scenario data whose relative paths (those of its consumer kind's section, such as
    consumer.program's cwd and the files its command names; each phase's body_file and
    producer program's cwd) are made absolute against `folder`, so the data runs from any
    directory (a copy)."""
    out = copy.deepcopy(data)
    consumer = out.get("consumer")
    if isinstance(consumer, dict):
        for kind in (builtin_kinds() if kinds is None else kinds).values():
            if kind.key is not None and kind.key in consumer:
                consumer[kind.key] = kind.absolute_paths(consumer[kind.key], folder)
    for phase in out.get("load") or []:
        if isinstance(phase, dict) and isinstance(phase.get("body_file"), str):
            phase["body_file"] = str((folder / phase["body_file"]).resolve())
        program = (phase.get("producer") or {}).get("program") if isinstance(phase, dict) else None
        if isinstance(program, dict):
            program["cwd"] = str((folder / str(program.get("cwd", "."))).resolve())
    return out


def hunt(path: Path, host: PluginHost, options: HuntOptions) -> HuntResult:
    """Hunt for a failing variation of the scenario at path (ScenarioError when it is
    invalid); writes options.out/hunt.json, and minimal.yaml when one is found."""
    scenario = load_scenario(path, host)
    base = absolute_paths(scenario.data, scenario_folder(str(path)), host.consumer_kinds)
    base.setdefault("seed", options.seed)  # every run of the hunt repeatable
    return Hunt(path, scenario, base, host, options).run()


@dataclass
class _Clock:
    start: float
    budget: float

    @property
    def end(self) -> float:
        return self.start + self.budget

    def elapsed(self) -> float:
        return time.monotonic() - self.start


@dataclass
class Hunt:
    """One hunt's state: the trials so far, the shrink steps, the clock."""

    path: Path
    scenario: Scenario
    base: dict[str, Any]
    host: PluginHost
    options: HuntOptions
    trials: list[Trial] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tried: dict[str, Trial] = field(default_factory=dict)
    overhead: float = FIRST_OVERHEAD
    measured: bool = False
    stopped: str = ""

    def __post_init__(self) -> None:
        self.space: Space = space_of(self.scenario, self.host.consumer_kinds)
        self.clock = _Clock(time.monotonic(), self.options.budget)
        self.out = self.options.out
        self.out.mkdir(parents=True, exist_ok=True)

    def run(self) -> HuntResult:
        """Search, shrink, confirm, write; the result."""
        found = self._search()
        minimal: Trial | None = None
        confirm: Trial | None = None
        if found is not None and not self.stopped:
            minimal, confirm = self._confirm(self._shrink(found), found)
        elif found is not None:
            minimal = found
        minimal_path = None
        if minimal is not None:
            minimal_path = self.out / "minimal.yaml"
            write_variation(self.base, minimal.variation, minimal_path, header=self._header(minimal))
        code = INTERRUPTED if self.stopped == "interrupted" else FOUND if found is not None else NONE_FOUND
        report = self._report(found, minimal, confirm, minimal_path, code)
        return HuntResult(code, report, minimal_path, summary_text(report))

    # ------------------------------------------------------------ the search

    def _search(self) -> Trial | None:
        for variation in variations(self.space, self.base, self.options.seed):
            trial = self._try(variation, "search", self.clock.end)
            if trial is None:
                self.stopped = self.stopped or "budget"
                return None
            if self.stopped:
                return trial if trial.finding else None
            if trial.finding:
                return trial
        self.stopped = "space exhausted"
        return None

    def _try(self, variation: Variation, stage: str, until: float, reserve: float = 0.0) -> Trial | None:
        """Prepare and (if its estimate fits before `until` - reserve) run one variation;
        None when it does not fit. An invalid variation is recorded and returned unrun."""
        index = len(self.trials) + 1
        trial = Trial(index, stage, variation, self.out / "variations" / f"{index:03d}-{stage}.yaml")
        scenario = prepare_trial(trial, self.base, self.host)
        if scenario is None:
            self._record(trial)
            return trial
        if time.monotonic() + trial.planned + self.overhead + reserve > until:
            trial.path.unlink(missing_ok=True)
            return None
        run_prepared(trial, scenario, self.host, self.out / "runs" / f"{index:03d}-{stage}", self.clock.end)
        if trial.exit_code is not None and not trial.cut and trial.exit_code != INTERRUPTED:
            # The estimate of a run beyond its plan: the most any run took (start, settle, stop).
            beyond = trial.duration - trial.planned
            self.overhead = max(self.overhead, beyond) if self.measured else beyond
            self.measured = True
        if trial.exit_code == INTERRUPTED and not trial.cut:
            self.stopped = "interrupted"
        self._record(trial)
        return trial

    def _record(self, trial: Trial) -> None:
        self.trials.append(trial)
        self.tried.setdefault(variation_key(trial.variation), trial)
        if self.options.on_line:
            self.options.on_line(progress_line(trial, self.clock.elapsed(), self.options.budget))
        self._report(None, None, None, None, None)

    # ------------------------------------------------------------ shrinking

    def _shrink(self, found: Trial) -> list[Trial]:
        """The shrink chain: `found`, then each smaller variation that still failed as it
        does, the smallest last, within the shrink share of the budget (a confirmation
        run's estimate kept back)."""
        until = min(self.clock.end, time.monotonic() + SHRINK_SHARE * self.options.budget)
        chain = [found]
        visited = {variation_key(found.variation)}
        while True:
            step = self._shrink_step(chain[-1], found, until, visited)
            if step is None:
                return chain
            chain.append(step)
            visited.add(variation_key(step.variation))

    def _shrink_step(self, current: Trial, found: Trial, until: float, visited: set[str]) -> Trial | None:
        """The first candidate smaller than current that fails as found does, or None.
        A candidate tried before is not run again; one already shrunk from is never
        gone back to (the candidates of two variations may name each other)."""
        reserve = CONFIRM_RUNS * (self.overhead + current.planned)  # room for the confirmation runs
        for candidate in candidates(current.variation, self.base):
            key = variation_key(candidate)
            known = self.tried.get(key)
            if known is not None:
                if key not in visited and known.exit_code is not None and same_failure(known, found):
                    return known
                continue
            trial = self._try(candidate, "shrink", until, reserve)
            if trial is None or self.stopped:
                return None
            if trial.exit_code is None:
                continue  # invalid: recorded as a generator bug
            kept = same_failure(trial, found)
            self.steps.append({"from": current.index, "candidate": trial.index, "texts": [c.text for c in candidate], "kept": kept})
            if kept:
                return trial
        return None

    def _confirm(self, chain: list[Trial], found: Trial) -> tuple[Trial, Trial | None]:
        """(the minimal variation, its last confirming re-run): the smallest of the chain
        whose CONFIRM_RUNS re-runs each fail again as `found` did. A failure that depends on
        timing may not come back every time at the smallest size; then the next larger one
        is re-run, and so on up the chain while the budget lasts. When none came back, the
        smallest and its last re-run (the report says: NOT confirmed, flaky)."""
        last: Trial | None = None
        for trial in reversed(chain):
            rerun: Trial | None = None
            for _ in range(CONFIRM_RUNS):
                attempt = self._try(trial.variation, "confirm", self.clock.end)
                if attempt is None or attempt.exit_code is None:  # out of budget: failed again in every re-run it had
                    return (trial, rerun) if rerun is not None else (chain[-1], last)
                if not same_failure(attempt, found):
                    last, rerun = last or attempt, None
                    break
                rerun = attempt
            if rerun is not None:
                return trial, rerun
        return chain[-1], last

    # ------------------------------------------------------------ writing

    def _header(self, minimal: Trial) -> str:
        changes = "\n".join(f"#   {c.text}" for c in minimal.variation) or "#   (none: the scenario as it is)"
        return (f"# The smallest failing variation `sqslab hunt` found of {self.path} (seed {self.options.seed}):\n"
                f"{changes}\n# Run it with: sqslab run {self.out / 'minimal.yaml'}\n")

    def _report(self, found: Trial | None, minimal: Trial | None, confirm: Trial | None, minimal_path: Path | None,
                code: int | None) -> dict[str, Any]:
        report: dict[str, Any] = {
            "scenario": str(self.path), "seed": self.options.seed, "budget": self.options.budget,
            "elapsed": round(self.clock.elapsed(), 2), "shrink_share": SHRINK_SHARE, "space": self.space.as_dict(),
            "exit_code": code, "stopped": self.stopped or ("found" if found else ""),
            "variations": [t.as_dict() for t in self.trials], "shrink_steps": self.steps,
            "invalid_variations": sum(1 for t in self.trials if t.exit_code is None),
            "finding": _finding(found), "minimal": None,
        }
        if minimal is not None:
            report["minimal"] = {"index": minimal.index, "changes": [c.as_dict() for c in minimal.variation],
                                 "texts": [c.text for c in minimal.variation], "path": str(minimal_path) if minimal_path else None,
                                 "confirmed": bool(confirm is not None and found is not None and same_failure(confirm, found)),
                                 "confirm_index": confirm.index if confirm else None,
                                 "failed_expectations": minimal.failed, "invariants": [b.as_dict() for b in minimal.broken]}
        write_json(self.out / "hunt.json", report)
        return report


def same_failure(trial: Trial, found: Trial) -> bool:
    """Whether trial fails as found does: an invariant of the same name broken, or (for an
    expectations finding) one of the same expectations failing."""
    if not trial.finding:
        return False
    kind, names = signature(trial)
    want_kind, wanted = signature(found)
    return kind == want_kind and bool(names & wanted)


def _finding(trial: Trial | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    kind, names = signature(trial)
    return {"index": trial.index, "kind": kind, "what": sorted(names), "texts": [c.text for c in trial.variation],
            "invariants": [b.as_dict() for b in trial.broken], "failed_expectations": trial.failed, "run_dir": str(trial.run_dir)}


def progress_line(trial: Trial, elapsed: float, budget: float) -> str:
    """One line per variation, for stderr."""
    what = "; ".join(c.text for c in trial.variation) or "(the scenario as it is)"
    if trial.exit_code is None:
        outcome = f"INVALID (a generator bug): {trial.problems[0] if trial.problems else '?'}"
    else:
        outcome = f"exit {trial.exit_code} {trial.status}{' (cut by the budget)' if trial.cut else ''} {trial.duration:.1f}s"
        if trial.failed:
            outcome += f"  failed: {', '.join(trial.failed)}"
        if trial.broken:
            outcome += f"  INVARIANT: {'; '.join(map(str, trial.broken))}"
    return f"[{trial.index:3d} {trial.stage:<7} {elapsed:6.0f}s/{budget:.0f}s] {outcome}  {what}"


def summary_text(report: dict[str, Any]) -> str:
    """The human summary of hunt.json, for stdout."""
    runs = [v for v in report["variations"] if v["exit_code"] is not None]
    lines = [(f"hunt {report['scenario']} (seed {report['seed']}): {len(report['variations'])} variation(s), {len(runs)} run, "
             f"{report['elapsed']:.0f}s of {report['budget']:.0f}s")]
    if report["invalid_variations"]:
        lines.append(f"  {report['invalid_variations']} invalid variation(s): a generator bug, see hunt.json")
    finding = report["finding"]
    if finding is None:
        lines.append(f"no failing variation found ({report['stopped'] or 'done'})")
        return "\n".join(lines) + "\n"
    about = "the lab itself: invariant(s) broken" if finding["kind"] == "invariant" else "expectations failed"
    lines.append(f"FOUND (variation {finding['index']}): {about}: {', '.join(finding['what'])}")
    for text in finding["texts"] or ["(the scenario as it is)"]:
        lines.append(f"    {text}")
    minimal = report["minimal"]
    if minimal:
        shrunk = sum(1 for s in report["shrink_steps"] if s["kept"])
        lines.append(f"minimal ({shrunk} shrink step(s) kept of {len(report['shrink_steps'])} tried; "
                     f"{'confirmed' if minimal['confirmed'] else 'NOT confirmed by its re-runs: flaky'}):")
        for text in minimal["texts"] or ["(the scenario as it is)"]:
            lines.append(f"    {text}")
        if minimal["path"]:
            lines.append(f"  sqslab run {minimal['path']}")
    return "\n".join(lines) + "\n"
