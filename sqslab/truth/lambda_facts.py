"""What a Lambda consumer's event source mapping did, from its events (sqslab.lambdas.mapping):
invocations and their outcomes, cold starts, throttles, batch sizes, durations, the
concurrency reached, and the GB-seconds billed.

Counted in memory; the durations and the invocation intervals (for the percentiles and
the concurrency) are kept up to MAX_SAMPLES invocations, and the figures say when they
stopped there.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sqslab.consumer import events as ev

#: Event kinds this module counts.
EVENTS = (ev.INVOCATION, ev.THROTTLED, ev.SCALED)
#: The most invocations whose duration and interval are kept (8 bytes x 3 each).
MAX_SAMPLES = 1_000_000
#: The most points of the concurrency-over-time series.
SERIES_POINTS = 600
#: Its narrowest time bucket (seconds).
SERIES_MIN_BUCKET = 0.1
#: The figures, for the catalogue of figures (sqslab.truth.expectations).
FIGURES: dict[str, tuple[str, str]] = {
    "lambda.invocations": ("number", "invocations of the Lambda function by its event source mapping"),
    "lambda.errors": ("number", "invocations that failed: the handler raised, timed out, ran out of memory, exited, or failed its init"),
    "lambda.timeouts": ("number", "invocations the function timeout ended"),
    "lambda.throttles": ("number", "invocations refused by reserved concurrency (each retry counts)"),
    "lambda.cold_starts": ("number", "invocations that started a new execution environment"),
    "lambda.partial_failures": ("number", "successful invocations that reported batchItemFailures"),
    "lambda.batch_size.max": ("number", "the most messages in one invocation"),
    "lambda.concurrency.max": ("number", "the most invocations in progress at once"),
    "lambda.duration.p50": ("seconds", "median invocation duration"),
    "lambda.duration.p95": ("seconds", "95th percentile invocation duration"),
    "lambda.duration.p99": ("seconds", "99th percentile invocation duration"),
    "lambda.init.max": ("seconds", "the longest init of a new execution environment"),
    "lambda.gb_seconds": ("number", "billed duration x memory, in GB-seconds (Lambda's compute charge)"),
}


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))], 4)


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in points:
        running += step
        most = max(most, running)
    return most


class LambdaTally:
    """Counts of the mapping's events."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.cold = 0
        self.throttles = 0
        self.partial = 0
        self.batch_sizes: Counter[int] = Counter()
        self.durations: list[float] = []  # seconds
        self.intervals: list[tuple[float, float]] = []  # (start, end) epoch seconds
        self.init_max = 0.0
        self.gb_seconds = 0.0
        self.truncated = False
        self.pollers_max = 0
        self.throttled_at: list[float] = []  # epoch seconds, up to MAX_SAMPLES
        self.records = 0  # messages handed to the function, over every invocation
        self.abandoned = 0  # messages received and never invoked (throttled until their visibility timeout, stopping)
        self.unseen: set[str] = set()  # figures the mapping cannot tell (on AWS, a `started` event's config.unseen)

    def take(self, event: dict[str, Any]) -> None:
        """Count one event whose kind is in EVENTS, or a `started` event (what the mapping cannot tell)."""
        kind = event.get("event")
        if kind == ev.STARTED:
            unseen = (event.get("config") or {}).get("unseen")
            if isinstance(unseen, list):
                self.unseen.update(str(name) for name in unseen if name in FIGURES)
        elif kind == ev.THROTTLED:
            self.throttles += 1
            if len(self.throttled_at) < MAX_SAMPLES:
                self.throttled_at.append(float(event.get("ts") or 0))
        elif kind == ev.SCALED:
            self.pollers_max = max(self.pollers_max, int(event.get("pollers") or 0))
        elif kind == ev.INVOCATION:
            self._invocation(event)

    def _invocation(self, event: dict[str, Any]) -> None:
        self.outcomes[str(event.get("outcome"))] += 1
        self.cold += bool(event.get("cold"))
        self.partial += event.get("outcome") == "ok" and int(event.get("failed") or 0) > 0
        self.batch_sizes[int(event.get("batch_size") or 0)] += 1
        self.records += int(event.get("batch_size") or 0)
        self.init_max = max(self.init_max, float(event.get("init_ms") or 0) / 1000)
        self.gb_seconds += float(event.get("billed_ms") or 0) / 1000 * float(event.get("memory_mb") or 0) / 1024
        seconds = float(event.get("duration_ms") or 0) / 1000
        if len(self.durations) >= MAX_SAMPLES:
            self.truncated = True
            return
        end = float(event.get("ts") or 0)
        self.durations.append(seconds)
        self.intervals.append((end - seconds, end))

    @property
    def invocations(self) -> int:
        """How many invocations were told."""
        return sum(self.outcomes.values())

    def figures(self) -> dict[str, Any]:
        """The figures FIGURES names, every one of them (0, or None for a time, when nothing was
        invoked; None for what the mapping cannot tell)."""
        ordered = sorted(self.durations)
        figures = {
            "lambda.invocations": self.invocations,
            "lambda.errors": self.invocations - self.outcomes["ok"],
            "lambda.timeouts": self.outcomes["timeout"],
            "lambda.throttles": self.throttles,
            "lambda.cold_starts": self.cold,
            "lambda.partial_failures": self.partial,
            "lambda.batch_size.max": max(self.batch_sizes, default=0),
            "lambda.concurrency.max": _most_at_once(self.intervals),
            **{f"lambda.duration.p{p}": _percentile(ordered, p / 100) for p in (50, 95, 99)},
            "lambda.init.max": round(self.init_max, 3) if self.cold else None,
            "lambda.gb_seconds": round(self.gb_seconds, 3),
        }
        return {name: None if name in self.unseen else value for name, value in figures.items()}

    def series(self, t0: float, end: float) -> dict[str, Any]:
        """Concurrency over time: per time bucket from t0 to `end` (epoch seconds), the most
        invocations in progress at once and the invocations throttled."""
        length = max(0.0, end - t0)
        width = max(SERIES_MIN_BUCKET, length / SERIES_POINTS)
        count = int(length // width) + 1
        steps = sorted([(start, 1) for start, _ in self.intervals] + [(stop, -1) for _, stop in self.intervals])
        peaks, throttled = [0] * count, [0] * count
        running = index = 0
        for bucket in range(count):
            top, peak = t0 + (bucket + 1) * width, running
            while index < len(steps) and steps[index][0] < top:
                running += steps[index][1]
                peak = max(peak, running)
                index += 1
            peaks[bucket] = peak
        for at in self.throttled_at:
            throttled[min(count - 1, max(0, int((at - t0) // width)))] += 1
        return {"bucket": round(width, 3), "t": [round(i * width, 3) for i in range(count)], "concurrency": peaks,
                "throttled": throttled}

    def check(self, journal_receives: int) -> dict[str, Any]:
        """The invocation records against the SQS journal: every receive SQS made to the
        mapping was handed to the function in an invocation, or left (abandoned), none twice."""
        told = self.records + self.abandoned
        return {"records_invoked": self.records, "abandoned": self.abandoned, "journal_receives": journal_receives,
                "agree": told == journal_receives, "unexplained": journal_receives - told}

    def section(self, t0: float | None = None, end: float | None = None, journal_receives: int | None = None) -> dict[str, Any]:
        """The summary's `ledger.lambda`: outcomes, batch sizes, (given the run's t0 and end,
        epoch seconds) concurrency over time and (given the journal's receives) the
        invocations' check against it; empty when nothing was invoked."""
        if not self.invocations and not self.throttles:
            return {}
        out: dict[str, Any] = {"outcomes": dict(sorted(self.outcomes.items())),
                               "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                               "pollers_max": self.pollers_max}
        if t0 is not None and end is not None:
            out["concurrency_series"] = self.series(t0, end)
        if journal_receives is not None:
            out["journal_check"] = self.check(journal_receives)
        if self.truncated:
            out["samples_truncated_at"] = MAX_SAMPLES
        return out
