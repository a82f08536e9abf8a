"""Writes that never leave a half-written file behind: write a temporary name, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from tuning.errors import UsageError

# Errors of the disk, not of the code: reported in one line, like a usage error.
WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yields a temporary path beside `path` (same suffix); renames it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def raise_if_disk_error(error: OSError, where: Path) -> None:
    """Raises UsageError naming the file for a full, read-only or forbidden disk; else returns."""
    if error.errno in WRITE_FAILURES:
        where = error.filename or where  # our writes are atomic: earlier files stand
        raise UsageError(
            f"could not write {where}: {error.strerror or error}; files written before are intact"
        ) from None


def check_writable(out: Path) -> None:
    """UsageError unless `out` is, or can be made, a writable directory."""
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is not a directory")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {existing} is not writable")
