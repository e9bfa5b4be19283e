"""tinydeep/models/wide_deep.py: the sparse wide part against its dense one-hot form, the whole
model through gradcheck, each part alone, two optimizers, and the input errors."""

from __future__ import annotations

import numpy as np
import pytest
from weights import randomize_constant_weights

import tinydeep as td
from tinydeep.models import SparseLinear, WideAndDeep
from tinydeep.optim import FTRL, Adam
from tinydeep.sparse import RowSparseGrad

VOCABS = {"city": 4, "device": 3}


def features(n: int, wide_size: int = 10, k: int = 3, numeric: int = 2, seed: int = 0):
    """A random batch: k wide ids, one id per column of VOCABS, `numeric` float64 columns."""
    rng = np.random.default_rng(seed)
    x = {"wide": rng.integers(0, wide_size, (n, k))}
    x |= {column: rng.integers(0, size, n) for column, size in VOCABS.items()}
    if numeric:
        x["numeric"] = rng.standard_normal((n, numeric))
    return x


def test_sparse_wide_part_matches_the_dense_one_hot_model():
    rng = np.random.default_rng(0)
    layer = SparseLinear(7, dtype="float64")
    ids = np.array([[1, 4, 4], [0, 6, 1]])  # id 4 twice in one example, 1 in both, 2 never
    layer(ids)
    layer.kernel.data[...] = rng.standard_normal((7, 1))
    layer.bias.data[...] = 0.5
    dy = rng.standard_normal((2, 1))

    y = layer(ids)
    (y * td.Tensor(dy)).sum().backward()
    assert isinstance(layer.kernel.grad, RowSparseGrad)  # only the active rows

    one_hot = np.zeros((2, 7))
    np.add.at(one_hot, (np.arange(2)[:, None], ids), 1)  # a repeated id counts twice
    w = td.Tensor(layer.kernel.data.copy(), requires_grad=True)
    b = td.Tensor(layer.bias.data.copy(), requires_grad=True)
    dense = td.Tensor(one_hot) @ w + b
    (dense * td.Tensor(dy)).sum().backward()

    np.testing.assert_allclose(y.data, dense.data)
    np.testing.assert_allclose(layer.kernel.grad.to_dense(), w.grad)
    np.testing.assert_allclose(layer.bias.grad, b.grad)
    assert layer.kernel.grad.to_dense()[[2, 3, 5]].tolist() == [[0.0]] * 3


def test_the_whole_model_passes_gradcheck_in_float64():
    td.manual_seed(0)
    model = WideAndDeep(10, VOCABS, embedding_dim=3, hidden=(5, 4), num_numeric=2, dtype="float64")
    x = features(4)
    model(x)
    for p in model.wide_parameters():  # FTRL's zeros would leave the wide part untested
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape)
    randomize_constant_weights(model)  # the deep part's biases
    params = model.named_weights(trainable_only=True)
    assert all(p.dtype == np.float64 for p in params.values())
    assert set(params) == {
        "wide/kernel",
        "wide/bias",
        "embeddings/city/embeddings",
        "embeddings/device/embeddings",
        "hidden/0/kernel",
        "hidden/0/bias",
        "hidden/1/kernel",
        "hidden/1/bias",
        "deep_logit/kernel",  # one bias in all: the wide part's
    }
    ids = {key: value for key, value in x.items() if key != "numeric"}
    assert td.gradcheck(
        lambda numeric: model({**ids, "numeric": numeric}), x["numeric"], params=params
    )


def test_wide_only_and_deep_only_are_the_same_class_with_a_part_off():
    wide = WideAndDeep(10, None)
    x = features(5, numeric=0)
    assert wide.input_names == ["wide"]
    assert wide(x["wide"]).shape == (5, 1)  # one input may come bare
    assert wide.deep_parameters() == [] and len(wide.wide_parameters()) == 2
    assert wide.deep_logit is None and wide.embeddings == {} and wide.hidden == []

    deep = WideAndDeep(None, VOCABS, hidden=(6,), num_numeric=2)
    x = features(5)
    del x["wide"]
    assert deep.input_names == ["city", "device", "numeric"]
    y = deep(x)
    assert y.shape == (5, 1) and y.dtype == np.float32  # numeric float64 is cast
    assert deep.wide is None and deep.wide_parameters() == []
    assert deep.deep_logit.bias is not None  # without a wide part, the bias is the deep part's
    np.testing.assert_array_equal(deep([x["city"], x["device"], x["numeric"]]).data, y.data)

    numeric_only = WideAndDeep(None, None, hidden=(), num_numeric=3)
    assert numeric_only(np.ones((2, 3), np.float32)).shape == (2, 1)


def test_ftrl_on_the_wide_part_and_adam_on_the_deep_part_lower_the_loss():
    td.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 512
    city, device = rng.integers(0, 4, n), rng.integers(0, 3, n)
    cross = 7 + city * 3 + device  # wide ids: city 0..3, device 4..6, their cross 7..18
    wide_ids = np.stack([city, 4 + device, cross], axis=1)
    numeric = rng.standard_normal((n, 2)).astype(np.float32)
    # A label that one crossed id memorizes, plus a smooth numeric effect.
    logit = 3.0 * ((city == 2) & (device == 1)) - 1.0 + 1.5 * numeric[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)

    model = WideAndDeep(19 + 5, VOCABS, embedding_dim=4, hidden=(16,), num_numeric=2)
    inputs = model.input_list(
        {"wide": wide_ids, "city": city, "device": device, "numeric": numeric}
    )
    model(inputs)  # build, so that each optimizer can be given its part's weights
    wide_opt = FTRL(model.wide_parameters(), lr=0.1)
    deep_opt = Adam(model.deep_parameters(), lr=1e-2)
    model.compile(optimizer=[wide_opt, deep_opt], loss="binary_cross_entropy_with_logits")
    history = model.fit(inputs, y, epochs=8, batch_size=32, verbose=0)

    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    kernel = model.wide.kernel.data[:, 0]
    assert kernel[7 + 2 * 3 + 1] == kernel[7:19].max()  # the cross that decides the label
    assert np.all(kernel[19:] == 0)  # ids no example has: row-sparse updates never touch them
    assert model.predict([a[:3] for a in inputs]).shape == (3, 1)


