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
| `queue_name`, `queue_url` | the run's queue (frameworks find their queue by name); `validate` renders a placeholder |
| `rand_int(a, b)` | a whole number from a to b |
| `rand_float(a, b, digits=2)` | a number from a to b, rounded |
| `choice(items)` | one of the items |
| `uuid()` | a (seeded) random UUID |
| `now()` | the send time, ISO 8601 UTC |

Beside jinja's filters: `b64encode` (a text's UTF-8, base64) and `tojson` (compact JSON,
not HTML-escaped), for framework envelopes. A phase's `format` (sqslab.scenario.formats)
writes a framework's envelope itself; its template parameters are rendered here too.

`check()` is what `sqslab validate` runs: syntax, unknown names, filters and tests (with
a suggestion), one trial rendering (so `rand_int('a', 2)` is caught before a run) and
SQS's rules for a body (`body_problem()`).

A template is bounded: a scenario is code sqslab runs, and `9**(9**9)`, `'x' * 10**9` or
two nested loops over a huge range would otherwise hang `validate` or eat the machine's
memory. The environment refuses, before computing them, integers past MAX_INT_BITS,
values (texts, lists) past MAX_VALUE_LENGTH, ranges past MAX_RANGE; a rendering stops
once its output passes MAX_BODY or it has run MAX_RENDER_SECONDS (checked at every call,
loop step and output chunk). Each refusal is a TemplateLimitError naming its limit.
`read_template_file()` reads a `body_file`: a regular file under the scenario's folder,
its size checked before it is read.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import math
import os
import random
import re
import stat
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The most bytes a rendered body may have (SQS's long-standing message size limit).
MAX_BODY = 262_144
#: The most bytes a `body_file` may have; its size is checked before it is read.
MAX_TEMPLATE_BYTES = 4 * MAX_BODY
#: The longest one rendering may take (wall clock), so `validate` answers within a second.
MAX_RENDER_SECONDS = 0.25
#: The largest integer a template may make, in bits (about 77 decimal digits).
MAX_INT_BITS = 256
#: The most characters (or items, counted through nested lists) one value may have: no
#: longer value fits in a body.
MAX_VALUE_LENGTH = MAX_BODY
#: The most items a `range()` may have.
MAX_RANGE = 10_000
VARIABLES = ("id", "seq", "index", "phase", "sent_at", "queue_name", "queue_url")
#: What `queue_name` and `queue_url` are when `validate` renders a template, before any queue exists.
PLACEHOLDER_QUEUE_URL = "http://127.0.0.1:4566/123456789012/the-runs-queue"
FUNCTIONS = ("rand_int", "rand_float", "choice", "uuid", "now")

#: What SQS allows in a body: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_NOT_ALLOWED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ALLOWED_TEXT = "SQS allows #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF"
#: A printf conversion: its width and precision, a number or `*` (from the arguments).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[A-Za-z%]")
#: Names the instrumented template calls: each loop's iterable and each `~` go through them.
_LOOP, _CONCAT = "sqslab_loop__", "sqslab_concat__"


class TemplateLimitError(ValueError):
    """A body template went past one of the limits above; the message names it and its value."""


class BodyFileError(ValueError):
    """A `body_file` that is not a readable template: the message says why."""


# ---------------------------------------------------------------- limits


# The deadline of the rendering in progress on this thread: the environment's hooks are
# called from template code with no handle on the rendering, and one thread renders one
# body at a time (the producer's scheduler, or validate).
_RENDERING = threading.local()


def _check_time() -> None:
    deadline = getattr(_RENDERING, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateLimitError(f"the body template takes longer than {MAX_RENDER_SECONDS:g}s to render (MAX_RENDER_SECONDS)")


def _too_long(what: str, length: int, unit: str = "characters") -> TemplateLimitError:
    return TemplateLimitError(f"{what} would make {length} {unit}; a body template's values are limited to "
                              f"{MAX_VALUE_LENGTH} (MAX_VALUE_LENGTH)")


def _too_big(what: str, bits: int) -> TemplateLimitError:
    return TemplateLimitError(f"{what} would make an integer of about {bits} bits; a body template's integers are "
                              f"limited to {MAX_INT_BITS} bits (MAX_INT_BITS)")


def _weight(value: Any, limit: int = MAX_VALUE_LENGTH) -> int:
    """Characters and items in value, nested lists and mappings included, counted until
    past limit: each step counts at least one, so this is cheap whatever the value."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes, range)):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
    return total


def _checked(value: Any, what: str) -> Any:
    """value, when it is within the limits; what names what made it."""
    kind = type(value)  # the common cases first: this runs for every call and output of every body
    if (kind is str and len(value) <= MAX_VALUE_LENGTH) or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _too_big(what, value.bit_length())
    weight = _weight(value)
    if weight > MAX_VALUE_LENGTH:
        raise TemplateLimitError(f"{what} made a value of more than {MAX_VALUE_LENGTH} characters and items; a body "
                                 f"template's values are limited to {MAX_VALUE_LENGTH} (MAX_VALUE_LENGTH)")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _width(value: Any) -> None:
    if _is_int(value) and value > MAX_VALUE_LENGTH:
        raise TemplateLimitError(f"a format width or precision of {value}; a body template's values are limited to "
                                 f"{MAX_VALUE_LENGTH} (MAX_VALUE_LENGTH)")


def _printf_widths(fmt: str, args: Any) -> None:
    """`fmt % args` pads no value past the limit (a width `*` comes from args)."""
    for match in _PRINTF.finditer(fmt):
        for part in match.groups():
            if part == "*":
                for arg in args if isinstance(args, tuple) else (args,):
                    _width(arg)
            elif part:
                _width(int(part))


def _format_widths(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """`fmt.format(...)` pads no value past the limit (a nested `{}` width comes from the arguments)."""
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        for number in re.findall(r"\d+", spec):
            _width(int(number))
        if "{" in spec:
            for arg in (*args, *kwargs.values()):
                _width(arg)


def _replaced_length(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        length = len(text) + count * (len(new) - len(old))
        if length > MAX_VALUE_LENGTH:
            raise _too_long("replace", length)


def _joined_length(items: list[Any], separator: Any) -> None:
    length = _weight(items) - len(items) + max(len(items) - 1, 0) * len(str(separator))
    if length > MAX_VALUE_LENGTH:
        raise _too_long("join", length)


def _padded_length(name: str, text: Any, width: Any) -> None:
    if _is_int(width) and width > MAX_VALUE_LENGTH:
        raise _too_long(f"{name}({width})", max(width, len(text) if isinstance(text, str) else 0))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, a result past the limits."""
    if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = int(right * math.log2(abs(left)))
        if bits > MAX_INT_BITS:
            raise _too_big(f"{left!r} ** {right!r}", bits)
    elif operator == "*":
        if _is_int(left) and _is_int(right):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS + 1:
                raise _too_big(f"{left!r} * {right!r}", bits)
        else:
            times, sequence = (left, right) if _is_int(left) else (right, left)
            if _is_int(times) and isinstance(sequence, (str, bytes, list, tuple)):
                length = times * _weight(sequence)
                if length > MAX_VALUE_LENGTH:
                    shown = repr(sequence) if len(repr(sequence)) <= 40 else f"a {type(sequence).__name__}"
                    raise _too_long(f"{shown} * {times}", length, "items")
    elif operator == "%" and isinstance(left, str):
        _printf_widths(left, right)


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a text's method that would make a text past the limit; the
    arguments to call it with (a `join` gets its items as a list, counted once)."""
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, (str, bytes)):
        return args
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _padded_length(name, owner, args[0])
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        if _is_int(size) and len(owner) + tabs * size > MAX_VALUE_LENGTH:
            raise _too_long(f"expandtabs({size})", len(owner) + tabs * size)
    elif name == "replace" and len(args) >= 2:
        _replaced_length(owner, args[0], args[1])
    elif name == "join" and args:
        items = list(args[0])
        _joined_length(items, owner)
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        if len(owner) * longest > MAX_VALUE_LENGTH:
            raise _too_long("translate", len(owner) * longest)
    return args


# Pre-checks of the filters that can make much more than they are given, each with the
# filter's own parameters (after the context jinja passes some of them).
def _center(value: Any, width: Any = 80, *rest: Any, **kw: Any) -> None:
    _padded_length("center", value, width)


def _indent(value: Any, width: Any = 4, *rest: Any, **kw: Any) -> None:
    if isinstance(value, str):
        per_line = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        length = len(value) + (value.count("\n") + 1) * per_line
        if length > MAX_VALUE_LENGTH:
            raise _too_long("indent", length)


def _format(value: Any, *args: Any, **kw: Any) -> None:
    if isinstance(value, str):
        _printf_widths(value, args)


def _replace(value: Any, old: Any = "", new: Any = "", *rest: Any, **kw: Any) -> None:
    _replaced_length(value, old, new)


def _wordwrap(value: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, *rest: Any, **kw: Any) -> None:
    if isinstance(value, str) and isinstance(wrapstring, str) and _is_int(width):
        lines = len(value) // max(width, 1) + value.count(" ") + value.count("\n") + 1
        if len(value) + lines * len(wrapstring) > MAX_VALUE_LENGTH:
            raise _too_long("wordwrap", len(value) + lines * len(wrapstring))


def _count_limit(name: str) -> Callable[..., None]:
    def check(value: Any, count: Any = 0, *rest: Any, **kw: Any) -> None:
        if _is_int(count) and count > MAX_VALUE_LENGTH:
            raise _too_long(f"{name}({count})", count, "items")
    return check


def _sum(value: Any, attribute: Any = None, start: Any = 0, **kw: Any) -> None:
    start = kw.get("start", start)
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        raise TemplateLimitError("sum adds numbers in a body template; join texts with join")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center, "indent": _indent, "format": _format, "replace": _replace, "wordwrap": _wordwrap,
    "batch": _count_limit("batch"), "slice": _count_limit("slice"), "sum": _sum,
}


def _b64encode(value: Any) -> str:
    """Base64 of a text (UTF-8) or bytes: what framework envelopes (dramatiq-sqs, kombu) carry."""
    import base64

    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    _checked(" " * (len(data) * 4 // 3), "the filter b64encode")  # refused before it is made
    return base64.b64encode(data).decode("ascii")


def _tojson(value: Any, indent: Any = None) -> str:
    """JSON of a value as a framework writes it: compact, no HTML escaping (jinja's own
    tojson writes `<` as \u003c, for HTML pages)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":") if indent is None else None,
                      indent=None if indent is None else int(indent), default=str)


