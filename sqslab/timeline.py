"""The timeline: producer phases and actions on one clock, t0 = start of the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phase:
    """One producer phase, resolved: all times in seconds from t0, rates in msg/s.

    kind is one of:
      - "rate":  `rate` msg/s for `duration` s
      - "ramp":  linear from `rate_from` to `rate_to` msg/s over `duration` s
      - "burst": `count` messages as fast as possible (duration is None: unknown ahead)
      - "count": `count` messages spread evenly over `duration` s
      - "pause": send nothing for `duration` s
    """

    name: str
    kind: str
    start: float
    duration: float | None = None
    rate: float | None = None
    rate_from: float | None = None
    rate_to: float | None = None
    count: int | None = None
    payload_size: int = 256
    poison_rate: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def planned_messages(self) -> int:
        """How many messages this phase sends if it runs to plan."""
        if self.kind == "rate":
            return round(self.rate * self.duration)
        if self.kind == "ramp":
            return round((self.rate_from + self.rate_to) / 2 * self.duration)
        if self.kind in ("burst", "count"):
            return self.count
        return 0
