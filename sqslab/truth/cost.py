"""What a run would cost on AWS: SQS requests, Lambda requests and GB-seconds, ECS Fargate
task time, at on-demand prices for the scenario's region (PRICES, docs/cost.md).

* SQS: the requests the producer and the consumers made, as the emulator counted them
  (sqslab.emulator.usage: each 64 KiB chunk of a call's payload one request, empty
  receives included), at the standard or FIFO queue's price. The lab's own calls (its
  setup, its readings) are not the system's and are left out. Without the emulator's
  journal (the aws target) the requests are unknown, and so is the total.
* Lambda: one request per invocation and the GB-seconds billed (sqslab.truth.lambda_facts).
* ECS Fargate: each consumer task's life, from its start to its exit, billed per second
  with a minimum of one minute, at the task's vCPU and memory (infra.task.cpu/memory).

No free tier is taken off and no volume discount applied: the figures are what the
traffic of the run costs at the margin, so they scale to a month of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqslab.truth.journal import LAB_CALLERS

#: The date the prices were taken, and where from.
PRICES_AS_OF = "2026-12-02"
PRICE_SOURCES = ("https://aws.amazon.com/sqs/pricing/", "https://aws.amazon.com/lambda/pricing/",
                 "https://aws.amazon.com/fargate/pricing/")
#: On-demand prices in US dollars, per region: SQS per million requests (standard, FIFO),
#: Lambda per million requests and per GB-second (x86), Fargate Linux/x86 per vCPU-hour and GB-hour.
PRICES: dict[str, dict[str, float]] = {
    region: {"sqs_standard": 0.40, "sqs_fifo": 0.50, "lambda_request": 0.20, "lambda_gb_second": 0.0000166667,
             "fargate_vcpu_hour": 0.04048, "fargate_gb_hour": 0.004445}
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1")
}
#: Where PRICES has no row for the scenario's region.
FALLBACK_REGION = "us-east-1"
#: Fargate's least billed time per task.
FARGATE_MINIMUM_S = 60.0
#: Callers that are not the system under test (the lab's setup and readings, SQS's own moves).
NOT_BILLED = (frozenset(LAB_CALLERS) - {"producer"}) | {"lab"}

#: The figures, for the catalogue of figures (sqslab.truth.expectations); money in US dollars.
FIGURES: dict[str, tuple[str, str]] = {
    "cost.sqs.requests": ("number", "SQS requests the producer and the consumers made, each 64 KiB chunk of a payload one"),
    "cost.sqs.empty_receives": ("number", "ReceiveMessage calls that answered no message"),
    "cost.sqs.usd": ("dollars", "the SQS requests' cost, in US dollars"),
    "cost.lambda.usd": ("dollars", "Lambda requests and GB-seconds, in US dollars"),
    "cost.ecs.vcpu_hours": ("number", "consumer tasks' vCPU-hours (each task at least a minute)"),
    "cost.ecs.usd": ("dollars", "consumer tasks' Fargate vCPU and memory time, in US dollars"),
    "cost.total": ("dollars", "the run's cost, in US dollars: SQS + Lambda + ECS"),
    "cost.per_million": ("dollars", "the run's cost per million messages sent, in US dollars"),
}


@dataclass(frozen=True)
class Bill:
    """What the cost depends on besides the run's traffic."""

    region: str
    fifo: bool
    compute: str  # "tasks": ECS Fargate tasks; "lambda": a Lambda function
    task_cpu: int = 256  # CPU units
    task_memory: int = 512  # MiB

    @classmethod
    def of(cls, scenario: Any) -> Bill:
        """A scenario's region, queue type, consumer compute and task size."""
        infra = scenario.infra
        return cls(infra.region, infra.fifo, scenario.consumer.compute, infra.cpu, infra.memory)

    @property
    def prices(self) -> dict[str, float]:
        """The prices of the region (or of FALLBACK_REGION)."""
        return PRICES.get(self.region, PRICES[FALLBACK_REGION])


