"""What each caller asked of SQS: calls per API, the requests SQS would bill, and the
receives that answered nothing.

SQS bills a request per call, and a call's payload (the messages it sends or hands out:
bodies and attribute names, types and values) by each 64 KiB chunk of it: a 256 KiB
SendMessage is 4 requests. The patched backend adds each message's bytes to the call
that moves it (`payload`); the middleware counts the call once it is answered
(`count`). The counts are cumulative, written to the SQS journal as one `requests` line
when the journal is flushed on request (the local target does so once its consumers are
stopped) and when the emulator closes; sqslab.truth.cost reads the last one.

A call an injected fault failed with an error is not counted (it never reached SQS's
billing; the journal's `fault` lines count those); a `timeout` fault's call is, since
SQS served it. Pairs of (caller, API) are bounded by MAX_PAIRS; past it the calls of new
callers are counted under OTHER.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

#: SQS's billing unit of payload.
CHUNK = 64 * 1024
#: The most (caller, API) pairs counted apart.
MAX_PAIRS = 10_000
#: The caller under which calls past MAX_PAIRS are counted.
OTHER = "(other callers)"


def message_bytes(body: str, attributes: dict[str, Any] | None) -> int:
    """A message's payload as SQS counts it: its body and each attribute's name, data type
    and value, in bytes (a binary value decoded)."""
    size = len(body.encode("utf-8", "surrogatepass"))
    for name, attribute in (attributes or {}).items():
        size += len(str(name).encode())
        if not isinstance(attribute, dict):
            continue
        size += len(str(attribute.get("DataType") or attribute.get("data_type") or "").encode())
        value = attribute.get("StringValue", attribute.get("string_value"))
        if isinstance(value, str):
            size += len(value.encode("utf-8", "surrogatepass"))
        binary = attribute.get("BinaryValue", attribute.get("binary_value"))
        if isinstance(binary, bytes):
            size += len(binary)
        elif isinstance(binary, str):
            try:
                size += len(base64.b64decode(binary))
            except ValueError:
                size += len(binary)
    return size


def billed(payload: int) -> int:
    """The requests SQS bills for one call moving `payload` bytes: one per 64 KiB chunk, at least one."""
    return max(1, -(-payload // CHUNK))


class Usage:
    """Calls, billed requests and empty receives per (caller, API), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}

    def count(self, by: str, api: str, payload: int, received: int) -> None:
        """One answered call: `payload` bytes of messages moved, `received` messages handed
        out (a ReceiveMessage with none is an empty receive)."""
        key = (by, api)
        with self._lock:
            row = self._counts.get(key)
            if row is None:
                if len(self._counts) >= MAX_PAIRS:
                    key = (OTHER, api)
                row = self._counts.setdefault(key, [0, 0, 0])
            row[0] += 1
            row[1] += billed(payload)
            row[2] += api == "ReceiveMessage" and received == 0

    def snapshot(self) -> list[dict[str, Any]]:
        """Every pair's counts so far: {by, api, calls, billed, empty}, sorted."""
        with self._lock:
            items = sorted((key, list(row)) for key, row in self._counts.items())
        return [{"by": by, "api": api, "calls": calls, "billed": requests, "empty": empty}
                for (by, api), (calls, requests, empty) in items]
