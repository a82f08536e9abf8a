"""A full-size `finetune` search's memory (RSS) through building the feature cache and 5 trials.

    python -m benchmarks.search_memory               # this checkout, 45,000 images, 5 trials
    python -m benchmarks.search_memory --code /tmp/before --label before   # another checkout's code

Runs `python -m tuning search --method finetune --data synthetic --weights none` (Hyperband,
defaults otherwise) with an empty cache folder, reads the search process's resident set size
(`VmRSS` in `/proc/<pid>/status`) every half second, and stops the search (SIGINT, as Ctrl-C) once
`--trials` trials have ended. Reports the peak while the cache is built (until the first trial
starts), the peak over the trials, RSS at each trial's end, and the kernel's own high-water mark
(`VmHWM`). `--minutes M` stops it by then and records how far it got, marked incomplete.
`--code` runs the search from another checkout (e.g. a `git worktree` of an older
commit), for before and after. Writes `benchmarks/results/search-memory-<label>-<date>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=None, help="default: all 45,000")
    parser.add_argument("--trials", type=int, default=5, help="trials to run before stopping")
    parser.add_argument("--code", default=str(ROOT), help="checkout whose `tuning` runs")
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="stop by then and record what was measured, marked incomplete (default: no limit)",
    )
    args = parser.parse_args(argv)
    command = ["search", "--method", "finetune", "--data", "synthetic", "--weights", "none"]
    command += ["--train-size", str(args.train_size)] if args.train_size else []
    with tempfile.TemporaryDirectory() as work:
        record = watch(command, Path(args.code), Path(work), args.trials, args.minutes)
    from tuning.host.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # for the machine's facts
    from benchmarks.machine import save_result

    record = {
        "command": "python -m tuning " + " ".join(command),
        "code": _commit(args.code),
        "train_images": args.train_size or 45000,
        **record,
    }
    print(json.dumps({k: v for k, v in record.items() if k != "samples"}, indent=1))
    save_result(f"search-memory-{args.label}", record)


def watch(command: list[str], code: Path, work: Path, trials: int, minutes: float | None) -> dict:
    """Runs the search from `code`, sampling its RSS until `trials` trials have ended.

    Past `minutes` the search is stopped and the record says how far it got (`complete` false).
    """
    env = {
        **os.environ,
        "CIFAR_TUNE_CACHE": str(work / "cache"),
        "PYTHONPATH": str(code),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    run_dir = work / "runs" / "finetune"
    log = open(work / "search.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tuning", *command, "--out", str(work / "runs")],
        cwd=code,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )
    start, samples, trial_ends, first_trial = time.monotonic(), [], [], None
    out_of_time = False
    try:
        while process.poll() is None:
            status = _status(process.pid)
            now = round(time.monotonic() - start, 1)
            if status:
                samples.append((now, status["VmRSS"]))
                hwm = status["VmHWM"]
            if first_trial is None and any(run_dir.glob("trial_*")):
                first_trial = now
            ended = _ended(run_dir)
            if len(ended) > len(trial_ends):
                trial_ends.append((now, samples[-1][1] if samples else None))
                print(
                    f"{now:.0f} s: {len(ended)} trials ended, RSS {trial_ends[-1][1]:.0f} MB",
                    flush=True,
                )
            out_of_time = minutes is not None and now > minutes * 60
            if len(ended) >= trials or out_of_time:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:  # the record is kept; the process is killed below
                    print("the search did not stop within 60 s of SIGINT: killing it", flush=True)
                break
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    if len(trial_ends) < trials and not out_of_time:
        tail = (work / "search.log").read_text().strip().splitlines()[-5:]
        sys.exit(f"the search ended after {len(trial_ends)} trials: " + " | ".join(tail))
    caching = [rss for t, rss in samples if first_trial is None or t < first_trial]
    during = [rss for t, rss in samples if first_trial is not None and t >= first_trial]
    return {
        "complete": len(trial_ends) >= trials,
        "trials": trials,
        "trials_ended": len(trial_ends),
        "seconds_run": now,
        "seconds_to_first_trial": first_trial,
        "peak_rss_mb_caching": round(max(caching, default=0)),
        "peak_rss_mb_trials": round(max(during)) if during else None,
        "vm_hwm_mb": round(hwm),
        "rss_mb_at_trial_ends": [round(rss) for _, rss in trial_ends],
        "seconds_at_trial_ends": [t for t, _ in trial_ends],
        "log": (work / "search.log").read_text().strip().splitlines()[-12:],
        "samples": samples[::10],
    }


def _default_sigint() -> None:
    """In the search's process, before it starts: SIGINT as Ctrl-C, even when this benchmark runs
    in the background of a shell (`cmd &`), which starts it with SIGINT ignored: Python then leaves
    it ignored and the search would never stop at the trial it was asked to.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _status(pid: int) -> dict | None:
    """VmRSS and VmHWM of `pid` in MB, or None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {
        key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM") if key in fields
    } or None


def _ended(run_dir: Path) -> list[Path]:
    """Trials keras-tuner has recorded as ended (completed, failed or refused)."""
    ended = []
    for path in run_dir.glob("trial_*/trial.json"):
        try:
            if json.loads(path.read_text()).get("status") in ("COMPLETED", "FAILED", "INVALID"):
                ended.append(path)
        except (OSError, ValueError):
            pass  # being written
    return ended


def _commit(code: str) -> str:
    done = subprocess.run(
        ["git", "-C", code, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or code


if __name__ == "__main__":
    main()
