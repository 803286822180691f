"""sqslab's entry in front of your handler on the aws target (the function's handler is
`sqslab_entry.handler`; yours is SQSLAB_HANDLER, imported from the zip as Lambda would).

On AWS the event source mapping is Lambda's own and tells nobody what became of a batch,
so this module says it in the function's log, one JSON consumer event a line
(docs/contracts.md), as the local mapping does: `received` for each record, then
`processed` or `failed` for each (by your handler's answer, with Lambda's rules for a
partial batch response, sqslab.lambdas.event), then one `invocation`. The aws target
reads them back from CloudWatch Logs. The invocation's duration is the entry's own
measurement (your handler, and on a cold start the import of its module), billed rounded
up to the millisecond: a little under the REPORT line's, which also counts the runtime's
own work. An invocation about to time out says so just
before Lambda ends it: its records are `failed` with the reason, the invocation `timeout`.

Standard library only: the zip holds this file as sqslab_entry.py and
sqslab/lambdas/event.py as sqslab_event.py (sqslab.targets.aws.function_zip).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import sys
import threading
import time
from typing import Any

try:  # in the function's zip
    from sqslab_event import failed_ids  # type: ignore[import-not-found]
except ImportError:  # on this machine (tests)
    from sqslab.lambdas.event import failed_ids

#: Your handler, module.function.
ENV_HANDLER = "SQSLAB_HANDLER"
#: "true" when the mapping has ReportBatchItemFailures (it reads partial batch responses).
ENV_REPORT = "SQSLAB_REPORT_BATCH_ITEM_FAILURES"
#: The message attribute with sqslab's id (sqslab.contracts.ID_ATTRIBUTE).
ID_ATTRIBUTE = "sqslab-id"
#: How long before the function timeout the entry says the invocation is timing out.
TIMEOUT_MARGIN_S = 0.3

_warm: dict[str, Any] = {}  # the handler once imported: the environment is warm


def _emit(event: str, **fields: Any) -> None:
    line = json.dumps({"ts": time.time(), "event": event, "task": "lambda", **fields}, separators=(",", ":"))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _ident(record: dict[str, Any]) -> str | None:
    attribute = (record.get("messageAttributes") or {}).get(ID_ATTRIBUTE) or {}
    if isinstance(attribute.get("stringValue"), str):
        return str(attribute["stringValue"])
    try:
        ident = json.loads(record.get("body") or "").get("id")
    except (ValueError, AttributeError, TypeError):
        return None
    return ident if isinstance(ident, str) else None


def _about(record: dict[str, Any]) -> dict[str, Any]:
    """What an event about one record says of it (sqslab.lambdas.mapping.Events.about)."""
    ident = _ident(record)
    attributes = record.get("attributes") or {}
    seq = None
    if ident and len(ident) == 36:
        try:
            seq = int(ident[-12:], 16)
        except ValueError:
            seq = None
    about = {"message_id": record.get("messageId"), "id": ident, "seq": seq,
             "receive_count": int(attributes.get("ApproximateReceiveCount") or 0)}
    if "MessageGroupId" in attributes:
        about["group"] = attributes["MessageGroupId"]
    return about


class _Invocation:
    """One invocation's records and its end, said once (by the handler's return or the timeout)."""

    def __init__(self, records: list[dict[str, Any]], context: Any, cold: bool, memory: int) -> None:
        self.records, self.context, self.cold, self.memory = records, context, cold, memory
        self.start = time.monotonic()
        self.init_ms: float | None = None  # importing your handler's module (a cold start)
        self._said = threading.Lock()
        self._done = False

    def end(self, outcome: str, failed: set[str], why: str) -> None:
        with self._said:
            if self._done:
                return
            self._done = True
        ms = round((time.monotonic() - self.start) * 1000 - (self.init_ms or 0.0), 1)
        for record in self.records:
            if record.get("messageId") in failed:
                _emit("failed", **_about(record), reason=why)
            else:
                _emit("processed", **_about(record), work_ms=ms)
        _emit("invocation", request_id=getattr(self.context, "aws_request_id", None),
              environment=getattr(self.context, "log_stream_name", None), cold=self.cold, outcome=outcome,
              batch_size=len(self.records), failed=len(failed), init_ms=self.init_ms, duration_ms=ms,
              billed_ms=math.ceil(ms), max_memory_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
              memory_mb=self.memory, error=why if outcome != "ok" else None)


def handler(event: dict[str, Any], context: Any) -> Any:
    """Say what arrived, run your handler, say what became of each record."""
    records = [r for r in (event or {}).get("Records") or [] if isinstance(r, dict)]
    ids = [str(r.get("messageId")) for r in records]
    for record in records:
        _emit("received", **_about(record))
    cold = "handler" not in _warm
    memory = int(getattr(context, "memory_limit_in_mb", 0) or 0)
    invocation = _Invocation(records, context, cold, memory)
    left = context.get_remaining_time_in_millis() / 1000 if hasattr(context, "get_remaining_time_in_millis") else None
    timer = None
    if left is not None:
        why = f"Sandbox.Timedout: the function timeout ended the invocation after {time.monotonic() - invocation.start + left:.0f} s"
        timer = threading.Timer(max(0.0, left - TIMEOUT_MARGIN_S), invocation.end, ("timeout", set(ids), why))
        timer.daemon = True
        timer.start()
    try:
        if cold:
            module, _, name = os.environ[ENV_HANDLER].rpartition(".")
            _warm["handler"] = getattr(importlib.import_module(module), name)
            invocation.init_ms = round((time.monotonic() - invocation.start) * 1000, 1)
        answer = _warm["handler"](event, context)
    except BaseException as exc:
        invocation.end("error", set(ids), f"error: {type(exc).__name__}: {str(exc)[:300]}")
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if os.environ.get(ENV_REPORT) == "true":
        failed, whole = failed_ids(answer, ids)
        invocation.end("ok", failed, f"the whole batch: {whole}" if whole else "reported in batchItemFailures")
    else:
        invocation.end("ok", set(), "")
    return answer
