"""The lab's own invariants, checked on every run from its run directory.

A scenario's expectations are about the system under test; these are about sqslab:
whatever a valid scenario does, the run ends 0 or 1, every message sent has one fate,
nothing is lost while the queue still kept it, the two ledgers agree, the DLQ holds what
the ledger calls dead-lettered, no process of the run is left behind, and the run took
no longer than its load, its settle timeout and a slack allow. A broken one is a bug of
the lab (or of what it stands on), reported as such.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.rundir import read_jsonl

__all__ = ["DURATION_SLACK", "INVARIANTS", "Broken", "check_run", "leftover_processes"]

#: What a run may take beyond its load and its settle timeout: stopping consumers (the
#: runner's grace, 10 s) and reading the queues and the journal.
DURATION_SLACK = 20.0
#: How long a run's processes get to be gone after run_scenario returned.
LEFTOVER_WAIT = 3.0

#: Every invariant by name, with what it says.
INVARIANTS: dict[str, str] = {
    "exit_code": "a valid scenario's run ends 0 (passed) or 1 (expectations failed); 3 is a defect of the lab",
    "fates_sum": "the fates add up to the messages sent",
    "lost": "nothing is lost unless the queue's retention expired during the run",
    "self_check": "the consumers' events and the SQS journal tell the same story",
    "dlq": "with a DLQ, dlq.messages equals dead_lettered plus dlq.other (copies standing for no dead-lettered id)",
    "leftovers": "no process of the run is left running after it",
    "duration": "the run takes no longer than its load + settle.timeout + a slack",
    "cost": "the cost adds up (total = SQS + Lambda + ECS, none negative) and, with the journal, the SQS requests "
            "cover the sends (10 messages a request at most)",
    "effects": "with effects on, every id has one effect fate (they add up to the messages sent) and the effects "
               "posted cover them (an id applied twice had two)",
}


@dataclass(frozen=True)
class Broken:
    """One invariant a run broke, and how."""

    name: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """For hunt.json."""
        return {"name": self.name, "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


def check_run(run_dir: Path, exit_code: int) -> list[Broken]:
    """Every invariant the run in run_dir broke (summary.json, resolved.json, events.jsonl)."""
    summary = _read_json(run_dir / "summary.json")
    resolved = _read_json(run_dir / "resolved.json")
    broken: list[Broken] = []
    if exit_code not in (0, 1):
        errors = "; ".join(str(e) for e in summary.get("errors", [])) or "no error given"
        broken.append(Broken("exit_code", f"exit {exit_code}: {errors[:600]}"))
    figures = summary.get("figures") or {}
    ledger = summary.get("ledger") or {}
    if figures:
        broken += _ledger_checks(figures, ledger, resolved)
    if any("lab disagrees with itself" in str(e) for e in summary.get("errors", [])) and not any(b.name == "self_check" for b in broken):
        broken.append(Broken("self_check", "the run's errors say the lab disagrees with itself"))
    broken += _duration_check(summary, resolved)
    left = leftover_processes(run_dir)
    if left:
        broken.append(Broken("leftovers", "still running after the run: " + ", ".join(left[:5])))
    return broken


def _ledger_checks(figures: dict[str, Any], ledger: dict[str, Any], resolved: dict[str, Any]) -> list[Broken]:
    broken = []
    counts = ledger.get("counts") or {}
    if counts and sum(counts.values()) != figures.get("sent"):
        broken.append(Broken("fates_sum", f"fates {counts} add up to {sum(counts.values())}, sent {figures.get('sent')}"))
    infra = resolved.get("infra") or {}
    retention = float(infra.get("retention") or 0)
    if figures.get("lost") and float(figures.get("duration") or 0) < retention:
        problems = [p.get("id") for p in ledger.get("problems", []) if p.get("fate") == "lost"][:3]
        broken.append(Broken("lost", f"{figures['lost']} lost within the retention of {retention:g}s (e.g. {problems})"))
    check = (ledger.get("journal") or {}).get("check")
    if check and not check.get("agree", True):
        broken.append(Broken("self_check", f"{check.get('disagreement_count')} disagreement(s): "
                                           + "; ".join(map(str, check.get("disagreements", [])[:2]))[:600]))
    broken += _cost_checks(figures, bool(ledger.get("journal")))
    broken += _effect_checks(figures)
    accounted = (figures.get("dead_lettered") or 0) + (figures.get("dlq.other") or 0)
    if infra.get("dlq_enabled") and figures.get("dlq.messages") != accounted:
        broken.append(Broken("dlq", f"dlq.messages {figures.get('dlq.messages')} != dead_lettered {figures.get('dead_lettered')} "
                                    f"+ dlq.other {figures.get('dlq.other') or 0}"))
    return broken


def _effect_checks(figures: dict[str, Any]) -> list[Broken]:
    if figures.get("effects.total") is None:
        return []
    names = ("applied_once", "duplicates", "lost_work", "applied_not_deleted", "not_applied")
    fates = {name: int(figures.get(f"effects.{name}") or 0) for name in names}
    if sum(fates.values()) != figures.get("sent"):
        return [Broken("effects", f"effect fates {fates} add up to {sum(fates.values())}, sent {figures.get('sent')}")]
    least = fates["applied_once"] + fates["applied_not_deleted"] + 2 * fates["duplicates"] + int(figures.get("effects.unmatched") or 0)
    if figures["effects.total"] < least:
        return [Broken("effects", f"{figures['effects.total']} effects posted cannot make the fates {fates}")]
    return []


def _cost_checks(figures: dict[str, Any], journal: bool) -> list[Broken]:
    parts = [figures.get(f"cost.{part}.usd") for part in ("sqs", "lambda", "ecs")]
    if "cost.total" not in figures:
        return []
    if any(p is not None and p < 0 for p in parts):
        return [Broken("cost", f"a negative cost: {parts}")]
    total = figures.get("cost.total")
    known = [float(p) for p in parts if p is not None]
    if len(known) == len(parts) and (total is None or abs(total - sum(known)) > 1e-9):
        return [Broken("cost", f"cost.total {total} is not SQS + Lambda + ECS {parts}")]
    requests = figures.get("cost.sqs.requests")
    if journal and (requests is None or requests * 10 < (figures.get("sent") or 0)):
        return [Broken("cost", f"{requests} SQS requests cannot have sent {figures.get('sent')} messages")]
    return []


def _duration_check(summary: dict[str, Any], resolved: dict[str, Any]) -> list[Broken]:
    settle = summary.get("settle") or {}
    duration = (summary.get("figures") or {}).get("duration")
    if duration is None or "load_end" not in settle:
        return []
    timeout = float((resolved.get("settle") or {}).get("timeout") or 0)
    bound = float(settle["load_end"]) + timeout + DURATION_SLACK
    if float(duration) > bound:
        return [Broken("duration", f"{float(duration):.1f}s > load {float(settle['load_end']):.1f}s + settle.timeout {timeout:g}s + "
                                   f"slack {DURATION_SLACK:g}s")]
    return []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def leftover_processes(run_dir: Path, wait: float = LEFTOVER_WAIT) -> list[str]:
    """Processes of the run still alive ("pid command"): a consumer task is known by its
    queue URL in its environment (every task gets SQSLAB_QUEUE_URL, and the queue's name
    is unique to the run), the emulator by the run directory on its command line. Linux
    only (/proc); elsewhere nothing is found. Waits up to `wait` for them to go."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    markers = _markers(run_dir)
    deadline = time.monotonic() + wait
    while True:
        found = [f"{pid} {cmd}" for pid, cmd in _processes(proc, markers)]
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def _markers(run_dir: Path) -> tuple[bytes, ...]:
    markers = list(dict.fromkeys([str(run_dir.resolve()).encode(), str(run_dir).encode()]))
    events = run_dir / "events.jsonl"
    if events.exists():
        for event in read_jsonl(events):
            if event.get("event") == "provisioned" and event.get("queue_url"):
                markers.append(b"SQSLAB_QUEUE_URL=" + str(event["queue_url"]).encode() + b"\0")
                break
    return tuple(markers)


def _processes(proc: Path, markers: tuple[bytes, ...]) -> list[tuple[int, str]]:
    found = []
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes() + b"\0"
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue  # gone meanwhile, or another user's
        if state == "Z":
            continue  # a zombie has ended; its parent has only not reaped it yet
        if any(m in cmdline or m in environ for m in markers):
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:120]))
    return found
