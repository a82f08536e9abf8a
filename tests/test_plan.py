"""A time budget plans the search: Hyperband's epochs chosen so that its first full-budget round
finishes inside the budget."""

import json

import pytest
from conftest import make_cache

from tuning.config import SearchConfig
from tuning.engine.budget import format_duration
from tuning.engine.plan import (
    PLAN_SHARE,
    PLANNED_MIN_EPOCHS,
    SEARCH_EPOCHS,
    Cost,
    Pricing,
    WarmUp,
    choose_capped_plan,
    choose_plan,
    hyperband_plan,
)
from tuning.errors import ConfigError


def test_the_plan_counts_hyperbands_own_rounds():
    plan = hyperband_plan(9, 1, 3, Cost(epoch_seconds=10, trial_seconds=2))
    # keras-tuner's Hyperband over 9 epochs, factor 3: 23 trials, 75 epochs (9+3+1, 5+2, 3)
    assert (plan.brackets, plan.trials, plan.epochs) == (3, 23, 75)
    assert plan.seconds == 75 * 10 + 23 * 2
    # the bracket keras-tuner runs first: 9 trials of 1 epoch, 3 promoted to 3, 1 to 9
    assert plan.first_bracket_trials == 13
    assert plan.first_bracket_seconds == (9 + 3 * 2 + 6) * 10 + 13 * 2
    assert hyperband_plan(27, 3, 3, Cost(1, 0)).brackets == 3  # rungs of 3, 9 and 27 epochs


def test_the_plan_line_names_the_first_rounds_keras_tuner_runs():
    # over 10 epochs with factor 3, keras-tuner's rungs are 10 and 4: no 3-epoch round runs
    plan = hyperband_plan(10, 3, 3, Cost(1, 0))
    assert (plan.min_epochs, plan.first_epochs, plan.brackets) == (3, 4, 2)
    assert "Hyperband over 10 epochs (first rounds 4), 2 brackets" in plan.describe(3600)


def test_the_plan_line_says_which_trials_are_planned_and_what_runs_as_the_budget_goes():
    plan = hyperband_plan(9, 3, 3, Cost(epoch_seconds=10, trial_seconds=0))
    # first bracket: 5 trials of 3 epochs, 2 promoted to 9 (6 more); then 3 trials of 9
    assert (plan.first_bracket_trials, plan.trials) == (7, 10)
    line = plan.describe(3600)
    assert "7 trials planned 4m30s (the first bracket; all 10: 9m00s, as far as" in line
    one_bracket = hyperband_plan(3, 3, 3, Cost(epoch_seconds=10, trial_seconds=0))
    assert "2 trials planned 1m00s" in one_bracket.describe(600)
    assert "first bracket" not in one_bracket.describe(600)


@pytest.mark.parametrize("budget", [600, 3600, 4 * 3600])
def test_a_budget_gets_the_longest_plan_whose_first_bracket_fits(budget):
    # keras-tuner runs first the bracket that promotes its best to max_epochs from the most
    # trials: the model the search hands over comes from it, later brackets run as time allows
    cost = Cost(epoch_seconds=20, trial_seconds=5)
    plan = choose_plan(budget, cost, factor=3)
    assert plan.first_bracket_seconds <= PLAN_SHARE * budget
    assert plan.min_epochs == PLANNED_MIN_EPOCHS
    longer = [hyperband_plan(m, 3, 3, cost) for m in range(plan.max_epochs + 1, 244)]
    assert all(p.first_bracket_seconds > PLAN_SHARE * budget for p in longer)
    assert f"Hyperband over {plan.max_epochs} epochs" in plan.describe(budget)
    whole = choose_plan(budget, cost, factor=3, whole=True)
    assert whole.seconds <= PLAN_SHARE * budget and whole.max_epochs <= plan.max_epochs


