"""What a finished search left on disk: its settings and its ranked trials. Nothing else is read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tuning.config import SearchConfig, method_of
from tuning.errors import UsageError
from tuning.rundir import CONFIG_FILE, TRIALS_FILE


@dataclass(frozen=True)
class Configuration:
    """One trial's hyperparameters, as ranked by the search's validation accuracy."""

    rank: int
    trial_id: str
    values: dict
    val_accuracy: float
    trained_epochs: int | None = None  # the budget the trial ran to (Hyperband's tuner/epochs)
    best_epochs: int | None = None  # epochs up to its best validation score (best_step + 1)


@dataclass(frozen=True)
class SearchRecord:
    run_dir: Path
    config: SearchConfig
    trials: object  # pandas.DataFrame of trials.csv

    def ranked(self, top: int) -> list[Configuration]:
        """The `top` COMPLETED trials by val accuracy, one per distinct configuration."""
        done = self.trials[self.trials.status == "COMPLETED"].sort_values(
            "val_accuracy", ascending=False, kind="stable"
        )
        picked, seen = [], set()
        for row in done.itertuples():
            trial = _trial_record(self.run_dir, row.trial_id)
            values = {k: v for k, v in trial["values"].items() if not k.startswith("tuner/")}
            key = json.dumps(values, sort_keys=True)
            if key not in seen:
                seen.add(key)
                best_step = trial["best_step"]
                picked.append(
                    Configuration(
                        len(picked) + 1,
                        row.trial_id,
                        values,
                        float(row.val_accuracy),
                        trial["values"].get("tuner/epochs", self.config.max_epochs),
                        None if best_step is None else int(best_step) + 1,
                    )
                )
            if len(picked) == top:
                break
        return picked


def read_search(out: str | Path, name: str) -> SearchRecord:
    """Reads `out/name` (name: a method, or METHOD-seed). Raises UsageError with what to run."""
    import pandas as pd

    run_dir = Path(out) / name
    method = method_of(name) or name
    if not (run_dir / TRIALS_FILE).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise UsageError(
            f"no search results in {run_dir}; run `python -m tuning search "
            f"--method {method} --out {out}` first"
        )
    config = SearchConfig.from_json((run_dir / CONFIG_FILE).read_text())
    trials = pd.read_csv(run_dir / TRIALS_FILE, dtype={"trial_id": str})
    if not (trials.status == "COMPLETED").any():
        raise UsageError(
            f"every trial of {run_dir} failed ({len(trials)} trials; reasons in "
            f"{run_dir / TRIALS_FILE}): nothing to report"
        )
    return SearchRecord(run_dir, config, trials)


def _trial_record(run_dir: Path, trial_id: str) -> dict:
    """{"values": exact hyperparameter values (with their types, `tuner/` ones included),
    "best_step": the 0-based epoch of its best score or None} from keras-tuner's trial record."""
    path = run_dir / f"trial_{trial_id}" / "trial.json"
    try:
        record = json.loads(path.read_text())
        return {"values": record["hyperparameters"]["values"], "best_step": record.get("best_step")}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: unreadable trial record ({type(error).__name__})") from None
