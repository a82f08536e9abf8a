"""The keras-tuner tuner of a search: its class, its oracle's settings, its plan.

keras-tuner keeps a search's hooks in a `Tuner` subclass and its scheduling in the oracle; so do
we. `RecordingTuner` adds to each of keras-tuner's tuners what a run needs around a trial:
progress and exports (`tuning.engine.records`), the cost cap (`tuning.engine.cost`), the time budget
(`tuning.engine.budget`), Ctrl-C between trials (`tuning.host.interrupt`) and memory given back.
"""

from __future__ import annotations

import time

import keras_tuner as kt

from tuning.config import SearchConfig
from tuning.data.sources import SearchData
from tuning.engine.cost import check_cost, refused_for_cost
from tuning.engine.recipes import draw_recipes_first
from tuning.host import interrupt
from tuning.host.internals import (
    ModelBuiltHook,
    drop_first_round_entry,
    override_end_trial,
    override_failure_check,
    retry_queue,
    served_oracle,
    set_min_epochs,
)
from tuning.host.runtime import forget_custom_gradients, release_memory
from tuning.rundir import ENDED

MAX_CONSECUTIVE_FAILED = 5  # trials failing in a row (a fault in the setup) stop the search
MAX_REDRAWS = 100  # refused draws Hyperband replaces, per search (a space all over the cap ends)
IDLE_WAIT_SECONDS = 1.0  # between a worker's asks while the oracle has no trial ready


class ConsecutiveFailures(Exception):
    """MAX_CONSECUTIVE_FAILED trials failed in a row: keras-tuner's stop, as our own type."""


class RecordingTuner(ModelBuiltHook):
    """Mixed into a keras-tuner tuner: tells `recorder` of each trial's start, training and end.

    Args (beside the tuner's own):
        recorder: the search's `tuning.engine.records.TrialRecorder`.
        clock: the search's `tuning.engine.budget.SearchClock` (None: no budget kept here).
        max_madds: models costing more per image are refused before they train (None: no cap).
    """

    def __init__(self, hypermodel, *, recorder, clock=None, max_madds=None, **kwargs):
        self.recorder, self.clock, self.max_madds = recorder, clock, max_madds
        self._asked = False  # a trial was asked for and none came yet (a worker's oracle: IDLE)
        super().__init__(hypermodel, **kwargs)

    def pre_create_trial(self):
        if self._asked:
            time.sleep(IDLE_WAIT_SECONDS)  # keras-tuner would ask again at once, in a loop
        self._asked = True
        interrupt.raise_if_interrupted()
        if self.clock is not None:
            self.clock.raise_if_spent()
        super().pre_create_trial()

    def on_model_built(self, model):
        if self.clock is not None:
            self.clock.model_built()
        check_cost(model, self.max_madds)  # before any training: a refusal costs a build

    def on_trial_begin(self, trial):
        self._asked = False
        forget_custom_gradients()  # else every earlier trial's graphs stay in memory
        release_memory()  # gives back the last trial's tensors, if malloc holds them
        interrupt.raise_if_interrupted()
        super().on_trial_begin(trial)
        self.recorder.trial_started(trial)
        if self.clock is not None:
            self.clock.trial_began()

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
        if self.clock is not None:
            self.clock.trial_ended()
        interrupt.raise_if_interrupted()


class RecordingHyperband(RecordingTuner, kt.Hyperband):
    pass


class RecordingRandomSearch(RecordingTuner, kt.RandomSearch):
    pass


class RecordingBayesianOptimization(RecordingTuner, kt.BayesianOptimization):
    pass


def make_tuner(
    config: SearchConfig, hypermodel, data: SearchData, space, log, worker=None, clock=None
):
    """The tuner `config` asks for, on `hypermodel`, resuming what `config.run_dir` holds.

    Args:
        space: a `--space` file's HyperParameters (declared values win over `build()`'s), or None.
        worker: this worker's id when the oracle is a chief's.
        clock: the search's time budget (None: a worker's, whose chief keeps it).
    """
    from search_spaces import SEED_PRESETS, fixed_hyperparameters

    _prepare_keras(config)
    common = dict(
        objective=kt.Objective("val_accuracy", "max"),
        seed=config.seed,
        directory=config.out,
        project_name=config.run_dir.name,
        overwrite=False,
        max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED,
        distribution_strategy=_strategy(config),
    )
    if space is not None:
        common.update(hyperparameters=space, tune_new_entries=True)
    if config.preset:
        fixed = fixed_hyperparameters(SEED_PRESETS[config.method])
        cls, kwargs = (
            RecordingRandomSearch,
            dict(max_trials=1, hyperparameters=fixed, tune_new_entries=False),
        )
    elif config.tuner == "hyperband":
        cls, kwargs = (
            RecordingHyperband,
            dict(
                max_epochs=config.max_epochs,
                factor=config.factor,
                hyperband_iterations=config.hyperband_iterations,
            ),
        )
    elif config.tuner == "random":
        cls, kwargs = RecordingRandomSearch, dict(max_trials=config.max_trials)
    else:
        cls, kwargs = RecordingBayesianOptimization, dict(max_trials=config.max_trials)

    recorder = _recorder(config, data, log, worker, clock)
    tuner = cls(
        hypermodel, recorder=recorder, clock=clock, max_madds=config.max_madds, **common, **kwargs
    )
    if isinstance(served_oracle(tuner.oracle), kt.oracles.HyperbandOracle):
        set_min_epochs(served_oracle(tuner.oracle), config.min_epochs)
    if isinstance(tuner.oracle, kt.Oracle):  # not a worker's client: the chief's or our own
        override_failure_check(tuner.oracle, lambda: check_consecutive_failures(tuner.oracle))
        if isinstance(tuner.oracle, kt.oracles.HyperbandOracle):
            redraw_refused(tuner.oracle)
        if config.recipes:
            draw_recipes_first(tuner.oracle, getattr(hypermodel, "recipes", {}))
    return tuner