def test_a_budget_too_short_for_3_epoch_rounds_plans_1_epoch_rounds_and_says_what_would_do():
    cost = Cost(epoch_seconds=20, trial_seconds=5)
    plan = choose_plan(60, cost, factor=3, spent=4)
    assert plan.min_epochs == 1 and plan.seconds <= PLAN_SHARE * 60 - 4
    needed = plan.budget_for_planned_rounds  # the smallest budget with 3-epoch first rounds
    assert choose_plan(needed, cost, factor=3, spent=4).min_epochs == PLANNED_MIN_EPOCHS
    assert choose_plan(needed - 1, cost, factor=3, spent=4).min_epochs == 1
    assert f"rounds of 3 epochs need a budget of {format_duration(needed)}" in plan.describe(60)
    assert "rounds of" not in choose_plan(needed, cost, factor=3, spent=4).describe(needed)


def test_a_budget_too_short_for_one_trial_names_the_smallest_that_runs_one():
    with pytest.raises(ConfigError, match=r"cannot run one trial.*at least 1m22s") as error:
        choose_plan(30, Cost(epoch_seconds=55, trial_seconds=5), factor=3, spent=10)
    assert "--time-budget" in error.value.for_command_line()
    assert "--max-epochs" in error.value.for_command_line()


# The draws of the default space on 32x32 images (recipes first): 49M, 11M, 11M, then random
# draws of 2M to 555M multiply-adds; priced from three timed points, 10 000 images an epoch.
PRICING = Pricing(
    madds=(49_000_000, 11_000_000, 11_000_000, 2_000_000, 106_000_000, 555_000_000, 3_000_000),
    recipes=3,
    timed=((2_000_000, 0.0003), (49_000_000, 0.005), (555_000_000, 0.04)),
    images=10_000,
    trial_seconds=5,
)


def test_draws_are_priced_between_the_timed_points_and_a_plan_trains_the_recipes_first():
    assert PRICING.epoch_seconds(49_000_000) == pytest.approx(50)
    assert PRICING.epoch_seconds(11_000_000) == pytest.approx((0.0003 + 0.0047 * 9 / 47) * 1e4)
    cost = PRICING.cost()
    assert cost.per_epoch(1) == pytest.approx(50)  # the first trial is the first recipe
    random = [PRICING.epoch_seconds(m) for m in (2e6, 106e6, 555e6, 3e6)]
    assert cost.epoch_seconds == pytest.approx(sum(random) / 4)
    assert cost.per_epoch(10) == pytest.approx(
        (sum(cost.recipe_epoch_seconds) + 7 * sum(random) / 4) / 10
    )
    assert hyperband_plan(9, 3, 3, cost).seconds == pytest.approx(54 * cost.per_epoch(10) + 50)


def test_the_calibration_prices_the_draws_the_tuner_makes():
    # One seed per hyperparameter, as keras-tuner's oracle: one seed per draw put every draw on
    # one line through the space, its costs a handful of values, and priced a one-hour plan's
    # draws at a fifth of what the tuner's own draws took.

    import keras_tuner as kt

    from search_spaces import create_hypermodel, fixed_hyperparameters
    from search_spaces.scratch import RECIPES
    from tuning.engine.cost import multiply_adds
    from tuning.engine.plan import CALIBRATION_DRAWS, sampled_models

    hypermodel = create_hypermodel("scratch", epochs=3, classes=100, image_size=32)
    models, recipes = sampled_models(SearchConfig(method="scratch", seed=1), None, hypermodel)
    priced = [multiply_adds(model) for model in models[recipes:]]
    assert recipes == len(RECIPES) and len(priced) == CALIBRATION_DRAWS - recipes

    oracle = kt.oracles.RandomSearchOracle(kt.Objective("val_accuracy", "max"), seed=1)
    oracle.hyperparameters = kt.HyperParameters()
    hypermodel.build(oracle.hyperparameters)
    drawn = [oracle._random_values() for _ in range(len(priced))]
    assert priced == [multiply_adds(hypermodel.build(fixed_hyperparameters(v))) for v in drawn]


def test_a_cost_cap_prices_only_the_draws_under_it_and_never_refuses_a_recipe():
    assert PRICING.caps() == [None, 106_000_000, 49_000_000]
    capped = PRICING.cost(49_000_000)
    assert (
        capped.epoch_seconds
        < PRICING.cost(106_000_000).epoch_seconds
        < PRICING.cost().epoch_seconds
    )
    assert capped.recipe_epoch_seconds == PRICING.cost().recipe_epoch_seconds


