"""The built-in report formats, registered through the same hook as any plugin's.

A reporter is `function(run, options) -> str | bytes`, where `run` is a loaded run
directory (sqslab.rundir.Run) and `options` a dict of reporter options. `options["runs"]`
(with `options["labels"]`) lists every run asked for: two or more make a comparison,
and `run` is the first of them. Called with `{}`, a reporter reports `run` alone.

| name | extension | what |
| --- | --- | --- |
| text | txt | the terminal summary `sqslab run` prints |
| json | json | summary.json plus the metric series |
| html | html | one self-contained page with charts (opens offline) |
| markdown | md | for a pull-request comment |
| junit | xml | JUnit XML: each expectation a testcase |
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from typing import Any

from sqslab import __version__
from sqslab.hookspecs import hookimpl
from sqslab.reports.html import (
    CAUSES,
    EFFECT_LABELS,
    MAX_POINTS,
    compare_rows,
    cost_line,
    depth_overlay,
    effects_line,
    headline,
    is_compare,
    journal_lines,
    key_figures,
    peak_backlog,
    run_view,
    runs_of,
    scenario_name,
    sqs_lines,
)
from sqslab.scenario.units import format_duration
from sqslab.truth.expectations import FIGURES, describe_value
from sqslab.truth.fates import DUPLICATE, FATES, LOST, PROBLEMS, said, tone
from sqslab.truth.fates import FIGURES as FATE_FIGURES
from sqslab.truth.fates import LABELS as FATE_LABELS

# Problem messages a Markdown comment lists; the HTML report lists all the summary holds.
MARKDOWN_PROBLEMS = 10
STATUS_MARKS = {"passed": "✅", "failed": "❌", "error": "💥", "interrupted": "⏹️", "incomplete": "⏳"}


# ---------------------------------------------------------------- text


def render_text(run: Any, options: dict[str, Any]) -> str:
    """A plain-text summary for the terminal: verdict, expectations, ledger, key figures."""
    if is_compare(options):
        return _compare_text(*runs_of(run, options))
    summary = run.summary
    figures = summary.get("figures") or {}
    lines = [f"{scenario_name(run)}: {str(summary.get('status', '?')).upper()} (exit {summary.get('exit_code', '?')})  {run.path}"]
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
    if not counts:
        lines += _partial_lines(summary)
    if counts:
        lines.append(f"ledger ({figures.get('sent', 0)} sent):")
        for fate in FATES:
            lines.append(f"  {FATE_LABELS[fate]:<26} {counts.get(fate, 0):>8}")
    keys = ["receives", "redeliveries", "failures", "crashes", "duplicate_skipped", "dlq.messages", "tasks.started",
            "drain_time", "latency.p50", "latency.p95", "latency.p99", "duration"]
    if figures.get("send_failed"):
        keys.insert(0, "send_failed")
    shown = [f"{k} {describe_value(k, figures, FIGURES)}" for k in keys if k in figures]
    if shown:
        lines.append("figures: " + ", ".join(shown))
    lines += _ordering_lines(summary)
    lines += [f"sqs: {line}" for line in sqs_lines(summary)]
    effects = effects_line(summary)
    if effects:
        lines.append(effects)
    lines += journal_lines(summary)
    cost = cost_line(summary)
    if cost:
        lines.append(cost)
    return "\n".join(lines) + "\n"


def _partial_lines(summary: dict[str, Any]) -> list[str]:
    """What a run that ended before its ledger (interrupted, an error) got through: the live
    counters, the phases and the actions as far as they went, and where to look."""
    lines = []
    counters = summary.get("counters") or {}
    if counters:
        again = f" (+{counters['processed_again']} again)" if counters.get("processed_again") else ""
        lines.append(f"so far (no ledger: the run ended before it): sent {counters.get('sent', 0)}, "
                     f"processed {counters.get('processed', 0)}{again}, failed {counters.get('failed', 0)}")
    for phase in summary.get("phases") or []:
        cut = ", interrupted" if phase.get("interrupted") else ""
        own = phase.get("producer_program")
        of = f"by `{own.get('command')}`" if isinstance(own, dict) else f"of {phase.get('planned', '?')}"
        lines.append(f"  phase {phase.get('phase')}: sent {phase.get('sent', 0)} {of}{cut}")
    for action in summary.get("actions") or []:
        lines.append(f"  action {action.get('name')} ({action.get('do')}): {action.get('status', '?')}")
    if summary.get("status") in ("interrupted", "error"):
        lines.append("events.jsonl and metrics.jsonl in the run directory hold everything up to the end")
    return lines


def _ordering_lines(summary: dict[str, Any]) -> list[str]:
    """FIFO and duplicate-send figures, where the run has them."""
    figures = summary.get("figures") or {}
    lines = []
    if figures.get("producer_duplicates") or figures.get("dedup_dropped"):
        lines.append(f"duplicate sends: {figures.get('producer_duplicates', 0)} delivered twice (producer_duplicates), "
                     f"{figures.get('dedup_dropped', 0)} dropped by deduplication (dedup_dropped)")
    if figures.get("lambda.invocations") or figures.get("lambda.throttles"):
        lines.append(_lambda_line(figures))
    if figures.get("groups"):
        ordering = (summary.get("ledger") or {}).get("ordering") or {}
        blocked_max, blocked_p95 = (describe_value(f"group_blocked.{k}", figures, FIGURES) for k in ("max", "p95"))
        lines.append(f"ordering: {figures['groups']} groups, {figures.get('order_violations', 0)} order violations "
                     f"in {ordering.get('groups_with_violations', 0)} groups; longest blocked {blocked_max}, p95 {blocked_p95}")
        for item in ordering.get("blocked_groups", [])[:3]:
            spans = ", ".join(f"{i['start']:g}-{i['end']:g} s behind {i['id']}" for i in item["intervals"][:3])
            lines.append(f"  blocked {item['group']}: {item['blocked']:g} s ({spans})")
    return lines


def _lambda_line(figures: dict[str, Any]) -> str:
    """A Lambda consumer's invocations in one line."""
    def value(name: str) -> str:
        return describe_value(f"lambda.{name}", figures, FIGURES).split(" (")[0]

    return (f"lambda: {figures.get('lambda.invocations', 0)} invocations ({figures.get('lambda.cold_starts', 0)} cold starts, "
            f"{figures.get('lambda.errors', 0)} errors, {figures.get('lambda.timeouts', 0)} timeouts, "
            f"{figures.get('lambda.throttles', 0)} throttles, {figures.get('lambda.partial_failures', 0)} partial failures), "
            f"duration p50 {value('duration.p50')} p95 {value('duration.p95')} p99 {value('duration.p99')}, "
            f"concurrency max {figures.get('lambda.concurrency.max', 0)}, largest batch {figures.get('lambda.batch_size.max', 0)}, "
            f"{figures.get('lambda.gb_seconds', 0)} GB-s, oldest message {describe_value('queue.oldest_age.max', figures, FIGURES)}")


