"""One search per run directory: a lock file naming the host, PID and start time of its owner.

On one machine a lock whose process is gone (e.g. after `kill -9`) is taken over with a warning.
A lock written on another host (a run directory on a shared disk) is never taken over silently:
this host cannot tell whether that process lives, so the search refuses, naming the host, and
`--force-unlock` removes it once the user knows that search is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from tuning.errors import UsageError

LOCK_FILE = ".search.lock"
_held: set[Path] = set()  # the lock files this process holds now


@dataclass(frozen=True)
class Owner:
    """Who holds a lock: as written in the file (a bare PID: a lock of an earlier version)."""

    host: str
    pid: int | None
    started: str = "?"

    @classmethod
    def me(cls) -> Owner:
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(socket.gethostname(), os.getpid(), now)

    def is_here(self) -> bool:
        return self.host == socket.gethostname()

    def is_alive(self) -> bool:
        """Whether the owner may still run (always, for a process of another host)."""
        return not self.is_here() or (self.pid is not None and _alive(self.pid))

    def describe(self) -> str:
        where = "" if self.is_here() else f" on host {self.host}"
        return f"PID {self.pid}{where}, started {self.started}"


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, warn=None, force: bool = False):
    """Holds `run_dir/.search.lock` for the duration of the block.

    A lock of a live process on this host, or of any process on another host, makes a second
    search refuse (UsageError naming its owner); `force` removes another host's lock (with a
    warning). A lock left by a dead process of this host is taken over, with a warning.
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
            _take_over(path, run_dir, warn, force)
        except PermissionError:
            raise UsageError(f"{run_dir} is not writable") from None
    else:
        raise UsageError(f"could not lock {run_dir}; another search took it just now")
    try:
        os.write(fd, json.dumps(Owner.me().__dict__).encode() + b"\n")
        os.close(fd)
        _held.add(path)
        yield
    finally:
        _held.discard(path)
        _release(path)


def _take_over(path: Path, run_dir: Path, warn, force: bool) -> None:
    """Removes a lock its owner left, or refuses (UsageError) while the owner may be running."""
    owner = _owner(path)
    if owner is not None and owner.is_here() and owner.is_alive():
        raise UsageError(
            f"{run_dir} is in use by another search ({owner.describe()}); wait "
            f"for it, or use another --out"
        ) from None
    if owner is not None and not owner.is_here():
        if not force:
            raise UsageError(
                f"{run_dir} is locked by a search on host {owner.host} (PID "
                f"{owner.pid}, started {owner.started}); if that search is gone, "
                f"pass --force-unlock"
            ) from None
        warn(f"warning: removing the lock of {run_dir} held by {owner.describe()} (--force-unlock)")
    else:
        warn(
            f"warning: taking over the lock of {run_dir} from "
            f"PID {owner.pid if owner else None}, which is gone"
        )
    path.unlink(missing_ok=True)


def clear_keeping_lock(run_dir: Path) -> None:
    """Empties `run_dir` for --overwrite, keeping our lock (keras-tuner's overwrite would not)."""
    for path in run_dir.iterdir():
        if path.name == LOCK_FILE:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def release_held() -> None:
    """Removes the lock files this process holds: for a process about to end abruptly."""
    for path in list(_held):
        _release(path)


def _release(path: Path) -> None:
    owner = _owner(path)
    if owner is not None and owner.is_here() and owner.pid == os.getpid():
        path.unlink(missing_ok=True)


def _owner(path: Path) -> Owner | None:
    """The lock's owner, None if unreadable (a half-written lock: its writer died)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text.isdigit():
        return Owner(socket.gethostname(), int(text))
    try:
        record = json.loads(text)
        return Owner(str(record["host"]), int(record["pid"]), str(record.get("started", "?")))
    except (ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True
