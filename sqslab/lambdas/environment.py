"""A Lambda execution environment on this machine: a process running the runtime
interface client AWS ships (`python -m awslambdaric module.function`) against a Runtime
API of its own (sqslab.lambdas.runtime_api), one invocation at a time, as Lambda runs one.

What Lambda does and this does too (docs/lambda.md): a new environment imports the
handler's module once (a cold start; its init time recorded) and is reused warm after;
an init error (an import that fails, a missing handler) fails the invocation with the
runtime's own error and the environment is discarded; the function timeout kills the
environment ("Task timed out after N seconds"); using more memory than the function's
memory size kills it (`Runtime.OutOfMemory`); a handler that exits the process fails its
invocation (`Runtime.ExitError`). The environment's log has the platform's START, END and
REPORT lines, as its CloudWatch log stream does.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqslab.lambdas.runtime_api import Answer, Invocation, RuntimeApi
from sqslab.targets.processes import ProcessGroup, die_with_parent, group_members

#: Lambda's limit on an on-demand function's init phase.
INIT_LIMIT_S = 10.0
#: How often an invocation's wait looks at the environment's process and memory.
WATCH_INTERVAL_S = 0.05
#: How long a stopped environment has after SIGTERM (Lambda's shutdown phase without extensions is brief).
SHUTDOWN_S = 2.0


@dataclass(frozen=True)
class Function:
    """A Lambda function as an environment runs it."""

    name: str
    handler: str  # module.function
    code: Path  # the folder the module is imported from
    timeout: float  # seconds
    memory: int  # MB
    region: str
    env: dict[str, str] = field(default_factory=dict)
    version: str = "1"
    account: str = "123456789012"

    @property
    def arn(self) -> str:
        """The function's ARN."""
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"


@dataclass
class Outcome:
    """One invocation as Lambda reports it.

    `kind`: ok (the handler returned `payload`), error (it raised: `payload` is the
    runtime's error document, errorType and errorMessage), timeout, init_error,
    out_of_memory, exit_error (the last four: the environment is gone, `payload` says why)."""

    kind: str
    payload: Any
    duration_ms: float
    init_ms: float | None = None  # a cold start's init phase
    max_memory_mb: int = 0

    @property
    def failed(self) -> bool:
        """Whether the invocation failed (anything but the handler's return)."""
        return self.kind != "ok"

    @property
    def billed_ms(self) -> int:
        """Billed duration: the invocation and a cold start's init, rounded up to 1 ms."""
        return math.ceil(self.duration_ms + (self.init_ms or 0.0))


