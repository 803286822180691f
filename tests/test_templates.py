"""Body templates as a user meets them: every template problem a `file:line` error with
exit 2, bombs refused by a named limit instead of hanging `validate`, SQS's body rules at
validate and at send time, `produce --rate`, README's sweep, and alternatives messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from sqslab.run.producer import Producer
from sqslab.scenario import bodies
from sqslab.scenario.load import check_file
from sqslab.scenario.timeline import Phase
from sqslab.scenario.units import UnitError, parse_rate_option
from tests.conftest import ROOT

#: Long enough for a slow, shared machine; a bomb that is not refused takes minutes or forever.
NO_HANG = 60


def _validate(*paths: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`sqslab validate` in its own process, so a template that hangs fails the test instead of the suite."""
    return subprocess.run([sys.executable, "-m", "sqslab", "validate", *map(str, paths)], capture_output=True, text=True,
                          timeout=NO_HANG, cwd=cwd or ROOT)


def _scenario(tmp_path: Path, phases: list[str], name: str = "s.yaml") -> Path:
    """A scenario file with these phases, one a line from line 4 (phase k on line 4 + k)."""
    path = tmp_path / name
    path.write_text("version: 1\nname: t\nload:\n" + "".join(f"  - {p}\n" for p in phases), encoding="utf-8")
    return path


