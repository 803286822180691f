"""Scenarios: load a YAML file, validate it against format v1 and its actions, resolve it.

Validation runs in passes and collects every problem before it reports: syntax, the
JSON Schema (with friendly unit errors and "did you mean" for misspelled keys), each
action's parameters against that action's own schema, then meaning (references,
impossible settings, the cost guard, unknown metrics).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sqslab.document import Document, Problem, format_path, parse_document, read_document
from sqslab.expectations import FIGURES, LIVE_METRICS, Condition, ExpressionError, parse_condition
from sqslab.timeline import Phase
from sqslab.units import UnitError, parse_duration, parse_range, parse_rate, parse_size

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost

FORMAT_VERSION = 1
TRIGGER_KEYS = ("at", "after", "when")
ACTION_KEYS = ("name", "at", "after", "when", "do", "continue_on_error")
PHASE_KINDS = ("rate", "ramp", "burst", "count", "pause")
MAX_PAYLOAD = 256 * 1024
# Limits SQS itself enforces, in seconds: (low, high).
QUEUE_LIMITS = {
    ("infra", "queue", "visibility_timeout"): (0, 12 * 3600),
    ("infra", "queue", "retention"): (60, 14 * 86400),
    ("infra", "queue", "receive_wait"): (0, 20),
    ("infra", "queue", "delay"): (0, 15 * 60),
    ("infra", "dlq", "retention"): (60, 14 * 86400),
    ("consumer", "wait_time"): (0, 20),
}


class ScenarioError(Exception):
    """A scenario that cannot be used; `problems` says every reason, with positions."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@functools.cache
def base_schema() -> dict[str, Any]:
    """The scenario format v1 JSON Schema as shipped, without plugin actions."""
    return json.loads(resources.files("sqslab").joinpath("schema/scenario.schema.json").read_text())


def full_schema(host: PluginHost) -> dict[str, Any]:
    """The schema with every loaded action's parameters, for editors and `sqslab schema`."""
    schema = copy.deepcopy(base_schema())
    action = schema["$defs"]["action"]
    action["properties"]["do"]["enum"] = sorted(host.actions)
    branches = []
    for name, spec in sorted(host.actions.items()):
        params = copy.deepcopy(spec.schema)
        params_defs = params.pop("$defs", {})
        for key, value in params_defs.items():
            schema["$defs"].setdefault(key, value)
        properties = {**action["properties"], **params.get("properties", {})}
        then = {"properties": properties, "additionalProperties": False}
        if params.get("required"):
            then["required"] = ["do", *params["required"]]
        if spec.description:
            then["description"] = spec.description
        branches.append({"if": {"properties": {"do": {"const": name}}, "required": ["do"]}, "then": then})
    action["allOf"] = branches
    return schema


# ---------------------------------------------------------------- resolved scenario


@dataclass(frozen=True)
class Knobs:
    """Consumer behaviour; times in seconds."""

    work_time_min: float = 0.05
    work_time_max: float = 0.2
    error_rate: float = 0.0
    crash_rate: float = 0.0
    slow_rate: float = 0.0
    slow_time: float = 0.0
    idempotency: bool = False
    idempotency_window: float = 300.0
    poison_rate: float = 0.0
    batch_size: int = 10
    wait_time: float = 20.0
    release_on_stop: bool = False
    delete: str = "each"

    def to_env(self) -> dict[str, str]:
        """The consumer's environment for these knobs (docs/contracts.md)."""
        return {
            "WAIT_TIME_SECONDS": str(int(self.wait_time)),
            "MAX_MESSAGES": str(self.batch_size),
            "WORK_TIME_MIN_MS": str(round(self.work_time_min * 1000)),
            "WORK_TIME_MAX_MS": str(round(self.work_time_max * 1000)),
            "ERROR_RATE": repr(self.error_rate),
            "CRASH_RATE": repr(self.crash_rate),
            "SLOW_RATE": repr(self.slow_rate),
            "SLOW_TIME_MS": str(round(self.slow_time * 1000)),
            "IDEMPOTENCY": "true" if self.idempotency else "false",
            "IDEMPOTENCY_WINDOW_SECONDS": str(round(self.idempotency_window)),
            "POISON_MARKER": "poison",
            "RELEASE_ON_STOP": "true" if self.release_on_stop else "false",
            "DELETE_MODE": self.delete,
        }

    def updated(self, changes: dict[str, Any]) -> Knobs:
        """These knobs with scenario-style changes (`work_time: 1s..2s`, `error_rate: 0`) applied."""
        values = dict(self.__dict__)
        values.update(_knob_values(changes))
        return Knobs(**values)


