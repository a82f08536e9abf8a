"""What a benchmark ran on, recorded beside its numbers, and where its JSON goes."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save_result(name: str, record: dict, folder: Path = RESULTS) -> Path:
    """Writes `folder/<name>-<date>.json` with the date and this machine's facts added."""
    date = datetime.date.today().isoformat()
    record = {"benchmark": name, "date": date, **record, "machine": machine_facts()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{date}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path


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
            "keras": keras.__version__, "platform": platform.platform(),
            "allocator": _allocator()}


def _allocator() -> str:
    """Where freed tensor memory goes (`tuning.runtime.release_memory`)."""
    from tuning.runtime import SYSTEM_ALLOCATOR, malloc_holds_tensors

    if malloc_holds_tensors():
        return f"malloc ({SYSTEM_ALLOCATOR}=1, the default), trimmed between trials"
    return f"TensorFlow's oneDNN pool (BFC, {SYSTEM_ALLOCATOR}=0)"
