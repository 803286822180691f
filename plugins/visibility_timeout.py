"""set_visibility_timeout: an example action plugin that changes the queue's visibility timeout mid-run.

Copy this file into a directory of your own plugins and load it with
`sqslab run --plugins-dir DIR scenario.yaml` (or ship it in a package with an entry
point in the `sqslab` group). Then a scenario can say:

    actions:
      - {at: 30s, do: set_visibility_timeout, to: 2m}          # the queue
      - {after: burst, do: set_visibility_timeout, to: 5s, queue: dlq}

which is what an operator does when messages keep coming back because the work takes
longer than the visibility timeout: raise it, and watch the redeliveries stop.

How it works, step by step:

1. `register_actions(register)` is the hook. sqslab calls it once when plugins load and
   hands it a `register` callback; call it once per action with the action's name, the
   function that does it, and the JSON Schema of its parameters. `sqslab validate` checks
   every scenario's parameters against that schema before anything runs, so a scenario
   with `to: 13h` or `too: 5s` is rejected with the file, line and "did you mean". The
   `x-sqslab-unit` keyword makes a string a checked duration (`5s`, `2m`), and
   `sqslab.scenario.units.parse_duration` turns it into seconds.
2. When the action fires, sqslab calls `set_visibility_timeout(ctx, params)`. `params`
   holds the scenario's parameters (already validated); `ctx` is the run's ActionContext:
   `ctx.sqs` (a boto3 SQS client for the run's endpoint), `ctx.queue_url`,
   `ctx.dlq_url` (None when the scenario turns the DLQ off), `ctx.target`,
   `ctx.scenario`, `ctx.rng` (seeded), `ctx.sleep(seconds)` (ends early when the run is
   stopped), `ctx.latest()` (the last sample of live metrics), `ctx.emit(event)`.
3. The function returns a short text of what it did; it appears in the event log and in
   the report's actions table. Raising an exception fails the action, and with it the
   run (exit 3) unless the scenario says `continue_on_error: true`.

SetQueueAttributes works the same on the emulator and on AWS (where the run's identity
needs sqs:SetQueueAttributes on the queue). The change applies to receives from then on:
a message already in flight keeps the timeout it was received with.

Test it like the project's own actions: run a short scenario with it on the local
target and check the events and the queue (see tests/test_run.py, which uses this file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqslab
from sqslab.scenario.units import parse_duration

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to"],
    "properties": {
        "to": {"type": "string", "x-sqslab-unit": "duration",
               "description": "The new visibility timeout, 0s to 12h in whole seconds (e.g. 2m)."},
        "queue": {"enum": ["queue", "dlq"], "default": "queue", "description": "Which of the run's queues (default: the queue)."},
    },
}

MAX_VISIBILITY_TIMEOUT = 12 * 3600


def set_visibility_timeout(ctx: Any, params: dict[str, Any]) -> str:
    """Set VisibilityTimeout on the queue (or the DLQ); returns what it was and what it is."""
    seconds = parse_duration(params["to"])
    if seconds != int(seconds) or not 0 <= seconds <= MAX_VISIBILITY_TIMEOUT:
        raise ValueError(f"to: {params['to']} is not a whole number of seconds from 0s to 12h")
    which = params.get("queue", "queue")
    url = ctx.dlq_url if which == "dlq" else ctx.queue_url
    if url is None:
        raise RuntimeError("the scenario has no DLQ (infra.dlq.enabled is false)")
    before = ctx.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]["VisibilityTimeout"]
    ctx.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(int(seconds))})
    ctx.emit({"event": "visibility_timeout_set", "queue": which, "from": int(before), "to": int(seconds)})
    return f"{which} visibility timeout {before}s -> {int(seconds)}s"


@sqslab.hookimpl
def register_actions(register: Callable[..., None]) -> None:
    """Register the set_visibility_timeout action."""
    register("set_visibility_timeout", set_visibility_timeout, schema=SCHEMA,
             description="Change the queue's (or the DLQ's) visibility timeout during a run.")
