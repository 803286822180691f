"""The plugin host: built-in plugins, entry points and `--plugins-dir`, on pluggy.

Set `SQSLAB_LOAD_PLUGINS=''` to load no outside plugins (entry points), e.g. to rule
one out when something misbehaves.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from sqslab import hookspecs
from sqslab.consumers import ConsumerKind
from sqslab.targets import TargetFactory, TargetOption

ENTRY_POINT_GROUP = "sqslab"
#: Names a target option cannot take: the `run` command's own options and the factory's `log`.
RESERVED_TARGET_OPTIONS = ("log", "target", "set", "overrides", "out", "json", "as_json", "quiet", "q", "runs_dir",
                           "max_consumers", "plugins_dir", "plugins_dirs", "scenario_path", "help", "h")
DEFAULT_PLUGINS = ("sqslab.run.actions", "sqslab.reports.formats", "sqslab.targets.local", "sqslab.targets.aws.target",
                   "sqslab.consumers.builtin", "sqslab.consumers.program",
                   "sqslab.consumers.lambda_function", "sqslab.scenario.formats")
#: The hooks, in the order the host calls them.
HOOKS = ("register_actions", "register_reporters", "register_targets", "register_consumer_kinds", "register_body_formats")


class PluginError(Exception):
    """A plugin could not be loaded, or registered something wrongly."""


@dataclass(frozen=True)
class Action:
    """An action a scenario can `do`: its parameters' schema and the function that does it."""

    name: str
    function: Callable[..., Any]
    schema: dict[str, Any]
    description: str
    plugin: str


@dataclass(frozen=True)
class Reporter:
    """A report format: the function that renders a run, and its usual file extension."""

    name: str
    function: Callable[..., Any]
    extension: str
    description: str
    plugin: str


@dataclass(frozen=True)
class TargetSpec:
    """A place a scenario runs (local, aws) as a plugin registered it: a factory of target
    objects (sqslab.targets.Target), `factory(log, **options)`, and the options it takes
    (offered on the command line as `--NAME`)."""

    name: str
    factory: TargetFactory
    description: str
    plugin: str
    options: tuple[TargetOption, ...] = ()


@dataclass(frozen=True)
class Kind:
    """A kind of consumer (sqslab.consumers.ConsumerKind) as a plugin registered it."""

    name: str
    kind: ConsumerKind
    description: str
    plugin: str


@dataclass(frozen=True)
class BodyFormat:
    """A body format a load phase can name (`format: {name: ...}`): its parameters' schema,
    which of them are body templates, and the function that writes the body."""

    name: str
    function: Callable[..., str]
    schema: dict[str, Any]
    templates: tuple[str, ...]
    description: str
    plugin: str


@dataclass
class PluginHost:
    """What the loaded plugins registered, by kind and name."""

    manager: pluggy.PluginManager
    actions: dict[str, Action] = field(default_factory=dict)
    reporters: dict[str, Reporter] = field(default_factory=dict)
    targets: dict[str, TargetSpec] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    formats: dict[str, BodyFormat] = field(default_factory=dict)

    @property
    def consumer_kinds(self) -> dict[str, ConsumerKind]:
        """The kinds of consumer, by name, in registration order (the built-ins first)."""
        return {name: spec.kind for name, spec in self.kinds.items()}

    def describe(self) -> list[dict[str, Any]]:
        """One entry per plugin with what it registered, for `sqslab plugins`."""
        by_plugin: dict[str, dict[str, Any]] = {}
        for kind in ("actions", "reporters", "targets", "kinds", "formats"):
            for item in getattr(self, kind).values():
                entry = by_plugin.setdefault(item.plugin, {"name": item.plugin, "version": _version(item.plugin),
                                                           "actions": [], "reporters": [], "targets": [], "consumer_kinds": [],
                                                           "body_formats": []})
                entry[{"kinds": "consumer_kinds", "formats": "body_formats"}.get(kind, kind)].append(item.name)
        return sorted(by_plugin.values(), key=lambda e: (not e["name"].startswith("sqslab."), e["name"]))


