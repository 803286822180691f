"""Candidates smaller than a failing variation, smallest steps last.

The shrinker is greedy, as Hypothesis's is at heart: the hunt tries these candidates in
order, keeps the first one that still fails the same way, and asks again from there,
until none fails or the shrinking budget is spent. In order: drop a change (or keep only
one), lower the load (halve a phase's rate, duration, burst or count), move an action
earlier (half its time, or to a whole second), lower an action's counts and rates.
Every candidate is data like the variation, so it is printed and stored the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqslab.hunt.generate import Change, Variation, apply, scaled
from sqslab.scenario.units import UnitError, parse_duration

__all__ = ["candidates"]

#: The earliest time shrinking moves an `at` action to (t0 itself races the start of the load).
EARLIEST = 0.2


def candidates(variation: Variation, base: dict[str, Any]) -> Iterator[Variation]:
    """Variations smaller than `variation` of the scenario data `base`, most shrinking first."""
    yield from _drops(variation)
    yield from _smaller_load(variation, base)
    for i, change in enumerate(variation):
        if change.op != "action":
            continue
        for action in _earlier(change.value):
            yield _replace(variation, i, Change("action", action))
    for i, change in enumerate(variation):
        if change.op == "action":
            for action in _lower_params(change.value):
                yield _replace(variation, i, Change("action", action))
        elif change.op == "set" and change.path.startswith("sqs."):
            lower = _lower_value(change.value)
            if lower is not None:
                yield _replace(variation, i, Change("set", lower, change.path))


def _replace(variation: Variation, index: int, change: Change) -> Variation:
    return variation[:index] + (change,) + variation[index + 1:]


def _drops(variation: Variation) -> Iterator[Variation]:
    """Without one change; then each change alone. An action another one runs `after` is
    dropped with it (else the variation would name nothing)."""
    for i in range(len(variation)):
        yield _without(variation, i)
    if len(variation) > 2:
        for change in variation:
            if change.op != "action" or "after" not in change.value:
                yield (change,)


def _without(variation: Variation, index: int) -> Variation:
    dropped = {index}
    changed = True
    while changed:  # the actions after a dropped one go with it
        changed = False
        names = {str(variation[i].value.get("name")) for i in dropped if variation[i].op == "action"}
        for j, change in enumerate(variation):
            if j not in dropped and change.op == "action" and str(change.value.get("after", "")).split("+")[0].strip() in names:
                dropped.add(j)
                changed = True
    return tuple(c for j, c in enumerate(variation) if j not in dropped)


def _smaller_load(variation: Variation, base: dict[str, Any]) -> Iterator[Variation]:
    """Halve a phase's rate, duration, burst or count (a change at that place is replaced)."""
    data = apply(base, variation)
    for i, phase in enumerate(data.get("load") or []):
        if not isinstance(phase, dict):
            continue
        for key in ("duration", "burst", "count", "rate"):
            if key not in phase:
                continue
            smaller = scaled(key, phase[key], 0.5)
            if smaller is None or smaller == phase[key]:
                continue
            path = f"load[{i}].{key}"
            kept = tuple(c for c in variation if not (c.op == "set" and c.path == path))
            yield kept + (Change("set", smaller, path),)


def _earlier(action: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The action at half its time, and at its time rounded down to a whole second."""
    if "at" not in action:
        return
    try:
        at = parse_duration(action["at"])
    except UnitError:
        return
    for moved in (max(EARLIEST, round(at / 2, 1)), float(int(at))):
        if EARLIEST <= moved < at:
            yield {**action, "at": f"{moved:g}s"}


def _lower_params(action: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Counts down to 1, fault rates and lengths halved."""
    if isinstance(action.get("count"), int) and action["count"] > 1:
        yield {**action, "count": 1}
    if action.get("do") == "sqs_fault":
        lower = _lower_value(action.get("rate"))
        if lower is not None:
            yield {**action, "rate": lower}
        if "for" in action:
            try:
                lasting = parse_duration(action["for"])
            except UnitError:
                return
            if lasting > 0.5:
                yield {**action, "for": f"{max(0.5, round(lasting / 2, 1)):g}s"}


def _lower_value(value: Any) -> Any:
    """Half a fraction (down to 0.01), else None."""
    if isinstance(value, float) and not isinstance(value, bool) and value > 0.01:
        return max(0.01, round(value / 2, 3))
    return None
