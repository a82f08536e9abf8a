"""Ctrl-C that is never lost, and that ends a command at once.

Two things stand between a Ctrl-C and the shell prompt:
- Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a weakref
  callback or `__del__` inside TensorFlow, Python prints it with a traceback as "Exception ignored"
  and the search runs on. So the handler also records the interrupt, the search checks the record
  at every epoch end and trial boundary (`recorded`, `raise_if_interrupted`), and such a recorded
  interrupt is not printed (the user pressed Ctrl-C; a traceback would tell them nothing).
- The main thread sees the signal only between two Python bytecodes, so a long TensorFlow op (one
  training step of a large model) delays it; and once the command has printed its last line,
  Python's exit tears TensorFlow down while its threads finish queued work (seen: up to a minute
  of busy CPU). So the command line ends the process with `os._exit` as soon as its line is
  printed, and a watchdog thread, woken by the signal itself through `signal.set_wakeup_fd`, ends
  it `GRACE_SECONDS` after a Ctrl-C the main thread has not acted on (`exits_promptly`).
Everything a search writes is written atomically, so ending this way loses only the running trial,
which a resumed search runs again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

GRACE_SECONDS = 2.0  # for the main thread to act on a Ctrl-C before the watchdog ends the process

_interrupted = threading.Event()
_exiting = threading.Lock()  # whoever holds it prints the last line and ends the process


@contextlib.contextmanager
def recorded():
    """Within the block, Ctrl-C is recorded as well as raised; the old handler comes back after.

    Only where SIGINT has Python's default handler (an ignored or custom one is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _interrupted.clear()
    signal.signal(signal.SIGINT, _handle)
    print_unraisable = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: (
        None if _is_recorded(unraisable.exc_type) else print_unraisable(unraisable)
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = print_unraisable


def _is_recorded(exc_type: type) -> bool:
    return issubclass(exc_type, KeyboardInterrupt) and _interrupted.is_set()


def _handle(signum, frame):
    _interrupted.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def exits_promptly(message: str, cleanup=lambda: None, grace: float = GRACE_SECONDS):
    """For a command's main function: a Ctrl-C ends the process with `message` and exit 130.

    When KeyboardInterrupt reaches the block, `cleanup` runs, `message` goes to stderr and the
    process ends at once. When the main thread has not acted on a Ctrl-C after `grace` seconds
    (stuck in a long TensorFlow op, or the exception swallowed), a watchdog thread calls `cleanup`
    (e.g. remove our lock file), prints `message` and ends it. Not for library code: it ends the
    process.
    """
    watching = threading.current_thread() is threading.main_thread()
    if watching:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        threading.Thread(
            target=_watch,
            args=(read_end, grace, message, cleanup),
            name="ctrl-c-watchdog",
            daemon=True,
        ).start()
    try:
        yield
    except KeyboardInterrupt:
        _exit_now(message, cleanup)
    finally:
        if watching:
            signal.set_wakeup_fd(previous)
            os.close(write_end)  # the watchdog reads end-of-file and leaves


def _watch(read_end: int, grace: float, message: str, cleanup) -> None:
    while True:
        try:
            received = os.read(read_end, 64)
        except OSError:
            return
        if not received:
            os.close(read_end)
            return
        if signal.SIGINT in received:
            threading.Event().wait(grace)
            _exit_now(message, cleanup)


def _exit_now(message: str, cleanup) -> None:
    """Prints `message` and ends the process with status 130, once, whichever thread gets here."""
    _exiting.acquire()  # the other thread, if it comes, waits here until the process ends
    try:
        cleanup()
    finally:
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
