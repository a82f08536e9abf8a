"""A time budget plans the search: Hyperband's epochs chosen so that its first full-budget round
finishes inside the budget.

Left at a fixed `--max-epochs`, a short budget ends inside Hyperband's first bracket (its full-
budget round never runs) and a long one ends with the plan done and time unused. So a Hyperband
search with `--time-budget` and no `--max-epochs` (`SearchConfig.plans_epochs`) measures what an
epoch of its space costs here (`measure_pricing`: a few training steps of its cheapest and
costliest sampled models and of its costliest recipe, other draws priced between them by their
multiply-adds; a plan's first trials are the recipes, the rest priced as the mean draw; a backbone
method's models timed on its feature cache, built first, and a `finetune` trial's head warm-up
priced for each trial a bracket starts), then takes the largest
`max_epochs` whose first bracket, by keras-tuner's own arithmetic, fills at most PLAN_SHARE of
the budget. keras-tuner runs first the bracket with the most, shortest first rounds, and promotes
its best to `max_epochs`: the model the search hands over comes from it (both one-hour runs on
real CIFAR-100, benchmarks/README.md), so the plan spends the budget on training it longer rather
than on fitting the later brackets, which run as far as the budget goes. Its first rounds train
PLANNED_MIN_EPOCHS epochs where the budget allows it: on real CIFAR-100 a 1-epoch score hardly
ranks configurations (benchmarks/README.md, "Recipes on real photos"). The plan is recorded as
the search's `max_epochs` and `min_epochs`, so a resumed search goes on with the same plan.

The `scratch` space's costliest draws can cost a hundred times its recipes, and on a CPU one
epoch of them can take a short budget whole. So without `--max-madds` its plan also chooses a
cost cap: the largest under which a whole Hyperband iteration with rounds of PLANNED_MIN_EPOCHS
up to SEARCH_EPOCHS still fits, else the one that trains the most epochs; the recipes always fit
under it. The cap is recorded as the search's `max_madds`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass

from tuning.config import SearchConfig, head_epochs_for
from tuning.engine.budget import format_duration
from tuning.errors import ConfigError
from tuning.rundir.identity import recorded_config

PLAN_SHARE = 0.85  # of the budget a plan fills: trials' spread in cost takes the rest
PLANNED_MIN_EPOCHS = 3
SEARCH_EPOCHS = 9  # a plan reaching this, from rounds of PLANNED_MIN_EPOCHS, has 2 brackets
MAX_PLANNED_EPOCHS = 243
CALIBRATION_DRAWS = 16  # configurations sampled for the space's mean cost (3 timed)
WARM_STEPS = 2  # steps run before the timed ones (kernel choices, first allocations)
TIMED_STEPS = 4
TIMED_BATCH = 64  # at most: smaller batches cost a little more per image, so the plan errs short


@dataclass(frozen=True)
class WarmUp:
    """The head-only training a `finetune` trial Hyperband starts (not one it promotes) runs
    first: `head_epochs` (None: a third of `max_epochs`, as the search sets them) of
    `epoch_seconds` each, plus `trial_seconds` (a second `fit`). None for other spaces."""

    epoch_seconds: float = 0.0
    trial_seconds: float = 0.0
    head_epochs: int | None = None

    def seconds(self, max_epochs: int) -> float:
        """Seconds of a new trial's warm-up in a search over `max_epochs`."""
        if not self.epoch_seconds:
            return 0.0
        epochs = head_epochs_for(max_epochs, self.head_epochs)
        return epochs * self.epoch_seconds + self.trial_seconds


@dataclass(frozen=True)
class Cost:
    """What a trial of a space costs here: seconds per epoch (validation included) of an
    average random draw and of each recipe (the tuner's first draws), seconds per trial
    beside its epochs (building, tracing, checkpoints), and a new trial's head warm-up."""

    epoch_seconds: float
    trial_seconds: float
    recipe_epoch_seconds: tuple[float, ...] = ()
    head: WarmUp = WarmUp()

    def warm_up(self, max_epochs: int) -> float:
        return self.head.seconds(max_epochs)

    def per_epoch(self, trials: int) -> float:
        """An epoch's mean seconds over a plan of `trials`: the recipes first, then draws."""
        recipes = self.recipe_epoch_seconds[:trials]
        return (sum(recipes) + (trials - len(recipes)) * self.epoch_seconds) / max(trials, 1)


