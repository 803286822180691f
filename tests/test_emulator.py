"""Tests for the embedded SQS emulator (sqslab.emulator)."""

from __future__ import annotations

import os
import socket

import boto3
import pytest

from sqslab.emulator import Emulator, EmulatorError


def _client(endpoint_url: str):
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_start_send_receive_stop() -> None:
    with Emulator() as emu:
        assert emu.endpoint_url.startswith("http://127.0.0.1:")
        sqs = _client(emu.endpoint_url)
        url = sqs.create_queue(QueueName="smoke")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in msgs] == ["hello"]
        pid = emu.pid
    assert pid is not None and not _alive(pid)
    emu.stop()  # idempotent


@pytest.mark.integration
def test_taken_port_raises_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        emu = Emulator(port=port)
        with pytest.raises(EmulatorError, match="exited with code"):
            emu.start()
        assert not emu.running
