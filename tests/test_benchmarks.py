"""The benchmarks run end to end (on a few hundred images: a check, not a measurement)."""

import json
import subprocess

import pytest
from conftest import run_cli


def run_benchmark(module: str, args: str, results, name: str):
    """Runs `python -m benchmarks.MODULE ARGS --results RESULTS` and checks that it ended well;
    returns its finished process and the one `NAME-<date>.json` it wrote."""
    done = run_cli(*args.split(), "--results", results, module=f"benchmarks.{module}")
    assert done.returncode == 0, done.stderr
    [path] = results.glob(f"{name}-*.json")
    return done, json.loads(path.read_text())


@pytest.mark.slow
def test_speed_benchmark_runs_and_writes_every_figure(tmp_path):
    done, record = run_benchmark("speed", "--tiny --trials 3", tmp_path, "speed-tiny")
    results = record["results"]
    for name in ("feature_epoch", "finetune_block5_epoch"):
        assert results[name]["uncached_seconds"] > 0 and results[name]["cached_seconds"] > 0
        assert results[name]["train_images"] == 300
    rss = results["rss_over_trials"]
    assert rss["trials"] == 3 and len(rss["rss_mb_after_each_trial"]) == 3
    assert len(rss["rss_mb_between_trials"]) == 4  # as each trial begins, and after the search
    assert results["scratch_tuner_vs_fit"]["tuner_median"] > 0
    assert 0 < results["help_seconds"]["median"] < 5
    assert record["machine"]["cores"] >= 1
    assert "feature epoch" in done.stdout and "RSS held between 3 trials" in done.stdout


@pytest.mark.slow
def test_allocator_benchmark_compares_the_pool_with_malloc(tmp_path):
    args = "--rounds 1 --train-size 300 --val-size 100"
    _, record = run_benchmark("allocator", args, tmp_path, "allocator-ab")
    [pool], [lean] = record["runs"]["pool"], record["runs"]["lean"]
    assert pool["tensorflow_pool_in_use"] and not lean["tensorflow_pool_in_use"]
    for run in (pool, lean):
        assert all(
            run[name] > 0
            for name in ("scratch_epoch", "feature_cached_epoch", "finetune_cached_epoch")
        )


@pytest.mark.slow
def test_memory_run_alone_is_saved_under_the_allocator_it_ran_with(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "0")
    args = "--memory-only --tiny --trials 2"
    _, record = run_benchmark("speed", args, tmp_path, "memory-pool-tiny")
    rss = record["results"]["rss_over_trials"]
    assert len(rss["rss_mb_between_trials"]) == 3 and rss["rss_mb_between_trials"][0] > 0
    assert "pool" in record["machine"]["allocator"]
    assert record["command"].startswith("TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0 ")


@pytest.mark.slow
def test_onednn_benchmark_compares_tensorflows_choice_with_ours(tmp_path):
    from tuning.host.cpu import tensorflow_enables_onednn

    args = "--rounds 1 --scale 0.05 --epochs 1 --rows seed_scratch_cnn "
    args += "vgg16_block5_trainable finetune_cached_epoch"
    _, record = run_benchmark("onednn", args, tmp_path, "onednn-tiny")
    [theirs], [ours] = record["runs"]["tensorflow"], record["runs"]["cifar_tune"]
    assert ours["onednn"] is True
    assert theirs["onednn"] is tensorflow_enables_onednn()
    for run in (theirs, ours):
        assert all(run[row] > 0 for row in record["training_images"])
    assert set(record["cifar_tune_over_tensorflow"]) == set(record["training_images"])
    machine = record["machine"]
    assert machine["onednn"] is True and "avx2" in machine["cpu_features"]


@pytest.mark.slow
def test_precision_benchmark_times_float32_against_auto(tmp_path):
    from tuning.host.precision import choose

    args = "--rounds 1 --scale 0.06 --epochs 1"
    _, record = run_benchmark("precision", args, tmp_path, "precision-tiny")
    [plain], [auto] = record["runs"]["float32"], record["runs"]["auto"]
    assert plain["policy"] == "float32" and auto["policy"] == choose("auto").policy
    for run in (plain, auto):
        assert all(run[row] > 0 for row in record["training_images"])
    assert set(record["auto_over_float32"]) == set(record["training_images"])
    assert record["machine"]["precision_auto"] == choose("auto").describe()
    assert "amx_bf16" in record["machine"]["cpu_features"]


