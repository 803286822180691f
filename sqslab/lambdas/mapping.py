"""The SQS event source mapping, on this machine: pollers that long-poll the queue, batch
what they get and invoke the function in an execution environment, then delete what
succeeded. Run as a consumer task: `python -m sqslab.lambdas.mapping`, its settings in
SQSLAB_LAMBDA (JSON: `MappingConfig`), its events on stdout (docs/contracts.md).

The rules it keeps, each as Lambda documents them (docs/lambda.md; tests/test_lambda.py):

* polling: long polls (20 s) of up to 10 messages with every attribute; with a batching
  window, receives go on until the batch has `batch_size` messages, the window ends or the
  payload reaches 6 MB;
* scaling: five concurrent batches at first, up to 300 more per minute (5 a second) while
  receives return messages, one fewer a second while they return none, never above
  `max_concurrency`, nor the local cap on environments (SQSLAB_LAMBDA_MAX_ENVIRONMENTS);
* live changes (set_consumer, in place, read from LIVE_FILE): disabled, the mapping stops
  polling and invocations in progress finish; enabled again, it starts at five pollers; a
  new max_concurrency caps the pollers at once, a new reserved concurrency the next invocation;
* reserved concurrency: an invocation beyond it is throttled; the mapping retries it with
  backoff until the batch's visibility timeout is over, and then leaves it: the messages
  come back by themselves;
* a handler's success deletes the batch (DeleteMessageBatch); an error, a timeout, a
  runtime exit leave it to come back after the visibility timeout; with
  ReportBatchItemFailures only the reported `itemIdentifier`s come back (sqslab.lambdas.event);
* FIFO: SQS hands a group's messages in order and keeps the group locked while they are
  in flight, so a failed batch blocks its groups until retried.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sqslab.consumer import events as ev
from sqslab.contracts import seq_of, sqslab_id
from sqslab.lambdas.environment import Environment, Function, Outcome
from sqslab.lambdas.event import failed_ids, sqs_event

#: The environment variable that carries the mapping's settings.
ENV_CONFIG = "SQSLAB_LAMBDA"
#: The most execution environments the local mapping runs at once, unless this variable says otherwise.
ENV_MAX_ENVIRONMENTS = "SQSLAB_LAMBDA_MAX_ENVIRONMENTS"
DEFAULT_MAX_ENVIRONMENTS = 20


def local_cap(environ: dict[str, str] | None = None) -> int:
    """The most environments the local mapping runs at once: SQSLAB_LAMBDA_MAX_ENVIRONMENTS
    in sqslab's environment, else DEFAULT_MAX_ENVIRONMENTS."""
    raw = (os.environ if environ is None else environ).get(ENV_MAX_ENVIRONMENTS, "").strip()
    if not raw:
        return DEFAULT_MAX_ENVIRONMENTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_MAX_ENVIRONMENTS} must be a whole number of environments, 1 or more, not {raw!r}")
    return int(raw)
#: Lambda's documented scaling of an SQS mapping.
INITIAL_POLLERS = 5
SCALE_UP_PER_S = 5  # 300 a minute
#: Lambda's payload limit for one invocation.
MAX_BATCH_BYTES = 6 * 1024 * 1024
#: Backoff of a throttled invocation: first wait, and the most between tries.
THROTTLE_BACKOFF_S = (0.2, 2.0)
LONG_POLL_S = 20
#: The settings that change while the mapping runs (set_consumer: `enabled`, `reserved_concurrency`,
#: `max_concurrency`), as JSON the local target writes, relative to the task's folder.
LIVE_FILE = Path("lambda") / "live.json"
#: How often the mapping reads it (and a quarter of its scaling step).
LIVE_CHECK_S = 0.25
#: Lambda's most concurrent batches of one SQS mapping.
MOST_CONCURRENCY = 1250


