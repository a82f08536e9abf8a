"""A whole search's wall time with the feature cache, beside what the uncached search would take.

    python -m benchmarks.search_walltime --method feature
    python -m benchmarks.search_walltime --method finetune --train-size 10000

Runs `python -m tuning search --method M --data synthetic --weights none` (Hyperband, max-epochs 9)
with an empty cache folder, so building the cache is part of the time. The uncached estimate
multiplies the epochs the search actually trained by the uncached epoch times of the latest `speed`
benchmark (scaled to the training-set size): head-only epochs at the feature-extraction epoch time,
fine-tuning epochs at the block5 one (a lower bound when deeper blocks were unfrozen). Writes
`benchmarks/results/search-walltime-<method>-<date>.json`. `--weights none` runs exactly the
computation ImageNet weights would (only the accuracy differs, so it is not reported).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import RESULTS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True, choices=["feature", "finetune"])
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--speed", default=None, help="speed JSON (default: the latest)")
    args = parser.parse_args(argv)
    speed_path = Path(args.speed) if args.speed else sorted(RESULTS.glob("speed-2*.json"))[-1]
    speed = json.loads(speed_path.read_text())["results"]

    command = [
        "search",
        "--method",
        args.method,
        "--data",
        "synthetic",
        "--weights",
        "none",
        "--max-epochs",
        str(args.max_epochs),
    ]
    command += ["--train-size", str(args.train_size)] if args.train_size else []
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "CIFAR_TUNE_CACHE": str(Path(work) / "cache")}
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tuning", *command, "--out", str(Path(work) / "runs")],
            env=env,
            text=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr)
        print(done.stdout)
        record = _epochs(Path(work) / "runs" / args.method)
    train_images = args.train_size or 45000
    scale = train_images / speed["feature_epoch"]["train_images"]
    estimate = scale * (
        record["head_epochs"] * speed["feature_epoch"]["uncached_seconds"]
        + record["finetune_epochs"] * speed["finetune_block5_epoch"]["uncached_seconds"]
    )
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from benchmarks.machine import save_result

    result = {
        "command": "python -m tuning " + " ".join(command),
        "train_images": train_images,
        "wall_seconds": round(seconds, 1),
        **record,
        "uncached_estimate_seconds": round(estimate),
        "speed_file": speed_path.name,
        "speedup_estimate": round(estimate / seconds, 1),
    }
    print(json.dumps(result, indent=1))
    save_result(f"search-walltime-{args.method}", result)


def _epochs(run_dir: Path) -> dict:
    """Trials, and epochs trained head-only and fine-tuning (from trials.csv and the stats)."""
    import pandas as pd

    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    stats = json.loads((run_dir / "trial_stats.json").read_text())
    head = finetune = 0
    for row in trials.to_dict("records"):
        run = stats.get(row["trial_id"], {}).get("epochs_run", 0)
        first = row.get("tuner/initial_epoch")
        first = 0 if pd.isna(first) else int(first)
        limit = int(row["head_epochs"]) if "head_epochs" in row else 10**6  # feature: all head
        in_head = max(0, min(limit, first + run) - first)
        head, finetune = head + in_head, finetune + run - in_head
    return {
        "trials": len(trials),
        "completed": int((trials.status == "COMPLETED").sum()),
        "head_epochs": head,
        "finetune_epochs": finetune,
        "best_val_accuracy_random_weights": float(trials.val_accuracy.max()),
    }


if __name__ == "__main__":
    main()
