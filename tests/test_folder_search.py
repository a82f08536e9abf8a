"""A user's own folder of pictures: searched, reported and predicted under its own classes."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from PIL import Image

COLOURS = {"cherry": (200, 20, 30), "leaf": (30, 170, 40), "sky": (40, 90, 220)}


def _folder(root, side=40, per_class=40):
    """Three classes of noisy single-colour pictures, some in nested folders, one note."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        for i in range(per_class):
            pixels = np.clip(rng.normal(colour, 25, (side, side, 3)), 0, 255).astype(np.uint8)
            where = root / name / ("deep" if i % 4 == 0 else "") / f"{i:03d}.png"
            where.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(where)
    (root / "cherry" / "README.txt").write_text("not a picture")
    return root


def test_a_folder_searches_reports_and_predicts_with_its_own_classes(tmp_path):
    data, out = _folder(tmp_path / "pictures"), tmp_path / "runs"
    search = ["search", "--method", "scratch", "--data", data, "--max-epochs", "1"]
    done = run_cli(*search, "--max-madds", "25M", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "3 classes, 40x40" in done.stdout and "1 other files ignored" in done.stdout
    run_dir = out / "scratch"
    assert json.loads((run_dir / "class_names.json").read_text()) == sorted(COLOURS)
    recorded = json.loads((run_dir / "search_config.json").read_text())
    assert recorded["classes"] == sorted(COLOURS) and recorded["image_side"] == 40

    done = run_cli("--method", "scratch", "--out", out, "--epochs", "2", module="reports")
    assert done.returncode == 0, done.stderr
    report = run_dir / "report"
    table = pd.read_csv(report / "classification_report.csv", index_col="class")
    assert set(table.index[:3]) == set(COLOURS)
    assert table.loc["macro avg", "support"] == 20  # the held-out sixth of 120 pictures
    assert not (report / "coarse_classification_report.csv").exists()
    assert "coarse_accuracy" not in json.loads((report / "metrics.json").read_text())
    assert "Superclass" not in (report / "index.html").read_text()

    picture = data / "sky" / "001.png"
    done = run_cli("predict", "--model", run_dir / "best_model.keras", picture, "--json")
    assert done.returncode == 0, done.stderr
    [prediction] = json.loads(done.stdout)
    assert {entry["name"] for entry in prediction["top"]} == set(COLOURS)

    (data / "leaf" / "new.png").write_bytes(picture.read_bytes())
    done = run_cli(*search, "--max-madds", "25M", "--out", out)
    assert done.returncode == 2 and "data files (size, modified) changed" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda d: (d / "superclasses.csv").write_text("cherry,fruit\nemu,bird\n"), "unknown"),
        (lambda d: (d / "leaf" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut"), "cut.jpg"),
        (lambda d: [p.unlink() for p in (d / "sky").rglob("*.png")], "no images"),
    ],
)
def test_a_bad_folder_is_one_line_before_anything_is_written(tmp_path, spoil, message):
    data, out = _folder(tmp_path / "pictures", per_class=4), tmp_path / "runs"
    spoil(data)
    done = run_cli("search", "--method", "scratch", "--data", data, "--out", out)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_superclasses_table_gives_superclass_reports(tmp_path):
    from tuning.data.sources import read_split, source_names

    data = _folder(tmp_path / "pictures", per_class=6)
    (data / "superclasses.csv").write_text("class,superclass\ncherry,red\nleaf,green\nsky,blue\n")
    names = source_names(str(data))
    assert names.fine == ("cherry", "leaf", "sky") and names.coarse == ("blue", "green", "red")
    test = read_split(str(data), "test")
    assert len(test) == 3 and list(test.coarse) == [2, 1, 0]  # one held out per class
