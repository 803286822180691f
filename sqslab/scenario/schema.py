"""The scenario format v1 as a JSON Schema, and schema errors in words a person reads.

The settings (infra, consumer, settle and the top-level scalars) come from the table in
sqslab.scenario.settings; the structure around them (load phases, actions, expectations) is
written here. `full_schema` adds every loaded action's parameters, for editors and
`sqslab schema`. `schema_problems` validates data and explains each error as a Problem:
the unit grammar's own message for a bad duration, "did you mean" for a misspelled key.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqslab.consumer.sqsfaults import KINDS as FAULT_KINDS
from sqslab.scenario.document import Document, Problem, format_path
from sqslab.scenario.settings import schema_section
from sqslab.scenario.units import UnitError, describe, format_duration, parse_duration, parse_fraction, parse_range, parse_rate, parse_size

if TYPE_CHECKING:
    from sqslab.consumers import ConsumerKind
    from sqslab.plugins import PluginHost

#: What an action may take when the scenario does not say (its `timeout:`), in seconds.
DEFAULT_ACTION_TIMEOUT = 300.0

#: The action kinds `sqslab hunt` can generate (a scenario's `hunt.actions` names some of them).
HUNT_ACTION_KINDS = ("kill_consumer", "scale", "set_consumer", "sqs_fault", "redrive_dlq", "wait")
#: What a hunt may vary (`hunt.vary`).
HUNT_VARY = ("load", "sqs", "actions")
#: The `hunt` section's structured keys (its settings come from the table).
HUNT_PROPERTIES: dict[str, Any] = {
    "actions": {"type": "array", "items": {"enum": list(HUNT_ACTION_KINDS)}, "uniqueItems": True, "minItems": 1,
                "description": "The action kinds a variation may add (default: all of them)."},
    "vary": {"type": "array", "items": {"enum": list(HUNT_VARY)}, "uniqueItems": True, "minItems": 1,
             "description": "What the variations change: load (rates, durations, counts), sqs (behaviour settings), "
                            "actions (added timed actions); default: all three."},
}

#: The parameters of one API fault: an entry of `sqs.faults`, and the `sqs_fault` action's.
FAULT_PROPERTIES: dict[str, Any] = {
    "api": {"type": ["string", "array"], "items": {"type": "string"}, "minItems": 1,
            "description": 'The SQS API(s) it hits: a name (DeleteMessage), a list of names, or "*" for every call.'},
    "error": {"enum": list(FAULT_KINDS),
              "description": "throttling (RequestThrottled, HTTP 403), internal (InternalFailure, 500), unavailable "
                             "(ServiceUnavailable, 503), access_denied (AccessDeniedException, 400), or timeout (the call takes "
                             "effect but the connection closes without an answer)."},
    "rate": {"$ref": "#/$defs/fraction", "default": 1, "description": "Share of the matching calls it hits: 0.1 or 10% (default: all)."},
    "latency": {"$ref": "#/$defs/duration_range",
                "description": "Extra time each hit call takes before it is answered (or fails): 200ms or 100ms..2s."},
}

_DEFS: dict[str, Any] = {
    "duration": {
        "type": "string",
        "x-sqslab-unit": "duration",
        "pattern": r"^\s*(\d+(\.\d+)?d)?(\d+(\.\d+)?h)?(\d+(\.\d+)?m)?(\d+(\.\d+)?s)?(\d+(\.\d+)?ms)?\s*$",
        "description": "A duration: 500ms, 30s, 5m, 1h30m, 14d.",
    },
    "duration_range": {"type": "string", "x-sqslab-unit": "duration_range", "description": "A duration or LOW..HIGH, e.g. 50ms..200ms."},
    "rate": {
        "type": "string",
        "x-sqslab-unit": "rate",
        "pattern": r"^\s*\d+(\.\d+)?\s*/\s*[smh]\s*$",
        "description": "Messages per unit of time: 10/s, 600/m.",
    },
    "rate_range": {"type": "string", "x-sqslab-unit": "rate_range", "description": "FROM..TO rates, e.g. 1/s..50/s."},
    "size": {"type": ["integer", "string"], "x-sqslab-unit": "size", "description": "Bytes: 256, 512B, 4KiB."},
    "fraction": {"type": ["number", "string"], "x-sqslab-unit": "fraction", "description": "A share: 0 to 1 (0.05), or a percentage (5%)."},
    "phase": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "description": "Phase name, for `after:` and reports."},
            "rate": {"$ref": "#/$defs/rate", "description": "Constant rate for `duration`."},
            "ramp": {"$ref": "#/$defs/rate_range", "description": "Linear ramp FROM..TO over `duration`."},
            "burst": {"type": "integer", "description": "Send this many messages as fast as possible.", "minimum": 1},
            "count": {"type": "integer", "description": "Send this many messages evenly over `duration`.", "minimum": 1},
            "pause": {"$ref": "#/$defs/duration", "description": "Send nothing for this long."},
            "producer": {"type": "object", "additionalProperties": False, "required": ["program"],
                         "description": "Your own producer program sends this phase's messages; the phase ends when it exits "
                                        "(at most `duration`). Its sends are read from the SQS journal (README, your own producer).",
                         "properties": {"program": {"$ref": "#/$defs/producer_program"}}},
            "duration": {"$ref": "#/$defs/duration", "description": "Length of a rate, ramp or count phase."},
            "payload_size": {"$ref": "#/$defs/size", "description": "Message body size (default 256 bytes, at most 256KiB)."},
            "body": {"type": "string", "minLength": 1,
                     "description": "The body your consumer expects, as a jinja2 template: "
                                    "'{\"orderId\": \"{{ id }}\", \"amount\": {{ rand_int(1, 500) }}}' (README, message bodies)."},
            "body_file": {"type": "string", "minLength": 1, "description": "A file holding the body template, relative to the scenario."},
            "format": {"type": "object", "required": ["name"],
                       "properties": {"name": {"type": "string", "description": "The body format (`sqslab plugins` lists them)."}},
                       "description": "A framework's message format and its parameters: {name: celery, task: orders.charge, "
                                      "args: '[\"{{ id }}\"]'} (README, body formats)."},
            "groups": {
                "description": "FIFO message groups: N (ids spread evenly over N groups) or {count: N, hot: 0.8} (one hot "
                               "group takes that share, the rest spread evenly). Default on a FIFO queue: 1 (strict order).",
                "oneOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "object", "additionalProperties": False, "required": ["count"], "properties": {
                        "count": {"type": "integer", "minimum": 1, "description": "How many groups."},
                        "hot": {"$ref": "#/$defs/fraction", "description": "The share of messages the first group takes."},
                    }},
                ],
            },
            "duplicate_sends": {"$ref": "#/$defs/fraction",
                                "description": "Share of messages sent a second time with the same id (and deduplication id), "
                                               "as a producer retrying after a timeout: 0.05 or 5%."},
        },
        "description": "One producer phase: exactly one of rate, ramp, burst, count, pause.",
    },
    # "producer_program": consumer.program's command, cwd, env and stop_grace (base_schema puts them in).
    "fault": {
        "type": "object",
        "additionalProperties": False,
        "required": ["api"],
        "anyOf": [{"required": ["error"]}, {"required": ["latency"]}],
        "description": "An API fault: calls to `api` fail with `error` and/or take `latency`, at `rate`.",
        "properties": FAULT_PROPERTIES,
    },
    "action": {
        "type": "object",
        "description": "One action: exactly one trigger (at, after, when), `do` naming the action, and the action's own parameters.",
        "required": ["do"],
        "properties": {
            "name": {"type": "string", "description": "Action name, so later actions can say `after: NAME`."},
            "at": {"$ref": "#/$defs/duration", "description": "Run at this time after t0."},
            "after": {"type": "string",
                      "description": "Run when this phase or named action ends, optionally later: `burst`, `burst + 5s`."},
            "when": {"type": "string",
                     "description": "Run the first time this condition on live metrics holds, e.g. 'queue.visible > 500'."},
            "do": {"type": "string", "description": "The action to run."},
            "timeout": {"$ref": "#/$defs/duration", "default": format_duration(DEFAULT_ACTION_TIMEOUT),
                        "description": "The longest the action may take; a slower one fails like a failed one "
                                       "(a wait `until` gives up then)."},
            "continue_on_error": {"type": "boolean", "default": False, "description": "A failure of this action does not fail the run."},
        },
    },
}


@functools.cache
def _base_schema() -> dict[str, Any]:
    top = schema_section("")
    properties = {}
    for key, value in top["properties"].items():
        if key == "settle":
            properties["load"] = {"type": "array", "description": "Producer phases, run one after another from t0.",
                                  "items": {"$ref": "#/$defs/phase"}}
            properties["actions"] = {"type": "array", "description": "Things done to the system during the run.",
                                     "items": {"$ref": "#/$defs/action"}}
        properties[key] = value
        if key == "hunt":
            value["properties"].update(copy.deepcopy(HUNT_PROPERTIES))
        if key == "sqs":
            value["properties"]["faults"] = {"type": "array", "items": {"$ref": "#/$defs/fault"},
                                             "description": "API faults for the whole run (the `sqs_fault` action adds one for a while)."}
    properties["expect"] = {"type": "array", "items": {"type": "string"},
                            "description": "Expectations over the run's figures, e.g. 'lost == 0', 'duplicates <= 5%', 'drain_time < 2m'."}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://sqslab.dev/schema/scenario-v1.json",
        "title": "sqslab scenario, format version 1",
        "type": "object",
        "additionalProperties": False,
        "required": top.get("required", []),
        "properties": properties,
        "$defs": _DEFS,
    }


def base_schema(kinds: Mapping[str, ConsumerKind] | None = None) -> dict[str, Any]:
    """The scenario format v1 JSON Schema, without plugin actions (a copy to change at will),
    with the sections of these consumer kinds (default: sqslab's own) in `consumer`."""
    from sqslab.consumers.kinds import builtin_kinds
    from sqslab.consumers.program import SCHEMA as PROGRAM

    schema = copy.deepcopy(_base_schema())
    # A producer program has a consumer program's shape, less what only a consumer task has.
    shared = {key: PROGRAM["properties"][key] for key in ("command", "cwd", "env", "stop_grace")}
    schema["$defs"]["producer_program"] = copy.deepcopy({
        "type": "object", "additionalProperties": False, "required": ["command"], "properties": shared,
        "description": "Your producer program, run once for the phase (the shape of consumer.program)."})
    consumer = schema["properties"]["consumer"]["properties"]
    for kind in (builtin_kinds() if kinds is None else kinds).values():
        for key, section in kind.sections().items():
            consumer[key] = copy.deepcopy(section)
    return schema


def full_schema(host: PluginHost) -> dict[str, Any]:
    """The schema with every loaded action's parameters and consumer kind, for editors and `sqslab schema`."""
    schema = base_schema(host.consumer_kinds)
    action = schema["$defs"]["action"]
    action["properties"]["do"]["enum"] = sorted(host.actions)
    branches = []
    for name, spec in sorted(host.actions.items()):
        params = copy.deepcopy(spec.schema)
        params_defs = params.pop("$defs", {})
        for key, value in params_defs.items():
            schema["$defs"].setdefault(key, value)
        properties = {**action["properties"], **params.get("properties", {})}
        then: dict[str, Any] = {"properties": properties, "additionalProperties": False}
        if params.get("required"):
            then["required"] = ["do", *params["required"]]
        if spec.description:
            then["description"] = spec.description
        branches.append({"if": {"properties": {"do": {"const": name}}, "required": ["do"]}, "then": then})
    action["allOf"] = branches
    fmt = schema["$defs"]["phase"]["properties"]["format"]
    fmt["properties"]["name"]["enum"] = sorted(host.formats)
    fmt["allOf"] = [{"if": {"properties": {"name": {"const": name}}, "required": ["name"]},
                     "then": {"properties": {"name": fmt["properties"]["name"], **spec.schema.get("properties", {})},
                              "required": ["name", *spec.schema.get("required", [])], "additionalProperties": False,
                              "description": spec.description}}
                    for name, spec in sorted(host.formats.items())]
    return schema


def unit_defs(*names: str) -> dict[str, Any]:
    """Copies of the unit definitions (`duration`, ...) for an action's own parameter schema."""
    return {name: copy.deepcopy(_DEFS[name]) for name in names}


# ---------------------------------------------------------------- validation against a schema


def schema_problems(doc: Document, data: Any, schema: dict[str, Any], prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """Every way data breaks schema, each explained at its position in doc."""
    validator = _validator_class()(schema)
    problems = []
    for error in validator.iter_errors(data):
        problems.extend(_explain(doc, error, prefix))
    return problems


@functools.cache
def _validator_class() -> Any:
    """Draft 2020-12 plus `x-sqslab-unit`, which checks durations, rates and sizes with the unit parsers."""
    import jsonschema

    def check_unit(validator: Any, unit: str, instance: Any, schema: dict[str, Any]) -> Any:
        message = unit_error(unit, instance)
        if message:
            yield jsonschema.ValidationError(message)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"x-sqslab-unit": check_unit})


