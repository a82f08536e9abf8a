"""A chief and workers on loopback, through the CLI: every trial is run once and accounted for."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, free_port, run_cli

SEARCH = ["search", "--method", "scratch", "--data", "synthetic", "--train-size", "1000",
          "--max-epochs", "3", "--batch-size", "64"]


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuning", *SEARCH, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


def _finish(process: subprocess.Popen, timeout: float = 600) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    return out, err


def _workers_of(run_dir: Path) -> dict:
    """{trial_id: the worker that recorded it} from the per-trial stats."""
    return {p.stem: json.loads(p.read_text()).get("worker")
            for p in (run_dir / "trial_stats").glob("*.json")}


def _ongoing(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "oracle.json").read_text()).get("ongoing_trials", {})
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
def test_chief_and_two_workers_run_the_search_and_the_chief_exports_it(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    chief = _start("--out", tmp_path, "--chief", address)
    workers = [_start("--out", tmp_path, "--worker", address, "--worker-id", name)
               for name in ("w1", "w2")]
    chief_out, _ = _finish(chief)
    worker_outs = [_finish(worker)[0] for worker in workers]

    run_dir = tmp_path / "scratch"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(trials) == 6 and (trials.status == "COMPLETED").all()  # Hyperband(3, 3)
    ran_by = _workers_of(run_dir)
    assert set(ran_by) == set(trials.trial_id) and set(ran_by.values()) == {"w1", "w2"}
    assert "trial 6/6" in chief_out and "best trial" in chief_out
    assert (run_dir / "best_model.keras").is_file()
    for name, out in zip(("w1", "w2"), worker_outs):
        assert f"{name}: done" in out
    assert not list((run_dir / "workers").glob("*.json"))  # heartbeats gone with their workers


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_run_again_by_another(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    run_dir = tmp_path / "scratch"
    chief = _start("--out", tmp_path, "--chief", address, "--worker-timeout", "6")
    survivor = _start("--out", tmp_path, "--worker", address, "--worker-id", "w1")
    doomed = _start("--out", tmp_path, "--worker", address, "--worker-id", "w2")
    deadline = time.monotonic() + 300
    while "w2" not in _ongoing(run_dir):
        assert time.monotonic() < deadline and doomed.poll() is None, "w2 never got a trial"
        time.sleep(0.1)
    lost = _ongoing(run_dir)["w2"]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()

    chief_out, _ = _finish(chief)
    _finish(survivor)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(trials) == 6 and (trials.status == "COMPLETED").all()
    assert f"w2 sent no heartbeat for 6 s and is taken as dead; trial {lost} goes back" in chief_out
    assert _workers_of(run_dir)[lost] == "w1"


def test_worker_without_a_chief_is_a_usage_error_after_its_wait(tmp_path, monkeypatch):
    from tuning import search
    from tuning.config import SearchConfig
    from tuning.errors import UsageError

    monkeypatch.setattr(search, "CHIEF_WAIT_SECONDS", 1)
    config = SearchConfig(method="scratch", data="synthetic", out=str(tmp_path),
                          worker=f"127.0.0.1:{free_port()}", verbose=0)
    with pytest.raises(UsageError, match="no chief answered"):
        search.run_search(config, log=None)
    assert not list((tmp_path / "scratch" / "workers").glob("*.json"))


@pytest.mark.parametrize("args, message", [
    (["--chief", "127.0.0.1:1", "--worker", "127.0.0.1:1"], "exclude each other"),
    (["--chief", "localhost"], "expects HOST:PORT"),
    (["--worker", "127.0.0.1:99999"], "expects HOST:PORT"),
    (["--worker", "127.0.0.1:5000", "--overwrite"], "belongs to the chief"),
    (["--distribution", "tpu"], "distribution"),
])
def test_bad_distributed_flags_are_one_line_usage_errors(tmp_path, args, message):
    done = run_cli(*SEARCH, "--out", tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_mirrored_distribution_runs_a_trial_on_one_cpu_replica(tmp_path):
    done = run_cli(*SEARCH, "--out", tmp_path, "--distribution", "mirrored", "--preset", "seed",
                   "--max-epochs", "1")
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(tmp_path / "scratch-seed" / "trials.csv")
    assert (trials.status == "COMPLETED").all()
