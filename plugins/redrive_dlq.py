"""redrive_dlq: an example action plugin that moves dead-lettered messages back to the queue.

Copy this file into a directory of your own plugins and load it with
`sqslab run --plugins-dir DIR scenario.yaml` (or ship it in a package with an entry
point in the `sqslab` group). Then a scenario can say:

    actions:
      - {after: burst + 20s, do: redrive_dlq}              # everything in the DLQ
      - {at: 2m, do: redrive_dlq, max: 100}                 # at most 100 messages

How it works, step by step:

1. `register_actions(register)` is the hook. sqslab calls it once when plugins load and
   hands it a `register` callback; call it once per action with the action's name, the
   function that does it, and the JSON Schema of its parameters. `sqslab validate` checks
   every scenario's parameters against that schema before anything runs, so a scenario
   with `max: -1` or `mx: 3` is rejected with the file, line and "did you mean".
2. When the action fires, sqslab calls `redrive_dlq(ctx, params)`. `params` holds the
   scenario's parameters (already validated); `ctx` is the run's ActionContext:
   `ctx.sqs` (a boto3 SQS client for the run's endpoint), `ctx.queue_url`,
   `ctx.dlq_url` (None when the scenario turns the DLQ off), `ctx.target`,
   `ctx.scenario`, `ctx.rng` (seeded), `ctx.sleep(seconds)` (ends early when the run is
   stopped), `ctx.latest()` (the last sample of live metrics), `ctx.emit(event)`.
3. The function returns a short text of what it did; it appears in the event log and in
   the report's actions table. Raising an exception fails the action, and with it the
   run (exit 3) unless the scenario says `continue_on_error: true`.

The messages are moved the portable way (receive from the DLQ, send to the queue,
delete from the DLQ), so it works on the emulator, LocalStack, ElasticMQ and AWS alike.
A moved message is a new SQS message with the same body, so its receive count starts
again at 0 and the ledger follows it by the payload id as before.

Test it like the project's own actions: run a short scenario with it on the local
target and check the events (see tests/test_report.py, which redrives in its fixture).
"""

from __future__ import annotations

from typing import Any, Callable

import sqslab

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max": {"type": "integer", "minimum": 1, "description": "Move at most this many messages (default: all)."},
        "visibility_timeout": {"type": "integer", "minimum": 1, "maximum": 43200, "default": 30,
                               "description": "Seconds a received DLQ message stays hidden while it is moved."},
    },
}


def redrive_dlq(ctx: Any, params: dict[str, Any]) -> str:
    """Move messages from the DLQ back to the source queue; returns how many moved."""
    if not ctx.dlq_url:
        raise RuntimeError("the scenario has no DLQ (infra.dlq.enabled is false): nothing to redrive")
    limit = params.get("max")
    moved = 0
    empty_polls = 0
    while empty_polls < 2 and (limit is None or moved < limit):
        want = 10 if limit is None else min(10, limit - moved)
        response = ctx.sqs.receive_message(QueueUrl=ctx.dlq_url, MaxNumberOfMessages=want, WaitTimeSeconds=0,
                                           VisibilityTimeout=params.get("visibility_timeout", 30),
                                           MessageAttributeNames=["All"])
        messages = response.get("Messages", [])
        if not messages:
            empty_polls += 1  # a second empty poll: SQS may answer empty once while messages exist
            continue
        empty_polls = 0
        entries = []
        for i, message in enumerate(messages):
            entry = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = ctx.sqs.send_message_batch(QueueUrl=ctx.queue_url, Entries=entries)
        ok = {item["Id"] for item in sent.get("Successful", [])}
        # Delete only what reached the queue: a failed send leaves the message in the DLQ.
        deletes = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if str(i) in ok]
        if deletes:
            ctx.sqs.delete_message_batch(QueueUrl=ctx.dlq_url, Entries=deletes)
        moved += len(deletes)
        if sent.get("Failed"):
            raise RuntimeError(f"moved {moved}, then the queue refused {len(sent['Failed'])}: {sent['Failed'][0].get('Message', '')}")
    ctx.emit({"event": "redriven", "count": moved})
    return f"moved {moved} message(s) from the DLQ to the queue"


@sqslab.hookimpl
def register_actions(register: Callable[..., None]) -> None:
    """Register the redrive_dlq action."""
    register("redrive_dlq", redrive_dlq, schema=SCHEMA, description="Move DLQ messages back to the source queue.")
