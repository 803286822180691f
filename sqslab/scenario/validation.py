"""Validation of a parsed scenario: every problem at once, each with its position.

Passes, in order, each on the whole document: the JSON Schema (sqslab.scenario.schema), each
action's parameters against that action's own schema (plugins included), then meaning:
limits of the settings table, knobs that contradict each other, phase shapes, triggers
(references, circles, the cost guard), expectations and conditions.

A meaning check sees data the schema may already have refused, so it reads every part
through the tolerant helpers below and skips what has the wrong shape. It never catches
an exception to hide one: only the unit grammar's own UnitError is expected, and any
other exception is a bug in sqslab that surfaces as an internal error.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqslab.consumer.sqsfaults import SQS_APIS
from sqslab.scenario.document import Document, Problem, folder_of, items, mapping
from sqslab.scenario.names import ACTION_KEYS, PHASE_KINDS, default_action_name, default_phase_name, split_after
from sqslab.scenario.schema import (
    DEFAULT_ACTION_TIMEOUT,
    base_schema,
    parse_rate_range,
    schema_problems,
    unknown_key_message,
)
from sqslab.scenario.settings import BY_KEY, SETTINGS
from sqslab.scenario.units import UnitError, describe, format_duration, parse_duration, parse_rate, parse_size
from sqslab.truth.expectations import FIGURES, LIVE_METRICS, ExpressionError, parse_condition

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost

TRIGGER_KEYS = ("at", "after", "when")
MAX_PAYLOAD = 256 * 1024

Check = Callable[[Document, dict[str, Any]], list[Problem]]


def validate_document(doc: Document, host: PluginHost) -> list[Problem]:
    """Every problem with a parsed scenario: schema, actions' parameters, then meaning."""
    data = doc.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}" if data is not None else "nothing"
        return [doc.problem((), f"a scenario is a mapping of keys (version, name, infra, ...), got {kind}")]
    schema = base_schema(host.consumer_kinds)
    problems = explain_alternatives(doc, data, schema, schema_problems(doc, data, schema))
    problems += action_problems(doc, data, host)
    problems += consumer_problems(doc, data, host)
    problems += format_problems(doc, data, host)
    for check in MEANING_CHECKS:
        problems += check(doc, data)
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.col, p.path))


# ---------------------------------------------------------------- alternatives

#: How jsonschema ends a oneOf/anyOf error the schema pass has no better words for.
NO_ALTERNATIVE = "is not valid under any of the given schemas"
#: What a key that takes one of several shapes is for, where its message should say so.
PURPOSES = {"command": "name a program"}
_NOUNS = {"string": "string", "array": "list", "object": "mapping", "integer": "whole number", "number": "number",
          "boolean": "boolean"}


def explain_alternatives(doc: Document, data: Any, schema: dict[str, Any], problems: list[Problem]) -> list[Problem]:
    """problems, with each "... is not valid under any of the given schemas" said again as
    what the value must be (`command must name a program: a non-empty string or list, got
    an empty list`), from the shapes of the alternatives the schema gives."""
    if not any(p.message.endswith(NO_ALTERNATIVE) for p in problems):
        return problems
    import jsonschema

    better: dict[Problem, Problem] = {}
    for error in jsonschema.Draft202012Validator(schema).iter_errors(data):
        if error.validator not in ("oneOf", "anyOf") or not error.message.endswith(NO_ALTERNATIVE):
            continue
        path = tuple(error.absolute_path)
        message = alternatives_message(path, error.instance, error.validator_value)
        if message:
            better[doc.problem(path, error.message)] = doc.problem(path, message)
    return [better.get(p, p) for p in problems]