def _lines(result: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    return [line.removeprefix(f"{path}:") for line in result.stdout.splitlines()]


# ---------------------------------------------------------------- names, filters, tests


def test_an_unknown_filter_or_test_is_a_problem_at_its_line_not_an_internal_error(cli, tmp_path):
    path = _scenario(tmp_path, ["{burst: 1, body: '{{ id | no_such_filter }}'}",
                                "{burst: 1, body: '{{ id is nosuchtest }}'}",
                                "{burst: 1, body: '{{ id | uper }}'}"])
    result = cli("validate", path)
    assert result.exit_code == 2
    got = [line.removeprefix(f"{path}:") for line in result.stdout.splitlines()]
    assert got[0].startswith("4:") and "load[0].body: unknown filter 'no_such_filter' in the body template; filters:" in got[0]
    assert got[1].startswith("5:") and "load[1].body: unknown test 'nosuchtest' in the body template; tests:" in got[1]
    assert got[2].startswith("6:") and "load[2].body: unknown filter 'uper' in the body template; did you mean 'upper'?" in got[2]
    assert len(got) == 3 and "internal error" not in result.stderr


def test_lipsum_is_not_a_name_of_a_body_template(write, host):
    problems = check_file(write("version: 1\nname: x\nload: [{burst: 1, body: '{{ lipsum(1000) }}'}]\n"), host)
    assert [p.path for p in problems] == ["load[0].body"] and "unknown name 'lipsum'" in problems[0].message


# ---------------------------------------------------------------- SQS's body rules


def test_sqs_body_rules_at_validate_name_the_character_and_the_rule(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(r"""
        version: 1
        name: t
        load:
          - {burst: 1, body: "a\ud800b"}
          - {burst: 1, body: "a\x00b"}
          - {burst: 1, body: "{{ '' }}"}
          - {burst: 1, body: "{{ '\u00e9' * 140000 }}"}
          - {burst: 1, body: "tab\tand \U0001F600 are fine"}
    """).lstrip(), encoding="utf-8")
    result = _validate(path)
    assert result.returncode == 2, result.stderr
    got = _lines(result, path)
    allowed = "SQS allows #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 to #x10FFFF"
    assert got[0].startswith("4:")
    assert f"load[0].body: the body holds the character U+D800 at position 2, which SQS refuses ({allowed})" in got[0]
    assert got[1].startswith("5:") and "load[1].body: the body holds the character U+0000 at position 2" in got[1]
    assert got[2].startswith("6:") and "load[2].body: the body is empty; SQS needs at least one character" in got[2]
    assert got[3].startswith("7:") and "load[3].body: the rendered body is over 262144 bytes (MAX_BODY, SQS's limit)" in got[3]
    assert len(got) == 4 and "internal error" not in result.stderr


def test_body_problem_is_the_rule_of_one_body():
    assert bodies.body_problem("x" * bodies.MAX_BODY) is None
    assert bodies.body_problem("\u00e9" * (bodies.MAX_BODY // 2 + 1)) == (
        "the body is 262146 bytes; SQS takes at most 262144 (MAX_BODY)")
    assert bodies.body_problem("ok\r\n\t\ufffd") is None
    assert "U+FFFE" in (bodies.body_problem("a\ufffe") or "")


class _Recording:
    """A client that keeps every batch and sends each body as is; refuses none."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.bodies += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}"} for e in Entries], "Failed": []}


def test_a_body_that_renders_badly_at_send_time_is_a_failed_send_with_its_reason():
    # Each fourth message renders a different kind of bad body; the rest are sent.
    template = ("{% set k = index % 4 %}{% if k == 1 %}{{ '' }}{% elif k == 2 %}a\x00b"
                "{% elif k == 3 %}{{ 'x' * (index * 100000) }}{% else %}ok-{{ index }}{% endif %}")
    client = _Recording()
    failed: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    result = Producer(client, "q", seed=1, on_sent=sent.extend, on_failed=failed.extend).run_phase(
        Phase("p", "burst", 0.0, count=12, body=template))
    assert (result.sent, result.failed) == (3, 9)
    assert sorted(client.bodies) == ["ok-0", "ok-4", "ok-8"]
    assert result.errors == {"InvalidBody": 6, "BodyTemplateError": 3}
    reasons = {r["seq"]: r["error"] for r in failed}
    assert reasons[2] == "InvalidBody: the body is empty; SQS needs at least one character"
    assert reasons[3].startswith("InvalidBody: the body holds the character U+0000 at position 2")
    assert reasons[4] == ("BodyTemplateError: 'x' * 300000 would make 300000 items; a body template's values "
                          "are limited to 262144 (MAX_VALUE_LENGTH)")
    assert all(r["message_id"] is None for r in failed) and len(sent) == 3


# ---------------------------------------------------------------- bombs


BOMBS = [
    ("{{ 9**(9**9) }}", ("9 ** 387420489 would make an integer of about 1228093894 bits; a body template's integers "
                        "are limited to 256 bits (MAX_INT_BITS)")),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "range(100000) has 100000 items; a body template's ranges are limited to 10000 (MAX_RANGE)"),
    ("{{ 'x' * 10**9 }}", ("'x' * 1000000000 would make 1000000000 items; a body template's values are limited to 262144 "
                          "(MAX_VALUE_LENGTH)")),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "the body template takes longer than 0.25s to render (MAX_RENDER_SECONDS)"),
    ("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", "the rendered body is over 262144 bytes (MAX_BODY, SQS's limit)"),
    ("{% set s = 'x' * 200000 %}{{ s ~ s }}", ("joining texts would make 400000 characters; a body template's values are "
                                              "limited to 262144 (MAX_VALUE_LENGTH)")),
    ("{{ 'x' | center(10**9) }}", ("center(1000000000) would make 1000000000 characters; a body template's values are "
                                  "limited to 262144 (MAX_VALUE_LENGTH)")),
    ("{{ ('x' * 1000) | replace('x', 'y' * 1000) }}", ("replace would make 1000000 characters; a body template's values "
                                                      "are limited to 262144 (MAX_VALUE_LENGTH)")),
    ("{{ '%999999999d' % 1 }}", ("a format width or precision of 999999999; a body template's values are limited to "
                                "262144 (MAX_VALUE_LENGTH)")),
    ("{{ '{:>999999999}'.format(1) }}", ("a format width or precision of 999999999; a body template's values are limited "
                                        "to 262144 (MAX_VALUE_LENGTH)")),
    ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "the body template fails to render: RecursionError"),
]


def test_template_bombs_are_refused_by_a_named_limit_and_validate_ends(tmp_path):
    phases = ["{burst: 1, body: " + json.dumps(text) + "}" for text, _ in BOMBS]
    path = _scenario(tmp_path, phases)
    result = _validate(path)
    assert result.returncode == 2, result.stderr
    got = _lines(result, path)
    assert len(got) == len(BOMBS), got
    for i, ((_, message), line) in enumerate(zip(BOMBS, got, strict=True)):
        assert line.startswith(f"{4 + i}:") and f"load[{i}].body: " in line and message in line, (i, line)
    assert "internal error" not in result.stderr


def test_a_bomb_at_its_line_in_a_block_body(write, host):
    path = write("""
        version: 1
        name: t
        load:
          - burst: 1
            body: |
              {"a": 1,
               "b": {{ 2 ** 1000 }}}
    """)
    problems = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert problems == [("7:11: load[0].body: 2 ** 1000 would make an integer of about 1000 bits; a body template's "
                        "integers are limited to 256 bits (MAX_INT_BITS)")]


def test_a_body_file_is_a_regular_file_in_the_scenario_folder_checked_before_it_is_read(tmp_path):
    folder = tmp_path / "sc"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "ok.j2").write_text('{"id": "{{ id }}"}\n')
    os.mkfifo(folder / "pipe.j2")
    (folder / "big.j2").write_bytes(b"x" * (bodies.MAX_TEMPLATE_BYTES + 1))
    (folder / "nul.j2").write_bytes(b"a\x00b")
    (folder / "latin1.j2").write_bytes(b"caf\xe9")
    (folder / "bomb.j2").write_text("line one\n{{ 9 ** 999 }}\n")
    (tmp_path / "outside.j2").write_text("{{ id }}")
    path = _scenario(folder, ["{burst: 1, body_file: sub/ok.j2}", "{burst: 1, body_file: pipe.j2}", "{burst: 1, body_file: /dev/zero}",
                              "{burst: 1, body_file: ../outside.j2}", "{burst: 1, body_file: big.j2}", "{burst: 1, body_file: sub}",
                              "{burst: 1, body_file: nul.j2}", "{burst: 1, body_file: latin1.j2}", "{burst: 1, body_file: bomb.j2}"])
    result = _validate(path)
    assert result.returncode == 2, result.stderr
    got = _lines(result, path)
    outside = ("must be a file in the scenario's folder or below it (no scenario key allows a path outside it); "
               f"{{}} is outside {folder}")
    assert got[0].startswith("5:") and f"load[1].body_file: {folder / 'pipe.j2'} is not a regular file (a named pipe)" in got[0]
    assert got[1].startswith("6:") and "load[2].body_file: " + outside.format("/dev/zero") in got[1]
    assert got[2].startswith("7:") and "load[3].body_file: " + outside.format(tmp_path / "outside.j2") in got[2]
    assert got[3].startswith("8:") and (f"load[4].body_file: {folder / 'big.j2'} is {bodies.MAX_TEMPLATE_BYTES + 1} bytes; "
                                        "a body template may have at most 1048576 (MAX_TEMPLATE_BYTES)") in got[3]
    assert got[4].startswith("9:") and f"load[5].body_file: {folder / 'sub'} is not a regular file (a directory)" in got[4]
    assert got[5].startswith("10:") and "load[6].body_file: nul.j2:1: the body holds the character U+0000" in got[5]
    assert got[6].startswith("11:") and f"load[7].body_file: cannot read the body template {folder / 'latin1.j2'}: not UTF-8" in got[6]
    assert got[7].startswith("12:") and "load[8].body_file: bomb.j2:2: 9 ** 999 would make an integer" in got[7]
    assert len(got) == 8 and "internal error" not in result.stderr


def test_a_body_file_may_be_in_the_program_s_working_directory_the_scenario_names(tmp_path, write, host):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "order.j2").write_text('{"orderId": "{{ id }}"}')
    (tmp_path / "other.j2").write_text("{{ id }}")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    program = "consumer:\n  program: {command: [python, w.py], cwd: ../worker}\n"
    ok = scenarios / "ok.yaml"
    ok.write_text(f"version: 1\nname: ok\n{program}load: [{{burst: 1, body_file: ../worker/order.j2}}]\n")
    assert check_file(ok, host) == []
    bad = scenarios / "bad.yaml"
    bad.write_text(f"version: 1\nname: bad\n{program}load: [{{burst: 1, body_file: ../other.j2}}]\n")
    problems = check_file(bad, host)
    assert [p.message for p in problems] == [
        ("must be a file in the scenario's folder or in consumer.program.cwd, or below them (no other scenario key allows a path "
        f"outside them); {tmp_path / 'other.j2'} is outside {scenarios} and {tmp_path / 'worker'}")]


# ---------------------------------------------------------------- produce --rate, sweep --set


@pytest.mark.parametrize("text,expected", [("50", 50.0), ("50/s", 50.0), ("600/m", 10.0), ("2.5", 2.5), (" 7 / s ", 7.0)])
def test_a_rate_option_takes_a_bare_number_or_the_scenario_s_rates(text, expected):
    assert parse_rate_option(text) == expected


def test_a_rate_option_refuses_what_is_not_a_rate():
    with pytest.raises(UnitError, match=r"'fast' is not a rate: give messages per second \(50\) or a rate such as 50/s, 600/m"):
        parse_rate_option("fast")


def test_produce_refuses_a_bad_rate_with_the_unit_grammar_s_message(cli):
    result = cli("produce", "--queue-url", "http://127.0.0.1:9/q", "--rate", "5/x")
    assert result.exit_code == 2
    assert "'5/x' is not a rate" in result.stderr
    result = cli("produce", "--queue-url", "http://127.0.0.1:9/q", "--rate", "0/s")
    assert result.exit_code == 2 and "the rate must be above 0 msg/s" in result.stderr


@pytest.mark.integration
def test_produce_takes_a_rate_as_scenarios_write_it(emulator, sqs, monkeypatch, cli):
    from sqslab.emulator import DUMMY_ENV

    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    url = sqs.create_queue(QueueName="produce-rate-unit")["QueueUrl"]
    result = cli("produce", "--queue-url", url, "--endpoint-url", emulator.endpoint_url, "--region", "us-west-1",
                 "--n", "5", "--rate", "50/s")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sent 5, failed 0 in ")


MY_FIRST = """
version: 1
name: my-first
seed: 1
infra:
  queue: {visibility_timeout: 3s}
  consumers: 2
consumer:
  work_time: 100ms..300ms
  slow_rate: 0.05
  slow_time: 5s
load:
  - {name: steady, rate: 10/s, duration: 20s}
expect:
  - lost == 0
  - duplicates <= 5%
"""


def test_readme_sweep_of_the_visibility_timeout_validates(write, host, cli):
    path = write(MY_FIRST)
    assert check_file(path, host, ["infra.queue.visibility_timeout=10s"]) == []
    assert check_file(path, host, ["consumer.slow_time=2s"]) == []
    result = cli("plan", path, "--set", "infra.queue.visibility_timeout=10s")
    assert result.exit_code == 0, result.output
    # Written in the file, the same contradiction is still refused: the file alone can never redeliver.
    problems = check_file(write(MY_FIRST.replace("3s}", "10s}"), "ten.yaml"), host)
    assert [p.path for p in problems] == ["consumer.slow_time"] and "never exceeds the visibility timeout 10s" in problems[0].message


def test_set_durations_and_rates_read_as_in_the_file(write, host):
    path = write(MY_FIRST)
    assert check_file(path, host, ["load[0].rate=20/s", "settle.timeout=1m30s", "consumer.work_time=50ms..80ms"]) == []
    problems = check_file(path, host, ["settle.timeout=90"])
    assert [p.message for p in problems] == ["bare number 90 is ambiguous: give a unit, e.g. 90s or 90ms"]


# ---------------------------------------------------------------- alternatives


@pytest.mark.parametrize("command,got", [("[]", "an empty list"), ('""', "text ''")])
def test_an_empty_command_says_what_is_wrong(write, host, command, got):
    path = write(f"version: 1\nname: x\nconsumer:\n  program: {{command: {command}}}\n")
    problems = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert problems == [f"4:22: consumer.program.command: command must name a program: a non-empty string or list, got {got}"]


def test_a_value_of_no_alternative_shape_names_the_shapes(write, host):
    path = write("version: 1\nname: x\nconsumer:\n  program: {command: 3}\n")
    problems = [str(p).removeprefix(f"{path}:") for p in check_file(path, host)]
    assert problems == ["4:22: consumer.program.command: command must name a program: a non-empty string or list, got int 3"]


def test_framework_envelopes_get_b64encode_tojson_and_the_runs_queue():
    """dramatiq-sqs carries its message base64-encoded, kombu's envelope holds JSON, and
    frameworks find their queue by name: a template can write all three, and a run puts
    the run's own queue in."""
    import base64

    from sqslab.scenario.bodies import BodyTemplate, check

    text = ('{"body": "{{ {"message_id": id, "queue_name": queue_name, "args": [seq, "<b>"]} | tojson | b64encode }}", '
            '"queue": "{{ queue_url }}"}')
    assert check(text) == []
    body = json.loads(BodyTemplate(text, queue_url="http://127.0.0.1:1/123456789012/orders").render("i-1", 7, 0, "p", 0.0))
    assert json.loads(base64.b64decode(body["body"])) == {"message_id": "i-1", "queue_name": "orders", "args": [7, "<b>"]}
    assert body["queue"] == "http://127.0.0.1:1/123456789012/orders"
    assert base64.b64decode(body["body"]).decode() == '{"message_id":"i-1","queue_name":"orders","args":[7,"<b>"]}', \
        "compact, and not HTML-escaped as jinja's own tojson would"

    # The producer renders with the run's own queue.
    from types import SimpleNamespace

    from sqslab.run.producer import Producer

    producer = Producer(None, "http://127.0.0.1:1/123456789012/run-7f3a-queue")
    phase = SimpleNamespace(name="p", body="{{ queue_name }} {{ queue_url }}")
    assert producer._bodies.render(phase, "i-1", 1, 0, 0.0) == "run-7f3a-queue http://127.0.0.1:1/123456789012/run-7f3a-queue"
