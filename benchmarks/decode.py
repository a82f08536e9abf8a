"""Reading a folder of pictures: the first read (decode every file) against the cached read.

    python -m benchmarks.decode --archive ../shared/data/cifar10-train.tar.gz
    python -m benchmarks.decode --folder DIR

`--archive` extracts a `.tar.gz` of class folders into a temporary folder first (not timed).
Then, with an empty cache folder, the training split is read as a search reads it
(`tuning.data.sources.read_split`): the first read lists the folder, reads every file's header
for the most common side, decodes every picture on all cores and saves the arrays; the cached
reads (`--repeats`, default 3) list the folder again and load the arrays. Writes
`benchmarks/results/decode-<date>.json` with the seconds, the pictures and this machine.
"""

from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.machine import RESULTS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--archive", help="a .tar.gz of class folders")
    source.add_argument("--folder", help="a folder of class folders")
    parser.add_argument("--repeats", type=int, default=3, help="cached reads")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(args.folder) if args.folder else _extract(Path(args.archive), Path(work))
        os.environ["CIFAR_TUNE_CACHE"] = str(Path(work) / "cache")
        record = time_reads(folder, args.repeats)
    record["source"] = args.archive or args.folder
    from benchmarks.machine import save_result

    save_result("decode", record, folder=Path(args.results))


def time_reads(folder: Path, repeats: int) -> dict:
    from tuning.data.folders import list_folder
    from tuning.data.sources import read_split

    start = time.perf_counter()
    listing = list_folder(folder)
    listed = time.perf_counter() - start
    start = time.perf_counter()
    first = read_split(str(folder), "train", log=print)
    first_seconds = time.perf_counter() - start
    cached = []
    for _ in range(repeats):
        start = time.perf_counter()
        again = read_split(str(folder), "train")
        cached.append(round(time.perf_counter() - start, 2))
    assert (again.images == first.images).all()
    record = {
        "pictures": len(listing.files["train"]),
        "classes": list(listing.classes),
        "side": int(first.images.shape[1]),
        "training_split_after_held_out_test": len(first),
        "processes": os.cpu_count(),
        "listing_seconds": round(listed, 2),
        "first_read_seconds": round(first_seconds, 2),
        "cached_read_seconds": cached,
    }
    print(record)
    return record


def _extract(archive: Path, work: Path) -> Path:
    target = work / "pictures"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")
    inside = [p for p in target.iterdir() if p.is_dir()]
    return inside[0] if len(inside) == 1 and (inside[0] / "train").is_dir() else target


if __name__ == "__main__":
    main()
