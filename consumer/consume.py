#!/usr/bin/env python3
"""sqslab's SQS consumer: a long-poll worker whose failures are set by the environment.

The same program runs as an ECS Fargate task and as a local process started by
sqslab's supervisor. It needs boto3 and the standard library only.

Configuration is the environment described in docs/contracts.md (SQSLAB_QUEUE_URL,
SQSLAB_ERROR_RATE, SQSLAB_CRASH_RATE, SQSLAB_IDEMPOTENCY, ...); an SQSLAB_* variable it
does not know is a `config_warning` event, so a misspelt knob is seen, not silently
ignored. Every event is one JSON object on one line of stdout, flushed at once, so
CloudWatch Logs Insights and the local runner read the same thing; diagnostics go to
stderr.

Per message, in this order:

1. parse the body: not JSON, not an object, no ``id`` or a field of the wrong type is
   ``failed`` with a reason (never a crash of the loop);
2. idempotency on and the id processed by this task within the window: skip the work,
   delete, ``duplicate_skipped``;
3. the poison marker set: ``failed`` with reason ``poison``, every time;
4. the crash draw: part of the work, then ``crashed`` and ``os._exit(137)``;
5. the work: a sleep of SQSLAB_WORK_TIME_MIN_MS + work * (max - min), where ``work`` is
   the payload's 0..1 figure (so a redelivered message takes as long again) or a draw
   from this task's random stream when the payload has none; SQSLAB_SLOW_TIME_MS instead
   for the SQSLAB_SLOW_RATE fraction;
6. with SQSLAB_EFFECTS_URL set and SQSLAB_EFFECT=after_work (the default), the work's
   effect is posted there;
7. the error draw: ``failed`` with reason ``error``, not deleted, so SQS delivers it
   again after the visibility timeout;
8. otherwise ``processed`` (with SQSLAB_EFFECT=before_delete, the effect now), then
   DeleteMessage.

``processed`` is written when the work is done, before the delete: the side effect has
happened even if the delete then fails and the message comes back.

Random draws come from ``random.Random`` seeded with SQSLAB_SEED and SQSLAB_TASK_ID; each message takes
the same number of draws whatever happens to it, so a task's stream stays reproducible.

SIGTERM (how ECS and the local supervisor stop a task) and SIGINT: the message in hand is
finished, nothing new is started, ``stopped`` is written and the process exits 0.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

try:
    import sqsfaults  # beside this file: /app in the image, sqslab/consumer in the package
except ImportError:  # imported as sqslab.consumer.consume
    from sqslab.consumer import sqsfaults  # type: ignore[no-redef]
try:
    import knobs  # generated from sqslab/scenario/settings.py: each knob's default, limits and choices
except ImportError:  # imported as sqslab.consumer.consume
    from sqslab.consumer import knobs  # type: ignore[no-redef]
try:
    import events as ev  # the consumer events' names and fields (docs/contracts.md), beside this file too
except ImportError:  # imported as sqslab.consumer.consume
    from sqslab.consumer import events as ev  # type: ignore[no-redef]

EXIT_CRASH = 137  # what a SIGKILLed container reports; the crash knob mimics it (sqslab.contracts)
EXIT_CONFIG = 2
POISON_MARKER = "poison"  # sqslab.contracts.POISON_MARKER
ID_ATTRIBUTE = "sqslab-id"  # sqslab.contracts.ID_ATTRIBUTE: sqslab's id of a message

#: Every SQSLAB_* variable this program reads (its own, and every knob's: knobs.KNOBS); another
#: one is reported as a warning.
KNOWN_VARIABLES = (
    "SQSLAB_QUEUE_URL", "SQSLAB_DLQ_URL", "SQSLAB_TASK_ID", "SQSLAB_SEED", "SQSLAB_LOG_LEVEL", "SQSLAB_POISON_MARKER",
    "SQSLAB_SQS_FAULTS", "SQSLAB_EFFECTS_URL", *(row[0] for row in knobs.KNOBS),
)  # fmt: skip
#: How long the post of one effect may take (the lab's own endpoint, on loopback).
EFFECT_TIMEOUT_S = 5.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment variable has a value the consumer cannot use."""


