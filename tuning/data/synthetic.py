"""A deterministic, learnable CIFAR-100-shaped stand-in for machines without the real data.

Classes carry the official CIFAR-100 names and fine-to-superclass mapping. Each of the 20
superclasses draws a palette (two background colours, one foreground colour) and a low-frequency
background texture. Each of its five fine classes draws a foreground shape whose outline is the
superclass's prototype bent by a class-specific field, an inner stripe pattern and a colour shift.
Every sample places its class's shape at a random offset, one of three scales and a random
horizontal flip over a fresh background, then adds a distractor blob, brightness jitter and pixel
noise. So class identity lives in shape, stripes and colour (which survive shifts, flips and noise),
fine classes of one superclass look alike, and a linear model on raw pixels does clearly worse than
a small CNN (numbers in the README).


Pure numpy and vectorised: 60,000 images take a few seconds. Changing anything here changes every
test and benchmark, so bump `VERSION` with it.
"""

from __future__ import annotations

import numpy as np

from tuning.data.labels import NUM_COARSE, NUM_FINE, label_names

VERSION = 1
IMAGE_SIZE = 32
TRAIN_PER_CLASS, TEST_PER_CLASS = 500, 100

_CANVAS = 64  # templates live on a padded canvas; a sample is a 32x32 crop of it
_SCALES = (0.55, 0.7, 0.85)  # shape radius as a fraction of the image
_NOISE_STD = 0.10
_CLASS_BEND = 0.45  # how far a fine class's outline departs from its superclass prototype
_COLOUR_SHIFT = 0.06
_COLOUR_JITTER = 0.12  # per-sample shift of every colour: colour alone must not name the class


