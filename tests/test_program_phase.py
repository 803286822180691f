"""Your own producer as a load phase (sqslab.run.program_phase): its sends, read from the
SQS journal by its caller, are the run's messages; the phase ends when it exits, or at
its duration; what it sends without an id is said, not silently dropped."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sqslab.plugins import load_plugins
from sqslab.run.recorder import Recorder
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.scenario.load import check_file, load_scenario
from tests.conftest import ROOT

#: A producer program: N messages (SQSLAB_QUEUE_URL), with the sqslab-id attribute or an
#: orderId in the body (NAMING), then it exits with EXIT, or keeps running (FOREVER).
PRODUCER = """
import json, os, sys, time, uuid
import boto3
sqs = boto3.client("sqs")
url = os.environ["SQSLAB_QUEUE_URL"]
for i in range(int(os.environ.get("N", "10"))):
    ident = str(uuid.uuid4())
    kw = {}
    if os.environ.get("NAMING") == "attribute":
        kw["MessageAttributes"] = {"sqslab-id": {"DataType": "String", "StringValue": ident}}
    body = {"orderId": ident} if os.environ.get("NAMING") != "none" else {"order": i}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), **kw)
print("sent", flush=True)
while os.environ.get("FOREVER"):
    time.sleep(0.1)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def scenario(tmp_path: Path, env: dict[str, str], duration: str = "15s", effects: str = "effects: {id: orderId}\n") -> Path:
    (tmp_path / "producer.py").write_text(PRODUCER)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""
        version: 1
        name: program-phase
        consumer: {{work_time: 5ms}}
        load:
          - name: app
            producer:
              program:
                command: [{sys.executable}, producer.py]
                env: {json.dumps(env)}
                stop_grace: 2s
            duration: {duration}
          - burst: 5
        settle: {{until: drained, timeout: 20s}}
        """).lstrip() + effects)
    return path


def run(path: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    host = load_plugins(entry_points=False)
    result = run_scenario(load_scenario(path, host), host, RunOptions(out=tmp_path / "run", handle_signals=False))
    return result.exit_code, result.summary


@pytest.mark.integration
@pytest.mark.parametrize("naming", ["attribute", "body"])
def test_a_producer_programs_sends_are_the_runs_messages_each_with_a_fate(tmp_path: Path, naming: str) -> None:
    """Named by the sqslab-id attribute, or by effects.id's path in the body; the next
    phase (sqslab's own burst) starts when the program has exited."""
    code, summary = run(scenario(tmp_path, {"N": "12", "NAMING": naming}), tmp_path)
    figures = summary["figures"]
    assert code == 0 and summary["findings"] == [], summary["findings"]
    assert figures["sent"] == 17 and figures["processed_once"] == 17 and figures["lost"] == 0
    program, burst = summary["phases"]
    assert program["sent"] == 12 and program["producer_program"]["exit_code"] == 0 and program["producer_program"]["stopped_by"] is None
    assert program["end"] <= burst["start"] + 0.05 and program["elapsed"] < 10, "the phase ended with the program"
    sent = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines() if '"event":"sent"' in line]
    assert sum(1 for e in sent if e.get("by") == "producer-app") == 12
    assert sum(summary["ledger"]["counts"].values()) == 17


@pytest.mark.integration
def test_a_producer_program_still_running_at_its_duration_is_stopped_and_its_sends_count(tmp_path: Path) -> None:
    code, summary = run(scenario(tmp_path, {"N": "4", "NAMING": "attribute", "FOREVER": "1"}, duration="2s"), tmp_path)
    program = summary["phases"][0]
    assert program["producer_program"]["stopped_by"] == "the phase's duration (2s)" and program["sent"] == 4
    assert 1.9 < program["elapsed"] < 6
    assert code == 0 and summary["figures"]["sent"] == 9


@pytest.mark.integration
def test_sends_naming_no_id_and_a_failing_producer_program_are_findings(tmp_path: Path) -> None:
    code, summary = run(scenario(tmp_path, {"N": "3", "NAMING": "none", "EXIT": "3"}), tmp_path)
    findings = "\n".join(summary["findings"])
    assert code == 1, summary["findings"]
    assert "phase app: 3 message(s) the producer program sent name no sqslab id" in findings
    assert "exited with code 3" in findings and "tasks/producer-app.err" in findings
    assert summary["figures"]["sent"] == 5, "the burst's messages; the program's 3 are said, not made up"


def test_validate_tells_a_producer_phases_problems_at_their_keys(tmp_path: Path, host) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""
        version: 1
        name: bad-producer
        load:
          - producer:
              program:
                command: [no-such-program-here]
                env: {AWS_ACCESS_KEY_ID: mine}
            body: '{"id": "{{ id }}"}'
        """).lstrip())
    problems = [str(p) for p in check_file(path, host)]
    expected = [":4:5: load[0]: a producer phase needs a duration",
                ":6:18: load[0].producer.program.command: `no-such-program-here` is not on the program's PATH",
                ":7:15: load[0].producer.program.env.AWS_ACCESS_KEY_ID: sqslab sets AWS_ACCESS_KEY_ID",
                ":8:5: load[0].body: body shapes what sqslab's own producer sends"]
    assert len(problems) == len(expected), problems
    for want in expected:
        assert any(want in p for p in problems), (want, problems)


def test_the_aws_target_refuses_a_producer_program_before_touching_aws(tmp_path: Path) -> None:
    from sqslab.targets import TargetError
    from sqslab.targets.aws.target import AwsTarget

    host = load_plugins(entry_points=False)
    with pytest.raises(TargetError, match="cannot account for a producer program's sends yet"):
        AwsTarget().plan(load_scenario(scenario(tmp_path, {}, effects=""), host))


def test_a_seq_no_producer_handed_out_indexes_nothing(tmp_path: Path) -> None:
    """A consumer (or an id) telling a seq far past what was sent, as a program's own ids
    do, is counted by its id: no array sized by it (that was a MemoryError)."""
    recorder = Recorder(tmp_path, 3, True)
    recorder.on_sent([{"id": "a", "seq": 1, "sent_at": 1.0}])
    events = [{"event": "processed", "id": "b", "seq": 2**47}, {"event": "processed", "id": "b", "seq": 2**47},
              {"event": "processed", "id": "a", "seq": 1}]
    recorder.take_consumer_events(events)
    assert recorder.counters() == {"sent": 1, "processed": 2, "processed_again": 1, "failed": 0}
    assert len(recorder._processed) <= 1


def test_the_example_producer_scenario_accounts_for_every_order(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "own_producer.yaml").read_text().replace("../consumer", str(ROOT / "consumer"))
    path = tmp_path / "own_producer.yaml"
    path.write_text(text)
    code, summary = run(path, tmp_path)
    assert code == 0, summary["expectations"]
    assert summary["figures"]["effects.applied_once"] == summary["figures"]["sent"] == 60
