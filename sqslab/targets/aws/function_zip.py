"""The Lambda function's deployment package: `consumer.lambda.code` zipped, with
sqslab's entry (sqslab.lambdas.entry as sqslab_entry.py, sqslab.lambdas.event as
sqslab_event.py) beside your code.

The zip is the same bytes for the same files: entries sorted, one timestamp, modes
normalised, no bytecode caches; so its hash (Terraform's source_code_hash) changes only
when the code does, and an unchanged function is not uploaded again. Dependencies are
yours to vendor into `code` (`pip install -t code -r requirements.txt`) or give as a layer:
nothing is installed here. Bounded by Lambda's own limits on a zip uploaded directly.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: Lambda's limit on a deployment package uploaded directly (zipped).
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
#: Lambda's limit on a function's code unzipped.
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
#: Folders and files that are never part of the package.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
#: The names sqslab's entry takes in the package: your code must not hold them.
ENTRY, EVENT = "sqslab_entry.py", "sqslab_event.py"
#: The handler Lambda calls: sqslab's entry, which calls yours.
ENTRY_HANDLER = "sqslab_entry.handler"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


class PackageError(ValueError):
    """The code cannot be packaged (a limit, a name clash, no such folder)."""


@dataclass(frozen=True)
class Package:
    """A written deployment package."""

    path: Path
    source_code_hash: str  # base64 of the zip's SHA-256, as Terraform's filebase64sha256
    files: int
    unzipped_bytes: int


def _files(code: Path) -> list[tuple[str, Path]]:
    found = []
    for folder, dirs, names in os.walk(code):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in names:
            if not name.endswith(SKIPPED_SUFFIXES):
                path = Path(folder) / name
                found.append((path.relative_to(code).as_posix(), path))
    return sorted(found)


def _entry(name: str, data: bytes, executable: bool = False) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.create_system = 3  # unix, so the modes are read
    return info, data


def build(code: Path | str, out: Path | str) -> Package:
    """Zip `code` and sqslab's entry into `out`; PackageError names the limit or the clash."""
    code = Path(code)
    if not code.is_dir():
        raise PackageError(f"consumer.lambda.code {code} is not a folder")
    here = Path(__file__).resolve().parents[2] / "lambdas"
    entries = []
    total = 0
    for name, path in _files(code):
        if name in (ENTRY, EVENT):
            raise PackageError(f"{path}: the package's {name} is sqslab's entry in front of your handler; rename your file")
        total += path.stat().st_size
        if total > MAX_UNZIPPED_BYTES:
            raise PackageError(f"consumer.lambda.code {code} holds more than Lambda's {MAX_UNZIPPED_BYTES // 2**20} MB of "
                               "unzipped code; put dependencies in a layer, or leave out what the function does not import")
        entries.append(_entry(name, path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR)))
    entries += [_entry(ENTRY, (here / "entry.py").read_bytes()), _entry(EVENT, (here / "event.py").read_bytes())]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in sorted(entries, key=lambda e: e[0].filename):
            archive.writestr(info, data, compresslevel=9)
    data = buffer.getvalue()
    if len(data) > MAX_ZIPPED_BYTES:
        raise PackageError(f"the package of {code} is {len(data) / 2**20:.1f} MB zipped, over Lambda's "
                           f"{MAX_ZIPPED_BYTES // 2**20} MB for a zip uploaded directly; put dependencies in a layer")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return Package(out, digest, len(entries), total)