class TaskClock:
    """Each consumer task's life, from the target's task_started and task_exited events."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def take(self, event: dict[str, Any]) -> None:
        """Count one event (a target's task_started or task_exited; others are ignored)."""
        ts, task, kind = event.get("ts"), event.get("task"), event.get("event")
        if event.get("source") != "target" or not isinstance(task, str) or not isinstance(ts, (int, float)):
            return
        if kind == "task_started":
            self.started.setdefault(task, float(ts))
        elif kind == "task_exited":
            self.ended[task] = float(ts)

    def billed_seconds(self, end: float) -> list[float]:
        """Each task's billed time: its life (to `end` when it never exited), at least a minute."""
        return [max(FARGATE_MINIMUM_S, self.ended.get(task, end) - start) for task, start in self.started.items()]


def _money(value: float) -> float:
    """Dollars to 12 significant digits: no float noise in summary.json, no cent lost on a tiny run."""
    return float(f"{value:.12g}")


def cost(bill: Bill, requests: dict[str, dict[str, int]] | None, figures: dict[str, Any], clock: TaskClock,
         end: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the cost figures FIGURES names, summary.json's `cost` section). `requests`: the
    journal's counts per caller (None: no journal, so SQS's part is unknown); `end`: when
    the run ended (a task that never told its exit ran until then)."""
    prices = bill.prices
    section: dict[str, Any] = {"region": bill.region, "prices_region": bill.region if bill.region in PRICES else FALLBACK_REGION,
                               "prices_as_of": PRICES_AS_OF, "prices": prices, "queue_type": "FIFO" if bill.fifo else "standard",
                               "sqs_price_per_million": prices["sqs_fifo" if bill.fifo else "sqs_standard"]}
    out: dict[str, Any] = dict.fromkeys(FIGURES)
    if requests is not None:
        system = {by: row for by, row in requests.items() if by not in NOT_BILLED}
        billed = sum(row["billed"] for row in system.values())
        out["cost.sqs.requests"] = billed
        out["cost.sqs.empty_receives"] = sum(row["empty_receives"] for row in system.values())
        out["cost.sqs.usd"] = _money(billed / 1e6 * section["sqs_price_per_million"])
        section["sqs"] = {"producer": system.get("producer", {}),
                          "consumers": {by: row for by, row in system.items() if by != "producer"}}
    invocations = int(figures.get("lambda.invocations") or 0)
    gb_seconds = float(figures.get("lambda.gb_seconds") or 0)
    out["cost.lambda.usd"] = _money(invocations / 1e6 * prices["lambda_request"] + gb_seconds * prices["lambda_gb_second"])
    if bill.compute == "tasks":
        seconds = clock.billed_seconds(end)
        hours = sum(seconds) / 3600
        out["cost.ecs.vcpu_hours"] = _money(hours * bill.task_cpu / 1024)
        out["cost.ecs.usd"] = _money(hours * (bill.task_cpu / 1024 * prices["fargate_vcpu_hour"]
                                              + bill.task_memory / 1024 * prices["fargate_gb_hour"]))
        section["ecs"] = {"tasks": len(clock.started), "task_cpu": bill.task_cpu, "task_memory": bill.task_memory,
                          "billed_seconds": round(sum(seconds), 3)}
    else:
        out["cost.ecs.vcpu_hours"], out["cost.ecs.usd"] = 0.0, 0.0
    parts = (out["cost.sqs.usd"], out["cost.lambda.usd"], out["cost.ecs.usd"])
    if None not in parts:
        out["cost.total"] = _money(sum(parts))
        sent = int(figures.get("sent") or 0)
        out["cost.per_million"] = _money(out["cost.total"] / sent * 1e6) if sent else None
    section.update({key[len("cost."):]: value for key, value in out.items()})
    return out, section
