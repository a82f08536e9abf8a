"""The feature cache: cached models compute what uncached ones do; the cache is safe to reuse."""

import keras
import numpy as np
import pytest
from conftest import make_cache

from search_spaces import create_hypermodel, fixed_hyperparameters
from search_spaces.backbones import cut_layer, extractor, top_layer
from tuning.data.features import FeatureCache
from tuning.data.sources import SearchData

TOP_LAYER = top_layer("vgg16")


@pytest.fixture
def cache(tmp_path):
    return make_cache(tmp_path)


@pytest.fixture(
    params=[
        "vgg16",
        "mobilenetv2",
        *(pytest.param(name, marks=pytest.mark.slow) for name in ("resnet50", "efficientnetb0")),
    ]
)
def any_cache(request, tmp_path):
    """A cache of each backbone (ResNet-50 and EfficientNet-B0, the slowest, with -m slow)."""
    return make_cache(tmp_path, request.param)


def _activations(cache, layer, split="validation", flipped=False):
    return np.load(cache.path(layer, split, flipped), allow_pickle=False)


def _uncached_with_backbone(method, hp, backbone):
    """The plain keras-tuner model of `method`, its base holding `backbone`'s weights."""
    model = create_hypermodel(method, weights="none", backbone=backbone.name).build(hp)
    model.get_layer(backbone.name).set_weights(backbone.get_weights())
    return model


def test_cached_feature_head_predicts_like_the_uncached_model(any_cache):
    cache, name = any_cache, any_cache.backbone.name
    hp = fixed_hyperparameters(
        {
            "pooling": "flatten",
            "dense_units": 128,
            "dropout": 0.2,
            "learning_rate": 1e-3,
            "flip": False,
        }
    )
    head = create_hypermodel("feature", features=cache, backbone=name).build(hp)
    uncached = _uncached_with_backbone("feature", hp, cache.backbone)
    trained = [layer for layer in uncached.layers if layer.weights and layer.name != name]
    for layer, weights in zip(trained, [layer for layer in head.layers if layer.weights]):
        layer.set_weights(weights.get_weights())
    images = cache.splits["validation"].images.astype("float32")

    from_cache = head.predict(_activations(cache, top_layer(name)), verbose=0)
    from_images = uncached.predict(images, verbose=0)
    np.testing.assert_allclose(from_cache, from_images, atol=1e-5)
    # trials hold and train the head only
    assert head.count_params() == uncached.count_params() - cache.backbone.count_params()


@pytest.mark.parametrize("blocks", [1, 3])
def test_cached_finetune_model_predicts_like_the_uncached_model(any_cache, blocks):
    cache, name = any_cache, any_cache.backbone.name
    hp = fixed_hyperparameters(
        {
            "dense_units": 128,
            "dropout": 0.0,
            "head_learning_rate": 1e-3,
            "unfreeze_blocks": blocks,
            "finetune_learning_rate": 1e-5,
            "flip": False,
        }
    )
    hypermodel = create_hypermodel("finetune", features=cache, backbone=name)
    cached = hypermodel.build(hp)
    uncached = _uncached_with_backbone("finetune", hp, cache.backbone)
    uncached.get_layer("head").set_weights(cached.get_layer("head").get_weights())
    images = cache.splits["validation"].images.astype("float32")

    from_cache = cached.predict(_activations(cache, cut_layer(name, blocks)), verbose=0)
    np.testing.assert_allclose(from_cache, uncached.predict(images, verbose=0), atol=1e-5)
    as_image_model = hypermodel.image_model(cached).predict(images, verbose=0)
    np.testing.assert_allclose(as_image_model, from_cache, atol=1e-5)


def test_flipped_views_are_the_activations_of_flipped_images(cache):
    images = cache.splits["train"].images[:, :, ::-1].astype("float32")
    extract = extractor(cache.backbone, 32, [cut_layer("vgg16", 1)])
    np.testing.assert_allclose(
        _activations(cache, cut_layer("vgg16", 1), "train", flipped=True),
        extract.predict(images, verbose=0),
        atol=1e-5,
    )


def test_flip_dataset_draws_each_image_plainly_or_flipped_and_uses_both(cache):
    plain = _activations(cache, TOP_LAYER, "train").reshape(48, -1)
    flipped = _activations(cache, TOP_LAYER, "train", flipped=True).reshape(48, -1)
    labels = cache.splits["train"].fine
    seen_flipped = seen_plain = 0
    for _ in range(2):  # two epochs
        for x, y in cache.dataset(TOP_LAYER, "train", flip=True):
            for row, label in zip(x.numpy().reshape(len(y), -1), y.numpy()):
                is_plain = np.isclose(plain, row).all(1)
                is_flipped = np.isclose(flipped, row).all(1)
                match = np.flatnonzero(is_plain | is_flipped)
                assert len(match) == 1 and labels[match[0]] == label
                seen_plain += is_plain.any()
                seen_flipped += is_flipped.any() and not is_plain.any()
    assert seen_plain + seen_flipped == 96 and seen_plain > 10 and seen_flipped > 10


