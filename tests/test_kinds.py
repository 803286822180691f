"""Kinds of consumer through one door (sqslab.consumers): the built-in consumer and
`consumer.program` are registered like any plugin's kind, and a third kind from a plugin
of its own (tests/fixtures/kinds/tally.py) validates, plans and runs end to end on the
local target with no change to sqslab."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from sqslab.consumers import Consumer, ConsumerKind
from sqslab.plugins import PluginError, load_plugins
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.scenario.load import ScenarioError, check_file, load_scenario
from tests.conftest import FIXTURES, ROOT

KINDS = FIXTURES / "kinds"


@pytest.fixture(scope="module")
def tally_host():
    return load_plugins([KINDS], entry_points=False)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_the_built_in_kinds_are_registered_through_the_hook(host):
    assert list(host.consumer_kinds) == ["builtin", "program", "lambda"]
    assert {k.plugin for k in host.kinds.values()} == {"sqslab.consumers.builtin", "sqslab.consumers.program",
                                                        "sqslab.consumers.lambda_function"}
    entry = next(p for p in host.describe() if p["name"] == "sqslab.consumers.program")
    assert entry["consumer_kinds"] == ["program"]


def test_a_plugin_kind_is_validated_by_its_schema_and_its_own_checks(tmp_path, tally_host, host):
    path = _write(tmp_path, """
        version: 1
        name: t
        consumer: {tally: {batch: 11, fail_evry: 2}, error_rate: 0.1}
    """)
    messages = [str(p) for p in check_file(path, tally_host)]
    assert any("consumer.tally.batch: must be at most 10" in m for m in messages), messages
    assert any("consumer.tally.fail_evry: unknown key" in m and "did you mean 'fail_every'" in m for m in messages), messages
    assert any(":3:58: consumer.error_rate: error_rate is a knob of the built-in consumer" in m for m in messages), messages
    # Without the plugin, consumer.tally is an unknown key like any other.
    assert any("consumer.tally: unknown key 'tally'" in str(p) for p in check_file(path, host))
    one = _write(tmp_path, "version: 1\nname: t\nconsumer: {tally: {fail_every: 1}}\n")
    assert [p.message for p in check_file(one, tally_host)] == [
        "fail_every 1 fails every message: nothing is ever processed; give 2 or more, or 0"]
    two = _write(tmp_path, "version: 1\nname: t\nconsumer: {tally: {}, program: {command: [x]}}\n")
    assert any("two kinds of consumer" in p.message for p in check_file(two, tally_host))


def test_a_kind_whose_key_is_taken_is_refused(tmp_path):
    plugin = tmp_path / "clash.py"
    plugin.write_text(textwrap.dedent("""
        import sqslab
        from sqslab.consumers import ConsumerKind

        class Clash(ConsumerKind):
            name = "clash"
            key = "error_rate"
            def resolve(self, consumer, scenario_path, seed):
                raise AssertionError

        @sqslab.hookimpl
        def register_consumer_kinds(register):
            register(Clash())
    """))
    with pytest.raises(PluginError, match=r"consumer.error_rate is already a built-in consumer knob"):
        load_plugins([tmp_path], entry_points=False)


def test_a_plugin_kind_runs_a_scenario_end_to_end_on_the_local_target(tmp_path, tally_host):
    path = _write(tmp_path, """
        version: 1
        name: tally
        seed: 8
        infra: {consumers: 2, queue: {visibility_timeout: 2s}}
        consumer: {tally: {batch: 4, fail_every: 7}}
        load: [{rate: 20/s, duration: 2s}]
        actions: [{at: 1s, do: set_consumer, batch: 2}]
        settle: {timeout: 30s}
        # Nothing lost or left; on a loaded machine a message failed every 7th time can also
        # be redelivered into the DLQ or processed twice, which the ledger counts as such.
        expect: [lost == 0, still_queued == 0]
    """)
    scenario = load_scenario(path, tally_host)
    assert isinstance(scenario.consumer, Consumer) and scenario.consumer.kind == "tally"
    result = run_scenario(scenario, tally_host, RunOptions(out=tmp_path / "run", handle_signals=False))
    summary = result.summary
    assert result.exit_code == 0, (summary["errors"], summary["expectations"], summary.get("findings"))
    assert summary["consumer"] == {"kind": "tally", "command": str(KINDS / "worker" / "tally_worker.py"), "batch": 4, "fail_every": 7}
    assert summary["figures"]["failures"] > 0 and summary["figures"]["redeliveries"] > 0  # every 7th came back
    check = summary["ledger"]["journal"]["check"]
    assert check["agree"], check["disagreements"]  # its events and the SQS journal tell the same story
    # The roll to batch 2 reached the new revision's tasks.
    rolled = [a for a in summary["actions"] if a.get("do") == "set_consumer"]
    assert rolled and rolled[0]["status"] == "done" and "batch=2" in rolled[0]["result"]


def test_a_plugin_kind_that_cannot_run_on_aws_says_so_before_aws_is_touched(tmp_path, tally_host):
    from sqslab.targets import TargetError
    from sqslab.targets.aws.target import AwsTarget

    scenario = load_scenario(_write(tmp_path, "version: 1\nname: t\nconsumer: {tally: {}}\n"), tally_host)
    with pytest.raises(TargetError, match="runs on the local target only"):
        AwsTarget().plan(scenario)


def test_no_code_outside_the_kinds_asks_which_kind_it_runs():
    found = subprocess.run(["git", "grep", "-nE", r"program is (not )?None", "--", "sqslab"], cwd=ROOT,
                           capture_output=True, text=True).stdout
    assert [line for line in found.splitlines() if not line.startswith("sqslab/consumers/")] == []


def test_the_kind_interface_is_what_the_docs_say():
    """The hook's docstring names the kind's methods; each exists on ConsumerKind."""
    from sqslab import hookspecs

    doc = hookspecs.register_consumer_kinds.__doc__ or ""
    for name in ("name", "key", "schema", "problems", "resolve"):
        assert f"``{name}" in doc and (hasattr(ConsumerKind, name) or name in ConsumerKind.__annotations__), name


def test_an_invalid_plugin_kind_scenario_is_a_scenario_error(tmp_path, tally_host):
    with pytest.raises(ScenarioError):
        load_scenario(_write(tmp_path, "version: 1\nname: t\nconsumer: {tally: {batch: 0}}\n"), tally_host)


def test_the_target_hook_documents_every_method_of_the_protocol_and_both_targets_declare_it():
    import inspect

    from sqslab import hookspecs
    from sqslab.targets import Target
    from sqslab.targets.aws.target import AwsTarget
    from sqslab.targets.local import LocalTarget

    methods = sorted(name for name, member in inspect.getmembers(Target, inspect.isfunction) if not name.startswith("_"))
    listed = (hookspecs.register_targets.__doc__ or "").split("says (", 1)[1].split(")", 1)[0].replace("\n", " ")
    assert sorted(name.strip() for name in listed.split(",")) == methods
    assert issubclass(LocalTarget, Target) and Target in LocalTarget.__mro__ and Target in AwsTarget.__mro__
