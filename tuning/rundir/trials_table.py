"""The best trials of a search, read from its `trials.csv` (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

from tuning.config import method_of
from tuning.errors import UsageError
from tuning.rundir import TRIALS_FILE

_SHOWN_LAST = ("val_accuracy", "val_loss", "epochs_run", "seconds")


def load_trials(run_dir: str | Path):
    """Every trial of a search (`trials.csv`) as a pandas DataFrame, one row per trial."""
    import pandas as pd

    path = Path(run_dir) / TRIALS_FILE
    if not path.is_file():
        raise UsageError(
            f"no search results at {path}; run `python -m tuning search --method "
            f"{method_of(Path(run_dir).name) or 'M'} ...` first"
        )
    return pd.read_csv(path, dtype={"trial_id": str})


def top_trials(trials, top: int = 10):
    """The `top` COMPLETED trials by val_accuracy, hyperparameters first, then the results."""
    done = trials[trials["status"] == "COMPLETED"].sort_values("val_accuracy", ascending=False)
    hidden = {"trial_id", "status", "reason", "val_top5", *_SHOWN_LAST}
    columns = (
        ["trial_id"]
        + [c for c in trials.columns if c not in hidden and not c.startswith("tuner/")]
        + list(_SHOWN_LAST)
    )
    return done[[c for c in columns if c in done.columns]].head(top)


def summarize(run_dir: str | Path, top: int = 10) -> str:
    """A text table of the `top` COMPLETED trials by val_accuracy, and the trial counts."""
    trials = load_trials(run_dir)
    counts = trials["status"].value_counts().to_dict()
    header = (
        f"{Path(run_dir) / TRIALS_FILE}: {len(trials)} trials ("
        + ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
        + ")"
    )
    table = top_trials(trials, top)
    if table.empty:
        return header + "\nno completed trial"
    return header + f"\ntop {len(table)} by val_accuracy:\n" + table.to_string(index=False)
