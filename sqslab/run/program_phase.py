"""A load phase your own producer program sends (`producer: {program: ...}`): the program
runs once, as a process group on this machine, with the SDK settings for the run's
endpoint and region, the queue (`SQSLAB_QUEUE_URL`) and an access key of its own
(`sqslab-producer-<phase>`), by which the SQS journal tells its sends apart. Each send
the journal shows from it is a `sent` record, as the lab's producer would have made it:
its id is the message's `sqslab-id` attribute, or the value at `effects.id`'s path
(default `id`) in its JSON body. A send naming no id is no message of the lab's: it is
counted and said, not accounted for.

The phase ends when the program exits, or at its duration (SIGTERM to the program, SIGKILL
to its group after its stop_grace), or when the run stops.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.consumers import sdk_env
from sqslab.contracts import ACCESS_KEY_PREFIX, ENV_QUEUE_URL, PRODUCER_PROGRAM_CALLER, Endpoints
from sqslab.run.producer import PhaseResult
from sqslab.rundir import JsonTail
from sqslab.scenario.timeline import Phase
from sqslab.targets.processes import ProcessGroup, die_with_parent

#: How often the journal is read for the program's sends while it runs.
POLL_INTERVAL = 0.1
#: How long, after the program ends, the emulator has to write its last journal lines
#: (its journal writes every 0.05 s).
JOURNAL_SETTLE = 0.3
#: How long a killed program's group has to end.
KILL_WAIT = 5.0

__all__ = ["ProgramPhases", "caller_of", "run_program_phase"]


def caller_of(phase: Phase) -> str:
    """The caller the journal names for the phase's program (its access key without `sqslab-`)."""
    return PRODUCER_PROGRAM_CALLER + phase.name


def _environment(phase: Phase, endpoints: Endpoints) -> dict[str, str]:
    program = phase.producer or {}
    env = {**sdk_env(endpoints.region), **program.get("env", {})}
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY_PREFIX + caller_of(phase), ENV_QUEUE_URL: endpoints.queue_url,
                "SQSLAB_PHASE": phase.name})
    if endpoints.endpoint_url:
        env["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL_SQS"] = endpoints.endpoint_url
    return env


class _Sends:
    """The program's sends, read from the journal: `sent` records, once per id."""

    def __init__(self, phase: Phase, journal: Path, on_sent: Callable[[list[dict[str, Any]]], None]) -> None:
        self.phase, self.caller, self.on_sent = phase, caller_of(phase), on_sent
        self.tail = JsonTail(journal, from_end=True)  # the program's sends are all still to come
        self.ids: set[str] = set()
        self.sent = self.again = self.unnamed = 0

    def read(self, final: bool = False) -> None:
        records = []
        for line in self.tail.read(final=final):
            if line.get("op") != "send" or line.get("by") != self.caller:
                continue
            ident = line.get("id")
            if not isinstance(ident, str):
                self.unnamed += 1
                continue
            record = {"id": ident, "seq": None, "message_id": line.get("mid"), "sent_at": line.get("ts"), "phase": self.phase.name,
                      "poison": False, "by": self.caller}
            if ident in self.ids:
                record["duplicate_send"] = True
                self.again += 1
            else:
                self.ids.add(ident)
                self.sent += 1
            records.append(record)
        if records:
            self.on_sent(records)


def _supervise(group: ProcessGroup, phase: Phase, stop: threading.Event, look: Callable[[], None]) -> str:
    """Wait for the program's end, reading its sends meanwhile; stop it (SIGTERM, then
    SIGKILL to its group after its stop_grace) at the phase's duration or when the run
    stops. What stopped it, or "" when it ended by itself."""
    deadline = time.monotonic() + float(phase.duration or 0.0)
    stopped_by = ""
    while group.poll() is None:
        now = time.monotonic()
        if not stopped_by and (stop.is_set() or now >= deadline):
            stopped_by = "the run stopping" if stop.is_set() else f"the phase's duration ({phase.duration or 0:g}s)"
            group.signal_leader(signal.SIGTERM)
            deadline = now + float((phase.producer or {}).get("stop_grace", 10.0))
        elif stopped_by and now >= deadline:
            group.kill()
            group.wait(KILL_WAIT)
            break
        look()
        time.sleep(POLL_INTERVAL)
    return stopped_by


@dataclass(frozen=True)
class ProgramPhases:
    """What a producer program's phase needs of the run (the Producer runs it, sqslab.run.producer)."""

    endpoints: Endpoints
    run_dir: Path
    journal: Path

    def run(self, phase: Phase, on_sent: Callable[[list[dict[str, Any]]], None], stop: threading.Event) -> PhaseResult:
        """The phase, run (run_program_phase)."""
        return run_program_phase(phase, self.endpoints, self.run_dir, self.journal, on_sent, stop)


def run_program_phase(phase: Phase, endpoints: Endpoints, run_dir: Path, journal: Path,
                      on_sent: Callable[[list[dict[str, Any]]], None], stop: threading.Event) -> PhaseResult:
    """Run the phase's program until it exits, its duration ends or `stop` is set; its
    sends (from the journal) go to on_sent as they appear."""
    program = phase.producer or {}
    result = PhaseResult(phase=phase.name, kind=phase.kind, planned=0, started_at=time.time())
    sends = _Sends(phase, journal, on_sent)
    tasks = run_dir / "tasks"
    tasks.mkdir(exist_ok=True)
    name = caller_of(phase)
    argv = list(program["command"])
    try:
        with (tasks / f"{name}.out").open("wb") as out, (tasks / f"{name}.err").open("wb") as err:
            process = subprocess.Popen(argv, env=_environment(phase, endpoints), cwd=program["cwd"], stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent())
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"phase {phase.name}: the producer program `{shlex.join(argv)}` could not start in "
                           f"{program['cwd']}: {exc}") from None
    group = ProcessGroup(process)
    stopped_by = _supervise(group, phase, stop, sends.read)
    time.sleep(JOURNAL_SETTLE)
    sends.read()
    result.sent, result.duplicate_sends = sends.sent, sends.again
    code = group.returncode
    if code:
        result.errors[f"exit code {code}"] = 1
    if sends.unnamed:
        result.errors["no sqslab id"] = sends.unnamed
    result.interrupted = stop.is_set()
    result.ended_at = time.time()
    result.producer_program = {"command": shlex.join(argv), "exit_code": code, "stopped_by": stopped_by or None,
                      "unnamed_sends": sends.unnamed, "log": f"tasks/{name}.err"}
    return result
