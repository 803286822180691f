"""Every scenario setting, defined once.

A row says where a setting sits in a scenario (its key path), its kind (and so its unit),
its default, its limits, what it means, and where it goes: the built-in consumer's
environment, a Terraform variable, an SQS queue attribute, whether `set_consumer` may
change it during a run. From this one table come:

- the JSON Schema's properties, defaults and descriptions (sqslab.scenario.schema);
- the limits the validator checks on durations (whole seconds, SQS's ranges);
- the resolved `Infra` and `Knobs` (sqslab.scenario), with every default filled;
- the consumer's environment (`Knobs.to_env`), the tfvars and the queue attributes;
- the built-in consumer's own defaults, limits and choices (consumer/knobs.py, generated:
  `python -m sqslab.scenario.settings`, checked by a test);
- the `sqs` behaviour model: each profile's values (PROFILES), the checks of a value
  (resolve_behavior: sqslab.emulator.lab.Behavior), `sqslab emulator --sqs` (behavior_options);
- README's reference tables (`sqslab schema --markdown`), checked by a test.

Adding a consumer knob or a queue setting: a row here, the code that uses it, its test.
Structured parts of a scenario (load phases, actions, expectations) are not settings:
sqslab.scenario.schema describes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

from sqslab.scenario.units import format_duration, parse_duration, parse_fraction, parse_range, parse_rate, parse_size

DAY = 86400.0


@dataclass(frozen=True)
class Setting:
    """One scenario setting; limits are in resolved units (seconds for durations)."""

    key: str  # dotted key path in a scenario: "infra.queue.visibility_timeout"
    kind: str  # duration | duration_range | integer | fraction | boolean | choice | text
    default: Any  # as a scenario writes it ("30s", 3, false); None: no default
    description: str
    low: float | None = None
    high: float | None = None
    whole_seconds: bool = False  # SQS takes durations in whole seconds
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    pattern_says: str = ""  # what a text the pattern refuses is told it must be (not the pattern itself)
    required: bool = False
    field: str | None = None  # the attribute of Infra / Knobs (default: the last key part)
    env: tuple[str, ...] = ()  # the built-in consumer's environment variable(s)
    env_unit: str = ""  # "ms" or "s": how a duration travels in the environment
    tfvar: str | None = None  # the Terraform variable (terraform/variables.tf)
    sqs_attribute: tuple[str, str] | None = None  # ("queue" or "dlq", attribute name)
    sqs_flags: tuple[tuple[str, str, str], ...] = ()  # (queue or dlq, attribute, value) set when a boolean is true
    live: bool = False  # set_consumer may change it during a run
    target_note: str = ""  # where only one target uses it
    #: sqs.*: the default under each `behavior` profile, as a scenario writes it ({"exact": "0s", "aws": "2s"}): PROFILES
    profiles: Mapping[str, Any] | None = _field(default=None, hash=False)

    @property
    def path(self) -> tuple[str, ...]:
        """The key path as a tuple."""
        return tuple(self.key.split("."))

    @property
    def name(self) -> str:
        """The attribute name on the resolved object."""
        return self.field or self.path[-1]

    @property
    def profiled(self) -> bool:
        """Whether the default comes from the `behavior` profile (an `sqs` behaviour setting)."""
        return self.profiles is not None

    def resolve(self, raw: Any) -> Any:
        """A valid scenario value (or the default when raw is None) in resolved units."""
        value = self.default if raw is None else raw
        if value is None:
            return None
        if self.kind == "duration":
            return parse_duration(value)
        if self.kind == "duration_range":
            return parse_range(value)
        if self.kind == "rate":
            return parse_rate(value)
        if self.kind == "size":
            return parse_size(value)
        if self.kind == "fraction":
            return parse_fraction(value)
        return value

    def check(self, value: Any) -> None:
        """Raise ValueError unless value is a resolved value of this kind within its limits
        and choices: the emulator's check of a behaviour setting that may not have come
        through the validator (its command line, its control endpoint)."""
        numeric = not isinstance(value, bool) and isinstance(value, (int, float))
        if self.kind == "fraction":
            if not numeric or not 0 <= value <= 1:
                raise ValueError(f"{self.name} must be a number from 0 to 1, not {value!r}")
        elif self.kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, not {value!r}")
        elif self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.name} must be {' or '.join(map(str, self.choices))}, not {value!r}")
        elif self.kind in ("duration", "integer"):
            whole = self.kind == "integer"
            if not numeric or (whole and not isinstance(value, int)) or not self._within(value):
                what = "a whole number" if whole else ""
                unit = "" if whole else " seconds"
                raise ValueError(f"{self.name} must be {what}{' ' if what else ''}{self._bounds()}{unit}, not {value!r}")
        else:
            raise NotImplementedError(f"{self.key}: no check for kind {self.kind}")

    def _within(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def _bounds(self) -> str:
        if self.high is None:
            return f"of at least {self.low:g}" if self.low is not None else "any number"
        return f"{self.low or 0:g} to {self.high:g}" if self.low is not None else f"at most {self.high:g}"

    def limits_text(self) -> str:
        """The limits in words, e.g. `0s-12h, whole seconds` or `1-1000`."""
        if self.low is None and self.high is None:
            return ""
        def show(value: float) -> str:
            return format_duration(value) if self.kind in ("duration", "duration_range") else f"{value:g}"

        if self.high is None:
            return f"at least {show(self.low or 0.0)}"
        text = f"{show(self.low)}-{show(self.high)}" if self.low is not None else f"at most {show(self.high)}"
        return text + (", whole seconds" if self.whole_seconds else "")


def _s(key: str, kind: str, default: Any, description: str, **extra: Any) -> Setting:
    return Setting(key, kind, default, description, **extra)


SETTINGS: tuple[Setting, ...] = (
    # ------------------------------------------------------------ the scenario itself
    _s("version", "integer", None, "Scenario format version; always 1.", choices=(1,), required=True),
    _s("name", "text", None, "Short name: letters, digits, '-', '_', '.'; names the run directory and AWS resources.",
       pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", required=True),
    _s("description", "text", None, "What the experiment shows."),
    _s("seed", "integer", None,
       "Seeds every random choice (failures, which task a kill hits), so a run can be repeated; random when absent."),
    _s("sample_interval", "duration", "1s", "How often queue depth, tasks and counts are sampled.", low=0.1, high=60.0),
    # ------------------------------------------------------------ infra: queue, DLQ, service
    _s("infra.region", "text", "us-west-1", "AWS region (aws target); the emulator accepts any.",
       pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", tfvar="region"),
    _s("infra.queue.visibility_timeout", "duration", "30s", "How long a received message stays hidden before SQS delivers it again.",
       low=0, high=12 * 3600, whole_seconds=True, tfvar="visibility_timeout_seconds", sqs_attribute=("queue", "VisibilityTimeout")),
    _s("infra.queue.retention", "duration", "4d", "How long SQS keeps a message.",
       low=60, high=14 * DAY, whole_seconds=True, tfvar="message_retention_seconds", sqs_attribute=("queue", "MessageRetentionPeriod")),
    _s("infra.queue.receive_wait", "duration", "0s", "The queue's default long-poll wait.",
       low=0, high=20, whole_seconds=True, tfvar="receive_wait_time_seconds", sqs_attribute=("queue", "ReceiveMessageWaitTimeSeconds")),
    _s("infra.queue.delay", "duration", "0s", "Delivery delay of every new message.",
       low=0, high=15 * 60, whole_seconds=True, tfvar="delay_seconds", sqs_attribute=("queue", "DelaySeconds")),
    _s("infra.queue.fifo", "boolean", False,
       "A FIFO queue (and a FIFO DLQ): names end in .fifo, messages carry a group, order holds within a group, "
       "a deduplication id is honoured for 5 minutes.", tfvar="fifo_queue",
       sqs_flags=(("queue", "FifoQueue", "true"), ("dlq", "FifoQueue", "true"))),
    _s("infra.queue.content_based_deduplication", "boolean", False,
       "FIFO only: SQS deduplicates by a hash of the body instead of the producer's deduplication id.",
       tfvar="content_based_deduplication", sqs_flags=(("queue", "ContentBasedDeduplication", "true"),)),
    _s("infra.queue.high_throughput", "boolean", False,
       "FIFO only: deduplication and the throughput limit per message group (DeduplicationScope=messageGroup, "
       "FifoThroughputLimit=perMessageGroupId).", tfvar="high_throughput",
       sqs_flags=(("queue", "DeduplicationScope", "messageGroup"), ("queue", "FifoThroughputLimit", "perMessageGroupId"))),
    _s("infra.dlq.enabled", "boolean", True, "Attach a dead-letter queue with a redrive policy.", field="dlq_enabled", tfvar="dlq_enabled"),
    _s("infra.dlq.max_receive_count", "integer", 3, "Receives after which a message moves to the DLQ.",
       low=1, high=1000, tfvar="max_receive_count"),
    _s("infra.dlq.retention", "duration", "14d", "How long the DLQ keeps a message.", field="dlq_retention",
       low=60, high=14 * DAY, whole_seconds=True, tfvar="dlq_message_retention_seconds", sqs_attribute=("dlq", "MessageRetentionPeriod")),
    _s("infra.consumers", "integer", 1, "Desired consumer tasks at the start.", low=0, tfvar="desired_count"),
    _s("infra.max_consumers", "integer", 5, "Cost guard: the most tasks a scenario may ask for; raise it to opt in to more.", low=1),
    _s("infra.task.cpu", "choice", 256, "Fargate CPU units per task.", field="cpu", choices=(256, 512, 1024, 2048, 4096),
       tfvar="task_cpu", target_note="aws"),
    _s("infra.task.memory", "integer", 512, "Fargate memory per task in MiB; a valid size for the CPU.", field="memory",
       low=512, high=30720, tfvar="task_memory", target_note="aws"),
    _s("infra.task.restart_delay", "duration", "2s", "How long a dead task takes to be replaced (ECS takes tens of seconds).",
       low=0, high=600, target_note="local"),
    # ------------------------------------------------------------ consumer: the built-in consumer's knobs
    _s("consumer.work_time", "duration_range", "50ms..200ms", "Simulated work per message: one duration or LOW..HIGH (uniform).",
       low=0, high=3600, env=("SQSLAB_WORK_TIME_MIN_MS", "SQSLAB_WORK_TIME_MAX_MS"), env_unit="ms", live=True),
    _s("consumer.error_rate", "fraction", 0,
       "Fraction of messages whose processing fails: not deleted, SQS retries after the visibility timeout.",
       env=("SQSLAB_ERROR_RATE",), live=True),
    _s("consumer.crash_rate", "fraction", 0, "Fraction of messages during which the process dies abruptly (no cleanup).",
       env=("SQSLAB_CRASH_RATE",), live=True),
    _s("consumer.slow_rate", "fraction", 0, "Fraction of messages whose work takes slow_time instead.",
       env=("SQSLAB_SLOW_RATE",), live=True),
    _s("consumer.slow_time", "duration", "0s", "Work time of a slow message; make it exceed the visibility timeout to provoke redelivery.",
       low=0, high=3600, env=("SQSLAB_SLOW_TIME_MS",), env_unit="ms", live=True),
    _s("consumer.idempotency", "boolean", False, "Skip the work for an id this task processed within idempotency_window (still delete it).",
       env=("SQSLAB_IDEMPOTENCY",), live=True),
    _s("consumer.idempotency_window", "duration", "5m", "How long a processed id is remembered when idempotency is on.",
       low=0, high=14 * DAY, env=("SQSLAB_IDEMPOTENCY_WINDOW_SECONDS",), env_unit="s", live=True),
    _s("consumer.poison_rate", "fraction", 0, "Fraction of messages the producer marks as poison; consumers always fail them."),
    _s("consumer.release_on_stop", "boolean", False,
       "On a graceful stop (scale-in, rollout), make received but unstarted messages visible again at once instead of "
       "leaving them to the visibility timeout.", env=("SQSLAB_RELEASE_ON_STOP",), live=True),
    _s("consumer.delete", "choice", "each",
       "each: delete every message when it is done; batch: one DeleteMessageBatch when the received batch is done "
       "(fewer calls; a crash brings the batch's processed messages back).", choices=("each", "batch"),
       env=("SQSLAB_DELETE_MODE",), live=True),
    _s("consumer.on_failure", "choice", "stop_group",
       "FIFO only: after a failure, stop_group leaves the rest of that group's messages in the batch to come back in "
       "order; continue processes them (and breaks the order).", choices=("stop_group", "continue"),
       env=("SQSLAB_ON_FAILURE",), live=True),
    _s("consumer.effect", "choice", "after_work",
       "With `effects` on, when the built-in consumer posts a message's effect: after_work (when the work ends, before "
       "the error draw, so a failure then applies it twice), before_delete (just before the delete, on success only), "
       "none (never: each deleted message is lost work).", choices=("after_work", "before_delete", "none"),
       env=("SQSLAB_EFFECT",), live=True),
    _s("consumer.batch_size", "integer", 10, "Messages per ReceiveMessage call.", low=1, high=10,
       env=("SQSLAB_MAX_MESSAGES",), live=True),
    _s("consumer.wait_time", "duration", "20s", "Long-poll wait per ReceiveMessage call.", low=0, high=20, whole_seconds=True,
       env=("SQSLAB_WAIT_TIME_SECONDS",), env_unit="s", live=True),
    _s("consumer.startup_time", "duration", "0s",
       "How long a task boots before it is ready and polls (an image pull, a warm-up): a replacement after a crash or a "
       "kill, or a new task when scaling out, helps only after it.", low=0, high=600,
       env=("SQSLAB_STARTUP_TIME_MS",), env_unit="ms", live=True),
    # ------------------------------------------------------------ sqs: how the embedded SQS behaves
    _s("sqs.behavior", "choice", "exact",
       "exact: the emulator never duplicates, reorders, throttles or lags; aws: SQS's documented departures from that, "
       "each at the rate below (aws column); any of them can be set on its own.", choices=("exact", "aws"), target_note="local"),
    _s("sqs.duplicates", "fraction", None,
       "Standard queues: share of deletes after which one copy of the message survives and is delivered again when its "
       "visibility timeout ends (at-least-once delivery).", profiles={"exact": 0, "aws": 0.01}, target_note="local"),
    _s("sqs.reorder", "boolean", None,
       "Standard queues: best-effort order; a receive draws its batch from the oldest few ready messages.",
       profiles={"exact": False, "aws": True}, target_note="local"),
    _s("sqs.short_poll_sample", "fraction", None,
       "Standard queues: the share of ready messages a short poll (wait_time 0) sees, so empty and partial receives "
       "happen while messages are available.", profiles={"exact": 1, "aws": 0.5}, target_note="local"),
    _s("sqs.count_lag", "duration", None,
       "ApproximateNumberOf* report a value the queue had up to this long ago.", low=0, high=3600,
       profiles={"exact": "0s", "aws": "2s"}, target_note="local"),
    _s("sqs.stale_receipt", "choice", None,
       "A delete or visibility change with a receipt handle that is no longer the message's latest: ignore (succeeds, "
       "does nothing: SQS's \"may not be deleted\") or delete (acts).", choices=("ignore", "delete"),
       profiles={"exact": "delete", "aws": "ignore"}, target_note="local"),
    _s("sqs.not_inflight", "choice", None,
       "ChangeMessageVisibility on a message no longer in flight: error (MessageNotInflight) or accept.",
       choices=("error", "accept"), profiles={"exact": "accept", "aws": "error"}, target_note="local"),
    _s("sqs.receive_loss", "fraction", None,
       "Share of received messages SQS counts as received (in flight, receive count up) but never hands over: why "
       "AWS advises against maxReceiveCount 1.", profiles={"exact": 0, "aws": 0.001}, target_note="local"),
    _s("sqs.inflight_limit", "integer", None,
       "Messages in flight past which a short poll fails with OverLimit and a long poll answers empty.", low=1,
       profiles={"exact": 120_000, "aws": 120_000}, target_note="local"),
    # ------------------------------------------------------------ effects: what the consumers' work did (docs/effects.md)
    _s("effects.id", "text", "id",
       "Where an effect's JSON body names its message: a dotted path (`orderId`, `order.id`); the value is sqslab's "
       "id of the message (its `sqslab-id` attribute, or its body's `id`).",
       pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,7}$",
       pattern_says="give a dotted path of keys (orderId, order.id): up to 8 keys of letters, digits, '_' or '-', each "
                    "starting with a letter or '_'"),
    # ------------------------------------------------------------ settle
    _s("settle.until", "choice", "drained", "drained: after the load, wait until visible + in flight + delayed = 0; none: stop at once.",
       choices=("drained", "none")),
    _s("settle.timeout", "duration", "2m", "The longest wait for settling.", low=0, high=DAY),
    # ------------------------------------------------------------ limits
    _s("limits.max_messages", "integer", 1_000_000,
       "The most messages the load may send in all; a run of 1M messages takes about 20 minutes locally.", low=1),
    _s("limits.max_rate", "rate", "5000/s",
       "The highest send rate a phase may ask for (rate, the end of a ramp, count over duration); "
       "one producer reaches 2,000-4,000 msg/s against the emulator."),
    _s("limits.max_payload_total", "size", "1GiB",
       "The most message bytes the load may send in all (count x payload_size over the phases): "
       "the emulator keeps every queued body in memory, about 1.5 times its size."),
    # ------------------------------------------------------------ hunt: what `sqslab hunt` may vary (`sqslab run` ignores it)
    _s("hunt.max_actions", "integer", 3, "The most actions `sqslab hunt` adds to one variation.", low=1, high=10),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

#: Sections that hold settings, with what each is, for the schema and the reference.
SECTIONS: dict[str, str] = {
    "infra": "Queue, DLQ and consumer service.",
    "infra.queue": "The source queue.",
    "infra.dlq": "The dead-letter queue.",
    "infra.task": "Consumer task settings.",
    "consumer": "The built-in consumer's behaviour and failure knobs.",
    "sqs": "How the embedded SQS behaves: exact, or as SQS does (local target; on AWS it is real SQS). "
           "`faults` (below) makes API calls fail.",
    "effects": "Count the consumers' side effects (docs/effects.md): giving this section, even `effects: {}`, turns it "
               "on; each consumer task gets SQSLAB_EFFECTS_URL to POST its results to (local target).",
    "settle": "What happens after the load and the actions.",
    "limits": "Bounds on the load, checked before anything runs; raise one to go beyond it on purpose.",
    "hunt": "What `sqslab hunt` may vary in this scenario (docs/hunt.md); `sqslab run` ignores this section.",
}


# ---------------------------------------------------------------- the `sqs` behaviour model


def behavior_rows() -> list[Setting]:
    """The `sqs` behaviour settings (each `sqs.*` setting with a default per profile), in table order."""
    return [s for s in SETTINGS if s.profiles is not None]


#: {profile: {behaviour setting: resolved value}} for each `sqs.behavior` choice, from the
#: rows' `profiles`. `aws` makes each documented departure of SQS from exactness happen often
#: enough to be seen in a run of a few hundred messages; real SQS does most of them far more rarely.
PROFILES: dict[str, dict[str, Any]] = {
    profile: {s.name: s.resolve(s.profiles[profile]) for s in behavior_rows() if s.profiles is not None}
    for profile in BY_KEY["sqs.behavior"].choices
}


def resolve_behavior(behavior: str = "exact", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every behaviour setting (resolved), in table order: the profile's values with the
    overrides (resolved values; None: the profile's). ValueError names an unknown profile or
    setting, or a value outside its kind, limits or choices."""
    if behavior not in PROFILES:
        raise ValueError(f"behavior must be one of {', '.join(PROFILES)}, not {behavior!r}")
    rows = {s.name: s for s in behavior_rows()}
    given = dict(overrides or {})
    unknown = set(given) - set(rows)
    if unknown:
        raise ValueError(f"unknown sqs behaviour setting(s): {', '.join(sorted(unknown))}")
    values = {**PROFILES[behavior], **{k: v for k, v in given.items() if v is not None}}
    for name, setting in rows.items():
        setting.check(values[name])
    return values