def alternatives_message(path: tuple[str | int, ...], value: Any, branches: list[Any]) -> str | None:
    """`KEY must PURPOSE: SHAPES, got VALUE` for a value that fits none of the branches, or
    None when a branch is not a plain shape (a type, maybe non-empty)."""
    shapes = []
    for branch in branches:
        kind = branch.get("type") if isinstance(branch, dict) else None
        if not isinstance(kind, str) or kind not in _NOUNS:  # a list of types, or no type: not a plain shape
            return None
        non_empty = branch.get("minLength", 0) >= 1 or branch.get("minItems", 0) >= 1
        shapes.append(("non-empty " if non_empty else "", _NOUNS[kind]))
    if len({qualifier for qualifier, _ in shapes}) == 1:
        qualifier = shapes[0][0]
        said = f"{'an' if (qualifier or shapes[0][1])[0] in 'aeiou' else 'a'} {qualifier}{' or '.join(n for _, n in shapes)}"
    else:
        said = " or ".join(f"{'an' if (q or n)[0] in 'aeiou' else 'a'} {q}{n}" for q, n in shapes)
    key = next((part for part in reversed(path) if isinstance(part, str)), "the value")
    got = f"an empty {_NOUNS['array'] if isinstance(value, list) else _NOUNS['object']}" if value in ([], {}) else describe(value)
    purpose = PURPOSES.get(key)
    return f"{key} must {purpose}: {said}, got {got}" if purpose else f"{key} must be {said}, got {got}"


# ---------------------------------------------------------------- tolerant reading


def value_at(data: Any, path: tuple[str, ...]) -> Any:
    """The value at a key path, or None where a part is missing or not a mapping."""
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def seconds(value: Any) -> float | None:
    """A duration in seconds, or None where it is not one (the schema pass reports it)."""
    try:
        return parse_duration(value)
    except UnitError:
        return None


def setting_seconds(data: dict[str, Any], key: str) -> float | None:
    """A duration setting in seconds, its default when absent, None when invalid."""
    raw = value_at(data, BY_KEY[key].path)
    return seconds(BY_KEY[key].default if raw is None else raw)


def set_on_command_line(doc: Document, path: tuple[str | int, ...]) -> bool:
    """Whether the value at path (or a mapping holding it) was given with --set."""
    return any(path[:i] in doc.origins for i in range(1, len(path) + 1))


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def max_consumers(data: dict[str, Any]) -> int:
    """The scenario's cost guard (infra.max_consumers, or its default)."""
    value = mapping(data, "infra").get("max_consumers")
    default: int = BY_KEY["infra.max_consumers"].default
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# ---------------------------------------------------------------- actions


def action_problems(doc: Document, data: dict[str, Any], host: PluginHost) -> list[Problem]:
    """Each action: one trigger, a known `do`, and parameters valid for that action."""
    problems = []
    for i, action in enumerate(items(data, "actions")):
        if not isinstance(action, dict):
            continue
        path = ("actions", i)
        triggers = [k for k in TRIGGER_KEYS if k in action]
        if len(triggers) != 1:
            said = " and ".join(triggers) if triggers else "none"
            problems.append(doc.problem(path, f"an action needs exactly one trigger (at, after or when); it has {said}"))
        name = action.get("do")
        if not isinstance(name, str):
            continue
        spec = host.actions.get(name)
        if spec is None:
            problems.append(doc.problem(path + ("do",), unknown_name_message("action", name, host.actions)))
            continue
        params = {k: v for k, v in action.items() if k not in ACTION_KEYS}
        problems += param_problems(doc, path, params, spec.schema, ACTION_KEYS, f"action {name!r}")
    return problems


def unknown_name_message(noun: str, name: str, known: Iterable[str], known_as: str | None = None) -> str:
    """`unknown action 'x'; did you mean 'y'?`, or the names a plugin host knows."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"{known_as or f'known {noun}s'}: {', '.join(names)}"
    return f"unknown {noun} {name!r}; {hint}"


def param_problems(doc: Document, path: tuple[str | int, ...], params: dict[str, Any], schema: dict[str, Any],
                   own_keys: tuple[str, ...], what: str) -> list[Problem]:
    """A plugin's parameters (an action's, a body format's) against its schema; an unknown
    key is told with a suggestion among the parameters and the mapping's own keys."""
    problems = []
    allowed = list(schema.get("properties", {}))
    closed = schema.get("additionalProperties") is False
    for key in params:
        if key not in allowed and closed:
            problems.append(doc.problem(path + (key,), unknown_key_message(key, allowed + list(own_keys)) + f" ({what})", key=True))
    checked = {k: v for k, v in params.items() if k in allowed or not closed}
    return problems + [p for p in schema_problems(doc, checked, schema, path) if "unknown key" not in p.message]


