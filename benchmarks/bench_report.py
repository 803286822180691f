"""How fast `sqslab report` renders a 1-hour run, against just reading its files.

Run: python benchmarks/bench_report.py [--seconds 3600] [--events 100000] [--runs 3]
Builds a synthetic run directory (one sample a second, --events events: sends,
receives, processing, failures; 500 problem messages; phases and actions), then times
over --runs repetitions (median):

  baseline   read summary.json, metrics.jsonl and events.jsonl and json-parse every line
  html       load_run + render_html (what `sqslab report --html` does, minus the write)
  markdown, junit, json   the other built-in formats

and prints each as a ratio to the baseline, with the HTML page's size. The budget is a
page of at most 2 MB made in at most 2 s; the exit code is 1 when it is not met.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE_BUDGET = 2 * 1024 * 1024
TIME_BUDGET = 2.0


def build_run(path: Path, seconds: int = 3600, events: int = 100_000, seed: int = 1) -> Path:
    """Write a synthetic run directory of `seconds` of samples and about `events` events."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    t0 = 1_700_000_000.0
    messages = max(1, events // 3)
    rate = messages / (seconds * 0.8)  # the load runs for the first 80 %, then the queue drains
    fates: dict[str, str] = {}
    histogram: dict[int, int] = {}
    problems = []
    sent_count = processed_count = failed_count = 0
    timeline: list[tuple[float, int, int]] = []  # (t, sent so far, processed so far)
    with (path / "events.jsonl").open("w", encoding="utf-8") as out:
        out.write(json.dumps({"ts": t0, "t": 0.0, "source": "runner", "event": "run_started", "t0": t0}) + "\n")
        for seq in range(messages):
            mid = str(uuid.UUID(int=rng.getrandbits(128)))
            sent_at = t0 + seq / rate
            received = sent_at + rng.expovariate(1 / 3.0)
            done = received + rng.uniform(0.05, 0.2)
            failed = rng.random() < 0.05
            task = f"task-{rng.randint(1, 5)}"
            lines = [
                {"ts": sent_at, "t": round(sent_at - t0, 4), "source": "producer", "event": "sent", "id": mid, "seq": seq,
                 "message_id": mid, "sent_at": sent_at, "phase": "steady", "poison": False},
                {"ts": received, "event": "received", "task": task, "message_id": mid, "id": mid, "seq": seq,
                 "receive_count": 1, "source": "consumer", "t": round(received - t0, 4)},
                {"ts": done, "event": "failed" if failed else "processed", "task": task, "message_id": mid, "id": mid,
                 "receive_count": 1, "work_ms": 100.0, "reason": "error" if failed else None, "source": "consumer",
                 "t": round(done - t0, 4)},
            ]
            out.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
            fates[mid] = "dead_lettered" if failed else "processed_once"
            histogram[1] = histogram.get(1, 0) + 1
            sent_count += 1
            processed_count += 0 if failed else 1
            failed_count += 1 if failed else 0
            if failed and len(problems) < 500:
                problems.append({"id": mid, "fate": "dead_lettered", "phase": "steady", "receive_count": 1, "receives": 1,
                                 "processed": 0, "failures": {"error": 1}, "tasks": [task]})
            timeline.append((sent_at - t0, sent_count, processed_count))
    with (path / "metrics.jsonl").open("w", encoding="utf-8") as out:
        index = 0
        for second in range(seconds):
            while index < len(timeline) - 1 and timeline[index + 1][0] <= second:
                index += 1
            _, sent, processed = timeline[index] if timeline and timeline[0][0] <= second else (0, 0, 0)
            backlog = max(0, sent - processed - failed_count * sent // max(1, sent_count))
            sample = {"t": float(second), "ts": t0 + second, "queue.visible": int(backlog * 0.7), "queue.in_flight": int(backlog * 0.3),
                      "queue.delayed": 0, "dlq.messages": failed_count * sent // max(1, sent_count), "elapsed": float(second),
                      "tasks.running": 5 if second > 60 else 3, "tasks.desired": 5 if second > 60 else 3, "sent": sent,
                      "processed": processed, "failed": failed_count * sent // max(1, sent_count),
                      "queue.oldest_age": rng.uniform(0, 5), "phase": "steady" if second < seconds * 0.8 else None}
            out.write(json.dumps(sample, separators=(",", ":")) + "\n")
    counts = {"processed_once": sum(1 for f in fates.values() if f == "processed_once"), "duplicate": 0,
              "dead_lettered": sum(1 for f in fates.values() if f == "dead_lettered"), "still_queued": 0, "lost": 0}
    figures = {"sent": sent_count, "send_failed": 0, "processed": counts["processed_once"], "processed_once": counts["processed_once"],
               "duplicates": 0, "dead_lettered": counts["dead_lettered"], "still_queued": 0, "lost": 0, "receives": sent_count,
               "redeliveries": 0, "failures": failed_count, "crashes": 0, "duplicate_skipped": 0, "dlq.messages": failed_count,
               "queue.visible": 0, "queue.in_flight": 0, "receive_count.max": 1, "latency.p50": 3.1, "latency.p95": 9.2,
               "latency.p99": 14.0, "latency.max": 30.5, "drain_time": 40.0, "duration": float(seconds), "tasks.started": 5,
               "tasks.max_running": 5, "actions.failed": 0}
    summary = {
        "format_version": 1, "scenario": "one-hour", "description": "A synthetic 1-hour run for the report benchmark.",
        "target": "local", "run_dir": str(path), "started_at": t0 - 2, "t0": t0,
        "phases": [{"phase": "steady", "kind": "rate", "planned": sent_count, "sent": sent_count, "failed": 0, "start": 0.0,
                    "end": seconds * 0.8, "rate": rate, "max_lag": 0.01, "interrupted": False}],
        "actions": [{"name": f"scale-{i}", "do": "scale", "trigger": f"at {i * 600}s", "params": {"to": 3 + i % 3},
                     "status": "done", "planned": i * 600.0, "started": i * 600.0 + 0.002, "late_by": 0.002,
                     "result": f"desired count set to {3 + i % 3}"} for i in range(1, 6)],
        "errors": [], "counters": {"sent": sent_count, "processed": processed_count, "failed": failed_count},
        "environment": {"versions": {"sqslab": "bench", "python": sys.version.split()[0]}, "platform": "bench", "target": "local",
                        "endpoint_url": None},
        "status": "passed", "exit_code": 0, "figures": figures,
        "expectations": [{"text": "lost == 0", "passed": True, "measured": "lost = 0 (0.0%)"},
                         {"text": "drain_time < 2m", "passed": True, "measured": "drain_time = 40s"}],
        "ledger": {"counts": counts, "receive_histogram": {str(k): v for k, v in histogram.items()},
                   "per_task": {f"task-{i}": {"received": sent_count // 5, "processed": processed_count // 5} for i in range(1, 6)},
                   "problems": problems, "problems_truncated": counts["dead_lettered"] > len(problems), "anomalies": []},
        "settle": {"until": "drained", "timeout": 120.0, "drained": True, "load_end": seconds * 0.8},
        "ended_at": t0 + seconds,
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (path / "resolved.json").write_text(json.dumps({"name": "one-hour", "infra": {"consumers": 3}}), encoding="utf-8")
    (path / "scenario.yaml").write_text("version: 1\nname: one-hour\nload: [{rate: 10/s, duration: 48m}]\n", encoding="utf-8")
    return path


def baseline(path: Path) -> int:
    """Read every file of the run and json-parse every line: the least any report does."""
    parsed = 0
    json.loads((path / "summary.json").read_text(encoding="utf-8"))
    for name in ("metrics.jsonl", "events.jsonl"):
        with (path / name).open(encoding="utf-8") as handle:
            for line in handle:
                json.loads(line)
                parsed += 1
    return parsed


def median_time(function, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Build the run here and keep it (and report.html) for a look.")
    args = parser.parse_args()

    from sqslab.reports.formats import render_html, render_json, render_junit, render_markdown
    from sqslab.reports.html import reporter_options
    from sqslab.rundir import load_run

    with tempfile.TemporaryDirectory() as tmp:
        path = build_run(args.keep or Path(tmp) / "run", args.seconds, args.events)
        lines = sum(1 for _ in (path / "events.jsonl").open())
        print(f"run: {args.seconds} samples, {lines} events, {(path / 'events.jsonl').stat().st_size / 1e6:.1f} MB of events")
        render_html(load_run(path), {})  # warm up: imports, template compilation

        def report(function):
            def go():
                run = load_run(path)
                return function(run, reporter_options([run]))
            return go

        base, _ = median_time(lambda: baseline(path), args.runs)
        rows = [("baseline: read + json-parse the files", base, None)]
        html_time, html = median_time(report(render_html), args.runs)
        rows.append(("html", html_time, len(html.encode("utf-8"))))
        for name, function in (("markdown", render_markdown), ("junit", render_junit), ("json", render_json)):
            seconds, output = median_time(report(function), args.runs)
            rows.append((name, seconds, len(output.encode("utf-8"))))
        if args.keep:
            (path / "report.html").write_text(html, encoding="utf-8")
    print(f"{'step':<40} {'median':>9} {'x baseline':>11} {'size':>10}")
    for name, seconds, size in rows:
        print(f"{name:<40} {seconds * 1000:>7.0f}ms {seconds / base:>10.2f}x {'' if size is None else f'{size / 1e6:.2f} MB':>10}")
    html_size = rows[1][2]
    ok = html_size <= SIZE_BUDGET and html_time <= TIME_BUDGET
    print(f"budget (html <= {SIZE_BUDGET / 2**20:.0f} MiB, <= {TIME_BUDGET:.0f} s): {'met' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
