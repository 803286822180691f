"""The embedded SQS emulator: moto in server mode, in a child process, patched.

``Emulator`` starts ``python -m sqslab.emulator`` on a loopback port, waits until the
endpoint answers and stops it again. The child binds the port itself and reports it
on stdout, so ``port=0`` has no bind-then-release race. This module imports neither
moto nor boto3: the runner pays nothing for it.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqslab.consumer.sqsfaults import describe_fault  # stdlib-only modules: cheap to import
from sqslab.contracts import ENV_JOURNAL_KEY
from sqslab.credentials import DUMMY_ENV, emulator_env, emulator_session
from sqslab.emulator.lab import Behavior
from sqslab.emulator.middleware import OBSERVER_HEADER
from sqslab.emulator.server import READY_PREFIX

__all__ = ["DUMMY_ENV", "Emulator", "EmulatorError", "child_env", "client", "serve"]

START_TIMEOUT_S = 30.0


class EmulatorError(RuntimeError):
    """The emulator could not be started or did not answer."""


_SESSIONS: dict[str, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def client(endpoint_url: str | None, service: str = "sqs", region: str | None = None, max_pool_connections: int = 10,
           access_key: str | None = None) -> Any:
    """A boto3 client for an emulator (or any SQS-compatible endpoint) with the dummy
    credentials, never the user's; boto3 is imported here, when first needed.
    `access_key` names the caller in the emulator's journal (a dummy key of its own).

    Clients come from one session per region, so the service model is loaded once
    (about 0.1 s) however many clients a run makes.
    """
    from botocore.config import Config

    region = region or DUMMY_ENV["AWS_REGION"]
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=max_pool_connections)
    with _SESSIONS_LOCK:  # creating clients from one session is not thread safe; using them is
        session = _SESSIONS.get(region)
        if session is None:
            session = _SESSIONS[region] = emulator_session(region)
        keys = {"aws_access_key_id": access_key, "aws_secret_access_key": DUMMY_ENV["AWS_SECRET_ACCESS_KEY"]} if access_key else {}
        return session.client(service, endpoint_url=endpoint_url, config=config, **keys)


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Return an environment with dummy AWS credentials and no real AWS identity."""
    return emulator_env(base)


