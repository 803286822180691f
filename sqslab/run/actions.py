"""The built-in actions, registered through the same hook as any plugin's.

An action function is called as `function(ctx, params)`: `ctx` is the runner's
ActionContext (the target, the queues, a seeded random generator, waiting helpers),
`params` the action's parameters from the scenario, already validated against its
schema. It returns a short text of what it did, for the event log and the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqslab.hookspecs import hookimpl
from sqslab.scenario.schema import FAULT_PROPERTIES, unit_defs
from sqslab.scenario.units import parse_duration

if TYPE_CHECKING:
    from sqslab.consumers import ConsumerKind
    from sqslab.run.scheduler import ActionContext


def _revision_schema(kinds: Mapping[str, ConsumerKind]) -> dict[str, Any]:
    """set_consumer's parameters: what each kind of consumer takes (the built-in consumer's
    live knobs, a program's `env`, a plugin kind's own)."""
    properties: dict[str, Any] = {}
    for kind in kinds.values():
        properties.update(kind.revision_schema())
    return {"type": "object", "properties": properties, "additionalProperties": False, "minProperties": 1,
            "$defs": unit_defs("duration", "duration_range", "fraction")}


def kill_consumer(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Kill N running consumer tasks abruptly (SIGKILL locally, StopTask on ECS); the service replaces them."""
    killed = ctx.target.kill(params.get("count", 1), ctx.rng)
    return f"killed {len(killed)} task(s): {', '.join(killed) or 'none running'}"


def scale(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Change the desired number of consumer tasks; scale-in stops tasks gracefully (SIGTERM)."""
    ctx.target.scale(params["to"])
    return f"desired count set to {params['to']}"


def set_consumer(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Roll the consumer tasks to a new revision: new knobs (the built-in consumer) or
    environment (`env`, a consumer program), as a new task definition revision would."""
    consumer = ctx.revise_consumer(params)
    if consumer.in_place(params):  # a Lambda function's reserved concurrency, its mapping's state
        ctx.target.tune(consumer)
        return "changed in place: " + consumer.revision_text(params)
    ctx.target.set_consumer(consumer)
    return "consumers rolled to " + consumer.revision_text(params)


def wait(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Wait for a time or until a condition on live metrics holds; actions `after:` it start then."""
    if "for" in params:
        seconds = parse_duration(params["for"])
        ctx.sleep(seconds)
        return f"waited {params['for']}"
    waited = ctx.wait_until(params["until"])
    return f"'{params['until']}' held after {waited:.1f}s"


def sqs_fault(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Make SQS API calls fail (or slow down) from now on, for `for` or to the end of the run."""
    from sqslab.scenario.load import resolve_fault

    now = time.time()
    lasting = parse_duration(params["for"]) if "for" in params else None
    fault = {k: v for k, v in params.items() if k != "for"}
    rule = resolve_fault(fault, f"action {ctx.spec.name}", start=now, end=now + lasting if lasting is not None else None)
    ctx.target.sqs_fault(rule)
    apis = ", ".join(rule["api"])
    what = " + ".join(p for p in (rule["error"], f"{params['latency']} latency" if "latency" in params else None) if p)
    until = f" for {params['for']}" if "for" in params else " until the end of the run"
    return f"{what} on {apis} at {rule['rate']:.0%}{until}"


def redrive_dlq(ctx: ActionContext, params: dict[str, Any]) -> str:
    """Move the DLQ's messages back to the queue they came from with SQS's redrive API
    (StartMessageMoveTask), and wait until the move task ends."""
    if not ctx.dlq_url:
        raise RuntimeError("the scenario has no DLQ (infra.dlq.enabled is false): nothing to redrive")
    arn = ctx.sqs.get_queue_attributes(QueueUrl=ctx.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    request: dict[str, Any] = {"SourceArn": arn}
    if "rate" in params:
        request["MaxNumberOfMessagesPerSecond"] = params["rate"]
    handle = ctx.sqs.start_message_move_task(**request)["TaskHandle"]
    task: dict[str, Any] = {}
    try:
        while True:
            results = ctx.sqs.list_message_move_tasks(SourceArn=arn, MaxResults=1).get("Results", [])
            task = results[0] if results else {}
            if task.get("Status") not in ("RUNNING", "CANCELLING"):
                break
            ctx.sleep(REDRIVE_POLL)
    except BaseException:
        # The action's time is up or the run is stopping: the task must not go on alone.
        try:
            ctx.sqs.cancel_message_move_task(TaskHandle=handle)
        except Exception:  # noqa: BLE001, S110 - it may have ended meanwhile; the first error is the one to tell
            pass
        raise
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    ctx.emit({"event": "redriven", "count": moved, "status": task.get("Status"), "to_move": task.get("ApproximateNumberOfMessagesToMove")})
    if task.get("Status") != "COMPLETED":
        raise RuntimeError(f"the move task ended {task.get('Status')}: {task.get('FailureReason', 'no reason given')} "
                           f"({moved} message(s) moved)")
    return f"moved {moved} message(s) from the DLQ back to their source queue"


#: How often redrive_dlq asks how its move task is doing (seconds).
REDRIVE_POLL = 0.5

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
    ("sqs_fault", sqs_fault, {
        "type": "object", "additionalProperties": False, "required": ["api"],
        "anyOf": [{"required": ["error"]}, {"required": ["latency"]}],
        "properties": {**FAULT_PROPERTIES,
                       "for": {**_DURATION, "description": "How long the fault lasts (default: to the end of the run)."}},
        "$defs": unit_defs("duration", "duration_range", "fraction"),
    }),
    ("redrive_dlq", redrive_dlq, {
        "type": "object", "additionalProperties": False,
        "properties": {"rate": {"type": "integer", "minimum": 1, "maximum": 500,
                                "description": "MaxNumberOfMessagesPerSecond of the move task (default: as fast as SQS goes)."}},
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
    """Register kill_consumer, scale, set_consumer, sqs_fault, redrive_dlq and wait."""
    for name, function, schema in BUILTIN_ACTIONS:
        register(name, function, schema=schema)
    register("set_consumer", set_consumer, schema=_revision_schema)
