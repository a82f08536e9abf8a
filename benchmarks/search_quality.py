"""Search quality against the clock: contenders on the same data and the same wall-clock budget.

    python -m benchmarks.search_quality --data ../shared/data/cifar-100-python.tar.gz
    python -m benchmarks.search_quality --minutes 3 --contenders scratch seed   # a look

Contenders (each its own process, on `--data`, real CIFAR-100 for any figure: 10,000 training
and 2,500 validation images, the search's own split (`--train-size` and a quarter of it for a
look); the synthetic stand-in by default, for the benchmark's own test):
  scratch     cifar-tune's `scratch` search, default space, Hyperband over the epochs its
              `--time-budget` would plan here (`tuning.engine.plan`: calibrated once, before the
              turns begin, its seconds counted as the contender's first minutes; the plan passed as
              `--max-epochs` and `--min-epochs`, since a search's own clock would count the
              other contenders' turns too), models over 60M multiply-adds per image refused
              (`--max-madds 60M`, as the README advises for short budgets);
  hyperresnet plain keras-tuner Hyperband over `keras_tuner.applications.HyperResNet(
              input_shape=(32, 32, 3), classes=100)`, keras-tuner's defaults, the same
              `max_epochs` and factor;
  seed        the seed write-up's CNN trained for the whole budget (one long fit);
  plain       cifar-tune's `scratch` search over the old plain-only space (architecture plain,
              Adam at a constant rate, no crop or label smoothing: the space before residual
              stages and schedules, the same cap and plan), for before and after;
  autokeras   AutoKeras 3.0's `ImageClassifier` (trials of `--max-epochs` epochs, its own early
              stopping), run by another Python (`--autokeras-python`): a venv of its own, since
              AutoKeras 3.0.0 fails under Keras 3.15 (its heads pass numpy integers as Dense
              units, which Keras 3.15 refuses) and runs with Keras 3.10:
                python -m venv ak && ak/bin/pip install autokeras==3.0.0 tensorflow-cpu \
                    tensorboard keras==3.10.0
              If it cannot run, the JSON says why.

Every contender runs with oneDNN on (`TF_ENABLE_ONEDNN_OPTS=1`), so all use the same kernels
whatever the CPU. Machine noise is shared out by taking turns: every contender starts stopped
(SIGSTOP) and runs in slices (`--slice`, 30 s) one after another, so each slice of noise falls on
them in turn; a contender's clock counts only its own slices, and it is killed when they reach the
budget. After each slice the orchestrator reads the contender's best validation accuracy so far
from disk (the val accuracy in a completed trial's keras-tuner `trial.json`, the seed run's
per-epoch log): a trial still running when the budget ends counts for nothing, as for a user who
stops there. Then each contender's model, as it would hand it to its user, is evaluated once on
the source's test images: cifar-tune's `best_model.keras` (the stopped search run again with a
spent time budget, which starts no trial and exports its best), keras-tuner's best model, the
seed run's last epoch, AutoKeras's exported model. Writes
`benchmarks/results/search-quality-<date>.json` and the plot beside it (best validation accuracy
against minutes, one line per contender).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import RESULTS
from tuning.errors import ConfigError

CONTENDERS = ("scratch", "hyperresnet", "seed", "plain", "autokeras")
TRAIN, MAX_EPOCHS, FACTOR, MAX_MADDS = 10_000, 9, 3, "60M"
PLAIN_SPACE = """architecture = "plain"
optimizer = "adam"
schedule = "constant"
label_smoothing = 0.0
crop = false
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="budget per contender")
    parser.add_argument("--slice", type=float, default=30.0, help="seconds per turn")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--train-size",
        type=int,
        default=TRAIN,
        help=f"training images (default {TRAIN}, for any figure); validation a quarter of it",
    )
    parser.add_argument(
        "--data", dest="source", default="synthetic", help="a --data source of the search"
    )
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument(
        "--autokeras-python",
        default=None,
        help="a Python with autokeras installed (default: skip AutoKeras)",
    )
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON and plot")
    parser.add_argument("--name", default="search-quality")
    parser.add_argument("--plan-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.val_size = args.train_size // 4
    if args.plan_only:
        try:
            print(json.dumps(plan_search(args)))
        except ConfigError as error:  # the search would refuse this budget too
            sys.exit(f"search_quality: {error}")
        return
    with tempfile.TemporaryDirectory() as work:
        args.data = save_split(Path(work) / "split.npz", args)
        args.plan = None
        if {"scratch", "plain"} & set(args.contenders):
            args.plan = _fresh_plan(args)
            print(f"plan: {args.plan['line']}", flush=True)
        runs = {name: Contender(name, Path(work) / name, args) for name in args.contenders}
        take_turns(list(runs.values()), args.minutes * 60, args.slice)
        for run in runs.values():
            run.evaluate()
            print(f"{run.name}: test accuracy {run.test_accuracy}", flush=True)
        record = {
            "budget_minutes": args.minutes,
            "slice_seconds": args.slice,
            "seed": args.seed,
            "data": f"{args.source}, {args.train_size} training / {args.val_size} validation",
            "test_images": f"{args.source}'s test split",
            "scratch_plan": args.plan,
            "contenders": {name: run.result() for name, run in runs.items()},
        }
    save(record, Path(args.results), args.name)


class Contender:
    """One contender's process, stopped between turns, and what it has found so far."""

    def __init__(self, name: str, folder: Path, args):
        self.name, self.folder, self.data = name, folder, args.data
        folder.mkdir(parents=True)
        self.command = contender_command(name, folder, args)
        planned = name in ("scratch", "plain") and args.plan
        self.active = args.plan["calibration_seconds"] if planned else 0.0
        self.curve: list[tuple[float, float | None]] = []
        self.error = None if self.command else "skipped: no --autokeras-python given"
        self.test_accuracy, self.test_error = None, None
        self.process = None
        if self.command:
            self.log = open(folder / "output.log", "w")
            self.process = subprocess.Popen(
                self.command,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_env(),
            )
            os.killpg(self.process.pid, signal.SIGSTOP)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def turn(self, seconds: float) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)
        start = time.monotonic()
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGSTOP)
        self.active += time.monotonic() - start
        self.curve.append((round(self.active / 60, 2), self.best()))

    def stop(self) -> None:
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.process is not None and self.process.returncode not in (0, -signal.SIGKILL):
            tail = (self.folder / "output.log").read_text().strip().splitlines()[-3:]
            self.error = f"exit {self.process.returncode}: " + " | ".join(tail)[-500:]

    def evaluate(self) -> None:
        """The test accuracy of the model this contender hands its user, or why there is none."""
        if self.command is None or self.best() is None:
            self.test_error = self.error or "no completed trial or epoch"
            return
        if self.command[1:3] == ["-m", "tuning"]:  # cifar-tune: export, then load it here
            command, evaluate = [*self.command, "--time-budget", "1s"], self._cifar_tune_test
        else:
            command, evaluate = [*self.command, "evaluate"], _printed_accuracy
        done = subprocess.run(command, capture_output=True, text=True, env=_env())
        if done.returncode != 0:
            self.test_error = f"exit {done.returncode}: {done.stderr.strip()[-500:]}"
            return
        self.test_accuracy = evaluate(done.stdout)

    def _cifar_tune_test(self, _output: str) -> float:
        import keras
        import numpy as np

        import search_spaces  # noqa: F401  (registers the layers saved models are made of)

        model = keras.saving.load_model(
            self.folder / "scratch" / "best_model.keras", safe_mode=True
        )
        with np.load(self.data, allow_pickle=False) as arrays:
            x, y = arrays["x_test"], arrays["y_test"]
        predicted = np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1)
        return float(np.mean(predicted == y))

    def best(self) -> float | None:
        scores = [_val_accuracy(json.loads(p.read_text())) for p in self.folder.rglob("trial.json")]
        epochs = self.folder / "epochs.csv"  # Keras's CSVLogger, flushed every epoch
        if epochs.is_file():
            with epochs.open() as f:
                scores += [float(row["val_accuracy"]) for row in csv.DictReader(f)]
        scores = [s for s in scores if isinstance(s, (int, float))]
        return max(scores, default=None)

    @property
    def finished(self) -> bool:
        """Whether the contender ended by itself (a search whose rounds all ran, a fit whose
        epochs did) rather than at the budget."""
        return self.process is not None and self.process.returncode == 0

    def result(self) -> dict:
        return {
            "command": " ".join(self.command or []),
            "minutes_run": round(self.active / 60, 2),
            "finished_before_budget": self.finished,
            "best_val_accuracy": self.best(),
            "test_accuracy": self.test_accuracy,
            "curve": self.curve,
            "error": self.error,
            "test_error": self.test_error,
        }