def _rss_mb(pids: list[int]) -> int:
    """The resident memory of these processes, in MB (0 where /proc has none)."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total_kb // 1024


class Environment:
    """One execution environment of `function`; `invoke` runs one event in it."""

    def __init__(self, function: Function, env_id: str, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.function, self.env_id, self.log = function, env_id, log
        self._extra_env = dict(extra_env or {})
        self._api: RuntimeApi | None = None
        self._group: ProcessGroup | None = None
        self._log: IO[bytes] | None = None
        self._started = 0.0
        self.initialized = False
        self.invocations = 0

    # ------------------------------------------------------------ life

    def _environ(self, api: RuntimeApi) -> dict[str, str]:
        f = self.function
        path = os.pathsep.join([str(f.code), *filter(None, [os.environ.get("PYTHONPATH")])])
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "en_US.UTF-8", "TZ": ":UTC", "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1", "HOME": os.environ.get("HOME", "/tmp"),
            **self._extra_env, **f.env,
            "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": f.handler, "LAMBDA_TASK_ROOT": str(f.code),
            "AWS_LAMBDA_FUNCTION_NAME": f.name, "AWS_LAMBDA_FUNCTION_VERSION": f.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(f.memory), "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{f.name}", "AWS_LAMBDA_LOG_STREAM_NAME": self.env_id,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_REGION": f.region, "AWS_DEFAULT_REGION": f.region,
        }

    def start(self) -> None:
        """Start the environment's process (its init runs until its first `next`)."""
        self._api = RuntimeApi()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log.open("ab", buffering=0)
        process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", self.function.handler], cwd=self.function.code,
            env=self._environ(self._api), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent())
        self._group = ProcessGroup(process)
        self._started = time.monotonic()

    @property
    def alive(self) -> bool:
        """Whether its process runs."""
        return self._group is not None and self._group.poll() is None

    def stop(self) -> None:
        """End the environment: SIGTERM, SIGKILL after SHUTDOWN_S."""
        if self._group is not None:
            self._group.signal(signal.SIGTERM)
            if self._group.wait(SHUTDOWN_S) is None:
                self._group.kill()
                self._group.wait(SHUTDOWN_S)
        self._close()

    def kill(self) -> None:
        """SIGKILL its processes at once (a `kill_consumer` mid-invocation)."""
        if self._group is not None:
            self._group.kill()
            self._group.wait(SHUTDOWN_S)

    def _close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _platform(self, line: str) -> None:
        if self._log is not None:
            self._log.write((line + "\n").encode())

    # ------------------------------------------------------------ one invocation

    def _init(self) -> tuple[Outcome | None, float | None]:
        """Wait for a new environment's init: (an outcome if it failed, its init ms)."""
        if self.initialized:
            return None, None
        api, group = self._api, self._group
        assert api is not None and group is not None
        deadline = self._started + INIT_LIMIT_S
        while not api.first_next.wait(WATCH_INTERVAL_S):
            answer = _take(api)
            if answer is not None and answer.kind == "init_error":
                group.wait(SHUTDOWN_S)
                return self._gone("init_error", answer.json() or {"errorType": answer.error_type}), None
            if group.poll() is not None:
                return self._gone("init_error", {"errorType": "Runtime.ExitError",
                                                 "errorMessage": f"Runtime exited with error: exit status {group.returncode}"}), None
            if time.monotonic() > deadline:
                self.kill()
                return self._gone("init_error", {"errorType": "Runtime.InitTimeout",
                                                 "errorMessage": f"INIT_REPORT Init Duration: {INIT_LIMIT_S * 1000:.2f} ms "
                                                                 "Phase: init Status: timeout"}), None
        self.initialized = True
        return None, (time.monotonic() - self._started) * 1000

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Outcome:
        """Run `event` in this environment; its process starts first if it is new."""
        if self._api is None:
            self.start()
        request_id = request_id or str(uuid.uuid4())
        failed, init_ms = self._init()
        if failed is not None:
            return failed
        api, group = self._api, self._group
        assert api is not None and group is not None
        self.invocations += 1
        timeout = self.function.timeout
        began = time.monotonic()
        deadline = began + timeout
        self._platform(f"START RequestId: {request_id} Version: {self.function.version}")
        api.hand(Invocation(request_id, json.dumps(event).encode(), int((time.time() + timeout) * 1000), self.function.arn))
        peak = 0
        outcome: Outcome | None = None
        while outcome is None:
            answer = _take(api, WATCH_INTERVAL_S)
            elapsed = (time.monotonic() - began) * 1000
            if answer is not None:
                kind, payload = ("ok" if answer.kind == "response" else "error"), answer.json()
                if kind == "error" and not isinstance(payload, dict):
                    payload = {"errorType": answer.error_type or "Unhandled", "errorMessage": ""}
                outcome = Outcome(kind, payload, elapsed, init_ms)
                continue
            peak = max(peak, _rss_mb(group.members()))
            if peak > self.function.memory:
                self.kill()
                outcome = self._gone("out_of_memory", {"errorType": "Runtime.OutOfMemory", "errorMessage":
                                     f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"},
                                     elapsed, init_ms)
            elif group.poll() is not None:
                outcome = self._gone("exit_error", {"errorType": "Runtime.ExitError", "errorMessage":
                                     f"RequestId: {request_id} Error: Runtime exited with error: exit status {group.returncode}"},
                                     elapsed, init_ms)
            elif time.monotonic() >= deadline:
                self.kill()
                outcome = self._gone("timeout", {"errorType": "Sandbox.Timedout", "errorMessage":
                                     f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"},
                                     timeout * 1000, init_ms)
        outcome.max_memory_mb = max(peak, _rss_mb(group_members(group.pid)))  # 0 once it is gone
        self._report(request_id, outcome)
        return outcome

    def _gone(self, kind: str, payload: dict[str, Any], elapsed: float = 0.0, init_ms: float | None = None) -> Outcome:
        """The environment is over (it failed its init, timed out, ran out of memory, exited)."""
        self.initialized = False
        if self._group is not None and self._group.poll() is None:
            self._group.kill()
            self._group.wait(SHUTDOWN_S)
        if kind == "init_error":
            self._platform(f"INIT_REPORT Status: error Error Type: {payload.get('errorType')}")
        outcome = Outcome(kind, payload, elapsed, init_ms)
        if kind == "init_error":
            self._close()
        return outcome

    def _report(self, request_id: str, outcome: Outcome) -> None:
        self._platform(f"END RequestId: {request_id}")
        init = f"\tInit Duration: {outcome.init_ms:.2f} ms" if outcome.init_ms is not None else ""
        status = "" if outcome.kind in ("ok", "error") else f"\tStatus: {outcome.kind}"
        self._platform(f"REPORT RequestId: {request_id}\tDuration: {outcome.duration_ms:.2f} ms\tBilled Duration: "
                       f"{outcome.billed_ms} ms\tMemory Size: {self.function.memory} MB\tMax Memory Used: "
                       f"{outcome.max_memory_mb} MB{init}{status}")
        if outcome.kind not in ("ok", "error"):
            self._close()


def _take(api: RuntimeApi, timeout: float = 0.0) -> Answer | None:
    try:
        return api.answers.get(timeout=timeout) if timeout else api.answers.get_nowait()
    except queue.Empty:
        return None