#: sqslab's own filters, beside jinja's.
EXTRA_FILTERS: dict[str, Callable[..., Any]] = {"b64encode": _b64encode, "tojson": _tojson}


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, with its pre-check and a check of what it returns."""
    check = _FILTER_CHECKS.get(name)
    # A filter marked with pass_context & co. gets jinja's context first; the checks do not.
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        if name == "join" and len(args) > skip:
            items = list(args[skip])
            _joined_length(items, args[skip + 1] if len(args) > skip + 1 else kwargs.get("d", ""))
            args = (*args[:skip], items, *args[skip + 1:])
        elif check is not None:
            check(*args[skip:], **kwargs)
        return _checked(function(*args, **kwargs), f"the filter {name}")

    return guarded


def _range(*args: Any) -> range:
    """range(), refused past MAX_RANGE items before it is made."""
    values = range(*args)
    try:
        length = len(values)
    except OverflowError:
        length = MAX_RANGE + 1
    if length > MAX_RANGE:
        shown = ", ".join(map(repr, args))
        raise TemplateLimitError(f"range({shown}) has {length} items; a body template's ranges are limited to {MAX_RANGE} (MAX_RANGE)")
    return values


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's items, the time limit checked at each: a loop over a string or a list calls nothing else."""
    for item in iterable:
        _check_time()
        yield item


