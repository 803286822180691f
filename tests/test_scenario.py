"""Scenario validation: every malformed file gets the exact message and position a user sees."""

from __future__ import annotations

import json

import pytest

from sqslab.consumer.sqsfaults import SQS_APIS
from sqslab.scenario.load import ScenarioError, check_file, load_scenario, load_scenario_text

GOOD = """
version: 1
name: ok
load:
  - {name: steady, rate: 5/s, duration: 10s}
"""

# (file text, the problems reported, each exactly as `sqslab validate` prints it after "s.yaml:")
CASES = [
    ("empty file", "", ["1:1: the file is empty; a scenario starts with `version: 1` and `name: ...`"]),
    ("only comments", "# nothing here\n", ["1:1: the file holds no YAML document (only comments?)"]),
    ("a list instead of a mapping", "- a\n- b\n", ["1:1: a scenario is a mapping of keys (version, name, infra, ...), got a list"]),
    ("a bare string", "hello\n", ["1:1: a scenario is a mapping of keys (version, name, infra, ...), got a str"]),
    ("tab indentation", "version: 1\nname: x\n\tinfra: 3\n",
     ["3:1: YAML syntax error: found character '\\t' that cannot start any token (YAML indents with spaces, not tabs)"]),
    ("unclosed flow mapping", "version: 1\nname: x\ninfra: {queue: 3\n",
     ["4:1: YAML syntax error: expected ',' or '}', but got '<stream end>'"]),
    ("two documents", "version: 1\n---\nname: x\n", ["2:1: a scenario file holds one YAML document; this is the start of a second one ('---')"]),
    ("duplicate key", "version: 1\nname: x\nname: y\n", ["3:1: name: duplicate key (first on line 2); each key once"]),
    ("missing version and name", "seed: 1\n",
     ["1:1: missing required key 'version' in the scenario", "1:1: missing required key 'name' in the scenario"]),
    ("wrong version", "version: 2\nname: x\n", ["1:10: version: must be 1, got int 2"]),
    ("misspelled top-level key", "version: 1\nname: x\nseeed: 4\n", ["3:1: seeed: unknown key 'seeed'; did you mean 'seed'?"]),
    ("unknown key, no close match", "version: 1\nname: x\nzzz: 4\n",
     ["3:1: zzz: unknown key 'zzz'; allowed here: version, name, description, seed, sample_interval, infra, consumer, sqs, effects, load, actions, settle, limits, hunt, expect"]),
    ("misspelled nested key", "version: 1\nname: x\ninfra:\n  queue:\n    visibilty_timeout: 5s\n",
     ["5:5: infra.queue.visibilty_timeout: unknown key 'visibilty_timeout'; did you mean 'visibility_timeout'?"]),
    ("bad name", "version: 1\nname: bad name\n",
     ["2:7: name: 'bad name': use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"]),
    ("seed not an integer", "version: 1\nname: x\nseed: abc\n", ["3:7: seed: expected an integer, got text 'abc'"]),
    ("bare number duration", "version: 1\nname: x\ninfra: {queue: {visibility_timeout: 30}}\n",
     ["3:37: infra.queue.visibility_timeout: bare number 30 is ambiguous: give a unit, e.g. 30s or 30ms"]),
    ("bad duration unit", "version: 1\nname: x\nsettle: {timeout: 2x}\n",
     ["3:19: settle.timeout: '2x' is not a duration: use a number and a unit (ms, s, m, h, d), e.g. 500ms, 30s, 1h30m"]),
    ("duration units out of order", "version: 1\nname: x\nsettle: {timeout: 30m1h}\n",
     ["3:19: settle.timeout: '30m1h': units must go from largest to smallest, each once (e.g. 1h30m)"]),
    ("visibility above SQS limit", "version: 1\nname: x\ninfra: {queue: {visibility_timeout: 13h}}\n",
     ["3:37: infra.queue.visibility_timeout: SQS allows whole seconds from 0s to 12h, got 13h"]),
    ("fractional queue delay", "version: 1\nname: x\ninfra: {queue: {delay: 500ms}}\n",
     ["3:24: infra.queue.delay: SQS allows whole seconds from 0s to 15m, got 500ms"]),
    ("bad rate unit", "version: 1\nname: x\nload: [{rate: 5/x, duration: 3s}]\n",
     ["3:15: load[0].rate: '5/x' is not a rate: use messages per unit of time, e.g. 10/s, 600/m"]),
    ("bare number rate", "version: 1\nname: x\nload: [{rate: 5, duration: 3s}]\n",
     ["3:15: load[0].rate: bare number 5 is ambiguous: give a unit, e.g. 5/s or 5/m"]),
    ("rate phase without duration", "version: 1\nname: x\nload: [{rate: 5/s}]\n",
     ["3:8: load[0]: a rate phase needs a duration, e.g. duration: 30s"]),
    ("burst with a duration", "version: 1\nname: x\nload: [{burst: 10, duration: 3s}]\n",
     ["3:20: load[0].duration: a burst phase takes no duration (a burst sends as fast as it can)"]),
    ("two phase kinds", "version: 1\nname: x\nload: [{burst: 10, pause: 3s}]\n",
     ["3:8: load[0]: a phase needs exactly one of rate, ramp, burst, count, pause, producer; it has burst and pause"]),
    ("ramp without a range", "version: 1\nname: x\nload: [{ramp: 5/s, duration: 3s}]\n",
     ["3:15: load[0].ramp: '5/s' is not a ramp: give FROM..TO rates, e.g. 1/s..50/s"]),
    ("payload too large", "version: 1\nname: x\nload: [{burst: 1, payload_size: 300KiB}]\n",
     ["3:33: load[0].payload_size: payload_size must be from 1 byte to 256KiB (SQS's limit)"]),
    ("work time range reversed", "version: 1\nname: x\nconsumer: {work_time: 2s..1s}\n",
     ["3:23: consumer.work_time: '2s..1s': the low end is above the high end"]),
    ("error rate above 1", "version: 1\nname: x\nconsumer: {error_rate: 1.5}\n",
     ["3:24: consumer.error_rate: 1.5 is not a fraction: it must be from 0 to 1 (0% to 100%)"]),
    ("batch size as text", "version: 1\nname: x\nconsumer: {batch_size: ten}\n",
     ["3:24: consumer.batch_size: expected an integer, got text 'ten'"]),
    ("slow time never exceeds visibility", "version: 1\nname: x\ninfra: {queue: {visibility_timeout: 10s}}\nconsumer: {slow_rate: 0.1, slow_time: 5s}\n",
     ["4:39: consumer.slow_time: slow_time 5s never exceeds the visibility timeout 10s, so slow messages are never redelivered; make slow_time longer than infra.queue.visibility_timeout"]),
    ("cost guard on consumers", "version: 1\nname: x\ninfra: {consumers: 8}\n",
     ["3:20: infra.consumers: 8 tasks is above the cost guard of 5; to opt in, set infra.max_consumers: 8"]),
    ("unknown action", "version: 1\nname: x\nactions: [{at: 1s, do: kil_consumer}]\n",
     ["3:24: actions[0].do: unknown action 'kil_consumer'; did you mean 'kill_consumer'?"]),
    ("action without trigger", "version: 1\nname: x\nactions: [{do: kill_consumer}]\n",
     ["3:11: actions[0]: an action needs exactly one trigger (at, after or when); it has none"]),
    ("action with two triggers", "version: 1\nname: x\nload: [{name: b, burst: 5}]\nactions: [{at: 1s, after: b, do: kill_consumer}]\n",
     ["4:11: actions[0]: an action needs exactly one trigger (at, after or when); it has at and after"]),
    ("misspelled action parameter", "version: 1\nname: x\nactions: [{at: 1s, do: scale, too: 3}]\n",
     ["3:11: actions[0]: missing required key 'to' in actions[0]",
      "3:31: actions[0].too: unknown key 'too'; did you mean 'to'? (action 'scale')"]),
    ("bad action parameter type", "version: 1\nname: x\nactions: [{at: 1s, do: kill_consumer, count: two}]\n",
     ["3:46: actions[0].count: expected an integer, got text 'two'"]),
    ("scale above the cost guard", "version: 1\nname: x\nactions: [{at: 1s, do: scale, to: 9}]\n",
     ["3:35: actions[0].to: 9 tasks is above the cost guard of 5; to opt in, set infra.max_consumers: 9"]),
    ("after naming no phase", "version: 1\nname: x\nload: [{name: burst, burst: 5}]\nactions: [{after: brust, do: scale, to: 2}]\n",
     ["4:19: actions[0].after: no phase or named action called 'brust'; did you mean 'burst'?"]),
    ("actions waiting in a circle", "version: 1\nname: x\nactions:\n  - {name: a, after: b, do: wait, for: 1s}\n  - {name: b, after: a, do: wait, for: 1s}\n",
     ["4:22: actions[0].after: actions wait for each other in a circle; one must start from a time or a phase",
      "5:22: actions[1].after: actions wait for each other in a circle; one must start from a time or a phase"]),
    ("wait with neither for nor until", "version: 1\nname: x\nactions: [{at: 1s, do: wait}]\n",
     ["3:11: actions[0]: give exactly one of for, until"]),
    ("set_consumer with nothing to set", "version: 1\nname: x\nactions: [{at: 1s, do: set_consumer}]\n",
     ["3:11: actions[0]: give at least one of: work_time, error_rate, crash_rate, slow_rate, slow_time, idempotency, idempotency_window, release_on_stop, delete, on_failure, effect, batch_size, wait_time, startup_time, env, timeout, memory, reserved_concurrency, enabled, max_concurrency"]),
    ("when with unknown metric", "version: 1\nname: x\nactions: [{when: 'queue.visibl > 5', do: scale, to: 2}]\n",
     ["3:18: actions[0].when: unknown metric 'queue.visibl'; did you mean 'queue.visible'?"]),
    ("expect with unknown metric", "version: 1\nname: x\nexpect: ['dlq.mesages > 0']\n",
     ["3:10: expect[0]: unknown metric 'dlq.mesages'; did you mean 'dlq.messages'?"]),
    ("expect with '='", "version: 1\nname: x\nexpect: ['lost = 0']\n", ["3:10: expect[0]: 'lost = 0': use '==' to compare, not '='"]),
    ("expect time without unit", "version: 1\nname: x\nexpect: ['drain_time < 5']\n",
     ["3:10: expect[0]: drain_time is a time: bare number '5' is ambiguous: give a unit, e.g. 5s or 5ms"]),
    ("expect not a comparison", "version: 1\nname: x\nexpect: ['lost']\n",
     ["3:10: expect[0]: 'lost' is not a comparison: write METRIC OP VALUE, e.g. 'lost == 0' (OP is one of == != < <= > >=)"]),
    ("expect against an unknown metric", "version: 1\nname: x\nexpect: ['lost == zero']\n",
     ["3:10: expect[0]: 'zero' is neither a value nor a known metric"]),
    ("expect comparing a time with a count", "version: 1\nname: x\nexpect: ['drain_time < sent']\n",
     ["3:10: expect[0]: drain_time and sent cannot be compared: one is a time, the other is not"]),
    ("settle until misspelled", "version: 1\nname: x\nsettle: {until: drain}\n",
     ["3:17: settle.until: text 'drain' is not one of \"drained\", \"none\"; did you mean 'drained'?"]),
    ("non-text key", "version: 1\nname: x\n3: x\n", ["3:1: 3: keys must be text, got int 3"]),
]