def test_every_result_says_which_hosts_its_figures_hold_for(tmp_path):
    from benchmarks.machine import save_result
    from tuning.host.cpu import cpu_kind, tensorflow_enables_onednn

    record = json.loads(save_result("check", {"seconds": 1.0}, tmp_path).read_text())
    alone = "turns oneDNN on" if tensorflow_enables_onednn() else "leaves oneDNN off"
    assert record["machine"]["tensorflow_alone_enables_onednn"] is tensorflow_enables_onednn()
    assert (
        f"{cpu_kind()} CPUs" in record["holds_for"]
        and f"TensorFlow alone {alone}" in (record["holds_for"])
    )
    assert record["machine"]["onednn_setting"] in record["holds_for"]


def test_the_readme_quick_start_is_the_benchmarked_command():
    from conftest import ROOT

    from benchmarks.quickstart import QUICKSTART

    readme = (ROOT / "README.md").read_text()
    assert f"pip install . && python -m tuning {' '.join(QUICKSTART)}" in readme


@pytest.mark.slow
def test_calibration_benchmark_prices_the_planners_two_models_against_their_steady_cost(tmp_path):
    args = "--data synthetic --train-size 600 --rounds 1 --steps 3"
    _, record = run_benchmark("calibration", args, tmp_path, "calibration")
    [(code, [run])] = record["runs"].items()
    assert run["planner"].startswith(code)  # the checkout's own planner was timed
    for model in ("cheap", "costly"):
        assert run[model]["calibrated"] > 0 and run[model]["steady"] > 0
    assert run["cheap"]["madds"] <= run["costly"]["madds"]
    assert record["median_calibrated_over_steady"][code] == run["overpriced"]


@pytest.mark.slow
def test_search_quality_takes_turns_within_the_budget_and_plots(tmp_path):
    # a minute: the planner's calibration (three models timed) took 30 s of 36 on a busy machine
    args = "--minutes 1 --slice 8 --train-size 1000 --contenders seed plain --name quality-tiny"
    _, record = run_benchmark("search_quality", args, tmp_path, "quality-tiny")
    assert next(tmp_path.glob("quality-tiny-*.png")).is_file()
    plan = record["scratch_plan"]  # the planned search trains the plan's epochs
    planned = f"--max-epochs {plan['max_epochs']} --min-epochs {plan['min_epochs']}"
    assert planned in record["contenders"]["plain"]["command"]
    for name in ("seed", "plain"):
        result = record["contenders"][name]
        assert result["minutes_run"] <= 1 + 0.05 and result["error"] is None
        # a contender runs until the budget unless it ends by itself (all its rounds run)
        assert result["minutes_run"] >= 1 or result["finished_before_budget"], result
        assert len(result["curve"]) >= 3  # turns, taken alternately
        bests = [b for _, b in result["curve"] if b is not None]
        assert bests == sorted(bests)
    assert record["contenders"]["seed"]["best_val_accuracy"] > 0  # epochs of the seed CNN ran
    for name in ("seed", "plain"):  # each handed-over model tested once, if there is one
        result = record["contenders"][name]
        if result["best_val_accuracy"] is None:
            assert result["test_error"] == "no completed trial or epoch"
        else:
            assert 0 < result["test_accuracy"] <= 1 and result["test_error"] is None, result
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "--train-size 1000 --val-size 250" not in processes  # every contender was killed


@pytest.mark.slow
def test_input_size_benchmark_trains_the_fixed_model_at_each_size(tmp_path):
    from benchmarks.input_size import CONTENDERS

    args = "--data synthetic --weights none --methods feature --train-size 200 --max-epochs 1"
    _, record = run_benchmark("input_size", args, tmp_path, "input-size")
    sizes = [(run["input_size"], run["weights"]) for run in record["runs"]]
    assert sizes == list(CONTENDERS)
    assert all(0 <= run["val_accuracy"] <= 1 and run["epochs_run"] == 1 for run in record["runs"])
