"""Variations of a scenario: seeded lists of named changes to its YAML data.

A change is data: `set` puts a value at a key path (`load[0].rate`, `sqs.duplicates`,
written as `--set` writes it), `action` appends an action. A variation is a tuple of
changes, so it prints, serialises to hunt.json and applies again to the same scenario
data (`apply`). Variation `i` of seed `s` is drawn from its own generator seeded from
(s, i): the same seed gives the same sequence, whatever the runs found.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqslab.consumer.sqsfaults import KINDS as FAULT_KINDS
from sqslab.consumers import ConsumerKind
from sqslab.hunt.space import Facts, Space, draw_value

__all__ = ["Change", "Variation", "apply", "draw_action", "draw_variation", "key_path", "set_path", "variation_key", "variations"]

#: The APIs a generated fault hits: those a consumer and the producer call.
FAULT_APIS = ("ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "SendMessage", "SendMessageBatch",
              "ChangeMessageVisibility", "*")


@dataclass(frozen=True)
class Change:
    """One change to a scenario's data: `set` a key path to a value, or add an `action`."""

    op: str  # "set" | "action"
    value: Any
    path: str = ""  # for set: `load[0].rate`

    def as_dict(self) -> dict[str, Any]:
        """The change as hunt.json stores it."""
        return {"op": self.op, "path": self.path, "value": self.value} if self.op == "set" else {"op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        """A change from its as_dict form."""
        return cls(data["op"], data["value"], data.get("path", ""))

    @property
    def text(self) -> str:
        """The change in words: `set load[0].rate=20/s`, `add {at: 2s, do: scale, to: 1}`."""
        if self.op == "set":
            return f"set {self.path}={_flow(self.value)}"
        return f"add {_flow(self.value)}"


Variation = tuple[Change, ...]


def _flow(value: Any) -> str:
    """A value in YAML flow style on one line."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def variation_key(variation: Variation) -> str:
    """A canonical text of a variation, to tell whether it was tried already."""
    return json.dumps([c.as_dict() for c in variation], sort_keys=True, default=str)


def key_path(text: str) -> list[str | int]:
    """`load[0].rate` -> ['load', 0, 'rate']."""
    parts: list[str | int] = []
    for piece in text.split("."):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)", piece)
        if not match:
            raise ValueError(f"not a key path: {text!r}")
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Put value at the key path, making the mappings on the way."""
    parts = key_path(path)
    node: Any = data
    for part, nxt in itertools.pairwise(parts):
        if isinstance(part, int):
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    node[parts[-1]] = value


def apply(data: dict[str, Any], variation: Variation) -> dict[str, Any]:
    """The scenario data with the variation's changes applied (a copy)."""
    out = copy.deepcopy(data)
    for change in variation:
        if change.op == "set":
            set_path(out, change.path, copy.deepcopy(change.value))
        elif change.op == "action":
            out.setdefault("actions", [])
            if not isinstance(out["actions"], list):
                out["actions"] = []
            out["actions"].append(copy.deepcopy(change.value))
        else:
            raise ValueError(f"unknown change {change.op!r}")
    return out


# ---------------------------------------------------------------- drawing


def _seconds_text(value: float) -> str:
    return f"{round(value * 10) / 10:g}s"


def _trigger(space: Space, rng: random.Random, earlier: list[str]) -> dict[str, Any]:
    """`at` mostly, sometimes `after` a phase or an earlier added action, within the load."""
    roll = rng.random()
    if roll < 0.15 and space.phases:
        return {"after": rng.choice(space.phases) + rng.choice(("", " + 500ms", " + 1s"))}
    if roll < 0.25 and earlier:
        return {"after": f"{rng.choice(earlier)} + {rng.choice(('500ms', '1s'))}"}
    span = max(space.load_end, 1.0)
    return {"at": _seconds_text(rng.uniform(0.2, span * 0.9))}


def draw_action(kind: str, space: Space, rng: random.Random, name: str, earlier: list[str] | None = None) -> dict[str, Any]:
    """One action of `kind` named `name`, with a trigger and valid parameters."""
    action: dict[str, Any] = {"name": name, **_trigger(space, rng, earlier or []), "do": kind}
    action.update(action_params(kind, space.facts, rng, space.consumer_kind))
    return action