def _val_accuracy(trial: dict) -> float | None:
    """A completed keras-tuner trial's best recorded val accuracy (not its `score`: AutoKeras's
    objective is val_loss)."""
    if trial.get("status") != "COMPLETED":
        return None
    metric = trial.get("metrics", {}).get("metrics", {}).get("val_accuracy", {})
    return max((o["value"][0] for o in metric.get("observations", [])), default=None)


def _printed_accuracy(output: str) -> float:
    return float(json.loads(output.strip().splitlines()[-1])["test_accuracy"])


def take_turns(contenders: list[Contender], budget: float, slice_seconds: float) -> None:
    try:
        while any(c.running and c.active < budget for c in contenders):
            for c in contenders:
                if c.running and c.active < budget:
                    c.turn(min(slice_seconds, budget - c.active))
                    print(f"{c.name}: {c.active / 60:.1f} min, best {c.best()}", flush=True)
    finally:
        for c in contenders:
            c.stop()


def contender_command(name: str, folder: Path, args) -> list[str] | None:
    data = [
        "--data",
        args.source,
        "--train-size",
        str(args.train_size),
        "--val-size",
        str(args.val_size),
        "--seed",
        str(args.seed),
    ]
    if name in ("scratch", "plain"):
        epochs = ["--max-epochs", str(args.plan["max_epochs"])]
        epochs += ["--min-epochs", str(args.plan["min_epochs"])]
        extra = []
        if name == "plain":
            (folder / "plain.toml").write_text(PLAIN_SPACE)
            extra = ["--space", str(folder / "plain.toml")]
        return [
            sys.executable,
            "-m",
            "tuning",
            "search",
            "--method",
            "scratch",
            *data,
            *epochs,
            "--factor",
            str(FACTOR),
            "--max-madds",
            MAX_MADDS,
            "--out",
            str(folder),
            *extra,
        ]
    if name == "autokeras" and not args.autokeras_python:
        return None
    python = args.autokeras_python if name == "autokeras" else sys.executable
    return [
        python,
        str(Path(__file__).with_name("contenders.py")),
        name,
        str(folder),
        str(args.seed),
        str(args.data),
        str(Path(__file__).resolve().parents[1]),
        str(MAX_EPOCHS),
        str(FACTOR),
    ]


