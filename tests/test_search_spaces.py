"""The search spaces: what they declare, and fine-tuning's two phases."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

from search_spaces import SEED_PRESETS, create_hypermodel, fixed_hyperparameters


class _Counter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(epoch)

    def on_train_end(self, logs=None):
        self.calls.append("end")


def _tiny_data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 32, 3)).astype("float32")
    return x, rng.integers(0, 100, 32)


def _finetune(unfreeze_blocks=2):
    hypermodel = create_hypermodel("finetune", weights="none", head_epochs=1)
    hp = kt.HyperParameters()
    hp.Fixed("unfreeze_blocks", unfreeze_blocks)
    hp.Fixed("finetune_learning_rate", 3e-5)
    hp.Fixed("head_learning_rate", 2e-3)
    return hypermodel, hp, hypermodel.build(hp)


def _trainable_blocks(model):
    base = model.get_layer("vgg16")
    return sorted(
        {
            layer.name.split("_")[0]
            for layer in base.layers
            if layer.trainable and layer.weights and base.trainable
        }
    )


class _Weights(keras.callbacks.Callback):
    """The head's weights when the tuner's callbacks first see the model."""

    def on_train_begin(self, logs=None):
        self.head_at_begin = [w.copy() for w in self.model.get_layer("head").get_weights()]


def test_every_epoch_the_tuner_counts_fine_tunes_after_a_head_warm_up():
    hypermodel, hp, model = _finetune(unfreeze_blocks=2)
    assert _trainable_blocks(model) == ["block4", "block5"]  # built as it fine-tunes
    head_before = [w.copy() for w in model.get_layer("head").get_weights()]
    counter, weights = _Counter(), _Weights()
    x, y = _tiny_data()
    history = hypermodel.fit(hp, model, x, y, epochs=1, callbacks=[counter, weights], verbose=0)
    # A one-epoch rung: the tuner sees one epoch, and it fine-tuned, with a head already trained.
    assert counter.calls == ["begin", 0, "end"]
    assert history.epoch == [0] and history.head_epochs_run == 1
    assert _trainable_blocks(model) == ["block4", "block5"]
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-5)
    assert any(not np.allclose(a, b) for a, b in zip(head_before, weights.head_at_begin))


def test_promoted_finetune_trial_goes_on_fine_tuning_without_a_second_warm_up():
    hypermodel, hp, model = _finetune(unfreeze_blocks=1)
    counter, weights = _Counter(), _Weights()
    head_before = [w.copy() for w in model.get_layer("head").get_weights()]
    x, y = _tiny_data()
    history = hypermodel.fit(
        hp, model, x, y, epochs=3, initial_epoch=1, callbacks=[counter, weights], verbose=0
    )
    assert counter.calls == ["begin", 1, 2, "end"]
    assert history.epoch == [1, 2] and history.head_epochs_run == 0
    assert all(np.array_equal(a, b) for a, b in zip(head_before, weights.head_at_begin))
    assert _trainable_blocks(model) == ["block5"]
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-5)


def test_a_promoted_finetune_trial_continues_with_its_parents_optimizer_state(tmp_path):
    """keras-tuner rebuilds a promoted trial and loads its parent's checkpoint: the fine-tuning
    optimizer's moments and step count must come back, and go on without a new compile."""
    import warnings

    hypermodel, hp, parent = _finetune(unfreeze_blocks=1)
    x, y = _tiny_data()
    hypermodel.fit(hp, parent, x, y, epochs=1, batch_size=16, verbose=0)
    checkpoint = tmp_path / "checkpoint.weights.h5"
    parent.save_weights(checkpoint)
    state = [np.asarray(v) for v in parent.optimizer.variables]
    _, _, promoted = _finetune(unfreeze_blocks=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        promoted.load_weights(checkpoint)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    for saved, loaded in zip(state, promoted.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), saved)
    optimizer = promoted.optimizer
    hypermodel.fit(hp, promoted, x, y, epochs=2, initial_epoch=1, batch_size=16, verbose=0)
    assert promoted.optimizer is optimizer and int(optimizer.iterations) == 2 * 2


@pytest.mark.parametrize("method", ["scratch", "feature", "finetune"])
def test_every_searched_value_is_declared_in_build(method):
    hypermodel = create_hypermodel(method, weights="none")
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    assert model.output_shape == (None, 100)
    assert set(SEED_PRESETS[method]) <= set(hp.values)


def test_seed_preset_builds_the_seed_cnn():
    model = create_hypermodel("scratch").build(fixed_hyperparameters(SEED_PRESETS["scratch"]))
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert convs == [32, 64, 128] and dense == [256, 100]
