"""`--time-budget`: a wall-clock limit on a search, kept across the runs that resume it.

Like Optuna's `timeout` and Ray Tune's `time_budget_s`: once the budget is spent no trial starts,
and the running one stops at its next batch end; Keras then validates what it trained of that epoch
and the trial is recorded as it ended (keras-tuner scores it by its best epoch so far). Those
passes, the trial's records and the winner's export come after training stops, so the clock counts
the budget spent a reserve early: the longest this run has seen from a trial's last batch to its
recorded end, plus its longest model build (the export builds the winner again). A run's time
counts from `run_search`'s call, or from the `started` its caller gives (the command line gives
its own start, so importing TensorFlow counts). The time spent is saved in the run directory
(`search_time.json`) at every trial end and when the search stops, so running the same command
again with a larger budget resumes with what is left. A run stopped by Ctrl-C loses the time of
its unfinished trial from that sum (it is saved at trial ends).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

from tuning.errors import UsageError
from tuning.host.files import atomic_write_text

TIME_FILE = "search_time.json"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


class BudgetSpent(Exception):
    """Raised before a trial would start once the budget is spent; ends the search loop."""


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "2h", "1h30m" or "1.5h" (a bare number is seconds).

    Raises:
        ValueError: anything else, or not above zero.
    """
    cleaned = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise ValueError(
                f"expected a duration such as 90s, 30m, 2h or 1h30m, got {text!r}"
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not 0 < seconds < math.inf:  # also refuses "nan" and "inf"
        raise ValueError(f"expected a finite duration above zero, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as progress lines show it: "45s", "12m03s" or "2h05m"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class SearchClock:
    """Seconds a search has spent, over every run of it, against an optional budget.

    One per search: keras-tuner deep-copies the callbacks for every trial, and the copies share
    this clock, so what one trial measures of the ends' cost the next one uses.

    Args:
        started: `time.monotonic()` when this run began (default: now).
    """

    def __init__(self, run_dir: Path, budget: float | None, started: float | None = None):
        self.path, self.budget = Path(run_dir) / TIME_FILE, budget
        self.spent_before = _read_spent(self.path)
        self._started = time.monotonic() if started is None else started
        self.longest_end = self.longest_build = 0.0  # seconds, as this run measured them
        self._trial_began = self._last_batch = None

    def __deepcopy__(self, memo):
        return self

    def spent(self) -> float:
        return self.spent_before + time.monotonic() - self._started

    def left(self) -> float | None:
        return None if self.budget is None else max(self.budget - self.spent(), 0.0)

    def reserve(self) -> float:
        """Seconds kept for what follows training: a trial's end, then the winner's export."""
        return self.longest_end + self.longest_build

    def is_spent(self) -> bool:
        """Whether training must stop (or no trial start) for the search to end by its budget."""
        return self.budget is not None and self.spent() + self.reserve() >= self.budget

    def trial_began(self) -> None:
        self._trial_began, self._last_batch = time.monotonic(), None

    def model_built(self) -> None:
        if self._trial_began is not None:
            built = time.monotonic() - self._trial_began
            self.longest_build = max(self.longest_build, built)

    def batch_trained(self) -> None:
        self._last_batch = time.monotonic()

    def trial_ended(self) -> None:
        """After a trial's records: how long its end took after its last batch."""
        if self._last_batch is not None:
            self.longest_end = max(self.longest_end, time.monotonic() - self._last_batch)
        self._trial_began = self._last_batch = None

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"seconds_spent": round(self.spent(), 1)}))

    def raise_if_spent(self) -> None:
        if self.is_spent():
            raise BudgetSpent


def _read_spent(path: Path) -> float:
    if not path.is_file():
        return 0.0
    try:
        return float(json.loads(path.read_text())["seconds_spent"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(
            f"{path} is unreadable; delete it to count this search's time from zero"
        ) from None
