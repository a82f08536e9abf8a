"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be; when that is a weakref
callback or `__del__` inside TensorFlow, the exception is printed as "ignored" and the search runs
on (seen here). So the handler also records the interrupt, and the search checks the record at
every epoch end and trial boundary (`raise_if_interrupted`).
"""

from __future__ import annotations

import contextlib
import signal
import threading

_interrupted = threading.Event()


@contextlib.contextmanager
def recorded():
    """Within the block, Ctrl-C is recorded as well as raised; the previous handler comes back after.

    Only where SIGINT has Python's default handler (an ignored or custom one is left alone).
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    _interrupted.clear()
    signal.signal(signal.SIGINT, _handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _handle(signum, frame):
    _interrupted.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt
