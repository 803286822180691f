"""The action scheduler: each action waits for its trigger and runs, bounded in time.

Every action has a thread of its own that waits for its trigger (`at`, `after`, `when`)
and then runs the action's function in a worker thread, for at most the action's
`timeout`. An action that raises, or takes longer, fails: the run stops and exits 3,
unless the action says `continue_on_error`. An action whose worker is still busy when
the run ends is recorded as "still running" (Python cannot stop a thread; the action
context refuses target calls once the run has ended, so it can do no more harm).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from sqslab.scenario.schema import DEFAULT_ACTION_TIMEOUT
from sqslab.targets import Endpoints, Target, TargetError
from sqslab.truth.expectations import LIVE_METRICS, parse_condition

if TYPE_CHECKING:
    from sqslab.consumers import Consumer
    from sqslab.plugins import PluginHost
    from sqslab.run.recorder import Recorder
    from sqslab.scenario.model import ActionSpec, Scenario


class Interrupted(Exception):
    """The run was stopped (Ctrl-C, SIGTERM, a failed action) while waiting."""


class _GuardedTarget:
    """The target as actions see it: every call is refused once the run has ended, so an
    action still running then cannot touch a torn-down target."""

    def __init__(self, target: Target, ended: threading.Event) -> None:
        self._target, self._ended = target, ended

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute
        ended = self._ended

        def call(*args: Any, **kwargs: Any) -> Any:
            if ended.is_set():
                raise TargetError(f"the run has ended: {name} is no longer allowed")
            return attribute(*args, **kwargs)

        return call


class ActionContext:
    """What an action function gets: the target, the queues, a seeded random generator,
    the run's latest sample, and ways to wait that end when the run is stopped or the
    action's own time is up."""

    def __init__(self, scheduler: ActionScheduler, spec: ActionSpec) -> None:
        self._scheduler = scheduler
        self.spec = spec
        self.scenario: Scenario = scheduler.scenario
        self.target = cast(Target, _GuardedTarget(scheduler.target, scheduler.ended))
        self.sqs: Any = scheduler.sqs
        self.queue_url: str = scheduler.endpoints.queue_url
        self.dlq_url: str | None = scheduler.endpoints.dlq_url
        self.rng = random.Random(f"{scheduler.scenario.seed}-{spec.index}")
        self.timeout: float = spec.timeout if spec.timeout is not None else DEFAULT_ACTION_TIMEOUT
        self.cancelled = threading.Event()  # set when the action's time is up or the run stops
        self._deadline = time.monotonic() + self.timeout

    def remaining(self) -> float:
        """Seconds left of the action's timeout."""
        return max(0.0, self._deadline - time.monotonic())

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise Interrupted as soon as the run is stopped or the time is up."""
        end = time.monotonic() + seconds
        stop = self._scheduler.stop
        while not (stop.is_set() or self.cancelled.is_set()):
            left = end - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, 0.05))
        raise Interrupted()

    def wait_until(self, condition: str, timeout: float | None = None) -> float:
        """Wait until a condition on live metrics holds; seconds waited. TimeoutError after
        `timeout` (default: what is left of the action's own)."""
        parsed = parse_condition(condition, LIVE_METRICS)
        limit = self.remaining() if timeout is None else timeout
        start = time.monotonic()
        while not parsed.holds(self.latest()):
            if time.monotonic() - start > limit:
                raise TimeoutError(f"'{condition}' did not hold within {limit:g}s (last: {parsed.measured(self.latest(), LIVE_METRICS)})")
            self.sleep(0.1)
        return time.monotonic() - start

    def latest(self) -> dict[str, Any]:
        """The most recent sample of live metrics."""
        return dict(self._scheduler.latest())

    def revise_consumer(self, changes: dict[str, Any]) -> Consumer:
        """The run's consumer revised by these `set_consumer` parameters; it becomes the current one."""
        return self._scheduler.revise_consumer(changes)

    def emit(self, event: dict[str, Any]) -> None:
        """Record an event in the run's events.jsonl."""
        self._scheduler.recorder.emit({"source": "action", "action": self.spec.name, **event})


class ActionScheduler:
    """Runs a scenario's actions on the run's clock; see the module docstring."""

    def __init__(self, scenario: Scenario, host: PluginHost, recorder: Recorder, target: Target, sqs: Any,
                 endpoints: Endpoints, latest: Callable[[], dict[str, Any]], stop: threading.Event,
                 phase_ends: Callable[[str], float | None]) -> None:
        self.scenario, self.host, self.recorder = scenario, host, recorder
        self.target, self.sqs, self.endpoints = target, sqs, endpoints
        self.latest = latest
        self.stop = stop  # set: the run is stopping (a failure, Ctrl-C, the end)
        self.ended = threading.Event()  # set: the run is over; actions may not touch the target
        self._phase_ends = phase_ends
        self._lock = threading.RLock()
        self.consumer = scenario.consumer  # its current revision (set_consumer)
        self.done = {a.name: threading.Event() for a in scenario.actions}
        self.records: dict[str, dict[str, Any]] = {
            a.name: {"name": a.name, "do": a.do, "trigger": a.trigger, "params": a.params, "status": "not fired"}
            for a in scenario.actions
        }
        self._when = {a.name: threading.Event() for a in scenario.actions if a.when is not None}
        self._settled = threading.Event()
        self._closing = threading.Event()  # the run is ending: stop waiting for busy workers
        self._threads: list[threading.Thread] = []
        self._workers: dict[str, threading.Thread] = {}
        self.errors: list[str] = []
        self.last_action = ""

    # ------------------------------------------------------------ lifecycle

    def start(self, phase_done: dict[str, threading.Event]) -> None:
        """Start every action's thread; phase_done holds an event per load phase."""
        self._phase_done = phase_done
        for spec in self.scenario.actions:
            thread = threading.Thread(target=self._action_thread, args=(spec,), name=f"sqslab-action-{spec.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def on_sample(self, sample: dict[str, Any]) -> None:
        """Fire the `when` actions whose condition holds in this sample."""
        for spec in self.scenario.actions:
            event = self._when.get(spec.name)
            if event is not None and not event.is_set() and spec.when is not None and spec.when.holds(sample):
                event.set()

    def settle(self) -> None:
        """Settling is over: `when` actions that have not fired never will."""
        self._settled.set()

    def close(self, timeout: float = 5.0) -> None:
        """End the run for the actions: wake every waiting thread, join them (bounded), and
        record any action whose worker is still busy as "still running"."""
        self._settled.set()
        self.stop.set()
        self._closing.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.ended.set()
        with self._lock:
            for name, worker in self._workers.items():
                record = self.records[name]
                if worker.is_alive() and record["status"] in ("running", "timed out"):
                    record["still_running"] = True
                    if record["status"] == "running":
                        record["status"] = "still running"
                        self.recorder.emit({"source": "action", "event": "action_still_running", "action": name, "do": record["do"]})

    def alive(self) -> list[str]:
        """Names of the scheduler's threads still alive (none after a clean close)."""
        return [t.name for t in self._threads + list(self._workers.values()) if t.is_alive()]

    def busy(self) -> bool:
        """An action is running, or is about to (its `after` is done and it has not fired)."""
        for spec in self.scenario.actions:
            status = self.records[spec.name]["status"]
            if status == "running":
                return True
            if status == "not fired" and spec.after in self.done and self.done[spec.after].is_set() and \
                    self.records.get(spec.after, {}).get("status", "done") == "done":
                return True
        return False

    def failed(self) -> int:
        """How many actions failed (raised or timed out)."""
        return sum(1 for r in self.records.values() if r["status"] in ("failed", "timed out"))

    def revise_consumer(self, changes: dict[str, Any]) -> Consumer:
        """The current consumer with a `set_consumer`'s parameters applied."""
        with self._lock:
            self.consumer = self.consumer.revised(changes)
            return self.consumer

    # ------------------------------------------------------------ one action

    def _action_thread(self, spec: ActionSpec) -> None:
        try:
            planned = self._wait_for_trigger(spec)
            if planned is not None:
                self._run(spec, planned)
        finally:
            self.done[spec.name].set()

    def _wait_for_trigger(self, spec: ActionSpec) -> float | None:
        """Block until the action's trigger; its planned time (seconds from t0), or None if stopped."""
        if spec.at is not None:
            planned = spec.at
        elif spec.after is not None:
            done = self.done.get(spec.after) or self._phase_done[spec.after]
            while not done.wait(0.05):
                if self.stop.is_set():
                    return None
            base = self.records.get(spec.after, {}).get("ended")
            if base is None:
                base = self._phase_ends(spec.after)
            if base is None:
                base = self.recorder.since_t0()
            planned = base + spec.after_offset
        else:
            # A `when` may fire until settling is over, even after the load was stopped.
            fired = self._when[spec.name]
            while not fired.wait(0.05):
                if self._settled.is_set():
                    return None
            return self.recorder.since_t0()
        delay = self.recorder.t0 + planned - time.monotonic()
        if delay > 0 and self.stop.wait(delay):
            return None
        return None if self.stop.is_set() else planned

    def _run(self, spec: ActionSpec, planned: float) -> None:
        action = self.host.actions[spec.do]
        record = self.records[spec.name]
        started = self.recorder.since_t0()
        ctx = ActionContext(self, spec)
        record.update({"planned": planned, "started": started, "late_by": started - planned, "status": "running", "timeout": ctx.timeout})
        self.last_action = f"{spec.name} ({spec.do})"
        self.recorder.emit({"source": "action", "event": "action_started", "action": spec.name, "do": spec.do, "params": spec.params,
                            "planned": round(planned, 4), "late_by": round(started - planned, 4)})
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = action.function(ctx, dict(spec.params))
            except BaseException as exc:  # noqa: BLE001 - handed back to the action's thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"sqslab-action-{spec.name}-run", daemon=True)
        with self._lock:
            self._workers[spec.name] = worker
        worker.start()
        deadline = time.monotonic() + ctx.timeout
        while worker.is_alive() and time.monotonic() < deadline and not self.ended.is_set() and not self._closing.is_set():
            worker.join(0.05)
        if worker.is_alive() and self._closing.is_set():
            ctx.cancelled.set()
            return  # the run is over: close() records it as still running
        if worker.is_alive():
            ctx.cancelled.set()
            self._fail(spec, record, f"did not finish within its timeout of {ctx.timeout:g}s", "timed out")
            return
        error = outcome.get("error")
        if isinstance(error, Interrupted):
            record["status"] = "interrupted"
        elif error is not None:
            self._fail(spec, record, str(error) or type(error).__name__, "failed")
        else:
            record.update({"status": "done", "result": outcome.get("result"), "ended": self.recorder.since_t0()})
            self.recorder.emit({"source": "action", "event": "action_done", "action": spec.name, "do": spec.do,
                                "result": outcome.get("result")})

    def _fail(self, spec: ActionSpec, record: dict[str, Any], message: str, status: str) -> None:
        record.update({"status": status, "error": message, "ended": self.recorder.since_t0()})
        self.recorder.emit({"source": "action", "event": "action_failed", "action": spec.name, "do": spec.do, "error": message})
        if not spec.continue_on_error:
            with self._lock:
                self.errors.append(f"action {spec.name} ({spec.do}) failed: {message}")
            self.stop.set()
