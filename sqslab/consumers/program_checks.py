"""The checks of a scenario that runs `consumer.program` (sqslab.consumers.program),
beyond its schema: no built-in knob beside it, a readiness it can reach, a command a
shell could split and the tasks could start, a working directory that exists, and
`set_consumer` with `env` only."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from sqslab.consumers import knobs_beside
from sqslab.scenario.document import Document, Problem, folder_of, items, mapping
from sqslab.scenario.names import ACTION_KEYS


def program_problems(doc: Document, data: dict[str, Any]) -> list[Problem]:
    """`consumer.program`: no built-in knob beside it, a command a shell could split, a
    working directory that exists; `set_consumer` changes knobs of the built-in consumer
    and `env` of a program, not the other way round."""
    consumer = mapping(data, "consumer")
    program = consumer.get("program")
    problems: list[Problem] = []
    setters = [(i, a) for i, a in enumerate(items(data, "actions")) if isinstance(a, dict) and a.get("do") == "set_consumer"]
    if not isinstance(program, dict):
        return problems
    problems += knobs_beside(doc, consumer, "program", "with a program only `program` applies in `consumer` (its command, "
                             "cwd, env, ready, stop_grace, image): give your program's own settings in program.env")
    ready = program.get("ready")
    env = program.get("env")
    if isinstance(env, dict) and "AWS_ACCESS_KEY_ID" in env and not (isinstance(ready, dict) and ({"log", "delay"} & ready.keys())):
        problems.append(doc.problem(("consumer", "program", "env", "AWS_ACCESS_KEY_ID"), (
            "each task signs with an access key of its own (sqslab-task-N), by which the SQS journal tells the tasks apart; "
            "with this one, no task is ever seen polling, so the default readiness (its first ReceiveMessage call) never "
            "comes: drop AWS_ACCESS_KEY_ID, or give ready.log or ready.delay (fates hold either way; per-task counts go "
            "under the key)")))
    if isinstance(ready, dict) and "log" in ready and "delay" in ready:
        problems.append(doc.problem(("consumer", "program", "ready"), "give ready.log or ready.delay, not both (neither: its first "
                                    "ReceiveMessage call); ready.timeout goes with any of them"))
    command = program.get("command")
    if isinstance(command, str):
        try:
            shlex.split(command)
        except ValueError as exc:
            problems.append(doc.problem(("consumer", "program", "command"), f"cannot split this command like a shell: {exc}"))
    cwd = program.get("cwd")
    base = folder_of(doc)
    if isinstance(cwd, str) and not (base / cwd).is_dir():
        problems.append(doc.problem(("consumer", "program", "cwd"),
                                    f"no directory {base / cwd} (cwd is relative to the scenario file)"))
    elif not problems and "image" not in program:  # with an image, the command is the container's on AWS
        problems += _command_problems(doc, program, base / cwd if isinstance(cwd, str) else base)
    for i, action in setters:
        for key in action:
            if key not in ACTION_KEYS and key != "env":
                problems.append(doc.problem(("actions", i, key), (
                    f"{key} is a knob of the built-in consumer; with consumer.program, set_consumer takes `env` "
                    "(the program's new environment variables)")))
    return problems


def _command_problems(doc: Document, program: dict[str, Any], cwd: Path) -> list[Problem]:
    """A command the tasks could not start (not found, not executable), refused before the
    run, naming the path searched (check_command)."""
    from types import SimpleNamespace

    command = program.get("command")
    try:
        argv = shlex.split(command) if isinstance(command, str) else command
    except ValueError:
        return []  # said above
    env = program.get("env")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return []  # the schema says what is wrong
    problem = check_command(SimpleNamespace(command=argv, cwd=str(cwd), env=env if isinstance(env, dict) else {}))
    if problem is None:
        return []
    key, _, message = problem.partition(": ")
    return [doc.problem(tuple(key.split(".")), message)]


def check_command(program: Any) -> str | None:
    """Why a task could not start `program.command` (an argv), or None: as the task will
    look for it, a name with a slash from the program's cwd, a bare name on the task's PATH
    (`program.env`'s, or sqslab's own; a relative entry from the cwd), with `shutil.which`
    semantics. The message names the path searched."""
    argv = list(program.command)
    if not argv:
        return "consumer.program.command is empty"
    cwd = Path(program.cwd)
    if not cwd.is_dir():
        return f"consumer.program.cwd: no directory {cwd}"
    name = argv[0]
    if "/" in name:
        path = cwd / name  # an absolute name stays itself
        if not path.exists():
            return f"consumer.program.command: `{name}` not found: no file {path}"
        if path.is_dir():
            return f"consumer.program.command: `{name}` is a directory: {path}"
        if not os.access(path, os.X_OK):
            return (f"consumer.program.command: `{name}`: {path} is not executable "
                    "(chmod +x it, or name its interpreter first)")
        return None
    search = (program.env or {}).get("PATH", os.environ.get("PATH", os.defpath))
    # The task looks from its own cwd: so do relative entries here ("" is the cwd itself).
    entries = [str(cwd / entry) if entry else str(cwd) for entry in search.split(os.pathsep)]
    if shutil.which(name, path=os.pathsep.join(entries)) is None:
        return f"consumer.program.command: `{name}` is not on the task's PATH (searched {search})"
    return None
