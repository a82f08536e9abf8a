"""Builds the tuner, runs the search over train + validation, and leaves every trial on disk.

`run_search(config)` is the library entry point; `python -m tuning search` is a thin wrapper.
Run directory (`config.run_dir`): keras-tuner's trials and oracle state, `tensorboard/` (one run per
trial plus the HParams config), `trials.csv`, `best_hyperparameters.json`, `best_model.keras` and
`search_config.json`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tuning import interrupt
from tuning.budget import BudgetSpent, SearchClock, format_duration
from tuning.config import SearchConfig
from tuning.cost import MADDS_CAPPED, check_cost
from tuning.cpu import onednn_line
from tuning.data import SearchData, load_search_data
from tuning.errors import SearchFailed, UsageError
from tuning.features import hypermodel_for, load_backbone
from tuning.files import atomic_path, atomic_write_text
from tuning.identity import CONFIG_FILE, check_resumable, config_record
from tuning.lock import LOCK_FILE, run_dir_lock
from tuning.recipes import draw_recipes_first
from tuning.records import ENDED
from tuning.runtime import forget_custom_gradients, release_memory

BEST_MODEL_FILE = "best_model.keras"
MAX_CONSECUTIVE_FAILED = 5  # trials failing in a row (a fault in the setup) stop the search
CHIEF_WAIT_SECONDS = 600  # how long a worker waits for its chief to start serving
IDLE_WAIT_SECONDS = 1.0  # between a worker's asks while the oracle has no trial ready
# Errors of the disk, not of the code: reported in one line, like a usage error.
_WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@dataclass
class SearchResult:
    """How a search ended. On a worker: the trials it ran (the chief knows the best)."""

    run_dir: Path
    best_trial_id: str | None
    best_val_accuracy: float | None
    completed: int
    failed: int
    worker: str | None = None
    budget_spent: bool = False  # `config.time_budget` ended the search


def run_search(config: SearchConfig, log=print) -> SearchResult:
    """Runs (or resumes) the search `config` describes. Raises UsageError, SearchFailed.

    Holds the run directory's lock throughout; everything that can be checked (settings, data,
    weights) is checked before the directory is touched, so a mistake never damages it.
    """
    if config.worker:
        return _worker_search(config, log)
    check_resumable(config)
    space = _space_overrides(config)
    data = load_search_data(config.data, config.val_size, config.train_size, config.seed)
    _check_writable(Path(config.out))
    backbone = load_backbone(config)
    try:
        with run_dir_lock(config.run_dir, force=config.force_unlock):
            if config.overwrite:
                _clear(config.run_dir)
            return _locked_search(config, data, backbone, space, log)
    except OSError as error:
        _raise_if_disk_error(error, config)
        raise


def _raise_if_disk_error(error: OSError, config: SearchConfig) -> None:
    if error.errno in _WRITE_FAILURES:
        where = error.filename or config.run_dir  # our writes are atomic: earlier files stand
        raise UsageError(f"could not write {where}: {error.strerror or error}; files written "
                         f"before are intact") from None


def _worker_search(config: SearchConfig, log) -> SearchResult:
    """Runs trials for the chief at `config.worker` until it has none left.

    Needs no lock (the chief holds it) and must find the chief's `search_config.json` in the run
    directory with the same defining settings: a worker never runs another search's trials.
    """
    from tuning.distributed import (Heartbeat, RetryingStub, default_worker_id, parse_address,
                                    wait_for_chief, worker_environment)

    host, port = parse_address(config.worker, "--worker")
    worker_id = config.worker_id or default_worker_id()
    with Heartbeat(config.run_dir, worker_id):
        if log:
            log(f"{worker_id}: joining the search served at {host}:{port} ({onednn_line()})")
        wait_for_chief(host, port, CHIEF_WAIT_SECONDS)
        if not (config.run_dir / CONFIG_FILE).is_file():
            raise UsageError(f"no search_config.json in {config.run_dir}: give the worker the "
                             f"chief's --out, on a disk both can reach")
        check_resumable(config)
        space = _space_overrides(config)
        data = load_search_data(config.data, config.val_size, config.train_size, config.seed)
        backbone = load_backbone(config)
        with interrupt.recorded(), worker_environment(host, port, worker_id):
            hypermodel = hypermodel_for(config, data, backbone, log=log if config.verbose else None)
            _prepare_keras(config)
            tuner = _make_tuner(config, hypermodel, data, space, log, worker=worker_id)
            tuner.oracle.stub = RetryingStub(tuner.oracle.stub)
            _run_worker_trials(config, tuner, data, f"{host}:{port}", worker_id)
    ran = tuner.recorder.ran
    return SearchResult(config.run_dir, None, None, ran.count("COMPLETED"), ran.count("FAILED"),
                        worker=worker_id)


def _run_worker_trials(config, tuner, data, address: str, worker_id: str) -> None:
    """A worker's trials; a chief that went away ends it with one line, not a traceback.

    keras-tuner's client waits (up to an hour a call) for a chief that went away, and
    `RetryingStub` repeats a call its going away cut off; a chief gone for longer, or an error
    the chief raised, ends the worker here.
    """
    import grpc

    try:
        _run_trials(config, tuner, data)
    except grpc.RpcError as error:
        code = error.code().name if hasattr(error, "code") else type(error).__name__
        raise SearchFailed(f"{worker_id}: lost the chief at {address} ({code}); start this "
                           f"worker again once the chief runs") from None


def _clear(run_dir: Path) -> None:
    """Empties `run_dir` for --overwrite, keeping our lock (keras-tuner's own overwrite would not)."""
    for path in run_dir.iterdir():
        if path.name == LOCK_FILE:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _space_overrides(config: SearchConfig):
    """The `--space` file's HyperParameters (checked before anything is written), or None."""
    from tuning.space import load_space

    return load_space(config.space, config.method) if config.space else None


def _locked_search(config: SearchConfig, data: SearchData, backbone, space,
                   log) -> SearchResult:
    if log:
        log(f"{config.method} search ({config.preset or config.tuner}), seed {config.seed}, "
            f"{data.describe()}, {onednn_line()} -> {config.run_dir}")
    hypermodel = hypermodel_for(config, data, backbone, log=log if config.verbose else None)
    _prepare_keras(config)
    with interrupt.recorded():
        resumed = _running_on_workers(config)  # read before keras-tuner's reload queues them
        tuner = _make_tuner(config, hypermodel, data, space, log)
        tuner.clock = tuner.recorder.clock = SearchClock(config.run_dir, config.time_budget)
        if log and config.time_budget:
            log(f"time budget {format_duration(config.time_budget)}: "
                f"{format_duration(tuner.clock.left())} left")
        _forget_ended(tuner.oracle)
        atomic_write_text(config.run_dir / CONFIG_FILE, config_record(config))
        if config.space:  # the overrides as used, even if the user's file changes later
            atomic_write_text(config.run_dir / "space.toml", Path(config.space).read_text())
        return _search(config, tuner, data, resumed)


def _forget_ended(oracle) -> None:
    """Drops trials that had ended from the queue a reloaded oracle runs first.

    keras-tuner saves its oracle when a trial ends while it still lists the trial as running, and
    its reload queues every running trial again: a search stopped just after a trial ended would
    run that finished trial a second time.
    """
    oracle._retry_queue[:] = [trial_id for trial_id in oracle._retry_queue
                              if trial_id in oracle.trials
                              and oracle.trials[trial_id].status not in ENDED]


def _prepare_keras(config: SearchConfig) -> None:
    import keras
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = config.verbose >= 2  # else a failed trial's traceback goes to trials.csv only
    # Checkpoints carry optimizer slots a freshly built model lacks; Hyperband's reloads only
    # need the weights, so Keras's warning about skipping them says nothing to act on.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    keras.utils.set_random_seed(config.seed)


def _check_writable(out: Path) -> None:
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"--out {out}: {existing} is not a directory")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {existing} is not writable")


