"""The command line as a user meets it: help, and one-line errors that damage nothing."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_cli, tree_digest

TINY = ["--data", "synthetic", "--weights", "none", "--max-epochs", "1", "--train-size", "500"]


def test_help_lists_the_verbs_without_importing_tensorflow():
    code = (
        "import sys\nfrom tuning.cli import main\ntry:\n    main(['search', '--help'])\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for flag in (
        "--method",
        "--tuner",
        "--max-epochs",
        "--data",
        "--weights",
        "--train-size",
        "--overwrite",
        "--preset",
    ):
        assert flag in done.stdout


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A completed scratch search whose files every bad command must leave byte-identical."""
    out = tmp_path_factory.mktemp("runs")
    done = run_cli("search", "--method", "scratch", *TINY, "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    return out


def _weights_of_another_model(path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.save_weights(path)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "unknown-method",
        "unknown-tuner",
        "zero-epochs",
        "text-epochs",
        "factor-1",
        "batch-0",
        "missing-data",
        "corrupt-data",
        "wrong-shape-data",
        "missing-weights",
        "corrupt-weights",
        "foreign-weights",
        "offline-download",
        "train-size-too-big",
        "labels-out-of-range",
        "truncated-tarball",
        "out-is-a-file",
    ],
)
def test_bad_input_is_one_line_exit_2_and_damages_nothing(
    case, finished_run, tmp_path, monkeypatch
):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    wrong_shape = tmp_path / "gray.npz"
    gray = np.zeros((200, 32, 32), np.uint8)
    np.savez(
        wrong_shape,
        x_train=gray,
        y_train=np.zeros(200, int),
        x_test=gray,
        y_test=np.zeros(200, int),
    )
    bad_labels = tmp_path / "labels.npz"
    images = np.zeros((400, 32, 32, 3), np.uint8)
    np.savez(
        bad_labels,
        x_train=images,
        y_train=np.arange(400) % 150,
        x_test=images,
        y_test=np.zeros(400, int),
    )
    tarball = tmp_path / "cifar-100-python.tar.gz"
    tarball.write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 100)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    method = "feature" if "weights" in case else "scratch"
    base = [
        "search",
        "--method",
        method,
        "--data",
        "synthetic",
        "--weights",
        "none",
        "--max-epochs",
        "1",
        "--train-size",
        "1000",
        "--out",
        finished_run,
        "--overwrite",
    ]
    change = {
        "unknown-method": ["--method", "fine"],
        "unknown-tuner": ["--tuner", "grid"],
        "zero-epochs": ["--max-epochs", "0"],
        "text-epochs": ["--max-epochs", "ten"],
        "factor-1": ["--factor", "1"],
        "batch-0": ["--batch-size", "0"],
        "missing-data": ["--data", tmp_path / "nowhere"],
        "corrupt-data": ["--data", corrupt],
        "wrong-shape-data": ["--data", wrong_shape],
        "missing-weights": ["--weights", tmp_path / "none.h5"],
        "corrupt-weights": ["--weights", junk],
        "foreign-weights": ["--weights", _weights_of_another_model(tmp_path / "x.weights.h5")],
        "offline-download": ["--data", "keras"],
        "train-size-too-big": ["--train-size", "99999"],
        "labels-out-of-range": ["--data", bad_labels],
        "truncated-tarball": ["--data", tarball],
        "out-is-a-file": ["--out", a_file],
    }[case]
    if case == "offline-download":  # offline everywhere, CI's network too: an empty Keras
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # cache, a dead proxy
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    before = tree_digest(finished_run)
    done = run_cli(*base, *change)
    assert done.returncode == 2, done.stderr
    if case == "offline-download":
        assert "could not download CIFAR-100" in done.stderr and "--data synthetic" in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert tree_digest(finished_run) == before
