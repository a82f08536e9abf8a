"""Every use of keras-tuner's and TensorFlow's private API, in one place.

Written against keras-tuner 1.4.8 and TensorFlow 2.21 (bounded in `pyproject.toml`, so that an
upgrade fails in CI, where the tests of each function below run, and not at a user's). Each
function says what it reaches into and why no public way exists.
"""

from __future__ import annotations


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
