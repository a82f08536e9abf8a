"""Runs (or resumes) a search over train + validation and leaves every trial on disk.

`run_search(config)` is the library entry point; `python -m tuning search` is a thin wrapper.
Run directory (`config.run_dir`): keras-tuner's trials and oracle state, `tensorboard/` (one run per
trial plus the HParams config), `trials.csv`, `best_hyperparameters.json`, `best_model.keras` and
`search_config.json`. The tuner is `tuning.tuner`; a worker's and a chief's sides, `tuning.roles`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from pathlib import Path

from tuning import interrupt
from tuning.budget import BudgetSpent, SearchClock, format_duration
from tuning.config import SearchConfig
from tuning.cpu import onednn_line
from tuning.data import IN_MEMORY, SearchData, Split, load_search_data, split_from_arrays
from tuning.errors import ConfigError, SearchFailed, UsageError
from tuning.features import hypermodel_for, load_backbone
from tuning.files import atomic_path, atomic_write_text, check_writable, raise_if_disk_error
from tuning.identity import CONFIG_FILE, check_resumable, config_record
from tuning.lock import LOCK_FILE, run_dir_lock
from tuning.plan import plan_epochs, recorded_plan
from tuning.precision import resolve as resolve_precision
from tuning.result import BEST_MODEL_FILE, SearchResult


def run_search(config: SearchConfig, log=print, x_train=None, y_train=None) -> SearchResult:
    """Runs (or resumes) the search `config` describes. Raises UsageError, SearchFailed.

    Holds the run directory's lock throughout; everything that can be checked (settings, data,
    weights) is checked before the directory is touched, so a mistake never damages it.

    Args:
        log: called with each progress line (None: quiet).
        x_train, y_train: images (uint8, N x 32 x 32 x 3) and fine labels (0-99) held in
            memory, searched instead of `config.data` (recorded as "in-memory", with a hash of
            the arrays: resuming needs the same arrays). The validation split is carved from
            them as from any data.
    """
    from search_spaces import dtype_policy

    config, arrays = _with_arrays(config, x_train, y_train)
    config, precision = resolve_precision(config)
    with dtype_policy(config.precision):
        return _search_in_policy(config, arrays, log, precision.describe())


def _search_in_policy(config: SearchConfig, arrays: Split | None, log, precision: str):
    if config.worker:
        from tuning.roles import worker_search

        worker, completed, failed = worker_search(
            config,
            log,
            lambda: _inputs(config),
            lambda inputs, worker_id: _tuner(config, *inputs, log, worker_id),
            lambda tuner, inputs: _run_trials(config, tuner, inputs[1]),
        )
        return SearchResult(config.run_dir, None, None, completed, failed, worker=worker)
    config = recorded_plan(config)
    check_resumable(config, arrays)
    space, data, backbone = _inputs(config, arrays)
    if config.plans_epochs:
        config = plan_epochs(config, data, space, log)
    check_writable(Path(config.out))
    try:
        with run_dir_lock(config.run_dir, force=config.force_unlock):
            if config.overwrite:
                _clear(config.run_dir)
            return _locked_search(config, space, data, backbone, log, arrays, precision)
    except OSError as error:
        raise_if_disk_error(error, config.run_dir)
        raise


def _with_arrays(config: SearchConfig, x_train, y_train) -> tuple[SearchConfig, Split | None]:
    """(config, None), or for arrays passed in (config with data "in-memory", the arrays)."""
    if x_train is None and y_train is None:
        return config, None
    if config.data not in (SearchConfig.data, IN_MEMORY):
        raise ConfigError(
            f"{{data}} {config.data!r} and x_train / y_train: search one or the other"
        )
    if x_train is None or y_train is None:
        raise UsageError("x_train and y_train go together: pass both or neither")
    arrays = split_from_arrays(x_train, y_train, "x_train / y_train")
    return dataclasses.replace(config, data=IN_MEMORY), arrays


def _inputs(config: SearchConfig, arrays: Split | None = None) -> tuple:
    """(the `--space` file's HyperParameters or None, the data, the frozen backbone or None),
    each checked before anything is written."""
    from tuning.space import load_space

    space = load_space(config.space, config.method) if config.space else None
    data = load_search_data(
        config.data, config.val_size, config.train_size, config.seed, arrays=arrays
    )
    return space, data, load_backbone(config)


def _tuner(config: SearchConfig, space, data: SearchData, backbone, log, worker=None):
    from tuning.tuner import make_tuner

    hypermodel = hypermodel_for(config, data, backbone, log=log if config.verbose else None)
    _prepare_keras(config)
    return make_tuner(config, hypermodel, data, space, log, worker=worker)


def _clear(run_dir: Path) -> None:
    """Empties `run_dir` for --overwrite, keeping our lock (keras-tuner's overwrite would not)."""
    for path in run_dir.iterdir():
        if path.name == LOCK_FILE:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _locked_search(
    config: SearchConfig,
    space,
    data: SearchData,
    backbone,
    log,
    arrays: Split | None,
    precision: str,
) -> SearchResult:
    from tuning.roles import running_on_workers
    from tuning.tuner import forget_ended

    if log:
        log(
            f"{config.method} search ({config.preset or config.tuner}), seed {config.seed}, "
            f"{data.describe()}, {onednn_line()}, {precision} -> {config.run_dir}"
        )
    with interrupt.recorded():
        resumed = running_on_workers(config)  # read before keras-tuner's reload queues them
        tuner = _tuner(config, space, data, backbone, log)
        tuner.clock = tuner.recorder.clock = SearchClock(config.run_dir, config.time_budget)
        if log and config.time_budget:
            log(
                f"time budget {format_duration(config.time_budget)}: "
                f"{format_duration(tuner.clock.left())} left"
            )
        forget_ended(tuner.oracle)
        atomic_write_text(config.run_dir / CONFIG_FILE, config_record(config, arrays))
        if config.space:  # the overrides as used, even if the user's file changes later
            atomic_write_text(config.run_dir / "space.toml", Path(config.space).read_text())
        return _search(config, tuner, data, resumed)


def _prepare_keras(config: SearchConfig) -> None:
    import keras

    from tuning.internals import set_debug

    set_debug(config.verbose >= 2)  # else a failed trial's traceback goes to trials.csv only
    # Checkpoints carry optimizer slots a freshly built model lacks; Hyperband's reloads only
    # need the weights, so Keras's warning about skipping them says nothing to act on.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    keras.utils.set_random_seed(config.seed)


def _search(config: SearchConfig, tuner, data: SearchData, resumed: dict) -> SearchResult:
    """Runs the trials here, or serves them to workers (`--chief`), then exports the winner."""
    from tuning.hparams import write_hparams_config
    from tuning.records import best_completed_trial
    from tuning.roles import serve_search

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
    model = tuner.load_model(best)  # checkpoints hold weights only: no optimizer state lost
    strategy = tuner.distribution_strategy  # (load_model clears the session, and any scope)
    with (
        atomic_path(config.run_dir / BEST_MODEL_FILE) as tmp,
        strategy.scope() if strategy else contextlib.nullcontext(),
    ):
        tuner.hypermodel.image_model(model).save(tmp)
    completed = sum(t.status == "COMPLETED" for t in trials)
    return SearchResult(
        config.run_dir, best.trial_id, best.score, completed, failed, budget_spent=budget_spent
    )


def _run_trials(config: SearchConfig, tuner, data: SearchData) -> bool:
    """keras-tuner's search loop, with our callbacks, in this process.

    Returns:
        Whether the time budget ended it (else every planned trial ran).
    """
    from tuning.callbacks import search_callbacks
    from tuning.pipeline import fit_data

    args, kwargs = fit_data(tuner.hypermodel, data, config.batch_size, config.seed)
    callbacks = search_callbacks(config, tuner.hypermodel, kwargs, tuner.clock)
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
    except RuntimeError as error:  # keras-tuner's consecutive-failure limit
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
