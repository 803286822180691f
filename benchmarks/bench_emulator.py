"""Stock moto 5.2.1 against sqslab's patched emulator, same workloads, one run.

    python benchmarks/bench_emulator.py [--quick] [--json PATH] [--fifo | --behavior | --journal]

(--fifo: FIFO queues against a standard queue; --behavior: `sqs.behavior: aws` against
exact; --journal: the SQS journal written (as every local run does) against none; all
sqslab only.)

Four workloads, each against a fresh emulator child per implementation:

* batch send at a backlog: fill the queue to BACKLOG messages, then time SendMessageBatch
  of SEND more from one client;
* end to end: one producer process sends N messages while 5 consumer processes
  receive (long poll, 10 at a time) and DeleteMessageBatch them; timed until the
  queue is empty;
* drain: fill the queue with N messages, then time 5 consumer processes emptying it;
* concurrent deletes: put N messages in flight (600 s visibility timeout), then 5
  processes of 4 threads DeleteMessageBatch their share at once, with the child's GIL
  time slice at 100 us (as tests/test_emulator.py runs its concurrency tests) so thread
  races show up at hundreds of messages. Stock moto reports every delete as a success
  and still loses some (its Queue.delete_message rewrites the message list unlocked):
  they stay in flight, and would come back when the visibility timeout ends.

Stock moto is O(n) per send and O(n) per received message, so some stock workloads
would run for many minutes: each stock phase stops at a time cap and its rate is
taken over what it finished (marked with *). That flatters stock (a smaller backlog is
faster for it), so the ratios are lower bounds.

Duplicates are extra receives of a message id; lost are ids sent that were neither
processed nor still in the queue at the end; undeleted are messages whose delete
succeeded but which are still in flight afterwards (a lost delete). In the concurrent
deletes workload the rate is deletes per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqslab.emulator import Emulator, client
from sqslab.emulator.server import SWITCH_INTERVAL_ENV
from sqslab.targets import queue_counts
from sqslab.truth.ledger import percentile

FORK = multiprocessing.get_context("fork")
CONSUMERS = 5
#: The concurrent-delete workload: processes, threads per process.
DELETERS, DELETE_THREADS = 5, 4
#: Its child's GIL time slice, seconds (default 0.005), as in tests/test_emulator.py.
AMPLIFIED_SWITCH_INTERVAL = "0.0001"


@dataclass
class Result:
    """One workload against one implementation."""

    name: str
    impl: str
    messages: int = 0  # messages the rate is over
    seconds: float = 0.0
    capped: bool = False
    duplicates: int = 0
    lost: int = 0
    undeleted: int = 0
    note: str = ""
    p50_ms: float = 0.0  # per DeleteMessageBatch call (a long-poll receive's time is mostly waiting for messages)
    p99_ms: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class Sizes:
    """Workload sizes and per-phase time caps."""

    backlog: int
    send: int
    e2e: int
    drain: int
    cap_s: float
    fill_cap_s: float
    deletes: int = 300  # messages in flight for the concurrent-delete workload
    extra: dict[str, Any] = field(default_factory=dict)


def _client(endpoint: str) -> Any:
    return client(endpoint)


def _send(sqs: Any, url: str, first: int, count: int, deadline: float = float("inf"), groups: int | None = None) -> int:
    """Send ids first..first+count-1 in batches of 10 (to a FIFO queue, round robin over
    `groups` message groups); return how many were sent before deadline."""
    sent = 0
    while sent < count and time.monotonic() < deadline:
        n = min(10, count - sent)
        entries = [{"Id": str(i), "MessageBody": json.dumps({"id": first + sent + i})} for i in range(n)]
        if groups:
            for entry, ident in zip(entries, range(first + sent, first + sent + n), strict=True):
                entry.update(MessageGroupId=f"g-{ident % groups}", MessageDeduplicationId=str(ident))
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"send failed: {resp['Failed']}")
        sent += n
    return sent


def _producer(endpoint: str, url: str, n: int, go: Any, stop: Any, sent_out: Any) -> None:
    sqs = _client(endpoint)
    go.wait()
    sent = 0
    while sent < n and not stop.is_set():
        sent += _send(sqs, url, sent, min(100, n - sent))
    sent_out.value = sent


def _consumer(endpoint: str, url: str, go: Any, stop: Any, out: Any, deletes: Any = None) -> None:
    sqs = _client(endpoint)
    received: list[int] = []
    deleted: list[int] = []
    latencies: list[float] = []  # seconds per DeleteMessageBatch (a receive's time is mostly its long poll waiting)
    delete_failures = 0
    go.wait()
    while not stop.is_set():
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            continue
        ids = [json.loads(m["Body"])["id"] for m in msgs]
        received += ids
        t0 = time.perf_counter()
        resp = sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )
        latencies.append(time.perf_counter() - t0)
        failed = {int(f["Id"]) for f in resp.get("Failed", [])}
        delete_failures += len(failed)
        deleted += [mid for i, mid in enumerate(ids) if i not in failed]
        if deletes is not None:
            with deletes.get_lock():
                deletes.value += len(ids) - len(failed)
    out.put({"received": received, "deleted": deleted, "delete_failures": delete_failures, "latencies": latencies})


def _collect(stop: Any, out: Any, procs: list[Any]) -> tuple[list[int], set[int], list[float]]:
    """Stop the consumer processes and gather (every id received, the ids deleted, the
    consumers' call latencies, sorted)."""
    stop.set()
    reports = [out.get(timeout=120) for _ in range(CONSUMERS)]
    for p in procs:
        p.join(timeout=60)
    latencies = sorted(x for r in reports for x in r["latencies"])
    return [i for r in reports for i in r["received"]], {i for r in reports for i in r["deleted"]}, latencies


def _percentile_ms(ordered: list[float], pct: float) -> float:
    """The run's own latency percentile (nearest rank, the ledger's), in ms; 0 for none."""
    return (percentile(ordered, pct) or 0.0) * 1000


def _consume(endpoint: str, url: str, sent_target: int, cap_s: float, name: str, impl: str, producer: bool) -> Result:
    """Run CONSUMERS consumer processes (and a producer of sent_target messages if asked)."""
    go, stop, out = FORK.Event(), FORK.Event(), FORK.Queue()
    sent = FORK.Value("i", 0 if producer else sent_target)
    procs = [FORK.Process(target=_consumer, args=(endpoint, url, go, stop, out)) for _ in range(CONSUMERS)]
    if producer:
        procs.append(FORK.Process(target=_producer, args=(endpoint, url, sent_target, go, stop, sent)))
    for p in procs:
        p.start()
    sqs = _client(endpoint)
    time.sleep(0.5)  # let the children import and connect
    t0 = time.monotonic()
    go.set()
    capped = False
    while True:
        time.sleep(0.25)
        elapsed = time.monotonic() - t0
        if elapsed >= cap_s:
            capped = True
            break
        if producer and procs[-1].is_alive():
            continue
        if sum(queue_counts(sqs, url)) == 0:
            break
    seconds = time.monotonic() - t0
    received, deleted, latencies = _collect(stop, out, procs)
    visible, in_flight, delayed = queue_counts(sqs, url)
    n_sent = sent.value if not producer or not procs[-1].is_alive() else sent_target
    unique_received = set(received)
    return Result(
        name=name,
        impl=impl,
        messages=len(deleted),
        seconds=seconds,
        capped=capped,
        duplicates=len(received) - len(unique_received),
        lost=n_sent - len(deleted) - (visible + in_flight + delayed),
        undeleted=in_flight,
        note=f"{len(deleted):,} of {n_sent:,} processed" if capped else "",
        p50_ms=_percentile_ms(latencies, 50),
        p99_ms=_percentile_ms(latencies, 99),
    )


def bench_send(endpoint: str, impl: str, sizes: Sizes) -> Result:
    """SendMessageBatch rate of one client once the queue holds sizes.backlog messages."""
    sqs = _client(endpoint)
    url = sqs.create_queue(QueueName="bench-send")["QueueUrl"]
    filled = _send(sqs, url, 0, sizes.backlog, time.monotonic() + sizes.fill_cap_s)
    t0 = time.monotonic()
    sent = _send(sqs, url, filled, sizes.send, t0 + sizes.cap_s)
    seconds = time.monotonic() - t0
    note = f"backlog {filled:,}" + ("" if filled == sizes.backlog else " (fill capped)")
    return Result(f"batch send at {sizes.backlog // 1000}k backlog", impl, sent, seconds, sent < sizes.send, note=note)


def bench_end_to_end(endpoint: str, impl: str, sizes: Sizes) -> Result:
    """1 producer process, CONSUMERS consumer processes, sizes.e2e messages."""
    sqs = _client(endpoint)
    url = sqs.create_queue(QueueName="bench-e2e")["QueueUrl"]
    name = f"end to end {sizes.e2e // 1000}k, {CONSUMERS} consumers"
    return _consume(endpoint, url, sizes.e2e, sizes.cap_s, name, impl, producer=True)


def bench_drain(endpoint: str, impl: str, sizes: Sizes) -> Result:
    """CONSUMERS consumer processes emptying a queue filled with sizes.drain messages."""
    sqs = _client(endpoint)
    url = sqs.create_queue(QueueName="bench-drain")["QueueUrl"]
    filled = _send(sqs, url, 0, sizes.drain, time.monotonic() + sizes.fill_cap_s)
    name = f"drain {sizes.drain // 1000}k backlog, {CONSUMERS} consumers"
    result = _consume(endpoint, url, filled, sizes.cap_s, name, impl, producer=False)
    if filled < sizes.drain:
        result.note = f"backlog {filled:,} (fill capped) " + result.note
    return result


def _delete_share(endpoint: str, url: str, handles: list[str], go: Any, out: Any) -> None:
    """DeleteMessageBatch these handles from DELETE_THREADS threads; put the failure count."""
    sqs = _client(endpoint)
    batches = [handles[i : i + 10] for i in range(0, len(handles), 10)]

    def delete(batch: list[str]) -> int:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)]
        return len(sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []))

    go.wait()
    # Several threads per process: the server always has deletes competing for its GIL.
    with ThreadPoolExecutor(DELETE_THREADS) as pool:
        out.put(sum(pool.map(delete, batches)))


