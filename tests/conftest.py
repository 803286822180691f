"""Shared fixtures: the plugin host, scenario writing helpers, a CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def host():
    """The plugin host with the built-ins only."""
    from sqslab.plugins import load_plugins

    return load_plugins(entry_points=False)


@pytest.fixture
def write(tmp_path):
    """write(text) -> path of a scenario file holding the dedented text."""

    def _write(text: str | bytes, name: str = "s.yaml") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture
def cli():
    """Invoke the sqslab CLI in-process: cli('validate', path) -> click Result."""
    from sqslab.cli import main

    runner = CliRunner()

    def _invoke(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return _invoke


@pytest.fixture(scope="session")
def emulator():
    """sqslab's embedded SQS emulator on a free loopback port, for the whole session."""
    from sqslab.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def sqs(emulator):
    """A boto3 SQS client for the session's emulator (dummy credentials)."""
    from sqslab.emulator import client

    return client(emulator.endpoint_url)
