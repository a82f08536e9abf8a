"""What a benchmark ran on, recorded beside its numbers, and where its JSON goes."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save_result(name: str, record: dict, folder: Path = RESULTS) -> Path:
    """Writes `folder/<name>-<date>.json` with the date and this machine's facts added."""
    date = datetime.date.today().isoformat()
    machine = machine_facts()
    record = {"benchmark": name, "date": date, **record, "holds_for": holds_for(machine)}
    record["machine"] = machine
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{date}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def machine_facts() -> dict:
    """CPU model, cores and the features that decide TensorFlow's kernels, oneDNN as TensorFlow
    reports it (with who decided), the precision `--precision auto` picks here, memory, versions
    and the tensor allocator."""
    import keras
    import tensorflow as tf

    from tuning.host.cpu import cpu_facts, onednn_line, onednn_on, tensorflow_enables_onednn
    from tuning.host.precision import choose

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        **cpu_facts(),
        "onednn": onednn_on(),
        "onednn_setting": onednn_line(),
        "tensorflow_alone_enables_onednn": tensorflow_enables_onednn(),
        "precision_auto": choose("auto", method="scratch").describe(),
        "precision_auto_backbones": choose("auto", method="finetune").describe(),
        "memory_gib": round(memory, 1),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
        "allocator": _allocator(),
    }


def holds_for(machine: dict) -> str:
    """The hosts a result's figures hold for, in words: TensorFlow's kernels, and whether oneDNN
    runs without cifar-tune, depend on the CPU's vector extensions (`tuning.host.cpu`), so times
    carry over only to CPUs of the same kind and core count."""
    tensorflow = "turns" if machine["tensorflow_alone_enables_onednn"] else "leaves"
    on_off = "on" if machine["tensorflow_alone_enables_onednn"] else "off"
    return (
        f"{machine['cores']}-core {machine['cpu_kind']} CPUs like this one ({machine['cpu']}), "
        f"where TensorFlow alone {tensorflow} oneDNN {on_off}; here {machine['onednn_setting']}. "
        "Expect other times on other CPUs."
    )


def _allocator() -> str:
    """Where freed tensor memory goes (`tuning.host.runtime.release_memory`)."""
    from tuning.host.runtime import SYSTEM_ALLOCATOR, malloc_holds_tensors

    if malloc_holds_tensors():
        return f"malloc ({SYSTEM_ALLOCATOR}=1, the default), trimmed between trials"
    return f"TensorFlow's oneDNN pool (BFC, {SYSTEM_ALLOCATOR}=0)"


def alternate_rounds(names, rounds: int, run_one) -> dict:
    """{name: [run_one(name) per round]}, the names taken in turn, their order reversed every
    other round, so that a machine's slow spells hit each alike."""
    runs = {name: [] for name in names}
    for round_number in range(rounds):
        for name in names if round_number % 2 == 0 else list(names)[::-1]:
            runs[name].append(run_one(name))
            print(f"round {round_number + 1}, {name}: {runs[name][-1]}", flush=True)
    return runs


def add_round_arguments(parser, rounds: int, rows) -> None:
    """The flags of an alternate-rounds benchmark over `rows` (its own `--one` aside)."""
    import argparse

    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per row and process")
    parser.add_argument("--rows", nargs="+", choices=rows, default=list(rows))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)  # tests
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON")
    parser.add_argument("--cache", help=argparse.SUPPRESS)


def row_medians(runs: dict, rows) -> dict:
    """{setting: {row: the median over its rounds}} of `alternate_rounds`' runs."""
    import statistics

    return {
        name: {row: round(statistics.median(r[row] for r in results), 1) for row in rows}
        for name, results in runs.items()
    }


def invocation(module: str, argv) -> str:
    """The command line that ran `module`, without the results folder."""
    import sys

    given = argv if argv is not None else sys.argv[1:]
    return f"python -m {module} " + " ".join(a for a in given if not a.startswith("--results"))


def checkout() -> str:
    """The commit measured, and whether tracked files had changed (a clean clone has none;
    untracked files, such as a run's own logs, do not change the code measured)."""

    def git(*args):
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}{' with uncommitted changes' if changed else ''}"


def timed_cli(args, cache: str | Path) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m tuning ARGS` as a user runs it, in a fresh process whose cache folder is `cache`
    (an empty one makes building the cache part of the time); the process and its wall seconds."""
    env = {**os.environ, "CIFAR_TUNE_CACHE": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tuning", *map(str, args)], env=env, text=True, capture_output=True
    )
    return done, time.perf_counter() - start