class _Stop(BaseException):
    """Raised by the signal handler to leave a long poll or a backoff wait.

    A BaseException, so that no ``except Exception`` on the way (ours or botocore's)
    swallows it.
    """


# --------------------------------------------------------------------------- config


def _env_float(env: dict[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is outside {lo:g}..{hi:g}")
    return value


def _env_int(env: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is outside {lo}..{hi}")
    return value


def _env_bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not true or false")


def _env_choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _env_knob(env: dict[str, str], name: str, kind: str, default: Any, lo: Any, hi: Any, choices: tuple[str, ...]) -> Any:
    """One knob as its row of knobs.KNOBS (the settings table's) says to read it."""
    if kind == "float":
        return _env_float(env, name, default, lo, hi)
    if kind == "int":
        return _env_int(env, name, default, lo, hi)
    if kind == "bool":
        return _env_bool(env, name, default)
    return _env_choice(env, name, default, choices)


def ecs_task_id(env: dict[str, str], timeout: float = 1.0) -> str | None:
    """Return the ECS task id from the task metadata endpoint (v4), or None.

    Best effort: no endpoint, a timeout or an odd answer all give None.
    """
    uri = env.get("ECS_CONTAINER_METADATA_URI_V4", "").strip()
    if not uri:
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=timeout) as resp:
            arn = json.loads(resp.read().decode("utf-8"))["TaskARN"]
    except Exception as exc:  # noqa: BLE001 - any failure means "not known"
        print(f"consume: no task id from ECS metadata ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    if not isinstance(arn, str) or not arn:
        return None
    return arn.rsplit("/", 1)[-1]


def resolve_task_id(env: dict[str, str]) -> str:
    """SQSLAB_TASK_ID from the environment, else the ECS task id, else ``<hostname>-<pid>``."""
    task = env.get("SQSLAB_TASK_ID", "").strip()
    if task:
        return task
    return ecs_task_id(env) or f"{socket.gethostname()}-{os.getpid()}"


def load_config(env: dict[str, str]) -> dict[str, Any]:
    """Read and check the consumer's knobs from ``env``; raise ConfigError on a bad value."""
    queue_url = env.get("SQSLAB_QUEUE_URL", "").strip()
    if not queue_url:
        raise ConfigError("SQSLAB_QUEUE_URL is required")
    cfg: dict[str, Any] = {
        "queue_url": queue_url,
        "endpoint_url": env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or None,
        "region": env.get("AWS_REGION", "").strip() or "us-west-1",
        **{key: _env_knob(env, variable, kind, default, low, high, choices)
           for variable, key, kind, default, low, high, choices in knobs.KNOBS},
        "poison_marker": env.get("SQSLAB_POISON_MARKER", "").strip() or POISON_MARKER,
        "effects_url": env.get("SQSLAB_EFFECTS_URL", "").strip() or None,
        # Where a body names its message without the sqslab-id attribute (a producer program's): effects.id.
        "id_path": id_path(env.get("SQSLAB_EFFECTS_URL", "").strip() or None),
        "log_level": (env.get("SQSLAB_LOG_LEVEL", "").strip() or "INFO").upper(),
    }
    try:
        cfg["sqs_faults"] = sqsfaults.rules_from_env(env.get("SQSLAB_SQS_FAULTS"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if cfg["work_time_max_ms"] < cfg["work_time_min_ms"]:
        raise ConfigError(
            f"SQSLAB_WORK_TIME_MAX_MS ({cfg['work_time_max_ms']:g}) is below SQSLAB_WORK_TIME_MIN_MS ({cfg['work_time_min_ms']:g})"
        )
    if cfg["log_level"] not in ("INFO", "DEBUG"):
        raise ConfigError(f"SQSLAB_LOG_LEVEL={cfg['log_level']!r} is not INFO or DEBUG")
    raw_seed = env.get("SQSLAB_SEED", "").strip()
    if raw_seed:
        try:
            cfg["seed"] = int(raw_seed)
        except ValueError:
            raise ConfigError(f"SQSLAB_SEED={raw_seed!r} is not an integer") from None
    else:
        # Random, but written in the started event so the run can be replayed.
        cfg["seed"] = random.SystemRandom().randrange(2**32)
    return cfg


def unknown_variables(env: dict[str, str]) -> list[str]:
    """SQSLAB_* variables this consumer does not read: a misspelt or renamed knob."""
    return sorted(name for name in env if name.startswith("SQSLAB_") and name not in KNOWN_VARIABLES)


# --------------------------------------------------------------------------- events


class EventLog:
    """Writes one JSON object per line, flushed at once; every event has ts, event, task."""

    def __init__(self, task: str, stream: Any = None) -> None:
        self.task = task
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event line and flush it."""
        record = {"ts": round(time.time(), 6), "event": event, "task": self.task, **fields}
        self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- payload

# Optional payload fields and the types they must have when present.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "work": (int, float),
    "seq": (int,),
    "sent_at": (int, float),
    "phase": (str,),
}


def parse_payload(body: str, poison_marker: str) -> tuple[dict[str, Any] | None, str | None]:
    """Return (payload, None) for a usable body, or (partial payload or None, reason)."""
    try:
        payload = json.loads(body)
    except (ValueError, TypeError):
        return None, "not_json"
    if not isinstance(payload, dict):
        return None, "not_object"
    ident = payload.get("id")
    if ident is None:
        return payload, "missing_id"
    if not isinstance(ident, str) or not ident:
        return payload, "bad_type:id"
    for name, types in _FIELD_TYPES.items():
        value = payload.get(name)
        # bool is an int in Python, never a valid number here.
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            return payload, f"bad_type:{name}"
    marker = payload.get(poison_marker)
    if marker is not None and not isinstance(marker, bool):
        return payload, f"bad_type:{poison_marker}"
    return payload, None


# --------------------------------------------------------------------------- consumer


def id_path(url: str | None) -> list[str]:
    """The dotted path (effects.id) the effects URL names in its `id` query, split; ["id"] without one."""
    if not url:
        return ["id"]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("id", ["id"])[0].split(".")


def post_effect(url: str | None, task: str, facts: dict[str, Any], log: Any) -> None:
    """The work's side effect: a POST to SQSLAB_EFFECTS_URL naming the message (when the
    scenario counts effects), with the id at the URL's `id` path; a failed post is logged
    (the ledger then says lost work)."""
    if not url:
        return
    path = id_path(url)
    body: dict[str, Any] = {"task": task, "seq": facts.get("seq")}
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = facts["id"]
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Sqslab-Task": task})
    try:
        with urllib.request.urlopen(request, timeout=EFFECT_TIMEOUT_S) as answer:
            answer.read()
    except Exception as exc:  # noqa: BLE001 - the effect did not happen: the ledger will say lost work
        log(f"effect of {facts['id']} failed: {_describe(exc)}", force=True)


class Consumer:
    """The receive–work–delete loop with its failure knobs."""

    def __init__(self, cfg: dict[str, Any], task: str, events: EventLog, sqs: Any = None, sqs_poll: Any = None,
                 env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.env = env or {}
        self.task = task
        self.events = events
        self.rng = random.Random(f"{cfg['seed']}:{task}")
        self.debug = cfg["log_level"] == "DEBUG"
        if sqs is None or sqs_poll is None:
            sqs, sqs_poll = _make_clients(cfg)
            plan = sqsfaults.FaultPlan(cfg["sqs_faults"], seed=f"{cfg['seed']}:{task}")
            for client in (sqs, sqs_poll):
                # What the SDK does about errors becomes events; faults of an endpoint sqslab
                # does not run (AWS) are made here, client-side, with SQS's own responses.
                sqsfaults.observe(client, events.emit)
                if plan:
                    sqsfaults.install(client, plan, events.emit)
        self.sqs = sqs  # deletes: botocore retries them
        self.deletes = Deletes(sqs, cfg["queue_url"], cfg["delete_mode"] == "batch", events, self._log)
        self.sqs_poll = sqs_poll  # receives: no botocore retries, the loop backs off itself
        self.processed = 0
        self.stop_reason: str | None = None
        self._idle = False  # True only while polling or backing off: a signal may cut those short
        self._wake = threading.Event()
        self._jitter = random.Random()
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()

    # ----- signals

    def install_signal_handlers(self) -> None:
        """Route SIGTERM and SIGINT to a graceful stop."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def stopping(self) -> bool:
        """Whether a stop signal has come (the handler sets it at any moment)."""
        return self.stop_reason is not None

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop_reason is None:
            self.stop_reason = signal.Signals(signum).name
            self._log(f"{self.stop_reason}: stopping after the message in hand")
        self._wake.set()
        # A long poll can last WAIT_TIME_SECONDS; leave it now rather than make ECS wait.
        # Mid-message the flag alone is enough: time.sleep resumes after the handler, so
        # the message in hand is finished.
        if self._idle:
            raise _Stop()

    # ----- loop

    def run(self) -> int:
        """Consume until stopped; return the exit code."""
        backoff = 0.0
        try:
            if self.cfg["startup_time_ms"] > 0:  # booting (startup_time): not ready, not polling; a stop ends it
                self._sleep_idle(self.cfg["startup_time_ms"] / 1000)
            self.events.emit(ev.STARTED, config=_public_config(self.cfg))
            for name in unknown_variables(self.env):
                self.events.emit(ev.CONFIG_WARNING, variable=name, message=f"{name} is not a variable this consumer reads; is it misspelt?")
            while self.stop_reason is None:
                try:
                    messages = self._receive()
                except _Stop:
                    break
                except Exception as exc:  # noqa: BLE001 - any poll failure is a poll_error
                    backoff = min(max(backoff * 2, 0.5), 20.0)
                    self.events.emit(ev.POLL_ERROR, reason=_describe(exc))
                    self._log(f"poll failed, retrying in {backoff:.1f} s: {_describe(exc)}")
                    # Jitter from its own generator: the task's stream stays per message.
                    self._sleep_idle(backoff * (0.75 + 0.5 * self._jitter.random()))
                    continue
                backoff = 0.0
                self._batch(messages)
                self.deletes.flush()
        except _Stop:
            pass
        self.events.emit(ev.STOPPED, reason=self.stop_reason or "stop", processed=self.processed)
        return 0

    def _receive(self) -> list[dict[str, Any]]:
        # Idle first, then look at the flag: a signal either finds us idle (and raises)
        # or has set the flag before we look. Either way no 20 s poll starts after it.
        self._idle = True
        try:
            if self.stop_reason is not None:
                raise _Stop()
            resp = self.sqs_poll.receive_message(
                QueueUrl=self.cfg["queue_url"],
                MaxNumberOfMessages=self.cfg["max_messages"],
                WaitTimeSeconds=self.cfg["wait_time_seconds"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
                MessageAttributeNames=[ID_ATTRIBUTE],
            )
        finally:
            self._idle = False
        return resp.get("Messages", [])

    def _sleep_idle(self, seconds: float) -> None:
        """A backoff wait that a stop signal ends early."""
        self._idle = True
        try:
            if self.stop_reason is None:
                self._wake.wait(seconds)
        finally:
            self._idle = False

    # ----- one message

    def _batch(self, messages: list[dict[str, Any]]) -> None:
        """Handle a received batch in order. On a FIFO queue with SQSLAB_ON_FAILURE
        stop_group, a failure leaves the rest of that group's messages in the batch alone:
        they come back after the failed one, in order."""
        stopped_groups: set[str] = set()
        for i, message in enumerate(messages):
            if self.stopping():
                self.deletes.flush()
                # Stopping: the rest of this batch is not started. By default it is left
                # to the visibility timeout, as a naive consumer does; with
                # SQSLAB_RELEASE_ON_STOP it is made visible again at once.
                for rest in messages[i:]:
                    self._leave(rest)
                return
            group = _group(message)
            if group is not None and group in stopped_groups:
                self._leave(message, reason="group_stopped")
                continue
            if not self._handle(message) and group is not None and self.cfg["on_failure"] == "stop_group":
                stopped_groups.add(group)

    def _handle(self, message: dict[str, Any]) -> bool:
        """Receive, work, delete (or fail) one message; False when it failed."""
        cfg = self.cfg
        rng = self.rng
        # The same draws for every message, whatever its fate: the stream stays aligned.
        u_work, u_slow, u_crash, u_crash_at, u_error = (rng.random() for _ in range(5))

        facts = _facts(message, cfg["poison_marker"], cfg["id_path"])
        payload, problem, receipt = facts.pop("payload"), facts.pop("problem"), message.get("ReceiptHandle")
        self.events.emit(ev.RECEIVED, **facts)
        event = {k: v for k, v in facts.items() if k != "receive_count"}

        if problem is not None:
            self._fail(facts, problem)
            return False
        assert payload is not None and facts["id"] is not None

        if cfg["idempotency"] and self._seen_recently(facts["id"]):
            self.events.emit(ev.DUPLICATE_SKIPPED, **facts)
            self.deletes.delete(receipt, facts)
            return True

        if payload.get(cfg["poison_marker"]) is True:
            self._fail(facts, "poison")
            return False

        if u_slow < cfg["slow_rate"]:
            work_ms = cfg["slow_time_ms"]
        else:
            fraction = payload.get("work")
            fraction = u_work if fraction is None else min(max(float(fraction), 0.0), 1.0)
            work_ms = cfg["work_time_min_ms"] + fraction * (cfg["work_time_max_ms"] - cfg["work_time_min_ms"])

        if u_crash < cfg["crash_rate"]:
            time.sleep(work_ms * u_crash_at / 1000.0)
            self.events.emit(ev.CRASHED, **event)
            sys.stderr.flush()
            os._exit(EXIT_CRASH)  # no cleanup, no delete: like a killed container

        time.sleep(work_ms / 1000.0)
        if cfg["effect"] == "after_work":
            post_effect(self.cfg["effects_url"], self.task, facts, self._log)

        if u_error < cfg["error_rate"]:
            self._fail(facts, "error")
            return False

        if cfg["idempotency"]:
            self._remember(facts["id"])
        self.processed += 1
        self.events.emit(ev.PROCESSED, **facts, work_ms=round(work_ms, 3))
        if cfg["effect"] == "before_delete":
            post_effect(self.cfg["effects_url"], self.task, facts, self._log)
        self.deletes.delete(receipt, facts)
        return True

    def _leave(self, message: dict[str, Any], reason: str = "stopping") -> None:
        """A received message this task will not start: `released` (visible again now) or
        `abandoned` (visible again when its visibility timeout ends), with why."""
        facts = _facts(message, self.cfg["poison_marker"], self.cfg["id_path"])
        fields = {k: v for k, v in facts.items() if k not in ("payload", "problem")}
        fields["reason"] = reason
        if self.cfg["release_on_stop"] and reason == "stopping":
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.cfg["queue_url"], ReceiptHandle=message.get("ReceiptHandle"), VisibilityTimeout=0
                )
                self.events.emit(ev.RELEASED, **fields)
                return
            except Exception as exc:  # noqa: BLE001 - then it waits out its timeout like the rest
                self._log(f"release of {fields['message_id']} failed: {_describe(exc)}", force=True)
        self.events.emit(ev.ABANDONED, **fields)

    def _fail(self, facts: dict[str, Any], reason: str) -> None:
        # Not deleted: SQS delivers it again after the visibility timeout (or dead-letters it).
        self.events.emit(ev.FAILED, **facts, reason=reason)

    # ----- idempotency store (this task's memory only)

    def _prune(self, now: float) -> None:
        horizon = now - self.cfg["idempotency_window_seconds"]
        while self._seen:
            ident, at = next(iter(self._seen.items()))
            if at >= horizon:
                break
            del self._seen[ident]

    def _seen_recently(self, ident: str) -> bool:
        now = time.monotonic()
        self._prune(now)
        return ident in self._seen

    def _remember(self, ident: str) -> None:
        self._seen.pop(ident, None)  # keep insertion order equal to time order
        self._seen[ident] = time.monotonic()

    # ----- diagnostics

    def _log(self, text: str, force: bool = False) -> None:
        if self.debug or force:
            print(f"consume[{self.task}]: {text}", file=sys.stderr, flush=True)


class Deletes:
    """The deletes of done messages: each at once, or (SQSLAB_DELETE_MODE=batch) one
    DeleteMessageBatch when the received batch is done. A delete that does not take is a
    `delete_failed` event: SQS will deliver the message again."""

    def __init__(self, sqs: Any, queue_url: str, batch: bool, events: EventLog, log: Any) -> None:
        self.sqs, self.queue_url, self.batch = sqs, queue_url, batch
        self.events, self._log = events, log
        self._pending: list[tuple[str | None, dict[str, Any]]] = []

    def delete(self, receipt: str | None, facts: dict[str, Any]) -> None:
        """Delete a done message (in batch mode: once the batch is done, a crash before then
        brings the batch's processed messages back, as duplicates)."""
        if self.batch:
            self._pending.append((receipt, facts))
            return
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as exc:  # noqa: BLE001 - the message simply comes back
            self._failed(facts, _describe(exc))

    def flush(self) -> None:
        """Delete what batch mode holds back."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        entries = [{"Id": str(i), "ReceiptHandle": receipt} for i, (receipt, _) in enumerate(pending)]
        try:
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - the messages simply come back
            for _, facts in pending:
                self._failed(facts, _describe(exc))
            return
        for failure in response.get("Failed", []):
            self._failed(pending[int(failure["Id"])][1], str(failure.get("Code")))

    def _failed(self, facts: dict[str, Any], reason: str) -> None:
        self.events.emit(ev.DELETE_FAILED, **{k: v for k, v in facts.items() if k not in ("payload", "problem")}, reason=reason)
        self._log(f"delete of {facts.get('message_id')} failed, SQS will deliver it again: {reason}", force=True)


def _group(message: dict[str, Any]) -> str | None:
    """The message's FIFO group, or None on a standard queue."""
    group = message.get("Attributes", {}).get("MessageGroupId")
    return group if isinstance(group, str) else None


def _facts(message: dict[str, Any], poison_marker: str, path: list[str] | None = None) -> dict[str, Any]:
    """What every event about a message says: SQS's id, ours (its attribute, else the text
    at `path` in its JSON body when that is not plain `id`), the producer's seq, the
    receive count, the group (FIFO); plus the parsed payload and what is wrong with it."""
    payload, problem = parse_payload(message.get("Body", ""), poison_marker)
    try:
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)) or None
    except (TypeError, ValueError):
        receive_count = None
    ident = message.get("MessageAttributes", {}).get(ID_ATTRIBUTE, {}).get("StringValue")
    if not isinstance(ident, str) and path and path != ["id"]:
        node: Any = payload
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        ident = node
    if isinstance(ident, str) and problem in ("not_json", "not_object", "missing_id"):
        payload, problem = {}, None  # a body of the user's own (a load phase's `body`): no work figure, no poison mark
    if not isinstance(ident, str):
        ident = payload.get("id") if payload is not None and isinstance(payload.get("id"), str) else None
    facts: dict[str, Any] = {
        "message_id": message.get("MessageId"),
        "id": ident,
        "seq": payload.get("seq") if payload is not None and problem is None else None,
        "receive_count": receive_count,
        "payload": payload,
        "problem": problem,
    }
    group = _group(message)
    if group is not None:
        facts["group"] = group
    return facts


def _make_clients(cfg: dict[str, Any]) -> tuple[Any, Any]:
    session = boto3.session.Session(region_name=cfg["region"])
    timeouts = {"connect_timeout": 5, "read_timeout": cfg["wait_time_seconds"] + 10}
    # total_max_attempts counts the first attempt (max_attempts would count retries only).
    sqs = session.client(
        "sqs", config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 4}, **timeouts)
    )
    sqs_poll = session.client(
        "sqs", config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}, **timeouts)
    )
    return sqs, sqs_poll


def _public_config(cfg: dict[str, Any]) -> dict[str, Any]:
    # The knobs only: credentials are never in cfg, and never in an event.
    return dict(cfg)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".strip()[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def main(env: dict[str, str] | None = None) -> int:
    """Run the consumer configured by ``env`` (os.environ by default); return the exit code."""
    env = dict(os.environ if env is None else env)
    try:
        cfg = load_config(env)
    except ConfigError as exc:
        print(f"consume: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    task = resolve_task_id(env)
    consumer = Consumer(cfg, task, EventLog(task), env=env)
    consumer.install_signal_handlers()
    return consumer.run()


if __name__ == "__main__":
    sys.exit(main())
