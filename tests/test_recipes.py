"""Known recipes as a search's first trials (`tuning.engine.recipes`)."""

import json

import keras_tuner as kt
import pytest

from search_spaces.scratch import RECIPES, ScratchCNN
from tuning.config import SearchConfig
from tuning.engine.recipes import recipe_values
from tuning.engine.search import run_search


def _space(**fixed):
    hp = kt.HyperParameters()
    for name, value in fixed.items():
        hp.Fixed(name, value)
    ScratchCNN().build(hp)
    return hp.space


def _drawn(run_dir) -> list[dict]:
    """Each trial's hyperparameters, in the order the trials were created."""
    trials = sorted(run_dir.glob("trial_*/trial.json"))
    return [json.loads(path.read_text())["hyperparameters"]["values"] for path in trials]


def _same(values: dict, recipe: dict) -> bool:
    return all(values[name] == value for name, value in recipe.items())


def test_every_recipe_fits_the_default_scratch_space_and_builds():
    space = _space()
    for name, recipe in RECIPES.items():
        values = recipe_values(space, recipe)
        assert values is not None, name
        assert {hp.name for hp in space} == set(values)
        hp = kt.HyperParameters()
        hp.values.update(values)
        assert ScratchCNN().build(hp).count_params() > 0


def test_a_recipe_outside_a_narrowed_space_is_not_drawn():
    name, recipe = next(iter(RECIPES.items()))
    other = "residual" if recipe["architecture"] == "plain" else "plain"
    assert recipe_values(_space(architecture=other), recipe) is None
    assert recipe_values(_space(architecture=recipe["architecture"]), recipe) is not None
    rate = "sgd_learning_rate" if recipe["optimizer"] == "sgd" else "learning_rate"
    narrowed = kt.HyperParameters()
    narrowed.Float(rate, recipe[rate] * 2, 1.0)
    assert recipe_values(narrowed.space, recipe) is None
    narrowed = kt.HyperParameters()
    narrowed.Choice("optimizer", [o for o in ("adam", "adamw", "sgd") if o != recipe["optimizer"]])
    assert recipe_values(narrowed.space, recipe) is None


@pytest.fixture
def config(tmp_path):
    return dict(
        method="scratch",
        tuner="random",
        data="synthetic",
        train_size=500,
        max_epochs=1,
        out=str(tmp_path),
        verbose=0,
    )


def test_a_search_draws_the_recipes_first_then_at_random_and_never_again_on_resume(config):
    recipes = list(RECIPES.values())
    run_search(SearchConfig(**config, max_trials=len(recipes)), log=None)
    run_dir = SearchConfig(**config).run_dir
    drawn = _drawn(run_dir)
    assert [_same(values, recipe) for values, recipe in zip(drawn, recipes)] == [True] * len(
        recipes
    )

    run_search(SearchConfig(**config, max_trials=len(recipes) + 1), log=None)  # resumed
    drawn = _drawn(run_dir)
    assert len(drawn) == len(recipes) + 1
    assert not any(_same(drawn[-1], recipe) for recipe in recipes)


def test_no_recipes_draws_every_trial_at_random(config):
    run_search(SearchConfig(**config, max_trials=1, recipes=False), log=None)
    first = _drawn(SearchConfig(**config).run_dir)[0]
    assert not any(_same(first, recipe) for recipe in RECIPES.values())
