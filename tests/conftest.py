import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REPORT_FILES = (
    "metrics.json",
    "classification_report.txt",
    "classification_report.csv",
    "coarse_classification_report.txt",
    "coarse_classification_report.csv",
    "curves.png",
    "confusion_coarse.png",
    "confusion_fine.png",
    "per_class_f1.png",
    "examples.png",
    "gradcam.png",
    "predictions.csv",
    "history.csv",
    "model.keras",
    "class_names.json",
    "index.html",
)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Synthetic data and caches go to a per-session folder, not the user's ~/.cache."""
    os.environ["CIFAR_TUNE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def mobilenet_035_weights():
    """The ImageNet MobileNetV2-0.35 no-top weights of ../shared/data, or a skip saying why."""
    path = SHARED_DATA / "mobilenet_v2_0.35_224_no_top.weights.h5"
    if not path.is_file():
        pytest.skip(f"ImageNet MobileNetV2-0.35 weights not found at {path}")
    return path


@pytest.fixture
def real_samples():
    """The 20 real CIFAR-100 test pictures of ../shared/data, or a skip saying why."""
    folder = SHARED_DATA / "cifar100-test-samples"
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"real CIFAR-100 samples not found at {folder}")
    return folder


def run_cli(*args, module="tuning", timeout=900):
    """Runs `python -m tuning ARGS` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def run_python(code: str, *, without=(), timeout=300, **env) -> str:
    """Runs `code` in a fresh interpreter (environment minus `without`, plus `env`).

    Fails the test, with the child's stderr, unless it exits 0; returns its last line of output.
    """
    environment = {k: v for k, v in os.environ.items() if k not in without}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def start_cli(*args, log: Path, module="tuning") -> subprocess.Popen:
    """Starts `python -m tuning ARGS` as a user would, its output (both streams) to `log`."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *map(str, args)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )


def predicts_as_reported(report: Path) -> None:
    """The report's model, reloaded safely, predicts the synthetic test images' first 64 as its
    predictions.csv says."""
    import keras
    import numpy as np
    import pandas as pd

    import search_spaces  # noqa: F401  (registers the custom layers)
    from tuning.data.sources import read_split

    model = keras.saving.load_model(report / "model.keras", safe_mode=True)
    test = read_split("synthetic", "test")
    predicted = model.predict(test.images[:64].astype("float32"), verbose=0).argmax(axis=1)
    expected = pd.read_csv(report / "predictions.csv").predicted.to_numpy()[:64]
    np.testing.assert_array_equal(predicted, expected)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_digest(folder: Path) -> dict:
    """Checksums of every file below `folder`, to show a run directory was left untouched."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def make_cache(root, backbone="vgg16"):
    """A feature cache of `backbone` (random weights, 32 px) over 48 training and 32 validation
    images of random pixels, at every layer a fine-tuning trial starts from."""
    import keras
    import numpy as np

    from search_spaces import load_base
    from search_spaces.backbones import cut_layer
    from tuning.data.features import FeatureCache
    from tuning.data.sources import SearchData, Split

    rng = np.random.default_rng(0)

    def split(n):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return Split(images, rng.integers(0, 100, n), np.zeros(n, dtype=np.int64))

    data = SearchData(split(48), split(32), "random pixels")
    keras.utils.set_random_seed(0)
    base = load_base(backbone, "none", 32)
    cache = FeatureCache(base, 32, data, batch_size=16, seed=0, root=root)
    cache.prepare([cut_layer(backbone, units) for units in range(4)])
    return cache


SMALL_SEARCH = ("--data synthetic --weights none --max-epochs 2 --train-size 1000").split()


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """One small search per method, run through the CLI exactly as a user would."""
    out = tmp_path_factory.mktemp("runs")
    from tuning.data.sources import read_split

    read_split("synthetic", "train")  # generated once here, not by each search at once
    logs = tmp_path_factory.mktemp("logs")
    searches = {
        method: start_cli(
            "search", "--method", method, *SMALL_SEARCH, "--out", out, log=logs / method
        )
        for method in ("scratch", "feature", "finetune")
    }
    for method, search in searches.items():  # side by side: a third faster than in turn
        assert search.wait(timeout=900) == 0, (logs / method).read_text()
        assert "trial 2/2" in (logs / method).read_text()
        assert "best trial" in (logs / method).read_text()
    return out