def load_plugins(plugins_dirs: list[Path] | tuple[Path, ...] = (), entry_points: bool | None = None,
                 extra: tuple[Any, ...] = (), builtins: tuple[str, ...] = DEFAULT_PLUGINS) -> PluginHost:
    """Load the built-ins, the `sqslab` entry points, every `*.py` in plugins_dirs, and
    the plugin objects in `extra` (modules or classes with hook implementations).

    `builtins` names the built-in modules to load (all of them by default): a test or an
    embedding program can leave one out and register its own in `extra`."""
    manager = pluggy.PluginManager("sqslab")
    manager.add_hookspecs(hookspecs)
    for name in builtins:
        manager.register(importlib.import_module(name), name=name)
    if entry_points is None:
        entry_points = os.environ.get("SQSLAB_LOAD_PLUGINS", None) != ""
    if entry_points:
        try:
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party package must not hide which one it is
            raise PluginError(f"loading entry points of group {ENTRY_POINT_GROUP!r} failed: {exc}") from exc
    for directory in plugins_dirs:
        for path in sorted(Path(directory).glob("*.py")):
            manager.register(_import_file(path), name=f"{path.stem} ({path})")
    for plugin in extra:
        manager.register(plugin)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (known hooks: {', '.join(HOOKS)})") from exc
    return _collect(manager)


def _version(plugin: str) -> str | None:
    """The version of the distribution a plugin comes from (sqslab's for the built-ins)."""
    from importlib.metadata import PackageNotFoundError, version

    top = plugin.split(".")[0].split(" ")[0]
    try:
        return version(top)
    except (PackageNotFoundError, ValueError):
        return None


def _import_file(path: Path) -> Any:
    module_name = f"sqslab_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"{path}: importing the plugin failed: {type(exc).__name__}: {exc}") from exc
    return module


def _collect(manager: pluggy.PluginManager) -> PluginHost:
    host = PluginHost(manager)
    # Kinds first: an action's schema may depend on them (set_consumer's parameters).
    for kind, hook, make in (
        ("kinds", manager.hook.register_consumer_kinds, _make_kind),
        ("actions", manager.hook.register_actions, _action_maker(host)),
        ("reporters", manager.hook.register_reporters, _make_reporter),
        ("targets", manager.hook.register_targets, _make_target),
        ("formats", manager.hook.register_body_formats, _make_format),
    ):
        if kind == "actions":
            _check_kinds(host.kinds)
        for impl in hook.get_hookimpls():  # registration order: built-ins first, so they keep their names
            plugin_name = manager.get_name(impl.plugin) or repr(impl.plugin)
            register = _registrar(getattr(host, kind), kind[:-1], make, plugin_name)
            impl.function(register=_by_kind_name(register) if kind == "kinds" else register)
    return host


def _check_kinds(kinds: dict[str, Kind]) -> None:
    """One default kind; every other kind's key its own, and not a built-in consumer knob."""
    from sqslab.scenario.settings import under

    defaults = [spec for spec in kinds.values() if spec.kind.key is None]
    if len(defaults) != 1:
        raise PluginError(f"exactly one consumer kind must have no key (the default, sqslab.consumers.builtin); "
                          f"registered: {', '.join(s.name for s in defaults) or 'none'}")
    taken = {s.name: "a built-in consumer knob" for s in under("consumer")}
    for spec in kinds.values():
        for key in dict.fromkeys([*filter(None, [spec.kind.key]), *spec.kind.sections()]):
            if key in taken:
                raise PluginError(f"plugin {spec.plugin}: consumer kind {spec.name!r}: consumer.{key} is already {taken[key]}")
            taken[key] = f"a section of consumer kind {spec.name!r}"


def _by_kind_name(register: Callable[..., None]) -> Callable[..., None]:
    """register_consumer_kinds' `register(kind, description=...)`: the kind's own name is its name."""

    def register_kind(kind: Any, description: str = "") -> None:
        register(getattr(kind, "name", None), kind, description=description)

    return register_kind


