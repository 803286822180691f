"""The built-in consumer's knobs: generated from sqslab/scenario/settings.py by
`python -m sqslab.scenario.settings`; do not edit.

One row per environment variable the consumer reads a knob from: (variable, config key,
type, default, low, high, choices), the default and the limits in the variable's unit
(ms, s or as is). The consumer imports nothing else of sqslab: its image holds this file.
"""

from typing import Any

KNOBS: tuple[tuple[str, str, str, Any, Any, Any, tuple[str, ...]], ...] = (
    ('SQSLAB_WORK_TIME_MIN_MS', 'work_time_min_ms', 'float', 50.0, 0.0, 3600000.0, ()),
    ('SQSLAB_WORK_TIME_MAX_MS', 'work_time_max_ms', 'float', 200.0, 0.0, 3600000.0, ()),
    ('SQSLAB_ERROR_RATE', 'error_rate', 'float', 0.0, 0.0, 1.0, ()),
    ('SQSLAB_CRASH_RATE', 'crash_rate', 'float', 0.0, 0.0, 1.0, ()),
    ('SQSLAB_SLOW_RATE', 'slow_rate', 'float', 0.0, 0.0, 1.0, ()),
    ('SQSLAB_SLOW_TIME_MS', 'slow_time_ms', 'float', 0.0, 0.0, 3600000.0, ()),
    ('SQSLAB_IDEMPOTENCY', 'idempotency', 'bool', False, None, None, ()),
    ('SQSLAB_IDEMPOTENCY_WINDOW_SECONDS', 'idempotency_window_seconds', 'float', 300.0, 0.0, 1209600.0, ()),
    ('SQSLAB_RELEASE_ON_STOP', 'release_on_stop', 'bool', False, None, None, ()),
    ('SQSLAB_DELETE_MODE', 'delete_mode', 'choice', 'each', None, None, ('each', 'batch')),
    ('SQSLAB_ON_FAILURE', 'on_failure', 'choice', 'stop_group', None, None, ('stop_group', 'continue')),
    ('SQSLAB_EFFECT', 'effect', 'choice', 'after_work', None, None, ('after_work', 'before_delete', 'none')),
    ('SQSLAB_MAX_MESSAGES', 'max_messages', 'int', 10, 1, 10, ()),
    ('SQSLAB_WAIT_TIME_SECONDS', 'wait_time_seconds', 'int', 20, 0, 20, ()),
    ('SQSLAB_STARTUP_TIME_MS', 'startup_time_ms', 'float', 0.0, 0.0, 600000.0, ()),
)
