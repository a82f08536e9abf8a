"""TensorFlow housekeeping: a quiet import, and memory that trials would otherwise keep."""

from __future__ import annotations

import functools
import gc
import logging
import os
import sys

SYSTEM_ALLOCATOR = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def prefer_malloc() -> None:
    """Has tensors come from malloc, not TensorFlow's pool, unless the user set SYSTEM_ALLOCATOR.

    TensorFlow's oneDNN build (the default on x86) keeps tensors of 256 KB and more in its own pool,
    which never shrinks: a search would hold what its largest model needed until it ends. From
    malloc, `release_memory` gives each finished trial's memory back, for somewhat slower cached
    fine-tune epochs; TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0 keeps the pool (the trade-off, measured:
    benchmarks/README.md, "Where a search's time goes"). TensorFlow reads the setting at its first
    allocation, so this runs on `import tuning`.
    """
    os.environ.setdefault(SYSTEM_ALLOCATOR, "1")


def release_memory() -> bool:
    """Gives a finished trial's memory back, when malloc holds tensors; call between trials.

    A finished trial's model is freed by Python's cycle collector, and glibc's `malloc_trim`
    returns the pages its heap kept. Returns whether memory was released.
    """
    libc = _glibc() if malloc_holds_tensors() else None
    if libc is None:
        return False
    gc.collect()
    libc.malloc_trim(0)
    return True


def malloc_holds_tensors() -> bool:
    """Whether TF_ONEDNN_USE_SYSTEM_ALLOCATOR is 1 / true (as TensorFlow reads it)."""
    return os.environ.get(SYSTEM_ALLOCATOR, "").strip().lower() in ("1", "true")


@functools.cache
def _glibc():
    """glibc through ctypes, or None (macOS, musl: their malloc's own policy applies)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


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


class _RetracingNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def hide_retracing_notices() -> None:
    """Drops TensorFlow's "triggered tf.function retracing" warning from its logger: a search
    builds a model per trial (the planner several in a row), each tracing its own step
    functions, which is what the warning counts, not a fault a user could act on."""
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingNotice) for f in logger.filters):
        logger.addFilter(_RetracingNotice())


def forget_custom_gradients() -> int:
    """Drops TensorFlow's global registrations of custom gradients. Returns how many.

    Tracing a Keras train step under tf.distribute (Keras always uses a strategy, the default one on
    one device) registers a `tf.custom_gradient` for each `all_reduce`, in a global registry that is
    never emptied; each registration keeps its whole traced graph alive, so a search's memory would
    grow with every trial (benchmarks/README.md, "Where a search's time goes"). Call it between
    trials, when no graph still being traced needs them (finished trials' graphs are dead).
    """
    from tuning.host.internals import gradient_registry

    registry = gradient_registry()
    stale = [name for name in registry if name.startswith("CustomGradient-")]
    for name in stale:
        del registry[name]
    return len(stale)
