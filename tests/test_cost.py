"""--max-madds: a model too costly for the budget is refused before it trains, as a FAILED trial
with its reason, and such refusals never stop the search."""

import re

import keras
import pandas as pd
import pytest
from conftest import run_cli

from tuning.engine.cost import format_madds, multiply_adds, parse_madds


def test_multiply_adds_counts_convolutions_and_dense_layers_nested_too():
    inner = keras.Sequential(
        [keras.Input((16, 16, 8)), keras.layers.Flatten(), keras.layers.Dense(10)], name="head"
    )
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    model = keras.Model(inputs, inner(x))
    conv = 32 * 32 * 3 * 3 * 3 * 8
    depthwise = 32 * 32 * 3 * 3 * 8
    dense = 16 * 16 * 8 * 10
    assert multiply_adds(model) == conv + depthwise + dense


def test_the_seed_cnn_costs_what_its_layers_say():
    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters

    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    convs = 32 * 32 * 27 * 32 + 16 * 16 * 9 * 32 * 64 + 8 * 8 * 9 * 64 * 128
    dense = 4 * 4 * 128 * 256 + 256 * 100
    assert multiply_adds(model) == convs + dense


@pytest.mark.parametrize(
    "text, value",
    [("60M", 60_000_000), ("1.5G", 1_500_000_000), ("800k", 800_000), ("12345", 12345)],
)
def test_caps_are_read_with_their_unit(text, value):
    assert parse_madds(text) == value
    assert parse_madds(format_madds(value)) == pytest.approx(value, rel=1e-2)


@pytest.mark.parametrize("text", ["lots", "-5M", "0", "5T"])
def test_a_malformed_cap_is_a_one_line_usage_error(text, tmp_path):
    done = run_cli(
        *"search --method scratch --data synthetic --max-madds".split(),
        text,
        "--out",
        tmp_path,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--max-madds" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())


def test_costly_trials_are_refused_with_their_reason_and_cheap_ones_train(tmp_path):
    space = tmp_path / "space.toml"  # base_filters 16: 11-12M multiply-adds; 64: 173-176M
    space.write_text(
        'architecture = "plain"\noptimizer = "adam"\nschedule = "constant"\n'
        "conv_blocks = 2\nconvs_per_block = 3\n[base_filters]\nvalues = [16, 64]\n"
    )
    done = run_cli(
        *(
            "search --method scratch --data synthetic --train-size 600 "
            "--tuner random --max-trials 5 --max-epochs 1 --space"
        ).split(),
        space,
        "--max-madds",
        "50M",
        "--out",
        tmp_path / "runs",
    )
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(tmp_path / "runs" / "scratch" / "trials.csv")
    refused = trials[trials.base_filters == 64]
    assert len(refused) and (refused.status == "FAILED").all()
    assert refused.reason.str.contains("multiply-adds per image, over --max-madds 50M").all()
    assert (refused.seconds < 10).all()  # built, never trained
    assert (trials[trials.base_filters == 16].status == "COMPLETED").all()
    assert re.search(
        r"FAILED \(1\d\dM multiply-adds per image, over --max-madds 50M\)", done.stdout
    )
    first = done.stdout.splitlines()[0]  # what ran, on what: seed, data, oneDNN as TF reports it
    assert "seed 1" in first and "synthetic" in first and re.search(r"oneDNN (on|off) \(", first)


class _Trial:
    def __init__(self, status, message=""):
        self.status, self.message = status, message


class _Oracle:
    def __init__(self, trials):
        self.trials = {str(i): t for i, t in enumerate(trials)}
        self.end_order = list(self.trials)


def test_refused_trials_do_not_count_as_consecutive_failures():
    from tuning.engine.tuner import (
        MAX_CONSECUTIVE_FAILED,
        ConsecutiveFailures,
        check_consecutive_failures,
    )

    refused = _Trial("FAILED", "FailedTrialError: 302M multiply-adds per image, over ...")
    broken = _Trial("FAILED", "ValueError: something is wrong")
    check_consecutive_failures(_Oracle([refused] * 20 + [broken] * (MAX_CONSECUTIVE_FAILED - 1)))
    with pytest.raises(ConsecutiveFailures, match="consecutive failures"):
        check_consecutive_failures(_Oracle([broken, refused] * MAX_CONSECUTIVE_FAILED))


def test_hyperband_draws_again_for_a_refused_trial_so_every_round_runs(tmp_path):
    """Without the redraw, a first round of 3 with one refused trial promotes no one (keras-tuner
    promotes only while more completed than the next round throws away)."""
    import keras_tuner as kt

    from tuning.engine.tuner import redraw_refused
    from tuning.host.internals import set_project_dir

    oracle = kt.oracles.HyperbandOracle(
        kt.Objective("val_accuracy", "max"), max_epochs=3, factor=3, seed=1
    )
    oracle.hyperparameters.Float("dropout", 0.0, 0.5)
    set_project_dir(oracle, str(tmp_path), "run")
    redraw_refused(oracle)

    def run(trial, score=None):
        if score is None:  # refused, as `tuning.engine.cost` refuses
            trial.status, trial.message = "FAILED", "FailedTrialError: 9M multiply-adds per image"
        else:
            oracle.update_trial(trial.trial_id, {"val_accuracy": score})
            trial.status = "COMPLETED"
        oracle.end_trial(trial)

    first_round = []
    for score in (0.2, None, 0.4, None, 0.3):
        trial = oracle.create_trial("tuner0")
        assert trial.hyperparameters.values["tuner/epochs"] == 1  # still the first round
        first_round.append(trial)
        run(trial, score)
    promoted = oracle.create_trial("tuner0")
    assert promoted.hyperparameters.values["tuner/initial_epoch"] == 1
    assert promoted.hyperparameters.values["tuner/trial_id"] == first_round[2].trial_id
