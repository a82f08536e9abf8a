"""The planner's calibration against the steady cost of the models it times.

    python -m benchmarks.calibration --data DIR_OR_FILE [--train-size N]
    python -m benchmarks.calibration --data ... --code /tmp/before --code .   # two checkouts

A `--time-budget` search prices an epoch from a few timed training steps of the cheapest and
costliest of its sampled configurations (`tuning.engine.plan.measure_pricing`). Each fresh process
here builds those same models (the default `scratch` space, `--seed`), prices them with the
checkout's own `time_steps`, then trains each for `--steps` more batches of the search's batch
size and takes the median step: the steady cost a trial pays. The ratio of the two is the
calibration's error (above 1: the plan overprices an epoch and leaves the budget unused). With
several `--code` checkouts the processes alternate (`alternate_rounds`). Writes
`benchmarks/results/calibration-<date>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.machine import RESULTS, alternate_rounds, invocation

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a --data source of the search")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--code", action="append", help="a checkout whose planner is timed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="steady steps timed per model")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args)))
        return
    codes = [str(Path(c).resolve()) for c in args.code or [ROOT]]
    runs = alternate_rounds(codes, args.rounds, lambda code: _fresh(code, argv))
    ratios = {
        code: round(statistics.median(r["overpriced"] for r in results), 2)
        for code, results in runs.items()
    }
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # for the machine's facts
    from benchmarks.machine import save_result

    record = {
        "command": invocation("benchmarks.calibration", argv),
        "codes": {code: _commit(code) for code in codes},
        "runs": runs,
        "median_calibrated_over_steady": ratios,
        "note": "per model: the calibration's seconds per image (calibrated) and the median of "
        "--steps steady steps at the search's batch size (steady), seconds per image; "
        "overpriced is calibrated / steady, averaged over the cheap and the costly model",
    }
    save_result("calibration", record, Path(args.results))


def _fresh(code: str, argv) -> dict:
    """One process whose `tuning` (and `benchmarks.machine`) come from `code`."""
    given = list(argv if argv is not None else sys.argv[1:])
    command = [sys.executable, str(Path(__file__).resolve()), *given, "--one"]
    env = {**os.environ, "PYTHONPATH": code, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=code)
    if done.returncode != 0:
        sys.exit(f"calibration: {code}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args) -> dict:
    """Calibrated and steady seconds per image of the space's cheapest and costliest draws."""
    import tuning.engine.plan as plan
    from tuning.config import SearchConfig
    from tuning.data.sources import data_of
    from tuning.engine.cost import multiply_adds

    config = SearchConfig(
        method="scratch", data=args.data, train_size=args.train_size, seed=args.seed
    )
    data = data_of(config)
    models, price = _planner(plan, config, data)
    madds = [multiply_adds(m) for m in models]
    picked = {"cheap": madds.index(min(madds)), "costly": madds.index(max(madds))}
    result = {"planner": plan.__file__}
    for name, index in picked.items():
        calibrated, _ = price(models[index])
        steady = _steady_seconds_per_image(models[index], data, config.batch_size, args.steps)
        result[name] = {
            "madds": madds[index],
            "calibrated": round(calibrated, 6),
            "steady": round(steady, 6),
        }
    result["overpriced"] = round(
        statistics.mean(result[n]["calibrated"] / result[n]["steady"] for n in picked), 2
    )
    return result


def _planner(plan, config, data) -> tuple[list, object]:
    """(the models `plan` samples, model -> its `time_steps`), by the checkout's own API."""
    if not hasattr(plan, "step_batches"):  # checkouts before the planner took a HyperModel
        drawn = plan.sampled_models(config, None, data)
        batch = min(config.batch_size, plan.TIMED_BATCH)
        models = drawn[0] if isinstance(drawn, tuple) else drawn  # older: the models alone
        return models, lambda model: plan.time_steps(model, data, batch)
    from tuning.data.features import hypermodel_for

    hypermodel = hypermodel_for(config, data, None, epochs=plan.PLANNED_MIN_EPOCHS)
    batches = plan.step_batches(config, data, hypermodel)
    models, _ = plan.sampled_models(config, None, hypermodel)
    return models, lambda model: plan.time_steps(model, *batches(model))


def _steady_seconds_per_image(model, data, batch_size: int, steps: int) -> float:
    import time

    import keras
    import numpy as np

    from tuning.data.pipeline import to_dataset

    batches = to_dataset(data.train.subset(slice(0, batch_size * (steps + 2))), batch_size)
    ends = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda *_, **__: ends.append(time.perf_counter())
    )
    model.fit(batches, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return float(np.median(np.diff(ends)[1:])) / batch_size


def _commit(code: str) -> str:
    done = subprocess.run(
        ["git", "-C", code, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", code, "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return done.stdout.strip() + (" + uncommitted changes" if dirty else "")


if __name__ == "__main__":
    main()