def _recorder(config: SearchConfig, data: SearchData, log, worker, clock):
    from tuning.engine.records import TrialRecorder

    describe = {
        "method": config.method,
        "data": data.source,
        "seed": config.seed,
        "train_images": len(data.train),
        "validation_images": len(data.validation),
    }
    return TrialRecorder(
        config.run_dir,
        *planned_work(config),
        describe,
        log=log if config.verbose >= 1 else None,
        exports=worker is None,
        who=worker or "",
        clock=clock,
        redraws_refused=config.tuner == "hyperband" and not config.preset,
    )


def _prepare_keras(config: SearchConfig) -> None:
    import keras

    from tuning.host.internals import set_debug
    from tuning.host.runtime import hide_retracing_notices

    set_debug(config.verbose >= 2)  # else a failed trial's traceback goes to trials.csv only
    hide_retracing_notices()
    keras.utils.set_random_seed(config.seed)


def _strategy(config: SearchConfig):
    """tf.distribute.MirroredStrategy over this machine's GPUs (one CPU replica without any)."""
    if config.distribution != "mirrored":
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def redraw_refused(oracle) -> None:
    """Has Hyperband draw another configuration in place of one refused for its cost.

    Hyperband promotes from a round only while more of its trials completed than the next round
    throws away: a first round of 9 with one refused trial promotes 2 instead of 3, and its last
    round (the full budget) never runs. A refused configuration never trained, so the round
    draws a new one instead, up to MAX_REDRAWS per search.
    """

    def after(trial):
        refused = refused_for_cost(trial)
        redrawn = sum(map(refused_for_cost, oracle.trials.values())) - 1
        if refused and redrawn < MAX_REDRAWS and drop_first_round_entry(oracle, trial.trial_id):
            oracle.save()

    override_end_trial(oracle, after)


def check_consecutive_failures(oracle) -> None:
    """keras-tuner's stop after MAX_CONSECUTIVE_FAILED trials failed in a row, not counting
    trials refused for their cost (`tuning.engine.cost`): those are the space's shape, not a
    fault."""
    failed = 0
    for trial_id in oracle.end_order:
        trial = oracle.trials[trial_id]
        if refused_for_cost(trial):
            continue
        failed = failed + 1 if trial.status == "FAILED" else 0
        if failed == MAX_CONSECUTIVE_FAILED:
            raise ConsecutiveFailures(
                f"Number of consecutive failures exceeded the limit of "
                f"{MAX_CONSECUTIVE_FAILED}.\n" + (trial.message or "")
            )


def planned_work(config: SearchConfig) -> tuple[int, int]:
    """(trials, epochs) the search will run at most, for progress and ETA."""
    from tuning.engine.plan import hyperband_counts

    if config.preset:
        return 1, config.max_epochs
    if config.tuner != "hyperband":
        return config.max_trials, config.max_trials * config.max_epochs
    trials, epochs = hyperband_counts(config.max_epochs, config.min_epochs, config.factor)
    return trials * config.hyperband_iterations, epochs * config.hyperband_iterations


def forget_ended(oracle) -> None:
    """Drops trials that had ended from the queue a reloaded oracle runs first.

    keras-tuner saves its oracle when a trial ends while it still lists the trial as running, and
    its reload queues every running trial again: a search stopped just after a trial ended would
    run that finished trial a second time.
    """
    queue = retry_queue(oracle)
    queue[:] = [
        trial_id
        for trial_id in queue
        if trial_id in oracle.trials and oracle.trials[trial_id].status not in ENDED
    ]


def export_model(tuner, trial, path) -> None:
    """Saves `trial`'s model at `path` as a user loads it: the frozen backbone included
    (`image_model`), float32, written atomically."""
    import contextlib

    from tuning.host.files import atomic_path

    model = tuner.load_model(trial)
    strategy = tuner.distribution_strategy  # (load_model clears the session, and any scope)
    with atomic_path(path) as tmp, strategy.scope() if strategy else contextlib.nullcontext():
        tuner.hypermodel.image_model(model).save(tmp)
