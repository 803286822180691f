"""Expectations and conditions: `lost == 0`, `duplicates <= 5%`, `queue.visible > 500 and tasks.running < 3`.

One small grammar serves `expect` (over the run's final figures) and `when` (over live
samples): comparisons `METRIC OP VALUE` joined by `and` / `or` (`and` binds tighter).
VALUE is a number, a percentage of the messages sent (`5%`), a duration for time
metrics (`2m`, `500ms`), or another metric of the same kind (`dlq.messages == dead_lettered`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from sqslab.scenario.units import UnitError, format_duration, parse_duration
from sqslab.truth.cost import FIGURES as COST_FIGURES
from sqslab.truth.effects import FIGURES as EFFECT_FIGURES
from sqslab.truth.fates import FATES, MEANINGS
from sqslab.truth.fates import FIGURES as FATE_FIGURES
from sqslab.truth.lambda_facts import FIGURES as LAMBDA_FIGURES
from sqslab.truth.sqs_facts import FIGURES as SQS_FIGURES

# The run's final figures, by name: (kind, meaning). kind "count" (of messages) compares
# with numbers or percentages of `sent`; "number" with plain numbers; "dollars" with plain
# numbers or $N (US dollars); "seconds" with durations.
FIGURES: dict[str, tuple[str, str]] = {
    "sent": ("count", "messages the producer sent (SQS accepted)"),
    "send_failed": ("count", "messages the producer could not send"),
    "processed": ("count", "ids processed at least once"),
    **{FATE_FIGURES[fate]: ("count", MEANINGS[fate]) for fate in FATES},  # one per fate (sqslab.truth.fates)
    "receives": ("count", "deliveries to consumers (SQS's receive count where it saw more than the consumers logged)"),
    "redeliveries": ("count", "deliveries beyond the first of each id"),
    "failures": ("count", "failed processing attempts (error knob, poison, bad payload)"),
    "crashes": ("number", "consumer tasks that died mid-message"),
    "duplicate_skipped": ("count", "redeliveries the idempotency knob skipped"),
    "dlq.messages": ("count", "messages in the DLQ at the end"),
    "dlq.other": ("count", "DLQ messages that stand for no dead-lettered id: a processed id's copy, a further copy, not this run's"),
    "queue.visible": ("count", "messages visible in the queue at the end"),
    "queue.in_flight": ("count", "messages in flight at the end"),
    "receive_count.max": ("number", "highest receive count of any id"),
    "tasks.started": ("number", "consumer tasks started, replacements included"),
    "tasks.max_running": ("number", "most tasks running at one sample"),
    "queue.oldest_age.max": ("seconds", "the oldest a sent message not yet finished got, over the run's samples"),
    "actions.failed": ("number", "actions that failed"),
    "drain_time": ("seconds", "from the end of the last load phase to an empty queue (visible + in flight + delayed = 0)"),
    "duration": ("seconds", "the whole run, from t0 to the end of settling"),
    "latency.p50": ("seconds", "median time from send to processed"),
    "latency.p95": ("seconds", "95th percentile time from send to processed"),
    "latency.p99": ("seconds", "99th percentile time from send to processed"),
    "latency.max": ("seconds", "longest time from send to processed"),
    "duplicate_sends": ("count", "messages the producer sent a second time (phases' duplicate_sends)"),
    "producer_duplicates": ("count", "duplicate sends SQS delivered (a standard queue, or FIFO outside the deduplication window)"),
    "dedup_dropped": ("count", "duplicate sends SQS did not deliver (FIFO deduplication)"),
    "groups": ("number", "FIFO message groups the load used"),
    "order_violations": ("count", "messages processed before an earlier-sent message of their group was finished (FIFO)"),
    "group_blocked.max": ("seconds", "the longest a FIFO group waited behind a message that kept failing"),
    "group_blocked.p95": ("seconds", "95th percentile over the groups of the time each waited behind a failing message"),
}
FIGURES.update(SQS_FIGURES)
FIGURES.update(LAMBDA_FIGURES)
FIGURES.update(EFFECT_FIGURES)
FIGURES.update(COST_FIGURES)

# What the sampler measures while the run goes on, for `when`.
LIVE_METRICS: dict[str, tuple[str, str]] = {
    "elapsed": ("seconds", "time since t0"),
    "queue.visible": ("count", "messages visible in the queue"),
    "queue.in_flight": ("count", "messages received and not yet deleted or visible again"),
    "queue.delayed": ("count", "messages not yet visible because of a delay"),
    "queue.oldest_age": ("seconds", "age of the oldest message, where the target can tell"),
    "dlq.messages": ("count", "messages in the DLQ"),
    "tasks.running": ("number", "consumer tasks running"),
    "tasks.desired": ("number", "consumer tasks wanted"),
    "sent": ("count", "messages sent so far"),
    "processed": ("count", "messages processed so far"),
    "failed": ("count", "failed processing attempts so far"),
}

_OPS = {
    "==": lambda a, b: abs(a - b) < 1e-9,
    "!=": lambda a, b: abs(a - b) >= 1e-9,
    "<=": lambda a, b: a <= b + 1e-9,
    ">=": lambda a, b: a >= b - 1e-9,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
_COMPARISON = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(==|!=|<=|>=|<|>|=)\s*(\S+)\s*$")


class ExpressionError(ValueError):
    """An expression that does not parse or names an unknown metric."""


@dataclass(frozen=True)
class Comparison:
    """`METRIC OP VALUE`; value is a count, a fraction of `sent` (percent), or seconds."""

    metric: str
    op: str
    value: float
    percent: bool
    text: str
    other: str | None = None  # compare with this metric instead of a value

    def threshold(self, values: dict[str, Any]) -> float | None:
        """The value to compare with: the other metric's, or percentages turned into counts of `sent`."""
        if self.other is not None:
            other = values.get(self.other)
            return None if other is None else float(other)
        return self.value * (values.get("sent") or 0) / 100 if self.percent else self.value

    def holds(self, values: dict[str, Any]) -> bool:
        """Whether the comparison holds for these figures; a missing figure never holds."""
        measured, threshold = values.get(self.metric), self.threshold(values)
        if measured is None or threshold is None:
            return False
        return _OPS[self.op](float(measured), threshold)