def _compare_text(runs: list[Any], labels: list[str]) -> str:
    rows = compare_rows(runs)
    header = [""] + labels
    table = [header] + [[row["label"]] + row["cells"] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [f"compare {len(runs)} runs:"]
    lines += ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    lines += [f"  {label}: {run.path}" for label, run in zip(labels, runs, strict=False)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- json


def render_json(run: Any, options: dict[str, Any]) -> str:
    """summary.json plus the metric series, as one JSON document (a list of them under `runs` to compare)."""
    if is_compare(options):
        runs, labels = runs_of(run, options)
        compared = [{"label": label, **r.summary, "series": r.metrics()} for r, label in zip(runs, labels, strict=True)]
        return json.dumps({"compare": True, "runs": compared},
                          indent=2, default=str) + "\n"
    return json.dumps({**run.summary, "series": run.metrics()}, indent=2, default=str) + "\n"


# ---------------------------------------------------------------- html


@functools.cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("sqslab", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    # ChainableUndefined: a partial summary (an interrupted run) lacks keys; they show as nothing.
    env.filters["dur"] = _duration_text
    env.filters["num"] = _number_text
    env.filters["when"] = _time_text
    env.filters["figure"] = lambda name, figures: describe_value(name, figures, FIGURES)
    env.filters["params"] = lambda value: json.dumps(value, sort_keys=True, default=str) if value else ""
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "allow_nan": False, "separators": (",", ":")}
    return env


@functools.cache
def _asset(name: str) -> str:
    text = resources.files("sqslab").joinpath("templates", name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"templates/{name} cannot be inlined: it holds a closing tag")
    return text


def _assets() -> dict[str, str]:
    return {"chart_js": _asset("vendor/uPlot.iife.min.js"), "chart_css": _asset("vendor/uPlot.min.css"), "report_js": _asset("report.js")}


def _duration_text(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        return format_duration(round(float(value), 3))
    except (TypeError, ValueError):
        return str(value)


def _number_text(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _time_text(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return "n/a"
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_html(run: Any, options: dict[str, Any]) -> str:
    """One self-contained HTML page (charts included, no network): a run, or runs compared."""
    max_points = int(options.get("max_points") or MAX_POINTS)
    env = _environment()
    if is_compare(options):
        runs, labels = runs_of(run, options)
        samples = [r.metrics() for r in runs]
        views = [run_view(r, max_points, s) for r, s in zip(runs, samples, strict=False)]
        depth = depth_overlay(views)
        data = {"labels": labels, "depth": depth}
        has_dlq = any(v for d in depth for v in d["dlq"] if v)
        entries = [{"label": label, "run": r, "summary": {**r.summary, "scenario": scenario_name(r)}}
                   for label, r in zip(labels, runs, strict=True)]
        return env.get_template("compare.html.j2").render(
            runs=entries, rows=compare_rows(runs, samples), data=data, has_dlq=has_dlq, version=__version__, **_assets())
    samples = run.metrics()
    summary = run.summary
    figures = summary.get("figures") or {}
    ledger = summary.get("ledger") or {}
    counts = ledger.get("counts") or {}
    sent = figures.get("sent") or 0
    fates = [{"fate": fate, "label": FATE_LABELS[fate], "count": counts.get(fate, 0), "tone": tone(fate, counts.get(fate, 0)),
              "share": (100 * counts.get(fate, 0) / sent) if sent else None} for fate in FATES]
    data = run_view(run, max_points, samples)
    return env.get_template("report.html.j2").render(
        run=run, summary={**summary, "scenario": scenario_name(run)}, figures=figures, ledger=ledger, fates=fates, has_ledger=bool(counts),
        key_figures=key_figures(run), peak_backlog=peak_backlog(samples), headline=headline(run, samples), data=data,
        sqs_lines=sqs_lines(summary), causes=CAUSES, fate_labels=FATE_LABELS, lost=LOST, duplicate=DUPLICATE,
        lost_figure=FATE_FIGURES[LOST], problem_fates=said(PROBLEMS), effect_labels=EFFECT_LABELS,
        effect_column=any("effect" in p for p in ledger.get("problems") or []),
        environment=summary.get("environment") or {}, version=__version__, **_assets())


# ---------------------------------------------------------------- markdown


def _md(value: Any) -> str:
    """Text safe in a Markdown table cell: no HTML, no column breaks, one line."""
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    text = text.replace("[", "\\[").replace("]", "\\]")
    return re.sub(r"\s+", " ", text).strip()


def _md_table(header: list[str], rows: list[list[Any]], align: str = "") -> list[str]:
    alignments = (align or "l" * len(header)).ljust(len(header), "l")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(("---:" if c == "r" else "---") for c in alignments) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(run: Any, options: dict[str, Any]) -> str:
    """Markdown for a pull-request comment: verdict, expectations, ledger, key figures, top problems."""
    if is_compare(options):
        return _compare_markdown(*runs_of(run, options))
    summary = run.summary
    figures = summary.get("figures") or {}
    status = str(summary.get("status", "?"))
    title = f"### {STATUS_MARKS.get(status, '')} sqslab: {_md(scenario_name(run))} **{status.upper()}**"
    lines = [f"{title} (exit {_md(summary.get('exit_code', '?'))})".replace("  ", " "), ""]
    if summary.get("description"):
        lines += [f"> {_md(summary['description'])}", ""]
    for error in summary.get("errors") or []:
        lines.append(f"> **error:** {_md(error)}")
    for warning in summary.get("warnings") or []:
        lines.append(f"> **warning:** {_md(warning)}")
    if summary.get("errors") or summary.get("warnings"):
        lines.append("")
    expectations = summary.get("expectations") or []
    if expectations:
        lines += ["#### Expectations", ""]
        lines += _md_table(["", "expectation", "measured"],
                           [["✅ pass" if e["passed"] else "❌ **FAIL**", _md(e["text"]), _md(e["measured"])] for e in expectations])
        lines.append("")
    counts = (summary.get("ledger") or {}).get("counts")
    if counts:
        sent = figures.get("sent") or 0
        lines += [f"#### Ledger ({sent} sent)", ""]
        rows = []
        for fate in FATES:
            value = counts.get(fate, 0)
            label = f"**{FATE_LABELS[fate]}**" if fate == LOST and value else FATE_LABELS[fate]
            rows.append([label, value, f"{100 * value / sent:.1f}%" if sent else ""])
        lines += _md_table(["fate", "messages", "share"], rows, "lrr")
        lines.append("")
    effects = effects_line(summary)
    if effects:
        lines += ["#### Was the work done exactly once?", "", _md(effects), ""]
    shown = [(name, describe_value(name, figures, FIGURES)) for name in
             ("drain_time", "duration", "latency.p50", "latency.p95", "latency.p99", "receives", "redeliveries",
              "dlq.messages", "tasks.started", "tasks.max_running") if name in figures]
    if shown:
        lines += ["#### Key figures", ""]
        lines += _md_table([_md(n) for n, _ in shown], [[_md(v) for _, v in shown]])
        lines.append("")
    ordering = _ordering_lines(summary)
    if ordering:
        lines += ["#### Ordering and duplicate sends", ""] + [f"- {_md(line.strip())}" for line in ordering] + [""]
    sqs = sqs_lines(summary)
    if sqs:
        lines += ["#### What SQS did", ""] + [f"- {_md(line)}" for line in sqs] + [""]
    journal = journal_lines(summary)
    if journal:
        lines += ["#### The consumer, as SQS saw it", ""] + [f"- {_md(line)}" for line in journal] + [""]
    cost = cost_line(summary)
    if cost:
        lines += ["#### What it would cost on AWS", "", _md(cost), ""]
    problems = (summary.get("ledger") or {}).get("problems") or []
    if problems:
        counts = (summary.get("ledger") or {}).get("counts") or {}
        total = max(sum(counts.get(f, 0) for f in PROBLEMS), len(problems))  # effect problems are listed too
        lines += [f"#### Problem messages (first {min(len(problems), MARKDOWN_PROBLEMS)} of {total})", ""]
        lines += _md_table(["id", "fate", "receive count", "receives", "processed", "failures", "tasks", "duplicate caused by"], [
            [f"`{_md(p.get('id'))}`" if re.fullmatch(r"[A-Za-z0-9-]+", str(p.get("id"))) else _md(p.get("id")),
             _md(FATE_LABELS.get(p.get("fate"), p.get("fate"))), p.get("receive_count", ""), p.get("receives", ""),
             p.get("processed", ""), _md(_failures_text(p.get("failures"))), _md(", ".join(p.get("tasks") or [])),
             _md(CAUSES.get(p.get("cause"), p.get("cause") or ""))]
            for p in problems[:MARKDOWN_PROBLEMS]], "llrrrlll")
        lines.append("")
    lines.append(f"<sub>sqslab {__version__} · {_md(run.path.name)} · `sqslab report --html` for charts</sub>")
    return "\n".join(lines) + "\n"


def _failures_text(failures: Any) -> str:
    if isinstance(failures, dict):
        return ", ".join(f"{k or '?'} ×{v}" for k, v in failures.items())
    return str(failures or "")


def _compare_markdown(runs: list[Any], labels: list[str]) -> str:
    statuses = [str(r.summary.get("status", "?")) for r in runs]
    worst = next((s for s in ("error", "interrupted", "failed", "incomplete") if s in statuses), "passed")
    names = list(dict.fromkeys(scenario_name(r) for r in runs))
    lines = [f"### {STATUS_MARKS.get(worst, '')} sqslab: {len(runs)} runs of {_md(', '.join(names))} compared", ""]
    rows = []
    for row in compare_rows(runs):
        cells = []
        for i, cell in enumerate(row["cells"]):
            text = _md(cell)
            if row["kind"] == "status":
                text = f"{STATUS_MARKS.get(cell, '')} {text}".strip()
            elif row["kind"] == "expectation" and row["passed"][i] is False:
                text = f"❌ **{text}**"
            elif row["kind"] == "lost" and not cell.startswith("0"):
                text = f"**{text}**"
            cells.append(text)
        rows.append([_md(row["label"])] + cells)
    lines += _md_table([""] + [_md(label) for label in labels], rows, "l" + "r" * len(labels))
    lines += ["", f"<sub>sqslab {__version__} · `sqslab report --html RUN...` overlays the queue depth of every run</sub>"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- junit

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(value: Any) -> str:
    """Text XML 1.0 can hold (control characters dropped; ElementTree escapes the rest)."""
    return _XML_ILLEGAL.sub("", str(value))


def _seconds(value: Any) -> str:
    try:
        return f"{max(0.0, float(value)):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _junit_suite(run: Any) -> ET.Element:
    summary = run.summary
    scenario = scenario_name(run)
    status = str(summary.get("status", "?"))
    expectations = summary.get("expectations") or []
    errors = list(summary.get("errors") or [])
    if status in ("interrupted", "incomplete") and not errors:
        errors = [f"the run is {status}: its figures are partial"]
    started = summary.get("t0") or summary.get("started_at") or _first_event_time(run)
    suite = ET.Element("testsuite", {
        "name": _xml(scenario),
        "tests": str(len(expectations) + (1 if errors else 0)),
        "failures": str(sum(1 for e in expectations if not e.get("passed"))),
        "errors": str(1 if errors else 0),
        "skipped": "0",
        "time": _seconds((summary.get("figures") or {}).get("duration") or 0),
        "timestamp": datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if isinstance(started, (int, float)) else "1970-01-01T00:00:00",
        "hostname": _xml(summary.get("target") or "local"),
    })
    properties = ET.SubElement(suite, "properties")
    env = summary.get("environment") or {}
    for name, value in [("status", status), ("exit_code", summary.get("exit_code")), ("run_dir", str(run.path)),
                        ("target", summary.get("target")), *sorted((env.get("versions") or {}).items())]:
        if value is not None:
            ET.SubElement(properties, "property", {"name": _xml(name), "value": _xml(value)})
    classname = f"sqslab.{scenario}"
    if errors:
        case = ET.SubElement(suite, "testcase", {"name": "run", "classname": classname, "time": _seconds(0)})
        error = ET.SubElement(case, "error", {"message": _xml(errors[0]), "type": status})
        error.text = _xml("\n".join(errors))
    for item in expectations:
        case = ET.SubElement(suite, "testcase", {"name": _xml(item.get("text", "?")), "classname": classname, "time": _seconds(0)})
        if not item.get("passed"):
            failure = ET.SubElement(case, "failure", {"message": _xml(f"measured: {item.get('measured')}"), "type": "ExpectationFailed"})
            failure.text = _xml(f"expected {item.get('text')}; measured {item.get('measured')}")
    out = ET.SubElement(suite, "system-out")
    out.text = _xml(render_text(run, {}))
    warnings = list(summary.get("warnings") or []) + list((summary.get("ledger") or {}).get("anomalies") or [])
    if warnings:
        err = ET.SubElement(suite, "system-err")
        err.text = _xml("\n".join(warnings))
    return suite


def _first_event_time(run: Any) -> float | None:
    """When a run without summary.json started: its first event's time."""
    for event in run.events():
        return event.get("ts") if isinstance(event.get("ts"), (int, float)) else None
    return None


def render_junit(run: Any, options: dict[str, Any]) -> str:
    """JUnit XML: a testsuite per run named after the scenario, each expectation a
    testcase (a failed one carries a <failure> with the measured value), an error run an <error>."""
    runs, _ = runs_of(run, options)
    root = ET.Element("testsuites", {"name": "sqslab"})
    suites = [_junit_suite(r) for r in runs]
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key) or 0) for s in suites)))
    root.set("time", f"{sum(float(s.get('time') or 0) for s in suites):.3f}")
    root.extend(suites)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


BUILTIN_REPORTERS: list[tuple[str, Callable[..., Any], str, str]] = [
    ("text", render_text, "txt", "Plain text for the terminal: verdict, expectations, ledger, key figures."),
    ("json", render_json, "json", "summary.json plus the metric series."),
    ("html", render_html, "html", "One self-contained page with charts, opens offline; several runs side by side."),
    ("markdown", render_markdown, "md", "Markdown for a pull-request comment: verdict, expectations, ledger, top problems."),
    ("junit", render_junit, "xml", "JUnit XML: each expectation a testcase, a testsuite per run."),
]


@hookimpl
def register_reporters(register: Callable[..., None]) -> None:
    """Register the built-in report formats."""
    for name, function, extension, description in BUILTIN_REPORTERS:
        register(name, function, extension=extension, description=description)
