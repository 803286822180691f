"""The names a scenario gives its parts, shared by validation and resolution: the kinds of
load phase, the keys every action has, and the default names of phases and actions
(`burst-2`, `scale-2`) that `after:` triggers refer to."""

from __future__ import annotations

from typing import Any

from sqslab.scenario.units import UnitError, parse_duration

#: The keys that make a load phase what it is.
PHASE_KINDS = ("rate", "ramp", "burst", "count", "pause", "producer")
#: The keys of every action, beside the action's own parameters.
ACTION_KEYS = ("name", "at", "after", "when", "do", "timeout", "continue_on_error")


def default_phase_name(phase: dict[str, Any], index: int) -> str:
    """A phase's name: its `name`, else KIND-N (`burst-2` for an unnamed second phase)."""
    kind = next((k for k in PHASE_KINDS if k in phase), "phase")
    name = phase.get("name")
    return name if isinstance(name, str) and name else f"{kind}-{index + 1}"


def default_action_name(action: dict[str, Any], index: int) -> str | None:
    """An action's name: its `name`, else DO-N (`scale-2`); None when it has neither."""
    name = action.get("name")
    if isinstance(name, str) and name:
        return name
    do = action.get("do")
    return f"{do}-{index + 1}" if isinstance(do, str) else None


def split_after(text: str) -> tuple[str, float]:
    """`burst + 5s` → ('burst', 5.0); `burst` → ('burst', 0.0)."""
    name, plus, offset = text.partition("+")
    if not name.strip():
        raise UnitError(f"{text!r}: name a phase or action, optionally plus a delay, e.g. 'burst + 5s'")
    return name.strip(), parse_duration(offset.strip()) if plus else 0.0
