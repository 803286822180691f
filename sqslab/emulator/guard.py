"""The moto version guard of the emulator patches, and the one way they assign.

The patches replace private members of moto, so they are tied to one moto release,
``MOTO_VERSION`` (setup.cfg pins the same). ``PATCHED`` and ``READ`` list every moto
attribute they replace or use; ``apply()`` first runs ``guard()``, which raises
``PatchError`` -- naming the installed and the pinned version and each missing
attribute -- if another moto version is installed or a listed attribute is gone, so
an upgrade cannot silently undo a fix. The emulator child then exits with that
message, which ``Emulator.start()`` quotes.

Environment variable ``SQSLAB_EMULATOR_ALLOW_MOTO_VERSION=1``: patch another moto
version anyway, with a warning on stderr instead of the error (for trying a moto
upgrade). Missing attributes still fail.

The patch modules assign a moto attribute only through ``_replace()`` (or
``_replace_all()``), which refuses a pair not declared in ``PATCHED``: adding a
replacement means adding its pair here too, so the guard cannot fall behind.

This module imports no moto code at import time: ``check()`` and ``guard()`` import
moto's SQS modules only when called, and nothing here patches anything.
"""

from __future__ import annotations

import os
import pkgutil
import sys
import types
from collections.abc import Mapping
from importlib import metadata
from typing import Any

#: The moto release the patches are written for and tested with (setup.cfg pins it).
MOTO_VERSION = "5.2.1"
#: Set to 1 to patch another moto version anyway: a warning instead of PatchError.
ALLOW_VERSION_ENV = "SQSLAB_EMULATOR_ALLOW_MOTO_VERSION"
#: The fix PatchError suggests.
FIX_HINT = f"pip install 'moto[server]=={MOTO_VERSION}'"

_M = "moto.sqs.models"
_MESSAGE = f"{_M}.Message"
_QUEUE = f"{_M}.Queue"
_BACKEND = f"{_M}.SQSBackend"
_DISPATCHER = "moto.moto_server.werkzeug_app.DomainDispatcherApplication"
_RESPONSE = "moto.sqs.responses.SQSResponse"
_EXC = "moto.sqs.exceptions"

#: Every moto attribute apply() replaces: (import path of its module or class, name).
#: The patch code assigns only through _replace(), which refuses a pair not listed
#: here, so the list cannot fall behind the code. Each must exist before it is
#: replaced: a name moto dropped or renamed would leave the stock code running
#: unpatched. Not listed: the lock wrapper put around every function SQSBackend
#: defines (whatever this moto has; none of them is required).
PATCHED: tuple[tuple[str, str], ...] = (
    (_M, "unix_time"),
    (_M, "unix_time_millis"),
    (_M, "generate_receipt_handle"),
    (_M, "camelcase_to_underscores"),
    ("moto.backends", "list_of_moto_modules"),
    (_DISPATCHER, "get_backend_for_host"),
    ("moto.core.responses", "method_names_from_class"),
    ("moto.core.responses", "gen_amzn_requestid_long"),
    (_MESSAGE, "__new__"),
    (_MESSAGE, "__init__"),
    (_MESSAGE, "mark_sent"),
    (_MESSAGE, "mark_received"),
    (_MESSAGE, "change_visibility"),
    (_MESSAGE, "delay"),
    (_MESSAGE, "visible"),
    (_MESSAGE, "delayed"),
    (_MESSAGE, "had_receipt_handle"),
    (_QUEUE, "__init__"),
    (_QUEUE, "approximate_number_of_messages"),
    (_QUEUE, "approximate_number_of_messages_not_visible"),
    (_QUEUE, "approximate_number_of_messages_delayed"),
    (_QUEUE, "messages"),
    (_QUEUE, "pending_messages"),
    (_QUEUE, "pending_message_groups"),
    (_QUEUE, "add_message"),
    (_QUEUE, "delete_message"),
    (_QUEUE, "wait_for_messages"),
    (_BACKEND, "_validate_message"),
    (_BACKEND, "send_message"),
    (_BACKEND, "receive_message"),
    (_BACKEND, "delete_message"),
    (_BACKEND, "delete_message_batch"),
    (_BACKEND, "create_queue"),
    (_BACKEND, "change_message_visibility"),
    (_BACKEND, "change_message_visibility_batch"),
    (_BACKEND, "purge_queue"),
    (_BACKEND, "delete_queue"),
    (_BACKEND, "is_message_valid_based_on_retention_period"),
    (_BACKEND, "get_queue_attributes"),
    (_RESPONSE, "_dispatch"),
    (_RESPONSE, "parse_parameters"),
    (_RESPONSE, "send_message"),
    (_RESPONSE, "send_message_batch"),
    (_RESPONSE, "delete_message_batch"),
    (_RESPONSE, "change_message_visibility_batch"),
    (_RESPONSE, "change_message_visibility"),
    (_RESPONSE, "receive_message"),
    (_RESPONSE, "serialized"),
    (_RESPONSE, "list_queues"),
    (_RESPONSE, "create_queue"),
    (_RESPONSE, "set_queue_attributes"),
)

