"""End-to-end searches on the synthetic stand-in, checked from what they leave on disk."""

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SEARCH, run_cli, tree_digest

import search_spaces
from tuning.config import SearchConfig
from tuning.data.sources import load_search_data
from tuning.errors import SearchFailed

TINY = SMALL_SEARCH


@pytest.mark.parametrize("method", ["scratch", "feature", "finetune"])
def test_search_leaves_completed_trials_and_best_hyperparameters(runs, method):
    trials = pd.read_csv(runs / method / "trials.csv", dtype={"trial_id": str})
    completed = trials[trials.status == "COMPLETED"]
    assert len(completed) >= 2
    assert completed.val_accuracy.between(0, 1).all() and (completed.seconds > 0).all()
    best = json.loads((runs / method / "best_hyperparameters.json").read_text())
    assert best["val_accuracy"] == pytest.approx(completed.val_accuracy.max())
    assert best["data"].startswith("synthetic") and best["seed"] == 1
    assert not any(name.startswith("tuner/") for name in best["hyperparameters"])


def test_finetune_rows_carry_unfreeze_depth_and_both_learning_rates(runs):
    trials = pd.read_csv(runs / "finetune" / "trials.csv")
    for column in ("unfreeze_blocks", "head_learning_rate", "finetune_learning_rate"):
        assert trials[column].notna().all(), column
    assert trials.unfreeze_blocks.between(1, 3).all()


@pytest.mark.parametrize("method", ["scratch", "finetune"])
def test_best_model_reloads_safely_and_predicts(runs, method):
    model = keras.saving.load_model(runs / method / "best_model.keras", safe_mode=True)
    data = load_search_data("synthetic", train_size=1000, seed=1)
    probabilities = model.predict(data.validation.images[:16].astype("float32"), verbose=0)
    assert probabilities.shape == (16, 100)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


def _hparams_sessions(log_dir):
    """{trial_id: (hparams, validation accuracies)} as TensorBoard's HParams plugin reads them."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    sessions = {}
    for run in sorted(log_dir.glob("*/execution0")):
        events = EventAccumulator(str(run), size_guidance={"tensors": 0}).Reload()
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        hparams = {
            k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
            for k, v in start.hparams.items()
        }
        val = EventAccumulator(str(run / "validation"), size_guidance={"tensors": 0}).Reload()
        accuracy = [float(tf.make_ndarray(e.tensor_proto)) for e in val.Tensors("epoch_accuracy")]
        sessions[run.parent.name] = (hparams, accuracy)
    return sessions


@pytest.mark.parametrize("method", ["scratch", "finetune"])
def test_tensorboard_hparams_show_every_completed_trial(runs, method):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    log_dir = runs / method / "tensorboard"
    trials = pd.read_csv(runs / method / "trials.csv", dtype={"trial_id": str})
    sessions = _hparams_sessions(log_dir)
    space = [
        c
        for c in trials.columns
        if c
        not in (
            "trial_id",
            "status",
            "val_accuracy",
            "val_loss",
            "val_top5",
            "epochs_run",
            "head_epochs_run",
            "finetune_epochs_run",
            "seconds",
            "reason",
        )
        and not c.startswith("tuner/")
    ]
    for row in trials[trials.status == "COMPLETED"].itertuples():
        hparams, accuracy = sessions[row.trial_id]
        assert set(space) <= set(hparams)
        assert max(accuracy) == pytest.approx(row.val_accuracy, abs=1e-6)
    experiment = EventAccumulator(str(log_dir)).Reload().PluginTagToContent(metadata.PLUGIN_NAME)
    config = metadata.parse_experiment_plugin_data(experiment[metadata.EXPERIMENT_TAG])
    assert set(space) <= {h.name for h in config.hparam_infos}
    assert {m.display_name for m in config.metric_infos} >= {"val_accuracy", "val_loss"}


def test_every_finetune_epoch_the_tuner_counted_fine_tuned(runs):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trials = pd.read_csv(runs / "finetune" / "trials.csv", dtype={"trial_id": str})
    completed = trials[trials.status == "COMPLETED"]
    assert len(completed) and (completed.finetune_epochs_run >= 1).all()
    assert (completed.finetune_epochs_run == completed.epochs_run).all()
    assert (completed.head_epochs_run == completed.head_epochs).all()  # new trials: warm-up
    best = json.loads((runs / "finetune" / "best_hyperparameters.json").read_text())
    assert best["trial_id"] in set(completed.trial_id)  # so a fine-tuned one
    for row in completed.itertuples():
        run = runs / "finetune" / "tensorboard" / row.trial_id / "execution0"
        train = EventAccumulator(str(run / "train"), size_guidance={"tensors": 0}).Reload()
        rates = [
            float(tf.make_ndarray(e.tensor_proto)) for e in train.Tensors("epoch_learning_rate")
        ]
        assert len(rates) == row.epochs_run
        assert rates == pytest.approx([row.finetune_learning_rate] * len(rates), rel=1e-5)
        val = EventAccumulator(str(run / "validation"), size_guidance={"tensors": 0}).Reload()
        [image] = val.Tensors("validation_superclass_confusion")
        width, height = tf.make_ndarray(image.tensor_proto)[:2]
        assert (int(width), int(height)) == (160, 160)


def test_summary_prints_the_best_trials_from_disk(runs):
    done = run_cli("summary", "--method", "finetune", "--out", runs)
    assert done.returncode == 0, done.stderr
    best = json.loads((runs / "finetune" / "best_hyperparameters.json").read_text())
    first_row = done.stdout.splitlines()[3]
    assert first_row.split()[0] == best["trial_id"]
    assert "2 completed" in done.stdout


def test_resume_keeps_completed_trials(runs):
    before = tree_digest(runs / "scratch")
    done = run_cli("search", "--method", "scratch", *TINY, "--out", runs)
    assert done.returncode == 0, done.stderr
    trials = {k: v for k, v in before.items() if k.startswith("trial_")}
    after = tree_digest(runs / "scratch")
    assert {k: after[k] for k in trials} == trials
    assert len(pd.read_csv(runs / "scratch" / "trials.csv")) == 2


def test_resuming_with_another_method_setting_is_refused(runs):
    before = tree_digest(runs / "scratch")
    done = run_cli("search", "--method", "scratch", *TINY, "--max-epochs", "3", "--out", runs)
    assert done.returncode == 2
    assert "--overwrite" in done.stderr and "max_epochs 2 (now 3)" in done.stderr
    assert tree_digest(runs / "scratch") == before


class _NaNModel(search_spaces.scratch.ScratchCNN):
    """A scratch model whose predictions are scaled by NaN: every loss is NaN."""

    def build(self, hp):
        model = super().build(hp)
        poisoned = keras.layers.Rescaling(math.nan)(model.outputs[0])
        return search_spaces.blocks.compile_classifier(keras.Model(model.inputs, poisoned), 1e-3)


def _nan_search(tmp_path, monkeypatch, max_trials):
    """Runs a random search in which every trial's loss is NaN."""
    from tuning.engine import search

    monkeypatch.setattr(search_spaces, "create_hypermodel", lambda *a, **k: _NaNModel())
    config = SearchConfig(
        method="scratch",
        tuner="random",
        max_trials=max_trials,
        max_epochs=1,
        data="synthetic",
        train_size=400,
        out=str(tmp_path),
        verbose=0,
    )
    search.run_search(config, log=None)