def _make_tuner(config: SearchConfig, hypermodel, data: SearchData, space, log, worker=None):
    import keras_tuner as kt

    from search_spaces import SEED_PRESETS, fixed_hyperparameters
    from tuning.records import TrialRecorder

    common = dict(objective=kt.Objective("val_accuracy", "max"), seed=config.seed,
                  directory=config.out, project_name=config.run_dir.name,
                  overwrite=False, max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED,
                  distribution_strategy=_strategy(config))
    if space is not None:  # keras-tuner's own override: declared values win over build()'s
        common.update(hyperparameters=space, tune_new_entries=True)
    if config.preset:
        fixed = fixed_hyperparameters(SEED_PRESETS[config.method])
        cls, kwargs = kt.RandomSearch, dict(max_trials=1, hyperparameters=fixed,
                                            tune_new_entries=False)
    elif config.tuner == "hyperband":
        cls, kwargs = kt.Hyperband, dict(max_epochs=config.max_epochs, factor=config.factor,
                                         hyperband_iterations=config.hyperband_iterations)
    elif config.tuner == "random":
        cls, kwargs = kt.RandomSearch, dict(max_trials=config.max_trials)
    else:
        cls, kwargs = kt.BayesianOptimization, dict(max_trials=config.max_trials)

    tuner = _recording(cls)(hypermodel, **common, **kwargs)
    tuner.max_madds = config.max_madds
    if isinstance(tuner.oracle, kt.Oracle):  # not a worker's client: the chief's or our own
        tuner.oracle._check_consecutive_failures = functools.partial(
            _check_consecutive_failures, tuner.oracle)
        if config.recipes:
            draw_recipes_first(tuner.oracle, getattr(hypermodel, "recipes", {}))
    planned = _planned(getattr(tuner.oracle, "_oracle", tuner.oracle), config)  # a worker's: a client
    describe = {"method": config.method, "data": data.source, "seed": config.seed,
                "train_images": len(data.train), "validation_images": len(data.validation)}
    tuner.recorder = TrialRecorder(config.run_dir, *planned, describe,
                                   log=log if config.verbose >= 1 else None,
                                   exports=worker is None, who=worker or "")
    return tuner