class OptionError(ValueError):
    """A bad `KEY=VALUE` option; the message says why."""


def behavior_options(behavior: str, texts: Iterable[str]) -> dict[str, Any]:
    """{name: resolved value} from `KEY=VALUE` behaviour settings (`sqslab emulator --sqs`),
    each VALUE in YAML as a scenario writes it, resolved by its row as a scenario's is and
    checked against the profile by resolve_behavior. OptionError names a bad one."""
    import difflib

    import yaml

    known = {s.name: s for s in behavior_rows()}
    given: dict[str, Any] = {}
    for text in texts:
        key, _, raw = text.partition("=")
        setting = known.get(key.strip())
        if setting is None:
            close = difflib.get_close_matches(key.strip(), list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise OptionError(f"{key!r} is not an sqs setting; {hint}known: {', '.join(known)}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
            given[setting.name] = setting.resolve(value)
            resolve_behavior(behavior, given)
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            raise OptionError(f"{text}: {exc}") from None
    return given


def under(prefix: str) -> list[Setting]:
    """The settings under a section (`infra` includes `infra.queue...`), in table order."""
    return [s for s in SETTINGS if s.key.startswith(prefix + ".")]


def resolve_section(prefix: str, data: Mapping[str, Any] | None, only_given: bool = False) -> dict[str, Any]:
    """{attribute name: resolved value} for every setting under prefix ("" for the top
    level), defaults filled, from the scenario's mapping at that prefix (assumed valid).
    With only_given, the settings the mapping gives, and no defaults."""
    values: dict[str, Any] = {}
    depth = len(prefix.split(".")) if prefix else 0
    for setting in under(prefix) if prefix else top_level():
        raw: Any = data
        for part in setting.path[depth:]:
            raw = raw.get(part) if isinstance(raw, Mapping) else None
        if raw is None and only_given:
            continue
        values[setting.name] = setting.resolve(raw)
    return values


def live_knobs() -> list[Setting]:
    """Consumer knobs that set_consumer may change during a run."""
    return [s for s in under("consumer") if s.live]


def by_name(prefix: str) -> dict[str, Setting]:
    """The settings under prefix by attribute name."""
    return {s.name: s for s in under(prefix)}


# ---------------------------------------------------------------- where values go


def env_values(setting: Setting, value: Any) -> dict[str, str]:
    """The consumer's environment for one resolved value (docs/contracts.md)."""
    if not setting.env:
        return {}
    if setting.kind == "duration_range":
        low_name, high_name = setting.env
        return {low_name: _env_text(setting, value[0]), high_name: _env_text(setting, value[1])}
    return {setting.env[0]: _env_text(setting, value)}


def _env_text(setting: Setting, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if setting.env_unit == "ms":
        return str(round(value * 1000))
    if setting.env_unit == "s":
        return str(round(value))
    if setting.kind == "fraction":
        return repr(float(value))
    return str(value)


def consumer_env(values: Mapping[str, Any]) -> dict[str, str]:
    """The consumer's environment for resolved consumer knobs {name: value}."""
    env: dict[str, str] = {}
    for setting in under("consumer"):
        if setting.name in values:
            env.update(env_values(setting, values[setting.name]))
    return env


#: Where consumer_knobs_source() writes, for the image (consumer/Dockerfile) and, by a
#: symlink, the package (sqslab/consumer/knobs.py).
CONSUMER_KNOBS_FILE = "consumer/knobs.py"


def consumer_knob_rows() -> list[tuple[str, str, str, Any, float | None, float | None, tuple[Any, ...]]]:
    """How the built-in consumer reads each knob's variable: (variable, config key, type:
    int | float | bool | choice, default, low, high, choices), the default and the limits
    in the variable's unit. The default is the variable's text for the table's default, as
    read, so a consumer started with no knob set behaves as the scenario defaults say."""
    rows: list[tuple[str, str, str, Any, float | None, float | None, tuple[Any, ...]]] = []
    for setting in under("consumer"):
        if not setting.env:
            continue
        scale = 1000 if setting.env_unit == "ms" else 1
        if setting.kind in ("duration", "duration_range"):
            kind = "int" if setting.whole_seconds and setting.env_unit == "s" else "float"
        else:
            kind = {"fraction": "float", "integer": "int", "boolean": "bool", "choice": "choice"}[setting.kind]
        low, high = (0, 1) if setting.kind == "fraction" else (setting.low, setting.high)
        number = int if kind == "int" else float
        bounds = [None if b is None else number(b * scale) for b in (low, high)] if kind in ("int", "float") else [None, None]
        for variable, text in env_values(setting, setting.resolve(None)).items():
            default: Any = number(text) if kind in ("int", "float") else text == "true" if kind == "bool" else text
            key = variable.removeprefix("SQSLAB_").lower()
            rows.append((variable, key, kind, default, bounds[0], bounds[1], setting.choices if kind == "choice" else ()))
    return rows


def consumer_knobs_source() -> str:
    """consumer/knobs.py: the built-in consumer's defaults, limits and choices, generated
    from the table so the consumer (boto3 and the standard library only) states none of
    them itself; tests/test_consumer.py checks the file is what this gives."""
    lines = [
        '"""The built-in consumer\'s knobs: generated from sqslab/scenario/settings.py by',
        '`python -m sqslab.scenario.settings`; do not edit.',
        "",
        "One row per environment variable the consumer reads a knob from: (variable, config key,",
        "type, default, low, high, choices), the default and the limits in the variable's unit",
        "(ms, s or as is). The consumer imports nothing else of sqslab: its image holds this file.",
        '"""',
        "",
        "from typing import Any",
        "",
        "KNOBS: tuple[tuple[str, str, str, Any, Any, Any, tuple[str, ...]], ...] = (",
    ]
    lines += [f"    {row!r}," for row in consumer_knob_rows()]
    lines += [")", ""]
    return "\n".join(lines)


def tfvar_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """{Terraform variable: value} for resolved infra settings {name: value}; durations
    in whole seconds, in table order."""
    out: dict[str, Any] = {}
    for setting in under("infra"):
        if setting.tfvar is None:
            continue
        value = values[setting.name]
        out[setting.tfvar] = int(value) if setting.kind == "duration" else value
    return out


def queue_attributes(values: Mapping[str, Any], which: str) -> dict[str, str]:
    """CreateQueue attributes of the queue (`queue`) or the DLQ (`dlq`) for resolved infra
    settings {name: value}; the redrive policy is the caller's (it needs the DLQ's ARN)."""
    out: dict[str, str] = {}
    for setting in under("infra"):
        if setting.sqs_attribute and setting.sqs_attribute[0] == which:
            value = values[setting.name]
            out[setting.sqs_attribute[1]] = str(int(value) if setting.kind == "duration" else value)
        for queue, attribute, text in setting.sqs_flags:
            if queue == which and values[setting.name] is True:
                out[attribute] = text
    return out


# ---------------------------------------------------------------- the reference


def type_text(setting: Setting) -> str:
    """The kind as the reference shows it."""
    if setting.kind == "choice":
        return ", ".join(f"`{c}`" for c in setting.choices)
    if setting.kind == "fraction":
        return "0-1 or %"
    if setting.kind == "duration_range":
        return "duration or range"
    return setting.kind


def default_text(setting: Setting) -> str:
    """The default as the reference shows it."""
    if setting.required:
        return "required"
    if setting.profiled:
        def show(value: Any) -> str:
            if isinstance(value, bool):
                return str(value).lower()
            return format_duration(value) if setting.kind == "duration" else f"{value:g}" if isinstance(value, float) else str(value)

        return ", ".join(f"{name}: `{show(values[setting.name])}`" for name, values in PROFILES.items())
    if setting.default is None:
        return "random" if setting.key == "seed" else ""
    if isinstance(setting.default, bool):
        return f"`{str(setting.default).lower()}`"
    return f"`{setting.default}`"


def meaning_text(setting: Setting) -> str:
    """The description with limits, where it goes on each target and whether it is live."""
    text = setting.description
    notes = []
    limits = setting.limits_text()
    if limits:
        notes.append(limits)
    if setting.target_note:
        notes.append(f"{setting.target_note} target only")
    if setting.key.startswith("consumer.") and not setting.live:
        notes.append("set_consumer cannot change it")
    if notes:
        stop = "." if text.endswith(".") else ""
        text = f"{text.removesuffix('.')} ({'; '.join(notes)}){stop}"
    return text


def reference_markdown(prefix: str, keys: Iterable[Setting] | None = None) -> str:
    """A Markdown table of the settings under prefix (or of the given settings at the top)."""
    rows = list(keys) if keys is not None else under(prefix)
    strip = len(prefix) + 1 if prefix else 0
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for setting in rows:
        lines.append(f"| `{setting.key[strip:]}` | {type_text(setting)} | {default_text(setting)} | {_cell(meaning_text(setting))} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def top_level() -> list[Setting]:
    """The settings at the top of a scenario."""
    return [s for s in SETTINGS if "." not in s.key]


def reference() -> str:
    """README's settings reference: one table per section, generated from the table."""
    parts = ["### Top level\n\n", reference_markdown("", top_level())]
    for section in ("infra", "consumer", "sqs", "effects", "settle", "limits", "hunt"):
        parts += [f"\n### `{section}`\n\n", reference_markdown(section)]
        if section == "hunt":
            parts.append("\nAlso `actions` (the action kinds a variation may add; default all that `sqslab hunt` generates: "
                         "kill_consumer, scale, set_consumer, sqs_fault, redrive_dlq, wait) and `vary` (what varies: `load`, "
                         "`sqs`, `actions`; default all three), e.g. `hunt: {actions: [scale], vary: [actions]}`: "
                         "see [Hunting](#hunting).\n")
        if section == "consumer":
            parts.append("\n`program` (`command`, `cwd`, `env`, `ready`, `stop_grace`, `image`) runs your own consumer "
                         "program instead of the built-in one, and none of the knobs above applies to it: see "
                         "[Test your own consumer](#test-your-own-consumer).\n")
            parts.append("\n`lambda` (`handler`, `code`, `runtime`, `timeout`, `memory`, `env`, `reserved_concurrency`) and "
                         "`event_source` (`batch_size`, `batching_window`, `report_batch_item_failures`, `max_concurrency`) "
                         "run a Lambda function behind an SQS event source mapping; of the knobs above only `poison_rate` "
                         "applies: see [Test your Lambda consumer](#test-your-lambda-consumer).\n")
    return "".join(parts)


def schema_property(setting: Setting) -> dict[str, Any]:
    """The JSON Schema of one setting's value."""
    kinds: dict[str, dict[str, Any]] = {
        "duration": {"$ref": "#/$defs/duration"},
        "duration_range": {"$ref": "#/$defs/duration_range"},
        "rate": {"$ref": "#/$defs/rate"},
        "size": {"$ref": "#/$defs/size"},
        "integer": {"type": "integer"},
        "fraction": {"$ref": "#/$defs/fraction"},
        "boolean": {"type": "boolean"},
        "text": {"type": "string"},
        "choice": {},
    }
    prop = dict(kinds[setting.kind])
    if setting.kind == "integer" and setting.choices:
        prop = {"const": setting.choices[0]}
    elif setting.kind == "choice":
        prop["enum"] = list(setting.choices)
    elif setting.kind == "integer":
        if setting.low is not None:
            prop["minimum"] = int(setting.low)
        if setting.high is not None:
            prop["maximum"] = int(setting.high)
    if setting.pattern:
        prop["pattern"] = setting.pattern
    if setting.pattern_says:
        prop["x-sqslab-says"] = setting.pattern_says
    prop["description"] = meaning_text(setting)
    if setting.default is not None:
        prop["default"] = setting.default
    return prop


def schema_section(prefix: str) -> dict[str, Any]:
    """The JSON Schema object of a section, nested sections included."""
    depth = len(prefix.split(".")) if prefix else 0
    properties: dict[str, Any] = {}
    required: list[str] = []
    for setting in (under(prefix) if prefix else SETTINGS):
        part = setting.path[depth]
        if len(setting.path) == depth + 1:
            properties[part] = schema_property(setting)
            if setting.required:
                required.append(part)
        elif part not in properties:
            properties[part] = schema_section(".".join(setting.path[:depth + 1]))
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    if prefix in SECTIONS:
        schema["description"] = SECTIONS[prefix]
    return schema


if __name__ == "__main__":  # python -m sqslab.scenario.settings: write consumer/knobs.py again after a change to the table
    import sys
    from pathlib import Path

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / CONSUMER_KNOBS_FILE
    target.write_text(consumer_knobs_source())
    print(target)
