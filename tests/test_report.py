"""`sqslab report`: every format rendered from run directories that real `sqslab run`s
recorded in this session (the emulator, consumer processes, an action plugin, hostile
text in the description, an action's name, parameters and error), checked against
golden files with times, ids and numbers normalised, against a JUnit XSD, for escaping,
and in a real headless Chromium.

Golden files: SQSLAB_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py rewrites them.
SQSLAB_REPORT_SCREENSHOT=docs/report.png also saves the browser test's screenshot.
"""

from __future__ import annotations

import base64
import html.parser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqslab.plugins import load_plugins
from sqslab.reports.formats import render_html, render_json, render_junit, render_markdown, render_text
from sqslab.reports.html import MAX_POINTS, ReportError, load_runs, metric_series, render_reports, resolve_run_dirs
from sqslab.rundir import load_run
from tests.conftest import ROOT

GOLDEN = Path(__file__).resolve().parent / "golden"
XSD = Path(__file__).resolve().parent / "junit.xsd"
HOSTILE = "<script>alert(1)</script> \"'& </script><!-- end"

SCENARIO = """\
version: 1
name: report-fixture
description: replaced by --set
seed: 5
sample_interval: 250ms
infra: {queue: {visibility_timeout: 1s}, dlq: {max_receive_count: 2}, consumers: 2, task: {restart_delay: 500ms}}
consumer: {work_time: 5ms..20ms, error_rate: 0.4}
load:
  - {name: steady, rate: 40/s, duration: 2s}
  - {name: "<b>burst</b>", burst: 60}
actions:
  - {name: scale-up, at: 500ms, do: scale, to: 3}
  - {name: "<img src=x onerror=alert(2)>", at: 1s, do: shout, text: "<script>alert(3)</script> \\"'&", continue_on_error: true}
  - {name: redrive, at: 4s, do: redrive_dlq}
settle: {timeout: 20s}
expect: [lost == 0, sent >= 100, redeliveries > 0, drain_time < 1ms]
"""

# An action plugin whose error message is its (hostile) parameter.
SHOUT_PLUGIN = """\
import sqslab

def shout(ctx, params):
    raise RuntimeError(params["text"])

@sqslab.hookimpl
def register_actions(register):
    register("shout", shout, schema={"type": "object", "additionalProperties": False, "required": ["text"],
                                     "properties": {"text": {"type": "string"}}})
"""

BROKEN_REPORTER = """\
import sqslab

def broken(run, options):
    raise RuntimeError("this reporter always fails")

@sqslab.hookimpl
def register_reporters(register):
    register("broken", broken, extension="txt")
"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """Two real runs of the fixture scenario, side by side: A (2 consumers, hostile
    description) and B (3 consumers). Returns {"a": Path, "b": Path, "plugins": [dirs]}."""
    base = tmp_path_factory.mktemp("recorded")
    plugins = base / "plugins"
    plugins.mkdir()
    (plugins / "shout.py").write_text(SHOUT_PLUGIN)
    scenario = base / "report_fixture.yaml"
    scenario.write_text(SCENARIO)
    variants = {"a": ["--set", f"description={HOSTILE}"], "b": ["--set", "infra.consumers=3", "--set", "description=three consumers"]}

    def run(key: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "sqslab", "run", "-q", str(scenario), "--out", str(base / key),
                "--plugins-dir", str(ROOT / "plugins"), "--plugins-dir", str(plugins), *variants[key]]
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(variants, pool.map(run, variants)))
    for key, result in results.items():
        assert result.returncode == 1, f"run {key}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return {"a": base / "a", "b": base / "b", "plugins": [ROOT / "plugins", plugins]}


@pytest.fixture(scope="session")
def host_with_plugins(recorded):
    return load_plugins(recorded["plugins"], entry_points=False)


@pytest.fixture(scope="session")
def run_a(recorded):
    return load_run(recorded["a"])


@pytest.fixture(scope="session")
def run_b(recorded):
    return load_run(recorded["b"])


@pytest.fixture(scope="session")
def rendered(run_a):
    """Every built-in format of run A, rendered once."""
    return {name: function(run_a, {}) for name, function in
            (("html", render_html), ("markdown", render_markdown), ("junit", render_junit), ("json", render_json), ("text", render_text))}


@pytest.fixture(scope="session")
def compared(run_a, run_b):
    """Run A and run B compared, in html and markdown."""
    runs, labels = load_runs([run_a.path, run_b.path])
    options = {"runs": runs, "labels": labels}
    return {"labels": labels, "html": render_html(runs[0], options), "markdown": render_markdown(runs[0], options),
            "junit": render_junit(runs[0], options)}


def report_command():
    """The `sqslab report` click command."""
    from sqslab.cli import report

    return report


# ---------------------------------------------------------------- golden files


def normalise(text: str) -> str:
    """Times, ids, paths and numbers out: what stays is the structure."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}( UTC)?", "<time>", text)
    text = re.sub(r"(/[\w.<>-]+)+/(a|b)\b", "<run>", text)
    text = re.sub(r"\b\d[\d,]*(\.\d+)?(ms|s|m|h|d)?(\d+(\.\d+)?(ms|s|m|h|d))*\b", "#", text)
    text = re.sub(r"task-#(, task-#)*", "task-#", text)
    lines, out = text.splitlines(), []
    for line in lines:
        if "<id>" in line:
            line = "<problem message row>"
        if not out or out[-1] != line:
            out.append(line.rstrip())
    return "\n".join(out) + "\n"


