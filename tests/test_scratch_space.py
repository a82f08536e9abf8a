"""The scratch space's shapes and training: residual, conv groups, schedules, smoothing, crop."""

import warnings

import keras
import numpy as np
import pytest

from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters
from search_spaces.training import SmoothedCrossentropy, rate_at


def _scratch(epochs=4, **values):
    hypermodel = create_hypermodel("scratch", epochs=epochs)
    hp = fixed_hyperparameters({**SEED_PRESETS["scratch"], **values})
    return hypermodel, hp, hypermodel.build(hp)


def _tiny_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (64, 32, 32, 3)).astype("float32"), rng.integers(0, 100, 64)


def _rates(hypermodel, hp, model, **fit_args):
    x, y = _tiny_data()
    history = hypermodel.fit(hp, model, x, y, batch_size=32, verbose=0, **fit_args)
    return history.history["learning_rate"]


@pytest.mark.parametrize("schedule,optimizer", [("one_cycle", "sgd"), ("cosine", "adamw")])
def test_a_promoted_trial_resumes_its_schedule_where_an_uninterrupted_run_is(schedule, optimizer):
    values = {
        "schedule": schedule,
        "optimizer": optimizer,
        "weight_decay": 5e-4,
        "sgd_learning_rate": 0.1,
        "learning_rate": 2e-3,
    }
    whole = _rates(*_scratch(**values), epochs=4)
    # Hyperband: a 2-epoch rung, then the promoted trial, rebuilt, resumes at initial_epoch 2.
    first = _rates(*_scratch(**values), epochs=2)
    promoted = _rates(*_scratch(**values), epochs=4, initial_epoch=2)
    np.testing.assert_allclose(first + promoted, whole, rtol=1e-6)
    assert len(set(np.round(whole, 8))) == 4  # the rate changed every epoch: a real schedule
    peak = values["sgd_learning_rate" if optimizer == "sgd" else "learning_rate"]
    np.testing.assert_allclose(whole, [rate_at(schedule, peak, e, 4) for e in range(4)], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_promoted_trial_continues_with_its_parents_optimizer_state(tmp_path, optimizer):
    """A fresh Adam at the schedule's peak kicks every weight by the full rate; a trial
    Hyperband promotes must go on with its parent's moments and step count."""
    values = {"optimizer": optimizer, "schedule": "one_cycle", "sgd_learning_rate": 0.1}
    hypermodel, hp, parent = _scratch(**values)
    _rates(hypermodel, hp, parent, epochs=2)
    checkpoint = tmp_path / "checkpoint.weights.h5"
    parent.save_weights(checkpoint)  # what keras-tuner keeps of a trial's best epoch
    _, _, promoted = _scratch(**values)
    with warnings.catch_warnings(record=True) as caught:  # the search filters none of them
        warnings.simplefilter("always")
        promoted.load_weights(checkpoint)  # how keras-tuner's Hyperband rebuilds a promoted trial
    assert not [w for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
    assert int(promoted.optimizer.iterations) == 2 * 2  # 2 epochs of 2 batches
    state = [np.asarray(v) for v in parent.optimizer.variables]
    assert any(np.abs(v).max() > 0 for v in state[2:])  # moments (or momentum) that moved
    for saved, loaded in zip(state, promoted.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), saved)


def test_schedules_span_the_budget_they_are_given():
    assert rate_at("constant", 0.1, 7, 8) == 0.1
    assert rate_at("one_cycle", 1.0, 0, 100) < 0.1  # starts low
    assert max(rate_at("one_cycle", 1.0, e, 100) for e in range(100)) > 0.99
    assert rate_at("cosine", 1.0, 99, 100) < 0.001  # ends near zero
    assert rate_at("cosine", 1.0, 0, 100) < rate_at("cosine", 1.0, 9, 100)  # warms up


def test_the_residual_corner_is_resnet18s_cifar_shape():
    _, _, model = _scratch(
        architecture="residual",
        residual_stages=4,
        blocks_per_stage=2,
        residual_width=64,
        dropout=0.0,
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 4 * 2 * 2 + 3  # stem, two per basic block, three projections
    assert [c.filters for c in convs][-1] == 512
    [pooling] = [
        layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    assert pooling.output.shape[1:] == (512,)
    assert 11.1e6 < model.count_params() < 11.3e6  # ResNet-18 on CIFAR-100: 11.2M


def test_conv_groups_pool_after_their_first_conv_and_pool_globally():
    _, _, model = _scratch(
        architecture="conv_groups", conv_blocks=3, base_filters=32, convs_per_block=2
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    # a group's later convs see its pooled map: a quarter of the cost of plain blocks' order
    assert [c.output.shape[1] for c in convs] == [32, 16, 16, 8, 8, 4]
    [pooling] = [
        layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    assert pooling.output.shape[1:] == (128,)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in model.layers[:-1])


def test_the_seed_preset_is_still_the_seed_recipe():
    _, _, model = _scratch()
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert not isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.loss == "sparse_categorical_crossentropy"
    assert not any(isinstance(layer, keras.layers.RandomTranslation) for layer in model.layers)


def test_label_smoothing_is_keras_smoothing_on_integer_labels():
    rng = np.random.default_rng(1)
    probabilities = keras.ops.softmax(rng.normal(size=(8, 100)).astype("float32"))
    labels = rng.integers(0, 100, 8)
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(
        keras.ops.one_hot(labels, 100), probabilities
    )
    assert float(SmoothedCrossentropy(0.1)(labels, probabilities)) == pytest.approx(float(expected))
    assert float(SmoothedCrossentropy(0.1)(labels, probabilities)) != pytest.approx(
        float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities))
    )


def test_a_smoothed_sgd_model_saves_to_a_file_plain_keras_loads(tmp_path):
    hypermodel, _, model = _scratch(label_smoothing=0.1, optimizer="sgd", weight_decay=1e-3)
    assert isinstance(model.loss, SmoothedCrossentropy)
    path = tmp_path / "model.keras"
    hypermodel.image_model(model).save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, custom_objects={})
    x, _ = _tiny_data()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_crop_shifts_whole_pixels_with_zeros_in_training_only():
    _, _, model = _scratch(crop=True)
    crop = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.RandomTranslation)
    )
    image = np.arange(1, 32 * 32 * 3 + 1, dtype="float32").reshape(1, 32, 32, 3)
    np.testing.assert_array_equal(crop(image, training=False), image)
    shifted = [np.asarray(crop(image, training=True)) for _ in range(8)]
    for out in shifted:
        assert set(np.unique(out)) <= set(np.unique(image)) | {0.0}  # pixels moved, not blended
        assert (out == 0).sum() <= (4 * 32 * 2 - 16) * 3  # shifted at most 4 px each way
    assert any(not np.array_equal(out, image) for out in shifted)
