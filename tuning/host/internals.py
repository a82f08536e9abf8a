"""Every use of keras-tuner's and TensorFlow's private API, in one place.

Written against keras-tuner 1.4.8 and TensorFlow 2.21, the versions `pyproject.toml` allows
(an upgrade then fails in CI, where the tests of what each function serves run, and not at a
user's). Each function says what it reaches into and why no public way exists.
"""

from __future__ import annotations

# --- keras-tuner: the oracle -------------------------------------------------------------


def override_random_values(oracle, draw) -> None:
    """Routes `oracle`'s random draws (`Oracle._random_values`, which Hyperband's, RandomSearch's
    and Bayesian optimization's first trials all call) through `draw(draw_at_random)`.

    keras-tuner has no way to enqueue chosen configurations (Optuna's `enqueue_trial`).
    """
    draw_at_random = oracle._random_values
    oracle._random_values = lambda: draw(draw_at_random)


def already_drawn(oracle, values: dict) -> bool:
    """Whether `oracle` has recorded a trial with these hyperparameter values
    (`Oracle._duplicate`: a hash of the values, kept in the oracle's saved state)."""
    return oracle._duplicate(values)


def override_failure_check(oracle, check) -> None:
    """Replaces `Oracle._check_consecutive_failures` (called as each trial ends) by `check()`:
    keras-tuner counts every FAILED trial, with no hook to leave some out."""
    oracle._check_consecutive_failures = check


def retry_queue(oracle) -> list:
    """The ids `oracle` hands out again before new trials (`Oracle._retry_queue`, the list
    itself): keras-tuner's reload queues every trial that was running, with no public way to
    take one back."""
    return oracle._retry_queue


def trial_display(oracle):
    """`Oracle._display`, which prints a trial's time from when this process began it; a
    restarted chief must tell it of trials it did not begin."""
    return oracle._display


def random_draws(hyperparameters, seed: int, count: int) -> list[dict]:
    """The first `count` configurations keras-tuner's oracle draws at random from
    `hyperparameters` when seeded with `seed` (`Oracle._random_values`: a seed per active
    hyperparameter, counting on from `seed`), for pricing what a search will train.

    keras-tuner draws only inside a search; its sampling is not exposed on its own.
    """
    import keras_tuner as kt

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("val_accuracy", "max"), seed=seed)
    oracle.hyperparameters = hyperparameters.copy()
    draws = (oracle._random_values() for _ in range(count))
    return [values for values in draws if values is not None]  # None: a space drawn dry


def bracket_rounds(oracle) -> list[list[tuple[int, int, int]]]:
    """(trials, first epoch, last epoch) of each round of each of Hyperband's brackets, the
    brackets in the order its `_populate_space` runs them (the highest-numbered, with the most
    and shortest first rounds, first), from `HyperbandOracle._get_num_brackets`, `_get_size` and
    `_get_epochs` (its own arithmetic, not exposed)."""
    return [
        [
            (
                oracle._get_size(bracket, round_num),
                oracle._get_epochs(bracket, round_num - 1) if round_num else 0,
                oracle._get_epochs(bracket, round_num),
            )
            for round_num in range(bracket + 1)
        ]
        for bracket in reversed(range(oracle._get_num_brackets()))
    ]


def set_min_epochs(oracle, min_epochs: int) -> None:
    """Hyperband's smallest budget (`HyperbandOracle.min_epochs`, fixed at 1 by its constructor,
    which has already opened its first bracket by it): the brackets are counted again and the
    first one reopened. Only before any trial; a reloaded oracle keeps its saved value."""
    if oracle.min_epochs == min_epochs or oracle.trials:
        return
    oracle.min_epochs = min_epochs
    oracle._current_bracket = oracle._get_num_brackets() - 1
    oracle._brackets = []
    oracle._start_new_bracket()


def served_oracle(oracle):
    """The oracle itself, or for a worker's `OracleClient` the oracle it was built with
    (`OracleClient._oracle`), whose Hyperband arithmetic a worker plans by."""
    return getattr(oracle, "_oracle", oracle)


def set_project_dir(oracle, directory: str, project_name: str) -> None:
    """Where a stand-alone oracle saves its state (`Oracle._set_project_dir`, which a Tuner calls
    for its own oracle; tests build oracles without a tuner)."""
    oracle._set_project_dir(directory, project_name)


def override_end_trial(oracle, after) -> None:
    """Calls `after(trial)` each time `oracle` has ended a trial (`Oracle.end_trial`, the method
    a tuner and keras-tuner's chief servicer both call; keras-tuner has no hook for it)."""
    end_trial = oracle.end_trial

    def end_then(trial):
        result = end_trial(trial)
        after(trial)
        return result

    oracle.end_trial = end_then


def drop_first_round_entry(oracle, trial_id: str) -> bool:
    """Takes `trial_id` out of the first round of its Hyperband bracket (`_brackets`, where
    `HyperbandOracle` counts a round's trials), so the round draws another configuration in its
    place. Returns whether it was there."""
    for bracket in getattr(oracle, "_brackets", []):
        first = bracket["rounds"][0]
        kept = [info for info in first if info["id"] != trial_id]
        if len(kept) != len(first):
            first[:] = kept
            return True
    return False


def synchronized(function):
    """keras-tuner's `synchronized` (holds the oracle's lock, as its own methods do), imported
    only when first called."""

    def call(oracle, *args):
        from keras_tuner.src.engine.oracle import synchronized as kt_synchronized

        return kt_synchronized(function)(oracle, *args)

    return call


# --- keras-tuner: the tuner, the chief's protocol, its settings ------------------------------


class ModelBuiltHook:
    """Mixed into a keras-tuner Tuner: calls `self.on_model_built(model)` after every build.

    `Tuner._build_hypermodel` is where keras-tuner builds each trial's model (the public
    `HyperModel.build` is ours, but Hyperband's override loads a promoted trial's weights here).
    """

    def _build_hypermodel(self, hp):
        model = super()._build_hypermodel(hp)
        self.on_model_built(model)
        return model

    def on_model_built(self, model) -> None:
        pass


def set_debug(on: bool) -> None:
    """keras-tuner's `config.DEBUG`: whether a failed trial's traceback is printed."""
    from keras_tuner.src import config

    config.DEBUG = on


def hparams_of(space, hparams_api) -> list:
    """TensorBoard HParams for a HyperParameters space, by keras-tuner's own converter
    (`tuner_utils.convert_hyperparams_to_hparams`), so the dashboard matches its callback's."""
    from keras_tuner.src.engine import tuner_utils

    return list(tuner_utils.convert_hyperparams_to_hparams(space, hparams_api))


def oracle_protos():
    """keras-tuner's gRPC messages and service (`keras_tuner.src.protos`)."""
    from keras_tuner.src import protos

    return protos


def oracle_servicer_class():
    """keras-tuner's chief servicer (`distribute.oracle_chief.OracleServicer`), to subclass."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    return OracleServicer


def trial_module():
    """keras-tuner's `Trial` and `TrialStatus` (`engine.trial`)."""
    from keras_tuner.src.engine import trial

    return trial


# --- TensorFlow ------------------------------------------------------------------------------


def onednn_enabled() -> bool:
    """Whether TensorFlow reports its oneDNN kernels on (`_pywrap_util_port.IsMklEnabled`: no
    public accessor exists)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def gradient_registry() -> dict:
    """TensorFlow's global registry of custom gradients (`ops._gradient_registry._registry`),
    which is never emptied (see `tuning.host.runtime.forget_custom_gradients`)."""
    from tensorflow.python.framework import ops

    return ops._gradient_registry._registry