class Skeleton(html.parser.HTMLParser):
    """An HTML page's structure: sections, headings, table headers, charts, scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.stack: list[str] = []
        self.capture: str | None = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" or (tag == "div" and "chart" in (attrs.get("class") or "").split()):
            self.lines.append(f"{tag}#{attrs.get('id')}")
        elif tag == "table":
            self.lines.append(f"  table#{attrs.get('id', '')}")
        elif tag == "script":
            self.lines.append(f"script type={attrs.get('type', 'text/javascript')} id={attrs.get('id', '')}")
        elif tag in ("h1", "h2", "h3", "th") and self.capture is None:
            self.capture, self.text = tag, ""
        elif tag == "meta" and attrs.get("http-equiv"):
            self.lines.append(f"meta {attrs['http-equiv']}: {attrs.get('content')}")

    def handle_endtag(self, tag):
        if tag == self.capture:
            text = " ".join(self.text.split())
            if tag == "th":
                if text and self.lines and self.lines[-1].startswith("    th"):
                    self.lines[-1] += f" | {text}"
                elif text:
                    self.lines.append(f"    th {text}")
            else:
                self.lines.append(f"{'  ' * (int(tag[1]) - 1)}{tag}: {text}")
            self.capture = None

    def handle_data(self, data):
        if self.capture:
            self.text += data


def html_skeleton(page: str) -> str:
    parser = Skeleton()
    parser.feed(page)
    return normalise("\n".join(parser.lines))


def junit_skeleton(xml: str) -> str:
    lines = []

    def walk(element, depth):
        attrs = {k: v for k, v in element.attrib.items() if not (element.tag == "property" and k == "value")}
        shown = "".join(f" {k}={v!r}" for k, v in sorted(attrs.items()))
        lines.append(f"{'  ' * depth}<{element.tag}{shown}>")
        for child in element:
            walk(child, depth + 1)

    walk(ET.fromstring(xml), 0)
    return normalise("\n".join(lines))


def json_skeleton(text: str) -> str:
    data = json.loads(text)

    def shape(value, depth=0):
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {shape(v, depth + 1)}" for k, v in value.items() if depth < 2 or k != "failures") + "}"
        if isinstance(value, list):
            return f"[{shape(value[0], depth + 1)}, ...]" if value else "[]"
        return "_"  # values vary run to run; the keys and nesting are the format

    keep = {k: data[k] for k in data if k not in ("ledger",)}
    keep["ledger"] = {k: v for k, v in data.get("ledger", {}).items() if k not in ("per_task", "receive_histogram")}
    keep["series"] = data["series"][:1]
    keep["figures"] = list(data["figures"])
    lines = [f"{key}: {shape(value)}" for key, value in keep.items()]
    return normalise("\n".join(lines))


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SQSLAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} is missing: run with SQSLAB_UPDATE_GOLDEN=1 to write it"
    expected = path.read_text()
    assert actual == expected, f"{name} differs from its golden file (SQSLAB_UPDATE_GOLDEN=1 rewrites it):\n" + "\n".join(
        __import__("difflib").unified_diff(expected.splitlines(), actual.splitlines(), "golden", "actual", lineterm=""))


# ---------------------------------------------------------------- formats


def test_built_in_formats_are_registered_through_the_hook(host):
    reporters = host.reporters
    for name, extension in (("text", "txt"), ("json", "json"), ("html", "html"), ("markdown", "md"), ("junit", "xml")):
        assert reporters[name].extension == extension
        assert reporters[name].plugin == "sqslab.reports.formats"
        assert reporters[name].description


@pytest.mark.integration
def test_the_fixture_runs_did_what_the_scenario_says(run_a, run_b):
    actions = {a["name"]: a for a in run_a.summary["actions"]}
    assert actions["<img src=x onerror=alert(2)>"]["status"] == "failed"
    assert actions["<img src=x onerror=alert(2)>"]["error"] == "<script>alert(3)</script> \"'&"
    # the built-in redrive_dlq moved the DLQ's messages back with the emulator's move task
    assert actions["redrive"]["status"] == "done", actions["redrive"]
    moved = [e for e in run_a.events() if e.get("event") == "redriven"]
    assert len(moved) == 1 and moved[0]["count"] > 0 and moved[0]["status"] == "COMPLETED"
    assert actions["redrive"]["result"] == f"moved {moved[0]['count']} message(s) from the DLQ back to their source queue"
    assert run_a.summary["figures"]["redriven"] == moved[0]["count"]
    assert run_a.summary["description"] == HOSTILE
    assert run_b.resolved["infra"]["consumers"] == 3
    assert run_a.summary["figures"]["redeliveries"] > 0 and run_a.summary["ledger"]["problems"]


@pytest.mark.integration
def test_html_structure(rendered):
    check_golden("report.html.txt", html_skeleton(rendered["html"]))


@pytest.mark.integration
def test_markdown(rendered):
    check_golden("report.md", normalise(rendered["markdown"]))
    assert "| ❌ **FAIL** | drain_time &lt; 1ms | drain_time = " in rendered["markdown"]


@pytest.mark.integration
def test_junit_matches_golden_and_the_xsd(rendered):
    xmlschema = pytest.importorskip("xmlschema", reason="JUnit validation needs xmlschema (the test extra)")

    xml = rendered["junit"]
    xmlschema.XMLSchema(str(XSD)).validate(xml)
    check_golden("junit.xml.txt", junit_skeleton(xml))
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.get("name") == "report-fixture"
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert set(failures) == {"lost == 0", "sent >= 100", "redeliveries > 0", "drain_time < 1ms"}
    assert failures["lost == 0"] is None
    assert failures["drain_time < 1ms"].get("message").startswith("measured: drain_time = ")


@pytest.mark.integration
def test_json_is_the_summary_plus_the_series(rendered, run_a):
    data = json.loads(rendered["json"])
    check_golden("report.json.txt", json_skeleton(rendered["json"]))
    assert {k: v for k, v in data.items() if k != "series"} == json.loads(json.dumps(run_a.summary))
    assert data["series"] == run_a.metrics()


@pytest.mark.integration
def test_text_is_what_sqslab_run_prints(rendered, run_a):
    assert rendered["text"].startswith(f"report-fixture: FAILED (exit 1)  {run_a.path}\n")
    assert "  FAIL  drain_time < 1ms" in rendered["text"]


@pytest.mark.integration
def test_hostile_text_is_shown_escaped_and_never_runs(rendered, compared):
    page = rendered["html"]
    for raw in ("<script>alert", "<img src=x", "<b>burst", "<!-- end"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&#39;&amp; &lt;/script&gt;&lt;!-- end" in page  # description
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # an action's name
    assert "&lt;script&gt;alert(3)&lt;/script&gt; &#34;&#39;&amp;" in page  # its error message (and parameter)
    assert "&lt;b&gt;burst&lt;/b&gt;" in page  # a phase name

    class Tags(html.parser.HTMLParser):
        found: list = []

        def handle_starttag(self, tag, attrs):
            self.found.append((tag, dict(attrs)))

    for document in (page, compared["html"]):
        parser = Tags()
        parser.found = []
        parser.feed(document)
        scripts = [attrs for tag, attrs in parser.found if tag == "script"]
        assert scripts == [{"type": "application/json", "id": "sqslab-data"}, {}, {}]
        assert not [tag for tag, _ in parser.found if tag in ("img", "svg", "iframe", "object", "embed", "link", "base")]
        assert not [(tag, k) for tag, attrs in parser.found for k in attrs if k.startswith("on")]
    data = page.split('<script type="application/json" id="sqslab-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data and "&" not in data
    assert json.loads(data)["actions"][1]["name"] == "<img src=x onerror=alert(2)>"
    markdown = rendered["markdown"]
    assert "<script" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown


@pytest.mark.integration
def test_html_is_self_contained_and_small(rendered):
    page = rendered["html"]

    class Links(html.parser.HTMLParser):
        found: list = []

        def handle_starttag(self, tag, attrs):
            self.found += [(tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "action", "data")]

    parser = Links()
    parser.feed(page)
    assert parser.found == []
    assert "default-src 'none'" in page
    assert len(page.encode()) < 300_000


@pytest.mark.integration
def test_an_error_run_gives_a_junit_error_and_a_loud_html_alert(recorded, tmp_path):
    xmlschema = pytest.importorskip("xmlschema", reason="JUnit validation needs xmlschema (the test extra)")

    broken = tmp_path / "error-run"
    shutil.copytree(recorded["a"], broken, ignore=shutil.ignore_patterns("tasks"))
    summary = json.loads((broken / "summary.json").read_text())
    summary.update(status="error", exit_code=3, errors=["action kill (kill_consumer) failed: <b>no tasks</b> & \x01more"],
                   warnings=["3 message(s) LOST: sent, never processed"])
    (broken / "summary.json").write_text(json.dumps(summary))
    run = load_run(broken)
    xml = render_junit(run, {})
    xmlschema.XMLSchema(str(XSD)).validate(xml)
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.get("errors") == "1"
    error = suite.find("testcase[@name='run']/error")
    assert error.get("message") == "action kill (kill_consumer) failed: <b>no tasks</b> & more"
    assert "LOST" in suite.find("system-err").text
    page = render_html(run, {})
    assert '<div class="alert error" role="alert">Error: action kill (kill_consumer) failed: &lt;b&gt;no tasks&lt;/b&gt; &amp;' in page
    assert '<div class="alert warning" role="alert">Warning: 3 message(s) LOST' in page
    assert "> **error:** action kill (kill_consumer) failed: &lt;b&gt;no tasks&lt;/b&gt; &amp;" in render_markdown(run, {})


@pytest.mark.integration
def test_a_run_stopped_before_its_summary_still_reports(recorded, tmp_path, host_with_plugins):
    stopped = tmp_path / "stopped"
    shutil.copytree(recorded["a"], stopped, ignore=shutil.ignore_patterns("tasks", "summary.json"))
    runs, labels = load_runs([stopped])
    outcomes = {o.format: o for o in render_reports(runs, ["text", "json", "html", "markdown", "junit", "csv_metrics"], host_with_plugins, labels)}
    assert all(o.ok for o in outcomes.values()), {k: o.error for k, o in outcomes.items()}
    assert outcomes["text"].output.startswith("report-fixture: INCOMPLETE")
    assert "This run is incomplete: the figures below are partial." in outcomes["html"].output
    suite = ET.fromstring(outcomes["junit"].output).find("testsuite")
    assert suite.get("name") == "report-fixture" and suite.find("testcase/error").get("type") == "incomplete"
    assert not suite.get("timestamp").startswith("1970")


# ---------------------------------------------------------------- running reporters


@pytest.mark.integration
def test_a_failing_reporter_plugin_does_not_stop_the_others(recorded, run_a, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(BROKEN_REPORTER)
    host = load_plugins([plugins], entry_points=False)
    outcomes = render_reports([run_a], ["markdown", "broken", "junit"], host)
    assert [(o.format, o.ok) for o in outcomes] == [("markdown", True), ("broken", False), ("junit", True)]
    assert outcomes[1].error == "RuntimeError: this reporter always fails"
    assert "broken.py" in outcomes[1].traceback

    result = CliRunner().invoke(report_command(), [str(run_a.path), "--markdown", "--format", "broken", "--junit",
                                                   "-o", str(tmp_path / "out"), "--plugins-dir", str(plugins)])
    assert result.exit_code == 3, result.output
    assert "report: the broken reporter failed: RuntimeError: this reporter always fails" in result.output
    assert "Error: 1 of 3 reports failed" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["junit.xml", "report.md"]


@pytest.mark.integration
def test_compare_two_runs(compared):
    assert compared["labels"] == ["infra.consumers=2", "infra.consumers=3"]
    check_golden("compare.md", normalise(compared["markdown"]))
    check_golden("compare.html.txt", html_skeleton(compared["html"]))
    table = compared["markdown"]
    assert "|  | infra.consumers=2 | infra.consumers=3 |" in table
    assert "| expect drain_time &lt; 1ms | ❌ **FAIL: drain_time = " in table
    data = json.loads(compared["html"].split('id="sqslab-data">', 1)[1].split("</script>", 1)[0])
    assert data["labels"] == compared["labels"] and len(data["depth"]) == 2
    assert all(len(d["t"]) == len(d["depth"]) > 5 for d in data["depth"])
    suites = ET.fromstring(compared["junit"]).findall("testsuite")
    assert len(suites) == 2


@pytest.mark.integration
def test_a_sweep_directory_stands_for_its_runs(recorded, tmp_path):
    sweep = tmp_path / "scale-sweep"
    sweep.mkdir()
    for key in ("a", "b"):
        shutil.copytree(recorded[key], sweep / f"0{'ab'.index(key) + 1}-{key}", ignore=shutil.ignore_patterns("tasks"))
    # as `sqslab sweep` writes it: run_dir relative to where the sweep ran
    (sweep / "sweep.json").write_text(json.dumps({"scenario": "report-fixture", "axes": ["infra.consumers=2,3"], "runs": [
        {"variant": ["infra.consumers=2"], "run_dir": "runs/elsewhere/01-a", "status": "failed", "exit_code": 1},
        {"variant": ["infra.consumers=3"], "run_dir": "runs/elsewhere/02-b", "status": "failed", "exit_code": 1}]}))
    assert [p.name for p, _ in resolve_run_dirs([sweep])] == ["01-a", "02-b"]
    result = CliRunner().invoke(report_command(), [str(sweep), "--html"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(sweep / "compare.html")
    page = (sweep / "compare.html").read_text()
    assert "2 runs of report-fixture compared" in page and ">infra.consumers=3</th>" in page


@pytest.mark.integration
def test_cli_picks_the_latest_run_and_writes_where_asked(recorded, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    shutil.copytree(recorded["b"], runs_dir / "20240101-000000-report-fixture", ignore=shutil.ignore_patterns("tasks"))
    shutil.copytree(recorded["a"], runs_dir / "20240102-000000-report-fixture", ignore=shutil.ignore_patterns("tasks"))
    command, runner = report_command(), CliRunner()
    result = runner.invoke(command, ["--runs-dir", str(runs_dir), "--markdown"])
    assert result.exit_code == 0 and "three consumers" not in result.output and "alert(1)" in result.output
    result = runner.invoke(command, ["--runs-dir", str(runs_dir), "--html"])
    assert result.exit_code == 0 and result.output.strip() == str(runs_dir / "20240102-000000-report-fixture" / "report.html")
    result = runner.invoke(command, ["--runs-dir", str(runs_dir), "--junit", "-o", str(tmp_path / "j.xml")])
    assert result.exit_code == 0 and ET.parse(tmp_path / "j.xml").getroot().tag == "testsuites"
    result = runner.invoke(command, ["--runs-dir", str(runs_dir), "--json", "--junit", "-o", "-"])
    assert result.exit_code == 2 and "2 formats cannot all go to stdout" in result.output
    result = runner.invoke(command, ["--runs-dir", str(runs_dir), "--format", "nope"])
    assert result.exit_code == 2 and "unknown report format 'nope'; known: html, json, junit, markdown, text" in result.output
    result = runner.invoke(command, ["--runs-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no run directory under" in result.output
    assert runner.invoke(command, ["-h"]).exit_code == 0


@pytest.mark.integration
def test_csv_metrics_example_plugin(host_with_plugins, run_a, run_b):
    reporter = host_with_plugins.reporters["csv_metrics"]
    text = reporter.function(run_a, {})
    lines = text.splitlines()
    assert lines[0].startswith("t,queue.visible,queue.in_flight,queue.delayed,dlq.messages,tasks.running,tasks.desired,sent,processed")
    assert len(lines) == len(run_a.metrics()) + 1
    both = reporter.function(run_a, {"runs": [run_a, run_b], "labels": ["A", "B"]}).splitlines()
    assert both[0].startswith("run,t,") and both[1].startswith("A,") and both[-1].startswith("B,")


def test_long_runs_are_downsampled(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "bench_report.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run = load_run(bench.build_run(tmp_path / "long", seconds=3600, events=6000))
    series = metric_series(run.metrics())
    assert len(series["t"]) <= MAX_POINTS and series["t"][-1] == 3599.0
    # peaks survive downsampling; rates come from the counters over each point's interval
    assert max(v for v in series["dlq.messages"] if v is not None) == max(s["dlq.messages"] for s in run.metrics())
    page = render_html(run, {})
    assert len(page.encode()) < 2 * 1024 * 1024
    data = json.loads(page.split('id="sqslab-data">', 1)[1].split("</script>", 1)[0])
    assert len(data["latency"]["t"]) <= MAX_POINTS and data["latency"]["p99"]


def test_no_run_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no run directory under"):
        resolve_run_dirs([], tmp_path)
    with pytest.raises(ReportError, match="not a sqslab run directory"):
        load_runs([tmp_path])


# ---------------------------------------------------------------- in a real browser


class Chromium:
    """Headless Chromium driven over the DevTools protocol (websocket-client)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0", "--window-size=1280,900"]

    def __init__(self, executable: str) -> None:
        import websocket

        self.profile = tempfile.mkdtemp(prefix="sqslab-chromium-")
        self.process = subprocess.Popen([executable, *self.FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=30, suppress_origin=True)
        self.counter = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.page(f"{domain}.enable")
        # Record dialogs instead of opening them: an injected alert() shows up in window.__alerts.
        self.page("Page.addScriptToEvaluateOnNewDocument", source="window.__alerts = []; window.alert = window.confirm = "
                  "window.prompt = function (m) { window.__alerts.push(String(m)); };")

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.counter += 1
        message = {"id": self.counter, "method": method, "params": params, **({"sessionId": session} if session else {})}
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.counter:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def open(self, path: Path, width: int = 1280, height: int = 900) -> None:
        self.events.clear()
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.page("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + 20
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, "the page did not load"
            self.page("Runtime.evaluate", expression="0")
            time.sleep(0.05)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def mouse(self, kind: str, x: float, y: float, pressed: bool = False) -> None:
        self.page("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left" if pressed or kind != "mouseMoved" else "none",
                  buttons=1 if pressed or kind == "mousePressed" else 0, clickCount=0 if kind == "mouseMoved" else 1)

    def problems(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                found.append(json.dumps(params["args"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(params["entry"].get("text", "")[:500])
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, height: int) -> None:
        shot = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            if getattr(self, "socket", None):
                self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)


CHART_CHECK = """(() => (window.sqslabCharts || []).map(u => {
  const b = u.bbox, pixels = u.ctx.getImageData(b.left, b.top, b.width, b.height).data;
  let colored = 0;  // saturated pixels: series lines and bars, not grid, axes or bands
  for (let i = 0; i < pixels.length; i += 4) {
    const hi = Math.max(pixels[i], pixels[i + 1], pixels[i + 2]), lo = Math.min(pixels[i], pixels[i + 1], pixels[i + 2]);
    if (pixels[i + 3] > 100 && hi - lo > 60) colored++;
  }
  return {id: u.sqslabId, series: u.series.length - 1, points: u.data[0].length, colored: colored};
}))()"""


@pytest.fixture(scope="module")
def chromium():
    executable = os.environ.get("SQSLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("no Chromium: install Debian's `chromium` package (or set SQSLAB_CHROMIUM) to run the browser test")
    pytest.importorskip("websocket", reason="the browser test drives Chromium with the websocket-client package")
    browser = Chromium(executable)
    yield browser
    browser.close()


@pytest.mark.integration
@pytest.mark.browser
def test_the_report_draws_its_charts_in_a_browser(chromium, rendered, compared, tmp_path):
    single, comparison = tmp_path / "report.html", tmp_path / "compare.html"
    single.write_text(rendered["html"])
    comparison.write_text(compared["html"])
    for page, expected in ((single, ["chart-depth", "chart-rates", "chart-tasks", "chart-latency", "chart-histogram"]),
                           (comparison, ["chart-compare-depth", "chart-compare-dlq"])):
        chromium.open(page)
        charts = chromium.evaluate(CHART_CHECK)
        assert [c["id"] for c in charts] == expected
        for chart in charts:
            assert chart["series"] >= 1 and chart["points"] > 1, chart
            assert chart["colored"] > 200, f"{chart['id']} drew no series: {chart}"
        assert chromium.problems() == []
        assert chromium.requests() == [page.resolve().as_uri()], "the report must load nothing: no network, no files"
        # hostile text is text on the page: nothing it holds ran or became an element
        assert chromium.evaluate("window.__alerts") == []
        assert chromium.evaluate("document.querySelectorAll('script').length") == 3
        assert chromium.evaluate("document.querySelectorAll('img, svg, iframe').length") == 0
        if page == single:
            assert chromium.evaluate("document.querySelector('.description').textContent.trim()") == HOSTILE
    # interactive: hovering shows values in the legend; dragging zooms, and the other time charts follow
    chromium.open(single)
    box = chromium.evaluate("(() => { const r = document.querySelector('#chart-depth .u-over').getBoundingClientRect();"
                            " window.scrollTo(0, r.top - 100); const q = document.querySelector('#chart-depth .u-over')"
                            ".getBoundingClientRect(); return [q.left, q.top, q.width, q.height]; })()")
    left, top, width, height = box
    y = top + height / 2
    chromium.mouse("mouseMoved", left + width * 0.5, y)
    assert chromium.evaluate("document.querySelector('#chart-depth .u-legend .u-series:nth-child(2) .u-value').textContent") != "–"
    chromium.mouse("mousePressed", left + width * 0.25, y)
    chromium.mouse("mouseMoved", left + width * 0.45, y, pressed=True)
    chromium.mouse("mouseReleased", left + width * 0.45, y)
    ranges = chromium.evaluate("window.sqslabCharts.filter(u => u.sqslabId !== 'chart-histogram')"
                               ".map(u => [u.scales.x.min, u.scales.x.max])")
    full = chromium.evaluate("window.sqslabCharts[0].data[0].slice(-1)[0]")
    assert len({(round(a, 3), round(b, 3)) for a, b in ranges}) == 1, ranges
    assert ranges[0][1] - ranges[0][0] < full * 0.5, (ranges, full)
    chromium.open(single)
    shot = tmp_path / "report.png"
    chromium.screenshot(shot, height=2300)
    assert shot.stat().st_size > 50_000
    if os.environ.get("SQSLAB_REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["SQSLAB_REPORT_SCREENSHOT"])
