"""How well the producer keeps its rate, and how fast it bursts, on the embedded emulator.

Run: python benchmarks/bench_producer.py [--quick] [--json]

Rate accuracy: rate phases of 10, 100 and 500 msg/s for 20 s (5 s with --quick), each
on a fresh queue. Reported per phase: messages sent against planned, the achieved rate
(sent / phase elapsed) against the asked one (goal: within 2 %), the worst one-second
window, and how late sends completed after their due time (p50, p99, max).

Burst throughput: the same number of 256-byte messages sent by a bare boto3 loop of
SendMessageBatch calls (ten per call, bodies built in advance, one thread) and by
Producer.run_phase with a burst phase, alternately, on the same emulator in the same
run. Reported as msg/s and the ratio producer / bare loop (goal: at least 0.9).

The emulator and this script share the machine's cores; on a busy machine every figure
moves, so the ratio (both sides measured side by side) is the figure to trust.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from sqslab.emulator import Emulator, client  # noqa: E402
from sqslab.run.producer import DEFAULT_SENDERS, Producer  # noqa: E402
from sqslab.scenario.timeline import Phase  # noqa: E402


def make_client(endpoint_url: str) -> Any:
    return client(endpoint_url, max_pool_connections=20)


def fresh_queue(client: Any) -> str:
    return client.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:10]}")["QueueUrl"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_rate(client: Any, asked: float, duration: float) -> dict[str, Any]:
    """One rate phase; completion times of every send, compared with its due time."""
    url = fresh_queue(client)
    done_at: list[tuple[int, float]] = []

    def on_sent(records: list[dict[str, Any]]) -> None:
        now = time.time()
        done_at.extend((r["seq"], now) for r in records)

    producer = Producer(client, url, on_sent=on_sent)
    result = producer.run_phase(Phase(name=f"r{asked:g}", kind="rate", start=0.0, rate=asked, duration=duration))
    lags = [t - (result.started_at + (seq - 1) / asked) for seq, t in done_at]
    windows = [0] * int(duration)
    for _, t in done_at:
        i = int(t - result.started_at)
        if 0 <= i < len(windows):
            windows[i] += 1
    client.delete_queue(QueueUrl=url)
    return {
        "asked": asked,
        "duration": duration,
        "planned": result.planned,
        "sent": result.sent,
        "failed": result.failed,
        "elapsed": round(result.elapsed, 4),
        "achieved": round(result.rate, 3),
        "error_pct": round((result.rate - asked) / asked * 100, 3),
        "worst_1s_window_pct": round(max(abs(w - asked) / asked * 100 for w in windows), 2) if windows else 0.0,
        "lag_p50_ms": round(percentile(lags, 0.5) * 1000, 2),
        "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 2),
        "lag_max_ms": round(max(lags, default=0.0) * 1000, 2),
    }


def bare_loop(client: Any, count: int, size: int = 256) -> float:
    """msg/s of the plainest possible sender: one thread, ten per SendMessageBatch."""
    url = fresh_queue(client)
    body = json.dumps({"id": str(uuid.uuid4()), "work": 0.5, "seq": 1, "sent_at": time.time(), "phase": "bare"})
    body = body[:-1] + ',"pad":"' + "x" * max(size - len(body) - 9, 0) + '"}'
    entries = [{"Id": str(i), "MessageBody": body} for i in range(10)]
    t0 = time.perf_counter()
    for _ in range(count // 10):
        resp = client.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed")
    rate = (count // 10 * 10) / (time.perf_counter() - t0)
    client.delete_queue(QueueUrl=url)
    return rate


def producer_burst(client: Any, count: int, senders: int = DEFAULT_SENDERS) -> float:
    url = fresh_queue(client)
    result = Producer(client, url, senders=senders).run_phase(Phase(name="burst", kind="burst", start=0.0, count=count))
    assert result.sent == count, result
    client.delete_queue(QueueUrl=url)
    return result.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s rate phases and smaller bursts")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    duration = 5.0 if args.quick else 20.0
    burst_count = 3000 if args.quick else 10000
    rounds = 2 if args.quick else 3
    out: dict[str, Any] = {"cores": os.cpu_count(), "load_before": os.getloadavg(), "quick": args.quick}

    with Emulator() as emu:
        client = make_client(emu.endpoint_url)
        fresh_queue(client)  # warm up client and emulator
        out["rate"] = [bench_rate(client, asked, duration) for asked in (10.0, 100.0, 500.0)]

        bare, prod = [], []
        bare_loop(client, 500)
        for _ in range(rounds):  # alternate, so both sides see the same machine
            bare.append(bare_loop(client, burst_count))
            prod.append(producer_burst(client, burst_count))
        out["burst"] = {
            "count": burst_count,
            "rounds": rounds,
            "bare_msg_s": [round(x) for x in bare],
            "producer_msg_s": [round(x) for x in prod],
            "ratio_median": round(statistics.median(p / b for p, b in zip(prod, bare)), 3),
        }
        if not args.quick:
            out["senders"] = {n: round(producer_burst(client, burst_count, senders=n)) for n in (1, 2, 4, 8)}
    out["load_after"] = os.getloadavg()

    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"cores: {out['cores']}, load average before/after: "
          f"{out['load_before'][0]:.2f} / {out['load_after'][0]:.2f} (emulator and producer share them)")
    print()
    print(f"rate phases of {duration:g} s (goal: achieved within 2 % of asked)")
    print(f"{'asked':>7} {'sent/planned':>13} {'achieved':>9} {'error':>8} {'worst 1s':>9} {'lag p50':>8} {'p99':>8} {'max':>8}")
    for r in out["rate"]:
        print(
            f"{r['asked']:>7g} {r['sent']:>6}/{r['planned']:<6} {r['achieved']:>9.2f} {r['error_pct']:>7.2f}% "
            f"{r['worst_1s_window_pct']:>8.1f}% {r['lag_p50_ms']:>6.1f}ms {r['lag_p99_ms']:>6.1f}ms {r['lag_max_ms']:>6.1f}ms"
        )
    b = out["burst"]
    print()
    print(f"burst of {b['count']} x 256 B, {b['rounds']} alternating rounds (goal: producer >= 0.9 x bare loop)")
    print(f"  bare boto3 loop: {b['bare_msg_s']} msg/s")
    print(f"  Producer burst:  {b['producer_msg_s']} msg/s  ({DEFAULT_SENDERS} sender threads)")
    print(f"  ratio (median):  {b['ratio_median']:.2f}x")
    if "senders" in out:
        print("  by sender threads: " + ", ".join(f"{n}: {v} msg/s" for n, v in out["senders"].items()))


if __name__ == "__main__":
    main()
