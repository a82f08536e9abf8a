"""The README's first command, timed as a new user meets it, after the install.

    python -m benchmarks.quickstart            # 3 runs

Each run is a fresh process with an empty run folder and an empty cache folder (so generating the
synthetic set is part of the time, as on a fresh machine). Records per run the wall seconds, the
best validation accuracy, the trials completed and refused, and the slowest trial's seconds and
share of the search, from the run's own `trials.csv`. Writes
`benchmarks/results/quickstart-<date>.json`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from benchmarks.machine import RESULTS, checkout, timed_cli

# The README's first command after `pip install . &&` (tests/test_readme.py keeps them equal).
QUICKSTART = (
    "search --method scratch --data synthetic --train-size 4000 --max-epochs 3 --max-madds 25M"
).split()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    parser.add_argument("--name", default="quickstart", help="the JSON's name before its date")
    args = parser.parse_args(argv)
    runs = []
    for number in range(args.runs):
        runs.append(time_once())
        print(f"run {number + 1}: {runs[-1]}", flush=True)
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # for the machine's facts
    from benchmarks.machine import save_result

    save_result(
        args.name,
        {
            "command": "python -m tuning " + " ".join(QUICKSTART),
            "checkout": checkout(),
            "how": "fresh process, empty run folder and cache folder (synthetic set generated)",
            "runs": runs,
            "max_search_seconds": max(r["seconds"] for r in runs),
        },
        folder=Path(args.results),
    )


def time_once() -> dict:
    from tuning.rundir.trials_table import load_trials

    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        done, seconds = timed_cli([*QUICKSTART, "--out", out], cache)
        done.check_returncode()
        trials = load_trials(Path(out) / "scratch")
    best = re.search(r"val_accuracy (\d\.\d+)", done.stdout.strip().splitlines()[-1])
    completed = trials[trials.status == "COMPLETED"]
    return {
        "seconds": round(seconds, 1),
        "best_val_accuracy": float(best.group(1)),
        "completed": len(completed),
        "refused": int((trials.status == "FAILED").sum()),
        "slowest_trial_seconds": float(trials.seconds.max()),
        "slowest_trial_share": round(float(trials.seconds.max()) / seconds, 3),
        "first_line": done.stdout.splitlines()[0],
    }


if __name__ == "__main__":
    main()
