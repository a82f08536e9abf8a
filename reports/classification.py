"""scikit-learn classification reports over the classes (and, where the data has them, the
superclasses) the test data holds: all 100 and 20 of CIFAR-100, or a dataset's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tuning.data.labels import LabelNames


def write_classification_reports(
    folder: Path, fine: np.ndarray, predicted: np.ndarray, names: LabelNames
) -> object:
    """Writes `classification_report.{txt,csv}` and, where the data has superclasses,
    `coarse_classification_report.{txt,csv}`.

    Returns:
        The fine report as a DataFrame (one row per class, then the averages).
    """
    fine_frame = _write(folder / "classification_report", fine, predicted, names.fine)
    if names.has_superclasses:
        to_coarse = names.fine_to_coarse
        stem = folder / "coarse_classification_report"
        _write(stem, to_coarse[fine], to_coarse[predicted], names.coarse)
    return fine_frame


def _write(stem: Path, true: np.ndarray, predicted: np.ndarray, class_names) -> object:
    import pandas as pd
    from sklearn.metrics import classification_report

    present = np.unique(true)  # a small dataset's absent classes would drag every average down
    kwargs = dict(labels=present, target_names=[class_names[i] for i in present], zero_division=0)
    stem.with_suffix(".txt").write_text(classification_report(true, predicted, digits=4, **kwargs))
    frame = pd.DataFrame(
        classification_report(true, predicted, output_dict=True, **kwargs)
    ).transpose()
    frame.to_csv(stem.with_suffix(".csv"), index_label="class")
    return frame