@dataclass(frozen=True)
class Infra:
    """Queue, DLQ and consumer service settings; times in seconds."""

    region: str = "us-west-1"
    visibility_timeout: float = 30.0
    retention: float = 4 * 86400.0
    receive_wait: float = 0.0
    delay: float = 0.0
    dlq_enabled: bool = True
    max_receive_count: int = 3
    dlq_retention: float = 14 * 86400.0
    consumers: int = 1
    max_consumers: int = 5
    cpu: int = 256
    memory: int = 512
    restart_delay: float = 2.0


@dataclass(frozen=True)
class ActionSpec:
    """One scheduled action: its trigger, what it does and with which parameters."""

    index: int
    name: str
    do: str
    params: dict[str, Any]
    at: float | None = None
    after: str | None = None
    after_offset: float = 0.0
    when: Condition | None = None
    continue_on_error: bool = False

    @property
    def trigger(self) -> str:
        """The trigger as the scenario wrote it."""
        if self.at is not None:
            return f"at {self.at:g}s"
        if self.after is not None:
            return f"after {self.after}" + (f" + {self.after_offset:g}s" if self.after_offset else "")
        return f"when {self.when.text}" if self.when else ""


@dataclass(frozen=True)
class Scenario:
    """A validated scenario with every default filled in and every unit resolved."""

    name: str
    description: str
    seed: int | None
    sample_interval: float
    infra: Infra
    knobs: Knobs
    phases: tuple[Phase, ...]
    actions: tuple[ActionSpec, ...]
    settle_until: str
    settle_timeout: float
    expect: tuple[Condition, ...]
    data: dict[str, Any] = field(repr=False, default_factory=dict)
    path: str = ""

    def terraform_context(self, image_tag: str = "latest") -> dict[str, Any]:
        """The values the Terraform stack's variables take for this scenario (see sqslab.terraform)."""
        infra = self.infra
        return {
            "region": infra.region,
            "name": re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-")[:32] or "sqslab",
            "queue": {
                "visibility_timeout": int(infra.visibility_timeout),
                "retention": int(infra.retention),
                "receive_wait": int(infra.receive_wait),
                "delay": int(infra.delay),
            },
            "dlq": {"enabled": infra.dlq_enabled, "max_receive_count": infra.max_receive_count, "retention": int(infra.dlq_retention)},
            "consumers": {"count": infra.consumers, "cpu": infra.cpu, "memory": infra.memory},
            "image_tag": image_tag,
            "consumer_env": {**self.knobs.to_env(), **({"SEED": str(self.seed)} if self.seed is not None else {})},
            "log_retention_days": 7,
            "ecr_repository_name": "sqs-demo/consumer",
        }


# ---------------------------------------------------------------- loading


