"""The official CIFAR-100 class names: 100 fine labels in 20 superclasses, shipped with us."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

NUM_FINE, NUM_COARSE = 100, 20


@dataclass(frozen=True)
class LabelNames:
    """Names by label index, and the superclass of every fine class."""

    fine: tuple[str, ...]
    coarse: tuple[str, ...]
    fine_to_coarse: np.ndarray  # int64 [100]


@functools.cache
def label_names() -> LabelNames:
    """Reads `label_names.csv` (index order of the official release's `meta` file)."""
    text = resources.files("tuning.data").joinpath("label_names.csv").read_text()
    rows = sorted(csv.DictReader(text.splitlines()), key=lambda r: int(r["fine_label"]))
    coarse = {int(r["coarse_label"]): r["coarse_name"] for r in rows}
    mapping = np.array([int(r["coarse_label"]) for r in rows], dtype=np.int64)
    mapping.flags.writeable = False
    return LabelNames(
        fine=tuple(r["fine_name"] for r in rows),
        coarse=tuple(coarse[k] for k in range(NUM_COARSE)),
        fine_to_coarse=mapping,
    )