def _concat(*parts: Any) -> str:
    """`a ~ b`, refused past the limit before the text is made."""
    _check_time()
    texts = [str(part) for part in parts]
    length = sum(map(len, texts))
    if length > MAX_VALUE_LENGTH:
        raise _too_long("joining texts", length)
    return "".join(texts)


def _join_output(parts: Iterable[str]) -> str:
    """A block's output (a macro's, a `{% set %}` block's), refused past the limit before it is joined."""
    texts = list(parts)
    length = sum(map(len, texts))
    if length > MAX_VALUE_LENGTH:
        raise _too_long("a block of the template", length)
    return "".join(texts)


@functools.cache
def _environment_class() -> Any:
    """The bounded sandbox (made on first use: jinja2 is imported only when a template is)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        """The sandbox (immutable: no list.append to grow a value unseen) with every
        operator, call, filter and output that could make a huge value checked first."""

        intercepted_binops = frozenset({"*", "**", "%", "+"})
        concat = staticmethod(_join_output)

        def __init__(self) -> None:
            from jinja2 import StrictUndefined

            super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, finalize=self._output)
            self.filters = {name: _guard_filter(name, function) for name, function in {**self.filters, **EXTRA_FILTERS}.items()}
            # lipsum makes text by the paragraph; no other default global is needed.
            self.globals = {"range": _range, "dict": dict, "namespace": self.globals["namespace"],
                            "cycler": self.globals["cycler"], "joiner": self.globals["joiner"], _LOOP: _loop, _CONCAT: _concat}

        @staticmethod
        def _output(value: Any) -> Any:
            return _checked(value, "a value")

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            """The operator, refused before it runs when its result would pass a limit."""
            _check_time()
            _check_binop(operator, left, right)
            return _checked(super().call_binop(context, operator, left, right), f"the operator {operator}")

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            """A call from the template: time checked, a text method's result bounded first, the result checked."""
            _check_time()
            args = _check_method(__obj, args, kwargs)
            result = super().call(__context, __obj, *args, **kwargs)
            return _checked(result, getattr(__obj, "__name__", "a call"))

        def wrap_str_format(self, value: Any) -> Any:
            """`str.format`, its widths checked first."""
            wrapper = super().wrap_str_format(value)
            if wrapper is None:
                return None
            fmt = value.__self__

            def bounded(*args: Any, **kwargs: Any) -> Any:
                _format_widths(fmt, args, args[0] if value.__name__ == "format_map" and args else kwargs)
                return wrapper(*args, **kwargs)

            return bounded

    return BoundedEnvironment