def load_scenario(path: Path | str, host: PluginHost, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, validate and resolve a scenario file; ScenarioError lists every problem."""
    doc, problems = read_document(path)
    return _finish(doc, problems, host, overrides)


def load_scenario_text(text: str, host: PluginHost, name: str = "<scenario>", overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Like load_scenario, from text."""
    doc, problems = parse_document(text, name)
    return _finish(doc, problems, host, overrides)


def _finish(doc: Document, problems: list[Problem], host: PluginHost, overrides: list[str] | tuple[str, ...]) -> Scenario:
    if not problems:
        problems = apply_overrides(doc, overrides)
    if not problems:
        problems = validate_document(doc, host)
    if problems:
        raise ScenarioError(problems)
    return resolve(doc.data, path=doc.file)


def check_file(path: Path | str, host: PluginHost, overrides: list[str] | tuple[str, ...] = ()) -> list[Problem]:
    """Every problem with a scenario file, or an empty list when it is valid."""
    doc, problems = read_document(path)
    if problems:
        return problems
    problems = apply_overrides(doc, overrides)
    return problems or validate_document(doc, host)


def apply_overrides(doc: Document, overrides: list[str] | tuple[str, ...]) -> list[Problem]:
    """Apply `--set key.path=value` overrides to the document's data (value parsed as YAML)."""
    problems = []
    for text in overrides:
        origin = f"--set {text}"
        key, sep, raw = text.partition("=")
        parts = _split_key_path(key.strip()) if sep else None
        if not parts:
            problems.append(Problem(origin, 1, 1, "", "write --set KEY.PATH=VALUE, e.g. --set infra.consumers=3"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        target = doc.data
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(target, dict):
                target = target.setdefault(part, [] if isinstance(nxt, int) else {})
            elif isinstance(target, list) and isinstance(part, int) and part < len(target):
                target = target[part]
            else:
                target = None
                break
        last = parts[-1]
        if isinstance(target, dict) and isinstance(last, str):
            target[last] = value
        elif isinstance(target, list) and isinstance(last, int) and last < len(target):
            target[last] = value
        else:
            problems.append(Problem(origin, 1, 1, format_path(parts), "no such place in the scenario to set"))
            continue
        doc.origins[tuple(parts)] = origin
    return problems


def _split_key_path(text: str) -> list[str | int] | None:
    parts: list[str | int] = []
    for piece in text.split("."):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)", piece)
        if not match:
            return None
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


# ---------------------------------------------------------------- validation


def validate_document(doc: Document, host: PluginHost) -> list[Problem]:
    """Every problem with a parsed scenario: schema, actions' parameters, then meaning."""
    data = doc.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}" if data is not None else "nothing"
        return [doc.problem((), f"a scenario is a mapping of keys (version, name, infra, ...), got {kind}")]
    problems = _schema_problems(doc, data, base_schema(), ())
    problems += _action_problems(doc, data, host)
    problems += _meaning_problems(doc, data, host)
    return _sorted_unique(problems)


def _schema_problems(doc: Document, data: Any, schema: dict[str, Any], prefix: tuple) -> list[Problem]:
    validator = _validator_class()(schema)
    problems = []
    for error in validator.iter_errors(data):
        problems.extend(_explain(doc, error, prefix))
    return problems


@functools.cache
def _validator_class() -> Any:
    """Draft 2020-12 plus `x-sqslab-unit`, which checks durations, rates and sizes with the unit parsers."""
    import jsonschema

    def check_unit(validator: Any, unit: str, instance: Any, schema: dict) -> Any:
        message = _unit_error(unit, instance)
        if message:
            yield jsonschema.ValidationError(message)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"x-sqslab-unit": check_unit})