@dataclass(frozen=True)
class Pricing:
    """What the calibration measured: the sampled draws' multiply-adds per image (the space's
    recipes first), the timed draws' seconds per image (any other draw priced between them,
    linearly in multiply-adds), the images of an epoch (validation priced as a third:
    inference only) and the seconds per trial beside its epochs."""

    madds: tuple[int, ...]
    recipes: int
    timed: tuple[tuple[int, float], ...]  # (multiply-adds, seconds per image), ascending
    images: float
    trial_seconds: float
    warm_up: WarmUp = WarmUp()

    def epoch_seconds(self, madds: int) -> float:
        import numpy as np

        points, seconds = zip(*self.timed)
        return float(np.interp(madds, points, seconds)) * self.images

    def cost(self, cap: int | None = None) -> Cost:
        """A trial's cost when draws over `cap` multiply-adds are refused."""
        recipes = [self.epoch_seconds(m) for m in self.madds[: self.recipes]]
        draws = [m for m in self.madds[self.recipes :] if cap is None or m <= cap]
        random = [self.epoch_seconds(m) for m in draws] or recipes
        return Cost(sum(random) / len(random), self.trial_seconds, tuple(recipes), self.warm_up)

    def caps(self) -> list[int | None]:
        """The caps worth planning, largest first: none, then each costlier draw's multiply-
        adds down to the costliest recipe's (a cap never refuses a recipe)."""
        floor = max(self.madds[: self.recipes], default=min(self.madds))
        costlier = {m for m in self.madds if floor <= m < max(self.madds)}
        return [None, *sorted(costlier, reverse=True)]


@dataclass(frozen=True)
class Plan:
    max_epochs: int
    min_epochs: int
    brackets: int
    trials: int
    epochs: int  # epochs over all trials, promoted trials counting only the epochs they add
    seconds: float  # the whole iteration's
    # The epochs of the shortest first round keras-tuner runs: at least min_epochs, more where
    # its rungs (max_epochs divided by powers of the factor, rounded up) land above it.
    first_epochs: int
    # The bracket keras-tuner runs first (those shortest first rounds, then its best promoted
    # to max_epochs): what a plan fits in the budget.
    first_bracket_trials: int
    first_bracket_seconds: float
    # Set when the budget forced 1-epoch first rounds: the budget whose plan has first rounds
    # of PLANNED_MIN_EPOCHS, said on the plan's line since such a short search ranks poorly.
    budget_for_planned_rounds: float | None = None

    def describe(self, budget: float) -> str:
        line = (
            f"budget {format_duration(budget)}: Hyperband over {self.max_epochs} epochs "
            f"(first rounds {self.first_epochs}), {self.brackets} brackets, "
            f"{self.first_bracket_trials} trials planned "
            f"{format_duration(self.first_bracket_seconds)}"
        )
        if self.trials > self.first_bracket_trials:
            line += (
                f" (the first bracket; all {self.trials}: {format_duration(self.seconds)}, "
                f"as far as the budget goes)"
            )
        if self.budget_for_planned_rounds is not None:
            line += (
                f"; 1-epoch rounds rank configurations poorly: rounds of {PLANNED_MIN_EPOCHS} "
                f"epochs need a budget of {format_duration(self.budget_for_planned_rounds)} "
                f"here, or fewer images (--train-size)"
            )
        return line


Round = tuple[int, int, int]  # trials, first epoch, last epoch


def hyperband_brackets(max_epochs: int, min_epochs: int, factor: int) -> list[list[Round]]:
    """The rounds of each bracket of one Hyperband iteration, by keras-tuner's own arithmetic,
    the brackets in the order it runs them."""
    import keras_tuner as kt

    from tuning.host.internals import bracket_rounds, set_min_epochs

    oracle = kt.oracles.HyperbandOracle(
        kt.Objective("val_accuracy", "max"), max_epochs=max_epochs, factor=factor
    )
    set_min_epochs(oracle, min_epochs)
    return bracket_rounds(oracle)


