"""What a benchmark ran on, recorded beside its numbers."""

from __future__ import annotations

import os
import platform


def machine_facts() -> dict:
    import keras
    import tensorflow as tf

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "memory_gib": round(memory, 1), "gpus": len(tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "platform": platform.platform()}