#: moto attributes the patched code (and server.py's patched mode) reads, calls or
#: raises without replacing them. Instance attributes (queue.fifo_queue,
#: message.visible_at...) are set in __init__ and cannot be checked without building
#: moto objects; the emulator tests exercise them. Not listed either:
#: moto.awslambda.utils.get_backend, used only by the Lambda event-source trigger
#: (never by sqslab): importing moto.awslambda to check it would add ~60 ms to every
#: emulator start.
READ: tuple[tuple[str, str], ...] = (
    (_M, "Message"),
    (_M, "Queue"),
    (_M, "SQSBackend"),
    (_M, "sqs_backends"),
    (_M, "random"),
    (f"{_M}.random", "uuid4"),
    (f"{_M}.random", "choice"),
    (_M, "MAXIMUM_MESSAGE_DELAY"),
    (_M, "_filter_message_attributes"),
    (_M, "ReceiptHandleIsInvalid"),
    (_M, "MissingParameter"),
    (_M, "InvalidParameterValue"),
    (_M, "InvalidAttributeName"),
    (_M, "MAXIMUM_VISIBILITY_TIMEOUT"),
    ("moto.sqs.exceptions", "SQSException"),
    ("moto.sqs", "responses"),
    ("moto.core.utils", "camelcase_to_underscores"),
    (_QUEUE, "name"),
    (_QUEUE, "attributes"),
    (_QUEUE, "BASE_ATTRIBUTES"),
    (_QUEUE, "FIFO_ATTRIBUTES"),
    (_QUEUE, "KMS_ATTRIBUTES"),
    (_BACKEND, "get_queue"),
    (_DISPATCHER, "get_application"),
    (_EXC, "EmptyBatchRequest"),
    (_EXC, "TooManyEntriesInBatchRequest"),
    (_EXC, "BatchEntryIdsNotDistinct"),
    (_EXC, "InvalidBatchEntryId"),
    (_EXC, "BatchRequestTooLong"),
    (_EXC, "InvalidAttributeValue"),
    (_EXC, "QueueAlreadyExists"),
    (_RESPONSE, "setup_class"),
    (_RESPONSE, "call_action"),
    (_RESPONSE, "sqs_backend"),
    (_RESPONSE, "_get_action"),
    (_RESPONSE, "_get_queue_name"),
    ("moto.core.responses", "ActionResult"),
    ("moto.core.utils", "get_service_model"),
)

#: Everything guard() requires to exist.
GUARDED: tuple[tuple[str, str], ...] = PATCHED + READ
_PATCHED_SET = frozenset(PATCHED)
#: How many names the one-line PatchError message spells out (check() lists all):
#: Emulator.start() quotes the last line of the child's log, up to 2,000 bytes.
_MAX_NAMED = 10