def rounds_work(rounds: list[Round]) -> tuple[int, int]:
    """(trials, epochs) of `rounds`; a promoted trial counts only the epochs it adds."""
    trials = sum(size for size, _, _ in rounds)
    return trials, sum(size * (last - first) for size, first, last in rounds)


def hyperband_counts(max_epochs: int, min_epochs: int, factor: int) -> tuple[int, int]:
    """(trials, epochs) of one Hyperband iteration."""
    return rounds_work(sum(hyperband_brackets(max_epochs, min_epochs, factor), []))


def hyperband_plan(max_epochs: int, min_epochs: int, factor: int, cost: Cost) -> Plan:
    """One Hyperband iteration's brackets, trials, epochs and expected seconds, whole and of
    its first bracket."""
    brackets = hyperband_brackets(max_epochs, min_epochs, factor)
    trials, epochs = rounds_work(sum(brackets, []))
    first_trials, first_epochs = rounds_work(brackets[0])
    started = [rounds[0][0] for rounds in brackets]  # trials a bracket starts, not promotes

    def seconds(trials: int, epochs: int, new: int) -> float:
        warm_up = new * cost.warm_up(max_epochs)
        return epochs * cost.per_epoch(trials) + trials * cost.trial_seconds + warm_up

    return Plan(
        max_epochs,
        min_epochs,
        len(brackets),
        trials,
        epochs,
        seconds(trials, epochs, sum(started)),
        min(rounds[0][2] for rounds in brackets),
        first_trials,
        seconds(first_trials, first_epochs, started[0]),
    )


def choose_plan(
    budget: float, cost: Cost, factor: int, spent: float = 0.0, whole: bool = False
) -> Plan:
    """The plan with the most epochs whose first bracket (`whole`: whole iteration) fits
    PLAN_SHARE of `budget` less the `spent` seconds (calibrating), first rounds of
    PLANNED_MIN_EPOCHS if any such plan fits, else of 1. Raises ConfigError naming the smallest
    budget that runs one trial when not even that fits."""
    room = PLAN_SHARE * budget - spent

    def planned(plan: Plan) -> float:
        return plan.seconds if whole else plan.first_bracket_seconds

    for min_epochs in dict.fromkeys((PLANNED_MIN_EPOCHS, 1)):
        fitting = [
            plan
            for max_epochs in range(min_epochs, MAX_PLANNED_EPOCHS + 1)
            if planned(plan := hyperband_plan(max_epochs, min_epochs, factor, cost)) <= room
        ]
        if fitting and min_epochs < PLANNED_MIN_EPOCHS:
            smallest = hyperband_plan(PLANNED_MIN_EPOCHS, PLANNED_MIN_EPOCHS, factor, cost)
            needed = math.ceil((planned(smallest) + spent) / PLAN_SHARE)
            return dataclasses.replace(fitting[-1], budget_for_planned_rounds=needed)
        if fitting:
            return fitting[-1]
    one_trial = cost.per_epoch(1) + cost.trial_seconds + cost.warm_up(1)
    raise ConfigError(
        f"{{time_budget}} {format_duration(budget)} cannot run one trial here: one epoch of "
        f"this space takes about {format_duration(one_trial)}, after {spent:.0f} s measuring it; "
        f"give at least {format_duration((one_trial + spent) / PLAN_SHARE)}, or set {{max_epochs}}"
    )


def choose_capped_plan(
    budget: float, pricing: Pricing, factor: int, spent: float = 0.0
) -> tuple[Plan, int | None]:
    """(plan, cost cap) for `budget`: the largest cap under which a whole iteration has rounds
    of PLANNED_MIN_EPOCHS up to SEARCH_EPOCHS or more, else the one whose whole iteration trains
    the most epochs; then under that cap, the plan whose first bracket fits. Raises
    choose_plan's ConfigError when not even the recipes run one trial."""
    wholes = []
    for cap in pricing.caps():
        with contextlib.suppress(ConfigError):
            wholes.append((choose_plan(budget, pricing.cost(cap), factor, spent, whole=True), cap))
    searching = [
        cap
        for plan, cap in wholes
        if plan.min_epochs == PLANNED_MIN_EPOCHS and plan.max_epochs >= SEARCH_EPOCHS
    ]
    if searching:
        cap = searching[0]
    elif wholes:
        cap = max(wholes, key=lambda planned: (planned[0].min_epochs, planned[0].max_epochs))[1]
    else:  # not even a whole iteration under the cheapest cap: its first bracket may still fit
        cap = pricing.caps()[-1]
    return choose_plan(budget, pricing.cost(cap), factor, spent), cap


