"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a weakref
callback or `__del__` inside TensorFlow, the exception is printed as "ignored" and the search runs
on (seen here). So the handler also records the interrupt, and the search checks the record at
every epoch end and trial boundary (`raise_if_interrupted`).
"""

from __future__ import annotations

import signal
import threading

_interrupted = threading.Event()


def install() -> None:
    """Records Ctrl-C as well as raising it; only where SIGINT has Python's default handler."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        _interrupted.clear()
        signal.signal(signal.SIGINT, _handle)


def _handle(signum, frame):
    _interrupted.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt
