"""Everything a report folder holds for one retrained configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reports import plots
from reports.classification import write_classification_reports
from reports.gradcam import grad_cam
from reports.page import write_index
from tuning.rundir import CLASS_NAMES_FILE

GRADCAM_IMAGES = 8
LABELLED_CLASSES = 30  # a confusion matrix names its classes up to this many


def write_artifacts(folder: Path, retrained, probabilities, test, metrics: dict, names) -> None:
    """metrics.json, classification reports, predictions, history, model, plots, index.html."""
    import pandas as pd

    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    pd.DataFrame(
        {
            "test_index": np.arange(len(test)),
            "true": test.fine,
            "true_name": np.array(names.fine)[test.fine],
            "predicted": predicted,
            "predicted_name": np.array(names.fine)[predicted],
            "confidence": confidence,
        }
    ).to_csv(folder / "predictions.csv", index=False)
    history = pd.DataFrame(retrained.history)
    history.index = np.arange(1, len(history) + 1)
    history.to_csv(folder / "history.csv", index_label="epoch")
    retrained.model.save(folder / "model.keras")
    report = write_classification_reports(folder, test.fine, predicted, names)
    title = f"{metrics['method']} rank {metrics['rank']} (trial {metrics['trial_id']})"
    plots.plot_curves(retrained.history, folder / "curves.png", title)
    if names.has_superclasses:
        coarse = names.fine_to_coarse
        plots.plot_confusion(
            coarse[test.fine],
            coarse[predicted],
            names.coarse,
            folder / "confusion_coarse.png",
            "superclass confusion",
            labelled=True,
        )
    classes = len(names.fine)
    plots.plot_confusion(
        test.fine,
        predicted,
        names.fine,
        folder / "confusion_fine.png",
        f"class confusion ({classes} x {classes})",
        labelled=classes <= LABELLED_CLASSES,
    )
    plots.plot_per_class_f1(report, folder / "per_class_f1.png")
    plots.plot_examples(
        test.images, test.fine, predicted, confidence, names.fine, folder / "examples.png"
    )
    shown = slice(0, GRADCAM_IMAGES)
    plots.plot_gradcam(
        test.images[shown],
        test.fine[shown],
        grad_cam(retrained.model, test.images[shown]),
        names.fine,
        folder / "gradcam.png",
    )
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (folder / CLASS_NAMES_FILE).write_text(json.dumps(list(names.fine)))
    write_index(folder, metrics, report)