def _explain(doc: Document, error: Any, prefix: tuple[str | int, ...]) -> list[Problem]:
    path = prefix + tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    unit = schema.get("x-sqslab-unit")
    if unit:
        return [doc.problem(path, unit_error(unit, error.instance) or f"{error.instance!r} is not a valid {unit.replace('_', ' ')}")]
    explain = _EXPLAIN.get(error.validator)
    if explain is not None:
        found = explain(doc, error, path, schema)
        if found is not None:
            return found
    return [doc.problem(path, error.message)]


def _additional(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    allowed = list(schema.get("properties", {}))
    extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
    return [doc.problem(path + (key,), unknown_key_message(key, allowed), key=True) for key in extras]


def _required(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    missing = error.message.split("'")[1] if "'" in error.message else error.message
    where = format_path(path) or "the scenario"
    return [doc.problem(path, f"missing required key {missing!r} in {where}")]


def _type(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    expected = error.validator_value
    expected = " or ".join(expected) if isinstance(expected, list) else expected
    article = "an" if str(expected)[0] in "aeio" else "a"
    return [doc.problem(path, f"expected {article} {expected}, got {describe(error.instance)}")]


def _enum(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    options = ", ".join(json.dumps(v) for v in error.validator_value)
    close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return [doc.problem(path, f"{describe(error.instance)} is not one of {options}{hint}")]


def _const(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    return [doc.problem(path, f"must be {json.dumps(error.validator_value)}, got {describe(error.instance)}")]


def _bound(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    word = "at least" if error.validator == "minimum" else "at most"
    return [doc.problem(path, f"must be {word} {error.validator_value}, got {error.instance!r}")]


def _min_properties(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem]:
    return [doc.problem(path, f"give at least one of: {', '.join(schema.get('properties', {}))}")]


def _one_of(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem] | None:
    if path and path[-1] == "groups":
        # For a mapping, say what is wrong inside it (the second branch's error).
        inner = [e for e in error.context or [] if isinstance(error.instance, dict) and list(e.relative_schema_path)[:1] == [1]]
        detail = f": {'.'.join(map(str, inner[0].relative_path))} {inner[0].message}" if inner else ""
        return [doc.problem(path, f"give a number of groups (e.g. 10) or {{count: N, hot: 0.8}}{detail}")]
    if not all(set(b) == {"required"} for b in error.validator_value):
        return None
    keys = [b["required"][0] for b in error.validator_value]
    return [doc.problem(path, f"give exactly one of {', '.join(keys)}")]


def _any_of(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem] | None:
    if not all(set(b) == {"required"} for b in error.validator_value):
        return None
    keys = [b["required"][0] for b in error.validator_value]
    return [doc.problem(path, f"give at least one of {', '.join(keys)}")]


def _pattern(doc: Document, error: Any, path: tuple[str | int, ...], schema: dict[str, Any]) -> list[Problem] | None:
    """A text that breaks a pattern, in the words of its schema's `x-sqslab-says` (what the
    text must be), rather than the regular expression."""
    says = error.schema.get("x-sqslab-says") if isinstance(error.schema, dict) else None
    if says:
        return [doc.problem(path, f"{error.instance!r}: {says}")]
    if not path or path[-1] != "name":
        return None
    return [doc.problem(path, f"{error.instance!r}: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit")]


_EXPLAIN: dict[str, Any] = {
    "additionalProperties": _additional,
    "required": _required,
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound,
    "maximum": _bound,
    "minProperties": _min_properties,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "pattern": _pattern,
}


def unit_error(unit: str, value: Any) -> str | None:
    """Why value is not a valid `unit` (duration, rate, size, duration_range, rate_range), or None."""
    parsers: dict[str, Callable[[Any], object]] = {
        "duration": parse_duration,
        "rate": parse_rate,
        "size": parse_size,
        "duration_range": parse_range,
        "rate_range": parse_rate_range,
        "fraction": parse_fraction,
    }
    parse = parsers[unit]
    try:
        parse(value)
    except UnitError as exc:
        return str(exc)
    return None


def parse_rate_range(value: Any) -> tuple[float, float]:
    """(from, to) msg/s of a ramp `1/s..50/s`; a single rate is refused."""
    if not isinstance(value, str) or ".." not in value:
        raise UnitError(f"{value!r} is not a ramp: give FROM..TO rates, e.g. 1/s..50/s")
    return parse_range(value, parse_rate)


def unknown_key_message(key: str, allowed: list[str]) -> str:
    """`unknown key 'x'; did you mean 'y'?`, or the keys allowed there."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