def test_missing_unknown_and_malformed_inputs_are_named():
    model = WideAndDeep(10, VOCABS, num_numeric=2, name="wd")
    x = features(3)
    with pytest.raises(ValueError, match=r"'wd': expected inputs .*missing \['city'\]"):
        model({k: v for k, v in x.items() if k != "city"})
    with pytest.raises(ValueError, match=r"unknown \['cty'\]"):
        model({**x, "cty": x["city"]})
    with pytest.raises(ValueError, match=r"expected 4 inputs in the order \['wide', 'city'"):
        model([x["wide"], x["city"]])
    with pytest.raises(TypeError, match="expected a dict with keys"):
        model(x["wide"])
    with pytest.raises(ValueError, match=r"input 'city' must be \(N,\) ids, got shape \(3, 1\)"):
        model({**x, "city": x["city"][:, None]})
    with pytest.raises(ValueError, match=r"'numeric' must have 2 columns, got shape \(3, 5\)"):
        model({**x, "numeric": np.zeros((3, 5))})
    with pytest.raises(ValueError, match="one batch size"):
        model({**x, "device": x["device"][:2]})
    with pytest.raises(ValueError, match="SparseLinear .*id 10 is out of range"):
        model({**x, "wide": np.full((3, 3), 10)})
    with pytest.raises(TypeError, match="ids must be an integer array"):
        model({**x, "wide": x["wide"].astype(np.float32)})
    with pytest.raises(ValueError, match="wide_parameters\\(\\) before the weights exist"):
        WideAndDeep(10, None).wide_parameters()


def test_settings_are_checked():
    with pytest.raises(ValueError, match="both parts are off"):
        WideAndDeep(None, None)
    with pytest.raises(ValueError, match="'numeric' is reserved"):
        WideAndDeep(None, {"numeric": 3})
    with pytest.raises(ValueError, match="without '/'"):
        WideAndDeep(None, {"a/b": 3})
    with pytest.raises(ValueError, match="num_numeric must be an integer >= 0"):
        WideAndDeep(5, None, num_numeric=-1)
    with pytest.raises(ValueError, match="SparseLinear: size must be a positive integer"):
        WideAndDeep(0, None)


def test_dropout_acts_in_training_only_and_passes_gradcheck_with_its_mask_fixed():
    td.manual_seed(0)
    kwargs = {"embedding_dim": 3, "hidden": (6, 5), "num_numeric": 2, "dtype": "float64"}
    model = WideAndDeep(10, VOCABS, dropout=0.5, **kwargs)
    plain = WideAndDeep(10, VOCABS, **kwargs)
    x = features(8)
    model(x), plain(x)
    plain.set_weights(model.get_weights())
    np.testing.assert_array_equal(model(x).numpy(), plain(x).numpy())  # inference: no dropout
    td.manual_seed(5)
    first = model(x, training=True).numpy()
    td.manual_seed(5)
    np.testing.assert_array_equal(model(x, training=True).numpy(), first)  # the seed's mask
    assert not np.allclose(first, plain(x, training=True).numpy())
    randomize_constant_weights(model)
    params = model.named_weights(trainable_only=True)
    ids = {key: value for key, value in x.items() if key != "numeric"}

    def with_fixed_mask(numeric):
        td.manual_seed(7)  # the same masks on every call gradcheck makes
        return model({**ids, "numeric": numeric}, training=True)

    assert td.gradcheck(with_fixed_mask, x["numeric"], params=params)


def test_parts_are_the_two_logits_that_call_sums():
    td.manual_seed(0)
    model = WideAndDeep(10, VOCABS, embedding_dim=3, hidden=(4,), num_numeric=2)
    x = features(5)
    model(x)
    for p in model.wide_parameters():  # FTRL's zeros would make the wide logit trivially 0
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape)
    y = model(x).numpy()
    wide, deep = model.parts([td.Tensor(a) for a in model.input_list(x)])
    assert wide.shape == deep.shape == (5, 1)
    assert np.abs(wide.numpy()).min() > 0 and np.abs(deep.numpy()).min() > 0
    np.testing.assert_allclose(wide.numpy() + deep.numpy(), y, rtol=1e-6)
    deep_only = WideAndDeep(None, VOCABS, embedding_dim=3, hidden=(4,), num_numeric=2)
    x_deep = {key: value for key, value in x.items() if key != "wide"}
    deep_only(x_deep)
    none, alone = deep_only.parts([td.Tensor(a) for a in deep_only.input_list(x_deep)])
    assert none is None and np.array_equal(alone.numpy(), deep_only(x_deep).numpy())


def test_a_dropout_rate_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0, 1\), got 1.0"):
        WideAndDeep(10, VOCABS, dropout=1.0)