def _environment() -> Any:
    return _environment_class()()


def _instrument(ast: Any) -> Any:
    """The parsed template with every loop's iterable and every `~` routed through the
    environment's checks: neither calls anything jinja lets a sandbox intercept."""
    from jinja2 import nodes
    from jinja2.visitor import NodeTransformer

    class Instrument(NodeTransformer):
        def visit_For(self, node: Any) -> Any:
            self.generic_visit(node)
            node.iter = nodes.Call(nodes.Name(_LOOP, "load", lineno=node.lineno), [node.iter], [], None, None, lineno=node.lineno)
            return node

        def visit_Concat(self, node: Any) -> Any:
            self.generic_visit(node)
            return nodes.Call(nodes.Name(_CONCAT, "load", lineno=node.lineno), node.nodes, [], None, None, lineno=node.lineno)

    return Instrument().visit(ast)


def _compile(environment: Any, text: str) -> Any:
    return environment.from_string(_instrument(environment.parse(text)))


def render_error(exc: BaseException) -> str:
    """What a failed rendering says: a limit's own message, or the error it met."""
    if isinstance(exc, TemplateLimitError):
        return str(exc)
    return f"the body template fails to render: {type(exc).__name__}: {exc}"


def body_problem(body: str) -> str | None:
    """Why SQS would refuse this body (empty, a character it does not allow, too long), or None."""
    if not body:
        return "the body is empty; SQS needs at least one character"
    bad = _NOT_ALLOWED.search(body)
    if bad:
        return (f"the body holds the character U+{ord(bad.group()):04X} at position {bad.start() + 1}, which SQS refuses "
                f"({_ALLOWED_TEXT})")
    size = len(body.encode("utf-8"))
    if size > MAX_BODY:
        return f"the body is {size} bytes; SQS takes at most {MAX_BODY} (MAX_BODY)"
    return None


