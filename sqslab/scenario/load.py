"""Loading a scenario: read a YAML file, apply `--set` overrides, validate it
(sqslab.scenario.validation) and resolve it into the model (sqslab.scenario.model): every
default filled in, every unit resolved, its consumer resolved by its kind
(sqslab.consumers), the load phases on one clock, the expectations parsed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sqslab.consumers import ConsumerKind, kind_of
from sqslab.consumers.builtin import resolve_knobs
from sqslab.consumers.kinds import builtin_kinds
from sqslab.scenario.bodies import read_template_file
from sqslab.scenario.document import Document, Problem, format_path, parse_document, read_document, scenario_folder
from sqslab.scenario.model import ActionSpec, Infra, Scenario, SqsConfig
from sqslab.scenario.names import ACTION_KEYS, PHASE_KINDS, default_action_name, default_phase_name, split_after
from sqslab.scenario.settings import resolve_section
from sqslab.scenario.timeline import Phase, resolve_producer
from sqslab.scenario.units import parse_duration, parse_fraction, parse_range, parse_rate, parse_size
from sqslab.scenario.validation import validate_document
from sqslab.truth.expectations import FIGURES, LIVE_METRICS, parse_condition

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost


class ScenarioError(Exception):
    """A scenario that cannot be used; `problems` says every reason, with positions."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


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
    return resolve(doc.data, path=doc.file, kinds=host.consumer_kinds)


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
        origin = f"--set {text if len(text) <= 80 else text[:77] + '...'}"
        key, sep, raw = text.partition("=")
        parts = _split_key_path(key.strip()) if sep else None
        if not parts:
            problems.append(Problem(origin, 1, 1, "", "write --set KEY.PATH=VALUE, e.g. --set infra.consumers=3"))
            continue
        value, refused = _override_value(raw, origin)
        if refused:
            problems += refused
            continue
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
        settable = isinstance(target, dict) and isinstance(last, str)
        settable = settable or (isinstance(target, list) and isinstance(last, int) and last < len(target))
        if settable:
            target[last] = value
        else:
            problems.append(Problem(origin, 1, 1, format_path(tuple(parts)), "no such place in the scenario to set"))
            continue
        doc.origins[tuple(parts)] = origin
    return problems


def _override_value(raw: str, origin: str) -> tuple[Any, list[Problem]]:
    """A --set value read as YAML with the same limits as a file (size, aliases, tags);
    text that is not YAML is taken as it is."""
    if not raw.strip():
        return "", []
    parsed, problems = parse_document(raw, origin)
    limits = [p for p in problems if not p.message.startswith("YAML syntax error")]
    if limits:
        return None, limits
    return (raw, []) if problems else (parsed.data, [])


def _split_key_path(text: str) -> list[str | int] | None:
    parts: list[str | int] = []
    for piece in text.split("."):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)", piece)
        if not match:
            return None
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


# ---------------------------------------------------------------- resolution


def resolve_infra(infra: dict[str, Any]) -> Infra:
    """Infra settings from the scenario's `infra` mapping (assumed valid), defaults filled."""
    return Infra(**resolve_section("infra", infra))


def resolve_sqs(sqs: dict[str, Any]) -> SqsConfig:
    """The `sqs` section (assumed valid): the profile, each setting resolved against it, the faults."""
    from sqslab.scenario.settings import resolve_behavior

    given = resolve_section("sqs", sqs, only_given=True)
    behavior = given.pop("behavior", "exact")
    settings = resolve_behavior(behavior, given)
    faults = tuple(resolve_fault(raw, f"sqs.faults[{i}]") for i, raw in enumerate(sqs.get("faults") or []))
    return SqsConfig(behavior, settings, faults)


def resolve_fault(raw: dict[str, Any], label: str, start: float | None = None, end: float | None = None) -> dict[str, Any]:
    """A fault rule (sqslab.consumer.sqsfaults) from a fault's scenario parameters (assumed
    valid), in force from `start` to `end` (epoch seconds; None: open)."""
    from sqslab.consumer.sqsfaults import check_rule

    latency = parse_range(raw["latency"]) if "latency" in raw else None
    return check_rule({"api": raw["api"], "error": raw.get("error"), "rate": parse_fraction(raw.get("rate", 1)),
                       "latency": list(latency) if latency else None, "start": start, "end": end, "label": label})


