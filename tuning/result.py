"""What a search returns: its winner and its trials, read from what it left on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tuning.rundir import BEST_FILE

BEST_MODEL_FILE = "best_model.keras"


@dataclass
class SearchResult:
    """How a search ended. On a worker: the trials it ran (the chief knows the best).

    Attributes:
        run_dir: the run directory (`SearchConfig.run_dir`).
        best_trial_id, best_val_accuracy: the best COMPLETED trial and its score.
        completed, failed: trial counts.
        worker: this worker's id, on a worker.
        budget_spent: whether `SearchConfig.time_budget` ended the search.
    """

    run_dir: Path
    best_trial_id: str | None
    best_val_accuracy: float | None
    completed: int
    failed: int
    worker: str | None = None
    budget_spent: bool = False

    @property
    def best_hyperparameters(self) -> dict | None:
        """The best trial's hyperparameters, {name: value}."""
        path = self.run_dir / BEST_FILE
        return json.loads(path.read_text())["hyperparameters"] if path.is_file() else None

    @property
    def best_model_path(self) -> Path | None:
        """The best trial's model, taking raw uint8-range images (`best_model.keras`)."""
        path = self.run_dir / BEST_MODEL_FILE
        return path if path.is_file() else None

    @property
    def trials(self):
        """Every trial as a pandas DataFrame (`trials.csv`: hyperparameters, status, scores)."""
        from tuning.rundir.trials_table import load_trials

        return load_trials(self.run_dir)

    def load_best_model(self):
        """The best model, loaded with Keras's `safe_mode` (no code in the file runs)."""
        from tuning.predict import load_trained_model

        return load_trained_model(str(self.best_model_path))
