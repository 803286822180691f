"""`sqslab report`: the click command, to paste into sqslab/cli.py.

To paste: drop the import block marked below (cli.py has those names already), and
change `@click.command(name="report", ...)` to `@main.command(name="report", ...)`.
Until then tests/test_report.py loads this file and drives `report` with CliRunner.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

# --- not to paste: cli.py defines these ---
from sqslab.cli import CONTEXT, InfraError, UsageProblem, _host, plugin_options
# --- end ---


@click.command(name="report", context_settings=CONTEXT)
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
    from sqslab.report import ReportError, default_output_dir, load_runs, output_paths, render_reports, write_report

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
        if path is None:
            data = outcome.output
            if isinstance(data, bytes):
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            else:
                click.echo(data, nl=not data.endswith("\n"))
        else:
            try:
                write_report(outcome.output, path)
            except OSError as exc:
                raise UsageProblem(f"cannot write {path}: {exc.strerror or exc}") from None
            click.echo(str(path))
    if failed:
        raise InfraError(f"{failed} of {len(targets)} report{'s' if len(targets) != 1 else ''} failed")
