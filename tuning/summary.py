"""The best trials of a search, read from its `trials.csv` (no TensorFlow needed)."""

from __future__ import annotations

from pathlib import Path

from tuning.errors import UsageError
from tuning.records import TRIALS_FILE

_SHOWN_LAST = ("val_accuracy", "val_loss", "epochs_run", "seconds")


def summarize(run_dir: str | Path, top: int = 10) -> str:
    """A text table of the `top` COMPLETED trials by val_accuracy, and the trial counts."""
    import pandas as pd

    path = Path(run_dir) / TRIALS_FILE
    if not path.is_file():
        raise UsageError(f"no search results at {path}; run `python -m tuning search --method "
                         f"{Path(run_dir).name.split('-')[0]} ...` first")
    trials = pd.read_csv(path, dtype={"trial_id": str})
    counts = trials["status"].value_counts().to_dict()
    done = trials[trials["status"] == "COMPLETED"].sort_values("val_accuracy", ascending=False)
    hidden = {"trial_id", "status", "reason", "val_top5", *_SHOWN_LAST}
    columns = ["trial_id"] + [c for c in trials.columns if c not in hidden
                              and not c.startswith("tuner/")] + list(_SHOWN_LAST)
    header = f"{path}: {len(trials)} trials (" + ", ".join(
        f"{n} {status.lower()}" for status, n in sorted(counts.items())) + ")"
    if done.empty:
        return header + "\nno completed trial"
    table = done[[c for c in columns if c in done.columns]].head(top)
    return header + f"\ntop {len(table)} by val_accuracy:\n" + table.to_string(index=False)
