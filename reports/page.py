"""Plain HTML pages a person opens: a configuration's report and the methods side by side."""

from __future__ import annotations

import html
from pathlib import Path

_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
    "img{max-width:100%;border:1px solid #ddd;margin:6px 0}"
)
PLOTS = (
    ("curves.png", "Learning curves"),
    ("confusion_coarse.png", "Superclass confusion"),
    ("per_class_f1.png", "Per-class F1"),
    ("examples.png", "Test examples"),
    ("gradcam.png", "Grad-CAM: where the model looked"),
    ("confusion_fine.png", "Class confusion"),
)
FILES = (
    "metrics.json",
    "classification_report.txt",
    "classification_report.csv",
    "coarse_classification_report.txt",
    "coarse_classification_report.csv",
    "predictions.csv",
    "history.csv",
    "model.keras",
    "class_names.json",
)


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}"
        f"</body></html>\n"
    )


def write_index(folder: Path, metrics: dict, report) -> None:
    """`index.html`: metrics, hyperparameters, every plot, the hardest classes and file links."""
    shown = {
        k: v
        for k, v in metrics.items()
        if isinstance(v, (int, float, str)) and k not in ("search",)
    }
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in shown.items()
    )
    hps = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>"
        for k, v in metrics["hyperparameters"].items()
    )
    seeds = ""
    if "over_seeds" in metrics:
        seeds = (
            "<h2>Over seeds (mean &plusmn; std)</h2><table>"
            + "".join(
                f"<tr><th>{k}</th><td>{v['mean']:.4f} &plusmn; {v['std']:.4f}</td></tr>"
                for k, v in metrics["over_seeds"].items()
            )
            + "</table>"
        )
    images = "".join(
        f"<h2>{name}</h2><img src='{src}' alt='{name}'>"
        for src, name in PLOTS
        if (folder / src).is_file()  # no superclass confusion for data without superclasses
    )
    links = " | ".join(f"<a href='{f}'>{f}</a>" for f in FILES if (folder / f).is_file())
    worst = report.iloc[:-3].sort_values("f1-score").head(10)
    body = (
        f"<p>Test split evaluated once. Data: {html.escape(str(metrics['data']))}. "
        f"{html.escape(training_line(metrics))}</p>"
        f"<h2>Metrics</h2><table>{rows}</table>{seeds}"
        f"<h2>Hyperparameters</h2><table>{hps}</table>{images}"
        f"<h2>Hardest classes</h2>{worst.to_html(float_format=lambda x: f'{x:.3f}')}"
        f"<h2>Files</h2><p>{links}</p>"
    )
    title = f"cifar-tune report: {metrics['method']} rank {metrics['rank']}"
    (folder / "index.html").write_text(page(title, body))


def training_line(metrics: dict) -> str:
    """How the reported model was trained and tested, in one sentence."""
    images = metrics.get("train_images")
    if metrics.get("train_on_validation"):
        line = f"Trained on train + validation ({images} images) for {metrics['epochs']} epochs"
        line += ", no early stopping"
    else:
        line = f"Trained on the search's training split ({images} images), validation held out"
    line += f", in {metrics.get('precision', 'float32')}"
    tta = "the mean over each image and its mirror (flip TTA)" if metrics.get("tta") else "once"
    return f"{line}; each test image predicted {tta} in float32."


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 0.01 else f"{value:,.4f}".rstrip("0").rstrip(".")
    return html.escape(str(value))
