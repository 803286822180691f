"""The `sqslab` command line. Click code only: the work happens in the library modules.

Exit codes: 0 passed, 1 expectations failed, 2 usage or invalid scenario,
3 infrastructure or internal error, 130 interrupted.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import shlex
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqslab.contracts import ECR_REPOSITORY, Exit

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class InfraError(click.ClickException):
    """An infrastructure or internal failure: exit 3."""

    exit_code = Exit.ERROR


class UsageProblem(click.ClickException):
    """Bad input that is not a command-line mistake (a plugin, a file): exit 2."""

    exit_code = Exit.USAGE


class InterruptedByUser(click.ClickException):
    """Ctrl-C or SIGTERM: exit 130."""

    exit_code = Exit.INTERRUPTED


class SqslabGroup(click.Group):
    """The command group: an unexpected exception is an internal error (exit 3, its
    traceback written to a file the message names), Ctrl-C is exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise InterruptedByUser("interrupted") from None
        except Exception as exc:  # noqa: BLE001 - any other exception is a bug in sqslab: say so, keep the traceback
            raise InfraError(internal_error(exc)) from None


def internal_error(exc: BaseException) -> str:
    """The message for a bug in sqslab: what it was, and where its traceback went."""
    with tempfile.NamedTemporaryFile("w", prefix="sqslab-traceback-", suffix=".txt", delete=False) as handle:
        handle.write(traceback.format_exc())
    return (f"internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in sqslab; the traceback is in {handle.name} (please include it in a report).")


@click.group(cls=SqslabGroup, context_settings=CONTEXT)
@click.version_option(package_name="sqslab", message="sqslab %(version)s")
def main() -> None:
    """sqslab: a lab for Amazon SQS consumer failures.

    Write a scenario (queue settings, consumer failure knobs, load phases, timed actions,
    expectations), run it locally on an embedded SQS emulator or on AWS, and see the
    fate of every message.

    \b
    Exit codes: 0 passed, 1 expectations failed, 2 usage or invalid scenario,
                3 infrastructure or internal error, 130 interrupted.
    """