class Emulator:
    """An SQS-compatible endpoint on loopback, backed by (patched) moto in a child process.

    Use as a context manager (``with Emulator() as emu: emu.endpoint_url``) or call
    ``start()`` and ``stop()``. ``patched=False`` runs stock moto, for comparison.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        patched: bool = True,
        log_path: Path | None = None,
        lab: dict[str, Any] | None = None,
        events_path: Path | None = None,
        journal_path: Path | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.patched = patched
        self.log_path = Path(log_path) if log_path is not None else None
        self.lab = lab  # {"behavior": {...}, "faults": [...], "seed": N}: see sqslab.emulator.lab
        self.events_path = Path(events_path) if events_path is not None else None
        self.journal_path = Path(journal_path) if journal_path is not None else None  # the SQS journal (journal.py)
        # Authenticates the journal's lines: held by this process and the child, never by a task.
        self.journal_key: bytes | None = secrets.token_bytes(32) if journal_path is not None else None
        self.endpoint_url: str = ""
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._owner_pid = os.getpid()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Emulator({self.endpoint_url or self.host!r}, patched={self.patched}, {state})"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id, or None when not started."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = START_TIMEOUT_S) -> Emulator:
        """Start the child, wait until the endpoint answers and return self.

        Raises EmulatorError (and leaves nothing running) if the child exits, does not
        report its port in ``timeout`` seconds, or the endpoint does not answer.
        """
        if self.running:
            return self
        self._owner_pid = os.getpid()
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "sqslab.emulator", "--host", self.host, "--port", str(self.port)]
        cmd += ["--parent-pid", str(os.getpid())]
        if not self.patched:
            cmd.append("--stock")
        if self.lab:
            cmd += ["--lab", json.dumps(self.lab)]
        if self.events_path is not None:
            cmd += ["--events", str(self.events_path)]
        if self.journal_path is not None:
            cmd += ["--journal", str(self.journal_path)]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until stop()
        else:
            # Kept so a failed start can quote the child; a file, not a pipe nobody drains.
            self._log_file = tempfile.TemporaryFile()  # noqa: SIM115 - the child writes to it until stop()
        stderr = self._log_file
        env = child_env()
        if self.journal_key is not None:
            env[ENV_JOURNAL_KEY] = self.journal_key.hex()
        # The child must import this very sqslab, even from a source checkout.
        src_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal is the runner's to handle
            )
        except OSError as exc:
            self._close_log()
            raise EmulatorError(f"cannot start the SQS emulator ({' '.join(cmd)}): {exc}") from exc
        try:
            port = _read_port(self._proc, t0 + timeout, self._log_hint)
            self.endpoint_url = f"http://{_url_host(self.host)}:{port}"
            _wait_answering(self.endpoint_url, self._proc, t0 + timeout, self._log_hint)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def control(self, path: str, data: Any = None, timeout: float = 5.0) -> Any:
        """Call the emulator's control endpoint (GET, or POST data as JSON); its JSON answer.
        `add_fault` and `lab_state` are the uses; EmulatorError on a refusal."""
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(f"{self.endpoint_url}/_sqslab/{path}", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise EmulatorError(f"the SQS emulator refused {path}: {detail}") from exc
        except OSError as exc:
            raise EmulatorError(f"the SQS emulator's control endpoint did not answer: {exc}") from exc

    def add_fault(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Put a fault rule in force now (sqsfaults.check_rule's format); the rule as taken."""
        return dict(self.control("faults", rule))

    def flush_journal(self) -> None:
        """Have the emulator write the SQS journal's buffered lines now."""
        self.control("journal/flush", {})

    def queue_states(self, names: list[str], messages: bool = False, limit: int | None = None) -> dict[str, Any]:
        """Each named queue's exact state (counts; with `messages`, every live message's id,
        state and deadline), read through the control endpoint: the lab's own channel,
        which the behaviour profile and the faults never touch. None for a queue not there."""
        request: dict[str, Any] = {"names": names, "messages": messages}
        if limit is not None:
            request["limit"] = limit
        return dict(self.control("queues", request, timeout=60.0 if messages else 5.0))

    def lab_state(self) -> dict[str, Any]:
        """The behaviour settings and fault rules in force."""
        return dict(self.control("lab"))

    def death(self) -> str | None:
        """None while the emulator runs (or before it started, or after stop()); once it has
        died, what it exited with and the last lines of its log."""
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        code = proc.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        tail = self.log_tail()
        shown = "".join(f"\n    {line}" for line in tail)
        where = f" ({self.log_path})" if self.log_path else ""
        return f"the SQS emulator exited ({how}){'; the last lines of its log' + where + ':' + shown if tail else ''}"

    def log_tail(self, lines: int = 5) -> list[str]:
        """The last lines the emulator wrote to its log."""
        if self._log_file is None:
            return []
        try:
            self._log_file.flush()
            source: Any = self.log_path if self.log_path is not None else self._log_file.fileno()
            with open(source, "rb", closefd=self.log_path is not None) as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 4000))
                return [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()][-lines:]
        except OSError:
            return []

    def _log_hint(self) -> str:
        tail = self.log_tail(1)
        hint = f": {tail[0].strip()}" if tail else ""
        return hint + (f" (log: {self.log_path})" if self.log_path else "")

    def stop(self) -> None:
        """Stop the child and wait for it. Safe to call twice, or after a failed start.

        A no-op in a forked copy of the process that started it: the emulator is not its.
        """
        if os.getpid() != self._owner_pid:
            return
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort against orphans when a caller forgot stop().
        try:
            self.stop()
        except Exception:  # noqa: BLE001, S110 - a finaliser must not raise; nothing is left to tell
            pass


