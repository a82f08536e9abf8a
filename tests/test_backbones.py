"""Every backbone: the right cut points, and a tiny search and report through the CLI."""

import json

import pytest
from conftest import run_cli

from search_spaces.backbones import BACKBONES, load_base

TINY = (
    "--data synthetic --weights none --tuner random --max-trials "
    "1 --max-epochs 2 --head-epochs 1 --train-size 1000 --quiet"
).split()


@pytest.mark.parametrize("name", list(BACKBONES))
def test_cut_points_shrink_toward_the_output_and_name_real_layers(name):
    base = load_base(name, "none", 32)
    spec = BACKBONES[name]
    assert base.name == name and base.get_layer(spec.cuts[0]).output is base.output
    sides = [base.get_layer(cut).output.shape[1] for cut in spec.cuts]
    assert sides == sorted(sides) and sides[0] < sides[-1]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50", "mobilenetv2"])
@pytest.mark.parametrize("method", ["feature", "finetune"])
def test_search_and_report_with_another_backbone(tmp_path, method, backbone):
    done = run_cli("search", "--method", method, "--backbone", backbone, *TINY, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / method / "search_config.json").read_text())
    assert config["backbone"] == backbone
    done = run_cli("--method", method, "--out", tmp_path, "--epochs", "1", module="reports")
    assert done.returncode == 0, done.stderr
    report = tmp_path / method / "report"
    assert (report / "gradcam.png").stat().st_size > 10_000
    assert "src='gradcam.png'" in (report / "index.html").read_text()
    assert json.loads((report / "metrics.json").read_text())["test_accuracy"] >= 0


def test_the_command_line_offers_exactly_the_backbones_the_search_spaces_have():
    from tuning.config import BACKBONES as OFFERED  # kept apart so --help needs no TensorFlow

    assert OFFERED == tuple(BACKBONES)
