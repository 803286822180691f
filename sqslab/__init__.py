"""sqslab: a lab for Amazon SQS consumer failures."""

__version__ = "0.1.0"
