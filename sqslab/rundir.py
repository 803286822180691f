"""The run directory: everything a run leaves behind, and the only input of reports.

    runs/<YYYYmmdd-HHMMSS>-<name>/
      scenario.yaml      the scenario as given (after --set overrides)
      resolved.json      the scenario resolved: units in seconds, defaults filled
      events.jsonl       one event per line: sends, consumer events, actions, tasks
      metrics.jsonl      one sample per line: queue depths, tasks, counts
      summary.json       figures, ledger, expectations, verdict (format_version 1)
      tasks/<id>.out     each local consumer task's stdout (its events), .err its stderr
      terraform/         tfvars and state, where Terraform was used

Files are appended line by line and flushed, and summary.json is written atomically, so
a run stopped at any point leaves a directory that reports can read.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUMMARY_FORMAT_VERSION = 1
# Environment names that must never be written into a run directory.
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|SESSION|CREDENTIAL|ACCESS_KEY)", re.I)


def new_run_dir(base: Path, name: str, now: float | None = None) -> Path:
    """Create `base/<timestamp>-<name>` (with a suffix if it exists) and return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    path = base / f"{stamp}-{name}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = base / f"{stamp}-{name}-{suffix}"
    path.mkdir(parents=True)
    return path


class JsonLines:
    """An append-only JSON-lines file, safe to write from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it."""
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def write_many(self, records: list[dict[str, Any]]) -> None:
        """Append several records with one flush."""
        if not records:
            return
        text = "".join(json.dumps(r, default=str, separators=(",", ":")) + "\n" for r in records)
        with self._lock:
            if not self._file.closed:
                self._file.write(text)
                self._file.flush()

    def close(self) -> None:
        """Close the file; later writes are dropped."""
        with self._lock:
            self._file.close()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (a killed run) is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def scrub_env(env: dict[str, str]) -> dict[str, str]:
    """An environment safe to record: values of secret-looking names are masked."""
    return {k: ("***" if _SECRET_NAME.search(k) else v) for k, v in env.items()}


@dataclass
class Run:
    """A run directory loaded for reporting."""

    path: Path
    summary: dict[str, Any]
    resolved: dict[str, Any]
    scenario_text: str

    def events(self) -> Iterator[dict[str, Any]]:
        """The run's events, in the order written."""
        return read_jsonl(self.path / "events.jsonl")

    def metrics(self) -> list[dict[str, Any]]:
        """The run's samples."""
        return list(read_jsonl(self.path / "metrics.jsonl"))


class RunDirError(Exception):
    """A directory that is not a readable run."""


def load_run(path: Path) -> Run:
    """Load a run directory; a run that was interrupted before its summary still loads."""
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory")
    summary_path = path / "summary.json"
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{summary_path}: not valid JSON ({exc})") from None
    elif (path / "events.jsonl").exists():
        summary = {"format_version": SUMMARY_FORMAT_VERSION, "status": "incomplete", "figures": {}, "expectations": []}
    else:
        raise RunDirError(f"{path}: no summary.json or events.jsonl: not a sqslab run directory")
    resolved_path = path / "resolved.json"
    resolved = json.loads(resolved_path.read_text(encoding="utf-8")) if resolved_path.exists() else {}
    scenario_path = path / "scenario.yaml"
    text = scenario_path.read_text(encoding="utf-8", errors="replace") if scenario_path.exists() else ""
    return Run(path, summary, resolved, text)


def latest_run(base: Path) -> Path | None:
    """The most recent run directory under base, by name (names start with a timestamp)."""
    if not base.is_dir():
        return None
    runs = sorted(p for p in base.iterdir() if p.is_dir() and ((p / "summary.json").exists() or (p / "events.jsonl").exists()))
    return runs[-1] if runs else None
