"""`--space FILE.toml`: overrides of a method's search space, and its default space as TOML."""

import pandas as pd
import pytest
from conftest import run_cli

from tuning.errors import UsageError
from tuning.space import default_space, fixing_toml, load_space, space_toml

NARROW = """
learning_rate = 0.002
flip = false
[conv_blocks]
min = 2
max = 3
[dense_units]
values = [128]
[dropout]
min = 0.1
max = 0.2
"""


@pytest.mark.slow
def test_trials_stay_inside_a_narrowed_space(tmp_path):
    space = tmp_path / "narrow.toml"
    space.write_text(NARROW)
    done = run_cli(
        *(
            "search --method scratch --tuner random --max-trials 4 "
            "--max-epochs 1 --data synthetic --train-size 1000 --space"
        ).split(),
        space,
        "--out",
        tmp_path / "runs",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(tmp_path / "runs" / "scratch" / "trials.csv")
    assert len(trials) == 4
    assert (trials.learning_rate == 0.002).all() and not trials.flip.any()
    assert trials.conv_blocks.between(2, 3).all() and (trials.dense_units == 128).all()
    assert trials.dropout.between(0.1, 0.2).all()
    assert trials.base_filters.nunique() + trials.rotation.nunique() > 2  # the rest still searched
    assert (tmp_path / "runs" / "scratch" / "space.toml").read_text() == NARROW


@pytest.mark.parametrize("method", ["scratch", "feature", "finetune"])
def test_the_printed_default_space_reads_back_as_the_same_space(tmp_path, method):
    path = tmp_path / "default.toml"
    path.write_text(space_toml(method))
    searched = [hp for hp in default_space(method).space if type(hp).__name__ != "Fixed"]
    assert [hp.get_config() for hp in load_space(path, method).space] == [
        hp.get_config() for hp in searched
    ]


def test_a_fixing_space_file_reads_back_as_those_values(tmp_path):
    values = {"pooling": "flatten", "dense_units": 1024, "learning_rate": 7.4e-5, "flip": False}
    path = tmp_path / "fixed.toml"
    path.write_text(fixing_toml(values))
    assert load_space(path, "feature").values == values


@pytest.mark.parametrize(
    "text, message",
    [
        ("width = 3", "unknown hyperparameter 'width'"),
        ("[dropout]\nmin = 0.5\nmax = 0.2", "min must be below max"),
        ("[learning_rate]\nmin = 0.0\nmax = 0.1\nsampling = 'log'", "log needs min > 0"),
        ("dense_units = 'wide'", "expected int values. Received: 'wide'"),
        ("flip = 1", "expected bool values"),
        ("[conv_blocks]\nmin = 1\nmax = 9", "outside what the model supports"),
        ("[flip]\nmin = 0\nmax = 1", "not a min/max range"),
        ("[dropout]\nlow = 0.1", "Received keys: ['low']"),
        ("dropout = [0.1", "not a readable TOML file"),
        (
            "architecture = 'densenet'",
            "'densenet' is not one the model supports ('plain', 'conv_groups', 'residual')",
        ),
        ("[optimizer]\nvalues = ['adam', 'lamb']", "'lamb' is not one the model supports"),
        ("pooling = 'max'", "'max' is not one the model supports ('flatten', 'avg')"),
    ],
)
def test_a_bad_space_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    method = "feature" if text.startswith("pooling") else "scratch"
    with pytest.raises(
        UsageError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        load_space(path, method)


def test_a_bad_space_file_stops_the_cli_before_the_run_directory_is_touched(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("width = 3\n")
    done = run_cli(
        *"search --method scratch --data synthetic --space".split(),
        path,
        "--out",
        tmp_path / "runs",
        "--overwrite",
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "unknown hyperparameter 'width'" in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("method", ["scratch", "feature", "finetune"])
def test_the_docs_show_each_default_space_as_printed(method):
    from conftest import ROOT

    page = (ROOT / "docs" / "search-spaces.md").read_text()
    assert f"```toml\n{space_toml(method).strip()}\n```" in page
