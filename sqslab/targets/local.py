"""The local target: the embedded emulator (or `--endpoint-url`) and consumer processes
supervised the way an ECS service keeps its tasks (sqslab.targets.supervisor).

Consumers are `consumer/consume.py`, the same program the container image runs, with
the dummy credentials of sqslab.credentials and never yours.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqslab.consumers import Consumer, LocalTask, TaskWatch
from sqslab.contracts import ACCESS_KEY_PREFIX
from sqslab.emulator import client as emulator_client
from sqslab.emulator.middleware import OBSERVER_HEADER
from sqslab.hookspecs import hookimpl
from sqslab.rundir import JsonTail
from sqslab.scenario.bodies import MAX_BODY
from sqslab.scenario.settings import queue_attributes
from sqslab.targets import Endpoints, Log, QueueState, Target, TargetError, TargetOption, TaskCounts
from sqslab.targets.supervisor import Supervisor
from sqslab.truth.journal import JOURNAL_FILE

#: The emulator's events in the run directory (sqslab.emulator.lab), read into events.jsonl.
SQS_EVENTS = "sqs-events.jsonl"


OPTIONS = (
    TargetOption("endpoint_url",
                 "Use this SQS-compatible endpoint instead of the embedded emulator (the run's queues there are deleted at the end).",
                 metavar="URL"),
    TargetOption("provision", "Create the queues directly (boto3), or apply the project's Terraform stack to the emulator (terraform).",
                 choices=("boto3", "terraform"), default="boto3"),
)


class LocalTarget(Target):
    """Queues on the embedded emulator (or a given endpoint) and consumer processes."""

    name = "local"

    def __init__(self, log: Log | None = None, endpoint_url: str | None = None, provision: str = "boto3") -> None:
        """log receives the target's events; endpoint_url replaces the embedded emulator;
        provision is "boto3" (create the queues directly) or "terraform" (apply the stack)."""
        self._emit = log or (lambda event: None)
        self._endpoint_url, self._provision_with = endpoint_url, provision or "boto3"
        self._emulator: Any = None
        self._endpoints: Endpoints | None = None
        self._supervisor: Supervisor | None = None
        self._torn_down = False
        self._terraform: Any = None
        self._sqs_events: JsonTail | None = None
        self._consumer: Consumer | None = None  # what the tasks run (sqslab.consumers); set_consumer revises it
        self._watch: TaskWatch | None = None

    def plan(self, scenario: Any) -> list[tuple[str, str]]:
        """Where the queues would be made: nothing beyond the timeline to show."""
        where = self._endpoint_url or "the embedded emulator on 127.0.0.1"
        how = "the project's Terraform stack" if self._provision_with == "terraform" else "boto3"
        what = scenario.consumer.describe()
        return [("local target", (f"queues on {where}, made with {how}; {scenario.infra.consumers} consumer process(es) "
                                 f"at the start, each running {what}\n"))]

    # ------------------------------------------------------------ provisioning

    def provision(self, scenario: Any, run_dir: Path) -> Endpoints:
        """Start the emulator unless an endpoint was given, then create the queue and DLQ."""
        from sqslab.emulator import Emulator, EmulatorError

        endpoint = self._endpoint_url
        # boto3 and the SQS model take a few hundred ms to load: do it while the emulator starts.
        importer = threading.Thread(target=emulator_client, args=("http://127.0.0.1:9",), kwargs={"region": scenario.infra.region},
                                    name="sqslab-boto3-import", daemon=True)
        importer.start()
        if endpoint is not None and not scenario.sqs.exact:
            raise TargetError("the scenario's `sqs` section (behaviour, faults) needs the embedded emulator: "
                              "run without --endpoint-url")
        if endpoint is None:
            try:
                self._sqs_events = JsonTail(run_dir / SQS_EVENTS)
                lab = None if scenario.sqs.exact else scenario.sqs.lab(scenario.seed)
                self._emulator = Emulator(log_path=run_dir / "emulator.log", lab=lab, events_path=run_dir / SQS_EVENTS,
                                          journal_path=run_dir / JOURNAL_FILE).start()
            except EmulatorError as exc:
                raise TargetError(f"the embedded SQS emulator did not start: {exc}") from exc
            endpoint = self._emulator.endpoint_url
        importer.join()
        self._emit({"event": "emulator_started" if self._emulator else "endpoint", "endpoint_url": endpoint})
        region = scenario.infra.region
        if self._provision_with == "terraform":
            queue_url, dlq_url = self._provision_terraform(scenario, run_dir, endpoint)
        else:
            setup = emulator_client(endpoint, region=region, access_key=ACCESS_KEY_PREFIX + "setup")  # `setup` in the journal
            queue_url, dlq_url = create_queues(setup, scenario, run_dir.name)
        effects = table = None
        if scenario.effects_id is not None:
            if self._emulator is None:
                raise TargetError("effects: the effects endpoint is the embedded emulator's; drop --endpoint-url, or the "
                                  "`effects` section")
            effects = f"{endpoint}/_sqslab/effects?id={urllib.parse.quote(scenario.effects_id)}"
            table = effects_table(self._emulator, region, run_dir.name, scenario.effects_id)
        self._endpoints = Endpoints(queue_url, dlq_url, endpoint, region, effects, table)
        consumer = self._consumer = scenario.consumer
        if consumer.needs_emulator and self._emulator is None:
            raise TargetError(consumer.needs_emulator)
        self._watch = consumer.watcher(run_dir / JOURNAL_FILE)
        self._supervisor = Supervisor(run_dir / "tasks", self._task, scenario.infra.restart_delay, self._emit,
                                      stop_timeout=consumer.stop_grace, events=consumer.events,
                                      on_start=self._watch.watch if self._watch is not None else None)
        return self._endpoints

    def _provision_terraform(self, scenario: Any, run_dir: Path, endpoint: str) -> tuple[str, str | None]:
        """Apply the project's Terraform stack to the emulator: what ships is what runs."""
        from sqslab.targets.aws import terraform

        try:
            self._terraform = terraform.Terraform(run_dir / "terraform", endpoint_url=endpoint)
            tfvars = terraform.render_tfvars(terraform.stack_variables(scenario, image_tag="local"))
            outputs = self._terraform.apply(tfvars, on_line=lambda line: self._emit({"event": "terraform", "line": line}))
        except terraform.TerraformError as exc:
            raise TargetError(f"terraform apply on the emulator failed: {exc}") from exc
        return outputs["queue_url"], outputs.get("dlq_url") or None

    def queue_states(self, queue_urls: list[str], messages: bool = False) -> list[QueueState] | None:
        """The embedded emulator's exact state of these queues (its control endpoint); None
        with --endpoint-url, where the queues are read through SQS."""
        from sqslab.emulator import EmulatorError

        if self._emulator is None:
            return None
        names = [url.rstrip("/").rsplit("/", 1)[-1] for url in queue_urls]
        try:
            states = self._emulator.queue_states(names, messages=messages)
        except EmulatorError as exc:
            raise TargetError(str(exc)) from exc
        missing = [name for name in names if states.get(name) is None]
        if missing:
            raise TargetError(f"the emulator has no queue {', '.join(missing)}")
        return [QueueState.of(states[name]) for name in names]

    def sqs_client(self, observer: bool = False) -> Any:
        """A boto3 SQS client for the run's endpoint, with dummy credentials; an observer's
        calls carry the header that exempts them from the emulator's faults."""
        assert self._endpoints is not None, "provision first"
        client = emulator_client(self._endpoints.endpoint_url, region=self._endpoints.region, max_pool_connections=32,
                                 access_key=ACCESS_KEY_PREFIX + "producer")
        if observer:
            client.meta.events.register("before-sign.sqs", _mark_observer)
        return client

    def _task(self, task_id: str) -> LocalTask:
        """How task_id starts: as the current revision of the consumer says."""
        assert self._endpoints is not None and self._consumer is not None
        return self._consumer.local_task(task_id, self._endpoints)

    # ------------------------------------------------------------ the service

    def _service(self) -> Supervisor:
        if self._supervisor is None:
            raise TargetError("the local target has not been provisioned")
        return self._supervisor

    def start_consumers(self, count: int, consumer: Consumer) -> None:
        """Start the service: `count` tasks of this consumer, supervised from now on."""
        self._consumer = consumer
        self._service().start(count)

    def kill(self, count: int, rng: Any) -> list[str]:
        """SIGKILL `count` running tasks chosen at random (seeded); the supervisor replaces them."""
        return self._service().kill(count, rng)

    def scale(self, to: int) -> None:
        """Set the desired count; surplus tasks get SIGTERM (newest first), missing ones start."""
        self._service().scale(to)

    def set_consumer(self, consumer: Consumer) -> None:
        """Roll to a new revision: start tasks of this consumer, then stop the old ones."""
        self._consumer = consumer
        self._service().roll()

    def tune(self, consumer: Consumer) -> None:
        """Write the consumer's live state where its tasks read it (RUN_DIR/tasks/...),
        atomically; tasks started from now on start from it too."""
        live = consumer.live_state()
        if live is None:
            raise TargetError(f"a {consumer.kind} consumer has nothing to change in place")
        self._consumer = consumer
        path = self._service().tasks_dir / live[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".new")
        scratch.write_text(json.dumps(live[1]), encoding="utf-8")
        os.replace(scratch, path)
        self._emit({"event": "consumer_tuned", **live[1]})

    def tasks(self) -> TaskCounts:
        """Tasks running (alive, stopping ones included, like ECS's runningCount) and desired."""
        return self._supervisor.counts() if self._supervisor else TaskCounts(0, 0, 0)

    def consumer_events(self) -> list[dict[str, Any]]:
        """Consumer events written since the last call, each tagged `source: consumer`, and
        the emulator's (what SQS did beyond exactness, faults), tagged `source: sqs`."""
        events = self._supervisor.events() if self._supervisor else []
        if self._watch is not None:
            events += self._watch.poll(events)
        if self._sqs_events is not None:
            sqs = self._sqs_events.read()
            for event in sqs:
                event["source"] = "sqs"
            if sqs:
                events = sorted(events + sqs, key=lambda e: e.get("ts", 0))
        return events

    def sqs_fault(self, rule: dict[str, Any]) -> None:
        """Put an API fault rule in force now, in the emulator (any client sees it)."""
        from sqslab.emulator import EmulatorError

        if self._emulator is None:
            raise TargetError("SQS faults need the embedded emulator (this run uses --endpoint-url)")
        try:
            self._emulator.add_fault(rule)
        except EmulatorError as exc:
            raise TargetError(str(exc)) from exc

    def stop_consumers(self, grace: float = 10.0) -> None:
        """Stop every task: SIGTERM, then SIGKILL after `grace` seconds (the consumer's own
        stop_grace, if it has one); wait for all."""
        if self._supervisor is not None:
            own = self._consumer.stop_grace if self._consumer is not None else None
            self._supervisor.stop_all(own if own is not None else grace)
        if self._emulator is not None and self._emulator.running:
            from sqslab.emulator import EmulatorError

            try:
                self._emulator.flush_journal()  # every consumer call is in the journal before the ledger reads it
            except EmulatorError as exc:
                self._emit({"event": "journal_flush_failed", "error": str(exc)})

    def journal_key(self) -> bytes | None:
        """The embedded emulator's key for the SQS journal's lines (None with --endpoint-url)."""
        return self._emulator.journal_key if self._emulator is not None else None

    def failure(self) -> str | None:
        """The embedded emulator died under the run (what it exited with, its log's tail), or
        the consumer service is failing (Supervisor.failing: it does not stay up, or cannot start)."""
        if self._torn_down:
            return None
        death = self._emulator.death() if self._emulator is not None else None
        return death or (self._supervisor.failing() if self._supervisor is not None else None)

    def teardown(self) -> None:
        """Stop all tasks and the emulator (destroying the Terraform stack first, if any)."""
        if self._torn_down:
            return
        self._torn_down = True
        try:
            self.stop_consumers(grace=2.0)
        finally:
            if self._emulator is None and self._terraform is None and self._endpoints is not None:
                self._delete_queues()  # your own endpoint: leave nothing of this run behind
            if self._terraform is not None:
                try:
                    self._terraform.destroy(on_line=lambda line: self._emit({"event": "terraform", "line": line}))
                except Exception as exc:  # noqa: BLE001 - the emulator goes away next anyway
                    self._emit({"event": "terraform_destroy_failed", "error": str(exc)})
                finally:
                    self._terraform.close()
            if self._emulator is not None:
                self._emulator.stop()
                self._emit({"event": "emulator_stopped"})

    def _delete_queues(self) -> None:
        assert self._endpoints is not None
        client = self.sqs_client()
        for url in (self._endpoints.queue_url, self._endpoints.dlq_url):
            if url:
                try:
                    client.delete_queue(QueueUrl=url)
                    self._emit({"event": "queue_deleted", "queue_url": url})
                except Exception as exc:  # noqa: BLE001 - teardown goes on; the run's result stands
                    self._emit({"event": "queue_delete_failed", "queue_url": url, "error": str(exc)})


