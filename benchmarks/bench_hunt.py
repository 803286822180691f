"""The lab's campaign with a larger budget: random valid scenarios over the whole feature
space (sqslab.hunt.campaign), each run for real, the lab's invariants checked on each.

    python benchmarks/bench_hunt.py [--budget 10m] [--seed 1000] [--out DIR] [--json]

Runs campaign scenarios from --seed on, one after another, while the budget lasts (a
scenario starts only when about 15 s are left). Prints the scenarios run, runs per
minute, the features covered (settings drawn, action kinds and triggers, queue shapes,
consumer kinds) and the findings: each seed whose run broke an invariant, with how.
Exit 1 when there are findings, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqslab.hunt.campaign import campaign_scenario, covered  # noqa: E402
from sqslab.hunt.invariants import check_run  # noqa: E402
from sqslab.hunt.space import NOT_DRAWN  # noqa: E402
from sqslab.plugins import load_plugins  # noqa: E402
from sqslab.run.runner import RunOptions, run_scenario  # noqa: E402
from sqslab.scenario.load import dump_yaml, load_scenario
from sqslab.scenario.settings import SETTINGS  # noqa: E402
from sqslab.scenario.units import parse_duration  # noqa: E402

#: What one campaign run is assumed to need at most (load, settle, start and stop).
RUN_ESTIMATE = 15.0


def shape(data: dict[str, Any]) -> list[str]:
    """The scenario's shape, as features: queue kind, DLQ, consumer kind, faults."""
    infra = data["infra"]
    found = ["fifo" if infra["queue"]["fifo"] else "standard", "dlq" if infra["dlq"]["enabled"] else "no dlq",
             "program" if "program" in (data.get("consumer") or {}) else "built-in consumer"]
    if (data.get("sqs") or {}).get("faults"):
        found.append("sqs.faults")
    return found


def campaign(budget: float, first_seed: int, out: Path) -> dict[str, Any]:
    """Run campaign scenarios within the budget; what ran, what it covered, what broke."""
    host = load_plugins(entry_points=False)
    started = time.monotonic()
    keys: set[str] = set()
    features: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    findings = []
    seed = first_seed
    while time.monotonic() - started + RUN_ESTIMATE <= budget:
        data = campaign_scenario(seed)
        found_keys, kinds = covered(data)
        keys |= found_keys
        features.update(list(kinds) + shape(data))
        path = out / f"campaign-{seed}.yaml"
        path.write_text(dump_yaml(data), encoding="utf-8")
        result = run_scenario(load_scenario(path, host), host, RunOptions(out=out / f"run-{seed}", handle_signals=False))
        codes[result.exit_code] += 1
        broken = check_run(result.run_dir, result.exit_code)
        line = f"seed {seed}: exit {result.exit_code}" + (f"  BROKEN: {'; '.join(map(str, broken))}" if broken else "")
        print(line[:400], file=sys.stderr, flush=True)
        if broken:
            findings.append({"seed": seed, "run_dir": str(result.run_dir), "broken": [b.as_dict() for b in broken]})
        seed += 1
    elapsed = time.monotonic() - started
    settings = {s.key for s in SETTINGS} - set(NOT_DRAWN)
    return {"scenarios": seed - first_seed, "elapsed": round(elapsed, 1),
            "per_minute": round((seed - first_seed) / elapsed * 60, 1) if elapsed else 0.0,
            "exit_codes": dict(codes), "settings_covered": len(keys & settings), "settings": len(settings),
            "settings_missing": sorted(settings - keys), "features": dict(sorted(features.items())), "findings": findings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="10m", help="how long to run (default 10m)")
    parser.add_argument("--seed", type=int, default=1000, help="the first seed (default 1000)")
    parser.add_argument("--out", type=Path, help="where the runs go (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sqslab-bench-hunt-"))
    out.mkdir(parents=True, exist_ok=True)
    result = campaign(parse_duration(args.budget), args.seed, out)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"campaign: {result['scenarios']} scenarios in {result['elapsed']:.0f}s ({result['per_minute']}/min), "
              f"exit codes {result['exit_codes']}, runs in {out}")
        print(f"settings drawn: {result['settings_covered']} of {result['settings']}"
              + (f" (never: {', '.join(result['settings_missing'])})" if result["settings_missing"] else ""))
        print("features: " + ", ".join(f"{k} x{v}" for k, v in result["features"].items()))
        print(f"findings: {len(result['findings'])}")
        for finding in result["findings"]:
            print(f"  seed {finding['seed']}: " + "; ".join(f"{b['name']}: {b['detail']}" for b in finding["broken"])[:600])
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
