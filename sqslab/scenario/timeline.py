"""The timeline: producer phases and actions on one clock, t0 = start of the run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.scenario.units import parse_duration


@dataclass(frozen=True)
class Phase:
    """One producer phase, resolved: all times in seconds from t0, rates in msg/s.

    kind is one of:
      - "rate":  `rate` msg/s for `duration` s
      - "ramp":  linear from `rate_from` to `rate_to` msg/s over `duration` s
      - "burst": `count` messages as fast as possible (duration is None: unknown ahead)
      - "count": `count` messages spread evenly over `duration` s
      - "pause": send nothing for `duration` s
      - "producer": your program (`producer`: command, cwd, env, stop_grace) sends, for at most `duration` s
    """

    name: str
    kind: str
    start: float
    duration: float | None = None
    rate: float | None = None
    rate_from: float | None = None
    rate_to: float | None = None
    count: int | None = None
    payload_size: int = 256
    poison_rate: float = 0.0
    groups: int | None = None  # FIFO message groups (None: a standard queue)
    hot: float | None = None  # the share of messages the first group takes
    duplicate_sends: float = 0.0  # share of messages sent twice (a producer's retry)
    body: str | None = None  # a jinja2 body template (sqslab.scenario.bodies); None: sqslab's JSON payload
    body_file: str | None = None  # where `body` was read from (body_file), and its SHA-256: what
    body_sha256: str | None = None  # resolved.json keeps instead of the file's content
    format: dict[str, Any] | None = None  # a body format's name and parameters (sqslab.scenario.formats)
    producer: dict[str, Any] | None = None  # a producer program: command (argv), cwd (absolute), env, stop_grace

    def planned_messages(self) -> int:
        """How many messages this phase sends if it runs to plan."""
        duration = self.duration or 0.0
        if self.kind == "rate":
            return round((self.rate or 0.0) * duration)
        if self.kind == "ramp":
            return round(((self.rate_from or 0.0) + (self.rate_to or 0.0)) / 2 * duration)
        if self.kind in ("burst", "count"):
            return self.count or 0
        return 0


def resolve_producer(program: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """A phase's producer program (assumed valid): its argv, absolute folder, environment as text, stop grace."""
    command = program["command"]
    folder = (base or Path.cwd()) / program.get("cwd", ".")
    return {"command": shlex.split(command) if isinstance(command, str) else list(command), "cwd": str(folder.resolve()),
            "env": {str(k): ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in (program.get("env") or {}).items()},
            "stop_grace": parse_duration(program.get("stop_grace", "10s"))}


# A burst's length is unknown until it runs; plans assume this throughput and say so.
ASSUMED_BURST_RATE = 500.0


@dataclass(frozen=True)
class PlanRow:
    """One line of a plan: a phase or an action with its start time from t0."""

    start: float | None
    kind: str
    name: str
    detail: str
    messages: int
    estimated: bool
    end: float | None = None


def plan(scenario: Any) -> list[PlanRow]:
    """The scenario's phases and actions in time order, with absolute start times.

    Times after a burst are estimates (a burst's length depends on the target); actions
    triggered by a condition (`when`) have no start time.
    """
    rows: list[PlanRow] = []
    ends: dict[str, tuple[float, bool]] = {}
    clock, estimated = 0.0, False
    for phase in scenario.phases:
        begins, phase_estimated = clock, estimated
        if phase.kind == "burst":
            length, estimated = (phase.count or 0) / ASSUMED_BURST_RATE, True
        else:
            length = phase.duration or 0.0
        clock = begins + length
        ends[phase.name] = (clock, estimated)
        rows.append(PlanRow(begins, "phase", phase.name, describe_phase(phase), phase.planned_messages(), phase_estimated, clock))
    pending = list(scenario.actions)
    while pending:
        progressed = False
        for action in list(pending):
            start: float | None
            if action.at is not None:
                start, est = action.at, False
            elif action.after is not None and action.after in ends:
                base, est = ends[action.after]
                start = base + action.after_offset
            elif action.when is not None:
                start, est = None, False
            else:
                continue
            pending.remove(action)
            progressed = True
            finish: float | None = start
            if start is not None and action.do == "wait":
                if "for" in action.params:
                    from sqslab.scenario.units import parse_duration

                    finish = start + parse_duration(action.params["for"])
                else:
                    finish, est = None, est
            if finish is not None:
                ends[action.name] = (finish, est)
            params = " ".join(f"{k}={v}" for k, v in action.params.items())
            rows.append(PlanRow(start, "action", action.name, f"{action.do} {params}".strip() + f" ({action.trigger})", 0, est))
        if not progressed:  # waits on a condition: the rest start at an unknown time
            for action in pending:
                params = " ".join(f"{k}={v}" for k, v in action.params.items())
                rows.append(PlanRow(None, "action", action.name, f"{action.do} {params}".strip() + f" ({action.trigger})", 0, True))
            break
    return sorted(rows, key=lambda r: (r.start is None, r.start or 0.0, r.kind != "phase"))


def describe_phase(phase: Phase) -> str:
    """A phase in words: `rate 5/s for 30s`, `burst of 1000`."""
    from sqslab.scenario.units import format_duration

    duration = format_duration(phase.duration or 0.0)
    if phase.kind == "rate":
        return f"rate {phase.rate:g}/s for {duration}"
    if phase.kind == "ramp":
        return f"ramp {phase.rate_from:g}/s to {phase.rate_to:g}/s over {duration}"
    if phase.kind == "burst":
        return f"burst of {phase.count}"
    if phase.kind == "count":
        return f"{phase.count} messages over {duration}"
    return f"pause {duration}"
