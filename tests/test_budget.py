"""--time-budget: parsing, the clock kept across runs, and a search it stops and resumes."""

import json
import re
import time

import pandas as pd
import pytest
from conftest import run_cli, tree_digest

from tuning.engine.budget import SearchClock, parse_duration


@pytest.mark.parametrize(
    "text,seconds",
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1.5h", 5400), ("45", 45)],
)
def test_durations_read_as_users_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30x", "m30", "-5m", "0s", "30m later", "nan", "inf"])
def test_a_bad_duration_is_one_line_and_exit_2(text):
    with pytest.raises(ValueError):
        parse_duration(text)
    done = run_cli("search", "--method", "scratch", "--time-budget", text)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--time-budget" in done.stderr


def test_the_clock_counts_time_over_every_run_of_a_search(tmp_path):
    first = SearchClock(tmp_path, budget=100)
    time.sleep(0.2)
    first.save()
    second = SearchClock(tmp_path, budget=100)
    assert second.spent_before >= 0.1 and second.spent() >= first.spent() - 0.05
    assert not second.is_spent() and second.left() < 100
    assert SearchClock(tmp_path, budget=0.05).is_spent()
    assert SearchClock(tmp_path, budget=None).left() is None
    began = SearchClock(tmp_path, budget=100, started=time.monotonic() - 30)
    assert began.spent() >= second.spent_before + 30  # a run counts from when it began


def test_a_spent_budget_stops_training_at_the_next_batch_and_validates_the_part_epoch():
    import keras
    import numpy as np

    from tuning.engine.callbacks import StopAtTimeBudget

    class Clock:  # spent once three batches have trained
        batches = 0

        def batch_trained(self):
            pass

        def is_spent(self):
            return self.batches >= 3

    clock = Clock()
    count = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda *_, **__: setattr(clock, "batches", clock.batches + 1)
    )
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x, y = np.zeros((100, 4)), np.zeros((100, 2))
    history = model.fit(
        x,
        y,
        batch_size=10,
        epochs=5,
        validation_data=(x[:10], y[:10]),
        callbacks=[count, StopAtTimeBudget(clock)],
        verbose=0,
    )
    assert clock.batches == 3  # of the epoch's 10: a large model's epoch can take minutes
    assert history.epoch == [0] and "val_loss" in history.history


def test_the_clock_keeps_what_a_trial_s_end_and_the_export_take_in_reserve(tmp_path, monkeypatch):
    import copy

    from tuning.engine import budget

    now = [100.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    clock = SearchClock(tmp_path, 60, started=100.0)
    assert copy.deepcopy(clock) is clock  # keras-tuner copies the callbacks for every trial

    def trial(build, train, end):
        clock.trial_began()
        now[0] += build
        clock.model_built()
        now[0] += train
        if train:
            clock.batch_trained()
        now[0] += end
        clock.trial_ended()

    trial(build=2, train=10, end=5)
    trial(build=1, train=5, end=3)  # shorter: the longest seen is kept
    trial(build=1, train=0, end=9)  # refused before training: no end to time
    assert clock.reserve() == 7
    now[0] = 100 + 52.5
    assert not clock.is_spent()
    now[0] = 100 + 53.5  # 6.5 s left, 7 needed after training
    assert clock.is_spent() and clock.left() == 6.5


def test_the_progress_line_s_eta_is_never_past_the_budget(tmp_path, monkeypatch):
    # a plan can outlast its budget (the later Hyperband brackets run as far as it goes): the
    # search still ends with the budget, and the ETA says so
    from types import SimpleNamespace

    from tuning.engine import budget, records

    now = [100.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(records.time, "monotonic", lambda: now[0])
    clock = SearchClock(tmp_path, 3600, started=100.0)
    recorder = records.TrialRecorder(tmp_path, 12, 120, {}, log=None, clock=clock)
    unbounded = records.TrialRecorder(tmp_path, 12, 120, {}, log=None)
    trial = SimpleNamespace(trial_id="0000", status="COMPLETED", score=0.2)
    now[0] += 600  # one 5-epoch trial in 10 minutes: 115 epochs to go, about 3h50m of them
    stats = {"0000": {"epochs_run": 5}}
    assert "ETA <= 50m00s, 50m00s of 1h00m budget left" in recorder._progress_line(
        [trial], trial, stats
    )
    assert "ETA <= 3h50m" in unbounded._progress_line([trial], trial, stats)


def test_a_budget_with_a_chief_is_a_usage_error(tmp_path):
    done = run_cli(
        *("search --method scratch --chief 127.0.0.1:8000 --time-budget 10m --out").split(),
        tmp_path,
    )
    assert done.returncode == 2 and "--time-budget" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_spent_budget_stops_the_search_and_a_larger_one_resumes_it(tmp_path):
    search = [
        *(
            "search --method scratch --data synthetic --train-size 2000 "
            "--max-epochs 9 --max-madds 25M --out"
        ).split(),
        tmp_path,
    ]
    start = time.monotonic()
    done = run_cli(*search, "--time-budget", "40s")
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    left = re.search(r"time budget 40s: (\d+)s left", done.stdout)
    assert left and 0 < int(left.group(1)) < 40  # TensorFlow's import, reading the data counted
    assert "time budget spent" in done.stdout and "budget left" in done.stdout
    run_dir = tmp_path / "scratch"
    first = pd.read_csv(run_dir / "trials.csv")
    spent = json.loads((run_dir / "search_time.json").read_text())["seconds_spent"]
    assert 40 - 15 < spent < 40 + 10  # stopped early enough for its trial's end to fit
    assert seconds < 40 + 15  # the command, export included, ends about when its budget does
    assert 0 < len(first) < 20  # stopped early: this Hyperband plans 20+ trials
    kept = {p: d for p, d in tree_digest(run_dir).items() if p.startswith("trial_0000/")}

    done = run_cli(*search, "--time-budget", "90s")
    assert done.returncode == 0, done.stderr
    left = re.search(r"time budget 1m30s: (\d+)s left", done.stdout)
    assert left and 0 < (90 - spent) - int(left.group(1)) < 30  # the first run's time counted
    second = pd.read_csv(run_dir / "trials.csv")
    assert len(second) > len(first)  # resumed: more trials, the first ones kept
    assert second.trial_id.head(len(first)).tolist() == first.trial_id.tolist()
    assert {p: d for p, d in tree_digest(run_dir).items() if p in kept} == kept
    assert 90 - 15 < json.loads((run_dir / "search_time.json").read_text())["seconds_spent"] < 100
