"""The lab's own campaign (docs/hunt.md): random valid scenarios over the whole feature space,
each run for real (the emulator, consumer processes, the example program consumer), and
the lab's invariants checked on every run. Parametrised by seed, so xdist spreads it."""

from __future__ import annotations

import pytest

from sqslab.hunt.campaign import CAMPAIGN_ACTIONS, campaign_scenario, covered
from sqslab.hunt.invariants import check_run
from sqslab.hunt.space import DRAWS, NOT_DRAWN
from sqslab.run.runner import RunOptions, run_scenario
from sqslab.scenario.load import ScenarioError, dump_yaml, load_scenario, load_scenario_text
from sqslab.scenario.settings import BY_KEY, SETTINGS

#: The seeds CI runs: 22 runs, about 2.5 minutes one after another on 2 cores (3-13 s each, start and stop included).
CAMPAIGN_SEEDS = list(range(1, 23))
#: How many generated scenarios the coverage and validity tests look at (no run).
GENERATED = 400


def test_every_campaign_scenario_is_valid(host):
    problems = {}
    for seed in range(GENERATED):
        try:
            load_scenario_text(dump_yaml(campaign_scenario(seed)), host, name=f"<campaign {seed}>")
        except ScenarioError as exc:
            problems[seed] = [str(p) for p in exc.problems]
    assert problems == {}


def test_the_campaign_is_seeded():
    assert campaign_scenario(7) == campaign_scenario(7)
    assert campaign_scenario(7) != campaign_scenario(8)


def test_the_campaign_draws_every_setting_and_every_built_in_action(host):
    """A new setting in the table, or a new built-in action, fails here until the campaign
    draws it (or NOT_DRAWN says why it cannot be varied locally)."""
    keys: set[str] = set()
    kinds: set[str] = set()
    shapes = {"fifo": 0, "standard": 0, "dlq": 0, "no dlq": 0, "program": 0, "faults": 0}
    for seed in range(GENERATED):
        data = campaign_scenario(seed)
        found_keys, found_kinds = covered(data)
        keys |= found_keys
        kinds |= found_kinds
        infra = data["infra"]
        shapes["fifo" if infra["queue"]["fifo"] else "standard"] += 1
        shapes["dlq" if infra["dlq"]["enabled"] else "no dlq"] += 1
        shapes["program"] += "program" in (data.get("consumer") or {})
        shapes["faults"] += bool((data.get("sqs") or {}).get("faults")) or any(a["do"] == "sqs_fault" for a in data["actions"])
    every = {s.key for s in SETTINGS}
    assert set(NOT_DRAWN) <= every and set(DRAWS) <= every, "NOT_DRAWN and DRAWS name settings of the table"
    assert not set(NOT_DRAWN) & set(DRAWS)
    assert all(NOT_DRAWN.values()), "every exclusion says why"
    assert every - set(NOT_DRAWN) - keys == set(), "settings the campaign never draws"
    built_in = {name for name, spec in host.actions.items() if spec.plugin.startswith("sqslab.")}
    assert built_in <= set(CAMPAIGN_ACTIONS), "built-in actions the campaign cannot generate"
    assert built_in | {"trigger:at", "trigger:after", "trigger:when"} <= kinds, "actions or triggers never drawn"
    formats = {p["format"]["name"] for seed in range(GENERATED) for p in campaign_scenario(seed)["load"] if "format" in p}
    assert formats == {name for name, spec in host.formats.items() if spec.plugin.startswith("sqslab.")}, "body formats never drawn"
    assert all(count >= GENERATED // 10 for count in shapes.values()), shapes
    assert BY_KEY["hunt.max_actions"].key in NOT_DRAWN


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("seed", CAMPAIGN_SEEDS)
def test_campaign_run_keeps_the_labs_invariants(seed, tmp_path, host):
    path = tmp_path / f"campaign-{seed}.yaml"
    path.write_text(dump_yaml(campaign_scenario(seed)))
    scenario = load_scenario(path, host)
    result = run_scenario(scenario, host, RunOptions(out=tmp_path / "run", handle_signals=False))
    broken = check_run(result.run_dir, result.exit_code)
    assert broken == [], f"seed {seed}: {[str(b) for b in broken]}\nscenario:\n{path.read_text()}"