def _mark_observer(request: Any, **_: Any) -> None:
    request.headers[OBSERVER_HEADER] = "1"


def create_queues(client: Any, scenario: Any, run_name: str) -> tuple[str, str | None]:
    """Create the DLQ and the queue (with its redrive policy) from the scenario's infra,
    named after the run directory so runs never share a queue, and starting with a letter
    (`sqslab-`), as frameworks that take a queue name want (dramatiq's must)."""
    infra = scenario.infra
    values = asdict(infra)
    # A unique suffix: a user's own endpoint (--endpoint-url) may keep queues between runs.
    base = _queue_name(f"sqslab-{run_name[:53]}-{uuid.uuid4().hex[:6]}")
    suffix = ".fifo" if infra.fifo else ""  # SQS: a FIFO queue's name ends in .fifo (its DLQ's too)
    dlq_url = dlq_arn = None
    if infra.dlq_enabled:
        dlq_url = client.create_queue(QueueName=f"{base}-dlq{suffix}", Attributes=queue_attributes(values, "dlq"))["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = queue_attributes(values, "queue")
    # As the project's Terraform makes them (the aws provider's default): bodies up to 256 KiB,
    # what validate and the producer allow. The emulator's own default is SQS's API one, 1 MiB.
    attributes.setdefault("MaximumMessageSize", str(MAX_BODY))
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(infra.max_receive_count)})
    queue_url = client.create_queue(QueueName=base + suffix, Attributes=attributes)["QueueUrl"]
    return queue_url, dlq_url


def _queue_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in text)
    return cleaned[:70]


@hookimpl
def register_targets(register: Callable[..., None]) -> None:
    """Register the local target."""
    register("local", LocalTarget, description="embedded SQS emulator on 127.0.0.1 and consumer processes supervised like an ECS service",
             options=OPTIONS)


def effects_table(emulator: Any, region: str, run: str, path: str) -> str:
    """The run's DynamoDB effects table in the emulator, keyed by the first name of the
    effects path (a string), and registered so each write to it is an effect."""
    from sqslab.credentials import emulator_session

    name = "sqslab-effects-" + re.sub(r"[^A-Za-z0-9_.-]", "-", run)[:200]
    key = path.split(".", 1)[0]
    dynamodb = emulator_session(region).client("dynamodb", endpoint_url=emulator.endpoint_url)
    dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    emulator.control("effects/table", {"table": name, "id": path})
    return name
