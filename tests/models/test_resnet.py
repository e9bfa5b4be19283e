"""tinydeep/models/resnet.py: the paper's shapes and parameter counts, and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from weights import randomize_constant_weights

import tinydeep as td
from tinydeep.models import IdentityBlock, ResidualBlock, ResNet


def built(model, shape=(2, 32, 32, 3), dtype=np.float32):
    model(np.zeros(shape, dtype))
    return model


@pytest.mark.parametrize(("depth", "params"), [(8, 75_290), (20, 269_722), (56, 853_018)])
def test_parameter_counts_match_the_paper(depth, params):
    # He et al. (2016), table 6: ResNet-20 0.27M, ResNet-56 0.85M (zero-padding shortcuts)
    model = built(ResNet(depth))
    assert sum(p.size for p in model.parameters()) == params
    plain = built(ResNet(depth, residual=False))  # zero-padding shortcuts have no weights
    assert sum(p.size for p in plain.parameters()) == params


def test_stages_halve_the_image_and_double_the_filters():
    model = built(ResNet(8))
    assert [b.output_shape for b in model.blocks] == [
        (2, 32, 32, 16),
        (2, 16, 16, 32),
        (2, 8, 8, 64),
    ]
    assert model.output_shape == (2, 10)
    assert model.stem.kernel.shape == (3, 3, 3, 16) and model.stem.bias is None


def test_projection_shortcuts_add_a_strided_one_by_one_convolution():
    model = built(ResNet(20, shortcut="projection"))
    assert sum(p.size for p in model.parameters()) == 272_474
    conv, bn = model.blocks[3].shortcut
    assert bn.gamma.shape == (32,)
    assert conv.kernel.shape == (1, 1, 16, 32) and conv.strides == (2, 2)


def test_a_small_resnet_passes_gradcheck_in_float64():
    td.manual_seed(0)
    model = ResNet(8, width=2, num_classes=3)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3))
    model(x, training=True)
    randomize_constant_weights(model)  # gamma, beta and the head's bias
    assert td.gradcheck(
        lambda t: model(t, training=True),
        x,
        params=model.named_weights(trainable_only=True),
        mode="random",
        directions=3,
    )


def test_the_identity_block_keeps_its_shape_and_checks_its_gradients():
    td.manual_seed(1)
    block = IdentityBlock(3, 3)
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 3))
    assert block(x, training=True).shape == x.shape
    randomize_constant_weights(block)
    assert td.gradcheck(
        lambda t: block(t, training=True),
        x,
        params=block.named_weights(trainable_only=True),
        mode="random",
    )


def test_bad_settings():
    with pytest.raises(ValueError, match="depth must be 6n \\+ 2 .* got 21"):
        ResNet(21)
    with pytest.raises(ValueError, match="shortcut must be one of"):
        ResidualBlock(16, shortcut="dense")
