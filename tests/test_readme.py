"""README.md's snippets, executed: every scenario and command it shows is run here, and does
what the text around it says.

The snippets are read from README.md itself (fenced blocks and tables, found by the heading
they sit under), so when the README changes this test follows it. Runs of scenarios are
the expensive part (~40 s each): the first scenario runs twice (as written, and with the
idempotency tip), side by side, and those two runs serve every claim about a run's output;
the own-consumer scenarios run once each. Nothing else here runs a scenario: the sweeps
the README shows are only validated, value by value.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("readme")]  # one worker: the module's runs are shared

README = ROOT / "README.md"
SQSLAB = [sys.executable, "-m", "sqslab"]
RUN_TIMEOUT = 300


# ---------------------------------------------------------------- reading README.md


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, text and the README line of its first text line."""

    heading: str
    lang: str
    text: str
    line: int


@dataclass(frozen=True)
class Section:
    """The lines under one heading, up to the next heading of any level."""

    heading: str
    line: int  # README line of the heading
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def prose(self) -> str:
        """The text with every run of white space one space, as a reader reads it."""
        return " ".join(self.text.split())


def _read_readme() -> tuple[list[Section], list[Block]]:
    sections: list[Section] = []
    blocks: list[Block] = []
    heading, start, body = "", 0, []
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if fence is not None:
            if line.startswith("```"):
                blocks.append(Block(heading, fence[0], "\n".join(fence[2]) + "\n", fence[1]))
                fence = None
            else:
                fence[2].append(line)
        elif line.startswith("```"):
            fence = (line[3:].strip(), number + 1, [])
        elif re.match(r"#{1,6} ", line):
            sections.append(Section(heading, start, tuple(body)))
            heading, start, body = line.lstrip("#").strip(), number, []
            continue
        body.append(line)
    sections.append(Section(heading, start, tuple(body)))
    return sections, blocks


SECTIONS, BLOCKS = _read_readme()


def section(heading: str) -> Section:
    """The one section under this heading (a renamed heading fails here, by name)."""
    found = [s for s in SECTIONS if s.heading == heading]
    assert len(found) == 1, f"README.md has {len(found)} sections headed {heading!r}"
    return found[0]


def blocks(heading: str, lang: str) -> list[Block]:
    """The ```lang blocks directly under a heading."""
    section(heading)
    found = [b for b in BLOCKS if b.heading == heading and b.lang == lang]
    assert found, f"README.md has no ```{lang} block under {heading!r}"
    return found


