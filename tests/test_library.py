"""The README's "As a library" example, run as written: one import line, arrays in memory."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## As a library") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow  # a search and a report: a minute, which the default suite's 10 cannot spare
def test_the_readme_library_example_runs_on_arrays_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), names)
    result = names["result"]
    assert 0 <= result.best_val_accuracy <= 1 and result.completed >= 2
    assert isinstance(result.best_hyperparameters, dict)
    assert "architecture" in result.best_hyperparameters
    assert isinstance(result.trials, pd.DataFrame)
    assert len(result.trials) == result.completed + result.failed
    assert names["probabilities"].shape == (8, 100)
    np.testing.assert_allclose(names["probabilities"].sum(axis=1), 1, atol=1e-4)
    assert (names["report"] / "index.html").is_file()
    config = (result.run_dir / "search_config.json").read_text()
    assert '"data": "in-memory"' in config and "in-memory arrays content" in config


def test_arrays_of_the_wrong_shape_or_labels_are_refused_before_anything_is_written(tmp_path):
    from tuning import SearchConfig, UsageError, run_search

    config = SearchConfig(method="scratch", max_epochs=1, out=str(tmp_path / "runs"), verbose=0)
    images = np.zeros((200, 32, 32, 3), np.uint8)
    with pytest.raises(UsageError, match="x_train / y_train: images must be uint8"):
        run_search(config, x_train=images.astype(np.float32), y_train=np.zeros(200, int), log=None)
    with pytest.raises(UsageError, match="fine labels must be integers in"):
        run_search(config, x_train=images, y_train=np.full(200, 100), log=None)
    with pytest.raises(UsageError, match="x_train and y_train go together"):
        run_search(config, x_train=images, log=None)
    assert not (tmp_path / "runs").exists()


def test_a_library_error_names_the_config_field_and_the_cli_the_flag():
    from tuning import ConfigError, SearchConfig
    from tuning.cli import one_line

    with pytest.raises(ValueError) as caught:
        SearchConfig(method="scratch", train_size=0)
    assert isinstance(caught.value, ConfigError) and caught.value.field == "train_size"
    assert str(caught.value).startswith("train_size must be a positive integer")
    assert one_line(caught.value).startswith("--train-size must be a positive integer")


def test_a_seed_of_0_is_refused_as_keras_tuner_would_draw_a_random_one():
    from tuning import ConfigError, SearchConfig
    from tuning.cli import one_line

    with pytest.raises(ConfigError) as caught:
        SearchConfig(method="scratch", seed=0)
    assert one_line(caught.value).startswith("--seed must be a positive integer")
    assert "keras-tuner reads 0 as no seed" in one_line(caught.value)
    assert SearchConfig(method="scratch", seed=1).seed == 1


def test_importing_tuning_names_the_public_api_without_importing_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, tuning; from tuning import SearchConfig, run_search; "
        "print(sorted(tuning.__all__)); print('tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    exported, tensorflow = done.stdout.strip().splitlines()
    assert "'SearchConfig'" in exported and "'run_search'" in exported
    assert "'SearchResult'" in exported and "'build_report'" in exported
    assert tensorflow == "False"


def test_arrays_with_their_own_class_names_give_a_model_of_that_many_classes(tmp_path):
    from tuning import SearchConfig, UsageError, run_search

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    images = np.clip(rng.normal(60 + 60 * labels[:, None, None, None], 20, (90, 24, 24, 3)), 0, 255)
    config = SearchConfig(
        method="scratch", preset="seed", max_epochs=1, out=str(tmp_path / "runs"), verbose=0
    )
    names = ("dark", "mid", "light")
    with pytest.raises(UsageError, match=r"fine labels must be integers in \[0, 2\]"):
        run_search(config, x_train=images.astype(np.uint8), y_train=labels + 1, class_names=names)
    result = run_search(config, x_train=images.astype(np.uint8), y_train=labels, class_names=names)
    model = result.load_best_model()
    assert model.input_shape == (None, 24, 24, 3) and model.output_shape == (None, 3)
    assert (result.run_dir / "class_names.json").read_text() == '["dark", "mid", "light"]'
