"""The hooks a sqslab plugin implements.

A plugin is a module or object with functions marked `@sqslab.hookimpl`. Each hook is
handed a `register` callback, so one plugin can add several things and the host can
refuse a name that is already taken. The built-in actions, reporters and targets are
registered through these very hooks, and so are the built-in consumer kinds and body
formats.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("sqslab")
hookimpl = pluggy.HookimplMarker("sqslab")


@hookspec
def register_actions(register: Callable[..., None]) -> None:
    """Add actions: `register(name, function, schema=..., description=...)`.

    :param register: call it once per action. ``function(ctx, params)`` does the action;
        ``schema`` is the JSON Schema (an object schema) of its parameters, which
        ``sqslab validate`` checks before anything runs.
    """


@hookspec
def register_reporters(register: Callable[..., None]) -> None:
    """Add report formats: `register(name, function, extension=..., description=...)`.

    :param register: call it once per format. ``function(run, options)`` returns the
        report as ``str`` or ``bytes``; ``run`` is a loaded run directory.
    """


@hookspec
def register_targets(register: Callable[..., None]) -> None:
    """Add places a scenario can run: `register(name, factory, description=..., options=...)`.

    :param register: call it once per target. ``factory(log, **options)`` returns an
        object that does what ``sqslab.targets.Target`` says (plan, provision, sqs_client,
        start_consumers, kill, scale, set_consumer, tune, tasks, consumer_events, sqs_fault,
        stop_consumers, teardown, queue_states, journal_key, failure);
        ``log`` receives its events. ``options`` is a sequence of
        ``sqslab.targets.TargetOption``: each becomes a ``--NAME`` flag of ``run``,
        ``sweep`` and ``plan``, and reaches the factory as the keyword NAME.
    """


@hookspec
def register_consumer_kinds(register: Callable[..., None]) -> None:
    """Add kinds of consumer: `register(kind, description=...)`.

    :param register: call it once per kind. ``kind`` is a
        ``sqslab.consumers.ConsumerKind``: its ``name``, the ``key`` of the ``consumer``
        section that selects it, that section's ``schema()``, its ``problems(doc, data)``
        and ``resolve(consumer, scenario_path, seed)``, which returns the
        ``sqslab.consumers.Consumer`` each task runs (how a task starts locally, what it
        needs on AWS, which events it tells, how its fates are found).
    """


@hookspec
def register_body_formats(register: Callable[..., None]) -> None:
    """Add message body formats for a load phase's `format:`:
    `register(name, function, schema=..., templates=(...), description=...)`.

    :param register: call it once per format. ``schema`` is the JSON Schema (an object
        schema) of its parameters beside ``name``; each parameter named in ``templates`` is
        a body template, rendered per message. ``function(params, message)`` returns the
        body from the rendered parameters and a ``sqslab.scenario.formats.FormatMessage``
        (id, seq, index, phase, sent_at, queue_name, queue_url), or raises
        ``sqslab.scenario.formats.FormatError`` saying what is wrong.
    """