def recorded_plan(config: SearchConfig) -> SearchConfig:
    """A planning `config` with the epochs (and, unless given, the cost cap) its run
    directory already recorded: a resumed search goes on with the plan it started with (any
    other difference is the identity check's to refuse)."""
    recorded = recorded_config(config) if config.plans_epochs else None
    if recorded is None or recorded.max_epochs is None:
        return config
    return dataclasses.replace(
        config,
        max_epochs=recorded.max_epochs,
        min_epochs=recorded.min_epochs,
        max_madds=config.max_madds if config.max_madds is not None else recorded.max_madds,
    )


def plan_epochs(
    config: SearchConfig, data, space, hypermodel, log=None, spent: float = 0.0
) -> SearchConfig:
    """`config` with `max_epochs`, `min_epochs` and (unless given) `max_madds` planned from
    its time budget on `data`, `spent` seconds of it gone before planning began.

    `hypermodel` builds the space's models as the search's does (on its prepared feature
    cache, for a backbone method); only its models' costs matter, not its epochs."""
    from tuning.engine.cost import format_madds

    plan, cap, pricing, calibration = measured_plan(config, data, space, hypermodel, spent)
    if log:
        planned_cap = config.max_madds is None and cap is not None
        refused = f", models over {format_madds(cap)} multiply-adds refused" if planned_cap else ""
        cost = pricing.cost(cap)
        warm_up = cost.warm_up(plan.max_epochs)
        head = f", a new trial's head warm-up {_seconds(warm_up)}" if warm_up else ""
        log(
            f"{plan.describe(config.time_budget)}{refused} (calibrated in {calibration:.0f} s: "
            f"an epoch {_seconds(cost.per_epoch(plan.first_bracket_trials))} on "
            f"average over its first bracket's trials{head}, {len(data.train)} images)"
        )
    return dataclasses.replace(
        config, max_epochs=plan.max_epochs, min_epochs=plan.min_epochs, max_madds=cap
    )


def _seconds(seconds: float) -> str:
    return f"~{seconds:.0f} s" if seconds >= 1 else "under 1 s"


def measured_plan(
    config: SearchConfig, data, space, hypermodel, spent: float = 0.0
) -> tuple[Plan, int | None, Pricing, float]:
    """(the plan, the cost cap: `--max-madds` or planned, the pricing, the seconds measuring it)
    for what is left of `config`'s time budget on this machine after `spent` seconds and the
    measuring. Only `scratch` plans a cap: its draws' costs span a factor of hundreds, a
    backbone method's differ only in the unfrozen blocks and the head."""
    start = time.perf_counter()
    pricing = measure_pricing(config, data, space, hypermodel)
    calibration = time.perf_counter() - start
    gone = spent + calibration
    if config.max_madds is None and config.method == "scratch":
        plan, cap = choose_capped_plan(config.time_budget, pricing, config.factor, gone)
        return plan, cap, pricing, calibration
    plan = choose_plan(config.time_budget, pricing.cost(), config.factor, gone)
    return plan, config.max_madds, pricing, calibration


def measure_pricing(config: SearchConfig, data, space, hypermodel) -> Pricing:
    """Times a few training steps of the cheapest and the costliest of CALIBRATION_DRAWS
    configurations sampled from the space (recipes first, `--max-madds` respected), and of its
    costliest recipe: the points through which every draw is priced. A `finetune` head's
    warm-up on the cache is timed too (the costliest draw's head)."""
    from tuning.engine.cost import multiply_adds
    from tuning.host.runtime import hide_retracing_notices

    models, recipes = sampled_models(config, space, hypermodel)
    madds = [multiply_adds(m) for m in models]
    if config.max_madds is not None:
        kept = [i for i, m in enumerate(madds) if m <= config.max_madds] or [0]
        recipes = sum(i < recipes for i in kept)
        models, madds = [models[i] for i in kept], [madds[i] for i in kept]
    picked = {madds.index(min(madds)), madds.index(max(madds))}
    if recipes:  # a short plan's trials are the recipes: their cost is measured, not read off
        picked.add(max(range(recipes), key=madds.__getitem__))
    hide_retracing_notices()
    batches = step_batches(config, data, hypermodel)
    timed = {i: time_steps(models[i], *batches(models[i])) for i in sorted(picked)}
    return Pricing(
        madds=tuple(madds),
        recipes=recipes,
        timed=tuple(sorted((madds[i], per_image) for i, (per_image, _) in timed.items())),
        images=len(data.train) + len(data.validation) / 3,
        trial_seconds=sum(trial for _, trial in timed.values()) / len(timed),
        warm_up=warm_up_cost(config, data, hypermodel, models[max(picked, key=madds.__getitem__)]),
    )


