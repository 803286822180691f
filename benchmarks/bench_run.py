"""What `sqslab run` costs on the local target, measured against plain baselines in one run.

    python benchmarks/bench_run.py [--quick]

1. Overhead: a scenario whose timeline is a 5 s pause (no messages): the wall time of
   `sqslab run` beyond those 5 s (emulator start, queues, consumers ready, settle, audit,
   teardown). Goal: at most 2 s.
2. Action jitter: 40 `at` actions 250 ms apart; how late each started (summary's
   late_by), against a bare `threading.Event.wait` loop with the same schedule in this
   process. Goal: p99 at most 50 ms.
3. Burst end to end: a burst of N messages onto 5 consumer tasks with no work, from t0
   until drained, as a ratio to the emulator benchmark's bare end-to-end loop (1 producer,
   5 boto3 consumer processes receiving and batch-deleting) on a fresh emulator; once
   with the consumer deleting each message (the default) and once with batch deletes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def sqslab_run(text: str, workdir: Path) -> tuple[float, dict]:
    """One `sqslab run` into a run directory of its own: `run` refuses an --out that holds a
    run (exit 2), and reading the directory anyway gave an earlier run's figures."""
    run = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    scenario = run / "s.yaml"
    scenario.write_text(text)
    out = run / "out"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(scenario), "--out", str(out)],
                          cwd=ROOT, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: an expectation failed, the figures still stand
        raise SystemExit(f"sqslab run exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return wall, json.loads((out / "summary.json").read_text())


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(pct / 100 * len(ordered)) - 1)]


def bench_overhead(workdir: Path) -> None:
    wall, summary = sqslab_run("version: 1\nname: overhead\ninfra: {consumers: 2}\nload: [{pause: 5s}]\n", workdir)
    print(f"overhead: sqslab run of a 5s timeline took {wall:.2f}s: {wall - 5:.2f}s beyond the timeline "
          f"(goal <= 2s), ratio {wall / 5:.2f}x the timeline; status {summary['status']}")


def bench_jitter(workdir: Path) -> None:
    actions = "\n".join(f"  - {{at: {250 * (i + 1)}ms, do: scale, to: 1}}" for i in range(40))
    _, summary = sqslab_run(f"version: 1\nname: jitter\ninfra: {{consumers: 1}}\nload: [{{pause: 11s}}]\nactions:\n{actions}\n", workdir)
    late = [a["late_by"] * 1000 for a in summary["actions"]]
    event, base, t0 = threading.Event(), [], time.monotonic()
    for i in range(40):
        event.wait(max(0.0, t0 + 0.25 * (i + 1) - time.monotonic()))
        base.append((time.monotonic() - t0 - 0.25 * (i + 1)) * 1000)
    print(f"action jitter (ms): sqslab p50 {statistics.median(late):.1f} p99 {percentile(late, 99):.1f} max {max(late):.1f} "
          f"(goal p99 <= 50); bare Event.wait p50 {statistics.median(base):.1f} p99 {percentile(base, 99):.1f}; "
          f"ratio of p99s {percentile(late, 99) / max(percentile(base, 99), 0.01):.1f}x")


def bench_burst(workdir: Path, count: int) -> None:
    import bench_emulator

    from sqslab.emulator import Emulator

    sizes = bench_emulator.Sizes(backlog=0, send=0, e2e=count, drain=0, cap_s=300, fill_cap_s=300)
    with Emulator() as emu:
        bare = bench_emulator.bench_end_to_end(emu.endpoint_url, "sqslab", sizes)
    print(f"burst end to end, {count} messages, 5 consumers: bare loop (receive, DeleteMessageBatch) {bare.rate:.0f} msg/s")
    for delete in ("each", "batch"):
        _, summary = sqslab_run(
            f"version: 1\nname: burst-bench\ninfra: {{consumers: 5}}\nconsumer: {{work_time: 0ms, delete: {delete}}}\n"
            f"load: [{{burst: {count}}}]\nsettle: {{timeout: 5m}}\n", workdir)
        figures = summary["figures"]
        seconds = summary["phases"][0]["end"] + figures["drain_time"]
        ours = figures["processed"] / seconds
        print(f"  sqslab run, consumer.delete={delete}: {ours:.0f} msg/s (lost {figures['lost']}, "
              f"duplicates {figures['duplicates']}); ratio to the bare loop {ours / bare.rate:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2,000-message burst instead of 10,000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for number, bench in enumerate((bench_overhead, bench_jitter), 1):
            path = Path(tmp) / str(number)
            path.mkdir()
            bench(path)
        path = Path(tmp) / "burst"
        path.mkdir()
        bench_burst(path, 2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
