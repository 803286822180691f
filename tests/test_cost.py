"""What a run costs: the emulator counts every call per caller and API (each 64 KiB chunk of a
payload one request, empty receives apart), and sqslab.truth.cost prices SQS, Lambda and ECS
Fargate at the table's on-demand prices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from sqslab.emulator import Emulator
from sqslab.emulator.usage import CHUNK, Usage, billed, message_bytes
from sqslab.truth.cost import FARGATE_MINIMUM_S, PRICES, Bill, TaskClock, cost
from sqslab.truth.ledger import build_ledger
from sqslab.truth.store import Audit


def _client(endpoint: str, key: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key="any")


def test_each_64_kib_chunk_of_a_payload_is_a_request() -> None:
    assert [billed(n) for n in (0, 1, CHUNK, CHUNK + 1, 256 * 1024)] == [1, 1, 1, 2, 4]
    attributes = {"trace": {"DataType": "String", "StringValue": "abc"}, "blob": {"DataType": "Binary", "BinaryValue": b"\0\1"}}
    assert message_bytes("héllo", attributes) == len("héllo".encode()) + len("trace") + 6 + 3 + len("blob") + 6 + 2


def test_usage_counts_calls_billed_requests_and_empty_receives_per_caller() -> None:
    usage = Usage()
    usage.count("task-1", "ReceiveMessage", 0, 0)
    usage.count("task-1", "ReceiveMessage", 100, 1)
    usage.count("producer", "SendMessage", 200 * 1024, 0)
    assert usage.snapshot() == [
        {"by": "producer", "api": "SendMessage", "calls": 1, "billed": 4, "empty": 0},
        {"by": "task-1", "api": "ReceiveMessage", "calls": 2, "billed": 2, "empty": 1},
    ]


@pytest.mark.integration
def test_the_emulator_journals_every_callers_requests(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with Emulator(journal_path=journal) as emu:
        producer, task = _client(emu.endpoint_url, "sqslab-producer"), _client(emu.endpoint_url, "sqslab-task-1")
        queue = producer.create_queue(QueueName="cost")["QueueUrl"]
        producer.send_message(QueueUrl=queue, MessageBody="x" * (100 * 1024))  # 2 chunks
        producer.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": "y" * 40_000} for i in range(3)])
        got = task.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        while len(got) < 4:
            got += task.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        task.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                           for i, m in enumerate(got)])
        assert "Messages" not in task.receive_message(QueueUrl=queue, WaitTimeSeconds=0)  # an empty receive
        emu.flush_journal()
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
    counts = {(row["by"], row["api"]): row for row in [line for line in lines if line["op"] == "requests"][-1]["counts"]}
    assert counts[("producer", "SendMessage")]["billed"] == 2
    assert counts[("producer", "SendMessageBatch")]["billed"] == 2  # 120,000 bytes in one call: 2 chunks
    receives = counts[("task-1", "ReceiveMessage")]
    assert receives["empty"] == 1 and receives["calls"] >= 2
    assert receives["billed"] >= 4  # 220 KB handed out: 4 chunks at least, over however many calls
    assert counts[("task-1", "DeleteMessageBatch")] == {"by": "task-1", "api": "DeleteMessageBatch", "calls": 1, "billed": 1, "empty": 0}


def test_the_ledger_takes_the_last_requests_line_of_the_journal() -> None:
    lines = [{"op": "requests", "by": "lab", "counts": [{"by": "task-1", "api": "ReceiveMessage", "calls": 1, "billed": 1, "empty": 1}]},
             {"op": "requests", "by": "lab", "counts": [{"by": "task-1", "api": "ReceiveMessage", "calls": 5, "billed": 6, "empty": 2},
                                                        {"by": "observer", "api": "GetQueueAttributes", "calls": 9, "billed": 9, "empty": 0}]}]
    ledger = build_ledger([], Audit(at=100.0), sqs_journal=lines)
    assert ledger.requests == {"observer": {"calls": 9, "billed": 9, "empty_receives": 0},
                               "task-1": {"calls": 5, "billed": 6, "empty_receives": 2}}
    assert build_ledger([], Audit(at=100.0), sqs_journal=[]).requests is None  # a journal without counts: unknown, not 0


def _clock(*lives: tuple[str, float, float | None]) -> TaskClock:
    clock = TaskClock()
    for task, start, end in lives:
        clock.take({"source": "target", "event": "task_started", "task": task, "ts": start})
        if end is not None:
            clock.take({"source": "target", "event": "task_exited", "task": task, "ts": end})
    return clock


def test_sqs_requests_of_the_system_are_priced_and_the_labs_own_are_not() -> None:
    requests = {"producer": {"calls": 100, "billed": 100, "empty_receives": 0},
                "task-1": {"calls": 900_000, "billed": 900_000, "empty_receives": 400},
                "observer": {"calls": 5_000, "billed": 5_000, "empty_receives": 0},
                "setup": {"calls": 10, "billed": 10, "empty_receives": 0}}
    figures, section = cost(Bill("us-east-1", fifo=False, compute="lambda"), requests, {"sent": 100}, TaskClock(), 0.0)
    assert figures["cost.sqs.requests"] == 900_100 and figures["cost.sqs.empty_receives"] == 400
    assert figures["cost.sqs.usd"] == pytest.approx(900_100 / 1e6 * 0.40)
    fifo, _ = cost(Bill("us-east-1", fifo=True, compute="lambda"), requests, {"sent": 100}, TaskClock(), 0.0)
    assert fifo["cost.sqs.usd"] == pytest.approx(900_100 / 1e6 * 0.50)
    assert set(section["sqs"]["consumers"]) == {"task-1"} and section["prices_as_of"]


def test_lambda_is_priced_by_invocation_and_gb_second() -> None:
    figures, _ = cost(Bill("eu-west-1", fifo=False, compute="lambda"), {}, {"sent": 1000, "lambda.invocations": 100,
                                                                           "lambda.gb_seconds": 12.5}, TaskClock(), 0.0)
    assert figures["cost.lambda.usd"] == pytest.approx(100 * 0.20 / 1e6 + 12.5 * 0.0000166667)
    assert figures["cost.ecs.usd"] == 0.0  # no tasks: the mapping is Lambda's own
    assert figures["cost.total"] == pytest.approx(figures["cost.lambda.usd"])
    assert figures["cost.per_million"] == pytest.approx(figures["cost.total"] / 1000 * 1e6)


def test_fargate_tasks_are_billed_per_second_with_a_minute_minimum() -> None:
    clock = _clock(("task-1", 0.0, 600.0), ("task-2", 10.0, 20.0), ("task-3", 100.0, None))
    figures, section = cost(Bill("us-east-1", fifo=False, compute="tasks", task_cpu=512, task_memory=1024), {}, {"sent": 0},
                            clock, 400.0)
    seconds = 600.0 + FARGATE_MINIMUM_S + 300.0  # task-3 had not exited: it ran until the end
    prices = PRICES["us-east-1"]
    assert section["ecs"]["billed_seconds"] == seconds
    assert figures["cost.ecs.vcpu_hours"] == pytest.approx(seconds / 3600 * 0.5)
    assert figures["cost.ecs.usd"] == pytest.approx(seconds / 3600 * (0.5 * prices["fargate_vcpu_hour"] + 1 * prices["fargate_gb_hour"]))
    assert figures["cost.per_million"] is None  # nothing sent: no cost per message


def test_without_the_journal_the_sqs_part_and_the_total_are_unknown_not_zero() -> None:
    figures, section = cost(Bill("ap-south-1", fifo=False, compute="tasks"), None, {"sent": 10}, _clock(("t", 0.0, 1.0)), 1.0)
    assert figures["cost.sqs.requests"] is None and figures["cost.sqs.usd"] is None
    assert figures["cost.total"] is None and figures["cost.per_million"] is None
    assert figures["cost.ecs.usd"] > 0
    assert section["prices_region"] == "us-east-1"  # no prices for ap-south-1 in the table: said, not hidden


SWEEP = """
version: 1
name: cost-polling
infra: {consumers: 2}
consumer: {work_time: 5ms}
load:
  - {name: a, rate: 20/s, duration: 2s}
  - {pause: 3s}