def _explain(doc: Document, error: Any, prefix: tuple) -> list[Problem]:
    path = prefix + tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    unit = schema.get("x-sqslab-unit")
    if unit:
        return [doc.problem(path, _unit_message(unit, error.instance))]
    if error.validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        return [doc.problem(path + (key,), _unknown_key_message(key, allowed), key=True) for key in extras]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        where = format_path(path) or "the scenario"
        return [doc.problem(path, f"missing required key {missing!r} in {where}")]
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        article = "an" if str(expected)[0] in "aeio" else "a"
        return [doc.problem(path, f"expected {article} {expected}, got {_describe(error.instance)}")]
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return [doc.problem(path, f"{_describe(error.instance)} is not one of {options}{hint}")]
    if error.validator == "const":
        return [doc.problem(path, f"must be {json.dumps(error.validator_value)}, got {_describe(error.instance)}")]
    if error.validator in ("minimum", "maximum"):
        word = "at least" if error.validator == "minimum" else "at most"
        return [doc.problem(path, f"must be {word} {error.validator_value}, got {error.instance!r}")]
    if error.validator == "minProperties":
        allowed = ", ".join(schema.get("properties", {}))
        return [doc.problem(path, f"give at least one of: {allowed}")]
    if error.validator == "oneOf" and all(set(b) == {"required"} for b in error.validator_value):
        keys = [b["required"][0] for b in error.validator_value]
        return [doc.problem(path, f"give exactly one of {', '.join(keys)}")]
    if error.validator == "pattern" and path and path[-1] == "name":
        return [doc.problem(path, f"{error.instance!r}: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit")]
    return [doc.problem(path, error.message)]


def _unit_message(unit: str, value: Any) -> str:
    return _unit_error(unit, value) or f"{value!r} is not a valid {unit.replace('_', ' ')}"


def _unit_error(unit: str, value: Any) -> str | None:
    parse = {
        "duration": parse_duration,
        "rate": parse_rate,
        "size": parse_size,
        "duration_range": parse_range,
        "rate_range": _parse_rate_range,
    }[unit]
    try:
        parse(value)
    except UnitError as exc:
        return str(exc)
    return None


def _parse_rate_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, str) or ".." not in value:
        raise UnitError(f"{value!r} is not a ramp: give FROM..TO rates, e.g. 1/s..50/s")
    return parse_range(value, parse_rate)


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; allowed here: {', '.join(allowed)}"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    return f"{type(value).__name__} {value!r}"