def bench_concurrent_deletes(endpoint: str, impl: str, sizes: Sizes) -> Result:
    """sizes.deletes messages in flight, DELETERS processes deleting their share at once.

    Run against an emulator with AMPLIFIED_SWITCH_INTERVAL (see run()). undeleted: the
    messages still in flight although their delete succeeded. Measured on a 2-core
    machine (when this was a test in tests/test_emulator.py), stock moto, 300 messages:
    23 to 57 stayed in six runs; the patched emulator, 2,000 messages: 0 in every run.
    """
    sqs = _client(endpoint)
    url = sqs.create_queue(QueueName="bench-deletes", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    deadline = time.monotonic() + sizes.fill_cap_s  # stock's receive is O(n) per message
    filled = _send(sqs, url, 0, sizes.deletes, deadline)
    handles: list[str] = []
    while len(handles) < filled and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            raise RuntimeError(f"only {len(handles)} of {filled} messages received")
        handles += [m["ReceiptHandle"] for m in got]
    go, out = FORK.Event(), FORK.Queue()
    procs = [
        FORK.Process(target=_delete_share, args=(endpoint, url, handles[k::DELETERS], go, out))
        for k in range(DELETERS)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let the children import and connect
    t0 = time.monotonic()
    go.set()
    failed = sum(out.get(timeout=max(120.0, sizes.cap_s)) for _ in procs)
    seconds = time.monotonic() - t0
    for p in procs:
        p.join(timeout=60)
    visible, in_flight, delayed = queue_counts(sqs, url)
    left = visible + in_flight + delayed  # visible: sent but not received before the fill cap
    succeeded = len(handles) - failed
    notes = []
    if len(handles) < sizes.deletes:
        notes.append(f"{len(handles):,} of {sizes.deletes:,} in flight (fill capped)")
    if failed:
        notes.append(f"{failed:,} deletes failed")
    return Result(
        name=f"concurrent deletes {sizes.deletes:,}, {DELETERS}x{DELETE_THREADS} threads",
        impl=impl,
        messages=succeeded,
        seconds=seconds,
        capped=len(handles) < sizes.deletes,
        lost=max(0, filled - succeeded - left),  # gone without a successful delete
        undeleted=max(0, in_flight - failed),  # deleted, yet still in flight
        note="; ".join(notes),
    )


def bench_fifo_drain(endpoint: str, impl: str, sizes: Sizes, groups: int | None) -> Result:
    """CONSUMERS consumer processes emptying a backlog of sizes.drain messages, from a
    standard queue (groups None: the baseline) or a FIFO queue with that many groups."""
    sqs = _client(endpoint)
    if groups is None:
        url = sqs.create_queue(QueueName="bench-fifo-baseline")["QueueUrl"]
    else:
        url = sqs.create_queue(QueueName=f"bench-fifo-{groups}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    filled = _send(sqs, url, 0, sizes.drain, time.monotonic() + sizes.fill_cap_s, groups=groups)
    name = f"drain {filled // 1000}k, " + ("standard queue" if groups is None else f"FIFO, {groups} group{'s' if groups > 1 else ''}")
    return _consume(endpoint, url, filled, sizes.cap_s, name, impl, producer=False)


def run_fifo(sizes: Sizes) -> list[Result]:
    """The FIFO workloads, each against a fresh patched emulator, the standard queue first."""
    results = []
    for groups in (None, 1, 10, 100):
        with _start(True) as emu:
            result = bench_fifo_drain(emu.endpoint_url, "sqslab", sizes, groups)
        print(f"  {result.name:34} {result.rate:8.1f} msg/s{'*' if result.capped else ''}  dup {result.duplicates} "
              f"lost {result.lost} undeleted {result.undeleted}", file=sys.stderr, flush=True)
        results.append(result)
    base = results[0].rate
    lines = ["| workload | msg/s | x standard queue | duplicates | lost |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.name} | {r.rate:,.1f}{'*' if r.capped else ''} | {r.rate / base:.2f}x | {r.duplicates} | {r.lost} |" for r in results]
    print("\n".join(lines))
    return results


def bench_behavior_drain(behavior: str, sizes: Sizes, journal: bool = False, label: str | None = None) -> Result:
    """CONSUMERS consumer processes emptying a backlog of sizes.drain messages from an
    emulator with `sqs.behavior` set (no faults). Timed until 99 % of the messages were
    deleted, as the consumers count them: under aws the queue's counts lag (count_lag),
    and what receive_loss and duplicates keep back returns only after the visibility
    timeout, which is SQS's behaviour, not a cost of the emulator."""
    lab = None if behavior == "exact" else {"behavior": {"behavior": behavior}, "faults": [], "seed": 1}
    folder = tempfile.TemporaryDirectory()
    journal_path = Path(folder.name) / "sqs_journal.jsonl" if journal else None
    with folder, Emulator(lab=lab, journal_path=journal_path) as emu:
        sqs = _client(emu.endpoint_url)
        url = sqs.create_queue(QueueName=f"bench-behavior-{behavior}")["QueueUrl"]
        n = _send(sqs, url, 0, sizes.drain, time.monotonic() + sizes.fill_cap_s)
        go, stop, out, deletes = FORK.Event(), FORK.Event(), FORK.Queue(), FORK.Value("i", 0)
        procs = [FORK.Process(target=_consumer, args=(emu.endpoint_url, url, go, stop, out, deletes)) for _ in range(CONSUMERS)]
        for p in procs:
            p.start()
        time.sleep(0.5)  # let the children import and connect
        t0 = time.monotonic()
        go.set()
        target = n - n // 100
        while deletes.value < target and time.monotonic() - t0 < sizes.cap_s:
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        done = deletes.value
        received, deleted, _latencies = _collect(stop, out, procs)
    return Result(f"drain {n // 1000}k, {label or behavior}", "sqslab", done, seconds, seconds >= sizes.cap_s,
                  duplicates=len(received) - len(set(received)), lost=n - len(deleted),
                  note=f"{len(deleted):,} of {n:,} deleted when stopped")


def run_pair(sizes: Sizes, baseline: dict[str, Any], other: dict[str, Any], rounds: int = 5) -> tuple[list[Result], float, float]:
    """Two drain set-ups (bench_behavior_drain's arguments, `label` naming each) in turn,
    `rounds` times each (on shared cores one run alone says little); prints a table of
    each round and the medians' ratio; returns the results and the two medians."""
    results: list[Result] = []
    for _ in range(rounds):
        for setup in (baseline, other):
            result = bench_behavior_drain(sizes=sizes, **setup)
            print(f"  {result.name:34} {result.rate:8.1f} msg/s{'*' if result.capped else ''}  dup {result.duplicates} "
                  f"({result.note})", file=sys.stderr, flush=True)
            results.append(result)
    first = sorted(r.rate for r in results[0::2])
    second = sorted(r.rate for r in results[1::2])
    median_first, median_second = first[len(first) // 2], second[len(second) // 2]
    a, b = baseline["label"], other["label"]
    lines = [f"| round | {a} msg/s | {b} msg/s | {b} / {a} |", "| ---: | ---: | ---: | ---: |"]
    for i in range(rounds):
        x, y = results[2 * i], results[2 * i + 1]
        lines.append(f"| {i + 1} | {x.rate:,.1f} | {y.rate:,.1f} | {y.rate / x.rate:.2f}x |")
    lines.append(f"| median | {median_first:,.1f} | {median_second:,.1f} | {median_second / median_first:.2f}x |")
    print("\n".join(lines))
    return results, median_first, median_second


def _start(patched: bool, switch_interval: str | None = None) -> Emulator:
    """A started emulator; switch_interval sets its child's GIL time slice."""
    saved = os.environ.get(SWITCH_INTERVAL_ENV)
    if switch_interval is not None:
        os.environ[SWITCH_INTERVAL_ENV] = switch_interval  # the child inherits the environment
    try:
        return Emulator(patched=patched).start()
    finally:
        if saved is None:
            os.environ.pop(SWITCH_INTERVAL_ENV, None)
        else:
            os.environ[SWITCH_INTERVAL_ENV] = saved


WORKLOADS = (bench_send, bench_end_to_end, bench_drain, bench_concurrent_deletes)


def run(patched: bool, sizes: Sizes) -> list[Result]:
    """All workloads against one fresh emulator per workload."""
    impl = "sqslab" if patched else "stock"
    results = []
    for bench in WORKLOADS:
        switch = AMPLIFIED_SWITCH_INTERVAL if bench is bench_concurrent_deletes else None
        with _start(patched, switch) as emu:
            result = bench(emu.endpoint_url, impl, sizes)
        star = "*" if result.capped else ""
        print(
            f"  {impl:6} {result.name:34} {result.rate:8.1f} msg/s{star}  "
            f"dup {result.duplicates} lost {result.lost} undeleted {result.undeleted}  {result.note}",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


def table(stock: list[Result], ours: list[Result]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| workload | stock moto msg/s | sqslab msg/s | ratio | duplicates (stock / sqslab) | lost (stock / sqslab) | undeleted (stock / sqslab) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s, o in zip(stock, ours):
        star_s = "*" if s.capped else ""
        star_o = "*" if o.capped else ""
        ratio = o.rate / s.rate if s.rate else float("inf")
        lines.append(
            f"| {o.name} | {s.rate:,.1f}{star_s} | {o.rate:,.1f}{star_o} | {ratio:,.1f}x | "
            f"{s.duplicates} / {o.duplicates} | {s.lost} / {o.lost} | {s.undeleted} / {o.undeleted} |"
        )
    notes = [f"{r.impl} {r.name}: {r.note}" for r in stock + ours if r.note]
    if any(r.capped for r in stock + ours):
        lines.append("")
        lines.append("\\* stopped at the time cap; rate over what finished.")
    if notes:
        lines.append("")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table; exit 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads and caps (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", choices=["stock", "sqslab"], help="run one implementation")
    parser.add_argument("--fifo", action="store_true",
                        help="FIFO drain with 1, 10 and 100 groups against a standard queue's, sqslab only")
    parser.add_argument("--behavior", action="store_true",
                        help="drain with sqs.behavior aws (no faults) against exact, 5 rounds each, sqslab only")
    parser.add_argument("--journal", action="store_true",
                        help="drain with the SQS journal written against without, 5 rounds each, sqslab only")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = Sizes(backlog=1000, send=300, e2e=2000, drain=2000, cap_s=20, fill_cap_s=20, deletes=300)
    else:
        sizes = Sizes(backlog=2000, send=1000, e2e=10_000, drain=10_000, cap_s=90, fill_cap_s=60, deletes=600)
    print(f"sizes: {asdict(sizes)}", file=sys.stderr)
    if args.behavior or args.journal:
        if args.behavior:
            pair = ({"behavior": "exact", "label": "exact"}, {"behavior": "aws", "label": "aws"})
        else:
            pair = ({"behavior": "exact", "label": "no journal"}, {"behavior": "exact", "journal": True, "label": "journal"})
        results, baseline, other = run_pair(sizes, *pair)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2))
        if other < 0.9 * baseline:
            print(f"goal missed: {pair[1]['label']} costs more than 10 % of {pair[0]['label']}'s throughput", file=sys.stderr)
            return 1
        return 0
    if args.fifo:
        fifo = run_fifo(sizes)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in fifo], indent=2))
        return 1 if any(r.duplicates or r.lost for r in fifo) else 0
    stock = run(False, sizes) if args.only != "sqslab" else []
    ours = run(True, sizes) if args.only != "stock" else []
    if stock and ours:
        print(table(stock, ours))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in stock + ours], indent=2))
    failures = []
    if ours:
        send, e2e, drain, _deletes = ours  # _deletes: checked with the others below
        if stock and e2e.rate < 3 * stock[1].rate:
            failures.append("end to end < 3x stock")
        if drain.rate < 500:
            failures.append("drain < 500 msg/s")
        if any(r.duplicates or r.lost or r.undeleted for r in ours):
            failures.append("duplicates or lost messages")
    for f in failures:
        print(f"goal missed: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
