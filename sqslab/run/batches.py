"""SendMessageBatch for the producer's sender threads: batches, entries, retries.

A sender takes what the scheduler has handed over (``take_batch``: up to SQS's ten
entries and its size limit), turns each item into an entry (``entry``: sqslab's id as
an attribute, FIFO's group and deduplication ids) and sends them with one call
(``send_with_retry``: throttling, 5xx answers and connection trouble are retried with
full jitter). ``describe`` puts a failed call in one line. The scheduling, the tallies
and the callbacks are the producer's (``sqslab.run.producer``).
"""

from __future__ import annotations

import queue
import random
import threading
from dataclasses import dataclass
from typing import Any

from sqslab.contracts import ID_ATTRIBUTE

__all__ = ["DONE", "MAX_ATTEMPTS", "MAX_BATCH_BYTES", "MAX_BATCH_ENTRIES", "Item", "describe", "entry", "retryable",
           "send_with_retry", "take_batch"]

#: SendMessageBatch takes at most ten entries...
MAX_BATCH_ENTRIES = 10
#: ...of at most this many bytes together (SQS's long-standing limit; newer SQS allows 1 MiB).
MAX_BATCH_BYTES = 262_144
#: Attempts per SendMessageBatch call when SQS throttles, fails with a 5xx or cannot be reached.
MAX_ATTEMPTS = 6

_RETRYABLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
}


@dataclass
class Item:
    """One message handed from the scheduler to the senders."""

    record: dict[str, Any]
    body: str
    due: float  # monotonic
    group: str | None = None  # FIFO: MessageGroupId
    error: str | None = None  # why the body cannot be sent (its template failed, or SQS would refuse it)


#: Put in the senders' queue when the phase's scheduling is over; each sender puts it back.
DONE = object()


def take_batch(q: queue.Queue[Any], carry: Item | None) -> tuple[list[Item], Item | None, bool] | None:
    """The next batch from the senders' queue: `carry` (an item left over from the last
    batch) or the next item, waiting for it, then whatever else is waiting, up to
    MAX_BATCH_ENTRIES entries and MAX_BATCH_BYTES of bodies.

    Returns (batch, the item that did not fit or None, whether DONE came after the batch),
    or None when DONE comes first. DONE is put back for the other senders either way."""
    first = carry if carry is not None else q.get()
    if first is DONE:
        q.put(DONE)  # let the other senders see it too
        return None
    batch = [first]
    size = len(first.body.encode("utf-8"))
    while len(batch) < MAX_BATCH_ENTRIES:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is DONE:
            q.put(DONE)
            return batch, None, True
        item_size = len(item.body.encode("utf-8"))
        if size + item_size > MAX_BATCH_BYTES:
            return batch, item, False
        batch.append(item)
        size += item_size
    return batch, None, False


def entry(index: int, item: Item, fifo: bool, content_based_deduplication: bool) -> dict[str, Any]:
    """The SendMessageBatch entry of the batch's index-th item."""
    # sqslab's id travels as an attribute too: a body may be entirely the user's.
    out: dict[str, Any] = {"Id": str(index), "MessageBody": item.body,
                           "MessageAttributes": {ID_ATTRIBUTE: {"DataType": "String", "StringValue": item.record["id"]}}}
    if fifo:
        out["MessageGroupId"] = item.group or "g-0"
        if not content_based_deduplication:
            out["MessageDeduplicationId"] = item.record["id"]  # a retry of the same message has the same
    return out


def send_with_retry(client: Any, queue_url: str, entries: list[dict[str, Any]], stop: threading.Event) -> dict[str, Any]:
    """One SendMessageBatch call's answer, after up to MAX_ATTEMPTS attempts; the last
    error if none succeeds or the error is not worth another try, RuntimeError if `stop`
    is set while waiting to retry."""
    delay = 0.05
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not retryable(exc):
                raise
        # Full jitter, so senders that were throttled together do not return together.
        if stop.wait(random.uniform(0, delay)):
            break
        delay = min(delay * 2, 2.0)
    raise RuntimeError("stopped while retrying")


def retryable(exc: Exception) -> bool:
    """Throttling, 5xx answers and connection trouble are worth another try."""
    import botocore.exceptions as bex

    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return err.get("Code") in _RETRYABLE_CODES or status >= 500 or status == 429
    return isinstance(exc, (bex.ConnectionError, bex.HTTPClientError))


def describe(exc: BaseException) -> str:
    """A failed call in one line of at most 300 characters: SQS's code and message, or the exception."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', '')}".strip()[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
