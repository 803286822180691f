"""The Lambda consumer on AWS: the function and its SQS event source mapping that the
stack made (terraform/modules/lambda), driven through the Lambda API.

The mapping is Lambda's own: it polls, batches, scales and deletes, and says nothing of
it; sqslab's entry in the function (sqslab.lambdas.entry) logs what became of each
record, and the aws target reads that from the function's log group. What a run changes:
the mapping's state and concurrency and the reserved concurrency in place
(UpdateEventSourceMapping, PutFunctionConcurrency), the function's environment, timeout
and memory as a new configuration (UpdateFunctionConfiguration). An execution environment
cannot be ended from outside on AWS, so `kill_consumer` is refused before the stack is
applied.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqslab.targets import Log, TargetError, TaskCounts

#: The mapping's states on the way to polling or to stopped (the Lambda API's State).
_SETTLED = {True: "Enabled", False: "Disabled"}
#: The figures nothing on AWS tells of: Lambda throttles its own poller's invocations silently.
UNSEEN = ("lambda.throttles",)
#: What sqslab's entry reads (terraform/modules/lambda sets them; a new configuration keeps them).
ENTRY_VARIABLES = ("SQSLAB_HANDLER", "SQSLAB_REPORT_BATCH_ITEM_FAILURES")


class LambdaFunction:
    """A stack's function and its mapping."""

    def __init__(self, client: Any, function: str, mapping: str, emit: Log, reserved: int | None = None) -> None:
        """`reserved`: the reserved concurrency the stack was applied with."""
        self._client, self.function, self.mapping, self._emit = client, function, mapping, emit
        self._enabled = False
        self._reserved = reserved
        self.started = 0

    def state(self) -> str:
        """The mapping's State (Creating, Enabled, Disabling, Disabled, Updating, ...)."""
        return str(self._client.get_event_source_mapping(UUID=self.mapping).get("State", ""))

    def start(self, consumer: Any, timeout: float, poll: float, interrupted: threading.Event) -> list[dict[str, Any]]:
        """Apply the consumer's in-place settings, the mapping enabled; wait (bounded) until it
        polls. The `started` event for the mapping, as the local one writes."""
        self.tune(consumer)
        self._wait(consumer.enabled, timeout, poll, interrupted)
        self.started = 1
        return [{"ts": time.time(), "event": "started", "task": "lambda", "source": "consumer",
                 "config": {"function": self.function, "batch_size": consumer.batch_size,
                            "mapping": self.mapping, "unseen": list(UNSEEN)}}]

    def tune(self, consumer: Any) -> dict[str, Any]:
        """The mapping's state and maximum concurrency, the function's reserved concurrency,
        as the consumer has them; the `mapping_changed` event."""
        update: dict[str, Any] = {"UUID": self.mapping, "Enabled": consumer.enabled}
        if consumer.max_concurrency:
            update["ScalingConfig"] = {"MaximumConcurrency": consumer.max_concurrency}
        self._client.update_event_source_mapping(**update)
        if consumer.reserved_concurrency != self._reserved:
            if consumer.reserved_concurrency is None:
                self._client.delete_function_concurrency(FunctionName=self.function)
            else:
                self._client.put_function_concurrency(FunctionName=self.function,
                                                      ReservedConcurrentExecutions=consumer.reserved_concurrency)
            self._reserved = consumer.reserved_concurrency
        self._enabled = consumer.enabled
        return {"ts": time.time(), "event": "mapping_changed", "task": "lambda", "source": "consumer",
                "enabled": consumer.enabled, "reserved_concurrency": consumer.reserved_concurrency,
                "max_concurrency": consumer.max_concurrency}

    def configure(self, consumer: Any) -> dict[str, Any]:
        """A new configuration: the consumer's environment (sqslab's entry variables kept),
        timeout and memory; waits (bounded) until Lambda has applied it."""
        current = self._client.get_function_configuration(FunctionName=self.function)
        kept = {k: v for k, v in ((current.get("Environment") or {}).get("Variables") or {}).items() if k in ENTRY_VARIABLES}
        answer = self._client.update_function_configuration(
            FunctionName=self.function, Timeout=int(consumer.timeout), MemorySize=consumer.memory,
            Environment={"Variables": {**consumer.environment(), **kept}})
        deadline = time.monotonic() + 60.0
        while answer.get("LastUpdateStatus") == "InProgress" and time.monotonic() < deadline:
            time.sleep(1.0)
            answer = self._client.get_function_configuration(FunctionName=self.function)
        if answer.get("LastUpdateStatus") == "Failed":
            raise TargetError(f"Lambda did not apply the new configuration of {self.function}: "
                              f"{answer.get('LastUpdateStatusReason')}")
        return answer

    def disable(self) -> None:
        """The mapping stops polling (a kept stack)."""
        self._client.update_event_source_mapping(UUID=self.mapping, Enabled=False)
        self._enabled = False

    def counts(self) -> TaskCounts:
        """The mapping as one task: running while it is enabled."""
        running = int(self._enabled)
        return TaskCounts(running=running, desired=running, started=self.started)

    def stop(self, logs: Any, timeout: float, poll: float) -> list[dict[str, Any]]:
        """Disable the mapping, wait (bounded) until it stopped, then read the function's log
        until it is quiet (invocations in flight end within the function timeout)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.update_event_source_mapping(UUID=self.mapping, Enabled=False)
            self._enabled = False
            self._wait(False, timeout, poll, threading.Event(), on_poll=logs.drain_once)
        except (ClientError, BotoCoreError, TargetError) as exc:
            self._emit({"event": "target_error", "call": "stop_consumers", "error": str(exc)})
        logs.drain_until_quiet()
        return [{"ts": time.time(), "event": "stopped", "task": "lambda", "source": "consumer", "reason": "stop"}]

    def _wait(self, enabled: bool, timeout: float, poll: float, interrupted: threading.Event,
              on_poll: Any = None) -> None:
        want = _SETTLED[enabled]
        deadline = time.monotonic() + timeout
        state = self.state()
        while state != want:
            if time.monotonic() >= deadline:
                raise TargetError(f"the event source mapping {self.mapping} is {state}, not {want}, after {timeout:g} s")
            if interrupted.wait(poll):
                raise TargetError("interrupted while waiting for the event source mapping")
            if on_poll is not None:
                on_poll()
            state = self.state()
