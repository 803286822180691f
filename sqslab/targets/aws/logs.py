"""Consumer events from CloudWatch Logs: the AWS target's view of what the tasks did.

Each task's stdout goes to the service's log group (awslogs driver), one JSON event per
line (docs/contracts.md). Events arrive with CloudWatch's ingestion lag, so each read
starts a little before the newest event seen and skips events already taken (by
eventId): late ones are caught and none is taken twice. FilterLogEvents is throttled,
so reads are spaced and back off when AWS says so.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqslab.targets import Log


class LogReader:
    """Reads a log group's consumer events; every interval here can be shortened in tests."""

    poll_interval = 2.0  # FilterLogEvents, at most this often (a throttled API)
    lookback = 30.0  # re-read this much before the newest event seen (ingestion lag)
    quiet = 10.0  # after the tasks stopped: no new event for this long ends the drain
    drain_timeout = 90.0
    page_limit: int | None = None  # FilterLogEvents' own default: 10 000 events or 1 MB

    def __init__(self, client: Any, group: str, emit: Log, since: float) -> None:
        """client is a boto3 CloudWatch Logs client; events before `since` (epoch seconds) are ignored."""
        self._client, self._group, self._emit = client, group, emit
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._seen: dict[str, int] = {}
        self._floor_ms = int(since * 1000)
        self._newest_ms = 0
        self._last_poll = float("-inf")
        self._backoff = 0.0

    def events(self) -> list[dict[str, Any]]:
        """Events read since the last call; the log group is read at most every poll_interval."""
        with self._lock:
            if time.monotonic() - self._last_poll >= self.poll_interval + self._backoff:
                self._poll()
            events, self._pending = self._pending, []
        events.sort(key=lambda e: e.get("ts", 0))
        return events

    def drain_once(self) -> int:
        """Read the log group now; how many new events it held."""
        with self._lock:
            before = len(self._pending)
            self._poll()
            return len(self._pending) - before

    def drain_until_quiet(self) -> None:
        """After the tasks stopped: read until no new event came for `quiet` seconds (bounded)."""
        quiet_since = time.monotonic()
        end = quiet_since + self.drain_timeout
        while time.monotonic() < end:
            if self.drain_once():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= self.quiet:
                break
            time.sleep(self.poll_interval)

    def _poll(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self._last_poll = time.monotonic()
        start = max(self._floor_ms, self._newest_ms - int(self.lookback * 1000))
        request: dict[str, Any] = {"logGroupName": self._group, "startTime": start}
        if self.page_limit:
            request["limit"] = self.page_limit
        try:
            while True:
                page = self._client.filter_log_events(**request)
                for item in page.get("events", []):
                    self._take(item)
                token = page.get("nextToken")
                if not token:  # a page may be empty while a token says there is more
                    break
                request["nextToken"] = token
            self._backoff = 0.0
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return  # the group appears with the stack
            if code in ("ThrottlingException", "LimitExceededException"):
                self._backoff = min(30.0, max(2.0, self._backoff * 2))
            self._emit({"event": "target_error", "call": "filter_log_events", "error": str(exc)})
        except BotoCoreError as exc:
            self._emit({"event": "target_error", "call": "filter_log_events", "error": str(exc)})
        horizon = start - int(self.lookback * 1000)
        self._seen = {k: ts for k, ts in self._seen.items() if ts >= horizon}

    def _take(self, item: dict[str, Any]) -> None:
        event_id, timestamp = item.get("eventId"), int(item.get("timestamp", 0))
        if event_id is None or event_id in self._seen:
            return
        self._seen[event_id] = timestamp  # forgotten once older than the lookback window
        self._newest_ms = max(self._newest_ms, timestamp)
        try:
            event = json.loads(item.get("message", ""))
        except ValueError:
            return  # a diagnostic line from stderr, a traceback
        if not isinstance(event, dict) or "event" not in event:
            return
        event["source"] = "consumer"
        event.setdefault("task", item.get("logStreamName", "").rsplit("/", 1)[-1])
        event.setdefault("ts", timestamp / 1000)
        self._pending.append(event)
