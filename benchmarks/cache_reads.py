"""A cached `finetune` epoch with its views held in memory against read per batch from their files.

    python -m benchmarks.cache_reads        # 45,000 training + 5,000 validation synthetic images

A view over `HELD_BYTES` (256 MB) is read batch by batch from its `.npy` file (`RowReader`)
instead of held as a tensor, to keep a full-size search's memory flat. This times what that
costs on the speed benchmark's `finetune` model (VGG-16's block5 unfrozen, trained from the
cached block4 activations: 2 views of 369 MB at full size): its epochs 2 to 1 + `--epochs` (the
first includes tracing) with every view held, and with every view read per batch whatever its
size, in one process, taken in turn (`alternate_rounds`: successive epochs here vary by up to
40%). Each turn makes its own cache object over the files built once at the start, so no turn
holds the other's tensors. Prints the medians and writes
`benchmarks/results/cache-reads-<date>.json`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.machine import RESULTS, alternate_rounds

SETTINGS = {"held": 2**62, "streamed": 0}  # FeatureCache's held_bytes: every view held, or none


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per round")
    parser.add_argument("--train-size", type=int, default=None, help="default: all 45,000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    args = parser.parse_args(argv)
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from benchmarks.speed import FINETUNE_HP, epoch_seconds, feature_cache
    from search_spaces import fixed_hyperparameters
    from search_spaces.backbones import cut_layer
    from tuning.data.features import HELD_BYTES
    from tuning.data.sources import load_search_data

    data = load_search_data("synthetic", seed=args.seed, train_size=args.train_size)
    hp = fixed_hyperparameters(FINETUNE_HP)
    with tempfile.TemporaryDirectory() as root:
        cache, build_seconds = feature_cache("finetune", data, args.seed, Path(root))
        view_bytes = 2 * cache.path(cut_layer("vgg16", 1), "train").stat().st_size

        def epochs(setting: str) -> list[float]:
            held = SETTINGS[setting]
            cache, _ = feature_cache("finetune", data, args.seed, Path(root), held_bytes=held)
            seconds = epoch_seconds("finetune", hp, data, args.seed, cache, timed=args.epochs)
            return [round(s, 2) for s in (seconds if args.epochs > 1 else [seconds])]

        runs = alternate_rounds(list(SETTINGS), args.rounds, epochs)
    medians = {name: statistics.median(sum(runs[name], [])) for name in SETTINGS}
    record = {
        "command": "python -m benchmarks.cache_reads",
        "seed": args.seed,
        "train_images": len(data.train),
        "validation_images": len(data.validation),
        "hyperparameters": FINETUNE_HP,
        "train_view_bytes_plain_and_flipped": view_bytes,
        "held_bytes_threshold": HELD_BYTES,
        "cache_build_seconds": round(build_seconds, 1),
        "epoch_seconds": runs,
        "median_epoch_seconds": {k: round(v, 2) for k, v in medians.items()},
        "streamed_over_held": round(medians["streamed"] / medians["held"], 3),
    }
    print({k: record[k] for k in ("median_epoch_seconds", "streamed_over_held")})
    from benchmarks.machine import save_result

    save_result("cache-reads", record, folder=Path(args.results))


if __name__ == "__main__":
    main()
