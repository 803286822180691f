"""How fast `sqslab --help` and `sqslab validate scenarios/` start, against a bare Python.

Run: python benchmarks/bench_cli_startup.py [--runs N]
Prints the median wall time of each command over N runs and its ratio to
`python -c pass` measured in the same run (the baseline every Python CLI pays).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_time(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    baseline = median_time([py, "-c", "pass"], args.runs)
    rows = [
        ("python -c pass (baseline)", baseline),
        ("python -c 'import boto3' (for scale)", median_time([py, "-c", "import boto3"], args.runs)),
        ("sqslab --help", median_time([py, "-m", "sqslab", "--help"], args.runs)),
        ("sqslab validate scenarios/", median_time([py, "-m", "sqslab", "validate", "scenarios"], args.runs)),
    ]
    print(f"{'command':<40} {'median':>9} {'x baseline':>11}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds * 1000:>7.0f}ms {seconds / baseline:>10.1f}x")


if __name__ == "__main__":
    main()
