"""The library side of `sqslab report`: find the runs, pick reporters, run each, compare.

A report is made by a reporter (sqslab.reports.formats, or a plugin's), called as
`function(run, options)`. `options["runs"]` holds every run being reported, with
`options["labels"]` naming each: one run is a report, two or more a comparison, and
`run` is always the first of them. A reporter that raises is reported as failed while
the other reporters still run (render_reports).

This module also turns a run directory into what the charts and tables show
(run_view, key_figures, compare_rows): series downsampled to at most `max_points`,
rates from the cumulative counters, latency percentiles per time bucket.
"""

from __future__ import annotations

import contextlib
import json
import math
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.consumer import events as ev
from sqslab.rundir import Run, RunDirError, latest_run, load_run
from sqslab.scenario.units import UnitError, parse_duration
from sqslab.truth.expectations import FIGURES, describe_value
from sqslab.truth.fates import DUPLICATE, FATES, LOST
from sqslab.truth.fates import LABELS as FATE_LABELS
from sqslab.truth.ledger import percentile

DEFAULT_FORMAT = "text"
# Points per chart series: a 1-hour run sampled every second is 3,600 samples; a browser
# draws 1,500 points per line without effort and the page stays well under 2 MB.
MAX_POINTS = 1500
# Gauges in metrics.jsonl: downsampled by their peak in each bucket, so a spike stays visible.
GAUGES = ("queue.visible", "queue.in_flight", "queue.delayed", "dlq.messages", "tasks.running", "tasks.desired", "queue.oldest_age")
# Cumulative counters in metrics.jsonl: rates are their differences over time.
COUNTERS = ("sent", "processed", "failed")
KEY_FIGURES = ("sent", "processed_once", "duplicates", "dead_lettered", "still_queued", "lost", "receives", "redeliveries",
               "failures", "crashes", "dlq.messages", "tasks.started", "tasks.max_running", "drain_time", "duration",
               "latency.p50", "latency.p95", "latency.p99", "latency.max")
FILE_NAMES = {"junit": "junit.xml"}
# Formats read in a browser: written to a file unless `-o -` asks for stdout.
FILE_FORMATS = {"html"}


class ReportError(Exception):
    """Runs that cannot be reported: no run found, an unreadable directory, an unknown format."""