def plugin_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """`--plugins-dir DIR` (repeatable), shared by every command that loads plugins."""

    @click.option("--plugins-dir", "plugins_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="Load every *.py in DIR as a plugin (repeatable).")
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


_HOSTS: dict[tuple[str, ...], Any] = {}


def _host(plugins_dirs: tuple[Path, ...] | list[Path]) -> Any:
    """The plugin host for these --plugins-dir values (loaded once per process)."""
    from sqslab.plugins import PluginError, load_plugins

    key = tuple(str(Path(d).resolve()) for d in plugins_dirs)
    if key not in _HOSTS:
        try:
            _HOSTS[key] = load_plugins([Path(d) for d in plugins_dirs])
        except PluginError as exc:
            raise UsageProblem(str(exc)) from None
    return _HOSTS[key]


def _plugins_dirs_in(args: list[str]) -> list[Path]:
    """The --plugins-dir values among raw arguments (before click parses them)."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--plugins-dir" and i + 1 < len(args):
            found.append(Path(args[i + 1]))
        elif arg.startswith("--plugins-dir="):
            found.append(Path(arg.split("=", 1)[1]))
    return [p for p in found if p.is_dir()]


class TargetCommand(click.Command):
    """A command whose options include every loaded target's own (`--endpoint-url`,
    `--keep`, a plugin target's): they come from the targets the plugins register, so a
    new target needs no change here."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            self._add_target_options(_host(_plugins_dirs_in(args)))
        except click.ClickException:
            pass  # a broken plugin is reported by the command itself, with its own exit code
        return super().parse_args(ctx, args)

    def _add_target_options(self, host: Any) -> None:
        known = {p.name for p in self.params}
        for target in sorted(host.targets.values(), key=lambda t: t.name):
            for option in target.options:
                if option.name in known:
                    continue
                known.add(option.name)
                users = [t.name for t in host.targets.values() if any(o.name == option.name for o in t.options)]
                help_text = f"{option.help} [--target {', '.join(sorted(users))}]"
                if option.flag:
                    param = click.Option([option.option, option.name], is_flag=True, default=False, show_default=False, help=help_text)
                else:
                    kind = click.Choice(list(option.choices)) if option.choices else click.STRING
                    param = click.Option([option.option, option.name], type=kind, default=None, metavar=option.metavar, show_default=False,
                                         help=help_text + (f" (default: {option.default})" if option.default is not None else ""))
                self.params.append(param)


def _target_choice(host: Any, target: str) -> Any:
    """The registered target named by --target, or a usage error with the known ones."""
    spec = host.targets.get(target)
    if spec is None:
        close = difflib.get_close_matches(target, list(host.targets), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise click.UsageError(f"--target {target!r} is not a loaded target; {hint}known: {', '.join(sorted(host.targets))}")
    return spec


def _target_options(host: Any, target: str, values: dict[str, Any]) -> dict[str, Any]:
    """The chosen target's options from the command line; an option of another target is
    a usage error that says which target it belongs to."""
    spec = _target_choice(host, target)
    ctx = click.get_current_context()
    mine = {o.name for o in spec.options}
    options: dict[str, Any] = {}
    for name, value in values.items():
        given = ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
        if name in mine:
            if given:
                options[name] = value
        elif given:
            owners = sorted(t.name for t in host.targets.values() if any(o.name == name for o in t.options))
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} is for --target {' or '.join(owners)}, not --target {target}")
    return options


def _scenario_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths or ("scenarios",):
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise click.UsageError(f"{raw}: no *.yaml or *.yml files in this directory")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            hint = " (run from a directory that has scenarios/, or name the files)" if not paths else ""
            raise click.UsageError(f"{raw}: no such file or directory{hint}")
    return files


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _load(path: str, host: Any, overrides: tuple[str, ...] = ()) -> Any:
    from sqslab.scenario.load import ScenarioError, load_scenario

    try:
        return load_scenario(path, host, overrides)
    except ScenarioError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{path}: invalid scenario ({_count(len(exc.problems), 'problem')})", err=True)
        sys.exit(Exit.USAGE)


@main.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@plugin_options
def validate(paths: tuple[str, ...], as_json: bool, plugins_dirs: tuple[Path, ...]) -> None:
    """Check scenario files (default: every file in scenarios/) before anything runs.

    Reports every problem at once as FILE:LINE:COL: KEY.PATH: MESSAGE. Exit 0 when all
    files are valid, 2 otherwise.
    """
    from sqslab.scenario.load import check_file, load_scenario

    host = _host(plugins_dirs)
    files = _scenario_files(paths)
    results = {str(path): check_file(path, host) for path in files}
    problems = [p for found in results.values() for p in found]
    # What a valid scenario will execute on this machine, said before anything runs it.
    executes, notes = {}, {}
    for file, found in results.items():
        scenario = None if found else load_scenario(file, host)
        runs = scenario.consumer.executes() if scenario is not None else None
        if runs is not None:
            executes[file] = runs
        said = _notes(scenario) if scenario is not None else []
        if said:
            notes[file] = said
    if as_json:
        files_out = [{"file": f, "valid": not found, "problems": [p.as_dict() for p in found],
                      **({"executes": executes[f]} if f in executes else {}), **({"notes": notes[f]} if f in notes else {})}
                     for f, found in results.items()]
        payload = {"valid": not problems, "files": files_out}
        click.echo(json.dumps(payload, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        for file, what in executes.items():
            click.echo(f"{file}: executes {shlex.join(what['command'])} (in {what['cwd']}) as each "
                       f"{what.get('as', 'consumer task')}", err=True)
        for file, said in notes.items():
            for note in said:
                click.echo(f"{file}: note: {note}", err=True)
        bad = sum(1 for found in results.values() if found)
        if problems:
            click.echo(f"{_count(len(problems), 'problem')} in {bad} of {_count(len(files), 'file')}", err=True)
        else:
            click.echo(f"{len(files)} scenario file{'s' if len(files) != 1 else ''} valid", err=True)
    sys.exit(Exit.USAGE if problems else Exit.PASSED)


def _notes(scenario: Any) -> list[str]:
    """What `validate` notes of a valid scenario: its retention, and its consumer's notes."""
    return [note for note in [_retention_note(scenario), *scenario.consumer.notes(scenario.infra)] if note]


def _retention_note(scenario: Any) -> str | None:
    """What a valid scenario may not mean: a retention shorter than the run, so messages
    still queued by then expire (their fate: expired). Not a problem: it may be the experiment."""
    from sqslab.scenario.timeline import plan as make_plan
    from sqslab.scenario.units import format_duration

    load = max([row.end or row.start or 0.0 for row in make_plan(scenario)] + [0.0])
    longest = load + scenario.settle_timeout
    retention = scenario.infra.retention
    if retention >= longest:
        return None
    return (f"infra.queue.retention {format_duration(retention)} is shorter than the run can take ({format_duration(load)} "
            f"of load + settle.timeout {format_duration(scenario.settle_timeout)}): messages still queued by then expire "
            "(their fate: expired)")


@main.command(context_settings=CONTEXT)
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the settings reference as Markdown tables instead (README's).")
@plugin_options
def schema(as_markdown: bool, plugins_dirs: tuple[Path, ...]) -> None:
    """Print the scenario JSON Schema, plugin actions included, for editors.

    \b
    Save it and point your editor at it, e.g. at the top of a scenario:
      # yaml-language-server: $schema=./sqslab.schema.json
    """
    if as_markdown:
        from sqslab.scenario.settings import reference

        click.echo(reference(), nl=False)
        return
    from sqslab.scenario.schema import full_schema

    click.echo(json.dumps(full_schema(_host(plugins_dirs)), indent=2))


@main.command(cls=TargetCommand, context_settings=CONTEXT)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", default="local", show_default=True, help="Where the scenario would run (see `sqslab plugins`).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a scenario key, e.g. --set infra.consumers=3.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@plugin_options
def plan(scenario_path: str, target: str, overrides: tuple[str, ...], as_json: bool, plugins_dirs: tuple[Path, ...],
         **target_values: Any) -> None:
    """Show what a run would do, without running anything or calling AWS.

    Prints each phase and action with its start time from t0 and the messages each
    phase sends, then what the target adds (with --target aws, the Terraform variables
    rendered from the scenario).
    """
    from sqslab.scenario.timeline import plan as make_plan
    from sqslab.scenario.units import format_duration

    host = _host(plugins_dirs)
    options = _target_options(host, target, target_values)
    scenario = _load(scenario_path, host, overrides)
    rows = make_plan(scenario)
    total = sum(r.messages for r in rows)
    load_end = max((r.end or 0.0 for r in rows if r.kind == "phase"), default=0.0)
    from sqslab.targets import TargetError

    try:
        sections = _target_choice(host, target).factory(log=lambda event: None, **options).plan(scenario)
    except TargetError as exc:  # the scenario cannot run on this target: say why, as for a bad scenario
        raise UsageProblem(f"{scenario_path}: {exc}") from None
    if as_json:
        payload = {
            "scenario": scenario.name, "target": target, "total_messages": total,
            "rows": [r.__dict__ for r in rows],
            "settle": {"until": scenario.settle_until, "timeout": scenario.settle_timeout},
            "target_plan": dict(sections),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    estimated = any(r.estimated for r in rows) or any(p.kind == "burst" for p in scenario.phases)
    click.echo(f"plan: {scenario.name} on target {target}")
    click.echo(f"  {'start':>8}  {'what':<6}  {'name':<20}  {'detail':<44}  {'messages':>8}")
    for row in rows:
        if row.start is None:
            start = "when" if row.kind == "action" else "?"
        else:
            start = ("~" if row.estimated else "") + format_duration(round(row.start, 3))
        messages = str(row.messages) if row.kind == "phase" else ""
        click.echo(f"  {start:>8}  {row.kind:<6}  {row.name:<20}  {row.detail:<44}  {messages:>8}")
    settle = "no settling"
    if scenario.settle_until == "drained":
        settle = f"settle until drained (timeout {format_duration(scenario.settle_timeout)})"
    click.echo(f"total: {total} messages over {'~' if estimated else ''}{format_duration(round(load_end, 3))} of load, then {settle}")
    if estimated:
        from sqslab.scenario.timeline import ASSUMED_BURST_RATE

        click.echo(f"~ times after a burst assume {ASSUMED_BURST_RATE:g} msg/s; the run measures the real ones")
    for title, text in sections:
        click.echo(f"\n{title}:")
        click.echo(text.rstrip())


@main.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@plugin_options
def plugins(as_json: bool, plugins_dirs: tuple[Path, ...]) -> None:
    """List the loaded plugins and the actions, reporters, targets, consumer kinds and body formats each registers."""
    host = _host(plugins_dirs)
    if as_json:
        click.echo(json.dumps(host.describe(), indent=2))
        return
    for kind in ("actions", "reporters", "targets", "kinds", "formats"):
        table = getattr(host, kind)
        click.echo(f"{ {'kinds': 'consumer kinds', 'formats': 'body formats'}.get(kind, kind)}:")
        for name, item in sorted(table.items()):
            click.echo(f"  {name:<16} {item.description}  [{item.plugin}]")
            for option in getattr(item, "options", ()):
                click.echo(f"  {'':<16}   {option.option}: {option.help}")


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `run` and `sweep`."""
    options = [
        click.option("--target", default="local", show_default=True, help="Where to run (see `sqslab plugins`; its options follow)."),
        click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
                     help="Where run directories are made."),
        click.option("--quiet", "-q", is_flag=True, help="No live progress."),
        click.option("--max-consumers", type=int, default=None, metavar="N",
                     help="Cost guard: allow up to N consumer tasks (same as --set infra.max_consumers=N)."),
    ]
    for option in reversed(options):
        function = option(function)
    return plugin_options(function)


def _guard(overrides: tuple[str, ...], max_consumers: int | None) -> tuple[str, ...]:
    """--max-consumers as the override it stands for; it comes first so --set can still win."""
    return ((f"infra.max_consumers={max_consumers}",) if max_consumers is not None else ()) + tuple(overrides)


def _execute(scenario: Any, host: Any, target: str, target_options: dict[str, Any], runs_dir: Path, out: Path | None, quiet: bool) -> Any:
    from sqslab.run.progress import Progress
    from sqslab.run.runner import RunOptions, run_scenario
    from sqslab.scenario.timeline import plan as make_plan

    rows = make_plan(scenario)
    expected = max([r.end or r.start or 0.0 for r in rows] + [0.0])
    progress = None if quiet else Progress(expected)
    options = RunOptions(target=target, target_options=target_options, runs_dir=runs_dir, out=out, on_progress=progress,
                         on_event=progress.event if progress else None)
    if not quiet:
        click.echo(f"running {scenario.name} on {target}: ~{expected:.0f}s of load, then settling", err=True)
    runs = scenario.consumer.executes()
    if runs is not None:  # said even with -q: the scenario runs a command on this machine
        click.echo(f"executes: {shlex.join(runs['command'])} (in {runs['cwd']}) as each {runs.get('as', 'consumer task')}", err=True)
    from sqslab.rundir import RunDirInUse

    try:
        result = run_scenario(scenario, host, options)
    except RunDirInUse as exc:
        raise UsageProblem(str(exc)) from None
    finally:
        if progress:
            progress.close()
    return result


@main.command(cls=TargetCommand, context_settings=CONTEXT)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key for this run, e.g. --set infra.consumers=3.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory (default: RUNS_DIR/<time>-<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout.")
@run_options
def run(scenario_path: str, overrides: tuple[str, ...], out: Path | None, as_json: bool, target: str, runs_dir: Path, quiet: bool,
        max_consumers: int | None, plugins_dirs: tuple[Path, ...], **target_values: Any) -> None:
    """Run a scenario: stand the lab up, drive it, record every message's fate, give a verdict.

    Writes a run directory (scenario, events.jsonl, metrics.jsonl, summary.json, task
    logs) and exits 0 when every expectation held, 1 when one failed, 3 on an
    infrastructure error, 130 when interrupted.
    """
    from sqslab.reports.formats import render_text
    from sqslab.rundir import load_run

    host = _host(plugins_dirs)
    options = _target_options(host, target, target_values)
    scenario = _load(scenario_path, host, _guard(overrides, max_consumers))
    result = _execute(scenario, host, target, options, runs_dir, out, quiet)
    if as_json:
        click.echo(json.dumps(result.summary, indent=2, default=str))
    if result.summary.get("summary_written") is False:  # a full disk: say why from memory
        click.echo(f"{scenario.name}: {str(result.summary['status']).upper()} (exit {result.exit_code})  {result.run_dir}", err=True)
        for error in result.summary["errors"]:
            click.echo(f"  error: {error}", err=True)
    else:
        click.echo(render_text(load_run(result.run_dir), {}), err=as_json, nl=False)
    sys.exit(result.exit_code)


@main.command(cls=TargetCommand, context_settings=CONTEXT)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "overrides", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="A key and the values to sweep, e.g. --set infra.consumers=1,3,5 (repeat for a grid).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Sweep directory (default: RUNS_DIR/<time>-<name>-sweep).")
@run_options
def sweep(scenario_path: str, overrides: tuple[str, ...], out: Path | None, target: str, runs_dir: Path, quiet: bool,
          max_consumers: int | None, plugins_dirs: tuple[Path, ...], **target_values: Any) -> None:
    """Run variants of a scenario one after another into one sweep directory.

    Every combination of the --set values is validated before the first run. Exit code:
    the worst of the runs (130 interrupted, 3 error, 1 failed, 0 passed).
    """
    import itertools

    from sqslab.rundir import RunDirInUse, claim, new_run_dir, write_json

    host = _host(plugins_dirs)
    options = _target_options(host, target, target_values)
    axes = []
    for text in overrides:
        key, sep, values = text.partition("=")
        if not sep or not values:
            raise click.UsageError(f"--set {text}: write KEY=V1,V2,... e.g. infra.consumers=1,3,5")
        axes.append([f"{key}={value}" for value in values.split(",")])
    variants = [list(combo) for combo in itertools.product(*axes)]
    scenarios = [_load(scenario_path, host, _guard(tuple(variant), max_consumers)) for variant in variants]
    sweep_dir = out or new_run_dir(runs_dir, f"{scenarios[0].name}-sweep")
    try:
        claimed = claim(sweep_dir)
    except RunDirInUse as exc:
        raise UsageProblem(str(exc)) from None
    results: list[dict[str, Any]] = []
    codes = []
    for index, (variant, scenario) in enumerate(zip(variants, scenarios, strict=True), 1):
        label = ",".join(variant)
        if not quiet:
            click.echo(f"[{index}/{len(variants)}] {label}", err=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(variant))[:80]
        result = _execute(scenario, host, target, options, runs_dir, sweep_dir / f"{index:02d}-{name}", quiet)
        codes.append(result.exit_code)
        results.append({"variant": variant, "run_dir": str(result.run_dir), "status": result.summary.get("status"),
                        "exit_code": result.exit_code})
        write_json(sweep_dir / "sweep.json", {"scenario": scenarios[0].name, "axes": overrides, "runs": results})
        if result.exit_code == Exit.INTERRUPTED:
            break
    claimed.release()
    for item in results:
        click.echo(f"{item['status']:<12} exit {item['exit_code']}  {','.join(item['variant'])}  {item['run_dir']}")
    worst = next((c for c in (Exit.INTERRUPTED, Exit.ERROR, Exit.FAILED) if c in codes), Exit.PASSED)
    sys.exit(worst)


@main.command(context_settings=CONTEXT)
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--budget", default="10m", show_default=True, metavar="DURATION",
              help="The most the hunt may take, e.g. 90s, 10m: a hard bound (the run going at its end is stopped).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the variations: the same seed, the same sequence.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Hunt directory: hunt.json, minimal.yaml, variations/, runs/ (default: RUNS_DIR/<time>-<name>-hunt).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="Where the hunt directory is made when --out is not given.")
@click.option("--quiet", "-q", is_flag=True, help="No line per variation on stderr.")
@plugin_options
def hunt(scenario_path: str, budget: str, seed: int, out: Path | None, runs_dir: Path, quiet: bool,
         plugins_dirs: tuple[Path, ...]) -> None:
    """Hunt for a variation of a scenario that fails, and shrink it to a minimal one.

    Runs variations one after another within the budget (actions added, load changed,
    sqs behaviour set; a `hunt:` section in the scenario narrows what varies), checking
    expectations and the lab's own invariants on every run. A failing variation is
    shrunk to the smallest that still fails, re-run to confirm, and written to
    OUT/minimal.yaml (`sqslab run OUT/minimal.yaml` runs it); OUT/hunt.json records every
    variation. Exit 1 when a failing variation was found, 0 when none was, 2 for an
    invalid scenario, 130 when interrupted. See docs/hunt.md.
    """
    from sqslab.hunt import HuntOptions
    from sqslab.hunt import hunt as run_hunt
    from sqslab.rundir import RunDirInUse, claim, new_run_dir
    from sqslab.scenario.load import ScenarioError
    from sqslab.scenario.units import UnitError, parse_duration

    try:
        seconds = parse_duration(budget)
    except UnitError as exc:
        raise click.BadParameter(str(exc), param_hint="--budget") from None
    if seconds <= 0:
        raise click.BadParameter("the budget must be more than 0s", param_hint="--budget")
    host = _host(plugins_dirs)
    scenario = _load(scenario_path, host)  # an invalid scenario: every problem, exit 2
    hunt_dir = out or new_run_dir(runs_dir, f"{scenario.name}-hunt")
    if (hunt_dir / "hunt.json").exists():
        raise UsageProblem(f"{hunt_dir} already holds a hunt (hunt.json); give another --out")
    try:
        claimed = claim(hunt_dir)
    except RunDirInUse as exc:
        raise UsageProblem(str(exc)) from None
    show = None if quiet else (lambda line: click.echo(line, err=True))
    if not quiet:
        click.echo(f"hunting {scenario.name} for {budget} (seed {seed}) into {hunt_dir}", err=True)
    try:
        result = run_hunt(Path(scenario_path), host, HuntOptions(out=hunt_dir, budget=seconds, seed=seed, on_line=show))
    except ScenarioError as exc:  # the file changed since it was loaded
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(Exit.USAGE)
    finally:
        claimed.release()
    click.echo(result.text, nl=False)
    sys.exit(result.exit_code)


@main.command(name="report", context_settings=CONTEXT)
@click.argument("run_dirs", nargs=-1, metavar="[RUN_DIR...]", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--html", "as_html", is_flag=True, help="One self-contained HTML page with charts (opens offline).")
@click.option("--json", "as_json", is_flag=True, help="summary.json plus the metric series.")
@click.option("--markdown", "--md", "as_markdown", is_flag=True, help="Markdown for a pull-request comment.")
@click.option("--junit", "as_junit", is_flag=True, help="JUnit XML: each expectation a testcase.")
@click.option("--format", "-f", "format_names", multiple=True, metavar="NAME",
              help="A format by name, plugin formats included (repeatable; see `sqslab plugins`).")
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), metavar="PATH",
              help="Write to this file ('-': stdout); with several formats, a directory.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="Where to look for the latest run when no RUN_DIR is given.")
@plugin_options
def report(run_dirs: tuple[Path, ...], as_html: bool, as_json: bool, as_markdown: bool, as_junit: bool,
           format_names: tuple[str, ...], output: Path | None, runs_dir: Path, plugins_dirs: tuple[Path, ...]) -> None:
    """Report on a run directory (default: the latest under --runs-dir), or compare runs.

    \b
    Two or more RUN_DIRs, or a sweep directory, make a comparison: verdicts,
    ledgers and key figures side by side, queue depths overlaid on one chart.
    Without a format flag the report is text. One format goes to stdout (html to
    RUN_DIR/report.html) unless -o says where; several go to files in the run
    directory or in the -o directory. Paths written are printed.

    \b
    Examples:
      sqslab report --html                          # latest run -> runs/<run>/report.html
      sqslab report runs/X --markdown > comment.md
      sqslab report runs/X --junit -o junit.xml
      sqslab report runs/A runs/B --html -o compare.html
      sqslab report runs/<time>-scale-drain-sweep --html

    Exit 0 when every report was written, 2 when the runs or formats are unusable,
    3 when a reporter failed (the others are still written).
    """
    from sqslab.reports.html import ReportError, default_output_dir, load_runs, output_paths, render_reports, write_report

    formats = [name for flag, name in ((as_html, "html"), (as_json, "json"), (as_markdown, "markdown"), (as_junit, "junit")) if flag]
    formats += [name for name in format_names if name not in formats]
    host = _host(plugins_dirs)
    try:
        runs, labels = load_runs(run_dirs, runs_dir)
        targets = output_paths(formats, host, output, default_output_dir(runs, run_dirs), compare=len(runs) > 1)
    except ReportError as exc:
        raise UsageProblem(str(exc)) from None
    failed = 0
    for outcome in render_reports(runs, list(targets), host, labels):
        if not outcome.ok:
            failed += 1
            click.echo(f"report: the {outcome.format} reporter failed: {outcome.error}", err=True)
            continue
        path = targets[outcome.format]
        data = outcome.output or ""
        if path is None:
            if isinstance(data, bytes):
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                click.echo(data, nl=not data.endswith("\n"))
        else:
            try:
                write_report(data, path)
            except OSError as exc:
                raise UsageProblem(f"cannot write {path}: {exc.strerror or exc}") from None
            click.echo(str(path))
    if failed:
        raise InfraError(f"{failed} of {len(targets)} report{'s' if len(targets) != 1 else ''} failed")


def _profile_setting() -> Any:
    """The `sqs.behavior` row of the settings table: `sqslab emulator --behavior`'s choices and default."""
    from sqslab.scenario.settings import BY_KEY

    return BY_KEY["sqs.behavior"]


@main.command(context_settings=CONTEXT)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--behavior", type=click.Choice(list(_profile_setting().choices)), default=_profile_setting().default,
              show_default=True,
              help="exact, or SQS's documented departures from exactness (README, `sqs`).")
@click.option("--sqs", "sqs_settings", multiple=True, metavar="KEY=VALUE",
              help="One `sqs` behaviour setting, as in a scenario: --sqs duplicates=5%  --sqs count_lag=10s (repeatable).")
@click.option("--fault", "faults", multiple=True, metavar="API:ERROR[:RATE[:LATENCY]]",
              help="An API fault: 'DeleteMessage:throttling:10%', 'SendMessage,SendMessageBatch:internal:1%', "
                   "'*::100%:200ms' (latency only) (repeatable).")
@click.option("--seed", type=int, default=None, help="Seed of the behaviour's and the faults' draws.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append an event (JSON line) for every fault and departure from exactness to this file.")
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the SQS journal (every send, receive, delete... with its caller's access key id) to this file.")
def emulator(port: int, behavior: str, sqs_settings: tuple[str, ...], faults: tuple[str, ...], seed: int | None,
             events_path: Path | None, journal_path: Path | None) -> None:
    """Run the embedded SQS emulator in the foreground, for ad hoc use with any SQS client.

    Prints the endpoint and ready-to-paste environment (dummy credentials); Ctrl-C stops it.
    """
    from sqslab.emulator import EmulatorError, serve

    for option, path in (("--events", events_path), ("--journal", journal_path)):
        _check_writable(option, path)
    lab = _emulator_lab(behavior, sqs_settings, faults, seed)
    try:
        serve(port=port, lab=lab, events_path=events_path, journal_path=journal_path)
    except EmulatorError as exc:
        raise InfraError(str(exc)) from None


def _check_writable(option: str, path: Path | None) -> None:
    """A usage error (exit 2) when a file an option names cannot be appended to, before
    anything starts: its folder is missing, or it cannot be written."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise click.BadParameter(f"{path}: no folder {folder}", param_hint=option)
    if (path.exists() and not os.access(path, os.W_OK)) or (not path.exists() and not os.access(folder, os.W_OK)):
        raise click.BadParameter(f"{path}: cannot be written", param_hint=option)


def _emulator_lab(behavior: str, settings: tuple[str, ...], faults: tuple[str, ...], seed: int | None) -> dict[str, Any] | None:
    """The emulator's lab configuration from `sqslab emulator`'s options; a usage error
    names a bad one. None when it is all defaults."""
    from sqslab.emulator.lab import lab_config
    from sqslab.scenario.load import resolve_fault
    from sqslab.scenario.settings import OptionError, behavior_options
    from sqslab.scenario.units import UnitError

    try:
        given = behavior_options(behavior, settings)
    except OptionError as exc:
        raise click.BadParameter(str(exc), param_hint="--sqs") from None
    rules = []
    for i, text in enumerate(faults):
        parts = text.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise click.BadParameter(f"{text!r}: write API:ERROR[:RATE[:LATENCY]], e.g. DeleteMessage:throttling:10%", param_hint="--fault")
        fault: dict[str, Any] = {"api": parts[0].split(",") if "," in parts[0] else parts[0]}
        for key, value in zip(("error", "rate", "latency"), parts[1:], strict=False):
            if value:
                fault[key] = value
        try:
            rules.append(resolve_fault(fault, f"--fault {i + 1}"))
        except (UnitError, ValueError) as exc:
            raise click.BadParameter(f"{text!r}: {exc}", param_hint="--fault") from None
    if behavior == _profile_setting().default and not given and not rules and seed is None:
        return None
    return lab_config(behavior, given, rules, seed)


@main.command(context_settings=CONTEXT)
@click.option("--queue-url", required=True, help="The queue to send to.")
@click.option("--n", "count", type=int, default=100, show_default=True, help="How many messages.")
@click.option("--rate", "rate_text", default=None, metavar="RATE",
              help="Messages per second, as a number (50) or as scenarios write rates (50/s, 600/m); "
                   "default: as fast as possible.")
@click.option("--endpoint-url", help="An SQS-compatible endpoint (e.g. the one `sqslab emulator` prints).")
@click.option("--region", help="AWS region.")
@click.option("--profile", help="AWS profile.")
def produce(queue_url: str, count: int, rate_text: str | None, endpoint_url: str | None, region: str | None,
            profile: str | None) -> None:
    """Send N test messages to a queue (the payload sqslab's consumer expects)."""
    from sqslab.run.producer import produce_cli
    from sqslab.scenario.units import UnitError, parse_rate_option

    try:
        rate = parse_rate_option(rate_text) if rate_text is not None else None
    except UnitError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate") from None
    try:
        result = produce_cli(count, rate, queue_url, endpoint_url, region, profile)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - boto3 and network errors: exit 3 with what went wrong
        raise InfraError(f"sending failed: {exc}") from None
    click.echo(f"sent {result.sent}, failed {result.failed} in {result.elapsed:.2f}s ({result.rate:.1f} msg/s)")
    if result.failed:
        sys.exit(Exit.ERROR)


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", required=False, metavar="[RUN_DIR]", type=click.Path(file_okay=False, path_type=Path))
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="Where to look for the latest kept stack when no RUN_DIR is given.")
@click.option("--quiet", "-q", is_flag=True, help="Do not show Terraform's output.")
def destroy(run_dir: Path | None, runs_dir: Path, quiet: bool) -> None:
    """Destroy the AWS stack a run kept (`sqslab run --target aws --keep`), or one whose
    teardown failed.

    RUN_DIR defaults to the latest run under --runs-dir whose stack still has resources.
    Running it again is safe: with nothing left it says so and exits 0. Exit 3 when
    Terraform fails; run it again to finish. The ECR repository (`sqslab image push`)
    is shared by every run and is left alone.
    """
    from sqslab.targets import TargetError
    from sqslab.targets.aws.target import destroy_run, find_kept_run

    if run_dir is None:
        run_dir = find_kept_run(runs_dir)
        if run_dir is None:
            click.echo(f"nothing to destroy: no run under {runs_dir} has an AWS stack left")
            return
    elif not run_dir.is_dir():
        raise click.UsageError(f"{run_dir}: no such run directory")
    show = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    try:
        destroyed = destroy_run(run_dir, on_line=show)
    except TargetError as exc:
        raise InfraError(str(exc)) from None
    click.echo(f"destroyed the stack of {run_dir}" if destroyed else f"nothing to destroy in {run_dir}")


@main.group(context_settings=CONTEXT)
def image() -> None:
    """The consumer's container image in ECR, for `sqslab run --target aws`."""


@image.command(name="push", context_settings=CONTEXT)
@click.option("--tag", help="Image tag (default: the git revision; -dirty-<time> added when consumer/ has uncommitted changes).")
@click.option("--region", help="AWS region (default: $AWS_REGION, else us-west-1); use the scenario's infra.region.")
@click.option("--repository", default=ECR_REPOSITORY, show_default=True, help="ECR repository; created when missing.")
@click.option("--context", "build_context", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Docker build context (default: consumer/ of the sqslab checkout).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image_push(tag: str | None, region: str | None, repository: str, build_context: Path | None, as_json: bool) -> None:
    """Build the consumer image and push it to ECR; print its URI.

    Runs `docker build --platform linux/amd64`, logs docker in with a token from ECR
    (the password goes to docker on stdin, never on a command line) and pushes. A tag
    already in ECR is not pushed again (the repository's tags are immutable). Needs
    Docker and AWS credentials allowed to push (docs/aws.md). Pass the tag it prints to
    `sqslab run --target aws --image-tag TAG` (the git revision is the default there too).
    """
    from sqslab.targets.aws.image import ImageError, push_image

    try:
        result = push_image(tag, region, repository, build_context, on_line=lambda line: click.echo(line, err=True))
    except ImageError as exc:
        raise InfraError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(result.uri)
    click.echo(f"image tag: {result.tag}  (sqslab run --target aws --image-tag {result.tag} SCENARIO)", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
