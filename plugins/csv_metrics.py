"""csv_metrics: an example reporter plugin that writes a run's metric series as CSV.

Copy this file into a directory of your own plugins and use it with

    sqslab report --plugins-dir DIR --format csv_metrics RUN_DIR -o metrics.csv
    sqslab report --plugins-dir DIR --format csv_metrics RUN_A RUN_B   # one `run` column more

How it works:

1. `register_reporters(register)` is the hook. sqslab calls it once when plugins load;
   call `register(name, function, extension=..., description=...)` once per format. The
   name is what `--format NAME` takes, the extension names the file when several
   formats are written at once (`report.csv`). A name already taken is an error.
2. `sqslab report` calls `function(run, options)` and writes what it returns (`str` or
   `bytes`). `run` is a loaded run directory (sqslab.rundir.Run): `run.path`,
   `run.summary` (summary.json: figures, ledger, expectations, phases, actions),
   `run.resolved` (the scenario with units in seconds), `run.scenario_text`,
   `run.metrics()` (the samples of metrics.jsonl) and `run.events()` (events.jsonl,
   streamed). `options["runs"]` lists every run asked for, `options["labels"]` their
   names; two or more runs mean "compare them", and `run` is the first.
3. If the function raises, `sqslab report` says which reporter failed and why, still
   writes the other formats asked for, and exits 3.

Test it without a real run by handing it a small run directory: see
tests/test_report.py, which calls the reporters on a run it records.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import sqslab

# Columns first in this order; any other keys the sampler wrote follow, sorted.
FIRST = ["t", "queue.visible", "queue.in_flight", "queue.delayed", "dlq.messages", "tasks.running", "tasks.desired",
         "sent", "processed", "failed", "queue.oldest_age", "phase"]


def render_csv(run: Any, options: dict[str, Any]) -> str:
    """The metric series (metrics.jsonl) as CSV, one row per sample."""
    runs = options.get("runs") or [run]
    labels = options.get("labels") or [r.path.name for r in runs]
    samples = [(label, s) for label, r in zip(labels, runs) for s in r.metrics()]
    keys = {k for _, s in samples for k in s if k not in ("ts", "elapsed")}
    columns = [k for k in FIRST if k in keys] + sorted(keys - set(FIRST))
    if len(runs) > 1:
        columns = ["run"] + columns
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for label, sample in samples:
        writer.writerow({**sample, "run": label})
    return out.getvalue()


@sqslab.hookimpl
def register_reporters(register: Callable[..., None]) -> None:
    """Register the csv_metrics report format."""
    register("csv_metrics", render_csv, extension="csv", description="The metric series as CSV.")