def plan_search(args) -> dict:
    """The Hyperband epochs a `scratch --time-budget` search of `args.minutes` would plan on
    this machine (the default space, this benchmark's split and cost cap)."""
    from tuning.config import SearchConfig
    from tuning.data.features import hypermodel_for
    from tuning.data.sources import load_search_data
    from tuning.engine.cost import parse_madds
    from tuning.engine.plan import PLANNED_MIN_EPOCHS, measured_plan

    config = SearchConfig(
        method="scratch",
        data=args.source,
        train_size=args.train_size,
        val_size=args.val_size,
        seed=args.seed,
        factor=FACTOR,
        max_madds=parse_madds(MAX_MADDS),
        time_budget=args.minutes * 60,
    )
    data = load_search_data(config.data, config.val_size, config.train_size, config.seed)
    hypermodel = hypermodel_for(config, data, None, epochs=PLANNED_MIN_EPOCHS)
    plan, _, pricing, spent = measured_plan(config, data, None, hypermodel)
    return {
        "max_epochs": plan.max_epochs,
        "min_epochs": plan.min_epochs,
        "calibration_seconds": round(spent, 1),
        "line": plan.describe(config.time_budget),
        "epoch_seconds": round(pricing.cost().epoch_seconds, 1),
    }


def _fresh_plan(args) -> dict:
    command = [sys.executable, "-m", "benchmarks.search_quality", "--plan-only"]
    command += ["--data", args.source, "--minutes", str(args.minutes), "--seed", str(args.seed)]
    command += ["--train-size", str(args.train_size)]
    done = subprocess.run(command, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        sys.exit(lines[-1] if lines[-1].startswith("search_quality: ") else "\n".join(lines))
    return json.loads(done.stdout.strip().splitlines()[-1])


def save_split(path: Path, args) -> Path:
    """The split cifar-tune's contenders search on, for the others (plain arrays), and the
    test images every contender's model is evaluated on at the end."""
    import numpy as np

    from reports.test_split import load_test_split
    from tuning.data.sources import load_search_data

    data = load_search_data(args.source, args.val_size, args.train_size, args.seed)
    test = load_test_split(args.source)
    np.savez(
        path,
        x_train=data.train.images,
        y_train=data.train.fine,
        x_val=data.validation.images,
        y_val=data.validation.fine,
        x_test=test.images,
        y_test=test.fine,
    )
    return path


def _env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def save(record: dict, folder: Path, name: str) -> None:
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # for the machine's facts
    from benchmarks.machine import save_result

    path = save_result(name, record, folder=folder)
    plot(record, path.with_suffix(".png"))


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, result in record["contenders"].items():
        points = [(m, b) for m, b in result["curve"] if b is not None]
        if points:
            ax.step(*zip(*points), where="post", label=f"{name} ({points[-1][1]:.3f})")
    ax.set_xlabel("minutes (each contender's own turns)")
    ax.set_ylabel("best validation accuracy so far")
    source, _, split = record["data"].partition(", ")  # a path's folders would overflow
    ax.set_title(f"{Path(source).name}, {split}, {record['budget_minutes']:g} min each")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
