"""Trial records on disk: `trials.csv`, `best_hyperparameters.json`, progress lines.

Everything here is rebuilt from the oracle's trials plus each trial's `trial_stats/<id>.json`
(seconds and epochs, written by whichever process ran it), so a resumed or distributed search
exports exactly what an uninterrupted single-process one would. `trial_stats.json` gathers them
all.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tuning.engine.budget import format_duration
from tuning.engine.cost import refused_for_cost
from tuning.host.files import atomic_write_text
from tuning.rundir import BEST_FILE, TRIALS_FILE

STATS_FILE = "trial_stats.json"
STATS_DIR = "trial_stats"


def best_completed_trial(trials):
    """The COMPLETED trial with the highest finite val_accuracy, or None (failed ones never win)."""
    done = [
        t
        for t in trials
        if t.status == "COMPLETED" and t.score is not None and math.isfinite(t.score)
    ]
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


def short_reason(trial) -> str:
    """A failed trial's reason without the exception's name, in parentheses, or ''."""
    reason = _reason(trial)
    return f"({reason.split(': ', 1)[-1]})" if reason else ""


def _reason(trial) -> str:
    """The last line of a failed trial's message (the exception), or ''."""
    if trial.status == "COMPLETED" or not trial.message:
        return ""
    lines = [line.strip() for line in str(trial.message).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class TrialRecorder:
    """Times trials, rewrites the exports as each one ends and prints one line per trial.

    In a distributed search each worker records the stats of the trials it runs and prints its own
    lines (`exports=False`); the chief, which runs none, exports and prints the overall progress.

    Args:
        run_dir: the search's directory.
        planned_trials / planned_epochs: the schedule, for "trial n of N" and the ETA.
        describe: the search's data and seed, recorded in `best_hyperparameters.json`.
        log: where progress lines go (None: nowhere).
        exports: write `trials.csv` and friends (False on workers).
        who: the worker's name in its lines.
        clock: the search's `tuning.engine.budget.SearchClock`: lines show the budget left.
        redraws_refused: Hyperband draws again for each trial refused for its cost, so the
            planned count grows by one per refusal.
    """

    def __init__(
        self,
        run_dir: Path,
        planned_trials: int,
        planned_epochs: int,
        describe: dict,
        log=print,
        exports: bool = True,
        who: str = "",
        clock=None,
        redraws_refused: bool = False,
    ):
        self.run_dir = Path(run_dir)
        self.planned_trials, self.planned_epochs = planned_trials, planned_epochs
        self.describe, self.log, self.exports, self.who = describe, log, exports, who
        self._started: dict[str, float] = {}
        self._epoch_counts: dict[str, dict] = {}  # epochs_run (and a fine-tune trial's split)
        self._scores: dict[str, float | None] = {}  # what a worker knows of its trials' scores
        self.ran: list[str] = []  # statuses of the trials this process ran
        self._search_started = time.monotonic()
        self.clock, self.redraws_refused = clock, redraws_refused
        self._epochs_before = _epochs_run(self.read_stats())

    def trial_started(self, trial) -> None:
        self._started[trial.trial_id] = time.monotonic()

    def trial_trained(self, trial, histories) -> None:
        warm_ups = [h.head_epochs_run for h in histories if hasattr(h, "head_epochs_run")]
        histories = [getattr(h, "history", {}) for h in histories]
        epochs = sum(len(h.get("loss", [])) for h in histories)
        self._epoch_counts[trial.trial_id] = {"epochs_run": epochs}
        if warm_ups:  # fine-tuning: what the tuner counted fine-tuned, after a head warm-up
            self._epoch_counts[trial.trial_id].update(
                head_epochs_run=sum(warm_ups), finetune_epochs_run=epochs
            )
        scores = [v for h in histories for v in h.get("val_accuracy", [])]
        self._scores[trial.trial_id] = max(scores, default=None)

    def write_stats(self, trial) -> None:
        """Records the trial's epochs and seconds (before it ends, so an export finds them)."""
        seconds = time.monotonic() - self._started.pop(trial.trial_id, time.monotonic())
        stats = {
            **self._epoch_counts.pop(trial.trial_id, {"epochs_run": 0}),
            "seconds": round(seconds, 2),
        }
        if self.who:
            stats["worker"] = self.who
        atomic_write_text(self.run_dir / STATS_DIR / f"{trial.trial_id}.json", json.dumps(stats))

    def trial_ended(self, trials, trial) -> None:
        """Exports and prints the overall progress; on a worker, only its own line."""
        self.ran.append(trial.status)
        if not self.exports:
            score = self._scores.pop(trial.trial_id, None)
            if self.log:
                text = f"val_accuracy {score:.4f}" if score is not None else trial.status
                self.log(f"{self.who}: trial {trial.trial_id} {text}")
            return
        stats = self.export(trials)
        if self.log:
            self.log(self._progress_line(trials, trial, stats))

    def read_stats(self) -> dict:
        folder = self.run_dir / STATS_DIR
        stats = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                stats[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced this instant: the next export reads it
        return stats

    def export(self, trials) -> dict:
        """Rewrites `trials.csv`, `trial_stats.json` and, when some trial completed,
        `best_hyperparameters.json`. Returns the stats."""
        import pandas as pd

        trials, stats = list(trials), self.read_stats()
        atomic_write_text(self.run_dir / STATS_FILE, json.dumps(stats, indent=1))
        frame = pd.DataFrame(trial_rows(trials, stats))
        atomic_write_text(self.run_dir / TRIALS_FILE, frame.to_csv(index=False))
        best = best_completed_trial(trials)
        if best is not None:
            record = {
                "trial_id": best.trial_id,
                "val_accuracy": best.score,
                "val_loss": _at_best_step(best, "val_loss"),
                "hyperparameters": searched_values(best),
                **self.describe,
            }
            atomic_write_text(self.run_dir / BEST_FILE, json.dumps(record, indent=2))
        return stats

    def _progress_line(self, trials, trial, stats: dict) -> str:
        trials = list(trials)
        ended = sum(t.status in ("COMPLETED", "FAILED") for t in trials)
        planned = self.planned_trials
        if self.redraws_refused:
            planned += sum(map(refused_for_cost, trials))
        best = best_completed_trial(trials)
        score = (
            f"val_accuracy {trial.score:.4f}"
            if trial.status == "COMPLETED"
            else " ".join(filter(None, [trial.status, short_reason(trial)]))
        )
        best_text = f"best {best.score:.4f} (trial {best.trial_id})" if best else "best -"
        elapsed = time.monotonic() - self._search_started
        done_epochs = _epochs_run(stats)
        budget_left = self.clock.left() if self.clock is not None else None
        eta = ""
        if done_epochs > self._epochs_before and self.planned_epochs > done_epochs:
            per_epoch = elapsed / (done_epochs - self._epochs_before)
            seconds = per_epoch * (self.planned_epochs - done_epochs)
            if budget_left is not None:  # the budget ends the search first
                seconds = min(seconds, budget_left)
            eta = f", ETA <= {format_duration(seconds)}"
        left = ""
        if budget_left is not None:
            budget = format_duration(self.clock.budget)
            left = f", {format_duration(budget_left)} of {budget} budget left"
        return (
            f"trial {ended}/{planned} ({trial.trial_id}) {score} | {best_text} | "
            f"{format_duration(elapsed)} elapsed{eta}{left}"
        )


def _epochs_run(stats: dict) -> int:
    return sum(s.get("epochs_run", 0) for s in stats.values())
