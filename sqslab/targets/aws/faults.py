"""SQS faults on the aws target, where SQS itself takes none: made client-side.

The scenario's `sqs.faults` and the `sqs_fault` actions become one fault plan
(sqslab.consumer.sqsfaults) that the producer's and the actions' boto3 clients apply
to their own calls at once, and that the consumer tasks get in their environment
(SQSLAB_SQS_FAULTS): a rule added during a run reaches them with the next task
definition revision. The `sqs` behaviour settings have no meaning there: SQS behaves
as it does.
"""

from __future__ import annotations

import json
from typing import Any

from sqslab.consumer import sqsfaults
from sqslab.contracts import ENV_SQS_FAULTS
from sqslab.scenario.settings import PROFILES
from sqslab.targets import Log


class ClientFaults:
    """The run's fault plan on the client side."""

    def __init__(self, log: Log) -> None:
        self._emit = log
        self.plan = sqsfaults.FaultPlan()

    def start(self, scenario: Any) -> None:
        """Take the scenario's faults (seeded by its seed); say that its behaviour settings are ignored."""
        self.plan = sqsfaults.FaultPlan(list(scenario.sqs.faults), seed=scenario.seed)
        notes = plan_notes(scenario)
        if notes and notes[0].startswith("the `sqs` behaviour"):
            self._emit({"event": "notice", "message": f"sqs: {notes[0]}"})

    def install(self, client: Any) -> Any:
        """client, making the plan's faults on its calls (each an `sqs_fault` event, `source: producer`)."""
        sqsfaults.install(client, self.plan, self._event)
        return client

    def task_env(self) -> dict[str, str]:
        """The container environment of the rules a consumer applies to its own calls (none: empty)."""
        rules = self.plan.rules()
        return {ENV_SQS_FAULTS: json.dumps(rules, separators=(",", ":"))} if rules else {}

    def _event(self, event: str, **fields: Any) -> None:
        self._emit({"event": event, "source": "producer", **fields})


def plan_notes(scenario: Any) -> list[str]:
    """What `sqslab plan --target aws` says of the scenario's `sqs` section."""
    notes = []
    if scenario.sqs.settings != PROFILES["exact"]:
        notes.append("the `sqs` behaviour settings are the emulator's: ignored here, where SQS behaves as it does")
    if scenario.sqs.faults or any(a.do == "sqs_fault" for a in scenario.actions):
        notes.append("API faults are made client-side, in the producer and the consumer tasks (botocore's before-send); "
                     "an sqs_fault action reaches the tasks through a rolling deployment")
    return notes