def action_params(kind: str, facts: Facts, rng: random.Random, consumer_kind: ConsumerKind) -> dict[str, Any]:
    """Valid parameters of a built-in action kind (`wait` waits a fixed time)."""
    if kind == "kill_consumer":
        return {"count": rng.randint(1, max(1, facts.consumers))}
    if kind == "scale":
        top = max(1, min(facts.max_consumers, facts.consumers + 2))
        return {"to": rng.randint(1, top)}
    if kind == "set_consumer":
        return consumer_kind.draw_revision(rng, facts, lambda key: draw_value(key, rng, facts))
    if kind == "sqs_fault":
        return fault_params(rng) | {"for": rng.choice(("1s", "2s", "3s"))}
    if kind == "redrive_dlq":
        return rng.choice(({}, {"rate": rng.choice((10, 100, 500))}))
    if kind == "wait":
        return {"for": rng.choice(("500ms", "1s"))}
    raise ValueError(f"hunt cannot generate a {kind!r} action")


def fault_params(rng: random.Random) -> dict[str, Any]:
    """An API fault: an API, an error and/or a latency, a rate."""
    fault: dict[str, Any] = {"api": rng.choice(FAULT_APIS)}
    if rng.random() < 0.8:
        fault["error"] = rng.choice(FAULT_KINDS)
    if "error" not in fault or rng.random() < 0.2:
        fault["latency"] = rng.choice(("50ms", "100ms..300ms"))
    fault["rate"] = rng.choice((0.05, 0.2, 0.5))
    return fault


def _load_change(data: dict[str, Any], rng: random.Random) -> Change | None:
    """A change of one phase's rate, duration or message count (0.5x to 2x)."""
    phases = [(i, p) for i, p in enumerate(data.get("load") or []) if isinstance(p, dict)]
    if not phases:
        return None
    i, phase = rng.choice(phases)
    factor = rng.choice((0.5, 1.5, 2.0))
    for key in rng.sample(("rate", "duration", "burst", "count"), 4):
        if key not in phase:
            continue
        changed = scaled(key, phase[key], factor)
        if changed is not None:
            return Change("set", changed, f"load[{i}].{key}")
    return None


def scaled(key: str, value: Any, factor: float) -> Any:
    """A phase's rate, duration or count times factor, as a scenario writes it (None when
    it cannot be: a rate in another unit than /s)."""
    from sqslab.scenario.units import UnitError, parse_duration, parse_rate

    try:
        if key == "rate":
            return f"{max(1.0, round(parse_rate(value) * factor)):g}/s"
        if key == "duration":
            return _seconds_text(max(1.0, parse_duration(value) * factor))
    except UnitError:
        return None
    if key in ("burst", "count") and isinstance(value, int):
        return max(1, int(value * factor))
    return None


def draw_variation(space: Space, data: dict[str, Any], rng: random.Random) -> Variation:
    """One variation in the space: actions, a load change, an sqs setting (at least one)."""
    changes: list[Change] = []
    for _ in range(10):  # a roll that draws nothing draws again
        if "actions" in space.vary and space.actions and rng.random() < 0.85:
            earlier: list[str] = []
            for n in range(rng.randint(1, space.max_actions)):
                name = f"hunt-{n + 1}"
                changes.append(Change("action", draw_action(rng.choice(space.actions), space, rng, name, earlier)))
                earlier.append(name)
        if "load" in space.vary and rng.random() < 0.4:
            change = _load_change(data, rng)
            if change is not None:
                changes.append(change)
        if "sqs" in space.vary and space.sqs_keys and rng.random() < 0.3:
            key = rng.choice(space.sqs_keys)
            changes.append(Change("set", draw_value(key, rng, space.facts), key))
        if changes:
            break
    return tuple(changes)


def variations(space: Space, data: dict[str, Any], seed: int) -> Iterator[Variation]:
    """The hunt's variations of seed `seed`, without end: the scenario as it is first, then
    drawn ones (a repeat of one already given is skipped)."""
    seen = {variation_key(())}
    yield ()
    index = 0
    misses = 0
    while misses < 1000:  # a space this small may run out of new variations
        index += 1
        variation = draw_variation(space, data, random.Random(f"sqslab-hunt:{seed}:{index}"))
        key = variation_key(variation)
        if key in seen:
            misses += 1
            continue
        seen.add(key)
        misses = 0
        yield variation
