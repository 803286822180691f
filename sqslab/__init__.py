"""sqslab: a lab for Amazon SQS consumer failures."""

__version__ = "0.1.0"

from sqslab.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
