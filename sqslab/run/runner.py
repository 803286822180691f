"""The runner: one scenario, one run, from provisioning to verdict, always cleaned up.

From t0, side by side on one clock: the producer runs the load phases (a thread here),
the action scheduler fires each action on its trigger (sqslab.run.scheduler), and the
sampler records queue depths, tasks and counts every interval (sqslab.run.sampler). When
the load and the timed actions are done, the run settles until the queue is drained,
the consumers are stopped, the queues are audited (sqslab.run.settle), and the ledger gives
every message id its fate. Expectations over the figures decide the exit code
(sqslab.run.summary). On every way out, every thread is stopped and joined (bounded) before
the target is torn down, so nothing touches a torn-down target.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqslab.consumer.sqsfaults import observe
from sqslab.contracts import Exit
from sqslab.run.producer import Producer
from sqslab.run.program_phase import ProgramPhases
from sqslab.run.recorder import Recorder
from sqslab.run.sampler import Sampler
from sqslab.run.scheduler import ActionScheduler, Interrupted
from sqslab.run.settle import audit_queues, settle
from sqslab.run.summary import RunFacts, final_summary, full_summary, send_findings
from sqslab.rundir import claim, disk_message, new_run_dir, write_json
from sqslab.scenario.load import dump_yaml, resolved_dict
from sqslab.scenario.model import Scenario
from sqslab.targets import Endpoints, Target, TargetError
from sqslab.truth import journal
from sqslab.truth.cost import Bill, cost
from sqslab.truth.feed import THREAD_NAME as FEED_THREAD
from sqslab.truth.ledger import ledger_of_run

if TYPE_CHECKING:
    from sqslab.plugins import PluginHost

#: How long stopped consumers get to finish the message in hand before they are killed.
STOP_GRACE = 10.0
#: The longest the runner waits for one of its threads to end once told to.
JOIN_TIMEOUT = 10.0

__all__ = ["Interrupted", "RunOptions", "RunResult", "Runner", "awaited_actions", "run_scenario"]


@dataclass
class RunOptions:
    """How to run: where, into which directory, and what to show."""

    target: str = "local"
    target_options: dict[str, Any] = field(default_factory=dict)
    runs_dir: Path = Path("runs")
    out: Path | None = None
    on_progress: Callable[[dict[str, Any]], None] | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None  # the target's events (notices, terraform lines)
    handle_signals: bool = True


@dataclass
class RunResult:
    """What a run ended with."""

    exit_code: int
    run_dir: Path
    summary: dict[str, Any]


class Runner:
    """Runs one scenario on one target; see run_scenario."""

    def __init__(self, scenario: Scenario, host: PluginHost, options: RunOptions) -> None:
        self.scenario, self.host, self.options = scenario, host, options
        self.stop = threading.Event()  # stop the load and the actions
        self.interrupted = threading.Event()
        self.target: Target | None = None
        self.sqs: Any = None
        self.client: Any = None
        self.endpoints = Endpoints("", None, None, scenario.infra.region)
        self.sampler: Sampler | None = None
        self.scheduler: ActionScheduler | None = None
        self._producer: threading.Thread | None = None
        self._phase_done = {p.name: threading.Event() for p in scenario.phases}
        self._load_done = threading.Event()
        self.load_end = 0.0

    # ------------------------------------------------------------ the run

    def run(self) -> RunResult:
        """Run the scenario; always tears down and writes summary.json. RunDirInUse (and
        nothing else is started) when the run directory holds a run or is in use."""
        self.run_dir = self.options.out or new_run_dir(self.options.runs_dir, self.scenario.name)
        claimed = claim(self.run_dir)
        self.facts = RunFacts(self.scenario, self.options.target, str(self.run_dir), time.time())
        summary: dict[str, Any] = {}
        restore = self._install_signal_handlers()
        try:
            self.recorder = Recorder(self.run_dir, self.scenario.infra.max_receive_count, self.scenario.infra.dlq_enabled)
            summary = self._attempt()
        finally:
            self._shutdown()
            self._teardown()
            summary = self._final_summary(summary)
            write_summary(self.run_dir, self.recorder, summary)
            restore()
            claimed.release()
        return RunResult(summary["exit_code"], self.run_dir, summary)

    def _attempt(self) -> dict[str, Any]:
        """Provision, drive, finish; errors become the run's errors, never an exception."""
        try:
            (self.run_dir / "scenario.yaml").write_text(dump_yaml(self.scenario.data), encoding="utf-8")
            write_json(self.run_dir / "resolved.json", resolved_dict(self.scenario))
            self._provision()
            self._drive()
            summary = self._finish()
            self._check()
            return summary
        except Interrupted:
            pass
        except OSError as exc:  # a full disk, whichever write met it first
            self._error(disk_message(self.run_dir, exc))
        except TargetError as exc:
            self._error(str(exc))
        except Exception as exc:  # noqa: BLE001 - an internal error still ends in a readable run directory
            if not self.run_dir.is_dir():  # deleted under the run: whatever failed next is not the lab's bug
                self._error(disk_message(self.run_dir, FileNotFoundError(2, "No such file or directory")))
                return {}
            self._error(f"internal error: {type(exc).__name__}: {exc}")
            try:
                (self.run_dir / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
            except OSError:
                pass  # the error itself is in the summary, which says where it could not write
        return {}

    def _error(self, message: str) -> None:
        self.facts.errors.append(message)
        self.recorder.emit({"event": "error", "error": message})

    def _final_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        if self.scheduler is not None:
            self.facts.errors[:0] = [e for e in self.scheduler.errors if e not in self.facts.errors]
        self.facts.counters = self.recorder.counters()
        return final_summary(self.facts, summary, self.interrupted.is_set())

    def _install_signal_handlers(self) -> Callable[[], None]:
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        return on_signals(self.interrupted, self.stop)

    def _check(self) -> None:
        """Raise what must end the run now: Ctrl-C (Interrupted), a fault of the target
        itself (the emulator died) or of the run directory (a full disk)."""
        if self.interrupted.is_set():
            raise Interrupted()
        failure = self.target.failure() if self.target is not None else None
        if failure:
            raise TargetError(failure)
        error = self.recorder.write_error()
        if error is not None:
            raise error
        if not self.run_dir.is_dir():
            raise FileNotFoundError(2, "No such file or directory", str(self.run_dir))  # deleted under the run

    def _target_log(self, event: dict[str, Any]) -> None:
        self.recorder.emit({"source": "target", **event})
        if self.options.on_event:
            self.options.on_event(event)

    # ------------------------------------------------------------ provisioning

    def _provision(self) -> None:
        spec = self.host.targets.get(self.options.target)
        if spec is None:
            raise TargetError(f"unknown target {self.options.target!r}; known: {', '.join(sorted(self.host.targets))}")
        target: Target = spec.factory(log=self._target_log, **self.options.target_options)
        self.target = target
        self.recorder.emit({"event": "provisioning", "target": self.options.target})
        self.endpoints = target.provision(self.scenario, self.run_dir)
        self.facts.endpoint_url = self.endpoints.endpoint_url
        self._check()
        self.recorder.feed.start(target.journal_key())
        self.sqs = target.sqs_client(observer=True)  # the lab's own readings: no injected fault hits them
        self.client = target.sqs_client()  # the system's: the producer's and the actions' calls
        observe(self.client, lambda event, **fields: self.recorder.emit({"source": "producer", "event": event, **fields}))
        self.recorder.emit({"event": "provisioned", "queue_url": self.endpoints.queue_url, "dlq_url": self.endpoints.dlq_url})
        self.sampler = Sampler(self.recorder, target, self.sqs, self.endpoints, self.scenario.sample_interval, self._on_sample)
        self.scheduler = ActionScheduler(self.scenario, self.host, self.recorder, target, self.client, self.endpoints,
                                         lambda: self.sampler.latest if self.sampler else {}, self.stop, self._phase_end)
        consumer = self.scenario.consumer
        target.start_consumers(self.scenario.infra.consumers, consumer)
        # t0 is the start of the load on a running service, as a service already in place would be.
        self.sampler.wait_started(self.scenario.infra.consumers, consumer.ready_timeout, self._check,
                                  f" (ready: {consumer.readiness})" if consumer.readiness else "", self.run_dir / "tasks")

    # ------------------------------------------------------------ from t0

    def _drive(self) -> None:
        """From t0: producer, actions and sampler side by side, until the load is done."""
        assert self.sampler is not None and self.scheduler is not None
        self.recorder.start_clock()
        self.facts.t0 = self.recorder.t0_wall
        self.recorder.emit({"event": "run_started", "t0": self.recorder.t0_wall, "scenario": self.scenario.name,
                            "target": self.options.target})
        self._producer = threading.Thread(target=self._produce, name="sqslab-producer", daemon=True)
        self.sampler.start()
        self.scheduler.start(self._phase_done)
        self._producer.start()
        waits = [self._load_done] + [self.scheduler.done[name] for name in awaited_actions(self.scenario)]
        for event in waits:
            while not event.wait(0.1):
                self._check()
                if self.stop.is_set():
                    break  # a failed action stopped the load
            if self.stop.is_set():
                break
        self._check()
        self.load_end = time.monotonic()
        self.recorder.emit({"event": "load_ended"})

    def _produce(self) -> None:
        assert self.sampler is not None
        infra = self.scenario.infra
        producer = Producer(self.client, self.endpoints.queue_url, seed=self.scenario.seed, on_sent=self.recorder.on_sent,
                            on_failed=self.recorder.on_send_failed, fifo=infra.fifo,
                            content_based_deduplication=infra.content_based_deduplication, formats=self.host.formats,
                            programs=ProgramPhases(self.endpoints, self.run_dir, self.run_dir / journal.JOURNAL_FILE))
        try:
            for phase in self.scenario.phases:
                if self.stop.is_set():
                    break
                self.sampler.phase = phase.name
                self.recorder.emit({"event": "phase_started", "phase": phase.name, "kind": phase.kind, "planned": phase.planned_messages()})
                result = producer.run_phase(phase, self.stop)
                data = result.as_dict()
                data.update({"start": result.started_at - self.recorder.t0_wall, "end": result.ended_at - self.recorder.t0_wall})
                self.facts.phases.append(data)
                self.recorder.emit({"event": "phase_ended", **data})
                self._phase_done[phase.name].set()
        except Exception as exc:  # noqa: BLE001 - the producer's failure is the run's error
            self._error(f"producer: {type(exc).__name__}: {exc}")
            self.stop.set()
        finally:
            self.sampler.phase = None
            self.sampler.drain.producer_end = time.monotonic()
            self._load_done.set()

    def _phase_end(self, name: str) -> float | None:
        return next((p["end"] for p in self.facts.phases if p["phase"] == name), None)

    def _on_sample(self, sample: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.on_sample(sample)
        if self.options.on_progress:
            self.options.on_progress({**sample, "last_action": self.scheduler.last_action if self.scheduler else ""})

    # ------------------------------------------------------------ settle, audit, ledger

    def _finish(self) -> dict[str, Any]:
        assert self.target is not None and self.sampler is not None and self.scheduler is not None
        scenario = self.scenario
        deadline = self.load_end + scenario.settle_timeout
        drained = settle(self.sampler, self.recorder, scenario.settle_until, deadline, self.interrupted, self._check)
        self._check()
        while self.scheduler.busy() and time.monotonic() < deadline:  # `when` actions and those after them
            self._check()
            time.sleep(0.05)
        self._shutdown()
        self.target.stop_consumers(grace=STOP_GRACE)
        self.sampler.collect()
        self._check()
        audit = audit_queues(self.target, self.sqs, self.endpoints, self.sampler, self.recorder, scenario.infra.visibility_timeout,
                             scenario.infra.delay, fifo=scenario.infra.fifo)
        audit.t0 = self.recorder.t0_wall
        own = scenario.consumer.own  # sqslab's own consumer, or yours (sqslab.consumers.Consumer.own)
        ledger = ledger_of_run(self.recorder.feed, audit, program=not own, effects_on=scenario.effects_id is not None)
        found, lab_error = journal.findings(ledger.journal, own, self.run_dir / journal.JOURNAL_FILE)
        if lab_error:
            self._error(lab_error)
        figures = {**ledger.figures, "drain_time": self.sampler.drain.drain_time(), "duration": self.recorder.since_t0(),
                   "tasks.started": self.target.tasks().started, "tasks.max_running": self.sampler.max_running,
                   "queue.oldest_age.max": self.sampler.max_oldest_age, "actions.failed": self.scheduler.failed()}
        cost_figures, cost_section = cost(Bill.of(scenario), ledger.requests, figures, ledger.store.tasks, time.time())
        figures.update(cost_figures)
        for about, finding in found + [("producer", f) for f in send_findings(self.facts, figures)]:
            self.facts.findings.append(finding)
            self.recorder.emit({"event": "finding", "about": about, "finding": finding})
        self.recorder.emit({"event": "ledger", "counts": ledger.counts, "load_end": self.load_end - self.recorder.t0})
        self.facts.errors[:0] = [e for e in self.scheduler.errors if e not in self.facts.errors]
        self.facts.counters = self.recorder.counters()
        settled = {"until": scenario.settle_until, "timeout": scenario.settle_timeout, "drained": drained,
                   "load_end": round(self.load_end - self.recorder.t0, 3)}
        return full_summary(self.facts, figures, ledger.as_dict(), settled, cost_section)

    # ------------------------------------------------------------ the way out

    def _shutdown(self) -> None:
        """Stop and join (bounded) every thread of the run: actions, sampler, producer."""
        self.stop.set()
        if self.scheduler is not None:
            self.scheduler.close(timeout=JOIN_TIMEOUT / 2)
            self.facts.actions = list(self.scheduler.records.values())
        if self.sampler is not None:
            self.sampler.stop(timeout=JOIN_TIMEOUT)
        if self._producer is not None:
            self._producer.join(JOIN_TIMEOUT)
        alive = stray_threads()
        if alive:
            self.recorder.emit({"event": "threads_still_alive", "threads": alive})

    def _teardown(self) -> None:
        if self.target is None:
            return
        try:
            self.target.teardown()
        except Exception as exc:  # noqa: BLE001 - a failed teardown is the run's error, and says what is left
            self._error(f"teardown: {exc}")


def write_summary(run_dir: Path, recorder: Recorder, summary: dict[str, Any]) -> None:
    """summary.json (a disk that cannot take it makes the run an error, said in the summary
    returned), then `run_ended` and the recorder closed."""
    try:
        write_json(run_dir / "summary.json", summary)
    except OSError as exc:
        message = disk_message(run_dir, exc)
        if message not in summary["errors"]:
            summary["errors"].append(message)
        summary.update({"status": "error", "exit_code": int(Exit.ERROR), "summary_written": False})
    recorder.emit({"event": "run_ended", "status": summary["status"], "exit_code": summary["exit_code"]})
    recorder.close()


def stray_threads() -> list[str]:
    """sqslab's threads of a run still alive once it has joined them (the supervisor's and
    the actions' end on their own; the ledger's feed goes on through the audit, and ends at
    the ledger or when the recorder closes)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("sqslab-") and t.is_alive()
            and not t.name.startswith(("sqslab-supervisor", "sqslab-action-", FEED_THREAD))]


def on_signals(*events: threading.Event) -> Callable[[], None]:
    """Set every event on SIGINT or SIGTERM (from the main thread); returns what restores
    the previous handlers."""
    def on_signal(signum: int, frame: Any) -> None:
        for event in events:
            event.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


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


def run_scenario(scenario: Scenario, host: PluginHost, options: RunOptions | None = None) -> RunResult:
    """Run a scenario and return its exit code, run directory and summary."""
    return Runner(scenario, host, options or RunOptions()).run()