@dataclass(frozen=True)
class MappingConfig:
    """The mapping's settings (the scenario's `consumer.lambda` and `consumer.event_source`)."""

    function: Function
    queue_url: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    max_concurrency: int | None = None
    reserved_concurrency: int | None = None
    max_environments: int = DEFAULT_MAX_ENVIRONMENTS
    logs: Path = Path("lambda")
    environment_env: dict[str, str] = field(default_factory=dict)  # what the lab gives every environment
    enabled: bool = True
    live: Path = LIVE_FILE

    @classmethod
    def from_json(cls, text: str) -> MappingConfig:
        """The settings as SQSLAB_LAMBDA carries them."""
        raw = json.loads(text)
        fn = raw.pop("function")
        function = Function(**{**fn, "code": Path(fn["code"])})
        return cls(function=function, **{**raw, "logs": Path(raw.get("logs", "lambda")), "live": Path(raw.get("live", LIVE_FILE))})

    def to_json(self) -> str:
        """SQSLAB_LAMBDA's value: every field (paths as strings)."""
        return json.dumps(asdict(self), default=str)

    @property
    def most_pollers(self) -> int:
        """The most concurrent batches: max_concurrency, else Lambda's 1,250, within the local cap."""
        return min(self.max_concurrency or MOST_CONCURRENCY, self.max_environments)

    @property
    def poller_threads(self) -> int:
        """Pollers made at the start: as many as a raised max_concurrency could use."""
        return min(MOST_CONCURRENCY, self.max_environments)


@dataclass
class Live:
    """The mapping's settings that change while it runs, and the file they come from."""

    enabled: bool
    reserved_concurrency: int | None
    max_concurrency: int | None
    _seen: int | None = None  # the file's mtime when last read

    def changed(self, path: Path) -> bool:
        """Read `path` if it changed since the last look; whether a setting changed."""
        try:
            stamp = path.stat().st_mtime_ns
            if stamp == self._seen:
                return False
            self._seen = stamp
            raw = json.loads(path.read_text(encoding="utf-8")[:4096])
        except (OSError, ValueError):
            return False
        if not isinstance(raw, dict):
            return False
        before = (self.enabled, self.reserved_concurrency, self.max_concurrency)
        self.enabled = raw.get("enabled") is not False
        self.reserved_concurrency = _count_or_none(raw.get("reserved_concurrency"))
        self.max_concurrency = _count_or_none(raw.get("max_concurrency"))
        return before != (self.enabled, self.reserved_concurrency, self.max_concurrency)


def _count_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class Events:
    """The mapping's event lines (docs/contracts.md), one JSON object a line on `stream`."""

    def __init__(self, stream: IO[str], task: str, fifo: bool) -> None:
        self._stream, self._task, self._fifo = stream, task, fifo
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        """One event."""
        line = json.dumps({"ts": time.time(), "event": event, "task": self._task, **fields}, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def about(self, event: str, message: dict[str, Any], **fields: Any) -> None:
        """An event about one message of a batch (its ids, receive count, group)."""
        ident = sqslab_id(message.get("Body") or "", message.get("MessageAttributes"))
        extra = {"group": (message.get("Attributes") or {}).get("MessageGroupId")} if self._fifo else {}
        self.emit(event, message_id=message["MessageId"], id=ident, seq=seq_of(ident) if ident else None,
                  receive_count=int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 0)), **extra, **fields)


