"""The report's pictures: learning curves, confusion matrices, per-class F1, example predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict, path: Path, title: str) -> None:
    """Loss and accuracy per epoch, train vs validation (when held out), as the seed write-up
    plots them."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} vs epochs")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(true, predicted, names, path: Path, title: str, labelled: bool) -> None:
    """Row-normalised confusion matrix; class names on the axes when `labelled`."""
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    count = len(names)
    matrix = confusion_matrix(true, predicted, labels=np.arange(count), normalize="true")
    size = 11 if labelled else 12
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if labelled:
        ax.set_xticks(range(count), names, rotation=90, fontsize=8)
        ax.set_yticks(range(count), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_class_f1(report, path: Path, shown: int = 15) -> None:
    """The `shown` best and worst fine classes by F1 (from the classification report frame)."""
    plt = _pyplot()
    classes = report.iloc[:-3]["f1-score"].sort_values()  # drop accuracy / macro / weighted rows
    picked = classes.iloc[np.r_[0:shown, -shown:0]] if len(classes) > 2 * shown else classes
    fig, ax = plt.subplots(figsize=(9, 9))
    colours = (
        ["tab:red"] * shown + ["tab:green"] * shown
        if len(classes) > 2 * shown
        else ["tab:blue"] * len(picked)
    )
    ax.barh(range(len(picked)), picked.values, color=colours[: len(picked)])
    ax.set_yticks(range(len(picked)), picked.index, fontsize=8)
    title = (
        f"per-class F1: worst {shown} (red), best {shown} (green)"
        if len(classes) > 2 * shown
        else f"per-class F1 of all {len(classes)} classes"
    )
    ax.set(xlabel="F1", xlim=(0, 1), title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_examples(images, true, predicted, confidence, names, path: Path, count: int = 24) -> None:
    """Test images with true and predicted names; mistakes titled in red."""
    plt = _pyplot()
    columns = 6
    rows = int(np.ceil(min(count, len(images)) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 2.1, rows * 2.5))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i >= min(count, len(images)):
            continue
        ax.imshow(images[i])
        right = true[i] == predicted[i]
        ax.set_title(
            f"true: {names[true[i]]}\npred: {names[predicted[i]]} ({confidence[i]:.0%})",
            fontsize=7,
            color="black" if right else "red",
        )
    fig.suptitle("test examples (red: mistaken)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_gradcam(images, true, cam, names, path: Path) -> None:
    """Each test image above its Grad-CAM heatmap, titled with the true and predicted names."""
    plt = _pyplot()
    columns = len(images)
    fig, axes = plt.subplots(2, columns, figsize=(columns * 1.9, 4.4), squeeze=False)
    for i in range(columns):
        right = true[i] == cam.predicted[i]
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(
            f"true: {names[true[i]]}\npred: {names[cam.predicted[i]]} ({cam.confidence[i]:.0%})",
            fontsize=7,
            color="black" if right else "red",
        )
        axes[1, i].imshow(images[i])
        axes[1, i].imshow(cam.heatmaps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle(f"Grad-CAM of the predicted class over {cam.layer} (red titles: mistaken)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
