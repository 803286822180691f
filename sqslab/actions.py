"""The built-in actions, registered through the same hook as any plugin's.

An action function is called as `function(ctx, params)`: `ctx` is the runner's
ActionContext (the target, the queues, a seeded random generator, waiting helpers),
`params` the action's parameters from the scenario, already validated against its
schema. It returns a short text of what it did, for the event log and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqslab.hookspecs import hookimpl
from sqslab.units import parse_duration


def _knob_schema() -> dict[str, Any]:
    """set_consumer's parameters: the consumer knobs the settings table marks live."""
    from sqslab.schema import unit_defs
    from sqslab.settings import live_knobs, schema_property

    knobs = {s.name: schema_property(s) for s in live_knobs()}
    return {"type": "object", "properties": knobs, "additionalProperties": False, "minProperties": 1,
            "$defs": unit_defs("duration", "duration_range")}


def kill_consumer(ctx: Any, params: dict[str, Any]) -> str:
    """Kill N running consumer tasks abruptly (SIGKILL locally, StopTask on ECS); the service replaces them."""
    killed = ctx.target.kill(params.get("count", 1), ctx.rng)
    return f"killed {len(killed)} task(s): {', '.join(killed) or 'none running'}"


def scale(ctx: Any, params: dict[str, Any]) -> str:
    """Change the desired number of consumer tasks; scale-in stops tasks gracefully (SIGTERM)."""
    ctx.target.scale(params["to"])
    return f"desired count set to {params['to']}"


def set_consumer(ctx: Any, params: dict[str, Any]) -> str:
    """Roll the consumer tasks to new knobs, as a new task definition revision would."""
    ctx.target.set_consumer(ctx.update_knobs(params))
    return "consumers rolled to " + ", ".join(f"{k}={v}" for k, v in params.items())


def wait(ctx: Any, params: dict[str, Any]) -> str:
    """Wait for a time or until a condition on live metrics holds; actions `after:` it start then."""
    if "for" in params:
        seconds = parse_duration(params["for"])
        ctx.sleep(seconds)
        return f"waited {params['for']}"
    waited = ctx.wait_until(params["until"])
    return f"'{params['until']}' held after {waited:.1f}s"


_DURATION = {"type": "string", "x-sqslab-unit": "duration"}

BUILTIN_ACTIONS: list[tuple[str, Callable[..., str], dict[str, Any]]] = [
    ("kill_consumer", kill_consumer, {
        "type": "object", "additionalProperties": False,
        "properties": {"count": {"type": "integer", "minimum": 1, "default": 1, "description": "How many running tasks to kill."}},
    }),
    ("scale", scale, {
        "type": "object", "additionalProperties": False, "required": ["to"],
        "properties": {"to": {"type": "integer", "minimum": 0, "description": "The new desired count."}},
    }),
    ("wait", wait, {
        "type": "object", "additionalProperties": False,
        "properties": {
            "for": {**_DURATION, "description": "Wait this long."},
            "until": {"type": "string", "description": "Wait until this condition on live metrics holds, e.g. 'queue.visible == 0' "
                      "(the action fails when it has not held within the action's `timeout`)."},
        },
        "oneOf": [{"required": ["for"]}, {"required": ["until"]}],
    }),
]


@hookimpl
def register_actions(register: Callable[..., None]) -> None:
    """Register kill_consumer, scale, set_consumer and wait."""
    for name, function, schema in BUILTIN_ACTIONS:
        register(name, function, schema=schema)
    register("set_consumer", set_consumer, schema=_knob_schema())
