"""The three approaches, each a `keras_tuner.HyperModel` with its search space in its docstring."""

from __future__ import annotations

import keras_tuner as kt

from search_spaces import feature_extraction, finetune, scratch
from search_spaces.backbones import BACKBONES, BackboneError, load_base
from search_spaces.blocks import dtype_policy, float32_copy

SEED_PRESETS = {  # the methods, in the order users meet them, and the seed write-up's models
    "scratch": scratch.SEED_PRESET,
    "feature": feature_extraction.SEED_PRESET,
    "finetune": finetune.SEED_PRESET,
}
METHODS = tuple(SEED_PRESETS)


def fixed_hyperparameters(values: dict) -> kt.HyperParameters:
    """HyperParameters with every value fixed: builds exactly that configuration."""
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def create_hypermodel(
    method: str,
    weights: str = "imagenet",
    input_size: int = 32,
    head_epochs: int = 1,
    features=None,
    backbone: str = "vgg16",
    epochs: int = 9,
    alpha: float = 1.0,
    classes: int = 100,
    image_size: int = 32,
) -> kt.HyperModel:
    """The HyperModel of `method` ("scratch", "feature" or "finetune").

    `features` (a feature cache, see `blocks.BackboneHyperModel`) makes the backbone methods
    train on cached activations; "scratch" has no backbone and ignores it, `backbone` and `alpha`
    (the backbone's width).
    `epochs` is the span of a "scratch" learning-rate schedule (the search's `--max-epochs`,
    default 9 as there). Models take square images of side `image_size` and end in a softmax
    over `classes`.
    """
    shape = {"classes": classes, "image_size": image_size}
    if method == "scratch":
        return scratch.ScratchCNN(epochs, name="scratch", **shape)
    if method == "feature":
        return feature_extraction.FeatureExtraction(
            weights, input_size, features, backbone, alpha, name="feature", **shape
        )
    if method == "finetune":
        return finetune.FineTune(
            weights, input_size, head_epochs, features, backbone, alpha, name="finetune", **shape
        )
    raise ValueError(f"Expected `method` to be one of {list(METHODS)}. Received: {method!r}")


__all__ = [
    "BACKBONES",
    "METHODS",
    "BackboneError",
    "SEED_PRESETS",
    "dtype_policy",
    "float32_copy",
    "create_hypermodel",
    "fixed_hyperparameters",
    "load_base",
]