class Pool:
    """The function's execution environments: warm ones are reused, a new one is a cold start."""

    def __init__(self, config: MappingConfig) -> None:
        self._config = config
        self._idle: list[Environment] = []
        self._all: list[Environment] = []
        self._busy: set[Environment] = set()
        self._lock = threading.Lock()
        self._made = 0

    def acquire(self) -> Environment:
        """A warm idle environment, else a new one (its process starts at its first invocation)."""
        with self._lock:
            while self._idle:
                env = self._idle.pop()
                if env.alive:
                    self._busy.add(env)
                    return env
                self._all.remove(env)  # killed while idle (kill_consumer)
            self._made += 1
            env_id = f"env-{self._made}"
            env = Environment(self._config.function, env_id, self._config.logs / f"{env_id}.log", self._config.environment_env)
            self._all.append(env)
            self._busy.add(env)
            return env

    def release(self, env: Environment) -> None:
        """Back to the warm pool, unless it is gone (a timeout, an init error, ...): then forgotten."""
        with self._lock:
            self._busy.discard(env)
            if env.alive:
                self._idle.append(env)
            else:
                self._all.remove(env)

    def kill_busy(self) -> str | None:
        """SIGKILL one environment, in the middle of an invocation if one is in one (`kill_consumer`); its id."""
        with self._lock:
            env = next(iter(self._busy), None) or next((e for e in self._idle if e.alive), None)
        if env is None:
            return None
        env.kill()
        return env.env_id

    def stop_all(self) -> None:
        """End every environment."""
        for env in list(self._all):
            env.stop()