def _action_problems(doc: Document, data: dict[str, Any], host: PluginHost) -> list[Problem]:
    actions = data.get("actions")
    if not isinstance(actions, list):
        return []
    problems = []
    for i, action in enumerate(actions):
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
            close = difflib.get_close_matches(name, list(host.actions), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known actions: {', '.join(sorted(host.actions))}"
            problems.append(doc.problem(path + ("do",), f"unknown action {name!r}; {hint}"))
            continue
        params = {k: v for k, v in action.items() if k not in ACTION_KEYS}
        param_schema = dict(spec.schema)
        allowed = list(param_schema.get("properties", {}))
        for key in params:
            if key not in allowed and param_schema.get("additionalProperties") is False:
                problems.append(doc.problem(path + (key,), _unknown_key_message(key, allowed + list(ACTION_KEYS)) + f" (action {name!r})", key=True))
        checked = {k: v for k, v in params.items() if k in allowed or param_schema.get("additionalProperties") is not False}
        problems.extend(p for p in _schema_problems(doc, checked, param_schema, path) if "unknown key" not in p.message)
    return problems


def _meaning_problems(doc: Document, data: dict[str, Any], host: PluginHost) -> list[Problem]:
    """Checks of meaning. Each runs on its own, so a part the schema already refused only
    silences the checks that need it, and every other problem is still reported."""
    problems: list[Problem] = []
    for check in (_limit_problems, _knob_problems, _phase_problems, _trigger_problems, _expect_problems):
        try:
            problems += check(doc, data)
        except (UnitError, TypeError, KeyError, AttributeError, ValueError):
            pass  # that part is invalid in a way the schema pass has reported
    return problems


def _limit_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for path, (low, high) in QUEUE_LIMITS.items():
        value = _get(data, path)
        if value is not None:
            seconds = parse_duration(value)
            if not low <= seconds <= high or seconds != int(seconds):
                problems.append(doc.problem(path, f"SQS allows whole seconds from {_fmt(low)} to {_fmt(high)}, got {value}"))
    return problems


def _knob_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    infra, consumer = _mapping(data, "infra"), _mapping(data, "consumer")
    visibility = _tolerant(parse_duration, _mapping(infra, "queue").get("visibility_timeout", "30s"))
    slow_time = _tolerant(parse_duration, consumer.get("slow_time", "0s"))
    slow_rate = consumer.get("slow_rate", 0)
    if _is_number(slow_rate) and slow_rate > 0 and visibility is not None and slow_time is not None and slow_time <= visibility:
        problems.append(doc.problem(("consumer", "slow_time"), (
            f"slow_time {_fmt(slow_time)} never exceeds the visibility timeout {_fmt(visibility)}, "
            "so slow messages are never redelivered; make slow_time longer than infra.queue.visibility_timeout")))
    if slow_rate == 0 and slow_time:
        problems.append(doc.problem(("consumer", "slow_time"), "slow_time has no effect while slow_rate is 0; set slow_rate, e.g. 0.1"))
    consumers, limit = infra.get("consumers"), _max_consumers(data)
    if isinstance(consumers, int) and consumers > limit:
        problems.append(doc.problem(("infra", "consumers"), _cost_guard(consumers, limit)))
    dlq = _mapping(infra, "dlq")
    if dlq.get("enabled") is False and "max_receive_count" in dlq:
        problems.append(doc.problem(("infra", "dlq", "max_receive_count"), "max_receive_count has no effect with the DLQ disabled"))
    return problems


def _mapping(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _tolerant(parse: Any, value: Any) -> Any:
    """The parsed value, or None where the schema pass has already reported it."""
    try:
        return parse(value)
    except UnitError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _max_consumers(data: dict[str, Any]) -> int:
    value = _mapping(data, "infra").get("max_consumers", Infra.max_consumers)
    return value if isinstance(value, int) else Infra.max_consumers


def _expect_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for i, text in enumerate(data.get("expect") or []):
        try:
            parse_condition(text, FIGURES)
        except ExpressionError as exc:
            problems.append(doc.problem(("expect", i), str(exc)))
    return problems


def _phase_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems, names = [], {}
    for i, phase in enumerate(data.get("load") or []):
        path = ("load", i)
        if not isinstance(phase, dict):
            continue
        kinds = [k for k in PHASE_KINDS if k in phase]
        if len(kinds) != 1:
            said = " and ".join(kinds) if kinds else "none"
            problems.append(doc.problem(path, f"a phase needs exactly one of rate, ramp, burst, count, pause; it has {said}"))
            continue
        kind = kinds[0]
        if kind in ("rate", "ramp", "count") and "duration" not in phase:
            problems.append(doc.problem(path, f"a {kind} phase needs a duration, e.g. duration: 30s"))
        problems += _phase_value_problems(doc, path, kind, phase)
        name = phase.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(doc.problem(path + ("name",), f"phase name {name!r} is already used by load[{names[name]}]"))
            names[name] = i
    return problems


def _phase_value_problems(doc: Document, path: tuple, kind: str, phase: dict[str, Any]) -> list[Problem]:
    problems = []
    if kind in ("burst", "pause") and "duration" in phase:
        hint = "a burst sends as fast as it can" if kind == "burst" else "a pause's value is its duration"
        problems.append(doc.problem(path + ("duration",), f"a {kind} phase takes no duration ({hint})", key=True))
    duration = _tolerant(parse_duration, phase.get("duration", "1s"))
    if duration is not None and duration <= 0:
        problems.append(doc.problem(path + ("duration",), "duration must be more than 0s"))
    rate = _tolerant(parse_rate, phase.get("rate", "1/s"))
    if kind == "rate" and rate is not None and rate <= 0:
        problems.append(doc.problem(path + ("rate",), "rate must be more than 0; use a pause to send nothing"))
    size = _tolerant(parse_size, phase.get("payload_size", 256))
    if size is not None and not 1 <= size <= MAX_PAYLOAD:
        problems.append(doc.problem(path + ("payload_size",), "payload_size must be from 1 byte to 256KiB (SQS's limit)"))
    return problems


def _trigger_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    limit = _max_consumers(data)
    phases = [default_phase_name(p, i) for i, p in enumerate(data.get("load") or []) if isinstance(p, dict)]
    actions = [a for a in data.get("actions") or [] if isinstance(a, dict)]
    action_names: dict[str, int] = {}
    for i, action in enumerate(actions):
        name = action.get("name") or (f"{action['do']}-{i + 1}" if isinstance(action.get("do"), str) else None)
        if name is not None:
            if name in action_names or name in phases:
                problems.append(doc.problem(("actions", i, "name"), f"name {name!r} is already used by a phase or an earlier action"))
            action_names.setdefault(name, i)
    depends: dict[int, str] = {}
    for i, action in enumerate(actions):
        path = ("actions", i)
        if "after" in action:
            try:
                target, _ = split_after(action["after"])
            except UnitError as exc:
                problems.append(doc.problem(path + ("after",), str(exc)))
                continue
            if target not in phases and target not in action_names:
                known = [n for n in phases if n] + list(action_names)
                close = difflib.get_close_matches(target, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else (f"; phases and actions with names: {', '.join(known)}" if known else "; give the phase a `name:` first")
                problems.append(doc.problem(path + ("after",), f"no phase or named action called {target!r}{hint}"))
            elif target in action_names:
                depends[i] = target
        if "when" in action:
            try:
                parse_condition(action["when"], LIVE_METRICS)
            except ExpressionError as exc:
                problems.append(doc.problem(path + ("when",), str(exc)))
        if action.get("do") == "wait" and "until" in action:
            try:
                parse_condition(action["until"], LIVE_METRICS)
            except ExpressionError as exc:
                problems.append(doc.problem(path + ("until",), str(exc)))
        if action.get("do") == "scale" and isinstance(action.get("to"), int) and action["to"] > limit:
            problems.append(doc.problem(path + ("to",), _cost_guard(action["to"], limit)))
    for i in depends:
        seen, current = {i}, i
        while current in depends:
            current = action_names[depends[current]]
            if current in seen:
                problems.append(doc.problem(("actions", i, "after"), "actions wait for each other in a circle; one must start from a time or a phase"))
                break
            seen.add(current)
    return problems


def default_phase_name(phase: dict[str, Any], index: int) -> str:
    """A phase's name: its `name`, else KIND-N (`burst-2` for an unnamed second phase)."""
    kind = next((k for k in PHASE_KINDS if k in phase), "phase")
    return phase.get("name") or f"{kind}-{index + 1}"


def _cost_guard(count: int, limit: int) -> str:
    return f"{count} tasks is above the cost guard of {limit}; to opt in, set infra.max_consumers: {count}"


def split_after(text: str) -> tuple[str, float]:
    """`burst + 5s` → ('burst', 5.0); `burst` → ('burst', 0.0)."""
    name, plus, offset = text.partition("+")
    if not name.strip():
        raise UnitError(f"{text!r}: name a phase or action, optionally plus a delay, e.g. 'burst + 5s'")
    return name.strip(), parse_duration(offset.strip()) if plus else 0.0


def _sorted_unique(problems: list[Problem]) -> list[Problem]:
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.col, p.path))


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _fmt(seconds: float) -> str:
    from sqslab.units import format_duration

    return format_duration(seconds)


# ---------------------------------------------------------------- resolution


def resolve_infra(infra: dict[str, Any]) -> Infra:
    """Infra settings from the scenario's `infra` mapping (assumed valid), defaults filled."""
    queue, dlq, task = infra.get("queue") or {}, infra.get("dlq") or {}, infra.get("task") or {}
    defaults = Infra()

    def seconds(mapping: dict, key: str, default: float) -> float:
        return parse_duration(mapping[key]) if key in mapping else default

    return Infra(
        region=infra.get("region", defaults.region),
        visibility_timeout=seconds(queue, "visibility_timeout", defaults.visibility_timeout),
        retention=seconds(queue, "retention", defaults.retention),
        receive_wait=seconds(queue, "receive_wait", defaults.receive_wait),
        delay=seconds(queue, "delay", defaults.delay),
        dlq_enabled=dlq.get("enabled", defaults.dlq_enabled),
        max_receive_count=dlq.get("max_receive_count", defaults.max_receive_count),
        dlq_retention=seconds(dlq, "retention", defaults.dlq_retention),
        consumers=infra.get("consumers", defaults.consumers),
        max_consumers=infra.get("max_consumers", defaults.max_consumers),
        cpu=task.get("cpu", defaults.cpu),
        memory=task.get("memory", defaults.memory),
        restart_delay=seconds(task, "restart_delay", defaults.restart_delay),
    )


def _knob_values(consumer: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in consumer.items():
        if key == "work_time":
            values["work_time_min"], values["work_time_max"] = parse_range(value)
        elif key in ("slow_time", "idempotency_window", "wait_time"):
            values[key] = parse_duration(value)
        else:
            values[key] = value
    return values


def resolve_knobs(consumer: dict[str, Any]) -> Knobs:
    """Consumer knobs from the scenario's `consumer` mapping (assumed valid), defaults filled."""
    return Knobs(**_knob_values(consumer))


def resolve(data: dict[str, Any], path: str = "") -> Scenario:
    """A Scenario from valid scenario data: units parsed, defaults filled, phases timed."""
    knobs = resolve_knobs(data.get("consumer") or {})
    phases, start = [], 0.0
    for i, raw in enumerate(data.get("load") or []):
        kind = next(k for k in PHASE_KINDS if k in raw)
        common = {
            "name": default_phase_name(raw, i),
            "kind": kind,
            "start": start,
            "payload_size": parse_size(raw.get("payload_size", 256)),
            "poison_rate": knobs.poison_rate,
        }
        if kind == "rate":
            phase = Phase(**common, duration=parse_duration(raw["duration"]), rate=parse_rate(raw["rate"]))
        elif kind == "ramp":
            low, high = parse_range(raw["ramp"], parse_rate)
            phase = Phase(**common, duration=parse_duration(raw["duration"]), rate_from=low, rate_to=high)
        elif kind == "count":
            phase = Phase(**common, duration=parse_duration(raw["duration"]), count=raw["count"])
        elif kind == "burst":
            phase = Phase(**common, count=raw["burst"])
        else:
            phase = Phase(**common, duration=parse_duration(raw["pause"]))
        phases.append(phase)
        start += phase.duration or 0.0
    actions = []
    for i, raw in enumerate(data.get("actions") or []):
        after, offset = split_after(raw["after"]) if "after" in raw else (None, 0.0)
        actions.append(ActionSpec(
            index=i,
            name=raw.get("name") or f"{raw['do']}-{i + 1}",
            do=raw["do"],
            params={k: v for k, v in raw.items() if k not in ACTION_KEYS},
            at=parse_duration(raw["at"]) if "at" in raw else None,
            after=after,
            after_offset=offset,
            when=parse_condition(raw["when"], LIVE_METRICS) if "when" in raw else None,
            continue_on_error=raw.get("continue_on_error", False),
        ))
    settle = data.get("settle") or {}
    return Scenario(
        name=data["name"],
        description=data.get("description", ""),
        seed=data.get("seed"),
        sample_interval=parse_duration(data.get("sample_interval", "1s")),
        infra=resolve_infra(data.get("infra") or {}),
        knobs=knobs,
        phases=tuple(phases),
        actions=tuple(actions),
        settle_until=settle.get("until", "drained"),
        settle_timeout=parse_duration(settle.get("timeout", "2m")),
        expect=tuple(parse_condition(text, FIGURES) for text in data.get("expect") or []),
        data=data,
        path=path,
    )
