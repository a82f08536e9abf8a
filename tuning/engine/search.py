"""Runs (or resumes) a search over train + validation and leaves every trial on disk.

`run_search(config)` is the library entry point; `python -m tuning search` is a thin wrapper.
Run directory (`config.run_dir`): keras-tuner's trials and oracle state, `tensorboard/` (one run per
trial plus the HParams config), `trials.csv`, `best_hyperparameters.json`, `best_model.keras` and
`search_config.json`. The tuner is `tuning.engine.tuner`; a worker's and a chief's sides,
`tuning.distribute.roles`.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

from tuning.config import SearchConfig
from tuning.data.features import hypermodel_for, load_backbone
from tuning.data.sources import SearchData, Split, data_of, with_arrays
from tuning.engine.budget import BudgetSpent, SearchClock, format_duration
from tuning.engine.plan import PLANNED_MIN_EPOCHS, plan_epochs, recorded_plan
from tuning.errors import SearchFailed
from tuning.host import interrupt
from tuning.host.cpu import onednn_line
from tuning.host.files import atomic_write_text, check_writable, raise_if_disk_error
from tuning.host.precision import resolve as resolve_precision
from tuning.result import BEST_MODEL_FILE, SearchResult
from tuning.rundir import CLASS_NAMES_FILE, CONFIG_FILE
from tuning.rundir.identity import check_resumable, config_record, recorded_config
from tuning.rundir.lock import clear_keeping_lock, run_dir_lock


def run_search(
    config: SearchConfig,
    log=print,
    x_train=None,
    y_train=None,
    class_names=None,
    started: float | None = None,
) -> SearchResult:
    """Runs (or resumes) the search `config` describes. Raises UsageError, SearchFailed.

    Holds the run directory's lock throughout; everything that can be checked (settings, data,
    weights) is checked before the directory is touched, so a mistake never damages it.

    Args:
        log: called with each progress line (None: quiet).
        x_train, y_train: square images (uint8, N x side x side x 3) and labels held in
            memory, searched instead of `config.data` (recorded as "in-memory", with a hash of
            the arrays: resuming needs the same arrays). The validation split is carved from
            them as from any data.
        class_names: the labels' names (default CIFAR-100's 100: labels 0-99).
        started: `time.monotonic()` from which a time budget counts (default: this call, so
            reading the data and planning count; the command line gives its process's start).
    """
    started = time.monotonic() if started is None else started
    from search_spaces import dtype_policy

    config, arrays, names = with_arrays(config, x_train, y_train, class_names)
    config, precision = resolve_precision(config, recorded_config(config))
    with dtype_policy(config.precision):
        return _search_in_policy(config, arrays, log, precision.describe(), names, started)


def _search_in_policy(
    config: SearchConfig, arrays: Split | None, log, precision: str, names, started: float
):
    if config.worker:
        from tuning.distribute.roles import worker_search

        start = functools.partial(_start_worker, config, log)
        worker, completed, failed = worker_search(config, log, start)
        return SearchResult(config.run_dir, None, None, completed, failed, worker=worker)
    config = recorded_plan(config)
    check_resumable(config, arrays)
    space, data, backbone = _inputs(config, arrays, log, names)
    features = None
    if config.plans_epochs:
        planning = _hypermodel(config, data, backbone, log, epochs=PLANNED_MIN_EPOCHS)
        features = getattr(planning, "features", None)  # prepared: the tuner's reads it
        config = plan_epochs(config, data, space, planning, log, time.monotonic() - started)
    check_writable(Path(config.out))
    inputs = space, data, backbone, features
    try:
        with run_dir_lock(config.run_dir, force=config.force_unlock):
            if config.overwrite:
                clear_keeping_lock(config.run_dir)
            return _locked_search(config, inputs, log, arrays, precision, started)
    except OSError as error:
        raise_if_disk_error(error, config.run_dir)
        raise


def _inputs(config: SearchConfig, arrays: Split | None = None, log=None, names=None) -> tuple:
    """(the `--space` file's HyperParameters or None, the data, the frozen backbone or None),
    each checked before anything is written."""
    from tuning.space import load_space

    space = load_space(config.space, config.method) if config.space else None
    data = data_of(config, arrays, log if config.verbose else None, names)
    return space, data, load_backbone(config, data.image_size)


def _hypermodel(config: SearchConfig, data: SearchData, backbone, log, **kwargs):
    return hypermodel_for(config, data, backbone, log=log if config.verbose else None, **kwargs)


def _tuner(
    config: SearchConfig,
    space,
    data: SearchData,
    backbone,
    log,
    worker=None,
    clock=None,
    features=None,
):
    from tuning.engine.tuner import make_tuner

    hypermodel = _hypermodel(config, data, backbone, log, features=features)
    return make_tuner(config, hypermodel, data, space, log, worker=worker, clock=clock)


def _start_worker(config: SearchConfig, log, worker_id: str):
    """A worker's tuner on its chief's oracle, and the loop that runs its trials."""
    space, data, backbone = _inputs(config, log=log)
    tuner = _tuner(config, space, data, backbone, log, worker_id)
    return tuner, functools.partial(_run_trials, config, tuner, data)


def _locked_search(
    config: SearchConfig, inputs: tuple, log, arrays: Split | None, precision: str, started: float
) -> SearchResult:
    """The search in its locked run directory; `inputs`: `_inputs`'s, and the feature cache a
    plan prepared (or None)."""
    from tuning.distribute.roles import running_on_workers
    from tuning.engine.tuner import forget_ended

    space, data, backbone, features = inputs
    if log:
        log(
            f"{config.method} search ({config.preset or config.tuner}), seed {config.seed}, "
            f"{data.describe()}, {onednn_line()}, {precision} -> {config.run_dir}"
        )
    with interrupt.recorded():
        resumed = running_on_workers(config)  # read before keras-tuner's reload queues them
        clock = SearchClock(config.run_dir, config.time_budget, started)
        tuner = _tuner(config, space, data, backbone, log, clock=clock, features=features)
        if log and config.time_budget:
            log(
                f"time budget {format_duration(config.time_budget)}: "
                f"{format_duration(tuner.clock.left())} left"
            )
        forget_ended(tuner.oracle)
        atomic_write_text(config.run_dir / CONFIG_FILE, config_record(config, arrays, data))
        if config.space:  # the overrides as used, even if the user's file changes later
            atomic_write_text(config.run_dir / "space.toml", Path(config.space).read_text())
        return _search(config, tuner, data, resumed)


def _search(config: SearchConfig, tuner, data: SearchData, resumed: dict) -> SearchResult:
    """Runs the trials here, or serves them to workers (`--chief`), then exports the winner."""
    from tuning.distribute.roles import serve_search
    from tuning.engine.hparams import write_hparams_config
    from tuning.engine.records import best_completed_trial
    from tuning.engine.tuner import export_model

    write_hparams_config(config.run_dir / "tensorboard", tuner.oracle.get_space())
    budget_spent = False
    if config.chief:
        serve_search(config, tuner, resumed)
    else:
        budget_spent = _run_trials(config, tuner, data)
    trials = list(tuner.oracle.trials.values())
    tuner.recorder.export(trials)
    best = best_completed_trial(trials)
    failed = sum(t.status == "FAILED" for t in trials)
    if best is None:
        raise SearchFailed(
            f"no trial completed ({failed} failed; reasons in {config.run_dir / 'trials.csv'})"
        )
    export_model(tuner, best, config.run_dir / BEST_MODEL_FILE)
    atomic_write_text(config.run_dir / CLASS_NAMES_FILE, json.dumps(list(data.names.fine)))
    completed = sum(t.status == "COMPLETED" for t in trials)
    return SearchResult(
        config.run_dir, best.trial_id, best.score, completed, failed, budget_spent=budget_spent
    )


def _run_trials(config: SearchConfig, tuner, data: SearchData) -> bool:
    """keras-tuner's search loop, with our callbacks, in this process.

    Returns:
        Whether the time budget ended it (else every planned trial ran).
    """
    from tuning.data.pipeline import fit_data
    from tuning.engine.callbacks import search_callbacks
    from tuning.engine.tuner import ConsecutiveFailures

    args, kwargs = fit_data(tuner.hypermodel, data, config.batch_size, config.seed)
    callbacks = search_callbacks(config, tuner.hypermodel, kwargs, data.names, tuner.clock)
    try:
        tuner.search(
            *args,
            **kwargs,
            epochs=config.max_epochs,
            shuffle=False,
            callbacks=callbacks,
            verbose=1 if config.verbose >= 2 else 0,
        )
    except BudgetSpent:
        return True
    except ConsecutiveFailures as error:
        if tuner.recorder.exports:
            tuner.recorder.export(tuner.oracle.trials.values())
        raise SearchFailed(
            f"search stopped: {str(error).strip().splitlines()[0]} "
            f"(reasons in {config.run_dir / 'trials.csv'})"
        ) from None
    finally:
        if tuner.clock is not None:
            tuner.clock.save()
    return False