class Mapping:
    """The event source mapping of one function on one queue."""

    def __init__(self, config: MappingConfig, sqs: Any, events: Events, queue_arn: str, visibility_timeout: float) -> None:
        self.config, self._sqs, self._events = config, sqs, events
        self._arn, self._visibility = queue_arn, visibility_timeout
        self.pool = Pool(config)
        self.stopping = threading.Event()
        self.live = Live(config.enabled, config.reserved_concurrency, config.max_concurrency)
        self._target = min(INITIAL_POLLERS, self.most)
        self._busy = [False] * config.poller_threads  # each poller's last receive returned messages
        self.invoking = [False] * config.poller_threads  # each poller is in an invocation
        self._running = 0  # invocations in progress (reserved concurrency)
        self._lock = threading.Lock()
        self.counts = {"invocations": 0, "processed": 0}

    # ------------------------------------------------------------ scaling

    @property
    def target(self) -> int:
        """How many pollers poll now."""
        return self._target

    @property
    def most(self) -> int:
        """The most concurrent batches now: max_concurrency (as it is now), else Lambda's, within the local cap."""
        return min(self.live.max_concurrency or MOST_CONCURRENCY, self.config.max_environments)

    def scale(self) -> None:
        """Once a second: up by SCALE_UP_PER_S while receives return messages, down by one
        while none does (never below the first five, within the caps)."""
        wanted = self._target
        if any(self._busy[:self._target]):
            wanted = min(self._target + SCALE_UP_PER_S, self.most)
        elif self._target > min(INITIAL_POLLERS, self.most):
            wanted = self._target - 1
        self._scale_to(min(wanted, self.most))

    def _scale_to(self, wanted: int) -> None:
        if wanted != self._target:
            self._target = wanted
            self._events.emit(ev.SCALED, pollers=wanted)

    def refresh(self) -> None:
        """Take the live settings' changes (LIVE_FILE): a disabled mapping stops polling
        (invocations in progress finish), an enabled one starts again at five pollers; a new
        max_concurrency caps the pollers at once; a new reserved concurrency holds from the
        next invocation."""
        was = self.live.enabled
        if not self.live.changed(self.config.live):
            return
        if self.live.enabled and not was:
            self._busy = [False] * len(self._busy)
            self._scale_to(min(INITIAL_POLLERS, self.most))
        else:
            self._scale_to(min(self._target, self.most))
        self._events.emit(ev.MAPPING_CHANGED, enabled=self.live.enabled, reserved_concurrency=self.live.reserved_concurrency,
                          max_concurrency=self.live.max_concurrency)

    # ------------------------------------------------------------ one poller

    def poll(self, index: int) -> None:
        """Poller `index`: receive, invoke, delete, while the mapping runs (idle while scaled down)."""
        while not self.stopping.is_set():
            if index >= self._target or not self.live.enabled:
                self.stopping.wait(0.2)
                continue
            batch = self._gather()
            self._busy[index] = bool(batch)
            if batch and self.stopping.is_set():
                for message in batch:  # received as the mapping stopped: back after the visibility timeout
                    self._events.about(ev.ABANDONED, message, reason="stopping")
            elif batch:
                self.invoking[index] = True
                try:
                    self._handle(batch)
                finally:
                    self.invoking[index] = False

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        try:
            answer = self._sqs.receive_message(QueueUrl=self.config.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                                               MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        except Exception as exc:  # noqa: BLE001 - the mapping keeps polling, as Lambda's does
            self._events.emit(ev.POLL_ERROR, reason=str(exc)[:500])
            self.stopping.wait(1.0)
            return []
        return list(answer.get("Messages") or [])

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: a long poll, then, with a batching window, more until it is full."""
        size = self.config.batch_size
        window = self.config.batching_window
        batch = self._receive(min(size, 10), LONG_POLL_S)
        if not batch:
            return []
        ends = time.monotonic() + window
        payload = sum(len(m.get("Body") or "") for m in batch)
        while len(batch) < size and payload < MAX_BATCH_BYTES and not self.stopping.is_set():
            left = ends - time.monotonic()
            if left <= 0:
                break
            # A long poll for what is left of the window, in SQS's whole seconds (rounded up: a
            # short poll would spin, each an empty receive SQS bills); it answers as soon as
            # messages come, so only an empty queue makes the window a little longer.
            more = self._receive(min(size - len(batch), 10), min(LONG_POLL_S, math.ceil(left)))
            batch += more
            payload += sum(len(m.get("Body") or "") for m in more)
        for message in batch:
            self._events.about(ev.RECEIVED, message)
        return batch

    def _slot(self, received: float) -> bool:
        """Take a unit of the function's concurrency; False when throttled until the
        batch's visibility timeout is over (the batch is left to come back)."""
        pause = THROTTLE_BACKOFF_S[0]
        while True:
            limit = self.live.reserved_concurrency  # as it is now: it may change while the batch waits
            with self._lock:
                if limit is None or self._running < limit:
                    self._running += 1
                    return True
            self._events.emit(ev.THROTTLED, reserved_concurrency=limit)
            if time.monotonic() + pause >= received + self._visibility or self.stopping.wait(pause):
                return False
            pause = min(pause * 2, THROTTLE_BACKOFF_S[1])

    def _handle(self, batch: list[dict[str, Any]]) -> None:
        if not self._slot(time.monotonic()):
            for message in batch:
                self._events.about(ev.ABANDONED, message, reason="throttled")
            return
        env = self.pool.acquire()
        cold = not env.initialized
        request_id = str(uuid.uuid4())
        try:
            outcome = env.invoke(sqs_event(batch, self._arn, self.config.function.region), request_id)
        finally:
            self.pool.release(env)
            with self._lock:
                self._running -= 1
        failed, why = self._failures(outcome, [m["MessageId"] for m in batch])
        self._record(env, request_id, cold, outcome, batch, failed, why)
        done = [m for m in batch if m["MessageId"] not in failed]
        for message in batch:
            if message["MessageId"] in failed:
                self._events.about(ev.FAILED, message, reason=why)
            else:
                self._events.about(ev.PROCESSED, message, work_ms=round(outcome.duration_ms, 1))
        with self._lock:
            self.counts["processed"] += len(done)
        self._delete(done)

    def _failures(self, outcome: Outcome, ids: list[str]) -> tuple[set[str], str]:
        if outcome.failed:
            payload = outcome.payload if isinstance(outcome.payload, dict) else {}
            return set(ids), f"{outcome.kind}: {payload.get('errorType')}: {str(payload.get('errorMessage'))[:300]}"
        if not self.config.report_batch_item_failures:
            return set(), ""
        failed, whole = failed_ids(outcome.payload, ids)
        return failed, (f"the whole batch: {whole}" if whole else "reported in batchItemFailures")

    def _record(self, env: Environment, request_id: str, cold: bool, outcome: Outcome, batch: list[dict[str, Any]],
                failed: set[str], why: str) -> None:
        with self._lock:
            self.counts["invocations"] += 1
        self._events.emit(ev.INVOCATION, request_id=request_id, environment=env.env_id, cold=cold, outcome=outcome.kind,
                          batch_size=len(batch), failed=len(failed), init_ms=outcome.init_ms and round(outcome.init_ms, 1),
                          duration_ms=round(outcome.duration_ms, 1), billed_ms=outcome.billed_ms,
                          max_memory_mb=outcome.max_memory_mb, memory_mb=self.config.function.memory,
                          error=why if outcome.failed else None)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                answer = self._sqs.delete_message_batch(QueueUrl=self.config.queue_url, Entries=entries)
                failed = {int(f["Id"]): f"{f.get('Code')}: {f.get('Message')}" for f in answer.get("Failed") or []}
            except Exception as exc:  # noqa: BLE001 - each message is told
                failed = {i: str(exc)[:300] for i in range(len(chunk))}
            for i, reason in failed.items():
                self._events.about(ev.DELETE_FAILED, chunk[i], reason=reason)


def _client(config: MappingConfig) -> Any:
    import boto3
    from botocore.config import Config

    pool = config.most_pollers + 4
    return boto3.client("sqs", region_name=config.function.region,
                        config=Config(max_pool_connections=pool, retries={"max_attempts": 3, "mode": "standard"},
                                      read_timeout=LONG_POLL_S + 10))


def run(config: MappingConfig, task: str, out: IO[str]) -> int:
    """Run the mapping until SIGTERM or SIGINT: its pollers, once a second its scaling;
    SIGUSR1 kills an environment mid-invocation. Then in-flight invocations finish
    (within the function timeout) and the environments end."""
    sqs = _client(config)
    attributes = sqs.get_queue_attributes(QueueUrl=config.queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])
    arn, visibility = attributes["Attributes"]["QueueArn"], float(attributes["Attributes"]["VisibilityTimeout"])
    events = Events(out, task, arn.endswith(".fifo"))
    mapping = Mapping(config, sqs, events, arn, visibility)
    signal.signal(signal.SIGTERM, lambda *_: mapping.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: mapping.stopping.set())
    signal.signal(signal.SIGUSR1, lambda *_: events.emit(ev.ENVIRONMENT_KILLED, environment=mapping.pool.kill_busy()))
    pollers = [threading.Thread(target=mapping.poll, args=(i,), name=f"poller-{i}", daemon=True)
               for i in range(config.poller_threads)]
    events.emit(ev.STARTED, config={"function": config.function.name, "batch_size": config.batch_size,
                                   "batching_window": config.batching_window, "pollers": mapping.target,
                                   "max_concurrency": config.max_concurrency,
                                   "reserved_concurrency": config.reserved_concurrency,
                                   "report_batch_item_failures": config.report_batch_item_failures,
                                   "enabled": config.enabled})
    for thread in pollers:
        thread.start()
    ticks = 0
    while not mapping.stopping.wait(LIVE_CHECK_S):
        mapping.refresh()
        ticks += 1
        if ticks % round(1 / LIVE_CHECK_S) == 0:
            mapping.scale()
    finish = time.monotonic() + config.function.timeout + 5  # invocations in progress finish; receives are left
    while any(mapping.invoking) and time.monotonic() < finish:
        time.sleep(0.05)
    mapping.pool.stop_all()
    events.emit(ev.STOPPED, reason="stop", processed=mapping.counts["processed"])
    return 0


def main() -> int:
    """`python -m sqslab.lambdas.mapping`."""
    config = MappingConfig.from_json(os.environ[ENV_CONFIG])
    return run(config, os.environ.get("SQSLAB_TASK_ID", "mapping"), sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
