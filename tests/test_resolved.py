"""resolved.json: every default filled, and nothing the run directory must not hold."""

from __future__ import annotations

import hashlib

from sqslab.scenario import load_scenario, resolved_dict


def test_a_body_file_is_kept_as_its_path_and_hash_not_its_content(write, host, tmp_path):
    secret = '{"orderId": "{{ id }}", "card": "4111 1111 1111 1111"}\n'
    (tmp_path / "order.j2").write_text(secret)
    scenario = load_scenario(write("version: 1\nname: f\nload: [{burst: 2, body_file: order.j2}]\n"), host)
    assert scenario.phases[0].body == secret, "the run renders the file's template"
    [phase] = resolved_dict(scenario)["phases"]
    assert phase["body"] is None and "4111" not in repr(resolved_dict(scenario))
    assert phase["body_file"] == str((tmp_path / "order.j2").resolve())
    assert phase["body_sha256"] == hashlib.sha256(secret.encode()).hexdigest()


def test_an_inline_body_stays_in_resolved_json(write, host):
    scenario = load_scenario(write("version: 1\nname: f\nload: [{burst: 2, body: '{{ id }}'}]\n"), host)
    [phase] = resolved_dict(scenario)["phases"]
    assert phase["body"] == "{{ id }}" and phase["body_file"] is None
