"""The replacements for module-level functions of ``moto.sqs.models``.

moto's SQS code reads a datetime-based clock for every timestamp, builds each
receipt handle from 185 ``random.choice`` calls, and maps 14+ attribute names
through a regex every time it builds ``Queue.attributes``. Here the clock is
``now_ms()`` (state.py), receipt handles come from ``os.urandom``, and the name
mapping is memoized.

``install()`` puts them on the module. A new replacement is a function here, an
entry in ``install()`` and its pair in ``guard.PATCHED``.
"""

from __future__ import annotations

import base64
import functools
import os
import types
from typing import Any

from sqslab.emulator.guard import _replace_all
from sqslab.emulator.state import now_ms

#: moto's own unix_time and unix_time_millis, still used for an explicit datetime (bound by install()).
_stock_unix_time: Any = None
_stock_unix_time_millis: Any = None


def _unix_time(dt: Any = None) -> float:
    """unix_time(): seconds since the epoch on the patched clock; moto's for a given datetime."""
    return now_ms() / 1000.0 if dt is None else _stock_unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    """unix_time_millis(): milliseconds since the epoch on the patched clock; moto's for a given datetime."""
    return now_ms() if dt is None else _stock_unix_time_millis(dt)


def generate_receipt_handle() -> str:
    """A 185-character lowercase handle like moto's, from os.urandom instead of 185 random.choice calls."""
    return base64.b32encode(os.urandom(120)).decode("ascii").lower()[:185]


def install(models: types.ModuleType) -> None:
    """Replace moto.sqs.models' clock, receipt-handle and name-mapping functions."""
    global _stock_unix_time, _stock_unix_time_millis
    from moto.core import utils as core_utils

    _stock_unix_time = models.unix_time
    _stock_unix_time_millis = models.unix_time_millis
    _replace_all(
        models,
        {
            "unix_time": _unix_time,
            "unix_time_millis": _unix_time_millis,
            "generate_receipt_handle": generate_receipt_handle,
            # Queue.attributes maps 14+ names through a regex on every call.
            "camelcase_to_underscores": functools.lru_cache(maxsize=512)(core_utils.camelcase_to_underscores),
        },
    )
