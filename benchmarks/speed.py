"""Where a search's time goes on the CPU, measured side by side in one run.

    python -m benchmarks.speed            # the full synthetic set: 45,000 train + 5,000 validation

1. Feature extraction: a training epoch with the frozen VGG-16 run in every step (plain
   keras-tuner) against one on cached activations, plus the one-off cost of caching.
2. Fine-tuning with block5 unfrozen: the same, the cache holding block4's output.
3. Scratch: the seed CNN trained by our engine (one trial) against a bare `model.fit`,
   alternately, three times each.
4. Memory: RSS over 30 short trials of a random scratch search (a fresh process): held between
   trials, and at each trial's end.
5. `python -m tuning --help` start-up time.

Epoch times are each model's second epoch (the first includes tracing), validation included.
Prints a table and writes `benchmarks/results/speed-<date>.json`. `--tiny` runs everything on a
few hundred images to check the benchmark itself works (it is not a measurement).
`--memory-only` runs 4 alone under the allocator in effect (malloc by default;
TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0 for TensorFlow's pool), writing `memory-<pool|malloc>-<date>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import RESULTS

FEATURE_HP = {
    "pooling": "flatten",
    "dense_units": 256,
    "dropout": 0.5,
    "learning_rate": 1e-3,
    "flip": True,
}
FINETUNE_HP = {
    "dense_units": 256,
    "dropout": 0.5,
    "head_learning_rate": 1e-3,
    "unfreeze_blocks": 1,
    "finetune_learning_rate": 1e-5,
    "flip": True,
    "head_epochs": 0,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a quick check on 400 images")
    parser.add_argument("--trials", type=int, default=30, help="trials of the memory run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the memory run, saved as memory-<pool|malloc>-<date>.json",
    )
    parser.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = dict(train_size=300, val_size=100) if args.tiny else {}

    if args.rss_only:
        print(json.dumps(rss_over_trials(args.trials, args.seed, sizes)))
        return
    if args.memory_only:
        save_memory_run(args)
        return
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from benchmarks.machine import save_result
    from tuning.data.sources import load_search_data

    data = load_search_data("synthetic", seed=args.seed, **sizes)
    with tempfile.TemporaryDirectory() as scratch_dir:
        results = {
            "feature_epoch": cached_vs_uncached(
                "feature", FEATURE_HP, data, args.seed, Path(scratch_dir)
            ),
            "finetune_block5_epoch": cached_vs_uncached(
                "finetune", FINETUNE_HP, data, args.seed, Path(scratch_dir)
            ),
            "scratch_tuner_vs_fit": tuner_vs_fit(
                args.seed, sizes, Path(scratch_dir), rounds=1 if args.tiny else 3
            ),
        }
    results["rss_over_trials"] = _in_fresh_process(args)
    results["help_seconds"] = help_seconds()
    print(table(results))
    command = "python -m benchmarks.speed" + (" --tiny" if args.tiny else "")
    save_result(
        "speed-tiny" if args.tiny else "speed",
        {
            "command": command,
            "data": data.describe(),
            "seed": args.seed,
            "batch_size": 128,
            "results": results,
        },
        folder=Path(args.results),
    )


def cached_vs_uncached(method: str, values: dict, data, seed: int, cache_root: Path) -> dict:
    """Seconds of a training epoch on images through the frozen layers, and on cached ones."""
    from search_spaces import fixed_hyperparameters

    hp = fixed_hyperparameters(values)
    features, caching = feature_cache(method, data, seed, cache_root)
    epochs = {}
    for name, cache in (("uncached", None), ("cached", features)):
        epochs[name] = epoch_seconds(method, hp, data, seed, cache)
        print(f"{method}: {name} epoch {epochs[name]:.2f} s", flush=True)
    return {
        "uncached_seconds": round(epochs["uncached"], 2),
        "cached_seconds": round(epochs["cached"], 3),
        "speedup": round(epochs["uncached"] / epochs["cached"], 1),
        "caching_seconds_once": round(caching, 1),
        "train_images": len(data.train),
        "validation_images": len(data.validation),
    }


def feature_cache(method: str, data, seed: int, cache_root: Path, held_bytes: int | None = None):
    """The benchmark's VGG-16 (random weights cost what ImageNet's do) and its prepared cache
    (`held_bytes`: FeatureCache's, by default the search's).

    The weights come from `seed`, so another process finds the same cache under `cache_root`.
    """
    import keras

    from search_spaces import load_base
    from search_spaces.backbones import cut_layer
    from tuning.data.features import HELD_BYTES, FeatureCache

    keras.utils.set_random_seed(seed)
    backbone = load_base("vgg16", "none", 32)
    features = FeatureCache(
        backbone,
        32,
        data,
        128,
        seed,
        root=cache_root / method,
        held_bytes=HELD_BYTES if held_bytes is None else held_bytes,
    )
    layers = [cut_layer("vgg16", units) for units in ((0, 1) if method == "finetune" else (0,))]
    return features, features.prepare(layers) or 0.0


def epoch_seconds(method: str, hp, data, seed: int, cache, timed: int = 1):
    """Seconds of a `method` model's second training epoch (the first includes tracing); with
    `timed` > 1, the list of seconds of epochs 2 to `timed` + 1."""
    import keras

    from search_spaces import create_hypermodel
    from tuning.data.pipeline import fit_data

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    hypermodel = create_hypermodel(method, "none", 32, head_epochs=0, features=cache)
    model = hypermodel.build(hp)
    timer = EpochTimer()
    args, kwargs = fit_data(hypermodel, data, 128, seed)
    hypermodel.fit(
        hp, model, *args, **kwargs, epochs=1 + timed, callbacks=[timer], verbose=0, shuffle=False
    )  # as the search: its datasets shuffle themselves
    return timer.seconds[-1] if timed == 1 else timer.seconds[1:]


def tuner_vs_fit(seed: int, sizes: dict, out: Path, epochs: int = 3, rounds: int = 3) -> dict:
    """Wall seconds of the seed CNN for `epochs`, bare `model.fit` against our search engine.

    Successive fits in one process vary by up to 30% here (the first is often the fastest), so the
    two run alternately, `rounds` times each, and the medians are compared. Both include loading
    the data and building the model; the engine also writes checkpoints, TensorBoard logs,
    trials.csv and best_model.keras.
    """
    bare, tuned = [], []
    for _ in range(rounds):
        bare.append(_bare_fit(seed, sizes, epochs))
        tuned.append(_engine_fit(seed, sizes, epochs, out))
        print(f"scratch: bare fit {bare[-1]:.1f} s, search engine {tuned[-1]:.1f} s", flush=True)
    bare_median, tuned_median = statistics.median(bare), statistics.median(tuned)
    return {
        "epochs": epochs,
        "rounds": rounds,
        "bare_fit_seconds": [round(b, 1) for b in bare],
        "tuner_seconds": [round(t, 1) for t in tuned],
        "bare_fit_median": round(bare_median, 1),
        "tuner_median": round(tuned_median, 1),
        "overhead": round(tuned_median / bare_median - 1, 3),
    }


def _bare_fit(seed: int, sizes: dict, epochs: int) -> float:
    import keras

    from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters
    from tuning.data.pipeline import to_dataset
    from tuning.data.sources import load_search_data
    from tuning.host.runtime import forget_custom_gradients

    keras.backend.clear_session()
    forget_custom_gradients()  # as the engine does between trials
    start = time.perf_counter()
    data = load_search_data("synthetic", seed=seed, **sizes)
    keras.utils.set_random_seed(seed)
    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    model.fit(
        to_dataset(data.train, 128, shuffle=True, seed=seed),
        epochs=epochs,
        verbose=0,
        validation_data=to_dataset(data.validation, 128),
    )
    return time.perf_counter() - start


def _engine_fit(seed: int, sizes: dict, epochs: int, out: Path) -> float:
    from tuning.config import SearchConfig
    from tuning.engine.search import run_search

    config = SearchConfig(
        method="scratch",
        preset="seed",
        data="synthetic",
        seed=seed,
        max_epochs=epochs,
        patience=epochs,
        out=str(out),
        overwrite=True,
        verbose=0,
        **sizes,
    )
    start = time.perf_counter()
    run_search(config, log=None)
    return time.perf_counter() - start


def rss_over_trials(trials: int, seed: int, sizes: dict) -> dict:
    """RSS over a `trials`-trial random scratch search with 1-epoch trials, read two ways.

    Held between trials: as each trial begins, after the search engine has given back what the
    trial before it left (`release_memory`), and once more after the search; what a long search
    keeps piling up. At each trial's end: what the trial itself used, still held.
    """
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tuning.engine.search
    import tuning.engine.tuner
    from tuning.config import SearchConfig
    from tuning.host.runtime import release_memory

    at_end, between = [], []

    def record(line: str) -> None:
        if line.startswith("trial "):
            at_end.append(_rss_mb())

    def release_then_read() -> bool:
        released = release_memory()
        between.append(_rss_mb())
        return released

    # the tuner calls it as each trial begins
    tuning.engine.tuner.release_memory = release_then_read
    try:
        with tempfile.TemporaryDirectory() as out:
            config = SearchConfig(
                method="scratch",
                tuner="random",
                max_trials=trials,
                max_epochs=1,
                data="synthetic",
                seed=seed,
                train_size=sizes.get("train_size", 2000),
                val_size=sizes.get("val_size", 500),
                out=out,
                verbose=1,
            )
            tuning.engine.search.run_search(config, log=record)
    finally:
        tuning.engine.tuner.release_memory = release_memory
    release_then_read()
    return {
        "trials": len(at_end),
        "rss_mb_after_each_trial": at_end,
        "growth_mb_first_to_last": round(at_end[-1] - at_end[0], 1),
        "growth_mb_first_to_max": round(max(at_end) - at_end[0], 1),
        "rss_mb_between_trials": between,
        "held_growth_mb_before_first_to_after_last": round(between[-1] - between[0], 1),
        "held_growth_mb_max": round(max(between) - between[0], 1),
        "note": "trials are random scratch models of very different sizes; "
        "rss_mb_between_trials is read as each trial begins, after release_memory, "
        "and once after the search; rss_mb_after_each_trial at each trial's end; "
        "which allocator: machine.allocator",
    }


def save_memory_run(args) -> None:
    """The memory run alone, under the allocator this process was started with."""
    from benchmarks.machine import save_result
    from tuning.host.runtime import (
        SYSTEM_ALLOCATOR,
        import_tensorflow_quietly,
        malloc_holds_tensors,
    )

    rss = _in_fresh_process(args)
    import_tensorflow_quietly()  # for the machine's facts
    print("\n".join(f"{a}  {b}  {c}" for a, b, c in _memory_rows(rss)))
    allocator = "malloc" if malloc_holds_tensors() else "pool"
    command = (
        f"{SYSTEM_ALLOCATOR}={os.environ[SYSTEM_ALLOCATOR]} python -m benchmarks.speed "
        f"--memory-only" + (" --tiny" if args.tiny else "")
    )
    save_result(
        f"memory-{allocator}" + ("-tiny" if args.tiny else ""),
        {"command": command, "seed": args.seed, "results": {"rss_over_trials": rss}},
        folder=Path(args.results),
    )


def help_seconds(runs: int = 5) -> dict:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tuning", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return {"median": round(statistics.median(times), 3), "max": round(max(times), 3)}


def table(results: dict) -> str:
    feature, finetune = results["feature_epoch"], results["finetune_block5_epoch"]
    tuner, rss = results["scratch_tuner_vs_fit"], results["rss_over_trials"]
    rows = [
        (
            "feature epoch, uncached / cached (s)",
            f"{feature['uncached_seconds']} / {feature['cached_seconds']}",
            f"{feature['speedup']}x (caching once: {feature['caching_seconds_once']} s)",
        ),
        (
            "finetune block5 epoch, uncached / cached (s)",
            f"{finetune['uncached_seconds']} / {finetune['cached_seconds']}",
            f"{finetune['speedup']}x (caching once: {finetune['caching_seconds_once']} s)",
        ),
        (
            f"scratch {tuner['epochs']} epochs, bare fit / search engine (s, median of "
            f"{tuner['rounds']})",
            f"{tuner['bare_fit_median']} / {tuner['tuner_median']}",
            f"overhead {tuner['overhead']:+.1%}",
        ),
        *_memory_rows(rss),
        (
            "python -m tuning --help (s)",
            f"median {results['help_seconds']['median']}",
            f"max {results['help_seconds']['max']}",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    return "\n".join(f"{a:<{width}}  {b:<22}  {c}" for a, b, c in rows)


def _memory_rows(rss: dict) -> list[tuple[str, str, str]]:
    between, at_end = rss["rss_mb_between_trials"], rss["rss_mb_after_each_trial"]
    return [
        (
            f"RSS held between {rss['trials']} trials (MB)",
            f"{between[0]} -> {between[-1]}",
            f"growth {rss['held_growth_mb_before_first_to_after_last']} "
            f"(max {rss['held_growth_mb_max']})",
        ),
        (
            "RSS at trial ends, first -> last (MB)",
            f"{at_end[0]} -> {at_end[-1]}",
            f"growth {rss['growth_mb_first_to_last']} (max {rss['growth_mb_first_to_max']})",
        ),
    ]


class EpochTimer:
    """A Keras callback (built lazily, so importing this module needs no TensorFlow)."""

    def __new__(cls):
        import keras

        class EpochTimer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return EpochTimer()


def _in_fresh_process(args) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.speed",
        "--rss-only",
        "--trials",
        str(args.trials),
        "--seed",
        str(args.seed),
    ] + (["--tiny"] if args.tiny else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


if __name__ == "__main__":
    main()
