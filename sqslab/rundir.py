"""The run directory: everything a run leaves behind, and the only input of reports.

    runs/<YYYYmmdd-HHMMSS>-<name>/
      scenario.yaml      the scenario as given (after --set overrides)
      resolved.json      the scenario resolved: units in seconds, defaults filled
      events.jsonl       one event per line: sends, consumer events, actions, tasks
      metrics.jsonl      one sample per line: queue depths, tasks, counts
      summary.json       figures, ledger, expectations, verdict (format_version 1)
      ledger.sqlite      every sent id with its fate (sqslab.truth.ledger)
      tasks/<id>.out     each local consumer task's stdout (its events), .err its stderr
      terraform/         tfvars and state, where Terraform was used

Files are appended line by line and flushed, and summary.json is written atomically, so
a run stopped at any point leaves a directory that reports can read.

One run per directory: a run claims its directory (`claim`) with an exclusive lock it
holds until it ends, and a directory that already holds a run is refused, so two runs
can never write into one another's files. Run-directory names are made atomically.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUMMARY_FORMAT_VERSION = 1
#: Files whose presence means a directory holds a run (or a sweep).
RUN_MARKERS = ("summary.json", "events.jsonl", "sweep.json")
LOCK_FILE = ".sqslab.lock"


class RunDirError(Exception):
    """A directory that is not a readable run, or cannot take one."""


class RunDirInUse(RunDirError):
    """The directory holds a run already, or a running sqslab holds it."""


def new_run_dir(base: Path, name: str, now: float | None = None) -> Path:
    """Create `base/<timestamp>-<name>` (with a suffix if it exists) and return it; the
    check and the creation are one mkdir, so two runs in the same second never collide."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    base.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count(1):
        path = base / (f"{stamp}-{name}" if suffix == 1 else f"{stamp}-{name}-{suffix}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


class Claim:
    """A directory claimed for one run (or sweep): an exclusive lock held until release()."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        """Let the directory go (the files stay; the lock file is left behind, unlocked)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def claim(path: Path) -> Claim:
    """Claim a directory for a run: make it if needed, take its lock, and refuse it when
    another sqslab holds it or it already holds a run (RunDirInUse says which)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = (path / LOCK_FILE).read_text(errors="replace").strip() or "another sqslab"
        raise RunDirInUse(f"{path} is in use by a run going on now ({holder}); give another --out") from None
    existing = describe_run(path)
    if existing:
        os.close(fd)
        raise RunDirInUse(f"{path} already holds {existing}; give another --out, or remove that run first")
    os.ftruncate(fd, 0)
    os.write(fd, f"sqslab pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return Claim(path, fd)


def describe_run(path: Path) -> str | None:
    """What a directory holds, in words (`run dlq-growth of 2026-11-29 18:31:31, passed`),
    or None when it holds no run."""
    found = [name for name in RUN_MARKERS if (path / name).exists()]
    if not found:
        return None
    if "sweep.json" in found:
        return "a sweep"
    scenario, started, status = "?", None, "no summary (interrupted, or still running)"
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        scenario, started, status = summary.get("scenario", "?"), summary.get("started_at"), summary.get("status", "?")
    except (OSError, ValueError, AttributeError):
        for event in itertools.islice(read_jsonl(path / "events.jsonl"), 50):
            if event.get("event") == "run_started":
                scenario, started = event.get("scenario", "?"), event.get("ts")
                break
    when = time.strftime(" of %Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else ""
    return f"the run {scenario}{when} ({status})"


class JsonLines:
    """An append-only JSON-lines file, safe to write from several threads.

    A write that fails (a full disk) does not raise into whoever recorded the event: the
    error is kept in `error` and later writes are dropped; the runner then ends the run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")
        self.error: OSError | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it."""
        self._append(json.dumps(record, default=str, separators=(",", ":")) + "\n")

    def write_many(self, records: list[dict[str, Any]]) -> None:
        """Append several records with one flush."""
        if records:
            self._append("".join(json.dumps(r, default=str, separators=(",", ":")) + "\n" for r in records))

    def _append(self, text: str) -> None:
        with self._lock:
            if self._file.closed or self.error is not None:
                return
            try:
                self._file.write(text)
                self._file.flush()
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        """Close the file; later writes are dropped."""
        with self._lock:
            try:
                self._file.close()
            except OSError as exc:  # its last flush failed: the disk is full
                self.error = self.error or exc


def disk_message(path: Path, exc: OSError) -> str:
    """A failed write into a run directory in words: "no space left in RUN_DIR" for ENOSPC."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left in {path} ({exc.strerror}): the run stopped; what it wrote before is readable"
    if not path.is_dir():
        return f"the run directory {path} was deleted while the run went on: the run stopped, and its record is gone"
    return f"cannot write into {path}: {exc.strerror or exc}"


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


class JsonTail:
    """Reads the JSON lines another process appends to a file, a few at a time: each
    `read()` returns the whole records written since the last one. A line longer than
    `max_line` is cut (and dropped as torn); a torn line is skipped."""

    #: The longest line kept while it is being written: a runaway line must not grow memory.
    MAX_LINE = 1 << 20
    #: The most bytes one read() takes in; the rest waits for the next call.
    MAX_READ = 8 << 20

    def __init__(self, path: Path, from_end: bool = False, max_line: int = MAX_LINE) -> None:
        """`from_end`: only records written from now on (the writer appends whole lines)."""
        self.path, self.max_line = path, max_line
        self._offset = 0
        if from_end:
            try:
                self._offset = path.stat().st_size
            except OSError:
                pass  # not there yet: it starts empty
        self._partial = b""

    @property
    def offset(self) -> int:
        """How many bytes of the file have been read."""
        return self._offset

    def read_lines(self, final: bool = False) -> list[bytes]:
        """The lines written since the last call (at most MAX_READ bytes of them), without
        their newlines; with final, a last line without its newline too (the writer has
        ended), once the file is read to its end."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read(self.MAX_READ)
        except OSError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        at_end = len(chunk) < self.MAX_READ
        self._partial = b"" if final and at_end else lines.pop()[:self.max_line]
        return [line for line in lines if line.strip()]

    def read(self, final: bool = False) -> list[dict[str, Any]]:
        """The records written since the last call; with final, a last line without its
        newline too (the writer has ended)."""
        records = []
        for line in self.read_lines(final):
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill, or cut for its length
            if isinstance(record, dict):
                records.append(record)
        return records


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half, and a
    failed write (a full disk) leaves no temporary file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


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
