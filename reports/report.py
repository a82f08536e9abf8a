"""`python -m reports --method M`: retrain the search's best configurations, test each once, report.

Reads only what the search wrote (`search_config.json`, `trials.csv`, keras-tuner's trial
records), so a report can run days later, elsewhere, after a resumed search. Writes
`OUT/M/report/` (one `rankN/` folder per configuration when `top` > 1) through a temporary folder
renamed into place, so an interrupted report leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from reports.artifacts import write_artifacts
from reports.metrics import mean_and_std, test_metrics
from reports.retrain import final_epochs, retrain, with_validation
from reports.runs import Configuration, read_search
from reports.test_split import load_test_split
from tuning.data.features import load_backbone
from tuning.data.pipeline import to_dataset
from tuning.data.sources import ReadOptions, Split, arrays_names, data_of, split_from_arrays
from tuning.errors import UsageError
from tuning.host.runtime import release_memory
from tuning.rundir import CONFIG_FILE
from tuning.rundir.identity import check_same_arrays

REPORT_DIR = "report"


@dataclass(frozen=True)
class Retraining:
    """How a report retrains and tests each configuration.

    Attributes:
        epochs: the retraining budget (a schedule's span).
        seeds: retrain with this many seeds (metrics get mean and std).
        train_on_validation: train the final model on train + validation, for the epochs the
            search found best (`retrain.final_epochs`), instead of holding validation out for
            early stopping.
        tta: test-time augmentation: the mean of the predictions for each test image and its
            horizontal mirror.
    """

    epochs: int
    seeds: int = 1
    train_on_validation: bool = False
    tta: bool = False


def build_report(
    out: str | Path,
    name: str,
    top: int = 1,
    epochs: int | None = None,
    seeds: int = 1,
    log=print,
    x_train=None,
    y_train=None,
    x_test=None,
    y_test=None,
    train_on_validation: bool = False,
    tta: bool = False,
) -> Path:
    """Retrains the `top` configurations of `out/name` for `epochs` (default: the search's
    max epochs) with `seeds` seeds each, evaluates each once on the test split, writes the report.
    `train_on_validation` and `tta`: see `Retraining`.

    A search run on arrays (`run_search(config, x_train=..., y_train=...)`) is reported with the
    same training arrays (checked against the search's record) and test arrays passed here.

    Returns:
        The report folder.
    """
    record = read_search(out, name)
    config = record.config
    train, test, names = in_memory_splits(record.run_dir, x_train, y_train, x_test, y_test)
    data = data_of(config, train, names=names)
    test = test if test is not None else load_test_split(config.data, ReadOptions.of(config))
    backbone = load_backbone(config, data.image_size)
    how = Retraining(epochs or config.max_epochs, seeds, train_on_validation, tta)
    staging = record.run_dir / f".{REPORT_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for conf in record.ranked(top):
            folder = staging if top == 1 else staging / f"rank{conf.rank}"
            folder.mkdir(parents=True)
            if log:
                log(
                    f"{name}: retraining rank {conf.rank} (trial {conf.trial_id}, search val "
                    f"accuracy {conf.val_accuracy:.4f}) {describe(how, conf, data)}, "
                    f"precision {config.precision} (as the search)"
                )
            metrics = report_configuration(folder, record, conf, data, backbone, test, how)
            if log:
                final = record.run_dir / REPORT_DIR / folder.relative_to(staging)
                log(
                    f"{name}: rank {conf.rank} test accuracy {metrics['test_accuracy']:.4f} "
                    f"-> {final}"
                )
        return _swap_into_place(staging, record.run_dir / REPORT_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def in_memory_splits(run_dir: Path, x_train, y_train, x_test, y_test) -> tuple:
    """(train, test, class names) of the arrays given for a search run on arrays (the names
    it was given, as its `search_config.json` records them), else (None, None, None)."""
    given = [a is not None for a in (x_train, y_train, x_test, y_test)]
    if not any(given):
        return None, None, None
    if not all(given):
        raise UsageError("x_train, y_train, x_test and y_test go together: pass all or none")
    names = arrays_names(json.loads((run_dir / CONFIG_FILE).read_text()).get("classes"))
    train = split_from_arrays(x_train, y_train, "x_train / y_train", names)
    check_same_arrays(run_dir, train)
    return train, split_from_arrays(x_test, y_test, "x_test / y_test", names), names


def fixed_epochs(how: Retraining, conf: Configuration) -> int | None:
    """The epochs a model trained on train + validation gets, or None (early stopping)."""
    if not how.train_on_validation:
        return None
    return final_epochs(conf.trained_epochs, conf.best_epochs, how.epochs)


def describe(how: Retraining, conf: Configuration, data) -> str:
    """What a retraining does, in words, for the progress line."""
    if how.train_on_validation:
        trained = f"on train + validation ({len(data.train) + len(data.validation)} images) "
        trained += f"for {fixed_epochs(how, conf)} epochs"
    else:
        trained = f"on {len(data.train)} images for up to {how.epochs} epochs"
    flips = ", tested with flip TTA" if how.tta else ""
    return f"{trained}, {how.seeds} seed(s){flips}"


def report_configuration(
    folder: Path, record, conf: Configuration, data, backbone, test, how: Retraining
) -> dict:
    """Retrains one configuration per seed; the first seed's model gives the files."""
    import keras

    config, names = record.config, data.names
    data = with_validation(data) if how.train_on_validation else data
    epochs = fixed_epochs(how, conf)
    runs, kept = [], None
    for seed in range(config.seed, config.seed + how.seeds):
        retrained = retrain(config, conf.values, data, backbone, how.epochs, seed, epochs)
        probabilities = predict(retrained.model, test, how.tta)
        runs.append(_metrics(probabilities, test, retrained, names))
        if kept is None:
            kept = (retrained, probabilities)
        else:
            keras.backend.clear_session()
            release_memory()
    retrained, probabilities = kept
    metrics = {
        **runs[0],
        "method": config.method,
        "search": str(record.run_dir),
        "rank": conf.rank,
        "trial_id": conf.trial_id,
        **(
            {
                "backbone": config.backbone,
                "alpha": config.alpha,
                "input_size": config.input_side(data.image_size),
            }
            if config.method != "scratch"
            else {}
        ),
        "search_val_accuracy": conf.val_accuracy,
        "data": data.source,
        "train_images": len(data.train),
        "train_on_validation": how.train_on_validation,
        "tta": how.tta,
        "precision": config.precision,
        "test_images": len(test),
        "hyperparameters": conf.values,
    }
    if how.seeds > 1:
        metrics["over_seeds"] = mean_and_std(runs)
        metrics["per_seed"] = runs
    write_artifacts(folder, retrained, probabilities, test, metrics, names)
    return metrics


def predict(model, test, tta: bool = False):
    """Class probabilities for `test`; with `tta`, averaged with those of the mirrored images."""
    probabilities = model.predict(to_dataset(test, 512), verbose=0)
    if tta:
        mirrored = Split(test.images[:, :, ::-1], test.fine, test.coarse)
        probabilities = (probabilities + model.predict(to_dataset(mirrored, 512), verbose=0)) / 2
    return probabilities


def _metrics(probabilities, test, retrained, names) -> dict:
    return {
        **test_metrics(probabilities, test.fine, names.fine_to_coarse),
        "classes": len(names.fine),
        "parameters": int(retrained.model.count_params()),
        "retrain_seconds": retrained.seconds,
        "epochs": retrained.epochs,
        "seed": retrained.seed,
    }


def _swap_into_place(staging: Path, target: Path) -> Path:
    """Replaces `target` with `staging`; the old report survives until the new one is in place."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def read_report_metrics(run_dir: Path) -> dict | None:
    """The rank-1 `metrics.json` of a run's report, or None when it has none."""
    for path in (
        run_dir / REPORT_DIR / "metrics.json",
        run_dir / REPORT_DIR / "rank1" / "metrics.json",
    ):
        if path.is_file():
            return json.loads(path.read_text())
    return None
