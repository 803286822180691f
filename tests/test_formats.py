"""Body formats (sqslab.scenario.formats): a load phase sends a framework's own message
format, as the framework itself writes it; Celery and dramatiq workers run on them, and a
plugin adds a format of its own through the same hook as the built-ins."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sqslab.plugins import load_plugins
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.scenario.formats import FormatMessage, celery, dramatiq
from sqslab.scenario.load import check_file, load_scenario
from tests.conftest import ROOT

MESSAGE = FormatMessage("2f0c5e4e-0000-4000-8000-000000000007", 7, 6, "orders", 1796000000.25, "sqslab-run-q",
                        "http://127.0.0.1:4566/000000000000/sqslab-run-q")


def unb64(text: str) -> Any:
    return json.loads(base64.b64decode(text))


def test_the_celery_format_is_the_message_celery_itself_sends_through_kombu() -> None:
    pytest.importorskip("celery", reason="comparing with Celery's own message needs celery[sqs]")
    pytest.importorskip("pycurl", reason="kombu's SQS transport needs pycurl (celery[sqs])")
    from moto import mock_aws

    with mock_aws():
        import boto3
        from celery import Celery

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName=MESSAGE.queue_name)["QueueUrl"]
        app = Celery("orders", broker="sqs://")
        app.conf.broker_transport_options = {"region": "us-east-1", "predefined_queues": {MESSAGE.queue_name: {"url": url}}}
        app.conf.task_default_queue = MESSAGE.queue_name
        app.send_task("orders.charge", args=["order-7", 12], kwargs={"rush": True}, task_id=MESSAGE.id)
        theirs = unb64(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    ours = unb64(celery({"task": "orders.charge", "args": '["order-7", 12]', "kwargs": '{"rush": true}'}, MESSAGE))
    assert unb64(ours["body"]) == unb64(theirs["body"]) == [["order-7", 12], {"rush": True},
                                                             {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    # What differs is where and when it was sent from, and the ids kombu draws at random.
    for envelope in (ours, theirs):
        envelope["headers"].pop("origin")
        envelope["headers"]["ignore_result"] = bool(envelope["headers"]["ignore_result"])
        for key in ("reply_to", "delivery_tag"):
            envelope["properties"].pop(key)
        envelope.pop("body")
    assert ours == theirs
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == MESSAGE.id


def test_the_dramatiq_format_decodes_as_dramatiqs_own_message() -> None:
    pytest.importorskip("dramatiq", reason="decoding with dramatiq needs dramatiq")
    import dramatiq as dramatiq_package

    body = dramatiq({"actor": "charge", "args": '["order-7", 12]'}, MESSAGE)
    message = dramatiq_package.Message.decode(base64.b64decode(body))  # as dramatiq-sqs's consumer reads a body
    assert (message.queue_name, message.actor_name, message.args, message.kwargs) == ("sqslab-run-q", "charge", ("order-7", 12), {})
    assert message.message_id == MESSAGE.id and message.message_timestamp == 1796000000250
    expected = dramatiq_package.Message(queue_name="sqslab-run-q", actor_name="charge", args=("order-7", 12), kwargs={},
                                        options={}, message_id=MESSAGE.id, message_timestamp=1796000000250)
    assert base64.b64decode(body) == expected.encode(), "byte for byte what dramatiq-sqs sends"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_validate_tells_every_format_problem_at_its_key(tmp_path: Path, host) -> None:
    path = write(tmp_path, """
        version: 1
        name: formats
        load:
          - burst: 5
            format: {name: celeri, task: orders.charge}
          - burst: 5
            format: {name: dramatiq, actr: charge, args: '["{{ idd }}"]'}
          - burst: 5
            format: {name: celery, task: orders.charge, args: '{"a": 1}'}
          - burst: 5
            body: '{"id": "{{ id }}"}'
            format: {name: celery, task: orders.charge}
          - burst: 5
            payload_size: 1KiB
            format: {name: celery, task: 'orders charge'}
        """)
    problems = [str(p) for p in check_file(path, host)]
    expected = [
        ":5:20: load[0].format.name: unknown body format 'celeri'; did you mean 'celery'?",
        ":7:13: load[1].format: missing required key 'actor'",
        ":7:30: load[1].format.actr: unknown key 'actr'; did you mean 'actor'? (format 'dramatiq')",
        ":7:50: load[1].format.args: unknown name 'idd' in the body template; did you mean 'id'?",
        ":9:55: load[2].format.args: args must render as a JSON list; it rendered '{\"a\": 1}'",
        ":12:13: load[3].format: a format writes the whole body; give body (or body_file) or format, not both",
        ":14:19: load[4].payload_size: payload_size sizes sqslab's own body; a body format sets its own",
        ":15:34: load[4].format.task: 'orders charge': a name is letters, digits",
    ]
    assert len(problems) == len(expected), problems
    for want, got in zip(expected, problems, strict=True):
        assert want in got, (want, got)


PLUGIN = '''
import sqslab
from sqslab.scenario.formats import FormatError


@sqslab.hookimpl
def register_body_formats(register):
    def csv(params, message):
        fields = [message.id, params["customer"], message.queue_name]
        if any("," in f for f in fields):
            raise FormatError("a CSV field may hold no comma", "customer")
        return ",".join(fields)

    register("csv", csv, schema={"type": "object", "required": ["customer"], "additionalProperties": False,
                                  "properties": {"customer": {"type": "string"}}},
             templates=("customer",), description="id,customer,queue")
'''


@pytest.mark.integration
def test_a_plugins_format_validates_lists_and_sends_its_bodies(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "csvformat.py").write_text(PLUGIN)
    host = load_plugins([plugins], entry_points=False)
    assert host.formats["csv"].plugin.startswith("csvformat") and set(host.formats) == {"celery", "dramatiq", "csv"}
    listed = subprocess.run([sys.executable, "-m", "sqslab", "plugins", "--plugins-dir", str(plugins)], capture_output=True,
                            text=True, timeout=60)
    assert "body formats:" in listed.stdout and "csv" in listed.stdout and "celery" in listed.stdout
    path = write(tmp_path, """
        version: 1
        name: csv-format
        seed: 4
        consumer: {work_time: 5ms}
        load:
          - burst: 12
            format: {name: csv, customer: 'c{{ rand_int(1, 3) }}'}
        settle: {until: drained, timeout: 20s}
        expect: [processed_once == sent]
        """)
    bad = path.read_text().replace("'c{{ rand_int(1, 3) }}'", "'a,b'")
    (tmp_path / "bad.yaml").write_text(bad)
    problems = [str(p) for p in check_file(tmp_path / "bad.yaml", host)]
    assert len(problems) == 1 and "load[0].format.customer: a CSV field may hold no comma" in problems[0], problems
    result = run_scenario(load_scenario(path, host), host, RunOptions(out=tmp_path / "run", handle_signals=False))
    assert result.exit_code == 0, result.summary["expectations"]
    sends = [json.loads(line) for line in (tmp_path / "run" / "sqs_journal.jsonl").read_text().splitlines()]
    assert sum(1 for line in sends if line["op"] == "send") == 12
    queue = json.loads((tmp_path / "run" / "resolved.json").read_text())["phases"][0]["format"]
    assert queue == {"name": "csv", "customer": "c{{ rand_int(1, 3) }}"}, "resolved.json keeps the format as written"


def _needs(program: str, *modules: str) -> None:
    for module in modules:
        pytest.importorskip(module, reason=f"the {program} example needs {module} (.ci/run installs it with sqslab[test])")
    if shutil.which(program) is None:
        pytest.skip(f"the `{program}` command is not on PATH (pip install sqslab[test] puts it there)")


def run_file(tmp_path: Path, name: str, *overrides: str) -> tuple[int, dict[str, Any]]:
    text = (ROOT / "scenarios" / name).read_text().replace("../consumer", str(ROOT / "consumer"))
    path = tmp_path / name
    path.write_text(text)
    host = load_plugins(entry_points=False)
    result = run_scenario(load_scenario(path, host, overrides=list(overrides)), host,
                          RunOptions(out=tmp_path / "run", handle_signals=False))
    return result.exit_code, result.summary


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("acks_late", [False, True], ids=["early-ack", "acks_late"])
def test_celery_killed_mid_task_loses_work_with_early_acknowledgement_and_none_with_acks_late(tmp_path: Path,
                                                                                               acks_late: bool) -> None:
    """The issue's Celery run: kombu's SQS transport, Celery's own messages, three workers
    killed mid-task. SQS loses nothing either way; early acknowledgement loses the work in
    hand and fails `effects.lost_work == 0`, acks_late passes it."""
    _needs("celery", "celery", "pycurl")
    code, summary = run_file(tmp_path, "celery_early_ack.yaml", f"consumer.program.env.ACKS_LATE={str(acks_late).lower()}",
                             'expect=["lost == 0", "effects.lost_work == 0"]')
    figures = summary["figures"]
    assert summary["errors"] == [] and figures["lost"] == 0 and figures["sent"] == 16
    assert sum(summary["ledger"]["counts"].values()) == 16
    if acks_late:
        assert code == 0 and figures["effects.lost_work"] == 0, figures
    else:
        assert code == 1 and figures["effects.lost_work"] > 0, figures
        failed = [e for e in summary["expectations"] if not e["passed"]]
        assert [e["text"] for e in failed] == ["effects.lost_work == 0"]
    assert figures["effects.applied_once"] + figures["effects.lost_work"] + figures["effects.duplicates"] == 16
    # Each lost charge is a task that logged START and never DONE: the worker's own log agrees.
    started, done = set(), set()
    for log in (tmp_path / "run" / "tasks").glob("task-*.err"):
        for line in log.read_text().splitlines():
            if " START " in line:
                started.add(line.rsplit(" ", 1)[-1])
            elif " DONE " in line:
                done.add(line.rsplit(" ", 1)[-1])
    lost = {p["id"] for p in summary["ledger"]["problems"] if p.get("effect", {}).get("fate") == "lost work"}
    assert lost <= started - done


@pytest.mark.integration
@pytest.mark.slow
def test_dramatiq_runs_on_dramatiq_sqss_own_format_and_its_retries_charge_once(tmp_path: Path) -> None:
    _needs("dramatiq", "dramatiq", "dramatiq_sqs")
    code, summary = run_file(tmp_path, "dramatiq_worker.yaml")
    figures = summary["figures"]
    assert code == 0, summary["expectations"]
    assert figures["lost"] == 0 and figures["effects.applied_once"] == figures["sent"] == 30
    assert figures["effects.duplicates"] == 0 and figures["effects.lost_work"] == 0
    logs = "".join(p.read_text() for p in (tmp_path / "run" / "tasks").glob("task-*.err"))
    assert "(try 2)" in logs and "payment service timed out" in logs, "dramatiq retried the failing orders itself"
    # Its retries are copies it sent itself, with no sqslab id: said, not made part of a fate.
    assert summary["ledger"]["journal"]["consumer_sends"] == {"sent": 6, "naming_no_message": 6}
