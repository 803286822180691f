"""How the emulator departs from exactness on demand: SQS's documented behaviour
(at-least-once delivery, best-effort order, sampled short polls, lagging counts, stale
receipts...) and API faults, with the events that tell of each one.

The emulator child holds one ``Lab`` (``current()``), set from its command line and
changed through its control endpoint (a timed `sqs_fault` action). The patched SQS
methods (sqs_backend.py, sqs_queue.py) ask it what to do; the WSGI middleware
(middleware.py) asks its fault plan about each call. With the `exact` profile and no
faults every question is one attribute read, and the emulator is what it always was.

Nothing here imports moto; ``PROFILES`` is read by sqslab.scenario to resolve a
scenario's `sqs:` section, so a profile is defined once.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqslab.consumer.sqsfaults import FaultPlan
from sqslab.emulator.journal import Journal

#: The behaviour settings and their values under each `behavior` profile. `aws` makes
#: each documented departure of SQS from exactness happen often enough to be seen in a
#: run of a few hundred messages; real SQS does most of them far more rarely.
PROFILES: dict[str, dict[str, Any]] = {
    "exact": {"duplicates": 0.0, "reorder": False, "short_poll_sample": 1.0, "count_lag": 0.0,
              "stale_receipt": "delete", "not_inflight": "accept", "receive_loss": 0.0, "inflight_limit": 120_000},
    "aws": {"duplicates": 0.01, "reorder": True, "short_poll_sample": 0.5, "count_lag": 2.0,
            "stale_receipt": "ignore", "not_inflight": "error", "receive_loss": 0.001, "inflight_limit": 120_000},
}
#: How far a reordering receive looks past the oldest ready message (times its batch size).
REORDER_WINDOW = 2
#: The most (caller, API) pairs whose first call the journal notes.
MAX_CALLERS = 100_000
#: The least time between two points of a queue's count history, for `count_lag` (seconds).
COUNT_HISTORY_STEP = 0.1


@dataclass
class Behavior:
    """The behaviour settings in force (see PROFILES and the README's `sqs` section)."""

    duplicates: float = 0.0
    reorder: bool = False
    short_poll_sample: float = 1.0
    count_lag: float = 0.0
    stale_receipt: str = "delete"
    not_inflight: str = "accept"
    receive_loss: float = 0.0
    inflight_limit: int = 120_000

    def __post_init__(self) -> None:
        for name in ("duplicates", "short_poll_sample", "receive_loss"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}")
        if not isinstance(self.reorder, bool):
            raise ValueError(f"reorder must be true or false, not {self.reorder!r}")
        if isinstance(self.count_lag, bool) or not isinstance(self.count_lag, (int, float)) or not 0 <= self.count_lag <= 3600:
            raise ValueError(f"count_lag must be 0 to 3600 seconds, not {self.count_lag!r}")
        if self.stale_receipt not in ("ignore", "delete"):
            raise ValueError(f"stale_receipt must be ignore or delete, not {self.stale_receipt!r}")
        if self.not_inflight not in ("error", "accept"):
            raise ValueError(f"not_inflight must be error or accept, not {self.not_inflight!r}")
        if isinstance(self.inflight_limit, bool) or not isinstance(self.inflight_limit, int) or self.inflight_limit < 1:
            raise ValueError(f"inflight_limit must be a whole number of at least 1, not {self.inflight_limit!r}")

    @classmethod
    def resolve(cls, behavior: str = "exact", **overrides: Any) -> Behavior:
        """A profile with some settings overridden (None: the profile's value)."""
        if behavior not in PROFILES:
            raise ValueError(f"behavior must be one of {', '.join(PROFILES)}, not {behavior!r}")
        values = dict(PROFILES[behavior])
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown sqs behaviour setting(s): {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The settings, for the command line and the control endpoint."""
        return asdict(self)


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
        #: Who makes the SQS call this thread serves (set by the middleware per request).
        self.calls = threading.local()

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
        self.journal.close()


_current = Lab()


def current() -> Lab:
    """The lab in force in this process."""
    return _current


def configure(lab: Lab) -> None:
    """Put a lab in force (the emulator child, at start)."""
    global _current
    _current = lab
