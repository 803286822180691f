"""Body formats: the envelope a framework's consumer reads, built for a load phase's
`format:` (`{name: celery, task: orders.charge, args: '["{{ id }}"]'}`).

A format is registered through the `register_body_formats` hook, the built-ins here as
any plugin's: `register(name, function, schema=..., templates=(...), description=...)`.
`schema` is the JSON Schema of its parameters (those beside `name`), which
`sqslab validate` checks; each parameter named in `templates` is a body template
(sqslab.scenario.bodies, the same names and limits), rendered per message before
`function(params, message)` is called with the rendered parameters and the message
(a FormatMessage). The function returns the body, or raises FormatError saying what is
wrong with the parameters (validate reports it at the phase's `format`; at send time it
fails that message's send).

The built-in formats write what the frameworks themselves send (checked against them in
tests/test_formats.py):
- `celery`: Celery's task message (protocol 2) in kombu's SQS envelope, base64 as kombu
  writes it; the task id is sqslab's id.
- `dramatiq`: dramatiq's message as dramatiq-sqs sends it (base64 JSON); the message id
  is sqslab's id, the queue the run's queue.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqslab.hookspecs import hookimpl
from sqslab.scenario import bodies
from sqslab.scenario.bodies import FormatMessage
from sqslab.scenario.timeline import Phase

__all__ = ["FormatError", "FormatMessage", "celery", "dramatiq", "trial_body"]


class FormatError(ValueError):
    """A format's parameters cannot make a body; the message says why, `key` names the
    parameter at fault (validate points at it), when one is."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _json_param(params: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """A parameter rendered as JSON text of the given kind (list or dict), or its default."""
    text = params.get(key)
    if text is None:
        return default
    noun = "a JSON list" if kind is list else "a JSON object"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise FormatError(f"{key} must render as {noun}; it rendered {_shown(text)}, which is not JSON: {exc}", key) from None
    if not isinstance(value, kind):
        raise FormatError(f"{key} must render as {noun}; it rendered {_shown(text)}", key)
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode("utf-8")).decode("ascii")


def _uuid_of(*parts: object) -> str:
    """A UUID fixed by the message (a seeded run sends the same bodies)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sqslab:" + ":".join(map(str, parts))))


def celery(params: dict[str, Any], message: FormatMessage) -> str:
    """Celery's task message (protocol 2) in kombu's SQS envelope (base64 JSON)."""
    args = _json_param(params, "args", list, [])
    kwargs = _json_param(params, "kwargs", dict, {})
    task = params["task"]
    payload = [args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    headers = {"lang": "py", "task": task, "id": message.id, "shadow": None, "eta": None, "expires": None, "group": None,
               "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": message.id, "parent_id": None,
               "argsrepr": repr(args), "kwargsrepr": repr(kwargs), "origin": "sqslab", "ignore_result": False,
               "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
    envelope = {
        "body": _b64json(payload),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {"correlation_id": message.id, "reply_to": _uuid_of(message.id, "reply"), "delivery_mode": 2,
                       "delivery_info": {"exchange": "", "routing_key": params.get("routing_key") or message.queue_name},
                       "priority": 0, "body_encoding": "base64", "delivery_tag": _uuid_of(message.id, "tag")},
    }
    return _b64json(envelope)


def dramatiq(params: dict[str, Any], message: FormatMessage) -> str:
    """dramatiq's message as dramatiq-sqs sends it (base64 JSON)."""
    args = _json_param(params, "args", list, [])
    kwargs = _json_param(params, "kwargs", dict, {})
    body = {"queue_name": params.get("queue") or message.queue_name, "actor_name": params["actor"], "args": args,
            "kwargs": kwargs, "options": {}, "message_id": message.id, "message_timestamp": int(message.sent_at * 1000)}
    return _b64json(body)


def trial_body(spec: Any, params: dict[str, Any]) -> tuple[str | None, str] | None:
    """What is wrong with a format's parameters, found by writing one body as `validate`
    does a template's (placeholders for the run's queue): (the parameter at fault or None,
    the message), or None."""
    phase = Phase(name="phase", kind="burst", start=0.0, count=1, format={"name": spec.name, **params})
    try:
        body = bodies.PhaseBodies(seed=0, formats={spec.name: spec}).render(phase, "00000000-0000-4000-8000-000000000000", 1, 0, 0.0)
    except FormatError as exc:
        return exc.key, str(exc)
    except Exception as exc:  # noqa: BLE001 - a plugin's format failing is its parameters' problem, told, not a traceback
        return None, f"the format {spec.name!r} fails to write a body: {bodies.render_error(exc)}"
    problem = bodies.body_problem(body)
    return (None, problem) if problem else None


_TEMPLATE = {"type": "string", "minLength": 1}
_NAME = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^[A-Za-z_][A-Za-z0-9_.:-]*$",
         "x-sqslab-says": "a name is letters, digits, '_', '.', ':' or '-', starting with a letter or '_'"}
_ARGS = {**_TEMPLATE, "description": "A template rendering the positional arguments as a JSON list: "
                                     "'[\"{{ id }}\", {{ rand_int(1, 500) }}]'."}
_KWARGS = {**_TEMPLATE, "description": "A template rendering the keyword arguments as a JSON object."}

CELERY_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["task"],
    "properties": {"task": {**_NAME, "description": "The task's registered name, e.g. orders.charge."},
                   "args": _ARGS, "kwargs": _KWARGS,
                   "routing_key": {**_NAME, "description": "delivery_info's routing key (default: the run's queue name)."}},
}
DRAMATIQ_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["actor"],
    "properties": {"actor": {**_NAME, "description": "The actor's name (its function's name unless actor_name is set)."},
                   "args": _ARGS, "kwargs": _KWARGS,
                   "queue": {**_NAME, "description": "dramatiq's queue name in the message (default: the run's queue name)."}},
}


@hookimpl
def register_body_formats(register: Callable[..., None]) -> None:
    """The built-in formats."""
    register("celery", celery, schema=CELERY_SCHEMA, templates=("args", "kwargs"),
             description="Celery's task message in kombu's SQS envelope (task id = sqslab's id)")
    register("dramatiq", dramatiq, schema=DRAMATIQ_SCHEMA, templates=("args", "kwargs"),
             description="dramatiq's message as dramatiq-sqs sends it (message id = sqslab's id)")
