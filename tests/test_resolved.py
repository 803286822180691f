"""resolved.json: every default filled, and nothing the run directory must not hold."""

from __future__ import annotations

import hashlib

from sqslab.scenario.load import load_scenario, resolved_dict


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


def test_the_runs_queue_takes_the_bodies_validate_allows_and_no_more(sqs, host, write):
    """validate and the producer allow bodies up to 256 KiB (what the project's Terraform
    queue takes); the local run's queue says the same, so a bigger body is refused by SQS
    as on AWS instead of passing locally."""
    from sqslab.scenario.bodies import MAX_BODY
    from sqslab.targets.local import create_queues

    scenario = load_scenario(write("version: 1\nname: sizes\nload: [{burst: 1}]\n"), host)
    queue_url, _ = create_queues(sqs, scenario, "sizes")
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])["Attributes"]
    assert int(attributes["MaximumMessageSize"]) == MAX_BODY == 262_144
    sqs.send_message(QueueUrl=queue_url, MessageBody="x" * MAX_BODY)
    import pytest
    with pytest.raises(sqs.exceptions.ClientError, match="InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue_url, MessageBody="x" * (MAX_BODY + 1))
