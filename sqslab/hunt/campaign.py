"""The lab's own campaign: random valid scenarios over the whole feature space.

`campaign_scenario(seed)` draws a complete short scenario (a few seconds of load, 20-60
messages): a standard or FIFO queue, a DLQ or none, every setting of the settings table
drawn or left at its default, the built-in consumer or the example program consumer
(consumer/examples/python-worker), load phases of every kind, actions of every built-in
kind with every trigger, SQS behaviour and API faults. Each is valid by construction (a
test validates hundreds); CI runs some and checks the invariants (sqslab.hunt.invariants)
on each. `covered(data)` says which settings and actions a scenario exercises, so a test
fails when a new setting or action is never drawn.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from sqslab.consumers.kinds import builtin_kinds
from sqslab.hunt.generate import action_params, fault_params, set_path
from sqslab.hunt.space import DRAWS, FIFO_ONLY, STANDARD_ONLY, Facts
from sqslab.scenario.settings import BY_KEY, SETTINGS

__all__ = ["CAMPAIGN_ACTIONS", "PYTHON_WORKER", "campaign_scenario", "covered"]

#: The example program consumer the campaign runs as "your own consumer".
PYTHON_WORKER = Path(__file__).resolve().parents[2] / "consumer" / "examples" / "python-worker"
#: The example producer program a phase may run instead of sqslab's producer.
PYTHON_PRODUCER = PYTHON_WORKER.parent / "python-producer"
#: The action kinds the campaign draws (every built-in one).
CAMPAIGN_ACTIONS = ("kill_consumer", "scale", "set_consumer", "sqs_fault", "redrive_dlq", "wait")
#: Live metrics a `when` trigger or a `wait until` tests.
_CONDITIONS = ("processed > 5", "sent >= 10", "queue.visible > 2", "elapsed > 1s", "tasks.running >= 1", "queue.in_flight > 0")
#: How often a setting is drawn rather than left to its default.
DRAW_SHARE = 0.5
#: Settings the campaign draws in an order of its own (the queue's shape, then what depends on it).
_FIRST = ("infra.queue.fifo", "infra.dlq.enabled", "infra.queue.visibility_timeout", "infra.consumers")


def campaign_scenario(seed: int, worker: Path = PYTHON_WORKER) -> dict[str, Any]:
    """A random valid scenario of about 2-3 s of load (seeded: the same seed, the same scenario)."""
    rng = random.Random(f"sqslab-campaign:{seed}")
    data: dict[str, Any] = {"version": 1, "name": f"campaign-{seed}"}
    fifo = rng.random() < 0.35
    dlq = rng.random() < 0.7
    set_path(data, "infra.queue.fifo", fifo)
    set_path(data, "infra.dlq.enabled", dlq)
    set_path(data, "infra.queue.visibility_timeout", DRAWS["infra.queue.visibility_timeout"](rng, Facts()))
    set_path(data, "infra.consumers", DRAWS["infra.consumers"](rng, Facts()))
    # A short settle: a run that cannot drain (scaled to 0, poison with no DLQ) ends soon.
    set_path(data, "settle.timeout", DRAWS["settle.timeout"](rng, Facts()))
    program = rng.random() < 0.25
    facts = _facts(data)
    for setting in SETTINGS:
        if _drawable(setting.key, fifo, dlq, program) and rng.random() < DRAW_SHARE:
            set_path(data, setting.key, DRAWS[setting.key](rng, facts))
            facts = _facts(data)
    _fix_knobs(data, rng, facts)
    facts = _facts(data)
    if program:
        data.setdefault("consumer", {})["program"] = _program(worker, rng)
    # A body of the consumer's own (a template, a framework's format) leaves no room for poison marks.
    own_body = program or not (data.get("consumer") or {}).get("poison_rate")
    data["load"] = _load(rng, fifo, program, own_body)
    data["actions"] = _actions(rng, facts, fifo, dlq, program, [p["name"] for p in data["load"]])
    if rng.random() < 0.3:
        data.setdefault("sqs", {})["faults"] = [fault_params(rng) | {"rate": rng.choice((0.02, 0.05))}]
    data["expect"] = ["lost == 0", rng.choice(("duplicates <= 10%", "still_queued == 0", "processed > 0"))]
    return data


def _drawable(key: str, fifo: bool, dlq: bool, program: bool) -> bool:
    if key in _FIRST or key == "settle.timeout" or key not in DRAWS:
        return False
    if key in FIFO_ONLY and not fifo:
        return False
    if fifo and key in STANDARD_ONLY:
        return False
    if key.startswith("infra.dlq.") and not dlq:
        return False
    if key.startswith("consumer.") and program:
        return False  # a program takes no knobs
    # slow_time goes with slow_rate (_fix_knobs); poison needs sqslab's own body (no template)
    return key != "consumer.slow_time"


def _facts(data: dict[str, Any]) -> Facts:
    from sqslab.scenario.units import parse_duration

    infra = data.get("infra") or {}
    consumers = int(infra.get("consumers", 1))
    return Facts(fifo=bool((infra.get("queue") or {}).get("fifo")),
                 visibility=parse_duration((infra.get("queue") or {}).get("visibility_timeout", "30s")),
                 consumers=consumers, max_consumers=int(infra.get("max_consumers", BY_KEY["infra.max_consumers"].default)))


def _fix_knobs(data: dict[str, Any], rng: random.Random, facts: Facts) -> None:
    """The pairs validation asks for: slow_time beside slow_rate, and a cost guard above
    the starting count."""
    consumer = data.get("consumer") or {}
    if consumer.get("slow_rate"):
        consumer["slow_time"] = DRAWS["consumer.slow_time"](rng, facts)
    infra = data["infra"]
    infra["max_consumers"] = max(int(infra.get("max_consumers", 0)), int(infra["consumers"]), 1)


def _program(worker: Path, rng: random.Random) -> dict[str, Any]:
    return {"command": [sys.executable, "worker.py"], "cwd": str(worker), "env": {"WORK_SECONDS": rng.choice(("0.01", "0.03"))},
            "ready": {"log": "worker ready", "timeout": "20s"}, "stop_grace": "3s"}


def _producer(rng: random.Random) -> dict[str, Any]:
    """The example producer program, its messages named by the sqslab-id attribute."""
    return {"command": [sys.executable, "send_orders.py"], "cwd": str(PYTHON_PRODUCER), "stop_grace": "2s",
            "env": {"COUNT": str(rng.randint(5, 25)), "RATE": str(rng.choice((20, 50))), "ID_ATTRIBUTE": "true"}}


def _load(rng: random.Random, fifo: bool, program: bool, own_body: bool = False) -> list[dict[str, Any]]:
    """One or two phases, 10-45 messages in all, at most 3 s."""
    # A producer program's phase on a standard queue (the example producer sends no message group).
    kinds = rng.sample(("rate", "ramp", "burst", "count", "pause") + (() if fifo else ("producer",)), rng.choice((1, 2)))
    if all(k == "pause" for k in kinds):
        kinds.append("rate")
    phases = []
    for i, kind in enumerate(kinds):
        phase: dict[str, Any] = {"name": f"p{i + 1}"}
        if kind == "rate":
            phase.update(rate=f"{rng.randint(10, 15)}/s", duration=f"{rng.choice((1, 1.5))}s")
        elif kind == "ramp":
            phase.update(ramp=f"{rng.randint(5, 10)}/s..{rng.randint(12, 20)}/s", duration="1.5s")
        elif kind == "burst":
            phase.update(burst=rng.randint(10, 25))
        elif kind == "count":
            phase.update(count=rng.randint(10, 20), duration=f"{rng.choice((1, 1.5))}s")
        elif kind == "producer":
            phase.update(producer={"program": _producer(rng)}, duration="5s")
        else:
            phase.update(pause=rng.choice(("500ms", "1s")))
        if kind not in ("pause", "producer"):
            _phase_extras(phase, rng, fifo, program, own_body)
        phases.append(phase)
    return phases


#: The framework formats a phase may send (sqslab.scenario.formats); the consumers take any body.
_FORMATS = ({"name": "celery", "task": "orders.charge", "args": '["{{ id }}", {{ rand_int(1, 500) }}]'},
            {"name": "dramatiq", "actor": "charge", "args": '["order-{{ seq }}"]', "kwargs": '{"rush": true}'})


def _phase_extras(phase: dict[str, Any], rng: random.Random, fifo: bool, program: bool, own_body: bool) -> None:
    if fifo and rng.random() < 0.7:
        phase["groups"] = rng.choice((1, 3, {"count": 4, "hot": 0.5}))
    if rng.random() < 0.2:
        phase["duplicate_sends"] = 0.05
    roll = rng.random()
    if program and roll < 0.4:
        phase["body"] = '{"orderId": "{{ id }}", "amount": {{ rand_int(1, 500) }}}'
    elif own_body and roll > 0.85:
        phase["format"] = dict(rng.choice(_FORMATS))
    elif rng.random() < 0.2:
        phase["payload_size"] = rng.choice((64, "1KiB"))


def _actions(rng: random.Random, facts: Facts, fifo: bool, dlq: bool, program: bool, phases: list[str]) -> list[dict[str, Any]]:
    """0-3 actions of any built-in kind, each with an `at`, `after` or `when` trigger."""
    kinds = [k for k in CAMPAIGN_ACTIONS if dlq or k != "redrive_dlq"]
    actions: list[dict[str, Any]] = []
    for i in range(rng.choice((0, 1, 2, 2, 3))):
        kind = rng.choice(kinds)
        action: dict[str, Any] = {"name": f"a{i + 1}"}
        roll = rng.random()
        if roll < 0.5:
            action["at"] = f"{rng.choice((0.5, 1, 1.5, 2))}s"
        elif roll < 0.75:
            action["after"] = rng.choice(phases + [a["name"] for a in actions]) + rng.choice(("", " + 500ms"))
        else:
            action["when"] = rng.choice(_CONDITIONS)
        action["do"] = kind
        action.update(action_params(kind, facts, rng, builtin_kinds()["program" if program else "builtin"]))
        if kind == "wait" and rng.random() < 0.5:
            # An `until` that may never hold: bounded by the action's timeout, and not a failure of the run.
            action.pop("for")
            action.update({"until": rng.choice(_CONDITIONS), "timeout": "2s", "continue_on_error": True})
        actions.append(action)
    return actions


def covered(data: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(setting keys the scenario sets, action kinds it uses)."""
    keys = {s.key for s in SETTINGS if _has(data, s.path)}
    kinds = {str(a.get("do")) for a in data.get("actions") or [] if isinstance(a, dict)}
    for action in data.get("actions") or []:
        for key in ("at", "after", "when"):
            if isinstance(action, dict) and key in action:
                kinds.add(f"trigger:{key}")
    return keys, kinds


def _has(data: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True
