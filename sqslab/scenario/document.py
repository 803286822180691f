"""Documents: YAML text read into plain data, with the line and column of every key and value.

Validation errors point at `file:line:col`, so the loader keeps positions instead of
throwing them away as `yaml.safe_load` does. Whatever the bytes, reading a document
returns data or problems, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

#: A scenario file larger than this is refused before it is parsed (scenarios are a few KB).
MAX_BYTES = 256 * 1024
#: A document past this many values is refused: aliases can make a small file expand
#: into an enormous structure ("billion laughs").
MAX_NODES = 100_000
#: Tags a scenario may carry: plain data. Anything else (`!!python/object/apply`, a
#: custom `!tag`) is refused by name instead of being dropped or half-read.
PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))
#: The C parser (libyaml) when PyYAML has it: about 4 times as fast on large input.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, where it is, and what to do about it."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The problem for `--json` output."""
        return {"file": self.file, "line": self.line, "col": self.col, "path": self.path, "message": self.message}


@dataclass
class Document:
    """Plain data read from YAML, and where each part of it was in the file."""

    file: str
    data: Any = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    origins: dict[Path_, str] = field(default_factory=dict)  # values set on the command line

    def position(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """(line, col) of the value at path, or of its key; the nearest known ancestor otherwise."""
        table = self.keys if key else self.values
        path = tuple(path)
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.values:
                return self.values[path]
        return (1, 1)

    def problem(self, path: Path_, message: str, key: bool = False) -> Problem:
        """A problem located at path (at its key when key is true)."""
        path = tuple(path)
        for i in range(len(path), 0, -1):
            if path[:i] in self.origins:
                return Problem(self.origins[path[:i]], 1, 1, format_path(path), message)
        line, col = self.position(path, key=key)
        return Problem(self.file, line, col, format_path(path), message)


def format_path(path: Path_) -> str:
    """`('actions', 0, 'count')` → `actions[0].count`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def read_document(path: Path | str, display: str | None = None) -> tuple[Document, list[Problem]]:
    """Read a YAML file into a Document; problems instead of exceptions. A file above
    MAX_BYTES is refused without being read whole."""
    name = display or str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return Document(name), [Problem(name, 1, 1, "", f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > MAX_BYTES:
        return Document(name), [Problem(name, 1, 1, "", too_large_message())]
    return parse_document(raw, name)


def too_large_message() -> str:
    """Why a file is refused for its size."""
    return (f"the file is larger than {MAX_BYTES // 1024} KiB, the most a scenario file may be (scenarios are a few KB); "
            "split it, or generate the load with `count`/`rate` phases instead of listing it")


def parse_document(raw: bytes | str, name: str) -> tuple[Document, list[Problem]]:
    """Parse YAML text or bytes into a Document; problems instead of exceptions."""
    doc = Document(name)
    if len(raw) > MAX_BYTES:
        return doc, [Problem(name, 1, 1, "", too_large_message())]
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line, col = _offset_position(raw, exc.start)
            return doc, [Problem(name, line, col, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); a scenario is a YAML text file")]
    else:
        text = raw
    if not text.strip():
        return doc, [Problem(name, 1, 1, "", "the file is empty; a scenario starts with `version: 1` and `name: ...`")]
    try:
        return _build_document(_FAST_LOADER, text, doc)
    except yaml.YAMLError:
        # Say what is wrong the way PyYAML's own parser says it (libyaml words it
        # differently); the input is small, so parsing it twice costs little.
        return _build_document(yaml.SafeLoader, text, Document(name))


def _build_document(loader_class: Any, text: str, doc: Document) -> tuple[Document, list[Problem]]:
    name = doc.file
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return doc, [Problem(name, 1, 1, "", "the file holds no YAML document (only comments?)")]
        problems: list[Problem] = []
        builder = _Builder(loader, doc, problems)
        doc.data = builder.build(node, ())
        return doc, problems
    except yaml.MarkedYAMLError as exc:
        if loader_class is not yaml.SafeLoader:
            raise
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if what == "but found another document":
            return doc, [Problem(name, line, col, "", "a scenario file holds one YAML document; this is the start of a second one ('---')")]
        hint = _syntax_hint(what)
        return doc, [Problem(name, line, col, "", f"YAML syntax error: {what}{hint}")]
    except yaml.YAMLError as exc:
        if loader_class is not yaml.SafeLoader:
            raise
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return doc, [Problem(name, line, col, "", f"YAML error: {exc}")]
    except RecursionError:
        return doc, [Problem(name, 1, 1, "", "the document is nested too deeply")]
    finally:
        loader.dispose()


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions as it goes."""

    def __init__(self, loader: yaml.SafeLoader, doc: Document, problems: list[Problem]) -> None:
        self.loader, self.doc, self.problems, self.count = loader, doc, problems, 0

    def build(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self._build(node, path, set())
        except _TooLarge:
            self.problems.append(self.doc.problem((), f"the document has more than {MAX_NODES} values (aliases expanding?); refused"))
            return None

    def _build(self, node: yaml.Node, path: Path_, active: set[int]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        self.doc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag not in PLAIN_TAGS:
            shown = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(self.doc.problem(path, f"the YAML tag {shown} is not allowed: a scenario is plain data "
                                                        "(text, numbers, booleans, lists and mappings)"))
            return None
        if id(node) in active:
            self.problems.append(self.doc.problem(path, "a recursive alias; scenarios cannot refer to themselves"))
            return None
        if isinstance(node, yaml.MappingNode):
            active.add(id(node))
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    key_path = path + (str(key),)
                    self.doc.keys.setdefault(key_path, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
                    self.problems.append(self.doc.problem(key_path, f"keys must be text, got {type(key).__name__} {key!r}", key=True))
                    continue
                key_path = path + (key,)
                if key in result:
                    line = self.doc.keys[key_path][0]
                    self.doc.keys[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                    self.problems.append(self.doc.problem(key_path, f"duplicate key (first on line {line}); each key once", key=True))
                self.doc.keys[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self._build(value_node, key_path, active)
            active.discard(id(node))
            return result
        if isinstance(node, yaml.SequenceNode):
            active.add(id(node))
            items = [self._build(item, path + (i,), active) for i, item in enumerate(node.value)]
            active.discard(id(node))
            return items
        return self.loader.construct_object(node)


def _offset_position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def _syntax_hint(what: str) -> str:
    if "found character '\\t'" in what:
        return " (YAML indents with spaces, not tabs)"
    if "mapping values are not allowed" in what:
        return " (a missing space after ':' or a missing quote before it?)"
    return ""


def scenario_folder(scenario_path: str) -> Path:
    """The folder a scenario's relative paths start from (the working directory for text)."""
    return Path(scenario_path).resolve().parent if scenario_path and not scenario_path.startswith("<") else Path.cwd()


def mapping(data: Any, key: str) -> dict[str, Any]:
    """data[key] when it is a mapping, else {}."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def items(data: Any, key: str) -> list[Any]:
    """data[key] when it is a list, else []."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def folder_of(doc: Document) -> Path:
    """The folder a scenario's relative paths start from."""
    return scenario_folder(doc.file)
