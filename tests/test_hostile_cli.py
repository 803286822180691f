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


def test_an_emulator_journal_that_cannot_be_written_is_a_usage_error(cli, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = cli("emulator", "--events", str(folder / "events.jsonl"))
        # root may write anywhere: then the check rightly lets it through (and the emulator would start)
        import os
        if os.access(folder, os.W_OK):
            return
        assert result.exit_code == 2 and "cannot be written" in result.output
    finally:
        folder.chmod(0o700)


def test_the_internal_emulator_entry_point_serves_loopback_only():
    for host in ("0.0.0.0", "10.1.2.3", "example.com"):
        done = subprocess.run([sys.executable, "-m", "sqslab.emulator", "--host", host], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "loopback addresses only" in done.stderr, (host, done.stderr)