def generate(split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generates one split of the stand-in.

    Args:
        split: "train" (500 images per class) or "test" (100 per class).
        seed: class appearance and sample draws; train and test share the classes of one seed.

    Returns:
        (images uint8 [N, 32, 32, 3], fine labels int64 [N], coarse labels int64 [N]).
    """
    if split not in ("train", "test"):
        raise ValueError(f"Expected `split` to be 'train' or 'test'. Received: {split!r}")
    classes = _draw_classes(np.random.default_rng([seed, VERSION]))
    per_class = TRAIN_PER_CLASS if split == "train" else TEST_PER_CLASS
    rng = np.random.default_rng([seed, VERSION, 1 if split == "train" else 2])
    fine = rng.permutation(np.repeat(np.arange(NUM_FINE), per_class))
    images = np.empty((fine.size, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for start in range(0, fine.size, 5000):
        chunk = fine[start : start + 5000]
        images[start : start + chunk.size] = _render(classes, chunk, rng)
    return images, fine.astype(np.int64), label_names().fine_to_coarse[fine].astype(np.int64)


def _grid(size: int, extent: float) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-extent, extent, size, dtype=np.float32)
    return np.meshgrid(axis, axis, indexing="ij")


def _waves(rng, count: int, waves: int, max_freq: float):
    return (
        rng.uniform(-max_freq, max_freq, (count, waves, 2)).astype(np.float32),
        rng.uniform(0, 2 * np.pi, (count, waves)).astype(np.float32),
        rng.normal(size=(count, waves)).astype(np.float32),
    )


def _field(freqs, phases, amps, y, x) -> np.ndarray:
    """Sum of cosines; freqs [C, W, 2], phases/amps [C, W], y/x [H, W] -> [C, H, W]."""
    arg = (freqs[:, :, 0, None, None] * y + freqs[:, :, 1, None, None] * x) * np.pi
    return (amps[..., None, None] * np.cos(arg + phases[..., None, None])).sum(1)


def _draw_classes(rng) -> dict:
    """Appearance of every class: shape templates per scale, colours, background waves."""
    coarse = label_names().fine_to_coarse
    y, x = _grid(_CANVAS, _CANVAS / IMAGE_SIZE)  # canvas units: the image spans [-1, 1]
    proto = _field(*_waves(rng, NUM_COARSE, 4, 1.5), y, x)[coarse]
    bend = _field(*_waves(rng, NUM_FINE, 4, 2.0), y, x)
    angle = rng.uniform(0, np.pi, (NUM_FINE, 1, 1))
    freq = rng.uniform(2, 6, (NUM_FINE, 1, 1))
    stripes = np.cos(freq * np.pi * (np.cos(angle) * x + np.sin(angle) * y))
    outline = (proto + _CLASS_BEND * bend) / 2.0
    templates = []
    for scale in _SCALES:
        radius2 = (x**2 + y**2) / scale**2
        alpha = 0.5 + 0.5 * np.tanh(5 * (outline + 1.0 - 1.6 * radius2))
        templates.append(alpha)
    palette = rng.uniform(0.1, 0.9, (NUM_COARSE, 3, 3)).astype(np.float32)
    fg = palette[coarse, 2] + rng.normal(0, _COLOUR_SHIFT, (NUM_FINE, 3)).astype(np.float32)
    return {
        "alpha": np.stack(templates, 1).astype(np.float32),  # [fine, scale, 64, 64]
        "stripes": (0.8 + 0.2 * stripes).astype(np.float32),  # [fine, 64, 64]
        "fg": np.clip(fg, 0, 1),
        "bg": palette[:, :2],  # [coarse, 2, 3]
        "bg_waves": _waves(rng, NUM_COARSE, 3, 1.2),
    }


def _render(classes: dict, fine: np.ndarray, rng) -> np.ndarray:
    n, size = fine.size, IMAGE_SIZE
    coarse = label_names().fine_to_coarse[fine]
    scale = rng.integers(0, len(_SCALES), n)
    top, left = rng.integers(6, 27, (2, n))  # shape centre moves by up to +-10 px
    rows = top[:, None] + np.arange(size)
    cols = left[:, None] + np.arange(size)
    flip = rng.random(n) < 0.5
    cols[flip] = cols[flip, ::-1]
    pick = (fine[:, None, None], rows[:, :, None], cols[:, None, :])
    alpha = classes["alpha"][fine, scale][
        np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]
    ][..., None]
    shade = classes["stripes"][pick][..., None]
    fg = classes["fg"][fine] + rng.normal(0, _COLOUR_JITTER, (n, 3)).astype(np.float32)
    foreground = fg[:, None, None, :] * shade

    freqs, phases, amps = classes["bg_waves"]
    y, x = _grid(size, 1.0)
    sample_phase = phases[coarse] + rng.uniform(0, 2 * np.pi, (n, 1)).astype(np.float32)
    texture = _field(freqs[coarse], sample_phase, amps[coarse], y, x)
    mix = (0.5 + 0.5 * np.tanh(0.75 * texture))[..., None]
    bg = classes["bg"][coarse] + rng.normal(0, _COLOUR_JITTER, (n, 2, 3)).astype(np.float32)
    background = bg[:, None, None, 0] * mix + bg[:, None, None, 1] * (1 - mix)

    image = background * (1 - alpha) + foreground * alpha
    image = _add_distractor(_add_distractor(image, rng, y, x), rng, y, x)
    image *= rng.uniform(0.75, 1.25, (n, 1, 1, 1)).astype(np.float32)
    image += rng.normal(0, _NOISE_STD, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _add_distractor(image, rng, y, x) -> np.ndarray:
    """A soft blob of a random colour at a random place: clutter that carries no label."""
    n = image.shape[0]
    centre = rng.uniform(-1, 1, (n, 2, 1, 1)).astype(np.float32)
    width = rng.uniform(0.1, 0.3, (n, 1, 1)).astype(np.float32)
    dist2 = (y - centre[:, 0]) ** 2 + (x - centre[:, 1]) ** 2
    alpha = (0.8 * np.exp(-dist2 / (2 * width**2)))[..., None]
    colour = rng.uniform(0, 1, (n, 1, 1, 3)).astype(np.float32)
    return image * (1 - alpha) + colour * alpha
