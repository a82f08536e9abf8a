"""One search per run directory: a lock file that holds the owner's PID."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

from tuning.errors import UsageError

LOCK_FILE = ".search.lock"
_held: set[Path] = set()  # the lock files this process holds now


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, warn=None):
    """Holds `run_dir/.search.lock` for the duration of the block.

    A lock whose PID is alive makes a second search refuse (UsageError naming the PID); a lock
    left by a dead process (e.g. after `kill -9`) is taken over, with a warning.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    path = Path(run_dir) / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {path.parent}: {error.strerror}") from None
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = _owner(path)
            if owner is not None and _alive(owner):
                raise UsageError(f"{run_dir} is in use by another search (PID {owner}); wait "
                                 f"for it, or use another --out") from None
            warn(f"warning: taking over the lock of {run_dir} from PID {owner}, which is gone")
            path.unlink(missing_ok=True)
        except PermissionError:
            raise UsageError(f"{run_dir} is not writable") from None
    else:
        raise UsageError(f"could not lock {run_dir}; another search took it just now")
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        _held.add(path)
        yield
    finally:
        _held.discard(path)
        _release(path)


def release_held() -> None:
    """Removes the lock files this process holds: for a process about to end abruptly."""
    for path in list(_held):
        _release(path)


def _release(path: Path) -> None:
    if _owner(path) == os.getpid():
        path.unlink(missing_ok=True)


def _owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True