def format_problems(doc: Document, data: dict[str, Any], host: PluginHost) -> list[Problem]:
    """Each phase's body format: a known name, parameters valid for it, template parameters
    that check as templates, and a trial body the format writes and SQS takes."""
    from sqslab.scenario import bodies
    from sqslab.scenario.formats import trial_body

    problems = []
    for i, phase in enumerate(items(data, "load")):
        fmt = phase.get("format") if isinstance(phase, dict) else None
        if not isinstance(fmt, dict) or not isinstance(fmt.get("name"), str):
            continue
        path: tuple[str | int, ...] = ("load", i, "format")
        if {"body", "body_file"} & phase.keys():
            problems.append(doc.problem(path, "a format writes the whole body; give body (or body_file) or format, not both"))
        spec = host.formats.get(fmt["name"])
        if spec is None:
            problems.append(doc.problem(path + ("name",), unknown_name_message("body format", fmt["name"], host.formats,
                                                                               known_as="known formats")))
            continue
        params = {k: v for k, v in fmt.items() if k != "name"}
        found = param_problems(doc, path, params, spec.schema, ("name",), f"format {spec.name!r}")
        for key in spec.templates:
            if isinstance(params.get(key), str):
                found += [doc.problem(path + (key,), message) for _, message in bodies.check(params[key], whole_body=False)]
        if not found:
            trial = trial_body(spec, params)
            if trial:
                at, message = trial
                found = [doc.problem(path + ((at,) if at is not None and at in params else ()), message)]
        problems += found
    return problems


def consumer_problems(doc: Document, data: dict[str, Any], host: PluginHost) -> list[Problem]:
    """One kind of consumer (sqslab.consumers), and what that kind finds wrong with the scenario."""
    from sqslab.consumers import kind_of

    consumer = mapping(data, "consumer")
    present = [k.key for k in host.consumer_kinds.values() if k.key is not None and k.key in consumer]
    problems = [doc.problem(("consumer", key), f"consumer.{present[0]} and consumer.{key} are two kinds of consumer; "
                            "a scenario runs one") for key in present[1:]]
    return problems + kind_of(consumer, host.consumer_kinds).problems(doc, data)


# ---------------------------------------------------------------- meaning