@dataclass(frozen=True)
class Condition:
    """Comparisons joined by `or` of `and`s."""

    text: str
    alternatives: tuple[tuple[Comparison, ...], ...]

    @property
    def comparisons(self) -> list[Comparison]:
        """Every comparison in the condition, in order."""
        return [c for group in self.alternatives for c in group]

    def holds(self, values: dict[str, Any]) -> bool:
        """Whether the whole condition holds for these figures."""
        return any(all(c.holds(values) for c in group) for group in self.alternatives)

    def measured(self, values: dict[str, Any], catalog: dict[str, tuple[str, str]] = FIGURES) -> str:
        """What was measured for each metric, e.g. `lost = 0, duplicates = 3 (1.2%)`."""
        parts = []
        for comparison in self.comparisons:
            for metric in (comparison.metric, comparison.other):
                if metric is not None:
                    parts.append(f"{metric} = {describe_value(metric, values, catalog)}")
        return ", ".join(dict.fromkeys(parts))


def describe_value(metric: str, values: dict[str, Any], catalog: dict[str, tuple[str, str]] = FIGURES) -> str:
    """A figure as a person reads it: durations with units, counts with their share of sent."""
    value = values.get(metric)
    if value is None:
        return "n/a"
    kind = catalog.get(metric, ("count", ""))[0]
    if kind == "seconds":
        return format_duration(round(float(value), 3))
    if kind == "dollars":
        return f"${value:.4g}" if value < 1 else f"${value:,.2f}"
    sent = values.get("sent")
    if sent and metric != "sent" and kind == "count":
        return f"{value:g} ({100 * value / sent:.1f}%)"
    return f"{value:g}"


def parse_condition(text: object, catalog: dict[str, tuple[str, str]] = FIGURES) -> Condition:
    """Parse `METRIC OP VALUE [and|or ...]` against a catalog of metric names."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expected a condition such as 'lost == 0'")
    alternatives = []
    for alternative in re.split(r"\s+or\s+", text.strip()):
        group = []
        for part in re.split(r"\s+and\s+", alternative):
            group.append(_parse_comparison(part, catalog))
        alternatives.append(tuple(group))
    return Condition(text.strip(), tuple(alternatives))


def _parse_comparison(text: str, catalog: dict[str, tuple[str, str]]) -> Comparison:
    match = _COMPARISON.match(text)
    if not match:
        raise ExpressionError(f"{text.strip()!r} is not a comparison: write METRIC OP VALUE, e.g. 'lost == 0' "
                              "(OP is one of == != < <= > >=)")
    metric, op, raw = match.groups()
    if op == "=":
        raise ExpressionError(f"{text.strip()!r}: use '==' to compare, not '='")
    if metric not in catalog:
        close = difflib.get_close_matches(metric, list(catalog), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(catalog))}"
        raise ExpressionError(f"unknown metric {metric!r}{hint}")
    kind = catalog[metric][0]
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", raw) and not re.fullmatch(r"\d+(ms|s|m|h|d)", raw):
        if raw not in catalog:
            close = difflib.get_close_matches(raw, list(catalog), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ExpressionError(f"{raw!r} is neither a value nor a known metric{hint}")
        if (catalog[raw][0] == "seconds") != (kind == "seconds"):
            raise ExpressionError(f"{metric} and {raw} cannot be compared: one is a time, the other is not")
        return Comparison(metric, op, 0.0, False, text.strip(), other=raw)
    if kind == "seconds":
        try:
            return Comparison(metric, op, parse_duration(raw), False, text.strip())
        except UnitError as exc:
            raise ExpressionError(f"{metric} is a time: {exc}") from None
    if kind == "dollars" and raw.startswith("$"):
        raw = raw[1:]
    percent = raw.endswith("%")
    if percent and kind in ("number", "dollars"):
        raise ExpressionError(f"{metric} is not a count of messages, so a percentage of sent means nothing; compare with a number")
    number = raw[:-1] if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise ExpressionError(f"{raw!r} is not a number or a percentage (e.g. 0, 12, 5%)") from None
    return Comparison(metric, op, value, percent, text.strip())
