"""The built-in report formats, registered through the same hook as any plugin's.

A reporter is `function(run, options) -> str | bytes`, where `run` is a loaded run
directory (sqslab.rundir.Run) and `options` a dict of reporter options.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from sqslab.expectations import FIGURES, describe_value
from sqslab.hookspecs import hookimpl
from sqslab.ledger import FATES

FATE_LABELS = {
    "processed_once": "processed once",
    "duplicate": "processed more than once",
    "dead_lettered": "dead-lettered",
    "still_queued": "still queued",
    "lost": "LOST",
}


def render_text(run: Any, options: dict[str, Any]) -> str:
    """A plain-text summary for the terminal: verdict, expectations, ledger, key figures."""
    summary = run.summary
    figures = summary.get("figures") or {}
    lines = [f"{summary.get('scenario', '?')}: {str(summary.get('status', '?')).upper()} (exit {summary.get('exit_code', '?')})  {run.path}"]
    for warning in summary.get("warnings", []):
        lines.append(f"!! {warning}")
    for error in summary.get("errors", []):
        lines.append(f"error: {error}")
    if summary.get("expectations"):
        lines.append("expectations:")
        for item in summary["expectations"]:
            mark = "pass" if item["passed"] else "FAIL"
            lines.append(f"  {mark}  {item['text']:<34} measured: {item['measured']}")
    counts = (summary.get("ledger") or {}).get("counts")
    if counts:
        lines.append(f"ledger ({figures.get('sent', 0)} sent):")
        for fate in FATES:
            lines.append(f"  {FATE_LABELS[fate]:<26} {counts.get(fate, 0):>8}")
    keys = ["receives", "redeliveries", "failures", "crashes", "duplicate_skipped", "dlq.messages", "tasks.started",
            "drain_time", "latency.p50", "latency.p95", "latency.p99", "duration"]
    shown = [f"{k} {describe_value(k, figures, FIGURES)}" for k in keys if k in figures]
    if shown:
        lines.append("figures: " + ", ".join(shown))
    return "\n".join(lines) + "\n"


def render_json(run: Any, options: dict[str, Any]) -> str:
    """summary.json plus the metric series, as one JSON document."""
    return json.dumps({**run.summary, "series": run.metrics()}, indent=2, default=str) + "\n"


BUILTIN_REPORTERS: list[tuple[str, Callable[..., Any], str]] = [
    ("text", render_text, "txt"),
    ("json", render_json, "json"),
]


@hookimpl
def register_reporters(register: Callable[..., None]) -> None:
    """Register the built-in report formats."""
    for name, function, extension in BUILTIN_REPORTERS:
        register(name, function, extension=extension)