def test_a_long_budget_plans_without_a_cap():
    plan, cap = choose_capped_plan(24 * 3600, PRICING, factor=3)
    assert cap is None and plan.max_epochs >= SEARCH_EPOCHS


@pytest.mark.parametrize("minutes, expected_cap", [(60, 106_000_000), (20, 49_000_000)])
def test_a_shorter_budget_caps_the_cost_at_the_largest_that_still_searches(minutes, expected_cap):
    budget = minutes * 60
    uncapped = choose_plan(budget, PRICING.cost(), 3, whole=True)
    assert uncapped.max_epochs < SEARCH_EPOCHS  # a whole iteration of the uncapped space: short
    plan, cap = choose_capped_plan(budget, PRICING, factor=3)
    assert (plan.min_epochs, cap) == (PLANNED_MIN_EPOCHS, expected_cap)
    assert plan.max_epochs >= SEARCH_EPOCHS


def test_a_budget_that_trains_only_the_recipes_needs_no_cap():
    plan, cap = choose_capped_plan(10 * 60, PRICING, factor=3)
    assert cap is None and plan.trials <= PRICING.recipes
    assert plan == choose_plan(10 * 60, PRICING.cost(), 3)


def test_a_budget_too_short_for_the_recipes_names_the_smallest_that_runs_one():
    with pytest.raises(ConfigError, match="cannot run one trial"):
        choose_capped_plan(20, PRICING, factor=3, spent=10)


def test_a_hyperband_search_with_a_budget_and_no_epochs_plans_unless_its_backbone_runs_uncached():
    assert SearchConfig(method="scratch", time_budget=600).plans_epochs
    assert SearchConfig(method="scratch", time_budget=600).max_epochs is None
    assert SearchConfig(method="scratch").max_epochs == 9
    assert SearchConfig(method="scratch", time_budget=600, max_epochs=5).max_epochs == 5
    assert SearchConfig(method="scratch", tuner="random", time_budget=600).max_epochs == 9
    assert SearchConfig(method="finetune", time_budget=600).plans_epochs
    assert SearchConfig(method="feature", time_budget=600).plans_epochs
    assert SearchConfig(method="feature", time_budget=600, cache=False).max_epochs == 9
    assert SearchConfig(method="feature", time_budget=600, preset="seed").max_epochs == 9


def test_a_finetune_plan_prices_the_head_warm_up_of_every_trial_a_bracket_starts():
    cost = Cost(epoch_seconds=10, trial_seconds=2, head=WarmUp(epoch_seconds=4, trial_seconds=1))
    plain = hyperband_plan(9, 1, 3, Cost(epoch_seconds=10, trial_seconds=2))
    plan = hyperband_plan(9, 1, 3, cost)
    # brackets start 9, 5 and 3 trials (the rest are promoted: no second warm-up), each
    # warming its head for a third of 9 epochs
    assert plan.seconds == plain.seconds + 17 * (3 * 4 + 1)
    assert plan.first_bracket_seconds == plain.first_bracket_seconds + 9 * (3 * 4 + 1)
    given = Cost(10, 2, (), WarmUp(epoch_seconds=4, head_epochs=1))
    assert hyperband_plan(9, 1, 3, given).seconds == plain.seconds + 17 * 4
    assert choose_plan(3600, cost, 3).max_epochs < choose_plan(3600, plain_cost(cost), 3).max_epochs


def plain_cost(cost: Cost) -> Cost:
    return Cost(cost.epoch_seconds, cost.trial_seconds, cost.recipe_epoch_seconds)