class BodyTemplate:
    """A compiled body template and its seeded draws."""

    def __init__(self, text: str, seed: Any = None, stream: str = "", queue_url: str = PLACEHOLDER_QUEUE_URL) -> None:
        self.template = _compile(_environment(), text)
        self._rng = random.Random(f"{seed}-bodies-{stream}") if seed is not None else random.Random()
        self._queue = {"queue_url": queue_url, "queue_name": queue_url.rstrip("/").rsplit("/", 1)[-1]}

    def render(self, ident: str, seq: int, index: int, phase: str, sent_at: float) -> str:
        """The body of one message; TemplateLimitError past a limit (output, time, values)."""
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

        names = {"id": ident, "seq": seq, "index": index, "phase": phase, "sent_at": sent_at, "rand_int": rand_int,
                 "rand_float": rand_float, "choice": choice, "uuid": new_uuid, "now": now, **self._queue}
        chunks, size = [], 0
        _RENDERING.deadline = time.monotonic() + MAX_RENDER_SECONDS
        try:
            # Chunk by chunk, so a body past the limit stops there instead of being made whole.
            for chunk in self.template.generate(**names):
                size += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
                if size > MAX_BODY:
                    raise TemplateLimitError(f"the rendered body is over {MAX_BODY} bytes (MAX_BODY, SQS's limit)")
                _check_time()
                chunks.append(chunk)
        finally:
            _RENDERING.deadline = None
        return "".join(chunks)


@dataclass(frozen=True)
class FormatMessage:
    """What a body format (sqslab.scenario.formats) knows of the message it writes."""

    id: str
    seq: int
    index: int
    phase: str
    sent_at: float
    queue_name: str
    queue_url: str


class PhaseBodies:
    """Each phase's body template (or its format's templates), compiled once, each with its
    own seeded stream; `formats` are the body formats by name (sqslab.plugins.BodyFormat)."""

    def __init__(self, seed: Any = None, queue_url: str = PLACEHOLDER_QUEUE_URL, formats: Mapping[str, Any] | None = None) -> None:
        self._seed, self._queue_url, self._formats = seed, queue_url, formats or {}
        self._templates: dict[tuple[str, str], BodyTemplate] = {}

    def _template(self, phase: str, text: str, part: str = "") -> BodyTemplate:
        template = self._templates.get((phase, part))
        if template is None:
            stream = f"{phase}-{part}" if part else phase
            template = self._templates[(phase, part)] = BodyTemplate(text, seed=self._seed, stream=stream, queue_url=self._queue_url)
        return template

    def render(self, phase: Any, ident: str, seq: int, index: int, sent_at: float) -> str:
        """The body of the phase's index-th message."""
        if getattr(phase, "format", None) is None:
            return self._template(phase.name, phase.body or "").render(ident, seq, index, phase.name, sent_at)
        spec = self._formats[phase.format["name"]]
        params = {key: value for key, value in phase.format.items() if key != "name"}
        for key in spec.templates:
            if isinstance(params.get(key), str):
                params[key] = self._template(phase.name, params[key], key).render(ident, seq, index, phase.name, sent_at)
        queue_name = self._queue_url.rstrip("/").rsplit("/", 1)[-1]
        body = spec.function(params, FormatMessage(ident, seq, index, phase.name, sent_at, queue_name, self._queue_url))
        if not isinstance(body, str):
            raise TypeError(f"the format {spec.name!r} wrote {type(body).__name__}, not text (plugin {spec.plugin})")
        return body


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