def test_only_the_last_layers_views_stay_in_memory(cache):
    import gc
    import weakref

    block4 = cut_layer("vgg16", 1)
    first = cache.dataset(block4, "train", flip=True)
    assert cache.dataset(block4, "train", flip=True) is first  # reused while its layer is in use
    cache.dataset(block4, "validation")
    gone = weakref.ref(first)
    del first
    cache.dataset(cut_layer("vgg16", 2), "train", flip=True)  # a trial one block deeper
    gc.collect()
    assert gone() is None  # the other layer's tensors can be freed
    assert set(cache._datasets) == {("train", True)}
    x, y = next(iter(cache.dataset(block4, "train")))  # read again from disk when needed
    assert x.shape[1:] == cache.shape(block4) and len(y) == 16


@pytest.mark.parametrize("split, flip", [("train", True), ("train", False), ("validation", False)])
def test_views_read_from_disk_give_the_batches_held_views_do(cache, split, flip):
    """A view over `held_bytes` is read per batch from its file instead of held in memory:
    the same rows, flips and order, epoch after epoch."""
    streamed = FeatureCache(
        cache.backbone, 32, cache_data(cache), 16, seed=0, root=cache.folder.parent, held_bytes=0
    )
    layer = cut_layer("vgg16", 1)
    held_batches, streamed_batches = (c.dataset(layer, split, flip) for c in (cache, streamed))
    for _ in range(2):  # two epochs: reshuffled and redrawn alike
        pairs = list(zip(held_batches, streamed_batches, strict=True))
        assert len(pairs) == (3 if split == "train" else 2)
        for (x, y), (x_read, y_read) in pairs:
            np.testing.assert_array_equal(x.numpy(), x_read.numpy())
            np.testing.assert_array_equal(y.numpy(), y_read.numpy())


def test_a_streamed_view_refuses_a_hostile_file(cache):
    from tuning.data.features import RowReader

    hostile = cache.path(TOP_LAYER, "validation")
    np.save(hostile, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects"):
        RowReader(hostile)


def cache_data(cache):
    return SearchData(cache.splits["train"], cache.splits["validation"], "random pixels")


def test_cache_is_reused_and_a_damaged_or_hostile_file_is_rebuilt(cache):
    layers = [cut_layer("vgg16", blocks) for blocks in range(4)]
    assert cache.prepare(layers) is None  # everything on disk: nothing recomputed
    good = _activations(cache, TOP_LAYER)
    cut_short = cache.path(TOP_LAYER, "validation")
    cut_short.write_bytes(cut_short.read_bytes()[:200])
    hostile = cache.path(cut_layer("vgg16", 2), "train")
    np.save(hostile, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # a pickle inside
    assert cache.prepare(layers) > 0
    np.testing.assert_allclose(_activations(cache, TOP_LAYER), good)
    assert _activations(cache, cut_layer("vgg16", 2), "train").dtype == np.float32


class _SeesModel(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.seen = (self.model.name, float(self.model.optimizer.learning_rate))


def test_cached_finetune_shows_callbacks_the_whole_model_fine_tuning(cache):
    hp = fixed_hyperparameters(
        {
            "dense_units": 128,
            "dropout": 0.0,
            "head_learning_rate": 2e-3,
            "unfreeze_blocks": 2,
            "finetune_learning_rate": 3e-5,
            "flip": True,
            "head_epochs": 1,
        }
    )
    hypermodel = create_hypermodel("finetune", head_epochs=1, features=cache)
    model = hypermodel.build(hp)
    watcher = _SeesModel()
    history = hypermodel.fit(hp, model, epochs=1, callbacks=[watcher], verbose=0, shuffle=False)
    assert history.head_epochs_run == 1 and history.epoch == [0]
    assert watcher.seen == ("vgg16_finetune", pytest.approx(3e-5))
    history = hypermodel.fit(
        hp, model, epochs=2, initial_epoch=1, callbacks=[watcher], verbose=0, shuffle=False
    )
    assert history.epoch == [1] and history.head_epochs_run == 0
    trainable = {
        layer.name.split("_")[0]
        for layer in model.get_layer("vgg16").layers
        if layer.trainable and layer.weights
    }
    assert trainable == {"block4", "block5"}
    with pytest.raises(ValueError, match="reads its own data"):
        hypermodel.fit(hp, model, np.zeros((1, 32, 32, 3)), epochs=1, verbose=0)


@pytest.mark.parametrize("side", [1, 2, 4])
def test_small_map_conv_computes_what_conv2d_does(side):
    import tensorflow as tf

    from search_spaces.backbones import SmallMapConv2D

    conv = keras.layers.Conv2D(8, 3, padding="same", activation="relu")
    small = SmallMapConv2D.from_config(conv.get_config())
    x = tf.random.stateless_normal((5, side, side, 6), seed=(1, 2))
    conv.build(x.shape)
    small.build(x.shape)
    small.set_weights([w + 0.1 for w in conv.get_weights()])
    conv.set_weights(small.get_weights())
    gradients = []
    for layer in (conv, small):
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        gradients.append((y.numpy(), [g.numpy() for g in tape.gradient(loss, layer.weights)]))
    np.testing.assert_allclose(gradients[0][0], gradients[1][0], rtol=1e-5, atol=1e-5)
    for expected, got in zip(gradients[0][1], gradients[1][1]):
        np.testing.assert_allclose(expected, got, rtol=1e-4, atol=1e-4)
