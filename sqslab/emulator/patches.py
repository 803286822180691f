"""Patches to moto's SQS backend, applied in the emulator child at import. (Work in progress.)"""

from __future__ import annotations

_applied = False


def apply() -> None:
    """Patch moto.sqs.models in place. Idempotent."""
    global _applied
    if _applied:
        return
    _applied = True
