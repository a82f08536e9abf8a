"""What a model costs per image, and the cap that keeps one trial from taking a whole search.

The scratch space spans a factor of about 350 in compute: 2 blocks of one 16-filter convolution
against 5 blocks of three convolutions from 64 filters (about 0.6 G multiply-adds per 32x32 image).
On a small budget one trial from the costly corner would take longer than all the others
together, so `--max-madds` refuses a model whose training step costs more, before it trains: the
trial ends FAILED with the reason in `trials.csv`, in about the time it takes to build the model.
Such refusals (`refused_for_cost`) do not count toward keras-tuner's limit on consecutive failed
trials, and Hyperband draws another configuration in place of each (`tuning.engine.tuner`): they
are the space's shape, not a fault.
"""

from __future__ import annotations

import math
import re

MADDS_CAPPED = "multiply-adds per image"  # in the reason of every refused trial


def refused_for_cost(trial) -> bool:
    """Whether keras-tuner's `trial` ended FAILED because `check_cost` refused its model."""
    return trial.status == "FAILED" and MADDS_CAPPED in (trial.message or "")


def multiply_adds(model) -> int:
    """Multiply-adds of one image through `model`'s convolution and dense layers (nested models
    included): what its training steps scale with. Other layers cost little beside them."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model (a backbone, a head)
            total += multiply_adds(layer)
        elif isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            total += _conv_madds(layer)
        elif isinstance(layer, layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return total


def _conv_madds(layer) -> int:
    """Output positions x kernel size: `kernel` is (h, w, in / groups, out) for Conv2D and
    (h, w, in, multiplier) for DepthwiseConv2D, so its size is the work per position either way."""
    positions = math.prod(int(d) for d in layer.output.shape[1:3])
    return positions * math.prod(int(d) for d in layer.kernel.shape)


def check_cost(model, max_madds: int | None) -> None:
    """Raises keras-tuner's FailedTrialError if `model` costs more than `max_madds` per image."""
    if max_madds is None:
        return
    cost = multiply_adds(model)
    if cost > max_madds:
        import keras_tuner as kt

        raise kt.errors.FailedTrialError(
            f"{format_madds(cost)} {MADDS_CAPPED}, over --max-madds {format_madds(max_madds)}"
        )


def parse_madds(text: str) -> int:
    """'60M', '1.5G', '800k' or a plain integer -> multiply-adds. Raises ValueError."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*", str(text))
    if not match:
        raise ValueError(
            f"expected a number with an optional k, M or G (e.g. 60M). Received: {text!r}"
        )
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()]
    value = int(float(match.group(1)) * scale)
    if value <= 0:
        raise ValueError(f"expected a positive number. Received: {text!r}")
    return value


def format_madds(value: int) -> str:
    for scale, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return str(value)