class PatchError(RuntimeError):
    """The installed moto is not the one the patches are written for, or lacks a
    member they replace or use. ``installed`` is its version (None: not installed),
    ``missing`` the dotted names of the missing members."""

    def __init__(self, message: str, installed: str | None = None, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.installed = installed
        self.missing = missing


def installed_moto_version() -> str | None:
    """The installed moto distribution's version, or None if moto is not installed."""
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None


def _missing() -> list[str]:
    """The dotted names of the GUARDED attributes that do not resolve (imports moto)."""
    missing: list[str] = []
    for owner, name in GUARDED:
        try:
            pkgutil.resolve_name(f"{owner}.{name}")
        except (ImportError, AttributeError, ValueError):
            missing.append(f"{owner}.{name}")
    return missing


def check() -> list[str]:
    """What stands between the installed moto and the patches, one sentence each:
    a version other than MOTO_VERSION, or a GUARDED attribute that does not exist.
    Empty when apply() can patch. Imports moto's SQS modules; patches nothing."""
    installed = installed_moto_version()
    problems: list[str] = []
    if installed != MOTO_VERSION:
        problems.append(_version_sentence(installed))
    problems += [f"{name} does not exist" for name in _missing()]
    return problems


def _version_sentence(installed: str | None) -> str:
    """The sentence saying the installed moto (or its absence) is not MOTO_VERSION."""
    have = "moto is not installed" if installed is None else f"moto {installed} is installed"
    return f"{have}, but sqslab's emulator patches are written for moto {MOTO_VERSION}"


def guard() -> None:
    """Raise PatchError unless the installed moto is MOTO_VERSION with every GUARDED
    attribute. With SQSLAB_EMULATOR_ALLOW_MOTO_VERSION=1 a version mismatch alone
    only writes a warning to stderr; missing attributes still raise."""
    installed = installed_moto_version()
    missing = _missing()
    wrong_version = installed != MOTO_VERSION
    if not wrong_version and not missing:
        return
    allowed = os.environ.get(ALLOW_VERSION_ENV) == "1"
    if wrong_version and not missing and allowed:
        sys.stderr.write(
            f"sqslab emulator: warning: {_version_sentence(installed)}; patching it anyway "
            f"({ALLOW_VERSION_ENV}=1). If the emulator misbehaves: {FIX_HINT}\n"
        )
        return
    raise PatchError(_guard_message(installed, missing), installed, tuple(missing))


def _guard_message(installed: str | None, missing: list[str]) -> str:
    """guard()'s one-line PatchError message: what is wrong, then the fix."""
    wrong_version = installed != MOTO_VERSION
    if wrong_version:
        message = _version_sentence(installed)
    else:
        message = f"moto {installed} is installed, the version sqslab's emulator patches are written for"
    if missing:
        named = ", ".join(missing[:_MAX_NAMED])
        more = f" and {len(missing) - _MAX_NAMED} more" if len(missing) > _MAX_NAMED else ""
        message += f"; missing in moto: {named}{more}"
    # Same version but members missing: a modified copy of moto; only a reinstall replaces it.
    fix = FIX_HINT if wrong_version else FIX_HINT.replace("pip install", "pip install --force-reinstall")
    message += f". Install the pinned moto: {fix}"
    if wrong_version and not missing:
        message += f" (or set {ALLOW_VERSION_ENV}=1 to patch moto {installed} anyway)"
    return message


def _replace(owner: Any, name: str, value: Any) -> None:
    """setattr(owner, name, value), only for a pair declared in PATCHED."""
    path = owner.__name__ if isinstance(owner, types.ModuleType) else f"{owner.__module__}.{owner.__qualname__}"
    if (path, name) not in _PATCHED_SET:
        # A programming error, caught by every emulator test: declare the pair in PATCHED.
        raise PatchError(f"{path}.{name} is patched but not declared in sqslab.emulator.guard.PATCHED")
    setattr(owner, name, value)


def _replace_all(owner: Any, members: Mapping[str, Any]) -> None:
    """_replace() each name -> value of members on owner, in order (a patch table)."""
    for name, value in members.items():
        _replace(owner, name, value)
