"""Every backbone: the right cut points, and a tiny search and report through the CLI."""

import json

import pandas as pd
import pytest
from conftest import REPORT_FILES, predicts_as_reported, run_cli

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


@pytest.mark.slow  # each backbone and each method once: the other pairs re-prove the same path
@pytest.mark.parametrize(
    "method, backbone, label",
    [
        ("feature", "resnet50", "Feature extraction (ResNet-50)"),
        ("finetune", "mobilenetv2", "Transfer learning + fine-tuning (MobileNetV2)"),
    ],
)
def test_search_and_report_with_another_backbone(tmp_path, method, backbone, label):
    done = run_cli("search", "--method", method, "--backbone", backbone, *TINY, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / method / "search_config.json").read_text())
    assert config["backbone"] == backbone
    done = run_cli("--method", method, "--out", tmp_path, "--epochs", "1", module="reports")
    assert done.returncode == 0, done.stderr
    report = tmp_path / method / "report"
    assert sorted(p.name for p in report.iterdir()) == sorted(REPORT_FILES)
    assert (report / "gradcam.png").stat().st_size > 10_000
    assert "src='gradcam.png'" in (report / "index.html").read_text()
    assert json.loads((report / "metrics.json").read_text())["test_accuracy"] >= 0
    predicts_as_reported(report)
    done = run_cli("summary", "--out", tmp_path, module="reports")
    assert done.returncode == 0, done.stderr
    assert label in set(pd.read_csv(tmp_path / "summary.csv").method)


def test_the_command_line_offers_exactly_the_backbones_the_search_spaces_have():
    from tuning.config import BACKBONES as OFFERED  # kept apart so --help needs no TensorFlow

    assert OFFERED == tuple(BACKBONES)


def test_mobilenetv2_comes_in_kerass_widths_and_the_others_in_one():
    from search_spaces import BackboneError
    from tuning.config import WIDTHS, SearchConfig
    from tuning.errors import ConfigError

    assert WIDTHS["mobilenetv2"] == BACKBONES["mobilenetv2"].widths
    narrow, wide = (load_base("mobilenetv2", "none", 32, alpha) for alpha in (0.35, 1.4))
    assert narrow.count_params() * 10 < wide.count_params()
    with pytest.raises(BackboneError, match="widths"):
        load_base("mobilenetv2", "none", 32, alpha=0.6)
    with pytest.raises(ConfigError, match="vgg16 has one width"):
        SearchConfig(method="feature", backbone="vgg16", alpha=0.5)
    with pytest.raises(ConfigError, match=r"comes in widths \[0.35"):
        SearchConfig(method="feature", backbone="mobilenetv2", alpha=0.6)


def test_each_width_names_the_file_kerass_download_would_fetch():
    spec = BACKBONES["mobilenetv2"]
    assert spec.weights_file_for(0.35, 96) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    )
    assert spec.weights_file_for(1, 32).endswith("_1.0_224_no_top.h5")  # Keras's fallback size
    assert BACKBONES["vgg16"].weights_file_for(1.0, 96) == BACKBONES["vgg16"].weights_file


def test_a_weights_file_of_another_width_is_refused_in_one_line(tmp_path):
    from search_spaces import BackboneError

    weights = tmp_path / "mobilenet_v2_0.5.weights.h5"
    load_base("mobilenetv2", "none", 32, alpha=0.5).save_weights(weights)
    with pytest.raises(BackboneError) as error:
        load_base("mobilenetv2", str(weights), 32, alpha=1.0)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "mobilenetv2 (alpha 1.0)" in message and "another width" in message


def test_the_imagenet_mobilenetv2_035_file_loads_at_its_width_only(mobilenet_035_weights):
    from search_spaces import BackboneError

    for size in (32, 96):
        base = load_base("mobilenetv2", str(mobilenet_035_weights), size, alpha=0.35)
        assert base.get_layer(BACKBONES["mobilenetv2"].cuts[0]).output.shape[-1] == 1280
    with pytest.raises(BackboneError, match="another width"):
        load_base("mobilenetv2", str(mobilenet_035_weights), 32, alpha=0.5)
