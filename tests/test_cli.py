"""The command line as a user meets it: exit codes, output, help, plugins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT


def test_validate_valid_scenarios_exit_0(cli):
    result = cli("validate", ROOT / "scenarios")
    assert result.exit_code == 0
    assert "scenario files valid" in result.stderr


def test_validate_invalid_exit_2_with_every_problem(cli, write):
    path = write("version: 1\nname: x\nseeed: 1\ninfra: {consumers: two}\n")
    result = cli("validate", path)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{path}:3:1: seeed: unknown key 'seeed'; did you mean 'seed'?",
        f"{path}:4:20: infra.consumers: expected an integer, got text 'two'",
    ]
    assert "2 problems in 1 of 1 file" in result.stderr


def test_validate_json(cli, write):
    bad = write("version: 1\nname: x\nexpect: ['lost = 0']\n", "bad.yaml")
    good = write("version: 1\nname: y\n", "good.yaml")
    result = cli("validate", "--json", bad, good)
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert payload["files"][0]["problems"] == [
        {"file": str(bad), "line": 3, "col": 10, "path": "expect[0]", "message": "'lost = 0': use '==' to compare, not '='"}]
    assert payload["files"][1] == {"file": str(good), "valid": True, "problems": []}


def test_validate_missing_path_is_usage_error(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml: no such file or directory" in result.stderr


def test_validate_default_is_scenarios_dir(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(ROOT)
    assert cli("validate").exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = cli("validate")
    assert result.exit_code == 2
    assert "scenarios: no such file or directory (run from a directory that has scenarios/, or name the files)" in result.stderr


def test_plan_prints_timeline_and_totals(cli):
    result = cli("plan", ROOT / "scenarios" / "scale_drain.yaml")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "plan: scale-drain on target local"
    assert [line.split()[:3] for line in lines[2:5]] == [["0s", "phase", "backlog"], ["10s", "action", "scale-1"], ["20s", "action", "scale-2"]]
    assert "burst of 600" in lines[2] and lines[2].rstrip().endswith("600")
    assert lines[5] == "total: 600 messages over ~1.2s of load, then settle until drained (timeout 2m)"


def test_plan_after_and_when(cli, write):
    path = write("""
        version: 1
        name: plan-test
        load:
          - {name: warm, rate: 5/s, duration: 30s}
          - {name: burst, burst: 1000}
          - {pause: 10s}
        actions:
          - {at: 30s, do: kill_consumer, count: 1}
          - {name: hold, after: warm + 5s, do: wait, for: 10s}
          - {after: hold, do: scale, to: 3}
          - {when: 'queue.visible > 500', do: scale, to: 5}
    """)
    result = cli("plan", "--json", path)
    rows = json.loads(result.stdout)["rows"]
    assert [(r["start"], r["name"], r["estimated"]) for r in rows] == [
        (0.0, "warm", False), (30.0, "burst", False), (30.0, "kill_consumer-1", False),
        (32.0, "pause-3", True), (35.0, "hold", False), (45.0, "scale-3", False), (None, "scale-4", False)]
    assert json.loads(result.stdout)["total_messages"] == 1150


def test_plan_invalid_scenario_exit_2(cli, write):
    result = cli("plan", write("version: 1\nname: x\nload: [{rate: 5}]\n"))
    assert result.exit_code == 2
    assert ":3:15: load[0].rate: bare number 5 is ambiguous" in result.stderr


def test_schema_includes_plugin_actions(cli):
    result = cli("schema", "--plugins-dir", FIXTURES / "plugins")
    schema = json.loads(result.stdout)
    assert "drain_hold" in schema["$defs"]["action"]["properties"]["do"]["enum"]
    assert result.exit_code == 0


def test_plugins_lists_builtins_and_dir_plugins(cli):
    result = cli("plugins", "--json", "--plugins-dir", FIXTURES / "plugins")
    described = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(described["sqslab.run.actions"]["actions"]) == {"kill_consumer", "scale", "set_consumer", "sqs_fault", "redrive_dlq", "wait"}
    assert [p["actions"] for n, p in described.items() if n.startswith("drain_hold")] == [["drain_hold"]]


def test_duplicate_plugin_name_is_an_error(cli, tmp_path):
    (tmp_path / "dup.py").write_text(
        "import sqslab\n@sqslab.hookimpl\ndef register_actions(register):\n    register('scale', lambda ctx, p: '')\n")
    result = cli("plugins", "--plugins-dir", tmp_path)
    assert result.exit_code == 2
    assert "action 'scale' is already registered by sqslab.run.actions" in result.stderr


def test_misspelled_hook_fails_loudly(cli, tmp_path):
    (tmp_path / "typo.py").write_text("import sqslab\n@sqslab.hookimpl\ndef register_action(register):\n    pass\n")
    result = cli("plugins", "--plugins-dir", tmp_path)
    assert result.exit_code == 2
    assert "register_action" in result.stderr and "known hooks" in result.stderr


@pytest.mark.parametrize("command", ["validate", "schema", "plan", "plugins", "run", "sweep", "report", "emulator", "produce"])
def test_every_command_has_help(cli, command):
    result = cli(command, "-h")
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_python_m_sqslab_and_help_import_no_boto3_or_moto():
    code = ("import sys, runpy; sys.argv=['sqslab','--help']\n"
            "try: runpy.run_module('sqslab', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3','botocore','moto','jsonschema')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_validate_imports_no_boto3_or_moto():
    code = ("import sys\nfrom sqslab.cli import main\n"
            "try: main(['validate', 'scenarios'])\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3','botocore','moto')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_plan_for_aws_shows_the_tfvars(cli):
    result = cli("plan", "--target", "aws", "--image-tag", "abc123", ROOT / "scenarios" / "dlq_growth.yaml")
    assert result.exit_code == 0
    tfvars = result.stdout.split("terraform.tfvars:\n", 1)[1]
    assert re.search(r'name +?= "dlq-growth-[0-9a-f]{4}"', tfvars)  # a stack of its own per run
    assert re.search(r"^ecr_create_repository += false$", tfvars, re.M)
    assert "visibility_timeout_seconds    = 2" in tfvars and "desired_count                 = 2" in tfvars
    assert 'image_tag                     = "abc123"' in tfvars
    assert re.search(r'^  "SQSLAB_ERROR_RATE" += "0.2"$', tfvars, re.M)


@pytest.mark.integration
def test_produce_sends_to_any_queue(emulator, sqs, monkeypatch):
    from sqslab.emulator import DUMMY_ENV

    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    url = sqs.create_queue(QueueName="produce-cli")["QueueUrl"]
    from click.testing import CliRunner

    from sqslab.cli import main

    result = CliRunner().invoke(main, ["produce", "--queue-url", url, "--endpoint-url", emulator.endpoint_url,
                                       "--region", "us-west-1", "--n", "25", "--rate", "200"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sent 25, failed 0 in ")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "25"
    body = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert set(body) >= {"id", "work", "seq", "sent_at"}


def test_produce_bad_rate_is_a_usage_error(cli):
    result = cli("produce", "--queue-url", "http://127.0.0.1:9/q", "--rate", "0")
    assert result.exit_code == 2
    assert "the rate must be above 0 msg/s" in result.stderr


def test_every_hook_is_documented_and_exercised():
    """A hook that the README does not explain, or that no test registers through, fails here."""
    import inspect

    from sqslab import hookspecs

    readme = (ROOT / "README.md").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py")) + "\n".join(
        p.read_text() for p in (ROOT / "plugins").glob("*.py"))
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert hooks == ["register_actions", "register_body_formats", "register_consumer_kinds", "register_reporters", "register_targets"]
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, name
        assert f"`{name}(register)`" in readme, f"{name} is not in README.md's plugin table"
        assert f"def {name}(" in tests, f"no test or example plugin implements {name}"


def test_every_command_has_a_help_line_and_a_readme_row():
    from sqslab.cli import main

    readme = (ROOT / "README.md").read_text()
    for name, command in main.commands.items():
        assert command.get_short_help_str(), name
        assert f"`sqslab {name}" in readme, f"`sqslab {name}` is missing from README.md"


def test_a_bug_in_a_meaning_check_is_an_internal_error_not_a_silent_skip(cli, write, monkeypatch):
    """A check that raises on a schema-valid file must not disable itself quietly: exit 3,
    the error named, its traceback written to a file the message gives."""
    from sqslab.scenario import validation

    def broken(doc, data):
        return {}["no such key"]

    monkeypatch.setattr(validation, "MEANING_CHECKS", validation.MEANING_CHECKS + (broken,))
    result = cli("validate", write("version: 1\nname: fine\n"))
    assert result.exit_code == 3
    assert "internal error: KeyError: 'no such key'" in result.stderr
    where = re.search(r"the traceback is in (\S+\.txt)", result.stderr)
    assert where and "in broken" in open(where.group(1)).read()
    os.unlink(where.group(1))


def test_emulator_options_make_the_lab_and_refuse_what_is_wrong(cli):
    """`sqslab emulator --behavior/--sqs/--fault/--seed`: the same settings and fault rules
    as a scenario's `sqs` section, each bad one a usage error that says why."""
    from sqslab.cli import _emulator_lab

    assert _emulator_lab("exact", (), (), None) is None
    lab = _emulator_lab("aws", ("duplicates=5%", "count_lag=10s"), ("DeleteMessage:throttling:10%", "SendMessage,SendMessageBatch:timeout",
                                                                    "*::50%:10ms..20ms"), 3)
    assert lab is not None and lab["seed"] == 3
    assert lab["behavior"] == {"behavior": "aws", "duplicates": 0.05, "count_lag": 10.0}
    assert [(r["api"], r["error"], r["rate"], r["latency"]) for r in lab["faults"]] == [
        (["DeleteMessage"], "throttling", 0.1, None), (["SendMessage", "SendMessageBatch"], "timeout", 1.0, None),
        (["*"], None, 0.5, [0.01, 0.02])]
    for args, message in ((["--sqs", "duplicate=3"], "did you mean 'duplicates'?"),
                          (["--sqs", "duplicates=3"], "not a fraction"),
                          (["--fault", "DeleteMesage:throttling"], "not an SQS API: DeleteMesage"),
                          (["--fault", "DeleteMessage"], "write API:ERROR[:RATE[:LATENCY]]"),
                          (["--fault", "DeleteMessage:slow"], "error 'slow' is not one of")):
        result = cli("emulator", *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)


def test_plan_on_aws_says_what_a_consumer_program_needs_and_gets(cli):
    from tests.conftest import ROOT

    scenario = ROOT / "scenarios" / "own_consumer_python.yaml"
    missing = cli("plan", "--target", "aws", scenario)
    assert missing.exit_code == 2 and "consumer.program needs program.image on the aws target" in missing.output
    image = "123456789012.dkr.ecr.us-west-1.amazonaws.com/my-worker:1.4"
    result = cli("plan", "--target", "aws", scenario, "--set", f"consumer.program.image={image}")
    assert result.exit_code == 0, result.output
    assert f'consumer_image                = "{image}"' in result.output and '"WORK_SECONDS" = "0.15"' in result.output
    assert "SQSLAB_ERROR_RATE" not in result.output  # the built-in consumer's knobs are not the program's
    assert "a task counts as started when ECS reports it running" in result.output
