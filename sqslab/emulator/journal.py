"""The SQS journal: the emulator's record of every operation it serves on a message.

One JSON line per send, receive, delete, visibility change, DLQ move and redrive, and
one per call an injected fault failed, each with who made it (``by``: the caller the
middleware read from the request's signature) and what it did (docs/contracts.md, "The
SQS journal"). sqslab.truth.journal reads it back into fates and compares it with the
consumers' own events.

Receipt handles name their message and receive (``receipt_handle``), as SQS's own
opaque handles encode theirs, so a delete or visibility change with any handle, even a
stale one, is journalled with the receive it came from.

The journal lies in the run directory, which a consumer task could write to. So each line
is authenticated: given a key (``ENV_JOURNAL_KEY`` in the emulator's environment, which
sqslab sets and no task sees), a line starts with ``{"mac":"<HMAC-SHA256 of the rest>",``
and sqslab.truth.journal drops, and reports, any line whose MAC does not hold.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqslab.contracts import ENV_JOURNAL_KEY, MAC_PREFIX, line_mac


class Journal:
    """The emulator's record of every SQS operation it serves that concerns a message
    (docs/contracts.md, "The SQS journal"): one JSON line per send, receive, delete,
    visibility change, DLQ move, redrive, expiry, and per call an injected fault
    failed, with who made it.

    Lines are buffered and written every FLUSH_INTERVAL (or when BUFFER_BYTES are
    waiting), by a thread of their own, so the serving threads do not pay a write per
    operation; `flush()` (the control endpoint's `journal/flush`, called by the local
    target once its consumers are stopped) and `close()` write what waits."""

    FLUSH_INTERVAL = 0.05
    BUFFER_BYTES = 256 * 1024

    def __init__(self, path: str | None, key: bytes | None = None) -> None:
        """`key`: what authenticates each line (default: ENV_JOURNAL_KEY's, if set)."""
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None
        env_key = os.environ.get(ENV_JOURNAL_KEY)
        self._key = key if key is not None else bytes.fromhex(env_key) if env_key else None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lines: list[str] = []
        self._size = 0
        self._stop = threading.Event()
        if self.fd is not None:
            threading.Thread(target=self._flusher, name="sqslab-journal", daemon=True).start()

    def write(self, op: str, by: str, fields: dict[str, Any]) -> None:
        """Append one operation."""
        line = json.dumps({"ts": round(time.time(), 6), "op": op, "by": by, **fields}, separators=(",", ":"))
        if self._key is not None:
            line = f'{MAC_PREFIX}{line_mac(self._key, line)}",{line[1:]}'
        line += "\n"
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self.BUFFER_BYTES
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every line that waits."""
        with self._write_lock:
            with self._lock:
                lines, self._lines, self._size = self._lines, [], 0
            if not lines or self.fd is None:
                return
            data = "".join(lines).encode()
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:
                pass  # a full disk: the runner notices its own writes failing and names it

    def _flusher(self) -> None:
        while not self._stop.wait(self.FLUSH_INTERVAL):
            self.flush()

    def close(self) -> None:
        """Write what waits and close the file; later writes are dropped."""
        self._stop.set()
        self.flush()
        with self._write_lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


def receipt_handle(message_id: str, receive_count: int) -> str:
    """The receipt handle of a message's receive_count-th receive: opaque to clients, as
    SQS's are, but it names its message and receive (``handle_facts``), so the journal
    can say which receive a delete or visibility change used, even a stale one."""
    raw = f"{message_id}|{receive_count}|".encode() + os.urandom(48)
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def handle_facts(handle: str) -> tuple[str, int] | None:
    """(message id, receive number) of a handle made by receipt_handle, else None."""
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
        message_id, count, _ = raw.split(b"|", 2)
        return message_id.decode("ascii"), int(count)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def journal_handle(lab: Any, op: str, queue: str, handle: str, **fields: Any) -> Callable[..., None]:
    """What records an operation on a receipt handle in the journal, once its effect is
    known: the message and the receive the handle names (handle_facts)."""
    if lab.journal.fd is None:
        return _no_record
    facts = handle_facts(handle)
    where = {"mid": facts[0], "rc": facts[1]} if facts else {}

    def record(effect: str, **more: Any) -> None:
        lab.record(op, q=queue, **where, effect=effect, **fields, **more)

    return record


def _no_record(effect: str, **more: Any) -> None:
    pass
