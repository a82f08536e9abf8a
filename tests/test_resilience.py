"""Crashes, interrupts, concurrent runs and full disks never cost a finished trial."""

import errno
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, run_cli, run_python, tree_digest

from tuning.config import SearchConfig
from tuning.errors import UsageError
from tuning.host.files import atomic_path

QUICK = (
    "search --method scratch --data synthetic --train-size 1000 --max-epochs 3 --batch-size 64"
).split()


def _start(out: Path, command=QUICK) -> subprocess.Popen:
    """The search as started from a terminal: SIGINT at its default even when this test runs
    as a background job (whose children inherit SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuning", *map(str, command), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(condition, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the search ended before the kill point: {process.stderr.read()}")
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.05)


def _completed(run_dir: Path) -> dict:
    """{trial_id: its trial.json text} for every COMPLETED trial on disk."""
    records = {}
    for path in run_dir.glob("trial_*/trial.json"):
        record = json.loads(path.read_text())
        if record["status"] == "COMPLETED":
            records[record["trial_id"]] = path.read_text()
    return records


def _holds_lock(run_dir: Path, process: subprocess.Popen) -> bool:
    """Whether `process` has written its lock (not a killed search's lock left behind)."""
    try:
        return json.loads((run_dir / ".search.lock").read_text())["pid"] == process.pid
    except (OSError, ValueError, KeyError):  # not there, or being written
        return False


def _trials(run_dir: Path) -> int:
    path = run_dir / "trials.csv"
    return len(pd.read_csv(path)) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_at_several_points_keeps_completed_trials_and_the_lock_is_taken_over(tmp_path):
    reference = run_cli(*QUICK, "--out", tmp_path / "whole")
    assert reference.returncode == 0, reference.stderr
    expected = len(pd.read_csv(tmp_path / "whole" / "scratch" / "trials.csv"))

    run_dir = tmp_path / "killed" / "scratch"
    kill_points = [
        lambda: time.sleep(1.5) is None,  # importing TensorFlow, loading data
        lambda: _trials(run_dir) >= 1,  # just after a trial's exports were written
        lambda: _trials(run_dir) >= 2 and bool(list(run_dir.glob("tensorboard/*/execution0"))),
    ]
    kept = {}
    for point in kill_points:
        process = _start(tmp_path / "killed")
        if point is kill_points[1]:  # while it runs, a second search on its folder is refused
            _wait_for(functools.partial(_holds_lock, run_dir, process), process)
            second = run_cli(*QUICK, "--out", tmp_path / "killed")
            assert second.returncode == 2, second.stderr
            assert f"PID {process.pid}" in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
        _wait_for(point, process)
        if point is kill_points[2]:
            time.sleep(1.0)  # inside a trial's training
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = _completed(run_dir) if run_dir.exists() else {}
        assert all(before.get(k) == v for k, v in kept.items())
        kept = before
    final = run_cli(*QUICK, "--out", tmp_path / "killed")
    assert final.returncode == 0, final.stderr
    assert f"taking over the lock of {run_dir} from PID {process.pid}" in final.stderr
    after = _completed(run_dir)
    assert {k: after[k] for k in kept} == kept
    assert len(pd.read_csv(run_dir / "trials.csv")) == expected
    assert (pd.read_csv(run_dir / "trials.csv").status == "COMPLETED").all()


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_next_run_resumes(tmp_path):
    process = _start(tmp_path)
    run_dir = tmp_path / "scratch"
    _wait_for(lambda: _trials(run_dir) >= 1, process)
    done_before = _completed(run_dir)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "run the same command to resume" in stderr
    assert not (run_dir / ".search.lock").exists()
    resumed = run_cli(*QUICK, "--out", tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = _completed(run_dir)
    assert {k: after[k] for k in done_before} == done_before


@pytest.mark.slow
def test_ctrl_c_during_a_long_epoch_ends_the_process_within_5_seconds(tmp_path):
    """5 conv blocks x 3 convs from 64 filters (0.3 G multiply-adds per image) on 6,000 images:
    an epoch of well over 20 s, interrupted a few seconds into it."""
    space = tmp_path / "costly.toml"
    space.write_text("conv_blocks = 5\nconvs_per_block = 3\nbase_filters = 64\nbatch_norm = true\n")
    command = [
        *(
            "search --method scratch --data synthetic --train-size 6000 "
            "--tuner random --max-trials 1 --max-epochs 1 --space"
        ).split(),
        space,
    ]
    run_dir = tmp_path / "scratch"
    process = _start(tmp_path, command)
    _wait_for(lambda: bool(list(run_dir.glob("tensorboard/*/execution0"))), process)
    time.sleep(4)  # inside the first epoch
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5, f"took {time.monotonic() - sent:.1f} s"
    assert process.returncode == 130 and "run the same command to resume" in stderr
    assert not (run_dir / ".search.lock").exists() and not (run_dir / "trials.csv").exists()
    resumed = run_cli(*command, "--out", tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    [trial] = pd.read_csv(run_dir / "trials.csv").itertuples()
    assert trial.status == "COMPLETED" and trial.epochs_run == 1
    assert trial.seconds > 20  # the interrupted epoch was a long one


def test_a_ctrl_c_raised_inside_a_finalizer_is_recorded_without_a_traceback():
    """Python prints a KeyboardInterrupt raised in `__del__` (TensorFlow's weakref callbacks) as
    "Exception ignored" with a traceback; a search records it and stops quietly instead."""
    code = (
        "import io, os, signal, sys\n"
        "from tuning.host import interrupt\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal\n"
        "class Finalized:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        len('the handler runs here, inside __del__')\n"
        "sys.stderr = io.StringIO()\n"
        "with interrupt.recorded():\n"
        "    Finalized()\n"
        "    try:\n"
        "        interrupt.raise_if_interrupted()\n"
        "        print('lost', repr(sys.stderr.getvalue()))\n"
        "    except KeyboardInterrupt:\n"
        "        print('recorded', repr(sys.stderr.getvalue()))\n"
    )
    assert run_python(code) == "recorded ''"


def test_a_swallowed_ctrl_c_still_ends_the_command_within_seconds(tmp_path):
    """A KeyboardInterrupt that never reaches the command (TensorFlow's weakref callbacks print
    such ones as "ignored") is acted on by the watchdog, lock cleanup included."""
    code = (
        "import signal, sys, time\nfrom tuning.host import interrupt\n"
        "cleanup = lambda: open(sys.argv[1], 'w').write('cleaned')\n"
        "with interrupt.exits_promptly('stopped; run it again', cleanup=cleanup):\n"
        "    signal.signal(signal.SIGINT, lambda *_: None)  # swallowed: no KeyboardInterrupt\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        time.sleep(0.05)\n"
    )
    marker = tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(marker)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert process.returncode == 130 and stderr.strip() == "stopped; run it again"
    assert marker.read_text() == "cleaned"


def test_out_that_is_a_file_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = run_cli(*QUICK, "--out", blocker / "runs")
    assert done.returncode == 2 and "is not a directory" in done.stderr
    assert blocker.read_text() == "not a directory"


def test_disk_full_while_exporting_keeps_the_previous_exports(tmp_path, monkeypatch):
    from tuning.engine import records, search

    config = SearchConfig(
        method="scratch",
        tuner="random",
        max_trials=2,
        max_epochs=1,
        data="synthetic",
        train_size=400,
        out=str(tmp_path),
        verbose=0,
    )
    real_write = records.atomic_write_text
    exports = []

    def fill_disk_after_first_export(path, text):
        if Path(path).name == "trials.csv":
            exports.append(text)
            if len(exports) > 1:
                with atomic_path(path) as tmp:
                    tmp.write_text(text[: len(text) // 2])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, text)

    monkeypatch.setattr(records, "atomic_write_text", fill_disk_after_first_export)
    with pytest.raises(UsageError, match="No space left on device"):
        search.run_search(config, log=None)
    assert (tmp_path / "scratch" / "trials.csv").read_text() == exports[0]
    assert not list((tmp_path / "scratch").glob(".*.tmp*"))
    assert tree_digest(tmp_path / "scratch")  # the directory is still there to resume


def test_a_trial_that_ended_just_before_a_crash_is_not_run_again(tmp_path):
    """keras-tuner saves the oracle on ending a trial while still listing it as running; a search
    killed right then reloads it into the retry queue."""
    import keras_tuner as kt

    from tuning.engine.tuner import forget_ended as _forget_ended
    from tuning.host.internals import retry_queue, set_project_dir

    def oracle():
        made = kt.oracles.RandomSearchOracle(
            kt.Objective("val_accuracy", "max"), max_trials=3, hyperparameters=kt.HyperParameters()
        )
        made.hyperparameters.Float("dropout", 0.0, 0.5)
        set_project_dir(made, str(tmp_path), "run")
        return made

    before = oracle()
    trial = before.create_trial("tuner0")
    before.update_trial(trial.trial_id, {"val_accuracy": 0.3})
    trial.status = "COMPLETED"
    before.end_trial(trial)  # the crash comes after this save, before the next one

    after = oracle()
    after.reload()
    assert retry_queue(after) == [trial.trial_id]  # keras-tuner would run it again
    _forget_ended(after)
    assert retry_queue(after) == []
    assert after.create_trial("tuner0").trial_id != trial.trial_id