# ----- the start-up handshake: the child says its port, then its SQS app must answer


def _read_port(proc: subprocess.Popen[bytes], deadline: float, log_hint: Callable[[], str]) -> int:
    """The port the child reports on its stdout (a READY_PREFIX line) by `deadline`.

    EmulatorError, with `log_hint()` appended, if the child exits first, says something
    else or says nothing in time."""
    timeout = deadline - time.monotonic()
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EmulatorError(f"the SQS emulator did not report its port within {timeout:.0f} s{log_hint()}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                code = proc.wait()
                raise EmulatorError(f"the SQS emulator exited with code {code} before it was ready{log_hint()}")
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
    if not line.startswith(READY_PREFIX):
        raise EmulatorError(f"the SQS emulator said {line!r} instead of its port{log_hint()}")
    return int(json.loads(line[len(READY_PREFIX):])["port"])


def _wait_answering(endpoint_url: str, proc: subprocess.Popen[bytes], deadline: float, log_hint: Callable[[], str]) -> None:
    """Return once the SQS app at `endpoint_url` answers; EmulatorError, with `log_hint()`
    appended, if the child exits, refuses the call or does not answer by `deadline`."""
    # An SQS ListQueues call, so "answers" means the SQS app answers (moto does not
    # check signatures; an unsigned request would make it build its S3 app instead).
    request = urllib.request.Request(
        endpoint_url + "/",
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.ListQueues",
            OBSERVER_HEADER: "1",  # no fault rule may fail the start
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-west-1/sqs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"the SQS emulator exited with code {proc.returncode}{log_hint()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                resp.read()
            return
        except urllib.error.HTTPError as exc:
            raise EmulatorError(f"the SQS emulator at {endpoint_url} answered ListQueues with HTTP {exc.code}"
                                f"{log_hint()}") from exc
        except OSError as exc:
            last = exc
            time.sleep(0.02)
    raise EmulatorError(f"the SQS emulator at {endpoint_url} did not answer: {last}{log_hint()}")


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own session
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(port: int = 0, host: str = "127.0.0.1", lab: dict[str, Any] | None = None, events_path: Path | None = None,
          journal_path: Path | None = None) -> None:
    """Run the emulator in the foreground until Ctrl-C, printing the endpoint and env;
    `lab`, `events_path` and `journal_path` as for Emulator."""
    emu = Emulator(port=port, host=host, lab=lab, events_path=events_path, journal_path=journal_path).start()
    try:
        url = emu.endpoint_url
        print(f"SQS emulator (patched moto) listening on {url}  (pid {emu.pid}, started in {emu.start_seconds:.2f} s)")
        if lab:
            state = emu.lab_state()
            changed = {k: v for k, v in state["behavior"].items() if v != Behavior().as_dict()[k]}
            print(f"behaviour: {json.dumps(changed) if changed else 'exact'}")
            for rule in state["faults"]:
                print(f"fault: {describe_fault(rule)}")
            if events_path:
                print(f"events: {events_path}")
        if journal_path:
            print(f"SQS journal: {journal_path}")
        print()
        print("# paste into a shell:")
        print(f"export AWS_ENDPOINT_URL={url}")
        for key, value in DUMMY_ENV.items():
            print(f"export {key}={value}")
        print()
        print("# for example:")
        print(f"aws --endpoint-url {url} sqs create-queue --queue-name demo")
        print(f"aws --endpoint-url {url} sqs list-queues")
        print()
        print("Ctrl-C stops it.", flush=True)
        while emu.running:
            time.sleep(0.5)
        if emu._proc is not None:
            raise EmulatorError(f"the SQS emulator exited with code {emu._proc.returncode}")
    except KeyboardInterrupt:
        print("\nstopping the SQS emulator", file=sys.stderr)
    finally:
        emu.stop()
