"""How sqslab's memory, time and disk grow with the size of a run.

    python benchmarks/bench_scale.py [--sizes 10000,100000,1000000] [--consumers 5]

For each size: `sqslab run` of a burst of that many messages onto 5 consumer tasks with
batch deletes (no work), then `sqslab report --html` of the run. Reported per size:
wall time and messages/s of the run; the burst's rate from t0 (messages over the load's
end plus the drain time); the post-run step (consumers stopped, the queues audited, the
ledger folded from the events and the SQS journal, the summary written), from the
consumers' stop to the run's end, with the audit's and the ledger's shares; the peak resident memory (VmHWM, polled from
/proc every 0.2 s) of sqslab itself, of the emulator and of the largest consumer; the
run directory's size; the report's time and size. The baseline is the smallest size:
the goal is sqslab's peak at the largest size within 1.5x its peak at the smallest (its
memory must not grow with the number of messages), the report under 10 s and 10 MB.
The emulator's memory per queued message is the slope of its peak over the sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    """Every descendant of pid (from /proc; a child forked by any of its threads)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids: list[int] = []
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids += [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                pass
        found += kids
        frontier += kids
    return found


def peak_kb(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in KiB, or 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if "sqslab.emulator" in cmdline:
        return "emulator"
    if "consume.py" in cmdline:
        return "consumer"
    return "other"


class Watch:
    """Peak memory of a process tree, polled until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peaks, self.roles = pid, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for pid in [self.pid, *children(self.pid)]:
                self.peaks[pid] = max(self.peaks.get(pid, 0), peak_kb(pid))
                if pid not in self.roles:
                    self.roles[pid] = "sqslab" if pid == self.pid else role(pid)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        out = {"sqslab": self.peaks.get(self.pid, 0) / 1024}
        for name in ("emulator", "consumer"):
            values = [kb for pid, kb in self.peaks.items() if self.roles.get(pid) == name]
            out[name] = max(values, default=0) / 1024
        return out


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def post_run_marks(events: Path) -> dict[str, float]:
    """Run-clock times (s) of the run's last steps, from its events: the load's end, the
    consumers told to stop once the queue settled, the audit, the ledger, the run's end."""
    marks = dict.fromkeys(("load_end", "settled", "audit", "ledger", "run_ended"), 0.0)
    with events.open() as handle:
        for line in handle:
            if '"runner"' not in line and '"task_stopping"' not in line:
                continue
            event = json.loads(line)
            kind, t = event.get("event"), float(event.get("t") or 0.0)
            if kind == "load_ended":
                marks["load_end"] = t
            elif kind == "task_stopping" and not marks["settled"]:
                marks["settled"] = t  # the first stop after settling: what follows is the post-run step
            elif kind in ("audit", "ledger", "run_ended"):
                marks[kind] = t
    return marks


def measure(size: int, consumers: int, workdir: Path) -> dict[str, float]:
    scenario = workdir / f"scale-{size}.yaml"
    scenario.write_text(
        f"version: 1\nname: scale-{size}\nsample_interval: 1s\ninfra: {{consumers: {consumers}, max_consumers: {consumers}}}\n"
        f"consumer: {{work_time: 0ms, delete: batch}}\nload: [{{burst: {size}}}]\n"
        f"limits: {{max_messages: {size}}}\nsettle: {{timeout: 1h}}\nexpect: [lost == 0]\n")
    out = workdir / f"run-{size}"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sqslab", "run", "-q", str(scenario), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watch = Watch(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    peaks = watch.stop()
    summary = json.loads((out / "summary.json").read_text())
    figures = summary["figures"]
    marks = post_run_marks(out / "events.jsonl")
    size_mb = du_mb(out)
    started = time.perf_counter()
    report = subprocess.run([sys.executable, "-m", "sqslab", "report", str(out), "--html"], cwd=ROOT, capture_output=True, text=True)
    report_s = time.perf_counter() - started
    html = out / "report.html"
    return {"size": size, "status": summary["status"], "lost": figures.get("lost"), "wall_s": wall,
            "msg_s": size / max(figures.get("duration") or wall, 1e-9), "sqslab_mb": peaks["sqslab"], "emulator_mb": peaks["emulator"],
            "consumer_mb": peaks["consumer"], "run_dir_mb": size_mb, "report_s": report_s,
            "report_mb": html.stat().st_size / 1e6 if html.exists() else float("nan"), "report_ok": report.returncode == 0,
            "burst_msg_s": size / max(marks["load_end"] + (figures.get("drain_time") or 0.0), 1e-9),
            "audit_s": marks["audit"] - marks["settled"], "ledger_s": marks["ledger"] - marks["audit"],
            "post_run_s": marks["run_ended"] - marks["settled"],
            "stderr": err[-300:] if proc.returncode not in (0, 1) else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated message counts")
    parser.add_argument("--consumers", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the run directories (printed)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="sqslab-scale-"))
    rows = []
    for size in sizes:
        row = measure(size, args.consumers, workdir)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    print()
    print("| messages | status | lost | wall | msg/s | burst msg/s | post-run (audit, ledger) | sqslab peak | x smallest | "
          "emulator peak | consumer peak | run dir | report | report size |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['size']:,} | {row['status']} | {row['lost']} | {row['wall_s']:.0f} s | {row['msg_s']:.0f} | "
              f"{row['burst_msg_s']:.0f} | {row['post_run_s']:.1f} s ({row['audit_s']:.1f}, {row['ledger_s']:.1f}) | "
              f"{row['sqslab_mb']:.0f} MB | {row['sqslab_mb'] / base['sqslab_mb']:.2f}x | {row['emulator_mb']:.0f} MB | "
              f"{row['consumer_mb']:.0f} MB | {row['run_dir_mb']:.0f} MB | {row['report_s']:.1f} s | {row['report_mb']:.2f} MB |")
    if len(rows) > 1:
        last = rows[-1]
        per_message = (last["emulator_mb"] - base["emulator_mb"]) * 1e6 / (last["size"] - base["size"])
        print(f"\nsqslab peak at {last['size']:,} is {last['sqslab_mb'] / base['sqslab_mb']:.2f}x its peak at {base['size']:,} "
              f"(goal <= 1.5x); the emulator's peak grows by about {per_message:.0f} bytes per queued message "
              "(a burst queues every message at once)")
    if args.keep:
        print(f"run directories in {workdir}")
    else:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
