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

SEARCH = (
    "search --method scratch --data synthetic --train-size 1000 --max-epochs 3 --batch-size 64"
).split()


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuning", *SEARCH, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _finish(process: subprocess.Popen, timeout: float = 600) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]
    return out, err


def _workers_of(run_dir: Path) -> dict:
    """{trial_id: the worker that recorded it} from the per-trial stats."""
    return {
        p.stem: json.loads(p.read_text()).get("worker")
        for p in (run_dir / "trial_stats").glob("*.json")
    }


def _ongoing(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "oracle.json").read_text()).get("ongoing_trials", {})
    except (OSError, ValueError):
        return {}


def _running(run_dir: Path, worker: str) -> str | None:
    """The trial `worker` is in the middle of, per the chief's saved state, or None."""
    trial_id = _ongoing(run_dir).get(worker)
    try:
        trial = json.loads((run_dir / f"trial_{trial_id}" / "trial.json").read_text())
    except (OSError, ValueError):
        return None
    return trial_id if trial["status"] == "RUNNING" else None


@pytest.mark.slow
def test_chief_and_two_workers_run_the_search_and_the_chief_exports_it(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    chief = _start("--out", tmp_path, "--chief", address)
    workers = [
        _start("--out", tmp_path, "--worker", address, "--worker-id", name) for name in ("w1", "w2")
    ]
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
    from tuning.config import SearchConfig
    from tuning.distribute import roles
    from tuning.engine import search
    from tuning.errors import UsageError

    monkeypatch.setattr(roles, "CHIEF_WAIT_SECONDS", 1)
    config = SearchConfig(
        method="scratch",
        data="synthetic",
        out=str(tmp_path),
        worker=f"127.0.0.1:{free_port()}",
        verbose=0,
    )
    with pytest.raises(UsageError, match="no chief answered"):
        search.run_search(config, log=None)
    assert not list((tmp_path / "scratch" / "workers").glob("*.json"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--chief", "127.0.0.1:1", "--worker", "127.0.0.1:1"], "exclude each other"),
        (["--chief", "localhost"], "expects HOST:PORT"),
        (["--worker", "127.0.0.1:99999"], "expects HOST:PORT"),
        (["--worker", "127.0.0.1:5000", "--overwrite"], "belongs to the chief"),
        (["--distribution", "tpu"], "distribution"),
    ],
)
def test_bad_distributed_flags_are_one_line_usage_errors(tmp_path, args, message):
    done = run_cli(*SEARCH, "--out", tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_mirrored_distribution_runs_a_trial_on_one_cpu_replica(tmp_path):
    done = run_cli(
        *SEARCH,
        "--out",
        tmp_path,
        "--distribution",
        "mirrored",
        "--preset",
        "seed",
        "--max-epochs",
        "1",
    )
    assert done.returncode == 0, done.stderr
    trials = pd.read_csv(tmp_path / "scratch-seed" / "trials.csv")
    assert (trials.status == "COMPLETED").all()


@pytest.mark.slow
def test_a_restarted_chief_resumes_and_its_worker_keeps_its_trial(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    run_dir = tmp_path / "scratch"
    chief_args = ("--out", tmp_path, "--chief", address, "--worker-timeout", "6")
    chief = _start(*chief_args)
    worker = _start("--out", tmp_path, "--worker", address, "--worker-id", "w1")
    deadline = time.monotonic() + 300
    while not ((run_dir / "trials.csv").exists() and _running(run_dir, "w1")):
        assert time.monotonic() < deadline and worker.poll() is None, "w1 never got a trial"
        time.sleep(0.1)
    running = _running(run_dir, "w1")
    chief.send_signal(signal.SIGKILL)
    chief.wait()

    restarted = _start(*chief_args)
    chief_out, _ = _finish(restarted)
    worker_out, _ = _finish(worker)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(trials) == 6 and (trials.status == "COMPLETED").all()
    assert f"trial {running} stays with w1" in chief_out and "trial 6/6" in chief_out
    assert _workers_of(run_dir)[running] == "w1" and "w1: done" in worker_out
    assert (run_dir / "best_model.keras").is_file()


def test_a_worker_repeats_a_call_the_chief_s_going_away_cut_off():
    import grpc

    from tuning.distribute import protocol as distributed

    class Cut(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

    class Stub:
        def __init__(self, failures):
            self.failures, self.calls = failures, 0

        def EndTrial(self, request, **kwargs):
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            return f"ended {request}"

    stub = Stub([Cut(grpc.StatusCode.UNAVAILABLE)] * 2)
    assert distributed.RetryingStub(stub, delay=0).EndTrial("0003", timeout=5) == "ended 0003"
    assert stub.calls == 3
    refused = Stub([Cut(grpc.StatusCode.INVALID_ARGUMENT)])
    with pytest.raises(grpc.RpcError):
        distributed.RetryingStub(refused, delay=0).EndTrial("0003")
    assert refused.calls == 1  # only a cut-off call is repeated
    gone = Stub([Cut(grpc.StatusCode.UNAVAILABLE)] * 9)
    with pytest.raises(grpc.RpcError):
        distributed.RetryingStub(gone, attempts=3, delay=0).EndTrial("0003")
    assert gone.calls == 3


def test_a_trial_reported_twice_counts_once_and_is_not_run_again(tmp_path):
    """w1 is taken as dead and its trial queued again, but w1 was only slow: it reports the trial
    before another worker takes it (A), or after w2 took it and before w2 reports it (B)."""
    import keras_tuner as kt

    from tuning.distribute import protocol as distributed
    from tuning.host.internals import oracle_protos, set_project_dir, trial_module

    protos, Trial = oracle_protos(), trial_module().Trial

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("val_accuracy", "max"), max_trials=9)
    oracle.hyperparameters.Float("dropout", 0.0, 0.5)
    set_project_dir(oracle, str(tmp_path), "run")
    ended = []
    servicer = distributed._chief_servicer(oracle, ended.append)

    def report(trial_id, score):  # what a worker sends: its metrics, then its copy of the trial
        service = protos.get_service()
        servicer.UpdateTrial(
            service.UpdateTrialRequest(trial_id=trial_id, metrics={"val_accuracy": score}, step=0),
            None,
        )
        copy = Trial.from_proto(oracle.trials[trial_id].to_proto())
        copy.status = "COMPLETED"
        servicer.EndTrial(protos.get_service().EndTrialRequest(trial=copy.to_proto()), None)

    a = oracle.create_trial("w1").trial_id
    distributed._requeue(oracle, "w1")
    report(a, 0.4)
    assert oracle.create_trial("w2").trial_id != a  # A: not run again
    report(oracle.ongoing_trials["w2"].trial_id, 0.2)

    b = oracle.create_trial("w1").trial_id
    distributed._requeue(oracle, "w1")
    assert oracle.create_trial("w2").trial_id == b
    report(b, 0.5)  # w1's
    report(b, 0.9)  # w2's, higher: not counted
    assert [t.trial_id for t in ended] == [a, ended[1].trial_id, b]
    assert oracle.end_order == [t.trial_id for t in ended] and not oracle.ongoing_trials
    assert oracle.trials[b].score == 0.5
    assert oracle.trials[b].metrics.get_best_value("val_accuracy") == 0.5  # w2's metrics dropped