def _strategy(config: SearchConfig):
    """tf.distribute.MirroredStrategy over this machine's GPUs (one CPU replica without any)."""
    if config.distribution != "mirrored":
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def _recording(tuner_class):
    """`tuner_class` with a `recorder` told of each trial's start, training and end."""

    class Recording(tuner_class):
        _asked = False  # a trial was asked for and none came yet (a worker's oracle said IDLE)
        clock = None  # a `tuning.budget.SearchClock` where the search has one

        def pre_create_trial(self):
            if self._asked:
                time.sleep(IDLE_WAIT_SECONDS)  # keras-tuner would ask again at once, in a loop
            self._asked = True
            interrupt.raise_if_interrupted()
            if self.clock is not None:
                self.clock.raise_if_spent()
            super().pre_create_trial()

        def _build_hypermodel(self, hp):
            model = super()._build_hypermodel(hp)
            check_cost(model, self.max_madds)  # before any training: a refusal costs a build
            return model

        def on_trial_begin(self, trial):
            self._asked = False
            forget_custom_gradients()  # else every earlier trial's graphs stay in memory
            release_memory()  # gives back the last trial's tensors, if malloc holds them
            interrupt.raise_if_interrupted()
            super().on_trial_begin(trial)
            self.recorder.trial_started(trial)

        def run_trial(self, trial, *args, **kwargs):
            histories = super().run_trial(trial, *args, **kwargs)
            self.recorder.trial_trained(trial, histories)
            return histories

        def on_trial_end(self, trial):
            if self.clock is not None:
                self.clock.save()
            self.recorder.write_stats(trial)
            super().on_trial_end(trial)
            self.recorder.trial_ended(getattr(self.oracle, "trials", {}).values(), trial)
            interrupt.raise_if_interrupted()

    Recording.__name__ = f"Recording{tuner_class.__name__}"
    return Recording


def _check_consecutive_failures(oracle) -> None:
    """keras-tuner's stop after MAX_CONSECUTIVE_FAILED trials failed in a row, not counting
    trials refused for their cost (`tuning.cost`): those are the space's shape, not a fault."""
    failed = 0
    for trial_id in oracle.end_order:
        trial = oracle.trials[trial_id]
        if trial.status == "FAILED" and MADDS_CAPPED in (trial.message or ""):
            continue
        failed = failed + 1 if trial.status == "FAILED" else 0
        if failed == MAX_CONSECUTIVE_FAILED:
            raise RuntimeError(f"Number of consecutive failures exceeded the limit of "
                               f"{MAX_CONSECUTIVE_FAILED}.\n" + (trial.message or ""))


