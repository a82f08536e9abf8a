"""Run a saved model on pictures: the top classes of each, by name, with confidence.

The names are those of the data the model learnt, saved beside it (`class_names.json`) by every
model this package writes; a model without them is named by CIFAR-100's classes when it has
100 outputs, else by number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuning.data.folders import IMAGE_SUFFIXES
from tuning.errors import UsageError
from tuning.rundir import CLASS_NAMES_FILE


@dataclass(frozen=True)
class Prediction:
    """One picture's `top` most probable classes, best first."""

    path: str
    names: tuple[str, ...]
    confidences: tuple[float, ...]

    def to_dict(self) -> dict:
        return {
            "image": self.path,
            "top": [
                {"name": n, "confidence": round(c, 6)} for n, c in zip(self.names, self.confidences)
            ],
        }


def image_paths(paths: list[str]) -> list[Path]:
    """The pictures named, with the pictures directly in any folder among them (sorted by
    name)."""
    found = []
    for given in map(Path, paths):
        if given.is_dir():
            inside = sorted(p for p in given.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                kinds = ", ".join(IMAGE_SUFFIXES)
                raise UsageError(f"{given}: no pictures ({kinds}) in this folder")
            found += inside
        elif given.is_file():
            found.append(given)
        else:
            raise UsageError(f"{given}: no such picture or folder")
    return found


def read_image(path: Path, side: int = 32) -> np.ndarray:
    """A picture as side x side RGB, 0-255 float32 (any size: box-averaged down, bicubic up)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            down = image.width > side or image.height > side
            resample = Image.Resampling.BOX if down else Image.Resampling.BICUBIC
            return np.asarray(image.resize((side, side), resample), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UsageError(f"{path}: not a readable PNG or JPEG picture ({error})") from None


def load_trained_model(path: str):
    """A saved `.keras` model, loaded with `safe_mode=True` (a stranger's file runs no code)."""
    import keras

    import search_spaces.backbones  # noqa: F401  (registers our layers for deserialization)

    if not Path(path).is_file():
        raise UsageError(
            f"--model {path}: no such file (a .keras model, e.g. runs/scratch/best_model.keras)"
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad or unsafe files
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise UsageError(
            f"--model {path}: not a model this package can load safely "
            f"({type(error).__name__}: {detail})"
        ) from None
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3 or len(model.output_shape) != 2:
        raise UsageError(
            f"--model {path}: expected a model from square RGB images to class "
            f"probabilities; this one maps {model.input_shape} to {model.output_shape}"
        )
    return model


def model_class_names(path: str, classes: int) -> tuple[str, ...]:
    """The names of a saved model's `classes` outputs: its `class_names.json`, else CIFAR-100's
    for 100 outputs, else "class 0", "class 1", ..."""
    import json

    from tuning.data.labels import label_names

    beside = Path(path).with_name(CLASS_NAMES_FILE)
    try:
        names = tuple(str(name) for name in json.loads(beside.read_text()))
    except (OSError, ValueError, TypeError):
        names = ()
    if len(names) == classes:
        return names
    if classes == 100:
        return label_names().fine
    return tuple(f"class {i}" for i in range(classes))


def predict_images(
    model,
    paths: list[Path],
    top: int = 5,
    batch_size: int = 128,
    names: tuple[str, ...] | None = None,
) -> list[Prediction]:
    """The `top` classes of each picture in `paths` under `model`, named by `names` (default:
    CIFAR-100's for 100 outputs, else by number)."""
    classes, side = model.output_shape[-1], model.input_shape[1]
    names = names or model_class_names("", classes)
    top = min(top, classes)
    images = np.stack([read_image(path, side) for path in paths])
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    best = np.argsort(-probabilities, axis=1)[:, :top]
    return [
        Prediction(
            str(path), tuple(names[i] for i in row), tuple(float(p) for p in probabilities[k, row])
        )
        for k, (path, row) in enumerate(zip(paths, best))
    ]


def format_table(predictions: list[Prediction]) -> str:
    """One line per picture: its file name (its path where two pictures share a name), then
    `name confidence%` for each top class."""
    labels = [Path(p.path).name for p in predictions]
    if len(set(labels)) < len(labels):
        labels = [p.path for p in predictions]
    width = max(map(len, labels))
    name_width = max(len(n) for p in predictions for n in p.names)
    lines = []
    for label, p in zip(labels, predictions):
        classes = "  ".join(f"{n:<{name_width}} {c:6.1%}" for n, c in zip(p.names, p.confidences))
        lines.append(f"{label:<{width}}  {classes}")
    return "\n".join(lines)
