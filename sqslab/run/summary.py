"""summary.json: the verdict of a run, its figures, expectations, ledger and environment.

`format_version` 1. A run that ends early (an error, Ctrl-C) still gets a summary with
what is known: `partial_summary` is the part that needs no ledger.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqslab import __version__
from sqslab.contracts import Exit
from sqslab.rundir import SUMMARY_FORMAT_VERSION


@dataclass
class RunFacts:
    """What a summary tells beyond the figures: set by the runner as the run goes."""

    scenario: Any
    target: str
    run_dir: str
    started_at: float
    t0: float | None = None
    endpoint_url: str | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the lab's own failures: exit 3
    findings: list[str] = field(default_factory=list)  # what the consumer under test did wrong: exit 1
    counters: dict[str, int] = field(default_factory=dict)


def versions() -> dict[str, str]:
    """Versions of what the run used: sqslab, Python, boto3, moto."""
    found = {"sqslab": __version__, "python": platform.python_version()}
    for package in ("boto3", "moto"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def partial_summary(facts: RunFacts) -> dict[str, Any]:
    """The summary's fields that need no ledger."""
    return {
        "format_version": SUMMARY_FORMAT_VERSION,
        "scenario": facts.scenario.name,
        "description": facts.scenario.description,
        "target": facts.target,
        "consumer": facts.scenario.consumer.facts(),
        "run_dir": facts.run_dir,
        "started_at": facts.started_at,
        "t0": facts.t0,
        "phases": facts.phases,
        "actions": facts.actions,
        "errors": facts.errors,
        "counters": facts.counters,
        "environment": {"versions": versions(), "platform": platform.platform(), "target": facts.target,
                        "endpoint_url": facts.endpoint_url},
    }


def verdict(errors: list[str], expectations: list[dict[str, Any]], findings: Sequence[str] = ()) -> tuple[str, int]:
    """(status, exit code): an error wins over a failed expectation or a finding about the consumer."""
    if errors:
        return "error", Exit.ERROR
    if findings or any(not e["passed"] for e in expectations):
        return "failed", Exit.FAILED
    return "passed", Exit.PASSED


#: Figures an expectation names to say that failed sends are part of the experiment.
SEND_FIGURES = frozenset({"send_failed"})


def program_findings(facts: RunFacts) -> list[str]:
    """A producer program (sqslab.run.program_phase) that failed by itself, or sent messages
    the ledger cannot know (no sqslab id): either makes the run's numbers incomplete."""
    found = []
    for phase in facts.phases:
        program = phase.get("producer_program")
        if not isinstance(program, dict):
            continue
        code, name = program.get("exit_code"), phase.get("phase")
        if code and not program.get("stopped_by"):
            found.append(f"the producer program of phase {name} (`{program.get('command')}`) exited with code {code}; "
                         f"its output: {program.get('log')}")
        if program.get("unnamed_sends"):
            found.append(f"phase {name}: {program['unnamed_sends']} message(s) the producer program sent name no sqslab id (no "
                         f"`sqslab-id` attribute, no text at effects.id's path `{facts.scenario.effects_id or 'id'}` in the body), "
                         "so the ledger cannot account for them; give each message that attribute, or set effects.id to where "
                         "its body names it")
    return found


def send_findings(facts: RunFacts, figures: dict[str, Any]) -> list[str]:
    """A run that sent fewer messages than it planned because sends failed fails (a finding),
    unless an expectation speaks of `send_failed`: then it is the experiment; and what a
    producer program got wrong (program_findings)."""
    named = {name for condition in facts.scenario.expect for c in condition.comparisons for name in (c.metric, c.other) if name}
    failed = int(figures.get("send_failed") or 0)
    if not failed or named & SEND_FIGURES:
        return program_findings(facts)
    planned = sum(int(p.get("planned") or 0) for p in facts.phases)
    errors: dict[str, int] = {}
    for phase in facts.phases:
        for code, n in (phase.get("errors") or {}).items():
            errors[str(code)] = errors.get(str(code), 0) + int(n)
    why = ", ".join(f"{code} ×{n}" for code, n in sorted(errors.items(), key=lambda item: -item[1])[:5]) or "see events.jsonl"
    return [(f"the producer sent {figures.get('sent', 0)} of the {planned} messages planned: {failed} send(s) failed ({why}); "
             "an expectation on send_failed (e.g. `send_failed <= 5%`) makes failed sends part of the experiment"),
            *program_findings(facts)]


def full_summary(facts: RunFacts, figures: dict[str, Any], ledger: dict[str, Any], settle: dict[str, Any],
                 cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of a run that reached its ledger: expectations decide the verdict;
    `cost`: what the run would cost on AWS (sqslab.truth.cost)."""
    expectations = [{"text": c.text, "passed": c.holds(figures), "measured": c.measured(figures)} for c in facts.scenario.expect]
    status, exit_code = verdict(facts.errors, expectations, facts.findings)
    summary = partial_summary(facts)
    summary.update({"status": status, "exit_code": int(exit_code), "figures": figures, "expectations": expectations,
                    "findings": facts.findings,
                    "ledger": ledger, "settle": settle, **({"cost": cost} if cost else {})})
    return summary


def final_summary(facts: RunFacts, summary: dict[str, Any], interrupted: bool) -> dict[str, Any]:
    """The summary of a run that has ended, whichever way: the full one when it reached its
    ledger, else what is known; Ctrl-C and errors decide the status before expectations."""
    if interrupted:
        status, code = "interrupted", Exit.INTERRUPTED
    elif facts.errors:
        status, code = "error", Exit.ERROR
    else:
        status, code = summary.get("status", "error"), summary.get("exit_code", Exit.ERROR)
    summary = {**partial_summary(facts), **summary, "status": status, "exit_code": int(code), "errors": facts.errors}
    found = warnings(facts, summary.get("figures") or {})
    if found:
        summary["warnings"] = found
    summary["ended_at"] = time.time()
    return summary


def warnings(facts: RunFacts, figures: dict[str, Any]) -> list[str]:
    """What a reader must not miss beside the verdict: findings about the consumer, lost
    messages, actions left running."""
    found = [f"finding: {finding}" for finding in facts.findings]
    if figures.get("lost"):
        found.append(f"{figures['lost']} message(s) LOST: sent, never processed, not in the DLQ, not in the queue. "
                     "This is a bug somewhere: see ledger.problems.")
    still = [f"{a['name']} ({a.get('do')})" for a in facts.actions if a.get("still_running")]
    if still:
        found.append(f"action(s) still running when the run ended (they could no longer act): {', '.join(still)}")
    return found