def test_a_cached_finetune_space_is_priced_on_its_cache_head_warm_up_included(tmp_path):
    from types import SimpleNamespace

    from search_spaces import create_hypermodel
    from tuning.engine.plan import measure_pricing

    cache = make_cache(tmp_path)
    hypermodel = create_hypermodel("finetune", weights="none", features=cache)
    data = SimpleNamespace(train=cache.splits["train"], validation=cache.splits["validation"])
    config = SearchConfig(method="finetune", batch_size=16, time_budget=600, weights="none")
    pricing = measure_pricing(config, data, None, hypermodel)
    # the cheapest and the costliest draw (1 and 3 blocks unfrozen) differ, both timed
    assert len(pricing.timed) == 2 and pricing.timed[0][0] < pricing.timed[1][0]
    assert all(seconds > 0 for _, seconds in pricing.timed)
    head = pricing.cost().warm_up
    assert head(9) > head(3) > 0  # a third of max_epochs, each a cached head epoch
    # the head alone on the top activations costs less than fine-tuning blocks under it
    warm_up_epoch = pricing.warm_up.epoch_seconds
    assert warm_up_epoch < pricing.epoch_seconds(pricing.timed[0][0])


# Slow: two and a half minutes of search. Not less: on a 2-core AVX2 CPU the calibration alone
# took 65 s of a 90 s budget in the slow suite, leaving no room for one trial.
@pytest.mark.slow
def test_a_planned_search_records_its_plan_trains_its_rounds_and_resumes_with_it(tmp_path, recwarn):
    from tuning import run_search

    config = SearchConfig(
        method="scratch", data="synthetic", train_size=500, time_budget=150, out=str(tmp_path)
    )
    lines = []
    run_search(config, log=lines.append)
    assert lines[0].startswith("budget 2m30s: Hyperband over ") and "calibrated in" in lines[0]
    assert not [w for w in recwarn if "shuffle" in str(w.message)]  # calibration prints nothing
    recorded = json.loads((config.run_dir / "search_config.json").read_text())
    epochs = [
        json.loads(p.read_text())["hyperparameters"]["values"]["tuner/epochs"]
        for p in config.run_dir.glob("trial_*/trial.json")
    ]
    assert epochs and min(epochs) >= recorded["min_epochs"]
    # the line names the first rounds that ran (keras-tuner's rung, at least min_epochs)
    planned = f"over {recorded['max_epochs']} epochs (first rounds {min(epochs)})"
    assert planned in lines[0], (lines[0], epochs)

    more = SearchConfig(**{**config.__dict__, "time_budget": 160})
    lines = []
    run_search(more, log=lines.append)  # resumed: the recorded plan, no new calibration
    assert not any(line.startswith("budget ") for line in lines)
    again = json.loads((config.run_dir / "search_config.json").read_text())
    assert (again["max_epochs"], again["min_epochs"]) == (
        recorded["max_epochs"],
        recorded["min_epochs"],
    )


@pytest.mark.slow
def test_a_planned_finetune_search_builds_its_cache_first_and_warms_up_as_planned(tmp_path):
    from tuning import run_search

    config = SearchConfig(
        method="finetune",
        data="synthetic",
        weights="none",
        train_size=500,
        time_budget=120,
        out=str(tmp_path),
    )
    lines = []
    run_search(config, log=lines.append)
    planned = [line for line in lines if line.startswith("budget 2m00s: Hyperband over ")]
    assert planned and "a new trial's head warm-up" in planned[0], lines
    assert lines.index(planned[0]) > next(
        i for i, line in enumerate(lines) if line.startswith("feature cache:")
    )
    recorded = json.loads((config.run_dir / "search_config.json").read_text())
    assert recorded["min_epochs"] in (1, PLANNED_MIN_EPOCHS)
    assert recorded["max_epochs"] >= recorded["min_epochs"]
    trials = [
        json.loads(p.read_text())["hyperparameters"]["values"]
        for p in config.run_dir.glob("trial_*/trial.json")
    ]
    assert trials and {t["head_epochs"] for t in trials} == {max(1, recorded["max_epochs"] // 3)}


def test_tensorflows_retracing_notice_is_dropped_and_its_other_warnings_kept():
    import logging

    from tuning.host.runtime import hide_retracing_notices, import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    hide_retracing_notices()  # the planner's models, then every trial's, retrace in a row
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        tf.get_logger().warning("5 out of the last 9 calls to f triggered tf.function retracing.")
        tf.get_logger().warning("something else")
    finally:
        tf.get_logger().removeHandler(handler)
    assert seen == ["something else"]
