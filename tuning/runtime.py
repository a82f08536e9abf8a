"""Importing TensorFlow without the start-up chatter its C++ core writes to stderr."""

from __future__ import annotations

import os
import sys


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
