"""The precision a search trains in: chosen per machine, float32 where it counts, saved so."""

import json

import keras
import numpy as np
import pytest
from conftest import run_cli

from search_spaces import create_hypermodel, dtype_policy, fixed_hyperparameters
from search_spaces.blocks import compile_classifier
from search_spaces.scratch import RECIPES
from tuning.config import SearchConfig
from tuning.errors import ConfigError
from tuning.host.precision import choose


@pytest.mark.parametrize(
    "gpus, flags, policy, why",
    [
        ([(8, 0)], set(), "mixed_float16", "GPU of compute capability 8.0"),
        ([(7, 0), (7, 5)], set(), "mixed_float16", "compute capability 7.0"),
        ([(6, 1)], {"amx_bf16"}, "float32", "6.1, below 7.0"),  # the GPU trains, not the CPU
        ([], {"avx2", "avx512f", "amx_tile", "amx_bf16"}, "mixed_bfloat16", "AMX CPU"),
        ([], {"avx2", "avx512f", "avx512_bf16"}, "float32", "no AMX"),
        ([], {"avx2", "fma"}, "float32", "no AMX"),
    ],
)
def test_auto_picks_the_fast_policy_of_the_device(gpus, flags, policy, why):
    choice = choose("auto", gpus=gpus, flags=flags)
    assert choice.policy == policy and why in choice.why


def test_auto_keeps_backbone_methods_float32_on_amx_but_not_on_a_gpu():
    amx = {"avx2", "avx512f", "amx_tile", "amx_bf16"}
    for method in ("feature", "finetune"):
        choice = choose("auto", gpus=[], flags=amx, method=method)
        assert choice.policy == "float32" and "backbone" in choice.why
        assert choose("auto", gpus=[(8, 0)], flags=amx, method=method).policy == "mixed_float16"
        assert choose("mixed_bfloat16", gpus=[], flags=amx, method=method).policy == (
            "mixed_bfloat16"
        )
    assert choose("auto", gpus=[], flags=amx, method="scratch").policy == "mixed_bfloat16"


def test_an_explicit_precision_wins_and_a_wrong_one_is_named():
    assert choose("float32", gpus=[(8, 0)], flags=set()).policy == "float32"
    assert choose("mixed_bfloat16", gpus=[], flags={"avx2"}).why == "chosen by you"
    with pytest.raises(ConfigError, match=r"precision must be one of .*Received: 'bfloat16'"):
        SearchConfig(method="scratch", precision="bfloat16")


@pytest.mark.parametrize("method", ["scratch", "feature", "finetune"])
def test_mixed_models_compute_in_bfloat16_augment_and_score_in_float32(method):
    hypermodel = create_hypermodel(method, weights="none")
    values = next(iter(RECIPES.values())) if method == "scratch" else {"flip": True}
    with dtype_policy("mixed_bfloat16"):
        model = hypermodel.build(fixed_hyperparameters(values))
    computing = {layer.compute_dtype for layer in _layers(model) if layer.weights}
    assert "bfloat16" in computing
    augmenting = [layer for layer in _layers(model) if layer.name.startswith("random_")]
    assert augmenting and all(layer.compute_dtype == "float32" for layer in augmenting)
    (softmax,) = [layer for layer in _layers(model) if layer.name == "predictions"]
    assert softmax.compute_dtype == "float32" and model.output.dtype == "float32"
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32


def test_float16_compiles_with_loss_scaling():
    with dtype_policy("mixed_float16"):
        inputs = keras.Input((4,))
        outputs = keras.layers.Dense(100, activation="softmax", dtype="float32")(inputs)
        model = compile_classifier(keras.Model(inputs, outputs), 1e-3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_a_bfloat16_search_saves_a_float32_model_and_refuses_a_float32_resume(tmp_path):
    # the seed's small CNN for 1 epoch: bfloat16 runs 11x slower on an AVX2-only CPU
    search = "search --method scratch --preset seed --max-epochs 1 --train-size 500".split()
    search += ["--data", "synthetic", "--out", tmp_path, "--precision", "mixed_bfloat16"]
    done = run_cli(*search)
    assert done.returncode == 0, done.stderr
    assert "precision mixed_bfloat16 (chosen by you)" in done.stdout.splitlines()[0]
    run_dir = tmp_path / "scratch-seed"
    record = json.loads((run_dir / "search_config.json").read_text())
    assert record["precision"] == "mixed_bfloat16"

    model = keras.saving.load_model(run_dir / "best_model.keras", safe_mode=True)
    assert {layer.dtype_policy.name for layer in _layers(model)} == {"float32"}
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    assert model.predict(images, verbose=0).dtype == np.float32

    refused = run_cli(*search[:-1], "float32")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "precision 'mixed_bfloat16' (now 'float32')" in refused.stderr
    resumed = run_cli(*search[:-2])  # auto: goes on in the precision it recorded
    assert resumed.returncode == 0, resumed.stderr
    assert "precision mixed_bfloat16 (auto: as the search recorded it)" in resumed.stdout


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
