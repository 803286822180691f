"""The moto version guard (sqslab.emulator.guard, re-exported by sqslab.emulator.patches).

The patches are never applied in this process (other tests use moto in-process and
must see stock moto): apply() is run for real only in subprocesses, and in-process
tests make sure it raises before it patches anything.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqslab.emulator import Emulator, EmulatorError, guard, patches
from sqslab.emulator.patches import (
    ALLOW_VERSION_ENV,
    FIX_HINT,
    GUARDED,
    MOTO_VERSION,
    PATCHED,
    READ,
    PatchError,
)

ROOT = Path(__file__).resolve().parent.parent
FAKE_VERSION = "9.9.9"

# Replaces importlib.metadata's answer for moto in a child process, before anything
# runs: as sitecustomize.py on PYTHONPATH it reaches the emulator child that
# Emulator.start() spawns, with no test-only switch in sqslab itself.
FAKE_VERSION_SITECUSTOMIZE = f"""
import importlib.metadata

_real_version = importlib.metadata.version


def _version(name):
    return {FAKE_VERSION!r} if name == "moto" else _real_version(name)


importlib.metadata.version = _version
"""


def _resolve_owner(owner: str) -> Any:
    return pkgutil.resolve_name(owner)


@pytest.fixture()
def fake_moto_version(monkeypatch: pytest.MonkeyPatch) -> str:
    """importlib.metadata reports FAKE_VERSION for moto until the test ends."""
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: FAKE_VERSION if name == "moto" else real(name))
    return FAKE_VERSION


@pytest.fixture()
def no_patching(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """apply() in this process must not touch moto: its patching step only records calls."""
    assert not patches._applied, "moto was patched in the test process"
    calls: list[str] = []
    monkeypatch.setattr(patches, "_patch_moto", lambda: calls.append("patched"))
    monkeypatch.setattr(patches, "_applied", False)  # restored, whatever apply() sets
    yield calls


# --------------------------------------------------------------------------- the list


def test_guarded_list_is_sound_and_check_passes_on_the_installed_moto() -> None:
    assert len(PATCHED) >= 30 and READ
    assert GUARDED == PATCHED + READ
    assert len(set(GUARDED)) == len(GUARDED), "a name is listed twice"
    assert patches.installed_moto_version() == MOTO_VERSION
    assert patches.check() == []
    patches.guard()  # does not raise


def test_pinned_version_matches_setup_cfg() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requires = cfg["options"]["install_requires"].split()
    assert f"moto[server]=={MOTO_VERSION}" in requires


def test_replace_refuses_an_undeclared_attribute() -> None:
    class Owner:
        value = "stock"

    with pytest.raises(PatchError, match=r"Owner\.value is patched but not declared in .*PATCHED"):
        patches._replace(Owner, "value", "patched")
    assert Owner.value == "stock"


def test_every_attribute_apply_changes_is_declared() -> None:
    """apply() in a fresh interpreter: every attribute of every moto module and class it
    changes or adds is in PATCHED, or is a SQSBackend function wrapped in the lock."""
    code = textwrap.dedent(
        """
        import inspect, json, sys
        import moto.backends, moto.core.utils, moto.sqs.models, moto.sqs.responses
        import moto.moto_server.werkzeug_app

        def snapshot():
            seen = {}
            for modname, mod in list(sys.modules.items()):
                if mod is None or not (modname == "moto" or modname.startswith("moto.")):
                    continue
                for attr, value in list(vars(mod).items()):
                    seen[(modname, attr)] = value
                    if inspect.isclass(value) and value.__module__ == modname:
                        for cattr, cvalue in list(vars(value).items()):
                            seen[(f"{modname}.{value.__qualname__}", cattr)] = cvalue
            return seen

        backend = moto.sqs.models.SQSBackend
        functions = [n for n, f in vars(backend).items() if inspect.isfunction(f) and not n.startswith("__")]
        before = snapshot()
        from sqslab.emulator import patches
        patches.apply()
        after = snapshot()
        owners = {owner for owner, _ in before}
        changed = sorted(
            k for k in before.keys() | after.keys()
            if k[0] in owners and (k not in before or k not in after or before[k] is not after[k])
        )
        unwrapped = [n for n in functions if not hasattr(vars(backend)[n], "__wrapped__")]
        print(json.dumps({"changed": changed, "functions": functions, "unwrapped": unwrapped}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    changed = {tuple(k) for k in report["changed"]}
    wrapped = {("moto.sqs.models.SQSBackend", n) for n in report["functions"]}
    assert report["unwrapped"] == []
    assert changed - set(PATCHED) - wrapped == set(), "patched but not declared in PATCHED"
    assert set(PATCHED) - changed == set(), "declared in PATCHED but not patched"


# --------------------------------------------------------------------------- check() and guard()


def test_version_mismatch_names_both_versions(fake_moto_version: str) -> None:
    problems = patches.check()
    assert len(problems) == 1
    assert f"moto {FAKE_VERSION} is installed" in problems[0] and MOTO_VERSION in problems[0]
    with pytest.raises(PatchError) as caught:
        patches.guard()
    message = str(caught.value)
    assert f"moto {FAKE_VERSION} is installed, but sqslab's emulator patches are written for moto {MOTO_VERSION}" in message
    assert FIX_HINT in message and f"{ALLOW_VERSION_ENV}=1" in message
    assert "\n" not in message
    assert (caught.value.installed, caught.value.missing) == (FAKE_VERSION, ())


def test_moto_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def version(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert patches.installed_moto_version() is None
    assert patches.check()[0].startswith(f"moto is not installed, but sqslab's emulator patches are written for moto {MOTO_VERSION}")


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        ("moto.sqs.models.SQSBackend", "receive_message"),
        ("moto.sqs.models.Queue", "approximate_number_of_messages"),
        ("moto.sqs.models", "generate_receipt_handle"),
        ("moto.moto_server.werkzeug_app.DomainDispatcherApplication", "get_backend_for_host"),
        ("moto.sqs.models.Queue", "BASE_ATTRIBUTES"),
    ],
)
def test_missing_attribute_is_named(monkeypatch: pytest.MonkeyPatch, owner: str, name: str) -> None:
    assert (owner, name) in GUARDED
    monkeypatch.delattr(_resolve_owner(owner), name)  # put back after the test
    assert patches.check() == [f"{owner}.{name} does not exist"]
    with pytest.raises(PatchError) as caught:
        patches.guard()
    message = str(caught.value)
    assert f"moto {MOTO_VERSION} is installed" in message
    assert f"missing in moto: {owner}.{name}." in message
    assert "pip install --force-reinstall 'moto[server]==5.2.1'" in message
    assert caught.value.missing == (f"{owner}.{name}",)


def test_many_missing_attributes_keep_the_message_short(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the patches replace on Queue and Message, but not __init__ and __new__: every
    # class has those (from object), so deleting moto's own leaves them resolvable.
    gone = [(o, n) for o, n in PATCHED if o.endswith((".Queue", ".Message")) and not n.startswith("__")]
    assert len(gone) > guard._MAX_NAMED
    for owner, name in gone:
        monkeypatch.delattr(_resolve_owner(owner), name)
    assert len(patches.check()) == len(gone)
    with pytest.raises(PatchError) as caught:
        patches.guard()
    assert f"and {len(gone) - guard._MAX_NAMED} more" in str(caught.value)
    assert len(caught.value.missing) == len(gone)


def test_apply_raises_before_patching(fake_moto_version: str, no_patching: list[str]) -> None:
    import moto.core.utils
    import moto.sqs.models

    with pytest.raises(PatchError, match=rf"moto {FAKE_VERSION} is installed, .* moto {MOTO_VERSION}\. Install the pinned moto"):
        patches.apply()
    assert no_patching == [] and not patches._applied
    assert moto.sqs.models.unix_time is moto.core.utils.unix_time  # still stock


def test_escape_hatch_turns_a_version_mismatch_into_a_warning(
    fake_moto_version: str, no_patching: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ALLOW_VERSION_ENV, "1")
    patches.apply()
    assert no_patching == ["patched"]
    err = capsys.readouterr().err
    assert err.startswith(f"sqslab emulator: warning: moto {FAKE_VERSION} is installed") and MOTO_VERSION in err


def test_escape_hatch_does_not_excuse_missing_attributes(
    fake_moto_version: str, no_patching: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_VERSION_ENV, "1")
    monkeypatch.delattr(_resolve_owner("moto.sqs.models.Queue"), "delete_message")
    with pytest.raises(
        PatchError, match=rf"moto {FAKE_VERSION} is installed.*missing in moto: moto\.sqs\.models\.Queue\.delete_message"
    ) as caught:
        patches.apply()
    assert ALLOW_VERSION_ENV not in str(caught.value)
    assert no_patching == []


# --------------------------------------------------------------------------- the emulator child


@pytest.fixture()
def child_sees_fake_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Emulator children started in this test see moto FAKE_VERSION installed."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_VERSION_SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.delenv(ALLOW_VERSION_ENV, raising=False)
    return FAKE_VERSION


@pytest.mark.integration
def test_emulator_child_exits_with_the_guard_message(child_sees_fake_version: str) -> None:
    emu = Emulator()
    with pytest.raises(EmulatorError) as caught:
        emu.start()
    assert not emu.running
    assert (
        f"exited with code 2 before it was ready: sqslab emulator: moto {FAKE_VERSION} is installed, "
        f"but sqslab's emulator patches are written for moto {MOTO_VERSION}. Install the pinned moto: {FIX_HINT}"
    ) in str(caught.value)


@pytest.mark.integration
def test_escape_hatch_starts_the_emulator_with_a_warning(
    child_sees_fake_version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_VERSION_ENV, "1")
    log = tmp_path / "emulator.log"
    with Emulator(log_path=log) as emu:
        assert emu.running
    assert f"sqslab emulator: warning: moto {FAKE_VERSION} is installed" in log.read_text()
