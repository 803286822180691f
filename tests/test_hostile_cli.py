"""Careless and hostile command lines: usage errors are exit 2 with the option named, never
an internal error (exit 3)."""

from __future__ import annotations

import subprocess
import sys


def test_an_emulator_port_out_of_range_is_a_usage_error(cli):
    result = cli("emulator", "--port", "99999")
    assert result.exit_code == 2 and "--port" in result.output and "99999" in result.output


def test_an_emulator_journal_in_a_missing_folder_is_a_usage_error(cli, tmp_path):
    result = cli("emulator", "--journal", str(tmp_path / "no" / "such" / "journal.jsonl"))
    assert result.exit_code == 2 and "--journal" in result.output and "no folder" in result.output


def test_an_emulator_journal_that_is_a_folder_is_a_usage_error(cli, tmp_path):
    result = cli("emulator", "--events", str(tmp_path))
    assert result.exit_code == 2 and "--events" in result.output and "is a directory" in result.output


def test_the_internal_emulator_entry_point_serves_loopback_only():
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        done = subprocess.run([sys.executable, "-m", "sqslab.emulator", "--host", host], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "loopback addresses only" in done.stderr, (host, done.stderr)


def test_validate_says_which_command_a_scenario_will_execute(cli, write, tmp_path):
    path = write("version: 1\nname: p\nconsumer: {program: {command: [python3, -c, pass]}}\nload: [{burst: 1}]\n")
    result = cli("validate", path)
    assert result.exit_code == 0, result.output
    assert f"{path}: executes python3 -c pass (in {path.parent}) as each consumer task" in result.output
    data = cli("validate", "--json", path)
    import json
    assert json.loads(data.stdout)["files"][0]["executes"] == {"command": ["python3", "-c", "pass"], "cwd": str(path.parent)}


def test_redrive_without_a_dlq_is_refused(cli, write):
    path = write("version: 1\nname: r\ninfra: {dlq: {enabled: false}}\nload: [{burst: 1}]\nactions: [{at: 1s, do: redrive_dlq}]\n")
    result = cli("validate", path)
    assert result.exit_code == 2 and "actions[0].do: redrive_dlq moves messages back from the DLQ" in result.output


def test_a_ready_timeout_alone_keeps_the_default_readiness(cli, write):
    ok = write("version: 1\nname: r\nconsumer: {program: {command: [python3, -c, pass], ready: {timeout: 5s}}}\nload: [{burst: 1}]\n")
    assert cli("validate", ok).exit_code == 0
    both = write("version: 1\nname: r\nconsumer: {program: {command: [python3, -c, pass], ready: {log: up, delay: 1s}}}\n"
                 "load: [{burst: 1}]\n", "both.yaml")
    result = cli("validate", both)
    assert result.exit_code == 2 and "give ready.log or ready.delay, not both" in result.output


def test_a_program_that_signs_with_its_own_key_needs_a_readiness_it_can_show(cli, write):
    """program.env: {AWS_ACCESS_KEY_ID: testing} with the default readiness waited 60 s and
    failed with no hint: validate says why at once, and what to do."""
    path = write("version: 1\nname: k\nconsumer: {program: {command: [python3, -c, pass], env: {AWS_ACCESS_KEY_ID: testing}}}\n"
                 "load: [{burst: 1}]\n")
    result = cli("validate", path)
    assert result.exit_code == 2 and "consumer.program.env.AWS_ACCESS_KEY_ID" in result.output
    assert "drop AWS_ACCESS_KEY_ID, or give ready.log or ready.delay" in result.output
    fine = write("version: 1\nname: k\nconsumer: {program: {command: [python3, -c, pass], env: {AWS_ACCESS_KEY_ID: testing}, "
                 "ready: {delay: 1s}}}\nload: [{burst: 1}]\n", "fine.yaml")
    assert cli("validate", fine).exit_code == 0


def test_validate_notes_a_retention_shorter_than_the_run(cli, write):
    """A retention of 1 minute over a 66 s run: the expired messages were LOST and validate
    said nothing. It is valid (it may be the experiment), and validate says what follows."""
    path = write("version: 1\nname: ret\ninfra: {queue: {retention: 1m}}\nload: [{rate: 5/s, duration: 66s}]\n")
    result = cli("validate", path)
    assert result.exit_code == 0
    assert "note: infra.queue.retention 1m is shorter than the run can take" in result.output and "expired" in result.output
    assert "note:" not in cli("validate", write("version: 1\nname: ok\nload: [{burst: 1}]\n", "ok.yaml")).output