def limit_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Durations within the limits the settings table gives (SQS's own, for the queues)."""
    problems = []
    for setting in SETTINGS:
        if setting.kind != "duration" or (setting.low is None and setting.high is None):
            continue
        value = value_at(data, setting.path)
        given = seconds(value) if value is not None else None
        if given is None:
            continue
        low = setting.low if setting.low is not None else 0.0
        high = setting.high if setting.high is not None else float("inf")
        if low <= given <= high and (not setting.whole_seconds or given == int(given)):
            continue
        if setting.sqs_attribute or setting.whole_seconds:
            message = f"SQS allows whole seconds from {format_duration(low)} to {format_duration(high)}, got {value}"
        else:
            message = f"must be from {format_duration(low)} to {format_duration(high)}, got {value}"
        problems.append(doc.problem(setting.path, message))
    return problems


def knob_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Knobs that contradict each other, and the cost guard on the starting count."""
    problems = []
    infra, consumer = mapping(data, "infra"), mapping(data, "consumer")
    visibility = setting_seconds(data, "infra.queue.visibility_timeout")
    slow_time = setting_seconds(data, "consumer.slow_time")
    slow_rate = consumer.get("slow_rate", 0)
    # Written in the file, slow_time within the visibility timeout is an experiment that can
    # never redeliver. Given with --set, it is a variant on purpose: README's sweep of the
    # visibility timeout (3s,10s) compares redeliveries with their fix.
    overridden = any(set_on_command_line(doc, BY_KEY[k].path) for k in ("infra.queue.visibility_timeout", "consumer.slow_time"))
    if (is_number(slow_rate) and slow_rate > 0 and visibility is not None and slow_time is not None and slow_time <= visibility
            and not overridden):
        problems.append(doc.problem(("consumer", "slow_time"), (
            f"slow_time {format_duration(slow_time)} never exceeds the visibility timeout {format_duration(visibility)}, "
            "so slow messages are never redelivered; make slow_time longer than infra.queue.visibility_timeout")))
    if slow_rate == 0 and slow_time:
        problems.append(doc.problem(("consumer", "slow_time"), "slow_time has no effect while slow_rate is 0; set slow_rate, e.g. 0.1"))
    consumers, limit = infra.get("consumers"), max_consumers(data)
    if isinstance(consumers, int) and not isinstance(consumers, bool) and consumers > limit:
        problems.append(doc.problem(("infra", "consumers"), cost_guard(consumers, limit)))
    dlq = mapping(infra, "dlq")
    if dlq.get("enabled") is False and "max_receive_count" in dlq:
        problems.append(doc.problem(("infra", "dlq", "max_receive_count"), "max_receive_count has no effect with the DLQ disabled"))
    return problems


def expect_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Each expectation parses and names known figures."""
    problems = []
    for i, text in enumerate(items(data, "expect")):
        try:
            parse_condition(text, FIGURES)
        except ExpressionError as exc:
            problems.append(doc.problem(("expect", i), str(exc)))
    return problems


def phase_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Each phase has one kind, the keys that kind needs, sane values, a unique name."""
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, phase in enumerate(items(data, "load")):
        path: tuple[str | int, ...] = ("load", i)
        if not isinstance(phase, dict):
            continue
        kinds = [k for k in PHASE_KINDS if k in phase]
        if len(kinds) != 1:
            said = " and ".join(kinds) if kinds else "none"
            problems.append(doc.problem(path, f"a phase needs exactly one of {', '.join(PHASE_KINDS)}; it has {said}"))
            continue
        kind = kinds[0]
        if kind in ("rate", "ramp", "count") and "duration" not in phase:
            problems.append(doc.problem(path, f"a {kind} phase needs a duration, e.g. duration: 30s"))
        if kind == "producer":
            problems += _producer_problems(doc, path, phase)
        problems += _phase_value_problems(doc, path, kind, phase)
        name = phase.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(doc.problem(path + ("name",), f"phase name {name!r} is already used by load[{names[name]}]"))
            names[name] = i
    return problems


#: What sqslab's own producer does with a phase, which a producer program does its own way.
_PRODUCER_OWN = ("body", "body_file", "format", "payload_size", "groups", "duplicate_sends")
#: What sqslab gives a producer program itself: its sends are told apart by its access key.
_PRODUCER_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "SQSLAB_QUEUE_URL")


def _producer_problems(doc: Document, path: tuple[str | int, ...], phase: dict[str, Any]) -> list[Problem]:
    """A producer program's phase: a duration (its bound), none of what sqslab's own producer
    makes, a command that can start, no environment of sqslab's own."""
    from types import SimpleNamespace

    from sqslab.consumers.program_checks import check_command
    from sqslab.scenario.timeline import resolve_producer

    problems = []
    if "duration" not in phase:
        problems.append(doc.problem(path, "a producer phase needs a duration, its longest: the program is stopped then, "
                                          "e.g. duration: 1m"))
    for key in _PRODUCER_OWN:
        if key in phase:
            problems.append(doc.problem(path + (key,), f"{key} shapes what sqslab's own producer sends; your producer program "
                                                       "writes its own messages", key=True))
    program = phase.get("producer", {}).get("program") if isinstance(phase.get("producer"), dict) else None
    if not isinstance(program, dict) or not isinstance(program.get("command"), (str, list)) or not program.get("command"):
        return problems
    env: dict[str, Any] = program["env"] if isinstance(program.get("env"), dict) else {}
    for key in (k for k in _PRODUCER_ENV if k in env):
        problems.append(doc.problem(path + ("producer", "program", "env", key), (
            f"sqslab sets {key} for the producer program (its sends are told apart by its own access key); drop it"), key=True))
    try:
        resolved = resolve_producer({**program, "env": {}, "stop_grace": "0s"}, folder_of(doc))
    except (ValueError, TypeError):  # a command string shlex cannot split
        return problems + [doc.problem(path + ("producer", "program", "command"), "the command cannot be split like a shell would")]
    problem = check_command(SimpleNamespace(command=resolved["command"], cwd=resolved["cwd"], env=env))
    if problem:
        told = re.sub(r"^consumer\.program\.\w+: ", "", problem).replace("the task's PATH", "the program's PATH")
        problems.append(doc.problem(path + ("producer", "program", "command"), told))
    return problems


def _phase_value_problems(doc: Document, path: tuple[str | int, ...], kind: str, phase: dict[str, Any]) -> list[Problem]:
    problems = []
    if kind in ("burst", "pause") and "duration" in phase:
        hint = "a burst sends as fast as it can" if kind == "burst" else "a pause's value is its duration"
        problems.append(doc.problem(path + ("duration",), f"a {kind} phase takes no duration ({hint})", key=True))
    duration = seconds(phase.get("duration", "1s"))
    if duration is not None and duration <= 0:
        problems.append(doc.problem(path + ("duration",), "duration must be more than 0s"))
    rate = _tolerant_number(parse_rate, phase.get("rate", "1/s"))
    if kind == "rate" and rate is not None and rate <= 0:
        problems.append(doc.problem(path + ("rate",), "rate must be more than 0; use a pause to send nothing"))
    size = _tolerant_number(parse_size, phase.get("payload_size", 256))
    if size is not None and not 1 <= size <= MAX_PAYLOAD:
        problems.append(doc.problem(path + ("payload_size",), "payload_size must be from 1 byte to 256KiB (SQS's limit)"))
    return problems


def _tolerant_number(parse: Callable[[Any], float], value: Any) -> float | None:
    try:
        return parse(value)
    except UnitError:
        return None


def trigger_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Names unique, `after:` naming something, no circles, conditions and the cost guard."""
    problems: list[Problem] = []
    phases = [default_phase_name(p, i) for i, p in enumerate(items(data, "load")) if isinstance(p, dict)]
    actions = [a if isinstance(a, dict) else {} for a in items(data, "actions")]
    action_names: dict[str, int] = {}
    for i, action in enumerate(actions):
        name = default_action_name(action, i)
        if name is not None:
            if name in action_names or name in phases:
                problems.append(doc.problem(("actions", i, "name"), f"name {name!r} is already used by a phase or an earlier action"))
            action_names.setdefault(name, i)
    depends: dict[int, str] = {}
    for i, action in enumerate(actions):
        problems += _after_problems(doc, i, action, phases, action_names, depends)
        problems += _condition_problems(doc, i, action, max_consumers(data))
    for i in depends:
        seen, current = {i}, i
        while current in depends:
            current = action_names[depends[current]]
            if current in seen:
                message = "actions wait for each other in a circle; one must start from a time or a phase"
                problems.append(doc.problem(("actions", i, "after"), message))
                break
            seen.add(current)
    return problems


def _after_problems(doc: Document, i: int, action: dict[str, Any], phases: list[str], action_names: dict[str, int],
                    depends: dict[int, str]) -> list[Problem]:
    after = action.get("after")
    if not isinstance(after, str):
        return []  # absent, or refused by the schema
    path = ("actions", i, "after")
    try:
        target, _ = split_after(after)
    except UnitError as exc:
        return [doc.problem(path, str(exc))]
    if target in action_names:
        depends[i] = target
        return []
    if target in phases:
        return []
    known = [n for n in phases if n] + list(action_names)
    close = difflib.get_close_matches(target, known, n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    else:
        hint = f"; phases and actions with names: {', '.join(known)}" if known else "; give the phase a `name:` first"
    return [doc.problem(path, f"no phase or named action called {target!r}{hint}")]


def _condition_problems(doc: Document, i: int, action: dict[str, Any], limit: int) -> list[Problem]:
    problems = []
    path = ("actions", i)
    conditions = [("when", action.get("when"))] if "when" in action else []
    if action.get("do") == "wait" and "until" in action:
        conditions.append(("until", action.get("until")))
    for key, text in conditions:
        try:
            parse_condition(text, LIVE_METRICS)
        except ExpressionError as exc:
            problems.append(doc.problem(path + (key,), str(exc)))
    timeout = seconds(action["timeout"]) if "timeout" in action else DEFAULT_ACTION_TIMEOUT
    waits = seconds(action.get("for")) if action.get("do") == "wait" and "for" in action else None
    if timeout is not None and waits is not None and waits >= timeout:
        problems.append(doc.problem(path + ("for",), (f"waiting {format_duration(waits)} is not within the action's timeout of "
                                                      f"{format_duration(timeout)}; give the action a longer timeout, e.g. "
                                                      f"timeout: {format_duration(waits + 60)}")))
    if timeout is not None and timeout <= 0:
        problems.append(doc.problem(path + ("timeout",), "timeout must be more than 0s"))
    to = action.get("to")
    if action.get("do") == "scale" and isinstance(to, int) and not isinstance(to, bool) and to > limit:
        problems.append(doc.problem(path + ("to",), cost_guard(to, limit)))
    return problems


def load_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """The load within `limits`: messages in all, the highest rate, bytes in all."""
    limits = mapping(data, "limits")
    max_messages = _limit(limits, "max_messages", lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None)
    max_rate = _limit(limits, "max_rate", lambda v: _tolerant_number(parse_rate, v))
    max_bytes = _limit(limits, "max_payload_total", lambda v: _tolerant_number(parse_size, v))
    problems, messages, payload = [], 0.0, 0.0
    for i, phase in enumerate(items(data, "load")):
        if not isinstance(phase, dict):
            continue
        count, rate = _phase_load(phase)
        size = _tolerant_number(parse_size, phase.get("payload_size", 256)) or 0
        messages += count
        payload += count * size
        if max_rate is not None and rate is not None and rate > max_rate:
            key = next(k for k in ("rate", "ramp", "count") if k in phase)
            problems.append(doc.problem(("load", i, key), (
                f"{rate:.10g} msg/s is above limits.max_rate of {max_rate:.10g}/s; to ask for it on purpose, "
                f"set limits.max_rate: {math.ceil(rate)}/s")))
    if max_messages is not None and messages > max_messages:
        problems.append(doc.problem(("load",), (
            f"the load sends {messages:.0f} messages in all, above limits.max_messages of {max_messages}; "
            f"to send that many on purpose, set limits.max_messages: {math.ceil(messages)}")))
    if max_bytes is not None and payload > max_bytes:
        problems.append(doc.problem(("load",), (
            f"the load sends {_bytes(payload)} of message bodies, above limits.max_payload_total of {_bytes(max_bytes)} "
            f"(the emulator holds queued bodies in memory); to send that on purpose, set limits.max_payload_total: "
            f"{math.ceil(payload / 2**20)}MiB")))
    return problems


def _limit(limits: dict[str, Any], name: str, read: Callable[[Any], float | None]) -> float | None:
    setting = BY_KEY[f"limits.{name}"]
    return read(limits.get(name, setting.default))


def _phase_load(phase: dict[str, Any]) -> tuple[float, float | None]:
    """(messages, msg/s) a phase asks for, from what of it reads; a burst has no rate."""
    duration = seconds(phase.get("duration"))
    count = phase.get("burst", phase.get("count"))
    if isinstance(count, int) and not isinstance(count, bool):
        rate = count / duration if "count" in phase and duration else None
        return float(count), rate
    if "rate" in phase:
        rate = _tolerant_number(parse_rate, phase["rate"])
        return ((rate or 0.0) * (duration or 0.0)), rate
    if "ramp" in phase:
        try:
            low, high = parse_rate_range(phase["ramp"])
        except UnitError:
            return 0.0, None
        return (low + high) / 2 * (duration or 0.0), max(low, high)
    return 0.0, None


def _bytes(value: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} bytes"


#: SQS FIFO throughput without high throughput: 300 SendMessageBatch calls of 10 a second.
FIFO_MAX_RATE = 3000.0


def fifo_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """FIFO settings and load keys only where SQS takes them."""
    problems = []
    queue = mapping(mapping(data, "infra"), "queue")
    fifo = queue.get("fifo") is True
    if not fifo:
        for key in ("content_based_deduplication", "high_throughput"):
            if queue.get(key) is True:
                problems.append(doc.problem(("infra", "queue", key), f"{key} is for FIFO queues; set infra.queue.fifo: true"))
        if "on_failure" in mapping(data, "consumer"):
            problems.append(doc.problem(("consumer", "on_failure"), "on_failure is about FIFO message groups; set infra.queue.fifo: true",
                                        key=True))
    for i, phase in enumerate(items(data, "load")):
        if not isinstance(phase, dict):
            continue
        if "groups" in phase and not fifo:
            problems.append(doc.problem(("load", i, "groups"), "message groups need a FIFO queue; set infra.queue.fifo: true", key=True))
        _, rate = _phase_load(phase)
        if fifo and queue.get("high_throughput") is not True and rate is not None and rate > FIFO_MAX_RATE:
            key = next(k for k in ("rate", "ramp", "count") if k in phase)
            problems.append(doc.problem(("load", i, key), (
                f"{rate:.10g} msg/s is above what an SQS FIFO queue takes ({FIFO_MAX_RATE:.0f}/s with batching); "
                "set infra.queue.high_throughput: true")))
    return problems


def redrive_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """A `redrive_dlq` action needs a DLQ to move messages from."""
    dlq = mapping(mapping(data, "infra"), "dlq")
    if dlq.get("enabled", BY_KEY["infra.dlq.enabled"].default) is not False:
        return []
    return [doc.problem(("actions", i, "do"), "redrive_dlq moves messages back from the DLQ, and infra.dlq.enabled is false: "
                        "enable the DLQ, or drop the action")
            for i, action in enumerate(items(data, "actions")) if isinstance(action, dict) and action.get("do") == "redrive_dlq"]


def fault_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Every API a fault names (in `sqs.faults` and `sqs_fault` actions) is an SQS API."""
    places: list[tuple[tuple[str | int, ...], Any]] = [
        (("sqs", "faults", i), fault) for i, fault in enumerate(items(mapping(data, "sqs"), "faults"))]
    places += [(("actions", i), action) for i, action in enumerate(items(data, "actions"))
               if isinstance(action, dict) and action.get("do") == "sqs_fault"]
    problems = []
    for path, fault in places:
        apis = fault.get("api") if isinstance(fault, dict) else None
        names = [apis] if isinstance(apis, str) else apis if isinstance(apis, list) else []
        for j, name in enumerate(names):
            if not isinstance(name, str) or name == "*" or name in SQS_APIS:
                continue
            where = path + ("api",) + ((j,) if isinstance(apis, list) else ())
            close = difflib.get_close_matches(name, SQS_APIS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else 'write "*" for every call, or one of ' + ", ".join(SQS_APIS)
            problems.append(doc.problem(where, f"{name!r} is not an SQS API; {hint}"))
    return problems


def body_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Each phase's body template: one of body and body_file, a regular file in the
    scenario's folder, a template that parses, names only what sqslab.scenario.bodies offers,
    renders within its limits and gives a body SQS takes; poison marks travel in sqslab's
    own body, so no poison_rate with a template."""
    from sqslab.scenario import bodies

    problems = []
    poison = mapping(data, "consumer").get("poison_rate")
    cwd = mapping(mapping(data, "consumer"), "program").get("cwd")
    program_cwd = folder_of(doc) / cwd if isinstance(cwd, str) else None
    for i, phase in enumerate(items(data, "load")):
        if not isinstance(phase, dict) or not ({"body", "body_file", "format"} & phase.keys()):
            continue
        if "body" in phase and "body_file" in phase:
            problems.append(doc.problem(("load", i, "body_file"), "give body or body_file, not both"))
            continue
        own = "format" if "format" in phase else "body"
        if is_number(poison) and poison:
            problems.append(doc.problem(("consumer", "poison_rate"), (
                f"load[{i}] sends your own body (`{own}`), which has no room for sqslab's poison mark; "
                "set poison_rate to 0 or send sqslab's body in the poisoned phases")))
        if "payload_size" in phase:
            what = "body format" if own == "format" else "body template"
            problems.append(doc.problem(("load", i, "payload_size"), f"payload_size sizes sqslab's own body; a {what} sets its own"))
        if not ({"body", "body_file"} & phase.keys()):
            continue
        key = "body" if "body" in phase else "body_file"
        text = phase[key]
        if not isinstance(text, str):
            continue
        if key == "body_file":
            try:
                text = bodies.read_template_file(text, folder_of(doc), program_cwd)
            except bodies.BodyFileError as exc:
                problems.append(doc.problem(("load", i, key), str(exc)))
                continue
        for line, message in bodies.check(text):
            problem = doc.problem(("load", i, key), message if key == "body" else f"{phase[key]}:{line}: {message}")
            if key == "body":
                problem = dataclasses.replace(problem, line=problem.line + line - 1 + _block_offset(doc, problem))
            problems.append(problem)
    return problems


def _block_offset(doc: Document, problem: Problem) -> int:
    """1 when the value at the problem's position is a block scalar (`|`, `>`): its text
    starts on the next line."""
    try:
        line = Path(doc.file).read_text(encoding="utf-8").splitlines()[problem.line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return 0
    return 1 if line[problem.col - 1:problem.col].strip() in ("|", ">") else 0


MEANING_CHECKS: tuple[Check, ...] = (limit_problems, knob_problems, phase_problems, trigger_problems, expect_problems, load_problems,
                                     fifo_problems, fault_problems, redrive_problems, body_problems)


def cost_guard(count: int, limit: int) -> str:
    """The message for a task count above the cost guard."""
    return f"{count} tasks is above the cost guard of {limit}; to opt in, set infra.max_consumers: {count}"