def table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table under a heading, header and rule left out."""
    rows = []
    for line in section(heading).lines:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
        elif rows:
            break
    assert len(rows) > 2, f"no table under {heading!r}"
    return rows[2:]


def commands(block: Block) -> list[tuple[list[str], str, int]]:
    """The `sqslab ...` lines of a ```sh block: (words after `sqslab`, the comment, README line)."""
    found = []
    for offset, line in enumerate(block.text.splitlines()):
        words = shlex.split(line, comments=True)
        if words and words[0] == "sqslab":
            found.append((words[1:], line.partition("#")[2].strip(), block.line + offset))
    return found


def command(block: Block, verb: str) -> tuple[list[str], str, int]:
    """The one `sqslab VERB ...` line of a block."""
    found = [c for c in commands(block) if c[0][0] == verb]
    assert len(found) == 1, f"README.md:{block.line}: expected one `sqslab {verb}` line, found {len(found)}"
    return found[0]


def sweep_values(words: list[str]) -> list[str]:
    """`--set KEY=V1,V2,...` of a sweep command as the single overrides it runs: KEY=V1, KEY=V2."""
    key, _, values = words[words.index("--set") + 1].partition("=")
    return [f"{key}={v}" for v in values.split(",")]


def scenario_doc(text: str, **wrap: object) -> str:
    """A README fragment made a whole scenario: the keys it lacks among version/name/... added."""
    data = yaml.safe_load(text)
    missing = {k: v for k, v in {"version": 1, **wrap}.items() if k not in data}
    return yaml.safe_dump(missing, sort_keys=False) + text


def sqslab(*args: str | Path, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sqslab ARGS` in a child process, as a user runs it."""
    return subprocess.run([*SQSLAB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


FIRST = "Your first scenario"
OWN = "Test your own consumer"


def _first_scenario(home: Path) -> Path:
    """Lay out `home` as the README's reader has it: scenarios/my_first.yaml, and plugins/."""
    prose = section(FIRST).text
    where = re.search(r"Write `([^`]+\.yaml)`", prose)
    assert where, f"README.md:{section(FIRST).line}: the text no longer says which file to write"
    path = home / where.group(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(blocks(FIRST, "yaml")[0].text)
    (home / "plugins").symlink_to(ROOT / "plugins")
    return path


# ---------------------------------------------------------------- the first scenario's runs


@dataclass
class Run:
    home: Path  # the directory the commands ran in
    returncode: int
    stdout: str
    stderr: str

    @property
    def run_dir(self) -> Path:
        found = sorted((self.home / "runs").glob("*"))
        assert len(found) == 1, (found, self.stderr[-2000:])
        return found[0]

    @property
    def summary(self) -> dict:
        return json.loads((self.run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory) -> dict[str, Run]:
    """The README's `sqslab run scenarios/my_first.yaml`, exactly as written, from a directory
    laid out as the text says (so the run goes to ./runs/), and the same with the
    `--set consumer.idempotency=true` tip; both at once, to keep the wall time down."""
    words, _, _ = command(blocks(FIRST, "sh")[0], "run")
    tip = re.search(r"`(--set consumer\.idempotency=true)`", section(FIRST).text)
    assert tip, "the idempotency tip is gone from README.md's first scenario"
    started = {}
    try:
        for label, extra in (("as_written", []), ("idempotency", shlex.split(tip.group(1)))):
            home = tmp_path_factory.mktemp(label)
            _first_scenario(home)
            started[label] = (home, subprocess.Popen([*SQSLAB, *words, *extra], cwd=home, stdout=subprocess.PIPE,
                                                      stderr=subprocess.PIPE, text=True))
        runs = {}
        for label, (home, process) in started.items():
            out, err = process.communicate(timeout=RUN_TIMEOUT)
            runs[label] = Run(home, process.returncode, out, err)
        return runs
    finally:
        for _, process in started.values():
            if process.poll() is None:  # a timeout: stop it the way Ctrl-C would (it tears down)
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_first_scenario_validates_and_plans_as_the_comments_say(cli, tmp_path, monkeypatch):
    """`validate` exits 0; `plan` shows the messages over the time its comment names."""
    _first_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    block = blocks(FIRST, "sh")[0]
    words, _, line = command(block, "validate")
    result = cli(*words)
    assert result.exit_code == 0, f"README.md:{line}: {result.stdout}{result.stderr}"
    words, comment, line = command(block, "plan")
    claim = re.search(r"(\d+) messages over (\S+)", comment)
    assert claim, f"README.md:{line}: the comment no longer says how many messages over how long"
    result = cli(*words)
    assert result.exit_code == 0, result.stderr
    assert f"total: {claim.group(1)} messages over {claim.group(2)} of load" in result.stdout, f"README.md:{line}\n{result.stdout}"


def test_validate_catches_what_the_first_scenario_says_it_catches(cli, tmp_path, monkeypatch):
    """"catches typos, bad units, impossible settings": a typo, a bare number and a slow_time
    shorter than the visibility timeout (refused, the text says) each exit 2, naming the key;
    and the visibility timeout of 10 s the sweep tip says is refused is refused."""
    path = _first_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    text = path.read_text()
    variants = {
        "typo": (text.replace("batch_size:", "batch_sise:"), "did you mean 'batch_size'"),
        "bad unit": (text.replace("slow_time: 5s", "slow_time: 5"), "consumer.slow_time"),
        "slow_time under the visibility timeout": (text.replace("slow_time: 5s", "slow_time: 2s"), "consumer.slow_time"),
        "visibility timeout of 10 s": (text.replace("visibility_timeout: 3s", "visibility_timeout: 10s"), "consumer.slow_time"),
    }
    for what, (variant, expected) in variants.items():
        assert variant != text, f"README's first scenario changed: cannot make the {what} variant"
        bad = tmp_path / "scenarios" / "bad.yaml"
        bad.write_text(variant)
        result = cli("validate", bad)
        assert result.exit_code == 2, (what, result.stdout)
        assert expected in result.stdout, (what, result.stdout)
    prose = section(FIRST).prose
    assert "Written in the file, that 10 s would be refused" in prose and "given with `--set` it is a variant on purpose" in prose
    # ... and given with --set, as the sweep tip does, it is taken
    result = cli("plan", path, "--set", "infra.queue.visibility_timeout=10s")
    assert result.exit_code == 0, result.output


def test_first_scenario_tips_are_valid_overrides(cli, tmp_path, monkeypatch):
    """Every `--set` of the tips, and every value the sweep tip runs, is accepted (`plan --set`:
    validate takes no --set); the sweep is not run (minutes)."""
    _first_scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    prose = section(FIRST).prose
    sweep = re.search(r"`(sqslab sweep [^`]+)`", prose)
    assert sweep, "the sweep tip is gone from README.md's first scenario"
    words = shlex.split(sweep.group(1))[1:]
    scenario = words[1]
    overrides = sweep_values(words) + re.findall(r"`--set (\S+?)`", prose)
    assert len(overrides) >= 4, overrides
    for override in overrides:
        result = cli("plan", scenario, "--set", override)
        assert result.exit_code == 0, (override, result.stdout, result.stderr)


@pytest.mark.slow
def test_first_scenario_run_passes_with_the_duplicates_the_text_says(first_runs):
    """`sqslab run scenarios/my_first.yaml` passes, into runs/<time>-my-first/, with "about
    3 %" processed twice: some, and within the scenario's own `duplicates <= 5%`."""
    run = first_runs["as_written"]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert re.fullmatch(r"\d{8}-\d{6}-my-first", run.run_dir.name), run.run_dir
    assert run.stdout.startswith(f"my-first: PASSED (exit 0)  runs/{run.run_dir.name}"), run.stdout
    figures = run.summary["figures"]
    assert figures["sent"] == 200 and figures["lost"] == 0
    assert 0 < figures["duplicates"] <= 0.05 * figures["sent"], figures
    claim = re.search(r"about (\d+) % of the messages are processed twice \((\d+) of (\d+) when we ran it\)", section(FIRST).prose)
    assert claim, "README's first scenario no longer says how many are processed twice"
    about, count, of = map(int, claim.groups())
    assert of == figures["sent"] and round(100 * count / of) == about
    # "the slow ones whose visibility timeout ran out": no failures, no crashes behind them
    assert figures["failures"] == 0 and figures["crashes"] == 0


@pytest.mark.slow
def test_idempotency_tip_skips_nothing(first_runs):
    """`--set consumer.idempotency=true`: "nothing changes here (`duplicate_skipped 0`)"."""
    run = first_runs["idempotency"]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    figures = run.summary["figures"]
    assert run.summary["status"] == "passed"
    assert figures["duplicate_skipped"] == 0, figures
    assert 0 < figures["duplicates"] <= 0.05 * figures["sent"], figures  # the copies are still processed twice
    assert re.search(r"\bduplicate_skipped 0\b", run.stdout), run.stdout


@pytest.mark.slow
def test_run_directory_holds_what_the_table_lists(first_runs):
    """"The run directory": every file of its table is in the first scenario's run directory,
    summary.json is format_version 1, and the table's sqlite3 query lists the problem messages."""
    run = first_runs["as_written"]
    rows = table("The run directory")
    for cells in rows:
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if name.startswith("tasks/"):
                assert list((run.run_dir / "tasks").glob("*" + name.rpartition(">")[2])), name
            elif name.startswith("."):  # `.err`, after `tasks/<id>.out`
                assert list((run.run_dir / "tasks").glob("*" + name)), name
            else:
                assert (run.run_dir / name).is_file(), name
    summary = run.summary
    assert summary["format_version"] == 1
    query = re.search(r'sqlite3 RUN_DIR/ledger\.sqlite "([^"]+)"', " ".join(c for r in rows for c in r))
    assert query, "the sqlite3 example is gone from the run directory table"
    with sqlite3.connect(run.run_dir / "ledger.sqlite") as db:
        found = db.execute(query.group(1)).fetchall()
    counts = summary["ledger"]["counts"]
    assert len(found) == summary["figures"]["sent"] - counts["processed_once"] > 0
    assert {fate for _, fate, _ in found} == {"duplicate"}
    assert all(deliveries >= 2 for _, _, deliveries in found)


# ---------------------------------------------------------------- what a run prints

SHAPES = {
    "headline": r"(?P<name>[\w.-]+): (?P<status>[A-Z]+) \(exit (?P<code>\d+)\)  runs/\d{8}-\d{6}-(?P=name)",
    "expectations": r"expectations:",
    "expectation": r"  (?P<mark>pass|FAIL)  (?P<text>\S.*?) +measured: (?P<figure>[\w.]+) = (?P<value>\d+(?:\.\d+)?) \((?P<pct>\d+\.\d)%\)",
    "ledger": r"ledger \((?P<sent>\d+) sent\):",
    "fate": r"  (?P<label>[A-Za-z].*?) +(?P<count>\d+)",
    "figures": r"figures: (?P<items>.*)",
    "journal": r"SQS journal: \d+ operations; receives/deletes per task: (?:task-\d+ \d+/\d+(?:, |$))+(?:\.\.\.)?",
    "self-check": r"self-check: consumer events and SQS journal agree",
}


def _shapes(text: str) -> list[tuple[str, re.Match[str], str]]:
    """Each line of a summary with its kind (SHAPES), in order; a line of no kind is None."""
    lines = []
    for line in text.splitlines():
        kind = next((k for k, pattern in SHAPES.items() if re.fullmatch(pattern, line)), None)
        lines.append((kind, re.fullmatch(SHAPES[kind], line) if kind else None, line))
    return lines


def _kinds(lines: list) -> list[str | None]:
    """The kinds in order, repeats of one kind counted once."""
    return [k for i, (k, _, _) in enumerate(lines) if i == 0 or lines[i - 1][0] != k]


def _example() -> Block:
    found = [b for b in BLOCKS if b.heading == "What a run does" and b.lang == ""]
    assert len(found) == 1, "README.md's example summary under 'What a run does' is gone"
    return found[0]


def test_example_output_labels_are_the_fates():
    """The example's ledger says each fate as sqslab.truth.fates.LABELS does, in the fates' order;
    it is dlq_growth's (the command above it), and its figures add up."""
    from sqslab.truth.fates import FATES, FIGURES, LABELS

    block = _example()
    lines = _shapes(block.text)
    unknown = [(block.line + i, line) for i, (kind, _, line) in enumerate(lines) if kind is None]
    assert not unknown, f"lines of the example that sqslab never prints like that: {unknown}"
    fates = [m for kind, m, _ in lines if kind == "fate"]
    assert [m["label"] for m in fates] == [LABELS[f] for f in FATES]
    (headline,) = [m for kind, m, _ in lines if kind == "headline"]
    (ledger,) = [m for kind, m, _ in lines if kind == "ledger"]
    sent = int(ledger["sent"])
    assert headline["name"] == yaml.safe_load((ROOT / "scenarios" / "dlq_growth.yaml").read_text())["name"]
    assert "sqslab run scenarios/dlq_growth.yaml" in section("What a run does").text
    assert sum(int(m["count"]) for m in fates) == sent, "the example's fates do not add up to what it sent"
    plan = sqslab("plan", "--json", "scenarios/dlq_growth.yaml")
    assert json.loads(plan.stdout)["total_messages"] == sent, "the example sent other than what dlq_growth sends"
    (figures_line,) = [m["items"] for kind, m, _ in lines if kind == "figures"]
    shown = dict(re.findall(r"([\w.]+) (\d+) \(", figures_line))
    told = {FIGURES[fate]: m["count"] for fate, m in zip(FATES, fates, strict=True)}
    told["dlq.messages"] = told["dead_lettered"]
    for kind, match, line in lines:
        if kind == "expectation":  # its measured value is the example's own figure, said the same way
            assert match["text"].split()[0] == match["figure"], line
            assert f"{100 * float(match['value']) / sent:.1f}" == match["pct"], line
            for source in (shown, told):
                assert source.get(match["figure"], match["value"]) == match["value"], (line, source)
    assert headline["status"] == "PASSED" and headline["code"] == "0"
    for kind in ("expectation", "fate"):  # one column for each kind, as sqslab lays them out
        assert len({line.index("measured:") if kind == "expectation" else len(line) for k, _, line in lines if k == kind}) == 1, kind


@pytest.mark.slow
def test_example_output_has_the_shape_of_a_real_run(first_runs):
    """Line by line, the example is what `sqslab run` prints on stdout: the same kinds of lines
    in the same order, the columns where sqslab puts them, the figures line starting alike."""
    run = first_runs["as_written"]
    example, real = _shapes(_example().text), _shapes(run.stdout)
    # A run prints more lines than the example shows (what SQS did, duplicate sends...): the
    # example's kinds of lines come in the same order, the others left aside.
    assert None not in _kinds(example), "every line of the example is a kind of line sqslab prints"
    kinds_shown = set(_kinds(example))
    assert [k for k in _kinds(real) if k in kinds_shown] == _kinds(example), run.stdout
    for kind in ("expectation", "fate"):
        columns = {(line.index("measured:") if kind == "expectation" else len(line)) for k, _, line in example + real if k == kind}
        assert len(columns) == 1, f"{kind} lines of README.md's example and of a real run are laid out differently:\n{run.stdout}"
    assert [m["label"] for k, m, _ in example if k == "fate"] == [m["label"] for k, m, _ in real if k == "fate"]
    (shown,) = [m["items"] for k, m, _ in example if k == "figures"]
    (printed,) = [m["items"] for k, m, _ in real if k == "figures"]
    shown_items = [i for i in shown.split(", ") if i != "..."]
    item = r"([\w.]+) \d+(?:\.\d+)? \(\d+\.\d%\)"
    assert [re.fullmatch(item, i)[1] for i in shown_items] == [re.fullmatch(item, i)[1] for i in printed.split(", ")[:len(shown_items)]]


# ---------------------------------------------------------------- Setup, Commands, exit codes


def test_setup_commands_are_what_ci_runs(cli):
    """Setup's test command is the one .ci/run runs (plus its -q and -p no:cacheprovider), after
    installing the same extra; the Development section says the same; the scenario Setup
    runs exists and validates (not run here: 40 s)."""
    block = blocks("Setup", "sh")[0]
    steps = [shlex.split(part) for line in block.text.splitlines() for part in line.partition("#")[0].split("&&") if part.strip()]
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [shlex.split(line, comments=True) for line in ci.splitlines()]
    (ci_pytest,) = [w for w in ci_lines if w[:3] == ["python", "-m", "pytest"]]
    ci_pytest = [w for w in ci_pytest if w not in ("-q", "-p", "no:cacheprovider")]
    (readme_pytest,) = [step for step in steps if step[:3] == ["python", "-m", "pytest"]]
    assert readme_pytest == ci_pytest, f"README.md:{block.line}: {readme_pytest} but .ci/run runs {ci_pytest}"
    (install,) = [step for step in steps if ".[test]" in step]
    assert [w for w in ci_lines if w[-1:] == install[-1:] and "install" in w], f".ci/run does not install {install[-1]}"
    assert f"`{shlex.join(readme_pytest)}`" in section("Development").text
    # .ci/run: ruff, mypy, then the tests (Development says so)
    assert re.search(r"ruff check sqslab consumer\n(.*\n)*mypy\n(.*\n)*python -m pytest", ci)
    markers = (ROOT / "setup.cfg").read_text()
    for marker in re.findall(r"`-m \"([^\"]+)\"`", section("Development").text):
        for name in set(re.findall(r"\w+", marker)) - {"not", "and", "or"}:
            assert re.search(rf"^\s+{name}:", markers, re.M), f"README's -m {marker!r}: no marker {name!r} in setup.cfg"
    (run,) = [step for step in steps if step[:2] == ["sqslab", "run"]]
    scenario = ROOT / run[-1]
    assert scenario.is_file(), scenario
    result = cli("validate", scenario)
    assert result.exit_code == 0, result.stdout


def _help_commands(text: str) -> list[str]:
    return re.findall(r"^  (\w[\w-]*)  ", text.partition("\nCommands:\n")[2], re.M)


def test_commands_table_is_sqslab_help(cli):
    """Every command of the table is in `sqslab --help` and every one there is in the table;
    each takes -h and --help; every option a row names is named in that command's help."""
    top = cli("--help")
    assert top.exit_code == 0
    listed = _help_commands(top.stdout)
    rows = table("Commands")
    in_table = {}
    for cells in rows:
        words = re.fullmatch(r"`sqslab ([^`]+)`", cells[0])[1].split()
        path = [w for w in words[:2] if re.fullmatch(r"[a-z]+", w)]
        in_table[" ".join(path)] = cells
    assert sorted({k.split()[0] for k in in_table}) == sorted(listed), (
        f"README's Commands table has {sorted(in_table)}; `sqslab --help` lists {listed}")
    for name in listed:
        for flag in ("-h", "--help"):
            result = cli(name, flag)
            usage = result.stdout.splitlines()[0] if result.stdout else ""
            assert result.exit_code == 0 and usage.startswith("Usage: ") and f" {name} " in usage, (name, flag, result.stdout)
    for name, cells in in_table.items():
        result = cli(*name.split(), "-h")
        assert result.exit_code == 0, (name, result.stdout)
        flags = set()
        for code in re.findall(r"`([^`]+)`", " ".join(cells)):
            if code.startswith(("-", "sqslab ")):  # not `aws --endpoint-url ...`: another program's flags
                flags |= set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", code))
        missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", result.stdout))
        assert not missing, f"README's row for `sqslab {name}` names {missing}, which `sqslab {name} -h` does not offer"


def test_exit_codes_table_is_sqslab_contracts_exit():
    """The exit codes table lists exactly sqslab.contracts.Exit (130 included), each meaning the
    code's name says."""
    from sqslab.contracts import Exit

    rows = table("Exit codes")
    codes = {int(cells[0]): cells[1] for cells in rows}
    assert set(codes) == {int(e) for e in Exit} | {130}
    for code in Exit:
        assert code.name.lower()[:5] in codes[int(code)].lower(), (code, codes[int(code)])


# ---------------------------------------------------------------- the scenario reference's blocks

REFERENCE = "Scenario reference (format version 1)"


def test_reference_example_validates(cli, tmp_path):
    """The reference's first block is a whole scenario; its schema line points at the shipped
    schema from scenarios/."""
    (block, *_) = blocks(REFERENCE, "yaml")
    path = tmp_path / "scenarios" / "reference.yaml"
    path.parent.mkdir()
    path.write_text(block.text)
    result = cli("validate", path)
    assert result.exit_code == 0, f"README.md:{block.line}: {result.stdout}"
    schema = re.match(r"# yaml-language-server: \$schema=(\S+)", block.text)
    assert schema and (ROOT / "scenarios" / schema.group(1)).resolve() == ROOT / "sqslab.schema.json"


def test_body_template_and_sqs_blocks_validate(cli, tmp_path):
    """The body template block and the `sqs:` block, each in a minimal scenario (version, name)."""
    for heading in ("Message bodies your consumer expects", "`sqs`: SQS as it behaves, and API faults"):
        for block in blocks(heading, "yaml"):
            path = tmp_path / "s.yaml"
            path.write_text(scenario_doc(block.text, name="readme-block"))
            result = cli("validate", path)
            assert result.exit_code == 0, f"README.md:{block.line}: {result.stdout}"


def test_program_block_validates_with_cwd_relative_to_the_scenario(cli, tmp_path):
    """The `consumer.program` block: `cwd` is relative to the scenario file. Written as
    tmp/scenarios/s.yaml it validates with the repository's consumer/ linked (a symlink)
    beside scenarios/, as in a checkout, and is refused without it."""
    (block,) = blocks(OWN, "yaml")
    path = tmp_path / "scenarios" / "program.yaml"
    path.parent.mkdir()
    path.write_text(scenario_doc(block.text, name="readme-program"))
    result = cli("validate", path)
    assert result.exit_code == 2 and "relative to the scenario file" in result.stdout, result.stdout
    (tmp_path / "consumer").symlink_to(ROOT / "consumer")
    result = cli("validate", path)
    assert result.exit_code == 0, f"README.md:{block.line}: {result.stdout}"


# ---------------------------------------------------------------- your own consumer

NODE_WORKER = ROOT / "consumer" / "examples" / "node-worker"


def _own_consumer(tmp_path: Path, verb_path: str) -> dict:
    (block,) = blocks(OWN, "sh")
    (words, _, line) = next(c for c in commands(block) if c[0][-1].endswith(verb_path))
    out = tmp_path / "run"
    completed = sqslab(*words, "--out", out, timeout=RUN_TIMEOUT)  # from the checkout, into tmp_path
    assert completed.returncode == 0, f"README.md:{line}:\n{completed.stdout}{completed.stderr[-3000:]}"
    assert re.match(r"own-consumer-\w+: PASSED \(exit 0\)", completed.stdout), completed.stdout
    summary = json.loads((out / "summary.json").read_text())
    figures = summary["figures"]
    assert figures["lost"] == 0 and figures["processed"] == figures["sent"] > 0
    # "kill both tasks at 4 s and scale from 2 to 3 at 6 s": 2 + 2 replacements + 1 more
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["infra"]["consumers"] == 2
    assert [(a["do"], a.get("at")) for a in resolved["actions"]] == [("kill_consumer", 4.0), ("scale", 6.0)]
    assert resolved["actions"][0]["params"] == {"count": 2}
    assert figures["tasks.started"] == 5
    return summary


def test_own_consumer_commands_are_what_ci_runs():
    """The Node worker's `npm ci` line is the one .ci/run runs (CI installs the packages)."""
    (block,) = blocks(OWN, "sh")
    npm = [line for line in block.text.splitlines() if "npm ci" in line]
    assert npm == ["(cd consumer/examples/node-worker && npm ci)         # the Node worker's packages (sqs-consumer)"]
    assert "(cd consumer/examples/node-worker && npm ci " in (ROOT / ".ci" / "run").read_text()
    assert sorted(c[0][-1] for c in commands(block)) == ["scenarios/own_consumer_node.yaml", "scenarios/own_consumer_python.yaml"]


@pytest.mark.slow
def test_own_consumer_python_passes(tmp_path):
    """`sqslab run scenarios/own_consumer_python.yaml`: passes, every message processed; the
    fates come from the SQS journal, and each task signs as `sqslab-task-N`."""
    summary = _own_consumer(tmp_path, "own_consumer_python.yaml")
    assert "journal" in summary["ledger"]["source"], summary["ledger"]["source"]
    from sqslab.contracts import ACCESS_KEY_PREFIX

    # the journal names each caller by the task its access key id names: ACCESS_KEY_PREFIX + task id
    keys = [ACCESS_KEY_PREFIX + k for k in summary["ledger"]["journal"]["per_task"]]
    assert len(keys) == 5 and all(re.fullmatch(r"sqslab-task-\d+", k) for k in keys), keys
    assert "(`sqslab-task-3`)" in section(OWN).text


@pytest.mark.slow
def test_own_consumer_node_passes(tmp_path):
    """`sqslab run scenarios/own_consumer_node.yaml`, where Node and the worker's packages are."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: own_consumer_node runs a Node worker (.ci/run installs Debian's nodejs)")
    if not (NODE_WORKER / "node_modules" / "sqs-consumer").is_dir():
        pytest.skip(f"the Node worker's packages are not installed: run `npm ci` in {NODE_WORKER} (.ci/run does)")
    _own_consumer(tmp_path, "own_consumer_node.yaml")


# ---------------------------------------------------------------- sweep, report, plugins


def test_backlog_sweep_values_are_valid(cli, monkeypatch):
    """`sqslab sweep scenarios/backlog_drain.yaml --set infra.consumers=1,3,5 -q`: each value
    is accepted (`plan --set`); the sweep itself is not run (minutes)."""
    monkeypatch.chdir(ROOT)
    words, _, line = command(blocks("Scale 1 → 3 → 5 as one picture", "sh")[0], "sweep")
    assert "-q" in words
    values = sweep_values(words)
    assert len(values) == 3, values
    for override in values:
        result = cli("plan", words[1], "--set", override)
        assert result.exit_code == 0, f"README.md:{line}: {override}: {result.stderr}"


def _scenario_with_plugin_action(directory: Path, name: str, action: str) -> Path:
    path = directory / name
    path.write_text(f"version: 1\nname: readme-plugin\nload: [{{rate: 1/s, duration: 40s}}]\nactions: [{action}]\n")
    return path


def test_plugins_validate_checks_the_plugin_action(cli, tmp_path, monkeypatch):
    """`sqslab validate --plugins-dir plugins my_scenario.yaml` on a scenario with the
    README's `set_visibility_timeout` action: valid with the plugins, refused without them,
    and a bad parameter is refused by the action's schema."""
    (tmp_path / "plugins").symlink_to(ROOT / "plugins")
    monkeypatch.chdir(tmp_path)
    action = re.search(r"`(\{[^`]*do: set_visibility_timeout[^`]*\})`", section("Plugins").prose)
    assert action, "README's Plugins section no longer shows the set_visibility_timeout action"
    words, _, line = command(blocks("Plugins", "sh")[0], "validate")
    _scenario_with_plugin_action(tmp_path, words[-1], action.group(1))
    result = cli(*words)
    assert result.exit_code == 0, f"README.md:{line}: {result.stdout}"
    result = cli("validate", words[-1])
    assert result.exit_code == 2 and "unknown action 'set_visibility_timeout'" in result.stdout
    bad = _scenario_with_plugin_action(tmp_path, "bad.yaml", re.sub(r"to: [^,}]+", "to: fast", action.group(1)))
    result = cli("validate", "--plugins-dir", "plugins", bad)
    assert result.exit_code == 2 and "actions[0].to" in result.stdout, result.stdout
    schema = cli("schema", "--plugins-dir", "plugins")  # Editor support: a schema with your plugins' actions
    assert schema.exit_code == 0 and "set_visibility_timeout" in schema.stdout


@pytest.mark.slow
def test_plugins_csv_report_of_the_latest_run(first_runs):
    """`sqslab report --plugins-dir plugins --format csv_metrics -o metrics.csv`, in the
    directory of the first scenario's run (the latest run under runs/): a CSV of the metrics."""
    run = first_runs["as_written"]
    words, _, line = command(blocks("Plugins", "sh")[0], "report")
    completed = sqslab(*words, cwd=run.home)
    assert completed.returncode == 0, f"README.md:{line}: {completed.stdout}{completed.stderr}"
    output = run.home / words[words.index("-o") + 1]
    rows = list(csv.reader(output.open()))
    samples = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) - 1 == len(samples) > 10, (len(rows), len(samples))
    assert "queue.visible" in ",".join(rows[0]) or "visible" in ",".join(rows[0]), rows[0]
