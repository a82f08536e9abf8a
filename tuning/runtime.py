"""TensorFlow housekeeping: a quiet import, and memory that trials would otherwise keep."""

from __future__ import annotations

import os
import sys

SYSTEM_ALLOCATOR = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
MMAP_THRESHOLD_BYTES = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_freed_memory() -> bool:
    """With TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1, lets a finished trial's memory go back to the system.

    TensorFlow's oneDNN build (the default on x86) keeps tensors of 256 KB and more in its own
    pool, which never shrinks: a search's memory stays at what its largest model needed (+443 MB
    over 30 random scratch trials, `speed-2026-11-24.json`). TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1 makes
    it use malloc; on its own that gave +339 MB, glibc keeping the freed blocks in its heap. This
    adds a fixed mmap threshold, so such blocks are unmapped when freed: +78 MB
    (`speed-system-allocator-2026-11-25.json`), but every large tensor is then fresh pages, and
    that run's epochs were 2.5-6x slower. Opt-in, for a long search on a machine short of memory.
    Runs on `import tuning`, before TensorFlow allocates. Returns whether glibc was told.
    """
    if not lean_memory_requested():
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (macOS, musl): malloc's own policy
        return False


def lean_memory_requested() -> bool:
    """Whether the user set TF_ONEDNN_USE_SYSTEM_ALLOCATOR to 1 / true (as TensorFlow reads it)."""
    return os.environ.get(SYSTEM_ALLOCATOR, "").strip().lower() in ("1", "true")


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with file descriptor 2 pointed at /dev/null for the import only.

    TensorFlow's oneDNN and absl start-up notices ignore TF_CPP_MIN_LOG_LEVEL; hiding them keeps
    our own one-line errors the only thing on stderr. Python errors raised by the import are
    raised after stderr is restored, so nothing that matters is lost.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def forget_custom_gradients() -> int:
    """Drops TensorFlow's global registrations of custom gradients. Returns how many.

    Tracing a Keras train step under tf.distribute (Keras always uses a strategy, the default one
    on one device) registers a `tf.custom_gradient` for each `all_reduce`, in a global registry
    that is never emptied; each registration keeps its whole traced graph alive. Measured here:
    about 18 MB per trained model with glibc, 1,650 MB over a 30-trial search. Call it between
    trials, when no graph still being traced needs them (finished trials' graphs are dead).
    """
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry  # private: tests/test_search.py checks it
    stale = [name for name in registry if name.startswith("CustomGradient-")]
    for name in stale:
        del registry[name]
    return len(stale)
