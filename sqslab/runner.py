"""The runner: one scenario, one run, from provisioning to verdict, always cleaned up.

From t0, side by side on one clock: the producer runs the load phases, each action waits
for its trigger (`at`, `after`, `when`) in its own thread, and the sampler records queue
depths, tasks and counts every interval. When the load and the timed actions are done,
the run settles until the queue is drained (or the timeout), the consumers are stopped,
the queues are audited, and the ledger gives every message id its fate. Expectations
over the figures decide the exit code. Teardown runs whatever happened.
"""

from __future__ import annotations

import platform
import random
import signal
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from sqslab import __version__
from sqslab.backends import Endpoints, TargetError, queue_counts
from sqslab.expectations import LIVE_METRICS, parse_condition
from sqslab.ledger import Audit, build_ledger
from sqslab.rundir import SUMMARY_FORMAT_VERSION, JsonLines, new_run_dir, write_json
from sqslab.scenario import ActionSpec, Knobs, Scenario

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 3, 130
SETTLE_POLL = 0.25
STOP_GRACE = 10.0


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C, SIGTERM) while waiting."""


@dataclass
class RunOptions:
    """How to run: where, into which directory, and what to show."""

    target: str = "local"
    target_options: dict[str, Any] = field(default_factory=dict)
    runs_dir: Path = Path("runs")
    out: Path | None = None
    on_progress: Callable[[dict[str, Any]], None] | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None  # the target's events (e.g. terraform lines)
    handle_signals: bool = True


@dataclass
class RunResult:
    """What a run ended with."""

    exit_code: int
    run_dir: Path
    summary: dict[str, Any]


class ActionContext:
    """What an action function gets: the target, the queues, a seeded random generator,
    and ways to wait that end early when the run is stopped."""

    def __init__(self, runner: Runner, spec: ActionSpec) -> None:
        self._runner = runner
        self.spec = spec
        self.scenario = runner.scenario
        self.target = runner.target
        self.sqs = runner.sqs
        self.queue_url = runner.endpoints.queue_url
        self.dlq_url = runner.endpoints.dlq_url
        self.rng = random.Random(f"{runner.scenario.seed}-{spec.index}")

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise Interrupted as soon as the run is stopped."""
        if self._runner.stop.wait(seconds):
            raise Interrupted()

    def wait_until(self, condition: str, timeout: float) -> float:
        """Wait until a condition on live metrics holds; seconds waited. TimeoutError after timeout."""
        parsed = parse_condition(condition, LIVE_METRICS)
        start = time.monotonic()
        while not parsed.holds(self.latest()):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"'{condition}' did not hold within {timeout:g}s (last: {parsed.measured(self.latest(), LIVE_METRICS)})")
            self.sleep(0.1)
        return time.monotonic() - start

    def latest(self) -> dict[str, Any]:
        """The most recent sample of live metrics."""
        return dict(self._runner.latest)

    def update_knobs(self, changes: dict[str, Any]) -> Knobs:
        """The run's consumer knobs with these changes; they become the current knobs."""
        with self._runner.lock:
            self._runner.knobs = self._runner.knobs.updated(changes)
            return self._runner.knobs

    def emit(self, event: dict[str, Any]) -> None:
        """Record an event in the run's events.jsonl."""
        self._runner.emit({"source": "action", "action": self.spec.name, **event})


class Runner:
    """Runs one scenario on one target; see run_scenario."""

    def __init__(self, scenario: Scenario, host: Any, options: RunOptions) -> None:
        self.scenario, self.host, self.options = scenario, host, options
        self.stop = threading.Event()  # stop the load and the actions
        self.interrupted = threading.Event()
        self.lock = threading.RLock()
        self.knobs = scenario.knobs
        self.latest: dict[str, Any] = {}
        self.t0 = 0.0  # monotonic
        self.t0_wall = 0.0
        self.counters = {"sent": 0, "processed": 0, "failed": 0}
        self.all_events: list[dict[str, Any]] = []
        self.phase_results: list[dict[str, Any]] = []
        self.current_phase: str | None = None
        self.done: dict[str, threading.Event] = {}
        self.action_records: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.last_action = ""
        self.max_running = 0
        self.target: Any = None
        self.sqs: Any = None
        self.endpoints: Endpoints = Endpoints("", None, None, scenario.infra.region)
        self.settled = threading.Event()  # settling is over: the sampler and `when` actions stop
        self.when_fired: dict[str, threading.Event] = {}
        self._finished: set[str] = set()  # ids processed, or failed on their last receive
        self._unfinished: deque[dict[str, Any]] = deque()  # sent events, oldest first
        self._scanned = 0  # how far all_events has been scanned for sent events
        self.producer_end: float | None = None  # monotonic time the last phase ended
        self.drained_at: float | None = None  # when the queue last became empty after that

    # ------------------------------------------------------------ events

    def emit(self, event: dict[str, Any]) -> None:
        """Record an event (runner, producer, target or action) with its time."""
        now = time.time()
        record = {"ts": now, "t": round(now - self.t0_wall, 4) if self.t0_wall else None, "source": "runner", **event}
        with self.lock:
            self.all_events.append(record)
        self.events.write(record)

    def _target_log(self, event: dict[str, Any]) -> None:
        self.emit({"source": "target", **event})
        if self.options.on_event:
            self.options.on_event(event)

    # ------------------------------------------------------------ the run

    def run(self) -> RunResult:
        scenario, options = self.scenario, self.options
        run_dir = options.out or new_run_dir(options.runs_dir, scenario.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        (run_dir / "scenario.yaml").write_text(yaml.safe_dump(scenario.data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        write_json(run_dir / "resolved.json", resolved_dict(scenario))
        self.events = JsonLines(run_dir / "events.jsonl")
        self.metrics = JsonLines(run_dir / "metrics.jsonl")
        started_at = time.time()
        status, exit_code, summary = "error", EXIT_ERROR, {}
        restore = self._install_signal_handlers()
        try:
            try:
                self._provision()
                self._drive()
                figures, ledger_data, drained = self._finish()
                summary = self._summary(started_at, figures, ledger_data, drained)
                exit_code = summary["exit_code"]
                status = summary["status"]
            except Interrupted:
                status, exit_code = "interrupted", EXIT_INTERRUPTED
            except TargetError as exc:
                self.errors.append(str(exc))
                self.emit({"event": "error", "error": str(exc)})
            except Exception as exc:  # an internal error still ends in a readable run directory
                self.errors.append(f"internal error: {type(exc).__name__}: {exc}")
                self.emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
                import traceback

                (run_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
            if self.interrupted.is_set():
                status, exit_code = "interrupted", EXIT_INTERRUPTED
        finally:
            self.stop.set()
            try:
                if self.target is not None:
                    self.target.teardown()
            except Exception as exc:
                self.errors.append(f"teardown: {exc}")
                if exit_code == EXIT_PASSED:
                    status, exit_code = "error", EXIT_ERROR
            if not summary or status != summary.get("status"):
                summary = {**self._partial_summary(started_at), **summary, "status": status, "exit_code": exit_code, "errors": self.errors}
            summary["ended_at"] = time.time()
            write_json(run_dir / "summary.json", summary)
            self.emit({"event": "run_ended", "status": status, "exit_code": exit_code})
            self.events.close()
            self.metrics.close()
            restore()
        return RunResult(exit_code, run_dir, summary)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: Any) -> None:
            self.interrupted.set()
            self.stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]

    def _check_interrupt(self) -> None:
        if self.interrupted.is_set():
            raise Interrupted()

    def _provision(self) -> None:
        target_spec = self.host.targets.get(self.options.target)
        if target_spec is None:
            raise TargetError(f"unknown target {self.options.target!r}; known: {', '.join(sorted(self.host.targets))}")
        self.target = target_spec.factory(log=self._target_log, **self.options.target_options)
        self.emit({"event": "provisioning", "target": self.options.target})
        self.endpoints = self.target.provision(self.scenario, self.run_dir)
        self._check_interrupt()
        self.sqs = self.target.sqs_client()
        self.emit({"event": "provisioned", "queue_url": self.endpoints.queue_url, "dlq_url": self.endpoints.dlq_url})
        self.target.start_consumers(self.scenario.infra.consumers, self.knobs)
        self._wait_for_consumers(self.scenario.infra.consumers)

    def _wait_for_consumers(self, count: int, timeout: float = 60.0) -> None:
        """Wait until the first tasks are polling, so t0 is the start of the load on a
        running service (as a service already in place would be)."""
        ready: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(ready) < count:
            self._check_interrupt()
            if time.monotonic() > deadline:
                raise TargetError(f"only {len(ready)} of {count} consumer tasks started within {timeout:g}s; see the task logs in {self.run_dir / 'tasks'}")
            for event in self._collect_consumer_events():
                if event.get("event") == "started":
                    ready.add(event.get("task"))
            time.sleep(0.05)

    def _drive(self) -> None:
        """From t0: producer, actions and sampler side by side, until the load is done."""
        from sqslab.producer import Producer

        scenario = self.scenario
        for phase in scenario.phases:
            self.done[phase.name] = threading.Event()
        for action in scenario.actions:
            self.done[action.name] = threading.Event()
        self.when_fired = {a.name: threading.Event() for a in scenario.actions if a.when is not None}
        self.t0, self.t0_wall = time.monotonic(), time.time()
        self.emit({"event": "run_started", "t0": self.t0_wall, "scenario": scenario.name, "target": self.options.target})
        producer = Producer(self.sqs, self.endpoints.queue_url, seed=scenario.seed, on_sent=self._on_sent, on_failed=self._on_send_failed)
        self.load_done = threading.Event()
        threads = [threading.Thread(target=self._sample_loop, name="sqslab-sampler", daemon=True),
                   threading.Thread(target=self._produce, args=(producer,), name="sqslab-producer", daemon=True)]
        threads += [threading.Thread(target=self._action_thread, args=(a,), name=f"sqslab-action-{a.name}", daemon=True) for a in scenario.actions]
        self.threads = threads
        for thread in threads:
            thread.start()
        awaited = awaited_actions(scenario)
        waits = [self.load_done] + [self.done[name] for name in awaited]
        for event in waits:
            while not event.wait(0.1):
                self._check_interrupt()
                if self.stop.is_set() and not self.interrupted.is_set():
                    break  # a failed action stopped the load
        self._check_interrupt()
        self.load_end = time.monotonic()
        self.emit({"event": "load_ended"})

    def _produce(self, producer: Any) -> None:
        try:
            for phase in self.scenario.phases:
                if self.stop.is_set():
                    break
                self.current_phase = phase.name
                self.emit({"event": "phase_started", "phase": phase.name, "kind": phase.kind, "planned": phase.planned_messages()})
                result = producer.run_phase(phase, self.stop)
                data = result.as_dict()
                data.update({"start": result.started_at - self.t0_wall, "end": result.ended_at - self.t0_wall})
                self.phase_results.append(data)
                self.emit({"event": "phase_ended", **data})
                self.done[phase.name].set()
        except Exception as exc:
            self.errors.append(f"producer: {type(exc).__name__}: {exc}")
            self.emit({"event": "error", "error": f"producer: {exc}"})
            self.stop.set()
        finally:
            self.current_phase = None
            self.producer_end = time.monotonic()
            self.load_done.set()

    def _on_sent(self, records: list[dict[str, Any]]) -> None:
        now = time.time()
        events = [{"ts": now, "t": round(now - self.t0_wall, 4), "source": "producer", "event": "sent", **r} for r in records]
        with self.lock:
            self.all_events.extend(events)
            self.counters["sent"] += len(records)
        self.events.write_many(events)

    def _on_send_failed(self, records: list[dict[str, Any]]) -> None:
        self.emit({"source": "producer", "event": "send_failed", "count": len(records), "errors": [r.get("error") for r in records[:5]]})

    def _action_thread(self, spec: ActionSpec) -> None:
        record = {"name": spec.name, "do": spec.do, "trigger": spec.trigger, "params": spec.params, "status": "not fired"}
        self.action_records[spec.name] = record
        try:
            planned = self._wait_for_trigger(spec)
            if planned is None:
                return
            self._run_action(spec, record, planned)
        finally:
            self.done[spec.name].set()

    def _wait_for_trigger(self, spec: ActionSpec) -> float | None:
        """Block until the action's trigger; its planned time (seconds from t0), or None if stopped."""
        if spec.at is not None:
            planned = spec.at
        elif spec.after is not None:
            while not self.done[spec.after].wait(0.05):
                if self.stop.is_set():
                    return None
            base = self.action_records.get(spec.after, {}).get("ended")
            if base is None:
                base = next((p["end"] for p in self.phase_results if p["phase"] == spec.after), time.monotonic() - self.t0)
            planned = base + spec.after_offset
        else:
            while not self.when_fired[spec.name].wait(0.05):
                if self.stop.is_set() and (self.interrupted.is_set() or self.settled.is_set()):
                    return None
            return time.monotonic() - self.t0
        delay = self.t0 + planned - time.monotonic()
        if delay > 0 and self.stop.wait(delay):
            return None
        if self.stop.is_set():
            return None
        return planned

    def _run_action(self, spec: ActionSpec, record: dict[str, Any], planned: float) -> None:
        action = self.host.actions[spec.do]
        started = time.monotonic() - self.t0
        record.update({"planned": planned, "started": started, "late_by": started - planned, "status": "running"})
        self.last_action = f"{spec.name} ({spec.do})"
        self.emit({"source": "action", "event": "action_started", "action": spec.name, "do": spec.do, "params": spec.params,
                   "planned": round(planned, 4), "late_by": round(started - planned, 4)})
        try:
            result = action.function(ActionContext(self, spec), dict(spec.params))
        except Interrupted:
            record["status"] = "interrupted"
            return
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            record.update({"status": "failed", "error": message, "ended": time.monotonic() - self.t0})
            self.emit({"source": "action", "event": "action_failed", "action": spec.name, "do": spec.do, "error": message})
            if not spec.continue_on_error:
                self.errors.append(f"action {spec.name} ({spec.do}) failed: {message}")
                self.stop.set()
            return
        record.update({"status": "done", "result": result, "ended": time.monotonic() - self.t0})
        self.emit({"source": "action", "event": "action_done", "action": spec.name, "do": spec.do, "result": result})

    # ------------------------------------------------------------ sampling

    def _sample_loop(self) -> None:
        interval = self.scenario.sample_interval
        tick = 0
        while not self.settled.is_set():
            self._sample()
            tick += 1
            delay = self.t0 + tick * interval - time.monotonic()
            if delay > 0 and self.settled.wait(delay):
                break

    def _sample(self) -> dict[str, Any]:
        """Take one sample: queue depths, tasks, counts; fire `when` actions whose condition holds."""
        now = time.monotonic()
        sample: dict[str, Any] = {"t": round(now - self.t0, 3), "ts": time.time()}
        try:
            sample.update(self._queue_depths())
            self._note_depth(sample, now)
        except Exception as exc:
            self.emit({"event": "sample_error", "error": f"{type(exc).__name__}: {exc}"})
        self._collect_consumer_events()
        tasks = self.target.tasks()
        self.max_running = max(self.max_running, tasks.running)
        with self.lock:
            sample.update({
                "elapsed": sample["t"],
                "tasks.running": tasks.running,
                "tasks.desired": tasks.desired,
                "sent": self.counters["sent"],
                "processed": self.counters["processed"],
                "failed": self.counters["failed"],
                "queue.oldest_age": self._oldest_age(),
                "phase": self.current_phase,
            })
        self.metrics.write(sample)
        self.latest = sample
        for spec in self.scenario.actions:
            if spec.when is not None and not self.when_fired[spec.name].is_set() and spec.when.holds(sample):
                self.when_fired[spec.name].set()
        if self.options.on_progress:
            self.options.on_progress({**sample, "last_action": self.last_action})
        return sample

    def _queue_depths(self) -> dict[str, Any]:
        visible, in_flight, delayed = queue_counts(self.sqs, self.endpoints.queue_url)
        depths = {"queue.visible": visible, "queue.in_flight": in_flight, "queue.delayed": delayed, "dlq.messages": 0}
        if self.endpoints.dlq_url:
            dlq_visible, dlq_in_flight, _ = queue_counts(self.sqs, self.endpoints.dlq_url)
            depths["dlq.messages"] = dlq_visible + dlq_in_flight
        return depths

    def _note_depth(self, depths: dict[str, Any], now: float) -> None:
        """Track when the queue last became empty after the producer finished (drain time)."""
        if self.producer_end is None:
            return
        if depths["queue.visible"] + depths["queue.in_flight"] + depths["queue.delayed"] == 0:
            if self.drained_at is None:
                self.drained_at = now
        else:
            self.drained_at = None

    def _collect_consumer_events(self) -> list[dict[str, Any]]:
        events = self.target.consumer_events()
        if not events:
            return events
        for event in events:
            event["t"] = round(event.get("ts", 0) - self.t0_wall, 4) if self.t0_wall else None
        with self.lock:
            self.all_events.extend(events)
            for event in events:
                kind = event.get("event")
                if kind == "processed":
                    self.counters["processed"] += 1
                    self._finished.add(event.get("id"))
                elif kind == "failed":
                    self.counters["failed"] += 1
                    if int(event.get("receive_count") or 0) >= self.scenario.infra.max_receive_count and self.scenario.infra.dlq_enabled:
                        self._finished.add(event.get("id"))  # its next receive moves it to the DLQ
        self.events.write_many(events)
        return events

    def _oldest_age(self) -> float:
        """Age of the oldest message sent and not yet finished (processed, or failed its last
        receive before the DLQ): a target-independent view of ApproximateAgeOfOldestMessage."""
        events, unfinished = self.all_events, self._unfinished
        while self._scanned < len(events):
            event = events[self._scanned]
            self._scanned += 1
            if event.get("event") == "sent":
                unfinished.append(event)
        while unfinished and unfinished[0]["id"] in self._finished:
            unfinished.popleft()
        return round(time.time() - unfinished[0]["sent_at"], 3) if unfinished else 0.0

    # ------------------------------------------------------------ settle, audit, ledger

    def _finish(self) -> tuple[dict[str, Any], dict[str, Any], bool]:
        scenario = self.scenario
        drained_at = self._settle()
        self._finish_started_actions(self.load_end + scenario.settle_timeout)
        self.settled.set()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        self.target.stop_consumers(grace=STOP_GRACE)
        self._collect_consumer_events()
        self._check_interrupt()
        audit = self._audit()
        with self.lock:
            events = list(self.all_events)
        ledger = build_ledger(events, audit)
        figures = dict(ledger.figures)
        load_end_rel = self.load_end - self.t0
        tasks = self.target.tasks()
        figures.update({
            "drain_time": (drained_at - self.producer_end) if drained_at is not None and self.producer_end else None,
            "duration": time.monotonic() - self.t0,
            "tasks.started": tasks.started,
            "tasks.max_running": self.max_running,
            "actions.failed": sum(1 for r in self.action_records.values() if r.get("status") == "failed"),
        })
        self.emit({"event": "ledger", "counts": ledger.counts, "load_end": load_end_rel})
        return figures, ledger.as_dict(), drained_at is not None

    def _finish_started_actions(self, deadline: float) -> None:
        """Let actions that a `when` started (and those after them) finish, until the deadline."""
        def busy() -> bool:
            for spec in self.scenario.actions:
                status = self.action_records.get(spec.name, {}).get("status")
                if status == "running":
                    return True
                if status == "not fired" and spec.after in self.done and self.done[spec.after].is_set() and \
                        self.action_records.get(spec.after, {}).get("status", "done") == "done":
                    return True
            return False

        while busy() and time.monotonic() < deadline:
            self._check_interrupt()
            time.sleep(0.05)

    def _settle(self) -> float | None:
        """Wait until the queue is drained (visible + in flight + delayed = 0) or the timeout."""
        scenario = self.scenario
        deadline = self.load_end + scenario.settle_timeout
        self.emit({"event": "settle_started", "until": scenario.settle_until})
        while True:
            self._check_interrupt()
            try:
                depths = self._queue_depths()
            except Exception as exc:
                raise TargetError(f"cannot read the queue while settling: {exc}") from exc
            self._note_depth(depths, time.monotonic())
            if self.drained_at is not None:
                self.emit({"event": "drained", "drain_time": round(self.drained_at - (self.producer_end or self.load_end), 3)})
                return self.drained_at
            if scenario.settle_until == "none" or time.monotonic() >= deadline:
                self.emit({"event": "settle_timeout" if scenario.settle_until == "drained" else "settle_skipped", "depths": depths})
                return None
            if self.interrupted.wait(SETTLE_POLL):
                raise Interrupted()

    def _audit(self) -> Audit:
        """What the queues hold now that the consumers are stopped: the DLQ's ids, and the
        ids of whatever is still visible in the queue. Messages read are made visible again
        and the redrive policy is put back, so a kept stack (or your own endpoint) is left
        as it was, but for the receive counts."""
        infra = self.scenario.infra
        audit = Audit(at=time.time(), visibility_timeout=infra.visibility_timeout, delay=infra.delay)
        depths = self._queue_depths()
        audit.queue_visible, audit.queue_in_flight, audit.dlq_messages = depths["queue.visible"], depths["queue.in_flight"], depths["dlq.messages"]
        queue_url, dlq_url = self.endpoints.queue_url, self.endpoints.dlq_url
        if dlq_url:
            audit.dlq_ids = read_ids(self.sqs, dlq_url)
        if depths["queue.visible"] > 0:
            # Receiving counts towards maxReceiveCount and could push messages into the
            # DLQ: the redrive policy is off while the queue is read.
            policy = None
            if dlq_url:
                policy = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])["Attributes"].get("RedrivePolicy")
                self.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": ""})
            try:
                audit.queued_ids = read_ids(self.sqs, queue_url)
            finally:
                if policy:
                    self.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": policy})
        self.emit({"event": "audit", "dlq_ids": len(audit.dlq_ids), "queued_ids": len(audit.queued_ids),
                   "queue_visible": audit.queue_visible, "queue_in_flight": audit.queue_in_flight})
        return audit

    # ------------------------------------------------------------ summary

    def _summary(self, started_at: float, figures: dict[str, Any], ledger: dict[str, Any], drained: bool) -> dict[str, Any]:
        expectations = []
        for condition in self.scenario.expect:
            expectations.append({"text": condition.text, "passed": condition.holds(figures), "measured": condition.measured(figures)})
        failed_expectations = [e for e in expectations if not e["passed"]]
        if self.errors:
            status, exit_code = "error", EXIT_ERROR
        elif failed_expectations:
            status, exit_code = "failed", EXIT_FAILED
        else:
            status, exit_code = "passed", EXIT_PASSED
        summary = self._partial_summary(started_at)
        summary.update({
            "status": status,
            "exit_code": exit_code,
            "figures": figures,
            "expectations": expectations,
            "ledger": ledger,
            "settle": {"until": self.scenario.settle_until, "timeout": self.scenario.settle_timeout, "drained": drained,
                       "load_end": round(self.load_end - self.t0, 3)},
        })
        if figures.get("lost"):
            summary["warnings"] = [f"{figures['lost']} message(s) LOST: sent, never processed, not in the DLQ, not in the queue. This is a bug somewhere: see ledger.problems."]
        return summary

    def _partial_summary(self, started_at: float) -> dict[str, Any]:
        import boto3

        versions = {"sqslab": __version__, "python": platform.python_version(), "boto3": boto3.__version__}
        try:
            from importlib.metadata import version

            versions["moto"] = version("moto")
        except Exception:
            pass
        return {
            "format_version": SUMMARY_FORMAT_VERSION,
            "scenario": self.scenario.name,
            "description": self.scenario.description,
            "target": self.options.target,
            "run_dir": str(self.run_dir),
            "started_at": started_at,
            "t0": self.t0_wall or None,
            "phases": self.phase_results,
            "actions": list(self.action_records.values()),
            "errors": self.errors,
            "counters": dict(self.counters),
            "environment": {"versions": versions, "platform": platform.platform(), "target": self.options.target,
                            "endpoint_url": self.endpoints.endpoint_url},
        }


def read_ids(client: Any, queue_url: str, limit: int = 1_000_000) -> set[str]:
    """The payload ids of every message that can be received from a queue now, each read
    once (hidden while reading, then made visible again). Bodies not ours count as `?ID`."""
    import json

    ids: set[str] = set()
    handles: list[str] = []
    empty = 0
    try:
        while empty < 2 and len(ids) < limit:
            response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                empty += 1
                continue
            empty = 0
            for message in messages:
                handles.append(message["ReceiptHandle"])
                try:
                    ids.add(json.loads(message["Body"])["id"])
                except (ValueError, KeyError, TypeError):
                    ids.add(f"?{message['MessageId']}")
    finally:
        for start in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(handles[start:start + 10])]
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return ids


def awaited_actions(scenario: Scenario) -> list[str]:
    """Actions the load waits for: timed ones, and those after a phase or an awaited action.
    Actions rooted in a `when` may fire until the end of settling, but are not waited for."""
    phases = {p.name for p in scenario.phases}
    awaited: list[str] = []
    changed = True
    while changed:
        changed = False
        for action in scenario.actions:
            if action.name in awaited:
                continue
            if action.at is not None or (action.after is not None and (action.after in phases or action.after in awaited)):
                awaited.append(action.name)
                changed = True
    return awaited


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as JSON-able data (conditions as text)."""
    return {
        "name": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "sample_interval": scenario.sample_interval,
        "infra": asdict(scenario.infra),
        "knobs": asdict(scenario.knobs),
        "phases": [asdict(p) for p in scenario.phases],
        "actions": [{**asdict(a), "when": a.when.text if a.when else None} for a in scenario.actions],
        "settle": {"until": scenario.settle_until, "timeout": scenario.settle_timeout},
        "expect": [c.text for c in scenario.expect],
    }


def run_scenario(scenario: Scenario, host: Any, options: RunOptions | None = None) -> RunResult:
    """Run a scenario and return its exit code, run directory and summary."""
    return Runner(scenario, host, options or RunOptions()).run()
