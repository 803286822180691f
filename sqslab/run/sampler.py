"""The sampler: every `sample_interval`, queue depths, tasks and counts, on the run's clock.

Each sample goes to metrics.jsonl and to `on_sample` (the runner fires `when` actions
from it and shows live progress). Consumer events are collected on the same beat, so a
sample's counts include what the consumers said up to it. The drain clock (when the
queue last became empty after the load) is kept here, fed by samples and by settling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqslab.run.recorder import Recorder
from sqslab.targets import Endpoints, Target, TargetError, queue_counts


class Drain:
    """When the queue last became empty (visible + in flight + delayed = 0) after the
    producer finished: drain time is measured from the end of the load to then."""

    def __init__(self) -> None:
        self.producer_end: float | None = None  # monotonic
        self.drained_at: float | None = None  # monotonic

    def note(self, depths: dict[str, Any], now: float) -> None:
        """Take a reading of the queue's depths at monotonic time `now`. A reading taken
        before the load ended (a sample that began just before) says nothing of the drain:
        it was a negative drain time."""
        if self.producer_end is None or now < self.producer_end:
            return
        if depths["queue.visible"] + depths["queue.in_flight"] + depths["queue.delayed"] == 0:
            if self.drained_at is None:
                self.drained_at = now
        else:
            self.drained_at = None

    def drain_time(self) -> float | None:
        """Seconds from the end of the load to the empty queue, or None (not drained)."""
        if self.drained_at is None or self.producer_end is None:
            return None
        return self.drained_at - self.producer_end


class Sampler:
    """Samples the run in its own thread until stopped."""

    def __init__(self, recorder: Recorder, target: Target, sqs: Any, endpoints: Endpoints, interval: float,
                 on_sample: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._recorder, self._target, self._sqs, self._endpoints = recorder, target, sqs, endpoints
        self._interval = interval
        self._on_sample = on_sample
        self._stop = threading.Event()
        self._collect_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.drain = Drain()
        self.latest: dict[str, Any] = {}
        self.max_running = 0
        self.max_oldest_age = 0.0  # the oldest an unfinished message got, over the samples
        self.phase: str | None = None  # the load phase running now, for progress

    def start(self) -> None:
        """Sample from now, every interval on t0's beat."""
        self._thread = threading.Thread(target=self._loop, name="sqslab-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop sampling and wait (bounded) for the thread; False if it is still alive."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _loop(self) -> None:
        tick = 0
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001 - one failed sample is recorded; the next may work
                self._recorder.emit({"event": "sample_error", "error": f"{type(exc).__name__}: {exc}"})
            tick += 1
            delay = self._recorder.t0 + tick * self._interval - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break

    def depths(self) -> dict[str, Any]:
        """Queue visible / in flight / delayed and DLQ depth now: the target's exact view
        where it has one (the embedded emulator), else SQS's approximate counts."""
        urls = [self._endpoints.queue_url] + ([self._endpoints.dlq_url] if self._endpoints.dlq_url else [])
        states = self._target.queue_states(urls)
        if states is not None:
            counts = [(state.visible, state.in_flight, state.delayed) for state in states]
        else:
            counts = [queue_counts(self._sqs, url) for url in urls]
        (visible, in_flight, delayed), dlq = counts[0], counts[1:]
        depths = {"queue.visible": visible, "queue.in_flight": in_flight, "queue.delayed": delayed, "dlq.messages": 0}
        if dlq:
            depths["dlq.messages"] = sum(dlq[0])
        return depths

    def collect(self) -> list[dict[str, Any]]:
        """Take the consumer events the target has now into the record (one caller at a time)."""
        with self._collect_lock:
            events = self._target.consumer_events()
            self._recorder.take_consumer_events(events)
            return events

    def wait_started(self, count: int, timeout: float, check: Callable[[], None], how: str, logs: Path) -> None:
        """Wait until `count` consumer tasks said `started` (calling check on every look);
        TargetError after timeout seconds, naming `how` a task gets ready and its logs."""
        ready: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(ready) < count:
            check()
            if time.monotonic() > deadline:
                raise TargetError(f"only {len(ready)} of {count} consumer tasks started within {timeout:g}s{how}; "
                                  f"see the task logs in {logs}")
            ready.update(str(e.get("task")) for e in self.collect() if e.get("event") == "started")
            time.sleep(0.05)

    def sample(self) -> dict[str, Any]:
        """Take one sample: queue depths, tasks, counts; hand it to on_sample."""
        now = time.monotonic()
        sample: dict[str, Any] = {"t": round(now - self._recorder.t0, 3), "ts": time.time()}
        try:
            depths = self.depths()
            sample.update(depths)
            self.drain.note(depths, now)
        except Exception as exc:  # noqa: BLE001 - the queue read failed; the rest of the sample stands
            self._recorder.emit({"event": "sample_error", "error": f"{type(exc).__name__}: {exc}"})
        self.collect()
        tasks = self._target.tasks()
        self.max_running = max(self.max_running, tasks.running)
        sample.update({
            "elapsed": sample["t"],
            "tasks.running": tasks.running,
            "tasks.desired": tasks.desired,
            **self._recorder.counters(),
            "queue.oldest_age": self._recorder.oldest_age(),
            "phase": self.phase,
        })
        self.max_oldest_age = max(self.max_oldest_age, sample["queue.oldest_age"])
        self._recorder.write_sample(sample)
        self.latest = sample
        if self._on_sample is not None:
            self._on_sample(sample)
        return sample
