"""Test-set metrics from predicted probabilities, fine and coarse."""

from __future__ import annotations

import numpy as np


def test_metrics(probabilities: np.ndarray, fine: np.ndarray, fine_to_coarse=None) -> dict:
    """Loss, accuracy, top-5, macro / weighted precision, recall and F1, and where the data has
    superclasses (`fine_to_coarse`), coarse accuracy: each fine prediction's superclass."""
    from sklearn.metrics import precision_recall_fscore_support

    predicted = probabilities.argmax(axis=1)
    picked = np.clip(probabilities[np.arange(len(fine)), fine], 1e-12, 1.0)
    top5 = np.argsort(probabilities, axis=1)[:, -5:]
    metrics = {
        "test_loss": float(-np.log(picked).mean()),
        "test_accuracy": float((predicted == fine).mean()),
        "test_top5_accuracy": float((top5 == fine[:, None]).any(axis=1).mean()),
    }
    if fine_to_coarse is not None:
        hits = fine_to_coarse[predicted] == fine_to_coarse[fine]
        metrics["coarse_accuracy"] = float(hits.mean())
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            fine,
            predicted,
            average=average,
            labels=np.unique(fine),  # classes held
            zero_division=0,
        )
        metrics.update(
            {
                f"{average}_precision": float(p),
                f"{average}_recall": float(r),
                f"{average}_f1": float(f),
            }
        )
    return metrics


def mean_and_std(runs: list[dict]) -> dict:
    """{metric: {"mean", "std"}} over seeds, for every numeric metric the runs share."""
    keys = [
        k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return {
        k: {
            "mean": float(np.mean([r[k] for r in runs])),
            "std": float(np.std([r[k] for r in runs])),
        }
        for k in keys
    }