def sampled_models(config: SearchConfig, space, hypermodel) -> tuple[list, int]:
    """(compiled models of the space's recipes, then of random draws, seeded by `config.seed`,
    built by `hypermodel`; how many are recipes)."""
    import copy

    import keras_tuner as kt

    from search_spaces import fixed_hyperparameters
    from tuning.engine.recipes import recipe_values
    from tuning.host.internals import random_draws

    declared = copy.deepcopy(space) if space is not None else kt.HyperParameters()
    hypermodel.build(declared)  # declares every hyperparameter the file did not
    draws = [recipe_values(declared.space, r) for r in getattr(hypermodel, "recipes", {}).values()]
    draws = [d for d in draws if d is not None]
    recipes = len(draws)
    # The tuner's recipes do not use up its seed: its random draws are these.
    draws += random_draws(declared, config.seed, CALIBRATION_DRAWS - recipes)
    return [hypermodel.build(fixed_hyperparameters(values)) for values in draws], recipes


def step_batches(config: SearchConfig, data, hypermodel):
    """model -> `time_steps`'s arguments after the model (its batches, a validation batch,
    their size): images, or on a feature cache the activations at the layer its input is named
    after, batched as in `fit`."""
    from tuning.data.pipeline import to_dataset

    steps = WARM_STEPS + TIMED_STEPS
    features = getattr(hypermodel, "features", None)
    if features is None:
        batch = min(config.batch_size, TIMED_BATCH)
        images = to_dataset(data.train.subset(slice(0, batch * steps)), batch)
        validation = to_dataset(data.validation.subset(slice(0, batch)), batch)
        return lambda model: (images, validation, batch)

    def cached(model, layer=None):
        layer = layer or model.layers[0].name
        train = features.dataset(layer, "train").take(steps)
        return train, features.dataset(layer, "validation").take(1), config.batch_size

    return cached


def warm_up_cost(config: SearchConfig, data, hypermodel, model) -> WarmUp:
    """The head warm-up a new trial of `hypermodel` runs first, priced from `model`'s head on
    the cache (no validation: the warm-up has none); nothing for a space without one."""
    warm_up = getattr(hypermodel, "cached_warm_up", None)
    if warm_up is None or getattr(hypermodel, "features", None) is None:
        return WarmUp()
    head, layer = warm_up(model, 1e-3)
    train, _, batch = step_batches(config, data, hypermodel)(head, layer)
    per_image, trial = time_steps(head, train, None, batch)
    return WarmUp(per_image * len(data.train), trial, config.head_epochs)


def time_steps(model, batches, validation, batch_size: int) -> tuple[float, float]:
    """(seconds per training image, seconds of a first `fit` beyond its steps: tracing the
    training and the validation step, as every trial does), fitting `batches` for one epoch.

    A step is timed between batch ends inside one `fit`, after WARM_STEPS: a `fit`'s own set-up
    and the first steps' one-off work would otherwise be priced as every image's cost
    (benchmarks/README.md, "Your own pictures: CIFAR-10 as class folders")."""
    import keras
    import numpy as np

    ends = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda *_, **__: ends.append(time.perf_counter())
    )
    start = time.perf_counter()
    model.fit(
        batches, validation_data=validation, epochs=1, verbose=0, shuffle=False, callbacks=[clock]
    )
    whole = time.perf_counter() - start
    steps = np.diff([start, *ends])
    per_step = float(np.median(steps[WARM_STEPS:] if len(steps) > WARM_STEPS else steps))
    return per_step / batch_size, max(whole - per_step * len(steps), 0.0)
