"""Known recipes as a search's first trials, then the tuner's own draws.

A search space wide enough to hold the best known recipes (ResNet-style training: residual stages,
SGD with a one-cycle rate, label smoothing, crop + flip) also holds many slow or poor corners, and
a short search's random draws may never come near the recipes. So, like AutoKeras's
`initial_hps` and Optuna's `enqueue_trial`, the first configurations a tuner draws are the space's
recipes (those that fit the space as narrowed by a `--space` file or preset), each once; every
later draw is the tuner's own. Under Hyperband a recipe enters the first bracket like any draw and
is promoted only if its score earns it. A recipe counts as drawn once the oracle has recorded its
values, so a resumed search does not draw it again.
"""

from __future__ import annotations

from tuning.host.internals import already_drawn, override_random_values


def draw_recipes_first(oracle, recipes: dict[str, dict]) -> None:
    """Makes `oracle` draw each of `recipes` that fits its space, in order, before random draws.

    Args:
        oracle: a keras-tuner oracle (the chief's, or a lone search's).
        recipes: {name: {hyperparameter: value}}; a hyperparameter a recipe does not name takes
            its default.
    """
    if not recipes:
        return

    def recipes_then_random(draw_at_random):
        for recipe in recipes.values():
            values = recipe_values(oracle.hyperparameters.space, recipe)
            if values is not None and not already_drawn(oracle, values):
                return values
        return draw_at_random()

    override_random_values(oracle, recipes_then_random)


def recipe_values(space, recipe: dict) -> dict | None:
    """{name: value} for every hyperparameter of `space`, or None if the recipe falls outside it."""
    values = {}
    for hp in space:
        value = recipe.get(hp.name, hp.default)
        if not holds(hp, value):
            return None
        values[hp.name] = value
    return values


def holds(hp, value) -> bool:
    """Whether `value` is one `hp` can take (its fixed value, a choice, within its range)."""
    kind = type(hp).__name__
    if kind == "Fixed":
        return value == hp.value
    if kind == "Boolean":
        return isinstance(value, bool)
    if kind == "Choice":
        return value in hp.values
    if kind in ("Int", "Float"):
        return hp.min_value <= value <= hp.max_value
    return False
