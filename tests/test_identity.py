"""Resuming (or joining) a run directory is refused unless it is the same search."""

import dataclasses
import os

import numpy as np
import pytest

from tuning.config import SearchConfig
from tuning.errors import UsageError
from tuning.rundir import CONFIG_FILE
from tuning.rundir.identity import check_resumable, config_record


@pytest.fixture
def started(tmp_path):
    """A search's recorded settings, naming a space file, a weights file and a data file."""
    space = tmp_path / "space.toml"
    space.write_text("dropout = 0.3\n")
    weights = tmp_path / "vgg16_notop.h5"
    weights.write_bytes(b"weights v1")
    data = tmp_path / "mine.npz"
    np.savez(data, x_train=np.zeros((2, 32, 32, 3), np.uint8), y_train=np.zeros(2))
    config = SearchConfig(
        method="finetune",
        data=str(data),
        weights=str(weights),
        space=str(space),
        out=str(tmp_path / "runs"),
    )
    config.run_dir.mkdir(parents=True)
    (config.run_dir / CONFIG_FILE).write_text(config_record(config))
    return config


@pytest.mark.parametrize(
    "change, named",
    [
        ({"seed": 2}, "seed 1 (now 2)"),
        ({"train_size": 5000}, "train_size None (now 5000)"),
        ({"val_size": 1000}, "val_size None (now 1000)"),
        ({"batch_size": 64}, "batch_size 128"),
        ({"patience": 5}, "patience 3 (now 5)"),
        ({"head_epochs": 2}, "fine_tune_head_epochs 3"),
        ({"max_epochs": 27}, "max_epochs 9 (now 27)"),
    ],
)
def test_a_setting_that_changes_what_trials_compute_is_refused(started, change, named):
    with pytest.raises(
        UsageError,
        match="holds another search: .*"
        + named.replace("(", r"\(").replace(")", r"\)")
        + ".*--overwrite",
    ):
        check_resumable(dataclasses.replace(started, **change))


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: open(c.space, "a").write("flip = true\n"), "space file content changed"),
        (lambda c: open(c.weights, "ab").write(b" v2"), "weights file content changed"),
        (lambda c: os.utime(c.data, ns=(1, 1)), "data files (size, modified) changed"),
    ],
)
def test_a_file_edited_in_place_is_refused(started, edit, named):
    edit(started)
    with pytest.raises(UsageError, match=named.replace("(", r"\(").replace(")", r"\)")):
        check_resumable(started)


def test_the_same_search_and_its_run_time_settings_resume(started):
    check_resumable(started)
    check_resumable(dataclasses.replace(started, max_trials=50, time_budget=60.0, verbose=0))
    check_resumable(dataclasses.replace(started, seed=9, overwrite=True))  # a fresh start


def test_a_search_of_another_backbone_width_is_refused(tmp_path):
    config = SearchConfig(
        method="feature", backbone="mobilenetv2", alpha=0.35, out=str(tmp_path / "runs")
    )
    config.run_dir.mkdir(parents=True)
    (config.run_dir / CONFIG_FILE).write_text(config_record(config))
    with pytest.raises(UsageError, match=r"alpha 0.35 \(now 1.0\)"):
        check_resumable(dataclasses.replace(config, alpha=1.0))