def resolve_phase(raw: dict[str, Any], index: int, start: float, poison_rate: float, fifo: bool = False,
                  base: Path | None = None, program_cwd: Path | None = None) -> Phase:
    """One load phase from the scenario (assumed valid), starting at `start`; on a FIFO
    queue every message has a group (one group unless the phase says how many); a
    `body_file` is read from `base` (the scenario's folder), as validation reads it."""
    kind = next(k for k in PHASE_KINDS if k in raw)
    groups, hot = raw.get("groups", 1 if fifo else None), None
    if isinstance(groups, dict):
        groups, hot = groups["count"], parse_fraction(groups["hot"]) if "hot" in groups else None
    common: dict[str, Any] = {
        "name": default_phase_name(raw, index),
        "kind": kind,
        "start": start,
        "payload_size": parse_size(raw.get("payload_size", 256)),
        "poison_rate": poison_rate,
        "groups": groups,
        "hot": hot,
        "duplicate_sends": parse_fraction(raw.get("duplicate_sends", 0)),
        "body": raw.get("body"),
        "format": dict(raw["format"]) if isinstance(raw.get("format"), dict) else None,
    }
    if "body_file" in raw:
        folder = base or Path.cwd()
        text = read_template_file(raw["body_file"], folder, program_cwd)
        common.update(body=text, body_file=str((folder / raw["body_file"]).resolve()),
                      body_sha256=hashlib.sha256(text.encode()).hexdigest())
    if kind == "rate":
        return Phase(**common, duration=parse_duration(raw["duration"]), rate=parse_rate(raw["rate"]))
    if kind == "ramp":
        low, high = parse_range(raw["ramp"], parse_rate)
        return Phase(**common, duration=parse_duration(raw["duration"]), rate_from=low, rate_to=high)
    if kind == "count":
        return Phase(**common, duration=parse_duration(raw["duration"]), count=raw["count"])
    if kind == "burst":
        return Phase(**common, count=raw["burst"])
    if kind == "producer":
        return Phase(**common, duration=parse_duration(raw["duration"]), producer=resolve_producer(raw["producer"]["program"], base))
    return Phase(**common, duration=parse_duration(raw["pause"]))


def resolve_action(raw: dict[str, Any], index: int) -> ActionSpec:
    """One action from the scenario (assumed valid)."""
    after, offset = split_after(raw["after"]) if "after" in raw else (None, 0.0)
    return ActionSpec(
        index=index,
        name=default_action_name(raw, index) or f"action-{index + 1}",
        do=raw["do"],
        params={k: v for k, v in raw.items() if k not in ACTION_KEYS},
        at=parse_duration(raw["at"]) if "at" in raw else None,
        after=after,
        after_offset=offset,
        when=parse_condition(raw["when"], LIVE_METRICS) if "when" in raw else None,
        continue_on_error=raw.get("continue_on_error", False),
        timeout=parse_duration(raw["timeout"]) if "timeout" in raw else None,
    )


def resolve(data: dict[str, Any], path: str = "", kinds: Mapping[str, ConsumerKind] | None = None) -> Scenario:
    """A Scenario from valid scenario data: units parsed, defaults filled, phases timed; its
    consumer resolved by its kind (of `kinds`, default sqslab's own)."""
    kinds = builtin_kinds() if kinds is None else kinds
    section = dict(data.get("consumer") or {})
    top = resolve_section("", data)
    consumer = kind_of(section, kinds).resolve(section, path, top["seed"])
    owned = {key for kind in kinds.values() for key in kind.sections()}
    knobs = resolve_knobs({k: v for k, v in section.items() if k not in owned})
    infra = resolve_infra(data.get("infra") or {})
    phases, start = [], 0.0
    for i, raw in enumerate(data.get("load") or []):
        phase = resolve_phase(raw, i, start, knobs.poison_rate, infra.fifo, base=scenario_folder(path),
                              program_cwd=consumer.folder)
        phases.append(phase)
        start += phase.duration or 0.0
    settle = resolve_section("settle", data.get("settle"))
    return Scenario(
        name=top["name"],
        description=top["description"] or "",
        seed=top["seed"],
        sample_interval=top["sample_interval"],
        infra=infra,
        knobs=knobs,
        phases=tuple(phases),
        actions=tuple(resolve_action(raw, i) for i, raw in enumerate(data.get("actions") or [])),
        settle_until=settle["until"],
        settle_timeout=settle["timeout"],
        expect=tuple(parse_condition(text, FIGURES) for text in data.get("expect") or []),
        sqs=resolve_sqs(data.get("sqs") or {}),
        consumer=consumer,
        effects_id=resolve_section("effects", data["effects"])["id"] if "effects" in data else None,
        data=data,
        path=path,
    )


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as JSON-able data (conditions as text)."""
    return {
        "name": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "sample_interval": scenario.sample_interval,
        "infra": asdict(scenario.infra),
        "knobs": asdict(scenario.knobs),
        # A body file's path and hash, not its content: it may hold what the run directory must not.
        "phases": [{**asdict(p), "body": None if p.body_file else p.body} for p in scenario.phases],
        "actions": [{**asdict(a), "when": a.when.text if a.when else None} for a in scenario.actions],
        "settle": {"until": scenario.settle_until, "timeout": scenario.settle_timeout},
        "sqs": asdict(scenario.sqs),
        "consumer": scenario.consumer.resolved(),
        "effects": {"id": scenario.effects_id} if scenario.effects_id is not None else None,
        "expect": [c.text for c in scenario.expect],
    }


def dump_yaml(data: dict[str, Any]) -> str:
    """Scenario data as YAML text (the run directory's scenario.yaml)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
