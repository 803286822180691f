"""How the emulator departs from exactness on demand: SQS's documented behaviour
(at-least-once delivery, best-effort order, sampled short polls, lagging counts, stale
receipts...) and API faults, with the events that tell of each one.

The emulator child holds one ``Lab`` (``current()``), set from its command line and
changed through its control endpoint (a timed `sqs_fault` action). The patched SQS
methods (sqs_backend.py, sqs_queue.py) ask it what to do; the WSGI middleware
(middleware.py) asks its fault plan about each call. With the `exact` profile and no
faults every question is one attribute read, and the emulator is what it always was.

Nothing here imports moto. The behaviour settings, each profile's values (``PROFILES``)
and their checks are rows of the settings table (sqslab.scenario.settings), stated once there;
``lab_config()`` is the one builder of the configuration the child starts from.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from sqslab.consumer.sqsfaults import FaultPlan
from sqslab.emulator.journal import Journal
from sqslab.emulator.usage import Usage
from sqslab.scenario.settings import PROFILES as PROFILES  # re-exported: sqslab.emulator.lab.PROFILES
from sqslab.scenario.settings import behavior_rows, resolve_behavior

#: How far a reordering receive looks past the oldest ready message (times its batch size).
REORDER_WINDOW = 2
#: The most (caller, API) pairs whose first call the journal notes.
MAX_CALLERS = 100_000
#: The least time between two points of a queue's count history, for `count_lag` (seconds).
COUNT_HISTORY_STEP = 0.1


class Behavior:
    """The behaviour settings in force: one attribute per `sqs` behaviour setting of the
    settings table (sqslab.scenario.settings: its rows give the names, each profile's values and the
    checks); ``Behavior()`` is the exact profile. ValueError for a bad value."""

    def __init__(self, **values: Any) -> None:
        # Plain instance attributes, so each question the patched methods ask is one attribute read.
        self.__dict__.update(resolve_behavior("exact", values))

    @classmethod
    def resolve(cls, behavior: str = "exact", **overrides: Any) -> Behavior:
        """A profile with some settings overridden (None: the profile's value)."""
        return cls(**resolve_behavior(behavior, overrides))

    def __getattr__(self, name: str) -> Any:
        # Reached only for a name that is no setting (the settings are instance attributes).
        raise AttributeError(f"no sqs behaviour setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Behavior does not change: make another (Behavior.resolve)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Behavior) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Behavior({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"

    def as_dict(self) -> dict[str, Any]:
        """The settings in table order, for the command line and the control endpoint."""
        return {s.name: self.__dict__[s.name] for s in behavior_rows()}


def lab_config(behavior: str = "exact", settings: Mapping[str, Any] | None = None, faults: Iterable[dict[str, Any]] = (),
               seed: int | None = None) -> dict[str, Any]:
    """The emulator's lab configuration, as ``Emulator(lab=...)`` and ``python -m
    sqslab.emulator --lab`` take it: the `behavior` profile and the behaviour settings
    (resolved) that override it, the fault rules (sqslab.consumer.sqsfaults) and the seed of
    the draws. The one place it is built: a scenario's `sqs` section and `sqslab emulator`'s
    options both come here. ValueError for a bad setting, here rather than in the child."""
    given = dict(settings or {})
    resolve_behavior(behavior, given)
    return {"behavior": {"behavior": behavior, **given}, "faults": list(faults), "seed": seed}


def from_config(config: Mapping[str, Any], events_path: str | None = None, journal_path: str | None = None) -> Lab:
    """The lab a lab configuration (lab_config) describes; ValueError or TypeError for a bad one."""
    return Lab(Behavior.resolve(**config.get("behavior", {})), config.get("faults"), config.get("seed"), events_path, journal_path)


class Lab:
    """The emulator's behaviour, fault plan, seeded draws and event sink."""

    def __init__(self, behavior: Behavior | None = None, faults: list[dict[str, Any]] | None = None, seed: Any = None,
                 events_path: str | None = None, journal_path: str | None = None) -> None:
        self.behavior = behavior or Behavior()
        self.faults = FaultPlan(faults, seed=seed)
        self.seed = seed
        self._rng = random.Random(f"sqs-behavior:{seed}") if seed is not None else random.Random()
        self._rng_lock = threading.Lock()
        self._fd = os.open(events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if events_path else None
        self._history: dict[str, deque[tuple[float, dict[str, int]]]] = {}
        self.journal = Journal(journal_path)
        self._callers: set[tuple[str, str]] = set()
        #: Calls, billed requests and empty receives per caller and API (usage.py).
        self.usage = Usage()
        #: Who makes the SQS call this thread serves (set by the middleware per request).
        self.calls = threading.local()
        #: DynamoDB tables whose writes are effects, and the path of the message id in an item
        #: (registered by the control endpoint's `effects/table`; sqslab.truth.effects).
        self.effects_tables: dict[str, str] = {}
        #: Where a message's JSON body names its sqslab id when it has no `sqslab-id` attribute
        #: (a producer program's): the scenario's effects.id, set with its effects table.
        self.id_path = "id"

    # ----- draws

    def chance(self, rate: float) -> bool:
        """A seeded draw: True with probability rate."""
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle items in place with the seeded generator."""
        with self._rng_lock:
            self._rng.shuffle(items)

    def uniform(self, low: float, high: float) -> float:
        """A seeded draw from low..high."""
        with self._rng_lock:
            return self._rng.uniform(low, high)

    # ----- events

    def emit(self, event: str, **fields: Any) -> None:
        """Append one event (a JSON line) to the event file, if there is one. One write
        per line, unbuffered: nothing is lost when the child is stopped."""
        if self._fd is None:
            return
        record = {"ts": round(time.time(), 6), "event": event, **fields}
        try:
            os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        except OSError:
            pass  # a full disk: the runner notices its own writes failing and names it

    def behavior_event(self, kind: str, api: str, **fields: Any) -> None:
        """A departure from exactness SQS made (a duplicate, a stale receipt...)."""
        self.emit("sqs_behavior", kind=kind, api=api, **fields)

    def ignores_stale(self, api: str, queue: str, message_id: str) -> bool:
        """A call with a receipt handle that is not the message's latest: the event, and
        whether (stale_receipt `ignore`) the call succeeds without acting."""
        ignored = self.behavior.stale_receipt == "ignore"
        self.behavior_event("stale_receipt", api, queue=queue, message_id=message_id, acted=not ignored)
        return ignored

    # ----- counts that lag

    def lagged_counts(self, queue_name: str, counts: dict[str, int]) -> dict[str, int]:
        """The counts as GetQueueAttributes reports them: with `count_lag`, a value the
        queue had at a random moment within the lag (from a history sampled every
        COUNT_HISTORY_STEP seconds), else the truth."""
        lag = self.behavior.count_lag
        if lag <= 0:
            return counts
        now = time.monotonic()
        history = self._history.setdefault(queue_name, deque(maxlen=max(2, int(lag / COUNT_HISTORY_STEP) + 2)))
        if not history or now - history[-1][0] >= COUNT_HISTORY_STEP:
            history.append((now, dict(counts)))
        wanted = now - self.uniform(0.0, lag)
        for at, seen in history:
            if at >= wanted:
                if seen != counts:
                    self.behavior_event("count_lag", "GetQueueAttributes", queue=queue_name, lag=round(now - at, 3))
                return seen
        return counts

    def caller(self) -> str:
        """Who makes the call this thread serves: a task id, `producer`, `observer`..."""
        return getattr(self.calls, "by", None) or "?"

    def first_call(self, by: str, api: str) -> None:
        """Journal the first call of each API by each caller (`first_call`: when a task
        began to poll, say). At most MAX_CALLERS pairs are remembered."""
        key = (by, api)
        if self.journal.fd is None or key in self._callers or len(self._callers) >= MAX_CALLERS:
            return
        self._callers.add(key)
        self.record("first_call", api=api)

    def begin_call(self, by: str) -> None:
        """A call begins on this thread, made by `by`: nothing moved yet."""
        calls = self.calls
        calls.by, calls.payload, calls.received = by, 0, 0

    def moved(self, size: int, received: int = 0) -> None:
        """This thread's call moved a message of `size` bytes (sent it, or handed it out)."""
        calls = self.calls
        calls.payload = getattr(calls, "payload", 0) + size
        calls.received = getattr(calls, "received", 0) + received

    def end_call(self, api: str) -> None:
        """This thread's call was answered: counted in `usage`."""
        calls = self.calls
        self.usage.count(getattr(calls, "by", None) or "?", api, getattr(calls, "payload", 0), getattr(calls, "received", 0))

    def write_usage(self) -> None:
        """The usage so far, as the journal's `requests` line (cumulative: the last one counts)."""
        if self.journal.fd is not None:
            self.journal.write("requests", "lab", {"counts": self.usage.snapshot()})

    def record(self, op: str, **fields: Any) -> None:
        """One line of the SQS journal, attributed to the caller of this thread's call."""
        if self.journal.fd is not None:
            if op == "receive" and getattr(self.calls, "dropped", False):
                fields = {**fields, "lost": True}  # a timeout fault: the answer never reached the caller
            self.journal.write(op, self.caller(), fields)

    def close(self) -> None:
        """Close the event file and the journal."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.write_usage()
        self.journal.close()


_current = Lab()


def current() -> Lab:
    """The lab in force in this process."""
    return _current


def configure(lab: Lab) -> None:
    """Put a lab in force (the emulator child, at start)."""
    global _current
    _current = lab
