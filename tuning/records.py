"""Trial records on disk: `trials.csv`, `best_hyperparameters.json`, progress lines.

Everything here is rebuilt from the oracle's trials plus `trial_stats.json` (seconds and epochs of
each trial), so a resumed search exports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tuning.files import atomic_write_text

STATS_FILE, TRIALS_FILE, BEST_FILE = "trial_stats.json", "trials.csv", "best_hyperparameters.json"


def best_completed_trial(trials):
    """The COMPLETED trial with the highest finite val_accuracy, or None (failed trials never win)."""
    done = [t for t in trials if t.status == "COMPLETED" and t.score is not None
            and math.isfinite(t.score)]
    return max(done, key=lambda t: t.score, default=None)


def searched_values(trial) -> dict:
    """A trial's hyperparameter values without Hyperband's bookkeeping (`tuner/...`)."""
    return {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}


def trial_rows(trials, stats: dict) -> list[dict]:
    """One row per trial: id, status, every hyperparameter, best val metrics, epochs, seconds."""
    rows = []
    for trial in sorted(trials, key=lambda t: t.trial_id):
        row = {"trial_id": trial.trial_id, "status": trial.status}
        row.update(trial.hyperparameters.values)
        for name in ("val_accuracy", "val_loss", "val_top5"):
            row[name] = _at_best_step(trial, name)
        row.update(stats.get(trial.trial_id, {}))
        row["reason"] = _reason(trial)
        rows.append(row)
    return rows


def _at_best_step(trial, name: str):
    if trial.status != "COMPLETED" or not trial.metrics.exists(name):
        return None
    history = trial.metrics.get_history(name)
    at_best = [obs.value for obs in history if obs.step == trial.best_step]
    value = (at_best or [history[-1].value])[0]
    return float(value[0] if isinstance(value, (list, tuple)) else value)


def _reason(trial) -> str:
    """The last line of a failed trial's message (the exception), or ''."""
    if trial.status == "COMPLETED" or not trial.message:
        return ""
    lines = [line.strip() for line in str(trial.message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class TrialRecorder:
    """Times trials, rewrites the exports as each one ends and prints one line per trial.

    Args:
        run_dir: the search's directory.
        planned_trials / planned_epochs: the schedule, for "trial n of N" and the ETA.
        describe: the search's data and seed, recorded in `best_hyperparameters.json`.
        log: where progress lines go (None: nowhere).
    """

    def __init__(self, run_dir: Path, planned_trials: int, planned_epochs: int, describe: dict,
                 log=print):
        self.run_dir = Path(run_dir)
        self.planned_trials, self.planned_epochs = planned_trials, planned_epochs
        self.describe, self.log = describe, log
        path = self.run_dir / STATS_FILE
        self.stats = json.loads(path.read_text()) if path.exists() else {}
        self._started: dict[str, float] = {}
        self._search_started = time.monotonic()
        self._epochs_this_run = 0

    def trial_started(self, trial) -> None:
        self._started[trial.trial_id] = time.monotonic()

    def trial_trained(self, trial, histories) -> None:
        epochs = sum(len(getattr(h, "epoch", [])) for h in histories)
        self.stats[trial.trial_id] = {"epochs_run": epochs}
        self._epochs_this_run += epochs

    def trial_ended(self, trials, trial) -> None:
        seconds = time.monotonic() - self._started.pop(trial.trial_id, time.monotonic())
        self.stats.setdefault(trial.trial_id, {"epochs_run": 0})["seconds"] = round(seconds, 2)
        atomic_write_text(self.run_dir / STATS_FILE, json.dumps(self.stats, indent=1))
        self.export(trials)
        if self.log:
            self.log(self._progress_line(trials, trial))

    def export(self, trials) -> None:
        """Rewrites `trials.csv` and, when some trial completed, `best_hyperparameters.json`."""
        import pandas as pd

        trials = list(trials)
        frame = pd.DataFrame(trial_rows(trials, self.stats))
        atomic_write_text(self.run_dir / TRIALS_FILE, frame.to_csv(index=False))
        best = best_completed_trial(trials)
        if best is not None:
            record = {"trial_id": best.trial_id, "val_accuracy": best.score,
                      "val_loss": _at_best_step(best, "val_loss"),
                      "hyperparameters": searched_values(best), **self.describe}
            atomic_write_text(self.run_dir / BEST_FILE, json.dumps(record, indent=2))

    def _progress_line(self, trials, trial) -> str:
        trials = list(trials)
        ended = sum(t.status in ("COMPLETED", "FAILED") for t in trials)
        best = best_completed_trial(trials)
        score = f"val_accuracy {trial.score:.4f}" if trial.status == "COMPLETED" else trial.status
        best_text = f"best {best.score:.4f} (trial {best.trial_id})" if best else "best -"
        elapsed = time.monotonic() - self._search_started
        done_epochs = sum(s.get("epochs_run", 0) for s in self.stats.values())
        eta = ""
        if self._epochs_this_run and self.planned_epochs > done_epochs:
            per_epoch = elapsed / self._epochs_this_run
            eta = f", ETA <= {_duration(per_epoch * (self.planned_epochs - done_epochs))}"
        return (f"trial {ended}/{self.planned_trials} ({trial.trial_id}) {score} | {best_text} | "
                f"{_duration(elapsed)} elapsed{eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