def _planned(oracle, config: SearchConfig) -> tuple[int, int]:
    """(trials, epochs) the search will run at most, for progress and ETA."""
    if config.preset:
        return 1, config.max_epochs
    if config.tuner != "hyperband":
        return config.max_trials, config.max_trials * config.max_epochs
    trials = epochs = 0
    for bracket in range(oracle._get_num_brackets()):
        for round_num in range(bracket + 1):
            size = oracle._get_size(bracket, round_num)
            start = oracle._get_epochs(bracket, round_num - 1) if round_num else 0
            trials += size
            epochs += size * (oracle._get_epochs(bracket, round_num) - start)
    return trials * config.hyperband_iterations, epochs * config.hyperband_iterations


def _search(config: SearchConfig, tuner, data: SearchData, resumed: dict) -> SearchResult:
    """Runs the trials here, or serves them to workers (`--chief`), then exports the winner."""
    from tuning.hparams import write_hparams_config
    from tuning.records import best_completed_trial

    write_hparams_config(config.run_dir / "tensorboard", tuner.oracle.get_space())
    budget_spent = False
    if config.chief:
        _serve(config, tuner, resumed)
    else:
        budget_spent = _run_trials(config, tuner, data)
    trials = list(tuner.oracle.trials.values())
    tuner.recorder.export(trials)
    best = best_completed_trial(trials)
    failed = sum(t.status == "FAILED" for t in trials)
    if best is None:
        raise SearchFailed(f"no trial completed ({failed} failed; reasons in "
                           f"{config.run_dir / 'trials.csv'})")
    model = tuner.load_model(best)  # checkpoints hold weights only: no optimizer state lost
    strategy = tuner.distribution_strategy  # (load_model clears the session, and any scope)
    with atomic_path(config.run_dir / BEST_MODEL_FILE) as tmp, (
            strategy.scope() if strategy else contextlib.nullcontext()):
        tuner.hypermodel.image_model(model).save(tmp)
    completed = sum(t.status == "COMPLETED" for t in trials)
    return SearchResult(config.run_dir, best.trial_id, best.score, completed, failed,
                        budget_spent=budget_spent)


def _run_trials(config: SearchConfig, tuner, data: SearchData) -> bool:
    """keras-tuner's search loop, with our callbacks, in this process.

    Returns:
        Whether the time budget ended it (else every planned trial ran).
    """
    import keras

    from tuning.callbacks import FailOnNaN, StopAtTimeBudget, StopOnInterrupt, TensorBoard
    from tuning.labels import label_names
    from tuning.pipeline import fit_data, validation_for

    args, kwargs = fit_data(tuner.hypermodel, data, config.batch_size, config.seed)
    callbacks = [
        TensorBoard(validation_for(tuner.hypermodel, kwargs), label_names().fine_to_coarse,
                    log_dir=str(config.run_dir / "tensorboard"), write_graph=False),
        keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max"),
        FailOnNaN(),
        StopOnInterrupt(),
    ]
    clock = tuner.clock  # None on a worker
    if clock is not None:
        callbacks.append(StopAtTimeBudget(clock))
    try:
        tuner.search(*args, **kwargs, epochs=config.max_epochs, shuffle=False,
                     callbacks=callbacks, verbose=1 if config.verbose >= 2 else 0)
    except BudgetSpent:
        return True
    except RuntimeError as error:  # keras-tuner's consecutive-failure limit
        if tuner.recorder.exports:
            tuner.recorder.export(tuner.oracle.trials.values())
        raise SearchFailed(f"search stopped: {str(error).strip().splitlines()[0]} "
                           f"(reasons in {config.run_dir / 'trials.csv'})") from None
    finally:
        if clock is not None:
            clock.save()
    return False


def _running_on_workers(config: SearchConfig) -> dict[str, str]:
    """{worker: trial id} a restarted chief finds running (see `tuning.distributed`)."""
    from tuning.distributed import running_before

    return running_before(config.run_dir) if config.chief and not config.overwrite else {}


def _serve(config: SearchConfig, tuner, resumed: dict) -> None:
    from tuning.distributed import parse_address, serve

    host, port = parse_address(config.chief, "--chief")
    tuner.save()
    serve(tuner.oracle, host, port, config.run_dir, config.worker_timeout,
          on_trial_end=lambda trial: tuner.recorder.trial_ended(tuner.oracle.trials.values(),
                                                                trial),
          log=tuner.recorder.log, resumed=resumed)