def _registrar(table: dict[str, Any], kind: str, make: Callable[..., Any], plugin: str) -> Callable[..., None]:
    """The `register` callback one plugin gets for one kind: it refuses a taken name."""

    def register(name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin}: a registered name must be non-empty text, got {name!r}")
        if name in table:
            raise PluginError(f"plugin {plugin}: {kind} {name!r} is already registered by {table[name].plugin}")
        table[name] = make(name, function, plugin, *args, **kwargs)

    return register


def _action_maker(host: PluginHost) -> Callable[..., Action]:
    """_make_action, with the kinds the host has registered so far."""

    def make(name: str, function: Callable[..., Any], plugin: str, schema: dict | Callable[..., dict] | None = None,
             description: str = "") -> Action:
        return _make_action(name, function, plugin, schema, description, host.consumer_kinds)

    return make


def _object_schema(schema: dict[str, Any] | None, plugin: str, what: str) -> dict[str, Any]:
    """A registered parameter schema, checked: a valid JSON Schema of an object (none: no parameters)."""
    import jsonschema

    schema = schema if schema is not None else {"type": "object", "properties": {}, "additionalProperties": False}
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise PluginError(f"plugin {plugin}: {what} has an invalid parameter schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise PluginError(f"plugin {plugin}: {what}: the parameter schema must be an object schema")
    return schema


def _make_action(name: str, function: Callable[..., Any], plugin: str, schema: dict | Callable[..., dict] | None = None,
                 description: str = "", kinds: dict[str, ConsumerKind] | None = None) -> Action:
    """An action; a `schema` given as a function is called with the consumer kinds, by name."""
    if callable(schema):
        schema = schema(kinds or {})
    schema = _object_schema(schema, plugin, f"action {name!r}")
    return Action(name, function, schema, description or (function.__doc__ or "").strip().split("\n")[0], plugin)


def _make_format(name: str, function: Callable[..., str], plugin: str, schema: dict[str, Any] | None = None,
                 templates: tuple[str, ...] | list[str] = (), description: str = "") -> BodyFormat:
    schema = _object_schema(schema, plugin, f"body format {name!r}")
    properties = schema.get("properties", {})
    if "name" in properties:
        raise PluginError(f"plugin {plugin}: body format {name!r}: `name` is the format's own key, not a parameter")
    unknown = [t for t in templates if t not in properties]
    if unknown:
        raise PluginError(f"plugin {plugin}: body format {name!r}: templates {', '.join(map(repr, unknown))} are not "
                          "parameters in its schema")
    return BodyFormat(name, function, schema, tuple(templates), description or (function.__doc__ or "").strip().split("\n")[0],
                      plugin)


def _make_reporter(name: str, function: Callable[..., Any], plugin: str, extension: str = "txt", description: str = "") -> Reporter:
    return Reporter(name, function, extension, description or (function.__doc__ or "").strip().split("\n")[0], plugin)


def _make_target(name: str, factory: TargetFactory, plugin: str, description: str = "",
                 options: tuple[TargetOption, ...] | list[TargetOption] = ()) -> TargetSpec:
    options = tuple(options)
    for option in options:
        if not isinstance(option, TargetOption) or not option.name.isidentifier() or option.name in RESERVED_TARGET_OPTIONS:
            raise PluginError(f"plugin {plugin}: target {name!r}: options must be TargetOption objects whose name is a Python "
                              f"identifier other than {', '.join(RESERVED_TARGET_OPTIONS)}, got {option!r}")
    return TargetSpec(name, factory, description or (factory.__doc__ or "").strip().split("\n")[0], plugin, options)


def _make_kind(name: str, kind: Any, plugin: str, description: str = "") -> Kind:
    if not isinstance(kind, ConsumerKind):
        raise PluginError(f"plugin {plugin}: consumer kind {name!r} must be a sqslab.consumers.ConsumerKind, got {kind!r}")
    key = kind.key
    if key is not None and (not isinstance(key, str) or not key.isidentifier()):
        raise PluginError(f"plugin {plugin}: consumer kind {name!r}: its key must be an identifier (consumer.<key>), got {key!r}")
    return Kind(name, kind, description or (type(kind).__doc__ or "").strip().split("\n")[0], plugin)
