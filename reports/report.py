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
from pathlib import Path

from reports.artifacts import write_artifacts
from reports.metrics import mean_and_std, test_metrics
from reports.retrain import retrain
from reports.runs import Configuration, read_search
from reports.test_split import load_test_split
from tuning.data import load_search_data, split_from_arrays
from tuning.errors import UsageError
from tuning.features import load_backbone
from tuning.identity import check_same_arrays
from tuning.labels import label_names
from tuning.pipeline import to_dataset
from tuning.runtime import release_memory

REPORT_DIR = "report"


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
) -> Path:
    """Retrains the `top` configurations of `out/name` for `epochs` (default: the search's
    max epochs) with `seeds` seeds each, evaluates each once on the test split, writes the report.

    A search run on arrays (`run_search(config, x_train=..., y_train=...)`) is reported with the
    same training arrays (checked against the search's record) and test arrays passed here.

    Returns:
        The report folder.
    """
    record = read_search(out, name)
    config = record.config
    train, test = in_memory_splits(record.run_dir, x_train, y_train, x_test, y_test)
    data = load_search_data(
        config.data, config.val_size, config.train_size, config.seed, arrays=train
    )
    test = test if test is not None else load_test_split(config.data)
    backbone = load_backbone(config)
    epochs = epochs or config.max_epochs
    staging = record.run_dir / f".{REPORT_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for conf in record.ranked(top):
            folder = staging if top == 1 else staging / f"rank{conf.rank}"
            folder.mkdir(parents=True)
            if log:
                log(
                    f"{name}: retraining rank {conf.rank} (trial {conf.trial_id}, search val "
                    f"accuracy {conf.val_accuracy:.4f}) for up to {epochs} epochs, {seeds} seed(s)"
                )
            metrics = report_configuration(
                folder, record, conf, data, backbone, test, epochs, seeds
            )
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
    """(train, test) Splits of the arrays given for a search run on arrays, else (None, None)."""
    given = [a is not None for a in (x_train, y_train, x_test, y_test)]
    if not any(given):
        return None, None
    if not all(given):
        raise UsageError("x_train, y_train, x_test and y_test go together: pass all or none")
    train = split_from_arrays(x_train, y_train, "x_train / y_train")
    check_same_arrays(run_dir, train)
    return train, split_from_arrays(x_test, y_test, "x_test / y_test")


def report_configuration(
    folder: Path, record, conf: Configuration, data, backbone, test, epochs: int, seeds: int
) -> dict:
    """Retrains one configuration per seed; the first seed's model gives the files."""
    import keras

    config, names = record.config, label_names()
    runs, kept = [], None
    for seed in range(config.seed, config.seed + seeds):
        retrained = retrain(config, conf.values, data, backbone, epochs, seed)
        probabilities = retrained.model.predict(to_dataset(test, 512), verbose=0)
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
        **({"backbone": config.backbone} if config.method != "scratch" else {}),
        "search_val_accuracy": conf.val_accuracy,
        "data": data.source,
        "test_images": len(test),
        "hyperparameters": conf.values,
    }
    if seeds > 1:
        metrics["over_seeds"] = mean_and_std(runs)
        metrics["per_seed"] = runs
    write_artifacts(folder, retrained, probabilities, test, metrics, names)
    return metrics


def _metrics(probabilities, test, retrained, names) -> dict:
    return {
        **test_metrics(probabilities, test.fine, names.fine_to_coarse),
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
