"""Class names: CIFAR-100's 100 in 20 superclasses (shipped with us), or a dataset's own."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

NUM_FINE, NUM_COARSE = 100, 20


@dataclass(frozen=True)
class LabelNames:
    """Names by label index, and where the data has superclasses, the superclass of each."""

    fine: tuple[str, ...]
    coarse: tuple[str, ...] | None = None
    fine_to_coarse: np.ndarray | None = None  # int64 [classes]

    @property
    def has_superclasses(self) -> bool:
        return self.coarse is not None

    def coarse_of(self, fine: np.ndarray) -> np.ndarray:
        """The superclass labels of `fine` (zeros without superclasses)."""
        fine = np.asarray(fine, np.int64)
        return self.fine_to_coarse[fine] if self.has_superclasses else np.zeros_like(fine)


def names_with_superclasses(classes, pairs: dict[str, str], where: str) -> LabelNames:
    """`classes` grouped by `pairs` (class -> superclass, e.g. a `superclasses.csv`); every
    class needs one, and only known classes may be named (ConfigError naming `where`)."""
    from tuning.errors import ConfigError

    unknown = sorted(set(pairs) - set(classes))
    missing = sorted(set(classes) - set(pairs))
    if unknown or missing:
        problem = f"names unknown classes {unknown}" if unknown else f"misses classes {missing}"
        raise ConfigError(f"{{data}} {where} {problem}")
    coarse = tuple(sorted(set(pairs.values())))
    mapping = np.array([coarse.index(pairs[name]) for name in classes], np.int64)
    mapping.flags.writeable = False
    return LabelNames(tuple(classes), coarse, mapping)


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
