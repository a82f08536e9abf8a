"""Reports: retrain the winner, test once, write every file; read only what the search wrote."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import REPORT_FILES, predicts_as_reported, run_cli, tree_digest

TEST_IMAGES = 10_000


@pytest.fixture(scope="session")
def reported(runs):
    """The scratch search reported (tested on all 10,000 images), then the summary."""
    done = run_cli("--method", "scratch", "--out", runs, "--epochs", "1", module="reports")
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    done = run_cli("summary", "--out", runs, module="reports")
    assert done.returncode == 0, done.stderr
    return runs


def test_report_writes_every_file_and_its_numbers_add_up(reported):
    folder = reported / "scratch" / "report"
    assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)
    metrics = json.loads((folder / "metrics.json").read_text())
    predictions = pd.read_csv(folder / "predictions.csv")
    assert len(predictions) == TEST_IMAGES == metrics["test_images"]
    assert metrics["test_accuracy"] == pytest.approx(
        (predictions.true == predictions.predicted).mean()
    )
    report = pd.read_csv(folder / "classification_report.csv", index_col="class")
    assert report.iloc[:100]["support"].sum() == TEST_IMAGES
    coarse = pd.read_csv(folder / "coarse_classification_report.csv", index_col="class")
    assert coarse.iloc[:20]["support"].sum() == TEST_IMAGES
    assert metrics["data"].startswith("synthetic") and metrics["seed"] == 1
    for key in (
        "test_loss",
        "test_top5_accuracy",
        "macro_f1",
        "weighted_f1",
        "coarse_accuracy",
        "parameters",
        "retrain_seconds",
        "epochs",
        "hyperparameters",
    ):
        assert key in metrics
    page = (folder / "index.html").read_text()
    assert all(f"src='{png}'" in page for png in REPORT_FILES if png.endswith(".png"))


def test_reported_model_reloads_and_predicts_as_reported(reported):
    predicts_as_reported(reported / "scratch" / "report")


def test_summary_puts_the_methods_beside_the_seed_write_up(reported):
    # the backbone methods' labels: tests/test_backbones.py
    table = pd.read_csv(reported / "summary.csv")
    assert "CNN from scratch" in set(table.method)
    published = table[table.method.str.contains("published")]
    assert list(published.method) == [
        "CNN from scratch (seed write-up, published)",
        "Feature extraction (VGG-16) (seed write-up, published)",
        "Transfer learning + fine-tuning (VGG-16) (seed write-up, published)",
    ]
    assert sorted(published["test accuracy"].round(3)) == [0.401, 0.478, 0.575]
    ours = table[~table.method.str.contains("published")]
    assert ours.data.str.startswith("synthetic").all() and (ours.trials == 2).all()
    assert "<table" in (reported / "summary.html").read_text()
    assert "| method |" in (reported / "summary.md").read_text()


@pytest.mark.slow  # retrains twice: keeps the default suite under 10 minutes
def test_seeds_report_mean_and_std(runs, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(runs / "scratch", out / "scratch", ignore=shutil.ignore_patterns("report"))
    done = run_cli(
        "--method", "scratch", "--out", out, "--epochs", "1", "--seeds", "2", module="reports"
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "scratch" / "report" / "metrics.json").read_text())
    assert [run["seed"] for run in metrics["per_seed"]] == [1, 2]
    accuracies = [run["test_accuracy"] for run in metrics["per_seed"]]
    assert metrics["over_seeds"]["test_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert metrics["over_seeds"]["test_accuracy"]["std"] == pytest.approx(np.std(accuracies))


def test_train_on_validation_and_tta_change_the_model_and_are_recorded(reported, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(reported / "scratch", out / "scratch", ignore=shutil.ignore_patterns("report"))
    flags = "--method scratch --epochs 1 --train-on-validation --tta".split()
    done = run_cli(*flags, "--out", out, module="reports")
    assert done.returncode == 0, done.stderr
    assert "on train + validation (1250 images) for 1 epochs" in done.stdout
    assert "flip TTA" in done.stdout
    plain = json.loads((reported / "scratch" / "report" / "metrics.json").read_text())
    folder = out / "scratch" / "report"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert (plain["train_on_validation"], plain["tta"], plain["train_images"]) == (
        False,
        False,
        1000,
    )
    assert (metrics["train_on_validation"], metrics["tta"], metrics["train_images"]) == (
        True,
        True,
        1250,
    )
    assert metrics["test_loss"] != plain["test_loss"]
    # validation was trained on: no score of it is passed off as held out
    assert not any(c.startswith("val_") for c in pd.read_csv(folder / "history.csv").columns)
    page = (folder / "index.html").read_text()
    assert "train + validation (1250 images)" in page and "flip TTA" in page


def test_tta_averages_each_image_with_its_mirror():
    import keras

    from reports.report import predict
    from tuning.data.sources import Split

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    test = Split(images, np.zeros(6, np.int64), np.zeros(6, np.int64))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4, "softmax")]
    )
    once = model.predict(images.astype("float32"), verbose=0)
    mirrored = model.predict(images[:, :, ::-1].astype("float32"), verbose=0)
    assert not np.allclose(once, mirrored)
    np.testing.assert_allclose(predict(model, test), once, rtol=1e-5)
    np.testing.assert_allclose(predict(model, test, tta=True), (once + mirrored) / 2, rtol=1e-5)


def test_a_final_model_trains_to_the_searchs_best_epoch_only_after_a_full_budget():
    from reports.retrain import final_epochs

    assert final_epochs(trained_epochs=9, best_epochs=7, budget=9) == 7
    assert final_epochs(trained_epochs=3, best_epochs=3, budget=9) == 9  # a short rung: no guide
    assert final_epochs(trained_epochs=9, best_epochs=None, budget=9) == 9
    assert final_epochs(trained_epochs=9, best_epochs=9, budget=15) == 15  # report's --epochs


def _one_line_exit_2(done):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_missing_search_names_the_command_to_run(tmp_path):
    line = _one_line_exit_2(run_cli("--method", "feature", "--out", tmp_path, module="reports"))
    assert "python -m tuning search --method feature" in line


def test_a_search_whose_trials_all_failed_is_refused(runs, tmp_path):
    run_dir = tmp_path / "scratch"
    shutil.copytree(runs / "scratch", run_dir, ignore=shutil.ignore_patterns("report"))
    trials = pd.read_csv(run_dir / "trials.csv")
    trials["status"] = "FAILED"
    trials.to_csv(run_dir / "trials.csv", index=False)
    line = _one_line_exit_2(run_cli("--method", "scratch", "--out", tmp_path, module="reports"))
    assert "failed" in line


def test_unavailable_test_data_leaves_the_previous_report_intact(reported, tmp_path):
    run_dir = tmp_path / "scratch"
    shutil.copytree(reported / "scratch", run_dir)
    config = json.loads((run_dir / "search_config.json").read_text())
    config["data"] = str(tmp_path / "gone.npz")
    (run_dir / "search_config.json").write_text(json.dumps(config))
    before = tree_digest(run_dir)
    line = _one_line_exit_2(run_cli("--method", "scratch", "--out", tmp_path, module="reports"))
    assert "gone.npz" in line
    assert tree_digest(run_dir) == before


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (apt-get install chromium)",
)
def test_report_pages_render_in_headless_chromium(reported, tmp_path):
    for page in (reported / "scratch" / "report" / "index.html", reported / "summary.html"):
        shot = tmp_path / f"{page.parent.name}.png"
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=5000",
                f"--screenshot={shot}",
                "--window-size=1400,2400",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )
        from PIL import Image

        pixels = np.asarray(Image.open(shot).convert("L"))
        assert pixels.shape == (2400, 1400)
        assert (pixels < 250).mean() > 0.02, f"{shot} is blank"
