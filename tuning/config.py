"""One typed `SearchConfig`, built from the command line or in code, validated once."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from tuning.errors import ConfigError

METHODS = ("scratch", "feature", "finetune")  # search_spaces.METHODS, without importing Keras
LOOPBACK = "127.0.0.1"  # the host of a --chief or --worker address given as ":PORT" or "PORT"
TUNERS = ("hyperband", "random", "bayesian")
PRESETS = ("seed",)
DISTRIBUTIONS = ("none", "mirrored")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")  # tuning.host.precision
BACKBONES = ("vgg16", "resnet50", "efficientnetb0", "mobilenetv2")  # search_spaces.BACKBONES
# The widths (Keras's `alpha`) a backbone comes in, where it has several (its `widths`).
WIDTHS = {"mobilenetv2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}
DEFAULT_MAX_EPOCHS = 9
MIN_INPUT_SIZE = 32  # the backbones' smallest input side


def head_epochs_for(max_epochs: int, head_epochs: int | None = None) -> int:
    """A fine-tuning trial's head-only epochs: `head_epochs` if given, else a third of
    `max_epochs` (at least 1)."""
    return head_epochs if head_epochs is not None else max(1, max_epochs // 3)


@dataclass(frozen=True)
class SearchConfig:
    """Everything a search needs; written beside its results as `search_config.json`.

    Attributes:
        method: which search space: "scratch", "feature" or "finetune".
        tuner: "hyperband" (default), "random" or "bayesian".
        max_epochs: Hyperband's largest budget; the epochs of every trial for the other tuners.
            None: 9, or planned from `time_budget` for a Hyperband search (`plans_epochs`,
            `tuning.engine.plan`), which then also sets `min_epochs`.
        min_epochs: Hyperband's smallest budget, its first rounds' epochs.
        factor: Hyperband's reduction factor (>= 2).
        hyperband_iterations: how many times Hyperband runs its full set of brackets.
        max_trials: trials for the random and Bayesian tuners.
        seed: seeds the split, the tuner and Keras.
        batch_size: images per training step.
        data: "keras", "synthetic", a path to CIFAR-100 or an `.npz`, or a folder of class
            folders (`tuning.data.folders`).
        image_size: the side a folder's pictures are resized to; None: their most common side.
        test_size: images a folder without a `test/` folder holds out as its test split (read
            only by reports); None: a sixth.
        skip_bad_images: leave out (and count) a folder's files that cannot be decoded.
        backbone: the ImageNet network of "feature" and "finetune": "vgg16" (default),
            "resnet50", "efficientnetb0" or "mobilenetv2".
        alpha: the backbone's width, Keras's `alpha` (MobileNetV2: 0.35, 0.5, 0.75, 1.0, 1.3 or
            1.4); 1.0 for the others.
        weights: the backbone's weights: "imagenet", "none" or a path to a no-top weights file
            (of the same width).
        train_size: keep this many training images (stratified); None keeps all.
        val_size: validation images carved from the train set; None: 5,000 (less for small sets).
        input_size: side of the images the backbone methods see; None: the pictures' own side
            (32 at the least, the backbones' smallest).
        head_epochs: fine-tuning trains the head alone for this many epochs before unfreezing.
        cache: backbone methods train on activations cached once (`tuning.data.features`)
            rather than running the frozen layers in every step.
        space: a TOML file overriding parts of the method's search space (`tuning.space`).
        recipes: the tuner's first draws are the space's known recipes that fit it
            (`tuning.engine.recipes`), then its own.
        patience: early-stopping patience in epochs.
        max_madds: refuse (as a FAILED trial) any model costing more multiply-adds per image;
            None: no cap (`tuning.engine.cost`).
        time_budget: seconds of search, over every run that resumes it; then no trial starts
            and the running one stops at its next epoch end (`tuning.engine.budget`). None: no
            limit.
        chief: "HOST:PORT" to serve this search to workers instead of running trials here.
        worker: "HOST:PORT" of a chief whose trials this process runs.
        worker_id: this worker's name (default: worker-<host>-<pid>).
        worker_timeout: seconds without a worker's heartbeat before the chief re-queues its trial.
        distribution: "mirrored" trains each trial with tf.distribute.MirroredStrategy.
        precision: "float32", a Keras mixed-precision policy ("mixed_bfloat16",
            "mixed_float16"), or "auto": the fast one of this machine (`tuning.host.precision`).
        force_unlock: remove a lock another host's search left in the run directory
            (`tuning.rundir.lock`), once that search is known to be gone.
        preset: "seed" trains the seed write-up's fixed model instead of searching.
        out: the run directory; results go to `out/<method>` (`out/<method>-seed` for the preset).
        overwrite: start afresh instead of resuming what `out/<method>` holds.
        verbose: 0 quiet, 1 one line per trial, 2 Keras epoch bars too.
    """

    method: str
    tuner: str = "hyperband"
    max_epochs: int | None = None
    min_epochs: int = 1
    factor: int = 3
    hyperband_iterations: int = 1
    max_trials: int = 10
    seed: int = 1
    batch_size: int = 128
    data: str = "keras"
    backbone: str = "vgg16"
    alpha: float = 1.0
    weights: str = "imagenet"
    train_size: int | None = None
    val_size: int | None = None
    image_size: int | None = None
    test_size: int | None = None
    skip_bad_images: bool = False
    input_size: int | None = None
    head_epochs: int | None = None
    cache: bool = True
    chief: str | None = None
    worker: str | None = None
    worker_id: str | None = None
    worker_timeout: int = 60
    distribution: str = "none"
    precision: str = "auto"
    space: str | None = None
    recipes: bool = True
    patience: int = 3
    max_madds: int | None = None
    time_budget: float | None = None
    force_unlock: bool = False
    preset: str | None = None
    out: str = "runs"
    overwrite: bool = False
    verbose: int = 1

    def __post_init__(self):
        if self.max_epochs is None and not self.plans_epochs:
            object.__setattr__(self, "max_epochs", DEFAULT_MAX_EPOCHS)
        _one_of("method", self.method, METHODS)
        _one_of("tuner", self.tuner, TUNERS)
        _one_of("precision", self.precision, PRECISIONS)
        if self.preset is not None:
            _one_of("preset", self.preset, PRESETS)
        for name in (
            "min_epochs",
            "hyperband_iterations",
            "max_trials",
            "batch_size",
            "patience",
        ):
            _positive(name, getattr(self, name))
        for name in (
            "max_epochs",
            "train_size",
            "val_size",
            "image_size",
            "test_size",
            "head_epochs",
            "max_madds",
        ):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        _positive("seed", self.seed, why="keras-tuner reads 0 as no seed and draws a random one")
        if self.max_epochs is not None and self.max_epochs < self.min_epochs:
            raise ConfigError(
                f"{{max_epochs}} {self.max_epochs} is less than {{min_epochs}} {self.min_epochs}"
            )
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"{{time_budget}} must be more than 0. Received: {self.time_budget}")
        if not isinstance(self.factor, int) or self.factor < 2:
            raise ConfigError(f"{{factor}} must be an integer >= 2. Received: {self.factor!r}")
        if self.input_size is not None and self.input_size < MIN_INPUT_SIZE:
            raise ConfigError(
                f"{{input_size}} must be at least {MIN_INPUT_SIZE} (the backbones' smallest). "
                f"Received: {self.input_size}"
            )
        self._check_roles()
        _one_of("backbone", self.backbone, BACKBONES)
        widths = WIDTHS.get(self.backbone, (1.0,))
        if self.alpha not in widths:
            has = f"comes in widths {list(widths)}" if len(widths) > 1 else "has one width, 1.0"
            raise ConfigError(f"{{alpha}} {self.alpha!r}: {{backbone}} {self.backbone} {has}")
        if self.method == "scratch" and self.backbone != "vgg16":
            raise ConfigError(
                "{backbone} is for {method} feature and finetune; scratch trains its own CNN"
            )
        if self.space is not None and not Path(self.space).is_file():
            raise ConfigError(
                f"{{space}} {self.space}: no such file (a TOML file; print a "
                f"method's default one with: python -m tuning space --method M)"
            )
        if self.space is not None and self.preset is not None:
            raise ConfigError(
                "{space} and {preset} exclude each other: the preset fixes every hyperparameter"
            )
        if self.weights not in ("imagenet", "none") and not Path(self.weights).is_file():
            raise ConfigError(
                f"{{weights}} {self.weights}: no such file; expected 'imagenet', "
                f"'none' or a no-top weights file of {{backbone}} {self.backbone} (.h5)"
            )

    def _check_roles(self) -> None:
        _one_of("distribution", self.distribution, DISTRIBUTIONS)
        _positive("worker_timeout", self.worker_timeout)
        if self.time_budget is not None and (self.chief or self.worker):
            raise ConfigError(
                "{time_budget} is for a search that runs its trials in one "
                "process, not with {chief} or {worker}"
            )
        if self.chief and self.worker:
            raise ConfigError(
                "{chief} and {worker} exclude each other: a process serves the "
                "search or runs its trials"
            )
        if self.chief:
            parse_address(self.chief, "chief")
        if self.worker:
            parse_address(self.worker, "worker")
            if self.overwrite:
                raise ConfigError("{overwrite} belongs to the chief: a worker joins its search")

    @property
    def run_dir(self) -> Path:
        """Where this search's trials, exports and TensorBoard logs go."""
        return Path(self.out) / run_dir_name(self.method, self.preset)

    @property
    def plans_epochs(self) -> bool:
        """Whether the search plans `max_epochs` (and `min_epochs`) from its time budget: a
        Hyperband search with `time_budget` and no `max_epochs` given, of `scratch` or of a
        backbone method on its feature cache (without one, a trial's cost is the backbone's)."""
        return (
            self.max_epochs is None
            and self.time_budget is not None
            and (self.method == "scratch" or self.cache)
            and self.tuner == "hyperband"
            and self.preset is None
        )

    @property
    def fine_tune_head_epochs(self) -> int:
        """Head-only epochs of a fine-tuning trial: as given, else a third of the budget (>= 1)."""
        return head_epochs_for(self.max_epochs or DEFAULT_MAX_EPOCHS, self.head_epochs)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        record = {k: v for k, v in json.loads(text).items() if k in fields}
        record.setdefault("precision", "float32")  # what searches recorded before it trained in
        if "image_size" not in record and record.get("input_size") == 32:
            record["input_size"] = None  # recorded before any data but CIFAR's 32x32: the same
        return cls(**record)

    def input_side(self, image_side: int) -> int:
        """The side the backbone sees for pictures of `image_side`."""
        return self.input_size or max(image_side, MIN_INPUT_SIZE)


def run_dir_name(method: str, preset: str | None = None) -> str:
    """A run directory's name: the method, and the preset after a dash ("scratch-seed")."""
    return method if preset is None else f"{method}-{preset}"


def method_of(run_dir_name: str) -> str | None:
    """The method a run directory's name says, or None for a folder that is not a run's."""
    method = run_dir_name.split("-")[0]
    return method if method in METHODS else None


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{{{name}}} must be one of {list(allowed)}. Received: {value!r}")


def _positive(name: str, value, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        because = f" ({why})" if why else ""
        raise ConfigError(f"{{{name}}} must be a positive integer{because}. Received: {value!r}")


def parse_address(text: str, field: str) -> tuple[str, int]:
    """ "HOST:PORT", ":PORT" or "PORT" -> (host, port); the host defaults to 127.0.0.1.

    `field` is the `SearchConfig` field the address came from ("chief" or "worker").
    """
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536:
        raise ConfigError(
            f"{{{field}}} expects HOST:PORT (e.g. 127.0.0.1:8470). Received: {text!r}"
        )
    return host.strip("[]") or LOOPBACK, number
