"""Messages per second through the local Lambda event source mapping, against the built-in
consumer with the same number of workers, in one run.

    python benchmarks/bench_lambda.py [--messages 2000] [--workers 5] [--repeat 2]

Each side is a `sqslab run` of a burst of MESSAGES onto an otherwise idle queue, settled
until drained, with no work per message:

* lambda: consumer.lambda (consumer/examples/lambda-python, `app.partial` with WORK_MS 0,
  partial batch responses), event_source batch size 10 and max_concurrency WORKERS;
* built-in (the baseline): WORKERS consumer tasks, work_time 0s, batch deletes.

The figure is the drain rate, sent / drain_time from summary.json (the time from the end
of the load until the queue was empty), and the ratio lambda / built-in. The sides
alternate, REPEAT times each; the median of each side is quoted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "consumer" / "examples" / "lambda-python"


def scenario(side: str, messages: int, workers: int) -> str:
    """The scenario of one side."""
    if side == "lambda":
        consumer = (f"consumer:\n  lambda: {{handler: app.partial, code: {EXAMPLE}, timeout: 5s, memory: 256, env: {{WORK_MS: '0'}}}}\n"
                    f"  event_source: {{batch_size: 10, report_batch_item_failures: true, max_concurrency: {max(workers, 2)}}}\n"
                    "infra: {queue: {visibility_timeout: 30s}}\n")
    else:
        consumer = (f"consumer: {{work_time: 0s, delete: batch}}\ninfra: {{queue: {{visibility_timeout: 30s}}, consumers: {workers}}}\n")
    return (f"version: 1\nname: bench-{side}\n{consumer}load:\n  - {{burst: {messages}}}\n"
            "settle: {until: drained, timeout: 5m}\nexpect: [lost == 0]\n")


def run(side: str, messages: int, workers: int, folder: Path) -> float:
    """One side's drain rate, messages/s."""
    path = folder / f"{side}.yaml"
    path.write_text(scenario(side, messages, workers))
    out = folder / f"run-{side}"
    subprocess.run([sys.executable, "-m", "sqslab", "run", "-q", str(path), "--out", str(out)], check=True, timeout=900,
                   capture_output=True)
    summary = json.loads((out / "summary.json").read_text())
    figures = summary["figures"]
    subprocess.run(["rm", "-rf", str(out)], check=False)
    return messages / max(figures["drain_time"], 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"lambda": [], "built-in": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for side in rates:
                rates[side].append(run(side, args.messages, args.workers, Path(tmp)))
    medians = {side: statistics.median(values) for side, values in rates.items()}
    for side, values in rates.items():
        print(f"{side:9} {medians[side]:8.1f} msg/s  (runs: {', '.join(f'{v:.1f}' for v in values)})")
    print(f"ratio lambda / built-in: {medians['lambda'] / medians['built-in']:.2f} "
          f"({args.messages} messages, {args.workers} workers)")


if __name__ == "__main__":
    main()
