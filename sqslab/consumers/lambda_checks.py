"""The checks of a scenario that runs `consumer.lambda` (sqslab.consumers.lambda_function),
beyond its schema: what Lambda refuses of a function and its SQS event source mapping,
with Lambda's reason, and what the lab needs (its code, one mapping, no built-in knob)."""

from __future__ import annotations

from typing import Any

from sqslab.scenario.document import Document, Problem, folder_of, items, mapping
from sqslab.scenario.names import ACTION_KEYS
from sqslab.scenario.settings import BY_KEY
from sqslab.scenario.units import UnitError, parse_duration

#: Lambda's limits.
TIMEOUT_S = (1.0, 900.0)
BATCHING_WINDOW_S = 300.0
FIFO_BATCH_SIZE = 10
#: What set_consumer takes for a function: a new version's settings.
REVISION_KEYS = ("env", "timeout", "memory", "reserved_concurrency", "enabled", "max_concurrency")
#: What a scenario's `consumer` may hold beside consumer.lambda: its mapping, and the
#: producer's poison marks (the function decides what a poison message does).
SECTIONS = ("lambda", "event_source", "poison_rate")


def _seconds(value: Any, default: str) -> float | None:
    try:
        return parse_duration(default if value is None else value)
    except (UnitError, ValueError, TypeError):
        return None  # the schema said so


def lambda_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """Every problem with consumer.lambda and consumer.event_source."""
    consumer = mapping(data, "consumer")
    function = consumer.get("lambda")
    if not isinstance(function, dict):
        return []
    source = mapping(consumer, "event_source")
    problems = [doc.problem(("consumer", other), f"{other} is a knob of the built-in consumer and does nothing to consumer.lambda; "
                            "give the function's own settings in lambda.env, the mapping's in event_source "
                            "(poison_rate applies: the producer marks messages)")
                for other in consumer if other not in SECTIONS]
    problems += _code_problems(doc, function)
    problems += _mapping_problems(doc, data, function, source)
    problems += _action_problems(doc, data)
    return problems


def _code_problems(doc: Document, function: dict[str, Any]) -> list[Problem]:
    code, handler = function.get("code"), function.get("handler")
    if not isinstance(code, str):
        return []
    folder = folder_of(doc) / code
    if not folder.is_dir():
        return [doc.problem(("consumer", "lambda", "code"), f"no directory {folder} (code is relative to the scenario file)")]
    if isinstance(handler, str) and "." in handler:
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        if not (folder / f"{module}.py").is_file() and not (folder / module / "__init__.py").is_file():
            return [doc.problem(("consumer", "lambda", "handler"), f"no module {module}.py in {folder} (handler is "
                                "module.function, the module imported from code)")]
    return []


def _mapping_problems(doc: Document, data: dict[str, Any], function: dict[str, Any], source: dict[str, Any]) -> list[Problem]:
    problems = []
    timeout = _seconds(function.get("timeout"), "3s")
    window = _seconds(source.get("batching_window"), "0s")
    queue = mapping(mapping(data, "infra"), "queue")
    visibility = BY_KEY["infra.queue.visibility_timeout"].resolve(queue.get("visibility_timeout"))
    fifo = bool(queue.get("fifo"))
    batch = source.get("batch_size", 10)
    if timeout is not None and not TIMEOUT_S[0] <= timeout <= TIMEOUT_S[1]:
        problems.append(doc.problem(("consumer", "lambda", "timeout"), "a function timeout is 1s to 15m (900s)"))
    elif timeout is not None and isinstance(visibility, (int, float)) and timeout > visibility:
        problems.append(doc.problem(("consumer", "lambda", "timeout"), (
            f"Lambda refuses the mapping: Queue visibility timeout: {visibility:g} seconds is less than Function timeout: "
            f"{timeout:g} seconds (raise infra.queue.visibility_timeout; AWS advises 6 x the function timeout)")))
    if window is not None and window > BATCHING_WINDOW_S:
        problems.append(doc.problem(("consumer", "event_source", "batching_window"), "a batching window is 0s to 5m (300s)"))
    if fifo and window:
        problems.append(doc.problem(("consumer", "event_source", "batching_window"),
                                    "Lambda takes no batching window for a FIFO queue: drop it (or make the queue standard)"))
    if isinstance(batch, int) and batch > FIFO_BATCH_SIZE:
        if fifo:
            problems.append(doc.problem(("consumer", "event_source", "batch_size"),
                                        f"a FIFO queue's mapping takes at most {FIFO_BATCH_SIZE} messages per batch"))
        elif not window:
            problems.append(doc.problem(("consumer", "event_source", "batch_size"), (
                "Lambda refuses a batch size above 10 without a batching window: give event_source.batching_window "
                "(at least 1s), or a batch size of 10 or less")))
    consumers = mapping(data, "infra").get("consumers")
    if isinstance(consumers, int) and consumers != 1:
        problems.append(doc.problem(("infra", "consumers"), (
            "with consumer.lambda there is one event source mapping, which scales itself (event_source.max_concurrency, "
            "lambda.reserved_concurrency cap it): drop infra.consumers or make it 1")))
    return problems


def _action_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for i, action in enumerate(items(data, "actions")):
        if not isinstance(action, dict):
            continue
        if action.get("do") == "scale":
            problems.append(doc.problem(("actions", i, "do"), (
                "a Lambda event source mapping scales itself; cap it with set_consumer reserved_concurrency "
                "(0 throttles every invocation), or event_source.max_concurrency")))
        elif action.get("do") == "set_consumer":
            problems += [doc.problem(("actions", i, key), (
                f"{key} is not a setting of the function or its mapping; with consumer.lambda, set_consumer takes "
                f"{', '.join(REVISION_KEYS)}")) for key in action if key not in ACTION_KEYS and key not in REVISION_KEYS]
    return problems