@dataclass
class Outcome:
    """What one reporter produced: its output, or the error it failed with."""

    format: str
    extension: str
    output: str | bytes | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the reporter produced its report."""
        return self.error is None


# ---------------------------------------------------------------- finding runs


def resolve_run_dirs(paths: Iterable[Path | str], runs_dir: Path = Path("runs")) -> list[tuple[Path, str | None]]:
    """Run directories to report, each with a label when one is known.

    No paths: the latest run under runs_dir. A sweep directory (holding sweep.json)
    stands for its runs, each labelled with its variant (`infra.consumers=3`).
    """
    given = [Path(p) for p in paths]
    if not given:
        latest = latest_run(runs_dir)
        if latest is None:
            raise ReportError(f"no run directory under {runs_dir}/: run a scenario first (sqslab run SCENARIO) or name a run directory")
        return [(latest, None)]
    found: list[tuple[Path, str | None]] = []
    for path in given:
        if (path / "sweep.json").exists():
            found.extend(_sweep_runs(path))
        else:
            found.append((path, None))
    return found


def _sweep_runs(sweep_dir: Path) -> list[tuple[Path, str | None]]:
    try:
        sweep = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{sweep_dir / 'sweep.json'}: not readable ({exc})") from None
    runs = []
    for item in sweep.get("runs", []):
        recorded = Path(item.get("run_dir", ""))
        # run_dir was written relative to where the sweep ran; the sweep directory may have moved since.
        candidates = [recorded, sweep_dir / recorded.name]
        if not recorded.is_absolute():
            candidates.append(sweep_dir.parent / recorded)
        path = next((c for c in candidates if c.is_dir()), None)
        if path is None:
            raise ReportError(f"{sweep_dir}: run {recorded} of the sweep is missing")
        runs.append((path, ", ".join(item.get("variant") or []) or None))
    if not runs:
        raise ReportError(f"{sweep_dir}: the sweep has no runs yet")
    return runs


def load_runs(paths: Iterable[Path | str], runs_dir: Path = Path("runs")) -> tuple[list[Run], list[str]]:
    """Load the runs to report (see resolve_run_dirs) and a distinct label for each."""
    runs, given = [], []
    for path, label in resolve_run_dirs(paths, runs_dir):
        try:
            runs.append(load_run(path))
        except RunDirError as exc:
            raise ReportError(str(exc)) from None
        given.append(label)
    return runs, run_labels(runs, given)


def run_labels(runs: list[Run], given: list[str | None] | None = None) -> list[str]:
    """A short distinct label per run: the sweep variant, else the settings that differ
    between the runs (`infra.consumers=3`), else the run directory's name."""
    given = list(given or [None] * len(runs))
    if len(runs) > 1 and not all(given):
        flat = [_flatten({k: v for k, v in r.resolved.items() if k not in ("description", "seed")}) for r in runs]
        keys = sorted(set().union(*flat))
        differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flat}) > 1]
        for i, f in enumerate(flat):
            if given[i] is None and differing and len(differing) <= 3:
                given[i] = ", ".join(f"{k}={_short(f.get(k))}" for k in differing)
    labels = [label or run.path.name for label, run in zip(given, runs, strict=False)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({run.path.name})" for label, run in zip(labels, runs, strict=False)]
    return labels


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 30 else text[:27] + "..."


# ---------------------------------------------------------------- running reporters


def reporter_options(runs: list[Run], labels: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """The options a reporter is called with for these runs."""
    return {"runs": runs, "labels": labels or run_labels(runs), "max_points": MAX_POINTS, **extra}


def render_reports(runs: list[Run], formats: Iterable[str], host: Any, labels: list[str] | None = None,
                   options: dict[str, Any] | None = None) -> list[Outcome]:
    """Run each named reporter over the runs; a reporter that raises gives a failed
    Outcome (with its traceback) and the others still run. Unknown names raise ReportError."""
    formats = list(dict.fromkeys(formats)) or [DEFAULT_FORMAT]
    unknown = [name for name in formats if name not in host.reporters]
    if unknown:
        raise ReportError(f"unknown report format {', '.join(map(repr, unknown))}; known: {', '.join(sorted(host.reporters))}")
    if not runs:
        raise ReportError("no runs to report")
    base = reporter_options(runs, labels, **(options or {}))
    outcomes = []
    for name in formats:
        reporter = host.reporters[name]
        outcome = Outcome(name, reporter.extension)
        try:
            output = reporter.function(runs[0], dict(base))
            if not isinstance(output, (str, bytes)):
                raise TypeError(f"a reporter returns str or bytes, got {type(output).__name__}")
            outcome.output = output
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not cost the user the other reports
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.traceback = traceback.format_exc()
        outcomes.append(outcome)
    return outcomes


def file_name(name: str, extension: str, compare: bool = False) -> str:
    """The usual file name of a report: `report.html`, `compare.md`, `junit.xml`."""
    if name in FILE_NAMES:
        return FILE_NAMES[name]
    return f"{'compare' if compare else 'report'}.{extension}"


def default_output_dir(runs: list[Run], paths: Iterable[Path | str] = ()) -> Path:
    """Where report files go unless told: the run directory; for a comparison the sweep
    directory named, else the directory that holds the runs."""
    if len(runs) == 1:
        return runs[0].path
    sweeps = [Path(p) for p in paths if (Path(p) / "sweep.json").exists()]
    if len(sweeps) == 1:
        return sweeps[0]
    parents = {r.path.resolve().parent for r in runs}
    return parents.pop() if len(parents) == 1 else Path(".")


def output_paths(formats: list[str], host: Any, out: Path | None, default_dir: Path, compare: bool = False) -> dict[str, Path | None]:
    """Where each format's report goes (None: stdout). One format goes to stdout, or to
    `out` (`-` is stdout); html, meant for a browser, goes to a file in default_dir unless
    `-o -`. Several formats go to files in the directory `out` (default: default_dir)."""
    formats = list(dict.fromkeys(formats)) or [DEFAULT_FORMAT]
    unknown = [name for name in formats if name not in host.reporters]
    if unknown:
        raise ReportError(f"unknown report format {', '.join(map(repr, unknown))}; known: {', '.join(sorted(host.reporters))}")
    stdout = out is not None and str(out) == "-"
    if len(formats) == 1:
        name = formats[0]
        if stdout:
            return {name: None}
        if out is not None:
            return {name: out}
        if name in FILE_FORMATS:
            return {name: default_dir / file_name(name, host.reporters[name].extension, compare)}
        return {name: None}
    if stdout:
        raise ReportError(f"{len(formats)} formats cannot all go to stdout: give -o DIRECTORY, or one format")
    if out is not None and out.exists() and not out.is_dir():
        raise ReportError(f"{out}: with several formats, -o names a directory")
    directory = out or default_dir
    return {name: directory / file_name(name, host.reporters[name].extension, compare) for name in formats}


def write_report(output: str | bytes, path: Path) -> None:
    """Write a report file whole (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(output if isinstance(output, bytes) else output.encode("utf-8"))
    tmp.replace(path)


# ---------------------------------------------------------------- what a run shows


def scenario_name(run: Run) -> str:
    """The run's scenario name; from resolved.json when summary.json was never written."""
    return str(run.summary.get("scenario") or run.resolved.get("name") or run.path.name)


def is_compare(options: dict[str, Any]) -> bool:
    """Whether the reporter is asked for a comparison of several runs."""
    return len(options.get("runs") or ()) > 1


def runs_of(run: Run, options: dict[str, Any]) -> tuple[list[Run], list[str]]:
    """The runs a reporter reports on, with their labels (a lone run when called directly)."""
    runs = options.get("runs") or [run]
    labels = options.get("labels") or run_labels(runs)
    return list(runs), list(labels)


def _num(value: Any, digits: int = 3) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None


def metric_series(samples: list[dict[str, Any]], max_points: int = MAX_POINTS) -> dict[str, list[Any]]:
    """Columns of the samples, at most max_points long: t, each gauge (peak per bucket),
    each counter (last value) and `<counter>_rate` per second between points."""
    samples = [s for s in samples if _num(s.get("t")) is not None]
    step = max(1, math.ceil(len(samples) / max(1, max_points)))
    columns: dict[str, list[Any]] = {"t": []}
    for key in GAUGES + COUNTERS:
        columns[key] = []
    for start in range(0, len(samples), step):
        bucket = samples[start:start + step]
        last = bucket[-1]
        columns["t"].append(_num(last["t"]))
        for key in GAUGES:
            values = [v for v in (_num(s.get(key)) for s in bucket) if v is not None]
            columns[key].append(max(values) if values else None)
        for key in COUNTERS:
            columns[key].append(_num(last.get(key)))
    times = columns["t"]
    for key in COUNTERS:
        counts, rates = columns[key], list[float | None]()
        for i, (t, count) in enumerate(zip(times, counts, strict=False)):
            if not i:  # the first sample has no interval before it (a burst would read as a huge rate)
                rates.append(None)
                continue
            prev_t, prev_count = times[i - 1], counts[i - 1]
            if count is None or prev_count is None or t is None or prev_t is None or t - prev_t <= 0:
                rates.append(None)
            else:
                rates.append(round((count - prev_count) / (t - prev_t), 3))
        columns[f"{key}_rate"] = rates
    return columns


def read_latencies(run: Run) -> list[tuple[float, float]]:
    """(t processed, seconds from send) for each id's first processing: from the run's
    ledger.sqlite (one query, however long the run), else from events.jsonl."""
    t0 = _num(run.summary.get("t0"), 6)
    ledger = run.path / "ledger.sqlite"
    if ledger.exists() and t0 is not None:
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
                return db.execute("SELECT first_processed - ?, first_processed - sent_at FROM fates "
                                  "WHERE processed > 0 AND sent_at IS NOT NULL", (t0,)).fetchall()
        except sqlite3.Error:
            pass  # an unreadable ledger: the events say the same
    sent_at: dict[str, float] = {}
    first: dict[str, float] = {}
    path = run.path / "events.jsonl"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            # Only sent and processed events matter: skip the rest without parsing them.
            if '"sent"' not in line and f'"{ev.PROCESSED}"' not in line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            kind, mid = event.get("event"), event.get("id")
            if mid is None:
                continue
            if kind == "sent" and event.get("sent_at") is not None:
                sent_at[mid] = event["sent_at"]
            elif kind == ev.PROCESSED and event.get("source") == "consumer" and event.get("ts") is not None \
                    and (mid not in first or event["ts"] < first[mid]):
                first[mid] = event["ts"]
    if t0 is None:
        t0 = min(sent_at.values(), default=0.0)
    return [(ts - t0, ts - sent_at[mid]) for mid, ts in first.items() if mid in sent_at]


def latency_series(latencies: list[tuple[float, float]], max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Latency percentiles (p50, p95, p99, max) per time bucket of processing: a second,
    or wider when the run is longer than max_points seconds."""
    if not latencies:
        return {"bucket": 1, "t": [], "p50": [], "p95": [], "p99": [], "max": [], "count": []}
    span = max(t for t, _ in latencies) - min(0.0, min(t for t, _ in latencies))
    width = max(1, math.ceil(span / max(1, max_points)))
    buckets: dict[int, list[float]] = {}
    for t, latency in latencies:
        buckets.setdefault(math.floor(t / width), []).append(latency)
    out: dict[str, Any] = {"bucket": width, "t": [], "p50": [], "p95": [], "p99": [], "max": [], "count": []}
    for index in sorted(buckets):
        values = sorted(buckets[index])
        out["t"].append(index * width)
        for pct in (50, 95, 99):
            out[f"p{pct}"].append(_num(percentile(values, pct)))
        out["max"].append(_num(values[-1]))
        out["count"].append(len(values))
    return out


def histogram_series(run: Run) -> dict[str, list[int]]:
    """The receive-count histogram with every count from 0 to the highest (0: never received)."""
    raw = ((run.summary.get("ledger") or {}).get("receive_histogram") or {})
    counts = {int(k): int(v) for k, v in raw.items() if str(k).lstrip("-").isdigit()}
    if not counts:
        return {"receive_count": [], "messages": []}
    top = max(counts)
    return {"receive_count": list(range(top + 1)), "messages": [counts.get(i, 0) for i in range(top + 1)]}


def markers(run: Run) -> dict[str, list[dict[str, Any]]]:
    """Phases (bands, seconds from t0), actions (marks at their start) and the windows of
    timed SQS faults (bands from the sqs_fault action to its `for`, or to the end) for
    the time axis."""
    summary = run.summary
    phases = [{"name": str(p.get("phase", "")), "start": _num(p.get("start")), "end": _num(p.get("end"))}
              for p in summary.get("phases") or [] if _num(p.get("start")) is not None]
    actions = [{"name": str(a.get("name", "")), "do": str(a.get("do", "")), "t": _num(a.get("started")), "status": str(a.get("status", ""))}
               for a in summary.get("actions") or [] if _num(a.get("started")) is not None]
    windows = []
    for action in summary.get("actions") or []:
        start = _num(action.get("started"))
        if action.get("do") != "sqs_fault" or start is None or action.get("status") != "done":
            continue
        lasting = (action.get("params") or {}).get("for")
        try:
            end = start + parse_duration(lasting) if lasting is not None else None
        except UnitError:
            end = None
        windows.append({"name": str(action.get("name", "")), "start": start, "end": end, "text": str(action.get("result", ""))})
    return {"phases": phases, "actions": actions, "windows": windows}


#: Who made a duplicate's extra processing, in words (ledger problems' `cause`).
CAUSES = {"sqs": "SQS (a copy survived a delete)", "producer": "producer (sent twice)",
          "consumer": "consumer side (a redelivery)"}


def sqs_lines(summary: dict[str, Any]) -> list[str]:
    """What the SQS side did, in a few lines (none when it did nothing beyond exactness)."""
    figures = summary.get("figures") or {}
    section = (summary.get("ledger") or {}).get("sqs") or {}
    lines = []
    faults = section.get("faults") or {}
    if faults:
        detail = "; ".join(f"{api}: " + ", ".join(f"{kind} ×{n}" for kind, n in kinds.items()) for api, kinds in faults.items())
        lines.append(f"faults injected: {figures.get('faults.injected', 0)} ({detail})")
    if figures.get("sdk_retries") or figures.get("api_errors"):
        retried = ", ".join(f"{code} ×{n}" for code, n in (section.get("retried") or {}).items())
        errors = "; ".join(f"{api}: " + ", ".join(f"{code} ×{n}" for code, n in codes.items())
                           for api, codes in (section.get("api_errors") or {}).items())
        lines.append(f"SDK: {figures.get('sdk_retries', 0)} retries ({retried or 'none'}), "
                     f"{figures.get('api_errors', 0)} calls given up ({errors or 'none'})")
    behavior = section.get("behavior") or {}
    if behavior:
        # Not "beyond exactness": an exact SQS also meets stale receipts (and acts on them).
        lines.append("what SQS did: " + ", ".join(f"{kind.replace('_', ' ')} ×{n}" for kind, n in behavior.items())
                     + f" (duplicates added: {figures.get('sqs_duplicates', 0)})")
    if figures.get("redriven"):
        lines.append(f"redriven from the DLQ: {figures['redriven']}")
    return lines


def effects_line(summary: dict[str, Any]) -> str | None:
    """The effect fates in one line (None when the run did not count effects)."""
    figures = summary.get("figures") or {}
    if figures.get("effects.total") is None:
        return None
    parts = [f"{label} {figures.get(name, 0):,}" for name, label in EFFECT_LABELS]
    return ("effects (the work, as the consumers posted or wrote it): " + ", ".join(parts)
            + f"; {figures['effects.total']:,} effects posted, {figures.get('effects.unmatched', 0):,} naming no message of the run")


#: The effect figures and their labels, in the reports' order.
EFFECT_LABELS = (("effects.applied_once", "applied once"), ("effects.duplicates", "applied more than once"),
                 ("effects.lost_work", "lost work"), ("effects.applied_not_deleted", "applied, never deleted"),
                 ("effects.not_applied", "not applied"))


def cost_line(summary: dict[str, Any]) -> str | None:
    """What the run would cost on AWS, in one line (None when the summary has no cost)."""
    cost = summary.get("cost") or {}
    figures = summary.get("figures") or {}
    if not cost:
        return None

    def usd(name: str) -> str:
        return describe_value(name, figures, FIGURES)

    requests = figures.get("cost.sqs.requests")
    sqs = (f"SQS {usd('cost.sqs.usd')} ({requests:,} requests, {figures.get('cost.sqs.empty_receives') or 0:,} empty receives)"
           if requests is not None else "SQS n/a (no journal of the requests)")
    parts = [sqs]
    if figures.get("cost.lambda.usd"):
        parts.append(f"Lambda {usd('cost.lambda.usd')}")
    if (cost.get("ecs") or {}).get("tasks"):
        parts.append(f"ECS {usd('cost.ecs.usd')} ({cost['ecs']['tasks']} tasks, {cost['ecs']['billed_seconds']:g} s billed)")
    where = cost.get("prices_region")
    prices = f"{where} on-demand prices of {cost.get('prices_as_of')}"
    if where != cost.get("region"):
        prices += f" (none for {cost.get('region')} in sqslab's table)"
    return (f"cost: {usd('cost.total')}, {usd('cost.per_million')} per million messages: " + "; ".join(parts)
            + f"; at {prices}")


def journal_lines(summary: dict[str, Any]) -> list[str]:
    """Which consumer ran, where the fates come from, and the lab's self-check, in a few lines."""
    consumer = summary.get("consumer") or {}
    ledger = summary.get("ledger") or {}
    journal = ledger.get("journal") or {}
    lines = []
    if consumer.get("kind") == "program":
        image = f" (image {consumer['image']})" if consumer.get("image") else ""
        lines.append(f"consumer: your program `{consumer.get('command')}`{image}")
    if ledger.get("source") == "queue audit":
        lines.append("fates from the queues at the end (no SQS journal on AWS, and the program prints no sqslab events): "
                     "processed = gone from the queue, at least once; receives, duplicates and latencies are unavailable")
    if ledger.get("source") == "SQS journal":
        lines.append(f"fates from the SQS journal (the program prints no sqslab events): deleted by two receives = "
                     f"{FATE_LABELS[DUPLICATE]}")
    if journal:
        tasks = ", ".join(f"{task} {c.get('received', 0)}/{c.get('deleted', 0)}" for task, c in journal.get("per_task", {}).items())
        lines.append(f"SQS journal: {journal.get('lines', 0)} operations; receives/deletes per task: {tasks or 'none'}")
        resent = journal.get("consumer_sends")
        if resent:
            lines.append(f"the consumers sent {resent['sent']} message(s) to the queues themselves (a framework's retry sends a "
                         f"copy); {resent['naming_no_message']} name no message of the run, so they have no fate here")
    invoked = (ledger.get("lambda") or {}).get("journal_check")
    if invoked:
        verdict = "agree" if invoked.get("agree") else f"DISAGREE ({invoked.get('unexplained')} receives unexplained)"
        lines.append(f"invocations and SQS journal {verdict}: {invoked.get('records_invoked')} records invoked + "
                     f"{invoked.get('abandoned')} left uninvoked = {invoked.get('journal_receives')} receives SQS made")
    check = journal.get("check")
    if check:
        if check.get("agree"):
            explained = "; ".join(f"{reason} ×{n}" for reason, n in (check.get("explained") or {}).items())
            lines.append("self-check: consumer events and SQS journal agree" + (f" (explained: {explained})" if explained else ""))
        else:
            lines.append(f"SELF-CHECK FAILED: {check.get('disagreement_count')} disagreement(s): "
                         + "; ".join(check.get("disagreements", [])[:5]))
    return lines


def run_view(run: Run, max_points: int = MAX_POINTS, samples: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the charts of one run draw, as JSON-able data."""
    samples = run.metrics() if samples is None else samples
    ledger = run.summary.get("ledger") or {}
    ordering = ledger.get("ordering") or {}
    concurrency = (ledger.get("lambda") or {}).get("concurrency_series")
    return {
        "series": metric_series(samples, max_points),
        "latency": latency_series(read_latencies(run), max_points),
        "histogram": histogram_series(run),
        **({"blocked": ordering["blocked_series"]} if ordering.get("blocked_series") else {}),
        **({"concurrency": concurrency} if concurrency else {}),
        **markers(run),
    }


def peak_backlog(samples: list[dict[str, Any]]) -> int | None:
    """The most messages visible + in flight at one sample."""
    values = [(s.get("queue.visible") or 0) + (s.get("queue.in_flight") or 0) for s in samples if "queue.visible" in s]
    return max(values) if values else None


def key_figures(run: Run) -> list[dict[str, Any]]:
    """The run's figures as a person reads them: name, text, raw value and meaning."""
    figures = run.summary.get("figures") or {}
    return [{"name": name, "text": describe_value(name, figures, FIGURES), "value": figures.get(name), "meaning": FIGURES[name][1]}
            for name in KEY_FIGURES if name in figures]


HEADLINE = (("drain_time", "drain time"), ("latency.p50", "latency p50"), ("latency.p95", "latency p95"),
            ("latency.p99", "latency p99"), ("redeliveries", "redeliveries"), ("tasks.max_running", "most tasks running"))


def headline(run: Run, samples: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The few figures shown large under the ledger: drain time, latencies, peak backlog..."""
    figures = run.summary.get("figures") or {}
    items = [{"label": "peak backlog (visible + in flight)", "text": _text(peak_backlog(samples))}]
    items += [{"label": label, "text": describe_value(name, figures, FIGURES).split(" (")[0]}
              for name, label in HEADLINE if name in figures]
    return items


def compare_rows(runs: list[Run], samples: list[list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Rows of the comparison table: verdict, each expectation, the ledger, drain time and
    key figures; each row has `cells` (one text per run) and a `kind` for styling."""
    samples = samples if samples is not None else [r.metrics() for r in runs]
    rows: list[dict[str, Any]] = [{"label": "status", "kind": "status",
                                   "cells": [str(r.summary.get("status", "?")) for r in runs]}]
    texts = list(dict.fromkeys(e["text"] for r in runs for e in r.summary.get("expectations") or []))
    for text in texts:
        cells, states = [], []
        for run in runs:
            item = next((e for e in run.summary.get("expectations") or [] if e["text"] == text), None)
            cells.append("—" if item is None else f"{'pass' if item['passed'] else 'FAIL'}: {item['measured']}")
            states.append(None if item is None else bool(item["passed"]))
        rows.append({"label": f"expect {text}", "kind": "expectation", "cells": cells, "passed": states})
    for fate in FATES:
        cells = []
        for run in runs:
            counts = (run.summary.get("ledger") or {}).get("counts") or {}
            sent = (run.summary.get("figures") or {}).get("sent") or 0
            value = counts.get(fate)
            cells.append("—" if value is None else (f"{value} ({100 * value / sent:.1f}%)" if sent else str(value)))
        rows.append({"label": FATE_LABELS[fate], "kind": "lost" if fate == LOST else "ledger", "cells": cells})
    rows.append({"label": "peak backlog (visible + in flight)", "kind": "figure",
                 "cells": [_text(peak_backlog(s)) for s in samples]})
    for name in ("drain_time", "duration", "sent", "receives", "redeliveries", "dlq.messages", "tasks.max_running",
                 "latency.p50", "latency.p95", "latency.p99", "latency.max", "producer_duplicates", "dedup_dropped",
                 "groups", "order_violations", "group_blocked.max", "group_blocked.p95", "faults.injected", "sqs_duplicates",
                 "stale_receipts", "empty_receives", "receives_lost", "sdk_retries", "api_errors", "redriven",
                 "lambda.invocations", "lambda.throttles", "cost.sqs.requests", "cost.sqs.empty_receives", "cost.total",
                 "cost.per_million"):
        figures = [r.summary.get("figures") or {} for r in runs]
        if any(f.get(name) for f in figures):  # FIFO and duplicate figures only where a run has them
            rows.append({"label": name.replace("_", " "), "kind": "figure", "cells": [describe_value(name, f, FIGURES) for f in figures]})
    return rows


def _text(value: Any) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)


def depth_overlay(views: list[dict[str, Any]]) -> list[dict[str, list[Any]]]:
    """Per run: t and visible + in flight, for the overlaid queue-depth chart."""
    out = []
    for view in views:
        series = view["series"]
        pairs = zip(series["queue.visible"], series["queue.in_flight"], strict=True)
        depth = [None if v is None and f is None else (v or 0) + (f or 0) for v, f in pairs]
        out.append({"t": series["t"], "depth": depth, "dlq": series["dlq.messages"]})
    return out
