"""`python -m reports summary`: the seed write-up's results table, with more columns, per method."""

from __future__ import annotations

import json
from pathlib import Path

from reports.page import page
from reports.report import read_report_metrics
from tuning.config import method_of
from tuning.errors import UsageError
from tuning.host.files import atomic_write_text

# The seed write-up's published test results on real CIFAR-100.
SEED_PUBLISHED = {
    "scratch": (2.4290, 0.4009),
    "feature": (1.6671, 0.5748),
    "finetune": (2.0367, 0.4781),
}
LABELS = {
    "scratch": "CNN from scratch",
    "feature": "Feature extraction ({})",
    "finetune": "Transfer learning + fine-tuning ({})",
}
BACKBONE_NAMES = {
    "vgg16": "VGG-16",
    "resnet50": "ResNet-50",
    "efficientnetb0": "EfficientNet-B0",
    "mobilenetv2": "MobileNetV2",
}


def _label(method: str, backbone: str = "vgg16", alpha: float = 1.0) -> str:
    width = "" if alpha == 1.0 else f"-{alpha:g}"
    return LABELS[method].format(BACKBONE_NAMES[backbone] + width)


def summary_rows(out: Path) -> list[dict]:
    """One row per reported run under `out` (methods and their seed presets), then the seed's."""
    import pandas as pd

    rows = []
    for run_dir in sorted(p for p in Path(out).iterdir() if method_of(p.name)):
        metrics = read_report_metrics(run_dir)
        if metrics is None:
            continue
        trials = pd.read_csv(run_dir / "trials.csv")
        stats = json.loads((run_dir / "trial_stats.json").read_text())
        method = method_of(run_dir.name)
        rows.append(
            {
                "method": _label(
                    method, metrics.get("backbone", "vgg16"), metrics.get("alpha", 1.0)
                )
                + (" (seed preset)" if "-" in run_dir.name else ""),
                "test loss": metrics["test_loss"],
                "test accuracy": metrics["test_accuracy"],
                "top-5": metrics["test_top5_accuracy"],
                "macro F1": metrics["macro_f1"],
                "coarse accuracy": metrics.get("coarse_accuracy"),
                "params": metrics["parameters"],
                "trials": len(trials),
                "search time (s)": round(sum(s.get("seconds", 0) for s in stats.values())),
                "retrain time (s)": metrics["retrain_seconds"],
                "data": metrics["data"],
            }
        )
    if not rows:
        raise UsageError(
            f"no reports under {out}; run `python -m reports --method M --out {out}` after a search"
        )
    for method, (loss, accuracy) in SEED_PUBLISHED.items():
        rows.append(
            {
                "method": _label(method) + " (seed write-up, published)",
                "test loss": loss,
                "test accuracy": accuracy,
                "data": "real CIFAR-100",
            }
        )
    return rows


def write_summary(out: str | Path) -> Path:
    """Writes `summary.md`, `summary.csv` and `summary.html` into `out`; returns the .md path."""
    import pandas as pd

    out = Path(out)
    frame = pd.DataFrame(summary_rows(out))
    for column in ("params", "trials", "search time (s)"):
        frame[column] = frame[column].astype("Int64")  # whole numbers beside the seed's blanks
    note = (
        "Ours: retrained best configuration of each search, tested once on the data named "
        "in the last column. Seed write-up: its published numbers on real CIFAR-100 "
        "(not comparable when ours ran on the synthetic stand-in)."
    )
    atomic_write_text(out / "summary.csv", frame.to_csv(index=False))
    atomic_write_text(
        out / "summary.md", "# cifar-tune summary\n\n" + note + "\n\n" + _markdown(frame) + "\n"
    )
    table = frame.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4f}")
    atomic_write_text(
        out / "summary.html", page("cifar-tune: the methods side by side", f"<p>{note}</p>{table}")
    )
    return out / "summary.md"


def _markdown(frame) -> str:
    """A pipe table (pandas' `to_markdown` needs the extra `tabulate` package)."""
    import pandas as pd

    def cell(value):
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return ""
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)