@pytest.mark.parametrize("text,expected", [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_malformed_scenario_reports_exact_problems(write, host, text, expected):
    path = write(text)
    got = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert got == expected


def test_at_least_thirty_malformed_cases():
    assert len(CASES) >= 30


def test_every_problem_at_once(write, host):
    path = write("""
        version: 1
        name: x
        seeed: 1
        infra: {consumers: 9, queue: {retention: 30}}
        load: [{rate: 5/x, duration: 3s}]
        actions: [{at: 1s, do: kil_consumer}]
        expect: ['lost = 0']
    """)
    problems = check_file(path, host)
    assert [p.path for p in problems] == ["seeed", "infra.consumers", "infra.queue.retention", "load[0].rate", "actions[0].do", "expect[0]"]


@pytest.mark.parametrize("size", [1, 17, 300, 4096])
def test_binary_garbage_never_raises(write, host, size):
    import random

    data = bytes(random.Random(size).randrange(256) for _ in range(size))
    problems = check_file(write(data), host)
    assert problems and all(p.line >= 1 and p.col >= 1 for p in problems)


def test_alias_bomb_is_refused(write, host):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    problems = check_file(write("\n".join(lines) + "\n"), host)
    assert problems[0].message.startswith("the document has more than 100000 values")


def test_not_utf8(write, host):
    problems = check_file(write(b"version: 1\nname: \xff\xfe\n"), host)
    assert [str(p).split(":", 1)[1] for p in problems] == ["2:7: not UTF-8 text (byte 0xff); a scenario is a YAML text file"]


def test_seed_scenarios_are_valid(host):
    from tests.conftest import ROOT

    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert check_file(path, host) == [], path


def test_resolve_fills_defaults_and_units(write, host):
    scenario = load_scenario(write("""
        version: 1
        name: x
        infra: {queue: {visibility_timeout: 1m30s}, consumers: 2}
        consumer: {work_time: 50ms..200ms, error_rate: 0.2}
        load:
          - {rate: 600/m, duration: 30s}
          - {name: burst, burst: 1000}
          - {ramp: 1/s..3/s, duration: 10s}
        actions:
          - {after: burst + 5s, do: scale, to: 5}
    """), host)
    assert scenario.infra.visibility_timeout == 90
    assert scenario.infra.dlq_enabled and scenario.infra.max_receive_count == 3
    assert scenario.knobs.work_time == (0.05, 0.2)
    assert [p.planned_messages() for p in scenario.phases] == [300, 1000, 20]
    assert scenario.phases[0].rate == 10
    assert scenario.actions[0].after == "burst" and scenario.actions[0].after_offset == 5
    assert scenario.settle_until == "drained" and scenario.settle_timeout == 120


def test_overrides_are_validated_like_the_file(write, host):
    path = write(GOOD)
    assert load_scenario(path, host, ["infra.consumers=3"]).infra.consumers == 3
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, host, ["infra.consumers=9", "consumer.error_rat=0.1"])
    assert [str(p) for p in info.value.problems] == [
        "--set consumer.error_rat=0.1:1:1: consumer.error_rat: unknown key 'error_rat'; did you mean 'error_rate'?",
        "--set infra.consumers=9:1:1: infra.consumers: 9 tasks is above the cost guard of 5; to opt in, set infra.max_consumers: 9",
    ]


def test_plugin_action_params_are_validated(write):
    from sqslab.plugins import load_plugins
    from tests.conftest import FIXTURES

    host = load_plugins([FIXTURES / "plugins"], entry_points=False)
    path = write("""
        version: 1
        name: x
        actions:
          - {at: 1s, do: drain_hold, seconds: 5}
          - {at: 2s, do: drain_hold, seconds: 600}
          - {at: 3s, do: drain_hold, secs: 5}
    """)
    assert [str(p).split(":", 1)[1] for p in check_file(path, host)] == [
        "5:39: actions[1].seconds: must be at most 60, got 600",
        "6:5: actions[2]: missing required key 'seconds' in actions[2]",
        "6:30: actions[2].secs: unknown key 'secs'; did you mean 'seconds'? (action 'drain_hold')",
    ]


def test_shipped_schema_file_is_current(host):
    from sqslab.scenario.schema import full_schema
    from tests.conftest import ROOT

    assert json.loads((ROOT / "sqslab.schema.json").read_text()) == full_schema(host)


def test_full_schema_validates_seed_scenarios_for_editors(host):
    import jsonschema
    import yaml

    from sqslab.scenario.schema import full_schema
    from tests.conftest import ROOT

    validator = jsonschema.Draft202012Validator(full_schema(host))
    for path in (ROOT / "scenarios").glob("*.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    bad = {"version": 1, "name": "x", "actions": [{"at": "1s", "do": "scale", "too": 3}]}
    assert list(validator.iter_errors(bad))


# -- one definition per setting -------------------------------------------------------------------


def test_readme_settings_reference_is_the_table():
    """README's tables of settings are `sqslab schema --markdown`, word for word."""
    from sqslab.scenario.settings import reference
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- settings reference: sqslab schema --markdown -->\n")
    end = text.index("<!-- end of settings reference -->")
    assert text[start:end].split("\n", 1)[1] == reference(), "run `sqslab schema --markdown` and paste it into README.md"


def test_resolved_infra_and_knobs_have_one_field_per_setting():
    import dataclasses

    from sqslab.consumers.builtin import Knobs
    from sqslab.scenario.model import Infra
    from sqslab.scenario.settings import under

    assert [f.name for f in dataclasses.fields(Infra)] == [s.name for s in under("infra")]
    assert [f.name for f in dataclasses.fields(Knobs)] == [s.name for s in under("consumer")]
    assert Knobs() == Knobs(**{s.name: s.resolve(None) for s in under("consumer")}), "defaults from the table"


def test_every_setting_is_in_the_schema_with_its_default_and_description():
    from sqslab.scenario.schema import base_schema
    from sqslab.scenario.settings import SETTINGS

    schema = base_schema()
    for setting in SETTINGS:
        node = schema
        for part in setting.path:
            node = node["properties"][part]
        assert node.get("default") == setting.default or setting.default is None, setting.key
        assert node["description"].startswith(setting.description.rstrip(".")), setting.key


def test_duration_limits_come_from_the_table(write, host):
    """A duration beyond its setting's limits is refused with the limits the table gives."""
    problems = check_file(write("version: 1\nname: x\nsample_interval: 2m\nsettle: {timeout: 2d}\n"), host)
    assert [p.message for p in problems] == ["must be from 100ms to 1m, got 2m", "must be from 0s to 1d, got 2d"]


def test_readme_names_every_figure_and_live_metric():
    from sqslab.truth.expectations import FIGURES, LIVE_METRICS
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    expect = text[text.index("### `expect`"):text.index("### Editor support")]
    actions = text[text.index("### `actions`"):text.index("### `expect`")]
    from sqslab.consumer.sqsfaults import SQS_APIS

    per_api = {f"faults.{api}" for api in SQS_APIS}  # written once, as `faults.API`
    assert "`faults.API`" in expect
    assert [f for f in FIGURES if f"`{f}`" not in expect and f not in per_api] == []
    assert [m for m in LIVE_METRICS if f"`{m}`" not in actions] == []


# -- the sqs section ---------------------------------------------------------------------------------

SQS_SECTION = """\
version: 1
name: sqs-section
sqs:
  behavior: aws
  duplicates: 5%
  faults:
    - {api: DeleteMesage, error: throttling, rate: 10%}
    - {api: SendMessage}
    - {api: [ReceiveMessage, Nope], latency: 1s..2s, rate: 150%}
load: [{burst: 1}]
actions:
  - {at: 1s, do: sqs_fault, api: ChangeMessageVisibilty, error: internal, for: 2s}
  - {at: 1s, do: sqs_fault, api: "*", error: slow}
"""


def test_sqs_section_problems_name_the_api_and_suggest(write, host):
    path = write(SQS_SECTION)
    got = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert got == [
        "7:13: sqs.faults[0].api: 'DeleteMesage' is not an SQS API; did you mean 'DeleteMessage'?",
        "8:7: sqs.faults[1]: give at least one of error, latency",
        "9:30: sqs.faults[2].api[1]: 'Nope' is not an SQS API; write \"*\" for every call, or one of " + ", ".join(SQS_APIS),
        "9:60: sqs.faults[2].rate: '150%' is not a fraction: it must be from 0 to 1 (0% to 100%)",
        "12:34: actions[0].api: 'ChangeMessageVisibilty' is not an SQS API; did you mean 'ChangeMessageVisibility'?",
        "13:46: actions[1].error: text 'slow' is not one of \"throttling\", \"internal\", \"unavailable\", \"access_denied\", "
        "\"timeout\"",
    ]


def test_sqs_section_resolves_against_its_profile(host):
    from sqslab.emulator.lab import PROFILES

    exact = load_scenario_text("version: 1\nname: x\n", host)
    assert exact.sqs.exact and exact.sqs.settings == PROFILES["exact"]
    text = ("version: 1\nname: x\nsqs: {behavior: aws, duplicates: 5%, count_lag: 10s, stale_receipt: delete, "
            "faults: [{api: [DeleteMessage], error: throttling, rate: 10%, latency: 100ms..200ms}]}\n")
    aws = load_scenario_text(text, host).sqs
    assert not aws.exact and aws.behavior == "aws"
    assert aws.settings == {**PROFILES["aws"], "duplicates": 0.05, "count_lag": 10.0, "stale_receipt": "delete"}
    assert aws.faults == ({"api": ["DeleteMessage"], "error": "throttling", "rate": 0.1, "latency": [0.1, 0.2],
                           "start": None, "end": None, "label": "sqs.faults[0]"},)
    assert aws.lab(7) == {"behavior": {"behavior": "aws", **aws.settings}, "faults": list(aws.faults), "seed": 7}
    faults_only = load_scenario_text("version: 1\nname: x\nsqs: {faults: [{api: '*', latency: 5ms}]}\n", host).sqs
    assert not faults_only.exact and faults_only.settings == PROFILES["exact"]


def test_a_consumer_program_resolves_against_the_scenario_folder(write, host, tmp_path):
    (tmp_path / "worker").mkdir()
    scenario = load_scenario(write("""
        version: 1
        name: own
        consumer:
          program:
            command: "node index.js --queue 'my queue'"
            cwd: worker
            env: {THREADS: 4, DEBUG: true}
            ready: {log: listening, timeout: 45s}
            stop_grace: 3s
        actions:
          - {at: 1s, do: set_consumer, env: {THREADS: 8}}
    """), host)
    program = scenario.consumer
    assert program.command == ("node", "index.js", "--queue", "my queue")
    assert program.cwd == str(tmp_path / "worker") and program.env == {"THREADS": "4", "DEBUG": "true"}
    assert (program.ready_log, program.ready_timeout, program.stop_grace) == ("listening", 45, 3)
    assert "listening" in program.readiness
    assert load_scenario(write("version: 1\nname: x\n", "plain.yaml"), host).consumer.kind == "builtin"


def test_a_consumer_program_refuses_the_built_in_knobs_and_a_missing_folder(write, host):
    path = write("""
        version: 1
        name: own
        consumer:
          program: {command: [python3, w.py], cwd: nowhere}
          error_rate: 0.1
        actions:
          - {at: 1s, do: set_consumer, work_time: 1s}
    """)
    problems = [str(p).split(": ", 1)[1] for p in check_file(path, host)]
    assert problems[0].startswith("consumer.program.cwd: no directory")
    assert problems[1].startswith("consumer.error_rate: error_rate is a knob of the built-in consumer and does nothing to "
                                  "consumer.program; with a program only `program` applies in `consumer`")
    assert problems[2].startswith("actions[0].work_time: work_time is a knob of the built-in consumer; with consumer.program, "
                                  "set_consumer takes `env`")
    assert len(problems) == 3


def test_set_consumer_env_needs_a_program(write, host):
    problems = check_file(write("version: 1\nname: x\nactions: [{at: 1s, do: set_consumer, env: {A: 1}}]\n"), host)
    assert [p.path for p in problems] == ["actions[0].env"] and "built-in consumer" in problems[0].message


def test_body_templates_are_checked_with_their_line_in_the_file(write, host):
    path = write("""
        version: 1
        name: bodies
        load:
          - rate: 1/s
            duration: 2s
            body: |
              {"orderId": "{{ id }}",
               "amount": {{ rand_in(1, 500) }}}
          - {rate: 1/s, duration: 2s, body: '{"x": {{ rand_int(1 }}'}
          - {rate: 1/s, duration: 2s, body: '{{ rand_int("a", 2) }}'}
          - {rate: 1/s, duration: 2s, body_file: missing.j2}
          - {rate: 1/s, duration: 2s, body: '{{ id }}', body_file: x.j2}
    """)
    problems = [str(p).split(":", 1)[1] for p in check_file(path, host)]
    assert problems[0].startswith("8:") and "load[0].body: unknown name 'rand_in' in the body template; did you mean 'rand_int'?" in problems[0]
    assert problems[1].startswith("9:") and "load[1].body: template syntax:" in problems[1]
    assert problems[2].startswith("10:") and "fails to render: ValueError" in problems[2]
    assert problems[3].startswith("11:") and "load[3].body_file: cannot read the body template" in problems[3]
    assert "load[4].body_file: give body or body_file, not both" in problems[4]
    assert len(problems) == 5


def test_a_body_file_is_read_relative_to_the_scenario_and_poison_needs_sqslab_s_body(write, host, tmp_path):
    (tmp_path / "order.j2").write_text('{"orderId": "{{ id }}"}\n')
    scenario = load_scenario(write("version: 1\nname: f\nload: [{burst: 2, body_file: order.j2}]\n"), host)
    assert scenario.phases[0].body == '{"orderId": "{{ id }}"}\n'
    problems = check_file(write("version: 1\nname: p\nconsumer: {poison_rate: 0.1}\nload: [{burst: 2, body: '{{ id }}'}]\n",
                                "p.yaml"), host)
    assert [p.path for p in problems] == ["consumer.poison_rate"] and "poison" in problems[0].message
