"""Grad-CAM finds where the evidence for the predicted class is, inside nested models too."""

import keras
import numpy as np

from reports.gradcam import feature_map_layer, grad_cam


def _red_detector():
    """Class 0's logit grows with the red in the picture; blue counts for nothing.

    The 8x8 feature map (red, blue) sits inside a nested model, as backbones do.
    """
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.AveragePooling2D(4)(image)  # 8x8x3, skipped: pooling
    colours = keras.layers.Conv2D(2, 1, use_bias=False, name="colours")
    backbone = keras.Model(image, colours(pooled), name="backbone")
    colours.set_weights([np.array([[[[1, 0], [0, 0], [0, 1]]]], np.float32)])
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(backbone(inputs))
    kernel = np.zeros((8, 8, 2, 100), np.float32)
    kernel[:, :, 0, 0] = 4 / (255 * 64)  # a red quarter of the picture: logit 1
    dense = keras.layers.Dense(100, activation="softmax")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([kernel.reshape(128, 100), np.zeros(100, np.float32)])
    return model


def test_heatmap_covers_the_evidence_for_the_predicted_class():
    model = _red_detector()
    images = np.zeros((3, 32, 32, 3), np.float32)
    images[:, :16, :16, 0] = 255  # red top-left: class 0 wins
    images[:, 16:, 16:, 2] = 255  # blue bottom-right, which the model ignores
    images[2, 16:, 16:] = 255  # white bottom-right: red there too
    cam = grad_cam(model, images)
    assert cam.layer == "colours" and feature_map_layer(model).name == "colours"
    assert (cam.predicted == 0).all() and cam.heatmaps.shape == (3, 32, 32)
    np.testing.assert_allclose(
        cam.confidence, model.predict(images, verbose=0).max(axis=1), rtol=1e-5
    )
    for heatmap in cam.heatmaps[:2]:
        assert heatmap.max() == 1.0
        assert heatmap[:14, :14].min() > 0.9 and heatmap[18:, 18:].max() < 0.01
    assert cam.heatmaps[2][18:, 18:].min() > 0.9  # red evidence wherever it is
    assert "call" not in vars(model.get_layer("backbone").get_layer("colours"))  # restored


def test_a_confident_prediction_still_shows_its_evidence():
    """With the softmax probability's gradient a sure model (probability 1.0 in float32) would
    give a blank map; the class score before the softmax does not vanish."""
    model = _red_detector()
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 1000, bias])  # logit 1000 for class 0: softmax exactly 1.0
    images = np.zeros((1, 32, 32, 3), np.float32)
    images[:, :16, :16, 0] = 255
    assert model.predict(images, verbose=0)[0, 0] == 1.0
    cam = grad_cam(model, images)
    assert cam.confidence[0] == 1.0 and cam.predicted[0] == 0
    heatmap = cam.heatmaps[0]
    assert heatmap[:14, :14].min() > 0.9 and heatmap[18:, 18:].max() < 0.01
    assert dense.activation is keras.activations.softmax  # restored
