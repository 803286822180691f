"""sqslab: a lab for Amazon SQS consumer failures."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # `@sqslab.hookimpl` for plugins, imported when first used: the command line starts
    # without pluggy until it loads plugins, so an early Ctrl-C has less to interrupt.
    if name == "hookimpl":
        from sqslab.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'sqslab' has no attribute {name!r}")
