"""sqslab's emulator against its peers, stock moto and LocalStack, on the same workloads
in one run, with ratios.

    python benchmarks/bench_peers.py [--quick] [--rounds N] [--json PATH]

Workloads (bench_emulator.py's, 5 consumer processes, long poll, 10 at a time,
DeleteMessageBatch): end to end (one producer process sending while the consumers
work, timed until the queue is empty) and drain (a filled backlog emptied). Each
measure runs against a fresh server, sqslab and LocalStack interleaved for --rounds
rounds (medians reported: on shared cores one run alone says little), stock moto once
(it is O(n) per message and stops at a time cap; its rate is then a lower bound,
marked *). Latency is per DeleteMessageBatch call, measured by the consumers: a call
that never waits (a long-poll ReceiveMessage's time is mostly waiting for messages to
arrive, which says more about the producer than about the server).

LocalStack runs on the host, without Docker: its Python package (localstack-core;
2026.x needs Python 3.12 or later) in a virtualenv of its own, named by
SQSLAB_BENCH_LOCALSTACK=/path/to/venv/bin/python, or found as the interpreter of a
`localstack` command on PATH. Without it the LocalStack columns are skipped and the
reason printed. The goals checked (exit 1 if missed): end to end >= 2x LocalStack, drain
>= 1.5x LocalStack, sqslab's p99 <= LocalStack's, 0 duplicates and 0 lost everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_emulator import Result, Sizes, _start, bench_drain, bench_end_to_end  # noqa: E402

LOCALSTACK_ENV = "SQSLAB_BENCH_LOCALSTACK"
#: How long LocalStack may take to answer its health check with SQS running.
LOCALSTACK_START_TIMEOUT_S = 120.0
WORKLOADS = (bench_end_to_end, bench_drain)


def localstack_python() -> tuple[str | None, str]:
    """(the interpreter that runs LocalStack, how it was found) or (None, why not)."""
    named = os.environ.get(LOCALSTACK_ENV)
    if named:
        if not Path(named).exists():
            return None, f"{LOCALSTACK_ENV}={named} does not exist"
        return named, f"{LOCALSTACK_ENV}={named}"
    command = shutil.which("localstack")
    if command:
        first = Path(command).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!"):
            return first[2:].strip(), f"the interpreter of {command}"
    return None, (f"LocalStack is not installed: install localstack-core in a virtualenv (Python >= 3.12) "
                  f"and set {LOCALSTACK_ENV}=/path/to/venv/bin/python")


class LocalStack:
    """LocalStack's SQS on a free loopback port, in a directory of its own, stopped on exit."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        self.folder = tempfile.TemporaryDirectory(prefix="bench-localstack-")
        self.endpoint_url = ""

    def __enter__(self) -> LocalStack:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        root = Path(self.folder.name)
        env = os.environ | {
            "SERVICES": "sqs", "GATEWAY_LISTEN": f"127.0.0.1:{port}", "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "SQS_ENDPOINT_STRATEGY": "path", "PERSISTENCE": "0", "DISABLE_EVENTS": "1", "SKIP_INFRA_DOWNLOADS": "1",
            "LOCALSTACK_CLI": "0", "FILESYSTEM_ROOT": str(root / "fs"), "LOCALSTACK_VOLUME_DIR": str(root / "volume"),
        }
        log = (root / "localstack.log").open("wb")
        self.proc = subprocess.Popen([self.python, "-m", "localstack.runtime.main"], cwd=root, env=env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + LOCALSTACK_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LocalStack exited ({self.proc.returncode}): {(root / 'localstack.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/_localstack/health", timeout=2) as answer:
                    services = json.loads(answer.read()).get("services", {})
                if services.get("sqs") in ("available", "running"):
                    return self
            except OSError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"LocalStack did not answer within {LOCALSTACK_START_TIMEOUT_S:.0f}s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self.folder.cleanup()


def _run(impl: str, bench: Any, sizes: Sizes, python: str | None) -> Result:
    if impl == "localstack":
        assert python is not None
        with LocalStack(python) as peer:
            return bench(peer.endpoint_url, impl, sizes)
    with _start(impl == "sqslab") as emu:
        return bench(emu.endpoint_url, impl, sizes)


def _median(results: list[Result], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 messages instead of 10,000")
    parser.add_argument("--rounds", type=int, default=3, help="sqslab/LocalStack rounds (default 3)")
    parser.add_argument("--no-stock", action="store_true", help="leave stock moto out")
    parser.add_argument("--json", type=Path, help="also write every result here")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 10_000
    sizes = Sizes(backlog=0, send=0, e2e=n, drain=n, cap_s=120, fill_cap_s=120)
    python, how = localstack_python()
    print(f"LocalStack: {how}" if python else f"LocalStack skipped: {how}", file=sys.stderr)
    impls = ["sqslab"] + (["localstack"] if python else [])
    results: dict[tuple[str, str], list[Result]] = {}
    for bench in WORKLOADS:
        for _ in range(args.rounds):
            for impl in impls:
                result = _run(impl, bench, sizes, python)
                results.setdefault((result.name, impl), []).append(result)
                print(f"  {impl:10} {result.name:32} {result.rate:8.1f} msg/s  p99 {result.p99_ms:6.1f} ms  "
                      f"dup {result.duplicates} lost {result.lost}", file=sys.stderr, flush=True)
        if not args.no_stock:
            result = _run("stock", bench, sizes, None)
            results.setdefault((result.name, "stock"), []).append(result)
            print(f"  {'stock':10} {result.name:32} {result.rate:8.1f} msg/s{'*' if result.capped else ''}", file=sys.stderr, flush=True)
    names = list(dict.fromkeys(name for name, _ in results))
    lines = ["| workload | sqslab msg/s | LocalStack msg/s | stock moto msg/s | x LocalStack | x stock | "
             "p50 / p99 ms sqslab | p50 / p99 ms LocalStack | duplicates, lost (all) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    failures = []
    for name in names:
        ours, peer, stock = (results.get((name, impl), []) for impl in ("sqslab", "localstack", "stock"))
        rate = _median(ours, "rate")
        peer_rate = _median(peer, "rate") if peer else 0.0
        stock_rate = stock[0].rate if stock else 0.0
        star = "*" if stock and stock[0].capped else ""
        duplicates, lost = sum(r.duplicates for r in ours + peer), sum(r.lost for r in ours + peer)
        lines.append(
            f"| {name} | {rate:,.0f} | {peer_rate:,.0f} | {stock_rate:,.0f}{star} | "
            + (f"{rate / peer_rate:.2f}x" if peer_rate else "n/a") + " | "
            + (f"{rate / stock_rate:.1f}x" if stock_rate else "n/a") + " | "
            + f"{_median(ours, 'p50_ms'):.1f} / {_median(ours, 'p99_ms'):.1f} | "
            + (f"{_median(peer, 'p50_ms'):.1f} / {_median(peer, 'p99_ms'):.1f}" if peer else "n/a")
            + f" | {duplicates}, {lost} |")
        if duplicates or lost:
            failures.append(f"{name}: duplicates or lost messages")
        if peer:
            goal = 2.0 if name.startswith("end to end") else 1.5
            if rate < goal * peer_rate:
                failures.append(f"{name}: {rate / peer_rate:.2f}x LocalStack, goal {goal}x")
            if _median(ours, "p99_ms") > _median(peer, "p99_ms"):
                failures.append(f"{name}: p99 above LocalStack's")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({f"{k[1]}: {k[0]}": [asdict(r) | {"rate": r.rate} for r in v]
                                         for k, v in results.items()}, indent=2))
    for failure in failures:
        print(f"goal missed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
