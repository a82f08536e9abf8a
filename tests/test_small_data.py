"""A user's small dataset: a few classes, a few hundred images; defaults adapt, reports count only
the classes it holds."""

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from reports.metrics import test_metrics as compute_metrics
from tuning.data.labels import label_names
from tuning.data.sources import load_search_data
from tuning.errors import UsageError

CLASSES, PER_CLASS = 10, 60


def _small_set(path, seed=0):
    """600 training and 200 test images of 10 classes, each class its own colour plus noise."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (CLASSES, 3))

    def images(per_class):
        labels = np.repeat(np.arange(CLASSES) * 7, per_class)  # classes 0, 7, ..., 63
        noise = rng.normal(0, 40, (len(labels), 32, 32, 3))
        pixels = colours[labels // 7][:, None, None, :] + noise
        return np.clip(pixels, 0, 255).astype(np.uint8), labels

    x_train, y_train = images(PER_CLASS)
    x_test, y_test = images(20)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_default_validation_size_and_bounds_follow_the_data(tmp_path):
    path = _small_set(tmp_path / "small.npz")
    data = load_search_data(str(path), seed=1)
    assert (len(data.train), len(data.validation)) == (450, 150)  # a quarter, not 5,000
    assert set(np.unique(data.validation.fine)) == set(np.arange(CLASSES) * 7)
    assert "10 of the 100 classes" in data.describe() and "CIFAR-100" not in data.describe()
    with pytest.raises(UsageError, match=r"between 10 \(one image per class present\)"):
        load_search_data(str(path), val_size=5, seed=1)


def test_averages_count_only_the_classes_the_test_data_holds():
    fine = np.repeat(np.arange(CLASSES) * 7, 3)
    probabilities = np.full((len(fine), 100), 0.001)
    probabilities[np.arange(len(fine)), fine] = 0.9
    metrics = compute_metrics(probabilities, fine, label_names().fine_to_coarse)
    assert metrics["macro_f1"] == pytest.approx(1.0) and metrics["macro_recall"] == 1.0


@pytest.mark.slow
def test_a_small_dataset_searches_reports_and_predicts(tmp_path):
    from PIL import Image

    path = _small_set(tmp_path / "small.npz")
    out = tmp_path / "runs"
    done = run_cli(
        *"search --method scratch --max-madds 25M --max-epochs 2 --data".split(), path, "--out", out
    )
    assert done.returncode == 0, done.stderr
    assert "450 train / 150 validation images, 10 of the 100 classes" in done.stdout
    done = run_cli("--method", "scratch", "--out", out, "--epochs", "2", module="reports")
    assert done.returncode == 0, done.stderr
    report = pd.read_csv(
        out / "scratch" / "report" / "classification_report.csv", index_col="class"
    )
    assert len(report) == CLASSES + 3  # the classes held, then accuracy, macro and weighted
    assert report.loc["macro avg", "support"] == 200
    picture = tmp_path / "one.png"
    Image.fromarray(np.load(path)["x_test"][0]).save(picture)
    done = run_cli("predict", "--model", out / "scratch" / "best_model.keras", picture)
    assert done.returncode == 0, done.stderr and "one.png" in done.stdout
