"""What the SQS side of a run did, from its events: API faults injected (by the emulator,
or client-side on AWS), SQS's departures from exactness (duplicates, stale receipts,
empty receives...), what the SDKs did about errors (retries, calls given up), and what
redrive moved.

Counted in memory by name: the names are few (event kinds, SQS APIs, error codes),
whatever the number of messages. The duplicates SQS added are also kept per message id
in the ledger's store (table `sqs_dup`), so the problem list can say for each
duplicate whether SQS or the consumer caused it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqslab.consumer import events as ev
from sqslab.consumer.sqsfaults import SQS_APIS

#: Event kinds this module counts: faults (the emulator's, or a consumer's own client's), the
#: SDK's retries and calls given up (sqslab.consumer.events), SQS's departures from exactness
#: (the emulator's `sqs_behavior`) and what redrive moved (the redrive_dlq action's `redriven`).
EVENTS = (ev.SQS_FAULT, "sqs_behavior", ev.RETRIED, ev.API_ERROR, "redriven")
#: sqs_behavior kinds -> the figure that counts them.
BEHAVIOR_FIGURES = {"duplicate": "sqs_duplicates", "stale_receipt": "stale_receipts", "empty_receive": "empty_receives",
                    "receive_loss": "receives_lost"}
#: The figures, for the catalogue of figures (sqslab.truth.expectations).
FIGURES: dict[str, tuple[str, str]] = {
    "faults.injected": ("number", "SQS API calls an injected fault hit (sqs.faults, sqs_fault)"),
    "sqs_duplicates": ("count", "deliveries SQS added: a delete after which a copy of the message came back (sqs.duplicates)"),
    "stale_receipts": ("number", "deletes or visibility changes with a receipt handle that was no longer the latest"),
    "empty_receives": ("number", "short polls that came back empty while messages were visible (sqs.short_poll_sample)"),
    "receives_lost": ("count", "receives SQS counted but never handed over (sqs.receive_loss)"),
    "sdk_retries": ("number", "SQS calls the SDKs retried (the consumers' and the producer's: throttling, 5xx, timeouts)"),
    "api_errors": ("number", "SQS calls that failed after the SDK's retries (the consumers' and the producer's)"),
    "redriven": ("count", "messages redrive_dlq moved from the DLQ back to their queue"),
    **{f"faults.{api}": ("number", f"{api} calls an injected fault hit") for api in SQS_APIS},
}


class SqsTally:
    """Counts of the SQS side's events, by kind, API and error code."""

    def __init__(self) -> None:
        self.faults: Counter[tuple[str, str]] = Counter()  # (api, kind)
        self.behavior: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()  # by the error that caused the retry
        self.api_errors: Counter[tuple[str, str]] = Counter()  # (api, error code)
        self.redriven = 0

    def take(self, event: dict[str, Any]) -> None:
        """Count one event whose kind is in EVENTS."""
        kind = event.get("event")
        if kind == ev.SQS_FAULT:
            self.faults[(str(event.get("api")), str(event.get("kind")))] += 1
        elif kind == "sqs_behavior":
            self.behavior[str(event.get("kind"))] += 1
        elif kind == ev.RETRIED:
            self.retried[str(event.get("error"))] += 1
        elif kind == ev.API_ERROR:
            self.api_errors[(str(event.get("api")), str(event.get("error")))] += 1
        elif kind == "redriven":
            self.redriven += int(event.get("count") or 0)

    def figures(self) -> dict[str, int]:
        """The figures FIGURES names, every one of them (0 when nothing happened)."""
        figures = {"faults.injected": sum(self.faults.values())}
        for kind, name in BEHAVIOR_FIGURES.items():
            figures[name] = self.behavior[kind]
        figures.update({"sdk_retries": sum(self.retried.values()), "api_errors": sum(self.api_errors.values()),
                        "redriven": self.redriven})
        per_api: Counter[str] = Counter()
        for (api, _), n in self.faults.items():
            per_api[api] += n
        figures.update({f"faults.{api}": per_api[api] for api in SQS_APIS})
        return figures

    def section(self) -> dict[str, Any]:
        """The summary's `ledger.sqs`: the breakdowns behind the figures (empty when nothing happened)."""
        out: dict[str, Any] = {}
        if self.faults:
            faults: dict[str, dict[str, int]] = {}
            for (api, kind), n in sorted(self.faults.items()):
                faults.setdefault(api, {})[kind] = n
            out["faults"] = faults
        if self.behavior:
            out["behavior"] = dict(sorted(self.behavior.items()))
        if self.retried:
            out["retried"] = dict(sorted(self.retried.items()))
        if self.api_errors:
            errors: dict[str, dict[str, int]] = {}
            for (api, code), n in sorted(self.api_errors.items()):
                errors.setdefault(api, {})[code] = n
            out["api_errors"] = errors
        return out