def check(text: str, whole_body: bool = True) -> list[tuple[int, str]]:
    """Every problem with a template: (its line, from 1; what is wrong); with whole_body
    False (a format's parameter) its trial rendering need not be a body SQS takes."""
    from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes

    environment = _environment()
    try:
        ast = environment.parse(text)
    except TemplateSyntaxError as exc:
        return [(exc.lineno or 1, _printable(f"template syntax: {exc.message}"))]
    except (ValueError, RecursionError) as exc:  # a number literal past Python's digits, nesting past its stack
        return [(1, _printable(f"template syntax: {type(exc).__name__}: {exc}"))]
    problems = []
    for kind, node_type, table in (("filter", nodes.Filter, environment.filters), ("test", nodes.Test, environment.tests)):
        for node in ast.find_all(node_type):
            if node.name not in table:
                close = difflib.get_close_matches(node.name, list(table), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"{kind}s: " + ", ".join(sorted(table))
                problems.append((node.lineno, f"unknown {kind} {node.name!r} in the body template; {hint}"))
    if problems:
        return problems
    known = VARIABLES + FUNCTIONS
    try:
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateError as exc:
        return [(getattr(exc, "lineno", None) or 1, _printable(f"template: {exc}"))]
    for name in sorted(undeclared - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
        problems.append((_line_of(text, name), f"unknown name {name!r} in the body template; {hint}"))
    if problems:
        return problems
    try:
        body = BodyTemplate(text, seed=0).render("00000000-0000-4000-8000-000000000000", 1, 0, "phase", 0.0)
    except Exception as exc:  # noqa: BLE001 - any error of a trial rendering is the template's
        return [(_template_line(exc), _printable(render_error(exc)))]
    problem = body_problem(body) if whole_body else None
    return [(1, problem)] if problem else []


def read_template_file(name: str, folder: Path, program_cwd: Path | None = None) -> str:
    """The text of a `body_file` (relative to folder, the scenario's): a regular file in
    folder or below it, or in the folder the scenario names as its program's working
    directory (the one other place a scenario names explicitly), at most
    MAX_TEMPLATE_BYTES, UTF-8. Its kind and size are checked before it is read, so a named
    pipe, /dev/zero or a huge file never is."""
    folder = folder.resolve()
    path = (folder / name).resolve()
    roots = [folder] + ([program_cwd.resolve()] if program_cwd is not None else [])
    if not any(path.is_relative_to(root) for root in roots):
        if program_cwd is None:
            raise BodyFileError(f"must be a file in the scenario's folder or below it (no scenario key allows a path outside it); "
                                f"{path} is outside {folder}")
        raise BodyFileError(f"must be a file in the scenario's folder or in consumer.program.cwd, or below them (no other "
                            f"scenario key allows a path outside them); {path} is outside {folder} and {roots[1]}")
    try:
        # O_NONBLOCK: opening a named pipe put in place after any earlier check does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BodyFileError(f"cannot read the body template {path}: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BodyFileError(f"{path} is not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > MAX_TEMPLATE_BYTES:
            raise BodyFileError(f"{path} is {info.st_size} bytes; a body template may have at most {MAX_TEMPLATE_BYTES} "
                                "(MAX_TEMPLATE_BYTES)")
        data = os.read(fd, MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise BodyFileError(f"cannot read the body template {path}: {exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_TEMPLATE_BYTES:  # it grew after fstat
        raise BodyFileError(f"{path} is over {MAX_TEMPLATE_BYTES} bytes; a body template may have at most that (MAX_TEMPLATE_BYTES)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyFileError(f"cannot read the body template {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text reads it


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((word for test, word in kinds if test(mode)), "not a file")


def _template_line(exc: BaseException) -> int:
    """The template line an error was raised at: jinja gives its frames the template's line numbers."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) and line > 0 else 1


def _printable(message: str) -> str:
    """A message with any lone surrogate it quotes written as an escape: printed raw, it would fail."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if name in line:
            return number
    return 1