settle: {until: drained, timeout: 20s}
expect:
  - lost == 0
  - cost.per_million < $1000
"""


@pytest.mark.integration
def test_a_sweep_compares_what_short_and_long_polling_cost(tmp_path: Path) -> None:
    import subprocess
    import sys

    scenario = tmp_path / "s.yaml"
    scenario.write_text(SWEEP)
    out = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "-m", "sqslab", "sweep", "-q", str(scenario), "--set", "consumer.wait_time=0s,20s",
                           "--out", str(out)], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    short, long = (json.loads(next(out.glob(f"0{i}-*")).joinpath("summary.json").read_text()) for i in (1, 2))
    for summary in (short, long):
        figures = summary["figures"]
        sqs = summary["cost"]["sqs"]
        told = sqs["producer"]["billed"] + sum(row["billed"] for row in sqs["consumers"].values())
        assert figures["cost.sqs.requests"] == told >= 3 * 40  # a send, a receive and a delete for each message at least
        assert summary["cost"]["ecs"]["tasks"] == 2 and figures["cost.ecs.usd"] > 0
        assert figures["cost.total"] == pytest.approx(figures["cost.sqs.usd"] + figures["cost.ecs.usd"])
        assert figures["cost.per_million"] == pytest.approx(figures["cost.total"] / 40 * 1e6)
    # 2 tasks short-polling for ~5 s make thousands of empty receives; long polls make almost none.
    assert short["figures"]["cost.sqs.empty_receives"] > 20 * max(1, long["figures"]["cost.sqs.empty_receives"])
    assert short["figures"]["cost.sqs.requests"] > 5 * long["figures"]["cost.sqs.requests"]
    report = subprocess.run([sys.executable, "-m", "sqslab", "report", str(out)], capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and "cost.sqs.empty receives" in report.stdout and "cost.per million" in report.stdout
    text = subprocess.run([sys.executable, "-m", "sqslab", "report", str(next(out.glob("01-*")))], capture_output=True, text=True,
                          timeout=60).stdout
    assert "cost: $" in text and "empty receives" in text and "on-demand prices of" in text
