"""Message bodies: sqslab's own JSON payload, or the body your consumer expects, a load
phase's `body:` template (or `body_file:`).

A template is jinja2, rendered once per message in a sandbox, with a small set of names,
every random draw seeded by the scenario's `seed`:

| name | gives |
| --- | --- |
| `id` | sqslab's id of the message (it also travels in the `sqslab-id` attribute) |
| `seq` | the producer's sequence number, 1, 2, ... across the run |
| `index` | the message's index in its phase, from 0 |
| `phase` | the phase's name |
| `sent_at` | the send time, epoch seconds |
| `rand_int(a, b)` | a whole number from a to b |
| `rand_float(a, b, digits=2)` | a number from a to b, rounded |
| `choice(items)` | one of the items |
| `uuid()` | a (seeded) random UUID |
| `now()` | the send time, ISO 8601 UTC |

`check()` is what `sqslab validate` runs: syntax, unknown names (with a suggestion), and
one trial rendering (so `rand_int('a', 2)` is caught before a run).
"""

from __future__ import annotations

import datetime
import difflib
import json
import random
import uuid
from typing import Any

#: The most bytes a rendered body may have (SQS's long-standing message size limit).
MAX_BODY = 262_144
VARIABLES = ("id", "seq", "index", "phase", "sent_at")
FUNCTIONS = ("rand_int", "rand_float", "choice", "uuid", "now")


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


class BodyTemplate:
    """A compiled body template and its seeded draws."""

    def __init__(self, text: str, seed: Any = None, stream: str = "") -> None:
        self.template = _environment().from_string(text)
        self._rng = random.Random(f"{seed}-bodies-{stream}") if seed is not None else random.Random()

    def render(self, ident: str, seq: int, index: int, phase: str, sent_at: float) -> str:
        """The body of one message."""
        rng = self._rng

        def rand_int(low: int, high: int) -> int:
            return rng.randint(int(low), int(high))

        def rand_float(low: float, high: float, digits: int = 2) -> float:
            return round(rng.uniform(float(low), float(high)), int(digits))

        def choice(items: Any) -> Any:
            return rng.choice(list(items))

        def new_uuid() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        def now() -> str:
            return datetime.datetime.fromtimestamp(sent_at, datetime.UTC).isoformat(timespec="milliseconds")

        return str(self.template.render(id=ident, seq=seq, index=index, phase=phase, sent_at=sent_at, rand_int=rand_int,
                                        rand_float=rand_float, choice=choice, uuid=new_uuid, now=now))


class PhaseBodies:
    """Each phase's body template, compiled once, with its own seeded stream."""

    def __init__(self, seed: Any = None) -> None:
        self._seed = seed
        self._templates: dict[str, BodyTemplate] = {}

    def render(self, phase: Any, ident: str, seq: int, index: int, sent_at: float) -> str:
        """The body of the phase's index-th message."""
        template = self._templates.get(phase.name)
        if template is None:
            template = self._templates[phase.name] = BodyTemplate(phase.body or "", seed=self._seed, stream=phase.name)
        return template.render(ident, seq, index, phase.name, sent_at)


def sqslab_payload(phase: Any, ident: str, work: float, seq: int, sent_at: float, poison: bool) -> str:
    """sqslab's own JSON body (docs/contracts.md), padded to the phase's payload size."""
    body: dict[str, Any] = {"id": ident, "work": work, "seq": seq, "sent_at": sent_at, "phase": phase.name}
    if poison:
        body["poison"] = True
    text = json.dumps(body, separators=(",", ":"))
    pad = phase.payload_size - len(text.encode("utf-8")) - len(',"pad":""')
    if pad > 0:
        text = text[:-1] + ',"pad":"' + "x" * pad + '"}'
    return text


def check(text: str) -> list[tuple[int, str]]:
    """Every problem with a template: (its line, from 1; what is wrong)."""
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = _environment().parse(text)
    except TemplateSyntaxError as exc:
        return [(exc.lineno or 1, f"template syntax: {exc.message}")]
    problems = []
    known = VARIABLES + FUNCTIONS
    for name in sorted(meta.find_undeclared_variables(ast) - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
        problems.append((_line_of(text, name), f"unknown name {name!r} in the body template; {hint}"))
    if problems:
        return problems
    try:
        body = BodyTemplate(text, seed=0).render("00000000-0000-4000-8000-000000000000", 1, 0, "phase", 0.0)
    except Exception as exc:  # noqa: BLE001 - any error of a trial rendering is the template's
        return [(getattr(exc, "lineno", None) or 1, f"the body template fails to render: {type(exc).__name__}: {exc}")]
    if len(body.encode("utf-8")) > MAX_BODY:
        return [(1, f"a rendered body is {len(body.encode('utf-8'))} bytes; SQS takes at most {MAX_BODY}")]
    return []


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if name in line:
            return number
    return 1