def test_nan_trials_fail_and_never_become_best(tmp_path, monkeypatch):
    with pytest.raises(SearchFailed, match="no trial completed"):
        _nan_search(tmp_path, monkeypatch, max_trials=2)
    trials = pd.read_csv(tmp_path / "scratch" / "trials.csv")
    assert (trials.status == "FAILED").all() and len(trials) == 2
    assert trials.reason.str.contains("loss became nan").all()
    assert not (tmp_path / "scratch" / "best_hyperparameters.json").exists()
    assert not (tmp_path / "scratch" / "best_model.keras").exists()


@pytest.mark.slow
def test_consecutive_failures_stop_the_search_with_a_clear_message(tmp_path, monkeypatch):
    with pytest.raises(SearchFailed, match="consecutive failures.*trials.csv"):
        _nan_search(tmp_path, monkeypatch, max_trials=9)
    trials = pd.read_csv(tmp_path / "scratch" / "trials.csv")
    assert len(trials) < 9 and (trials.status == "FAILED").all()


def test_trials_leave_no_custom_gradient_registrations_behind():
    """TensorFlow keeps each traced train step alive through these; the search drops them."""
    import keras

    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters
    from tuning.host.internals import gradient_registry
    from tuning.host.runtime import forget_custom_gradients

    x, y = np.zeros((8, 32, 32, 3), "float32"), np.zeros(8, "int64")
    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    model.fit(x, y, epochs=1, verbose=0)
    assert any(name.startswith("CustomGradient-") for name in gradient_registry())
    assert forget_custom_gradients() > 0
    assert not any(n.startswith("CustomGradient-") for n in gradient_registry())
    keras.backend.clear_session()
    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_a_failed_trial_that_scored_higher_is_never_the_best(tmp_path):
    """A trial that logged a high val accuracy and then failed (e.g. NaN in a later epoch, or
    a score a worker reported before dying) ranks below every completed trial."""
    import keras_tuner as kt

    from tuning.engine.records import TrialRecorder

    trials = []
    for trial_id, status, score in (
        ("0000", "FAILED", 0.9),
        ("0001", "COMPLETED", 0.5),
        ("0002", "COMPLETED", 0.4),
    ):
        hp = kt.HyperParameters()
        hp.Fixed("dropout", float(trial_id[-1]) / 10)
        trial = kt.engine.trial.Trial(hp, trial_id=trial_id, status=status)
        trial.metrics.register("val_accuracy", "max")
        trial.metrics.update("val_accuracy", score, step=0)
        trial.score, trial.best_step = score, 0
        trials.append(trial)
    recorder = TrialRecorder(tmp_path, 3, 3, {"data": "synthetic"}, log=None)
    recorder.export(trials)
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    assert best["trial_id"] == "0001" and best["val_accuracy"] == 0.5
    rows = pd.read_csv(tmp_path / "trials.csv", dtype={"trial_id": str}).set_index("trial_id")
    assert math.isnan(rows.loc["0000", "val_accuracy"])  # a failed trial shows no score to rank
