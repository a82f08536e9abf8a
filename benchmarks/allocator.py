"""TensorFlow's oneDNN pool against malloc (TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1), epoch for epoch.

    python -m benchmarks.allocator     # 10,000 training + 1,000 validation synthetic images

Each round runs one fresh process per allocator, alternately (successive runs on this machine
vary by up to 30%), and each process times the epochs a search spends its time in, each
model's second (the first includes tracing): the seed scratch CNN, a `feature` head on cached
VGG-16 activations and `finetune` with block5 unfrozen on cached block4 output. The caches are
built in the first process and reused by the others. Prints medians per allocator and writes
`benchmarks/results/allocator-ab-<date>.json` (malloc is named `lean` there, as in older files).
Memory over 30 trials is `benchmarks.speed`'s job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import RESULTS, alternate_rounds
from benchmarks.speed import FEATURE_HP, FINETUNE_HP
from tuning.host.runtime import SYSTEM_ALLOCATOR

ALLOCATORS = {"pool": "0", "lean": "1"}  # TF_ONEDNN_USE_SYSTEM_ALLOCATOR
MEASURES = ("scratch_epoch", "feature_cached_epoch", "finetune_cached_epoch")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    parser.add_argument("--one", choices=ALLOCATORS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(time_epochs(args)))
        return
    with tempfile.TemporaryDirectory() as cache:
        runs = alternate_rounds(
            list(ALLOCATORS), args.rounds, lambda name: _in_fresh_process(name, cache, args)
        )
    summary = {
        name: {m: round(statistics.median(r[m] for r in runs[name]), 3) for m in MEASURES}
        for name in ALLOCATORS
    }
    summary["lean_over_pool"] = {
        m: round(summary["lean"][m] / summary["pool"][m], 3) for m in MEASURES
    }
    print(json.dumps(summary, indent=1))
    from benchmarks.machine import save_result

    save_result(
        "allocator-ab",
        {
            "command": "python -m benchmarks.allocator",
            "seed": args.seed,
            "batch_size": 128,
            "train_images": args.train_size,
            "validation_images": args.val_size,
            "allocators": {
                name: f"{SYSTEM_ALLOCATOR}={value}" for name, value in ALLOCATORS.items()
            },
            "runs": runs,
            "medians_seconds": summary,
        },
        folder=Path(args.results),
    )


def time_epochs(args) -> dict:
    """Epoch seconds under the allocator this process was started with (`--one`)."""
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    from benchmarks.speed import epoch_seconds, feature_cache
    from search_spaces import SEED_PRESETS, fixed_hyperparameters
    from tuning.data.sources import load_search_data

    data = load_search_data(
        "synthetic", seed=args.seed, train_size=args.train_size, val_size=args.val_size
    )
    probe = tf.zeros([2**20])  # 4 MB: in the pool only if the pool is in use
    in_pool = tf.config.experimental.get_memory_info("CPU:0")["current"] >= 4 * 2**20
    del probe
    result = {"tensorflow_pool_in_use": in_pool}
    for method, values in (("feature", FEATURE_HP), ("finetune", FINETUNE_HP)):
        cache, _ = feature_cache(method, data, args.seed, Path(args.cache))
        hp = fixed_hyperparameters(values)
        result[f"{method}_cached_epoch"] = round(
            epoch_seconds(method, hp, data, args.seed, cache), 3
        )
    hp = fixed_hyperparameters(SEED_PRESETS["scratch"])
    result["scratch_epoch"] = round(epoch_seconds("scratch", hp, data, args.seed, None), 3)
    return result


def _in_fresh_process(name: str, cache: str, args) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.allocator",
        "--one",
        name,
        "--cache",
        cache,
        "--train-size",
        str(args.train_size),
        "--val-size",
        str(args.val_size),
        "--seed",
        str(args.seed),
    ]
    env = {**os.environ, SYSTEM_ALLOCATOR: ALLOCATORS[name]}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
