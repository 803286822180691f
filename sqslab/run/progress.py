"""Live progress on stderr while a run goes on: one status line, rewritten in place on a
terminal, printed every few seconds otherwise (CI logs stay short)."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from sqslab.scenario.units import format_duration


class Progress:
    """Called with each sample; shows elapsed/total, phase, sent, depths, tasks, last action."""

    def __init__(self, expected_seconds: float, stream: IO[str] | None = None, every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.expected = expected_seconds
        self.tty = self.stream.isatty()
        self.every = every
        self._last = 0.0

    def __call__(self, sample: dict[str, Any]) -> None:
        line = self.format(sample)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
        elif time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self.stream.write(line + "\n")
            self.stream.flush()

    def event(self, event: dict[str, Any]) -> None:
        """Show what the target is doing between samples: its notices, Terraform's progress."""
        if event.get("event") == "notice":
            text = str(event.get("message", ""))
        else:
            line = str(event.get("line", "")) if event.get("event") == "terraform" else ""
            words = ("Creation complete", "Destruction complete", "Error", "Apply complete", "Destroy complete")
            text = "terraform: " + line.strip() if any(word in line for word in words) else ""
        if text:
            self.stream.write(("\r\x1b[2K" if self.tty else "") + text + "\n")
            self.stream.flush()

    def format(self, sample: dict[str, Any]) -> str:
        """The status line for one sample."""
        elapsed = format_duration(int(sample.get("t") or 0))
        phase = sample.get("phase") or "settling"
        parts = [
            f"[{elapsed}/~{format_duration(round(self.expected))}] {phase}",
            f"sent {sample.get('sent', 0)}",
            f"processed {sample.get('processed', 0)}" + (f" (+{sample['processed_again']} again)" if sample.get("processed_again") else ""),
            f"queue {sample.get('queue.visible', '?')}",
            f"in flight {sample.get('queue.in_flight', '?')}",
            f"dlq {sample.get('dlq.messages', '?')}",
            f"tasks {sample.get('tasks.running', '?')}/{sample.get('tasks.desired', '?')}",
        ]
        if sample.get("last_action"):
            parts.append(f"last: {sample['last_action']}")
        return " | ".join(parts)

    def close(self) -> None:
        """End the status line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
