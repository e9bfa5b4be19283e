"""Bad input, fuzzed through every public layer, loss and model (issue 8).

For each entry of a table, hypothesis draws inputs of one of these kinds: clean (a legal
input, as a control), a wrong rank, a wrong last-axis size (once the layer is built), a wrong
dtype (integers, booleans or complex numbers where floats are expected; floats, booleans or
complex numbers where integer ids are), NaN and Inf values (ids out of range for id inputs),
an empty batch (N = 0) and a batch of one in training (BatchNormalization's case). Images
are drawn from 1x1 to 5x5, so windows larger than the image come up too. Every input ends in
one of two outcomes:

  - an error: a TypeError or ValueError whose message names the layer's class (or the
    loss's name) and what was received, the shape or the dtype (a model names the path of
    the sub-layer that failed and quotes what that sub-layer received);
  - a legal input: the output a NumPy reference computes from the definition (the loss
    references are the naive textbook formulas, in float64). Models are checked against
    themselves one example at a time: in inference an example's output does not depend on
    the rest of the batch.

and in every case no weight changed: each array of named_weights(), BatchNorm's moving
statistics included, is bitwise what it was before. The one legal change is a training batch
through BatchNormalization, whose moving statistics must then equal the reference update.

The decisions, as a Keras or PyTorch user expects them:
  - NaN and Inf are legal values and follow IEEE arithmetic, as NumPy computes it:
    ReLU(NaN) and a max over a window holding NaN are NaN (PyTorch), an empty batch gives an
    empty output of the right shape, nothing changed (PyTorch's batch norm, Keras's Dense).
  - BatchNormalization in training: one value per channel (N*H*W == 1) is a ValueError
    (PyTorch's "Expected more than 1 value per channel"); a batch whose mean or variance is
    not finite gives the formula's output (NaN) but leaves the moving statistics unchanged,
    so that fit's non-finite loss guard stops the step (tinydeep/layers/normalization.py
    says why this is not an error). A model in training on a non-finite batch therefore
    returns all NaN (the batch statistics spread it to every example), and no moving
    statistic takes a NaN (a BatchNorm behind a strided 1x1 shortcut that steps over the
    bad pixel sees a finite batch, and takes it).
  - Models in inference: an example holding a NaN has NaN in its output (where exactly is
    the layers' business, checked above); one holding only infinities gets no claim
    (ReLU(-inf) = 0 can absorb it); the other examples are unaffected. A failed call
    anywhere inside a model changes nothing: the moving statistics that earlier layers had
    already updated are put back.
  - Losses: predictions must be floating-point (TypeError); labels must be integers
    (ValueError, as before); targets may be booleans, integers or floats. With NaN in an
    input the loss is NaN; with an infinity it is non-finite exactly where the textbook
    formula is (which of NaN and Inf is not promised: PyTorch is not consistent either). An
    empty batch: "sum" gives 0, "none" an empty array, "mean" a ValueError (a mean of
    nothing).
  - Dense takes x (..., IN); Flatten takes any dtype (it only moves values), (N,) -> (N, 1).
  - A failed first call builds nothing: the layer stays unbuilt, its sub-layers too.

FUZZED counts the inputs tried per entry; the last test reports the counts: one per example,
twice the profile's examples per entry (200 under "ci"), 10 more per layer from the
first-call test.

Read in order: the helpers, the table LAYERS and its references, the layer tests, then the
merges, the losses and Wide & Deep, and the count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import avg_pool2d_reference, conv2d_reference, max_pool2d_reference

from tinydeep import layers, losses
from tinydeep.models import (
    IdentityBlock,
    ResidualBlock,
    ResNet,
    Sequential,
    SparseLinear,
    WideAndDeep,
)

FUZZED: Counter = Counter()  # inputs tried, by table entry
NOT_FLOAT = [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128]
NOT_IDS = [np.float32, np.float64, np.bool_, np.complex64]
# Twice the profile's examples per property (200 under "ci"): seven kinds of input share them.
FUZZ = settings(max_examples=2 * settings.default.max_examples)
SPECIALS = st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=1, max_size=3)


# ---- helpers -------------------------------------------------------------------------------


def rng_of(data) -> np.random.Generator:
    """Values come from a drawn seed (fast); hypothesis draws the structure (shapes, kinds)."""
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def snapshot(layer) -> dict[str, np.ndarray]:
    return {name: w.data.copy() for name, w in layer.named_weights().items()}


def assert_bitwise(layer, before: dict, skip=()) -> None:
    """Every weight (but those in `skip`) holds exactly the bytes it held before."""
    after = layer.named_weights()
    assert list(after) == list(before), "the set of weights changed"
    for name, w in after.items():
        if name in skip:
            continue
        a, b = w.data, before[name]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name


def with_specials(data, rng, x: np.ndarray) -> np.ndarray:
    """x with 1 to 3 of its elements set to NaN, Inf or -Inf."""
    x = x.copy()
    for value in data.draw(SPECIALS, label="specials"):
        x.flat[rng.integers(x.size)] = value
    return x


def expect_error(call, error, words) -> None:
    """`call()` raises `error` (a type or a tuple of them) with every one of `words`."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} is not in the message: {message}"


def close(actual, expected, scale: float = 1.0) -> None:
    """Equal up to float32 rounding, with NaN where NaN and each infinity in its place."""
    atol = 2e-5 * max(scale, 1.0)
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=atol, equal_nan=True)


# ---- the table of single-input layers and models -------------------------------------------


def nhwc(channels: int, low: int = 1):
    """Images (n, H, W, channels) with H and W from `low` to 5."""
    return lambda data, n: (
        n,
        data.draw(st.integers(low, 5), label="H"),
        data.draw(st.integers(low, 5), label="W"),
        channels,
    )


def features(last: int | None, ranks=(2, 3)):
    """(n, ..., last) of a drawn rank (`last` None: any last size)."""

    def shape(data, n):
        rank = data.draw(st.sampled_from(ranks), label="rank")
        inner = [data.draw(st.integers(1, 3)) for _ in range(rank - 1)]
        if last is not None and rank >= 2:
            inner[-1] = last
        return (n, *inner)[:rank]

    return shape


def weight(layer, name: str) -> np.ndarray:
    return getattr(layer, name).data.astype(np.float64)


def dense_reference(layer, x, training):
    return x @ weight(layer, "kernel") + weight(layer, "bias")


def conv_reference(relu: bool):
    def reference(layer, x, training):
        y = conv2d_reference(x, weight(layer, "kernel"), layer.strides, layer.padding)
        y = y + weight(layer, "bias")
        return np.maximum(y, 0) if relu else y

    return reference


def batch_statistics(layer, x, training) -> tuple[np.ndarray, np.ndarray, bool]:
    """(mean, var, from_batch): the statistics BatchNorm must normalize x with."""
    if training and x.size:
        axes = tuple(range(x.ndim - 1))
        return x.mean(axis=axes), x.var(axis=axes), True
    return weight(layer, "moving_mean"), weight(layer, "moving_variance"), False


def batch_norm_reference(layer, x, training):
    mean, var, _ = batch_statistics(layer, x, training)
    gamma, beta = weight(layer, "gamma"), weight(layer, "beta")
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def batch_norm_updates(layer, x, training, before) -> dict:
    """The moving statistics after a legal call: Keras's update, skipped (all channels) when
    a batch statistic is not finite, and when there was no batch (empty or inference)."""
    mean, var, from_batch = batch_statistics(layer, x, training)
    if not from_batch or not (np.isfinite(mean).all() and np.isfinite(var).all()):
        return {}
    m = layer.momentum
    return {
        "moving_mean": m * before["moving_mean"] + (1 - m) * mean,
        "moving_variance": m * before["moving_variance"] + (1 - m) * var,
    }


def pool_reference(reference):
    return lambda layer, x, training: reference(x, layer.pool_size, layer.strides, layer.padding)


def sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


@dataclass(frozen=True)
class Entry:
    """One public layer or model, and what its inputs may be."""

    name: str
    make: Callable  # () -> a fresh, unbuilt layer
    shape: Callable  # (data, n) -> a legal input shape with batch size n
    build_shape: tuple  # the batch it is built on
    reference: Callable | None = None  # (layer, x float64, training) -> y; None: a model
    ranks: tuple | None = None  # the legal ranks among 0..5; None: any
    last: int | None = None  # the last axis's size, fixed once built
    ids: int | None = None  # integer ids in [0, ids) instead of floats
    any_dtype: bool = False  # Flatten
    too_small: Callable = lambda shape: False  # an image smaller than a window
    bn_values: Callable | None = None  # shape -> the fewest values per channel a BN sees
    updates: Callable | None = None  # BatchNorm: the moving statistics after a legal call

    @property
    def model(self) -> bool:
        return self.reference is None

    def kinds(self) -> list[str]:
        kinds = ["clean", "dtype", "empty", "out_of_range" if self.ids else "nonfinite"]
        if self.ranks is not None:
            kinds.append("rank")
        if self.last is not None:
            kinds.append("last")
        if self.bn_values is not None:
            kinds.append("batch_of_one")
        return kinds


def per_pixel(stride: int):
    """Values per channel at the smallest BatchNorm of a net with total stride `stride`."""
    return lambda s: s[0] * math.ceil(s[1] / stride) * math.ceil(s[2] / stride)


LAYERS = [
    Entry("Dense", lambda: layers.Dense(4), features(3), (2, 3), dense_reference,
          ranks=(1, 2, 3, 4, 5), last=3),
    Entry("Conv2D", lambda: layers.Conv2D(2, 3), nhwc(2), (2, 3, 3, 2), conv_reference(False),
          ranks=(4,), last=2, too_small=lambda s: min(s[1:3]) < 3),
    Entry("Conv2D-same-stride2-relu",
          lambda: layers.Conv2D(2, 2, strides=2, padding="same", activation="relu"),
          nhwc(2), (2, 3, 3, 2), conv_reference(True), ranks=(4,), last=2),
    Entry("BatchNormalization", lambda: layers.BatchNormalization(momentum=0.9),
          lambda data, n: data.draw(st.sampled_from([(n, 2), nhwc(2)(data, n)])), (2, 3, 3, 2),
          batch_norm_reference, ranks=(2, 4), last=2,
          bn_values=lambda s: math.prod(s[:-1]), updates=batch_norm_updates),
    Entry("ReLU", layers.ReLU, features(None, (0, 1, 2, 3)), (2, 3),
          lambda layer, x, training: np.maximum(x, 0)),
    Entry("Activation-sigmoid", lambda: layers.Activation("sigmoid"), features(None), (2, 3),
          lambda layer, x, training: sigmoid(x)),
    Entry("Activation-tanh", lambda: layers.Activation("tanh"), features(None), (2, 3),
          lambda layer, x, training: np.tanh(x)),
    Entry("Dropout", lambda: layers.Dropout(0.5), features(None, (1, 2, 3)), (2, 3),
          lambda layer, x, training: x),  # training: check_dropout's rule
    Entry("MaxPooling2D", layers.MaxPooling2D, nhwc(2), (2, 3, 3, 2),
          pool_reference(max_pool2d_reference), ranks=(4,), too_small=lambda s: min(s[1:3]) < 2),
    Entry("AveragePooling2D-same", lambda: layers.AveragePooling2D(2, strides=1, padding="same"),
          nhwc(2), (2, 3, 3, 2), pool_reference(avg_pool2d_reference), ranks=(4,)),
    Entry("GlobalAveragePooling2D", layers.GlobalAveragePooling2D, nhwc(2), (2, 3, 3, 2),
          lambda layer, x, training: x.mean(axis=(1, 2)), ranks=(4,)),
    Entry("Flatten", layers.Flatten, features(None, (1, 2, 3, 4)), (2, 3, 2),
          lambda layer, x, training: x.reshape(x.shape[0], math.prod(x.shape[1:])),
          ranks=(1, 2, 3, 4, 5), any_dtype=True),
    Entry("Embedding", lambda: layers.Embedding(5, 3), features(None, (1, 2, 3)), (2,),
          lambda layer, ids, training: weight(layer, "embeddings")[ids], ids=5),
    Entry("SparseLinear", lambda: SparseLinear(6), features(None, (2,)), (2, 2),
          lambda layer, ids, training: weight(layer, "kernel")[ids].sum(axis=1)
          + weight(layer, "bias"), ranks=(2,), ids=6),
    # models: checked against themselves, example by example
    Entry("Sequential",
          lambda: Sequential([layers.Dense(4), layers.BatchNormalization(), layers.ReLU(),
                              layers.Dropout(0.3), layers.Dense(2)]),
          lambda data, n: data.draw(st.sampled_from([(n, 3), nhwc(3)(data, n)])), (2, 3),
          ranks=(2, 4), last=3, bn_values=lambda s: math.prod(s[:-1])),
    Entry("IdentityBlock", lambda: IdentityBlock(2), nhwc(2), (2, 3, 3, 2), ranks=(4,), last=2,
          bn_values=per_pixel(1)),
    Entry("ResidualBlock-projection",
          lambda: ResidualBlock(4, strides=2, shortcut="projection"), nhwc(2), (2, 3, 3, 2),
          ranks=(4,), last=2, bn_values=per_pixel(2)),
    Entry("ResNet", lambda: ResNet(8, width=2, num_classes=3), nhwc(3), (2, 4, 4, 3),
          ranks=(4,), last=3, bn_values=per_pixel(4)),
]  # fmt: skip


def randomize(layer, rng) -> None:
    """Weights away from their initial values (zeros, ones), so each one shows in the
    output; moving variances stay positive."""
    for name, w in layer.named_weights().items():
        if name.endswith("moving_variance"):
            w.data[...] = rng.uniform(0.5, 2.0, w.shape)
        elif name.endswith("gamma"):
            w.data[...] = rng.uniform(0.5, 1.5, w.shape)
        else:
            w.data[...] += rng.normal(0.0, 0.3, w.shape).astype(w.dtype)


def values(entry: Entry, rng, shape, dtype=None) -> np.ndarray:
    """A legal input of `shape`: ids in range, or floats in [-3, 3] (float32 by default)."""
    if entry.ids:
        return rng.integers(0, entry.ids, shape).astype(dtype or np.int64)
    return rng.uniform(-3, 3, shape).astype(dtype or np.float32)


def built(entry: Entry, rng):
    layer = entry.make()
    layer(values(entry, rng, entry.build_shape))
    randomize(layer, rng)
    return layer


def draw_case(data, entry: Entry, layer, rng):
    """(kind, x, training, error): a drawn input and, if it is not legal, (the error type,
    the words its message must hold); error is None for a legal input."""
    kind = data.draw(st.sampled_from(entry.kinds()), label="kind")
    n = 0 if kind == "empty" else 1 if kind == "batch_of_one" else data.draw(st.integers(1, 3))
    training = kind == "batch_of_one" or data.draw(st.booleans(), label="training")
    shape = entry.shape(data, n)
    cls = type(layer).__name__
    x = values(entry, rng, shape)
    if kind == "rank":
        rank = data.draw(st.sampled_from([r for r in range(6) if r not in entry.ranks]))
        shape = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
        if entry.last is not None and rank:
            shape = (*shape[:-1], entry.last)
        # a model's message quotes the sub-layer's input: (3,) reaches a BatchNorm as (4,)
        words = [cls, "got shape"] + ([] if entry.model else [str(shape)])
        return kind, values(entry, rng, shape), training, (ValueError, words)
    if kind == "last":
        size = data.draw(st.integers(1, 6).filter(lambda s: s != entry.last), label="last")
        x = values(entry, rng, (*shape[:-1], size))
        return kind, x, training, (ValueError, [cls, str(x.shape)])
    if kind == "dtype":
        dtype = np.dtype(data.draw(st.sampled_from(NOT_IDS if entry.ids else NOT_FLOAT)))
        x = rng.integers(0, 2, shape).astype(dtype)
        if not entry.any_dtype:
            return kind, x, training, (TypeError, [cls, str(dtype)])
    if kind == "nonfinite" and x.size:
        x = with_specials(data, rng, x)
    if kind == "out_of_range" and x.size:
        bad = data.draw(st.sampled_from([-1, -7, entry.ids, entry.ids + 9]), label="id")
        x.flat[rng.integers(x.size)] = bad
        return kind, x, training, (ValueError, [cls, str(bad)])
    if entry.too_small(shape):
        return kind, x, training, (ValueError, [cls, str(shape), "larger than"])
    if training and entry.bn_values is not None and entry.bn_values(shape) == 1:
        words = [cls, "more than one value per channel"] + ([] if entry.model else [str(shape)])
        return kind, x, training, (ValueError, words)
    return kind, x, training, None


def check_layer(entry: Entry, layer, x, training, y, before) -> None:
    """A legal input through a layer: the reference's output and weights."""
    x64 = x.astype(np.float64) if x.dtype.kind == "f" else x
    if entry.any_dtype:
        np.testing.assert_array_equal(y.data, entry.reference(layer, x, training))
        assert y.dtype == x.dtype
    elif isinstance(layer, layers.Dropout) and training:
        check_dropout(layer, x, y.data)
    else:
        assert y.dtype == layer.dtype
        close(y.data, entry.reference(layer, x64, training))
    expected = entry.updates(layer, x64, training, before) if entry.updates else {}
    assert_bitwise(layer, before, skip=expected)
    for name, value in expected.items():
        close(layer.named_weights()[name].data, value)


def check_dropout(layer, x, y) -> None:
    """Training: each element 0 or x / (1 - rate); NaN stays NaN and a dropped infinity is
    NaN too (inf * 0), as in PyTorch and Keras."""
    scaled = x / np.float32(1 - layer.rate)
    dropped = np.where(np.isfinite(x), 0, np.nan)
    assert np.all((y == scaled) | (y == dropped) | (np.isnan(y) & np.isnan(scaled + dropped)))


def check_model(layer, x, training, y, before) -> None:
    """A legal input through a model (see the module docstring for the rules)."""
    if training and x.size:
        assert y.shape[0] == x.shape[0]
        moving = [name for name in before if "moving_" in name]  # these follow the batch
        assert_bitwise(layer, before, skip=moving)
        # A BatchNorm that saw a NaN keeps its statistics; one that saw none (a strided 1x1
        # shortcut can step over the NaN pixel) takes its batch: NaN never gets in.
        assert all(np.isfinite(layer.named_weights()[name].data).all() for name in moving)
        if np.isfinite(x).all():
            assert np.isfinite(y.data).all()
        else:  # the batch statistics spread it to every example and channel
            assert np.isnan(y.data).all()
        return
    assert_bitwise(layer, before)  # inference, or an empty batch in training
    one = layer(np.zeros((1, *x.shape[1:]), x.dtype)).data  # the shape of one example's output
    assert y.shape == (x.shape[0], *one.shape[1:]) and y.dtype == layer.dtype
    for i in range(x.shape[0]):
        if np.isnan(x[i]).any():  # NaN survives every op: + * max, ReLU
            assert np.isnan(y.data[i]).any()
        elif np.isfinite(x[i]).all():
            alone = layer(x[i : i + 1]).data[0]
            close(y.data[i], alone, scale=np.abs(alone).max())
    assert_bitwise(layer, before)


# ---- the layer and model tests --------------------------------------------------------------


@pytest.mark.parametrize("entry", LAYERS, ids=lambda e: e.name)
@given(data=st.data())
@FUZZ
def test_bad_input_to_a_layer_or_model(entry, data):
    """Each drawn input raises the typed, named error the table predicts, or gives the
    reference's output; either way no weight changes but the moving statistics that a
    legal training batch updates."""
    FUZZED[entry.name] += 1
    rng = rng_of(data)
    layer = built(entry, rng)
    _, x, training, error = draw_case(data, entry, layer, rng)
    before = snapshot(layer)
    x_copy = x.copy()
    with np.errstate(all="ignore"):
        if error is not None:
            expect_error(lambda: layer(x, training=training), *error)
            assert_bitwise(layer, before)
        else:
            y = layer(x, training=training)
            if entry.model:
                check_model(layer, x, training, y, before)
            else:
                check_layer(entry, layer, x, training, y, before)
    np.testing.assert_array_equal(x, x_copy)  # the input is not written to


FIRST_CALL = [e for e in LAYERS if not e.any_dtype]


@pytest.mark.parametrize("entry", FIRST_CALL, ids=lambda e: e.name)
@given(data=st.data())
@settings(max_examples=10)  # each example builds a layer twice: 10 are plenty for a rollback
def test_a_failed_first_call_builds_nothing(entry, data):
    """A layer whose very first input is bad (a wrong dtype, or a wrong rank) raises, and is
    left unbuilt, with its sub-layers: the next, good input builds it on its own shape."""
    FUZZED[entry.name] += 1
    rng = rng_of(data)
    layer = entry.make()
    wrong = [r for r in range(6) if entry.ranks is not None and r not in entry.ranks]
    if wrong and data.draw(st.booleans(), label="rank, not dtype"):
        shape = tuple(
            data.draw(st.integers(1, 3)) for _ in range(data.draw(st.sampled_from(wrong)))
        )
        bad = values(entry, rng, shape)
    else:
        dtype = data.draw(st.sampled_from(NOT_IDS if entry.ids else NOT_FLOAT))
        bad = values(entry, rng, entry.build_shape).astype(dtype)
    with pytest.raises((TypeError, ValueError), match=type(layer).__name__):
        layer(bad, training=data.draw(st.booleans()))
    for _, sub, _ in layer.walk():
        assert not sub.built and sub.named_weights() == {} and sub.input_shape is None, sub
    good = values(entry, rng, entry.build_shape)
    layer(good)
    fresh = entry.make()
    fresh(good)
    assert {k: w.shape for k, w in layer.named_weights().items()} == {
        k: w.shape for k, w in fresh.named_weights().items()
    }


def test_a_failure_deep_in_a_model_puts_back_what_earlier_layers_updated():
    """A batch of one 2x2 image reaches ResNet-8's third stage as 1x1: the BatchNorm there
    raises, after the stem's and the first stage's BatchNorms took their batch statistics;
    those are put back, and the message says where it happened."""
    model = ResNet(8, width=2, num_classes=3, name="resnet")
    model(np.ones((2, 4, 4, 3), np.float32))
    before = snapshot(model)
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 3)).astype(np.float32)
    with pytest.raises(
        ValueError, match=r"ResNet 'resnet', at blocks/1/bn1: Batch.*\(1, 1, 1, 4\)"
    ):
        model(x, training=True)
    assert_bitwise(model, before)


# ---- merges: Add and Concatenate --------------------------------------------------------------


@pytest.mark.parametrize("merge", ["Add", "Concatenate"])
@given(data=st.data())
@FUZZ
def test_bad_input_to_a_merge(merge, data):
    """Add takes tensors of one shape, Concatenate tensors that agree off the last axis: a
    mismatch, a wrong dtype or fewer tensors than needed is an error naming the layer and
    the shapes (or dtype) received; NaN, Inf and empty batches are legal and give NumPy's
    sum or concatenation."""
    FUZZED[merge] += 1
    rng = rng_of(data)
    layer = getattr(layers, merge)()
    n = data.draw(st.integers(0, 3))
    count = data.draw(st.integers(1 if merge == "Concatenate" else 2, 3))
    base = (n, *[data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2)))])
    lasts = [data.draw(st.integers(1, 3)) if merge == "Concatenate" else 2 for _ in range(count)]
    xs = [rng.uniform(-3, 3, (*base, last)).astype(np.float32) for last in lasts]
    kind = data.draw(st.sampled_from(["clean", "shape", "dtype", "nonfinite", "count"]))
    error = None
    if kind == "shape":  # one tensor differs where it must not
        i, axis = rng.integers(count), data.draw(st.integers(0, len(base)))
        if merge == "Add" or axis < len(base):
            shape = list(xs[i].shape)
            shape[axis] += 1
            xs[i] = np.zeros(shape, np.float32)
            if merge == "Add" or len(xs) > 1:
                error = (ValueError, [merge, str(tuple(shape))])
    elif kind == "dtype":
        i, dtype = rng.integers(count), np.dtype(data.draw(st.sampled_from(NOT_FLOAT)))
        xs[i] = xs[i].astype(dtype)
        error = (TypeError, [merge, str(dtype)])
    elif kind == "nonfinite" and xs[0].size:
        xs[0] = with_specials(data, rng, xs[0])
    elif kind == "count":
        few = data.draw(st.sampled_from([xs[:1], xs[0], []]) if merge == "Add" else st.just([]))
        error, xs = (ValueError, [merge, "expected a list of at least"]), few
    with np.errstate(all="ignore"):
        if error is not None:
            expect_error(lambda: layer(xs), *error)
        else:
            y = layer(xs)
            reference = sum(xs[1:], xs[0]) if merge == "Add" else np.concatenate(xs, axis=-1)
            np.testing.assert_array_equal(y.data, reference)
    assert layer.named_weights() == {}


# ---- losses --------------------------------------------------------------------------------------


def ce_reference(z, labels):
    """-log softmax(z)[label], from the definition: log(sum(exp(z))) - z[label]."""
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels.reshape(-1)]


def scce_reference(p, labels):
    """Keras: -log of p renormalized and clipped to [1e-7, 1 - 1e-7], at the label."""
    q = np.clip(p / p.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    return -np.log(q[np.arange(len(p)), labels.reshape(-1)])


def bce_reference(z, t):
    s = sigmoid(z)
    return -t * np.log(s) - (1 - t) * np.log(1 - s)


LOSSES = {  # name: (classes?, reference)
    "cross_entropy": (True, ce_reference),
    "sparse_categorical_crossentropy": (True, scce_reference),
    "binary_cross_entropy_with_logits": (False, bce_reference),
    "mse": (False, lambda p, t: (p - t) ** 2),
}


def reduce(losses_: np.ndarray, reduction: str):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](losses_)


@pytest.mark.parametrize("name", list(LOSSES))
@given(data=st.data())
@FUZZ
def test_bad_input_to_a_loss(name, data):
    """Each loss, looked up by name, on drawn predictions and targets: the error the
    module docstring's rules predict, naming the loss and what was received, or the
    reference's value (with NaN and Inf in the same places up to NaN-versus-Inf)."""
    FUZZED[name] += 1
    loss = losses.get(name)
    classes, reference = LOSSES[name]
    rng = rng_of(data)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    kinds = ["clean", "rank", "shape", "dtype", "target_dtype", "nonfinite", "empty"]
    kind = data.draw(st.sampled_from(kinds + ["out_of_range"] * (name != "mse")), label="kind")
    n = 0 if kind == "empty" else data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    if classes:
        k = data.draw(st.integers(1, 4))
        low = 0.01 if name == "sparse_categorical_crossentropy" else -3  # probabilities > 0
        pred = rng.uniform(low, 3, (n, k)).astype(dtype)
        target = rng.integers(0, k, n)
    else:
        shape = (n, *[data.draw(st.integers(1, 3)) for _ in range(data.draw(st.integers(0, 2)))])
        pred = rng.uniform(-3, 3, shape).astype(dtype)
        target = rng.uniform(0, 1, shape)
    error = None
    if kind == "rank":  # scores must be (N, K); elementwise losses take any rank
        if classes:
            pred = pred.reshape(-1) if data.draw(st.booleans()) else pred[..., None]
            error = (ValueError, [name, str(pred.shape)])
        else:
            pred, target = pred.reshape(-1), target.reshape(-1)
    elif kind == "shape":  # labels (N,) or (N, 1); targets exactly the predictions' shape
        if classes and data.draw(st.booleans(), label="Keras's (N, 1) labels"):
            target = target[:, None]
        else:
            target = np.zeros((n + 1,), target.dtype) if classes else target[..., None]
            error = (ValueError, [name, str(target.shape)])
    elif kind == "dtype":  # predictions that are not floating-point
        dtype = np.dtype(data.draw(st.sampled_from(NOT_FLOAT)))
        pred = rng.integers(0, 2, pred.shape).astype(dtype)
        error = (TypeError, [name, str(dtype)])
    elif kind == "target_dtype":
        if classes:  # labels are integer class indices
            dtype = np.dtype(data.draw(st.sampled_from(NOT_IDS)))
            target, error = target.astype(dtype), (ValueError, [name, str(dtype)])
        else:  # booleans, integers or floats; not complex numbers
            dtype = np.dtype(data.draw(st.sampled_from([np.bool_, np.int64, np.complex128])))
            target = rng.integers(0, 2, target.shape).astype(dtype)
            if dtype.kind == "c":
                error = (TypeError, [name, str(dtype)])
    elif kind == "nonfinite" and pred.size:
        pred = with_specials(data, rng, pred)
        if not classes and data.draw(st.booleans(), label="in the targets too"):
            target = with_specials(data, rng, target)
            if name != "mse" and np.isinf(target).any():  # targets must be in [0, 1]
                error = (ValueError, [name, "targets must be in [0, 1]"])
    elif kind == "out_of_range" and n:
        i = rng.integers(target.size)
        if classes:
            target.flat[i] = data.draw(st.sampled_from([-1, k]))
            error = (ValueError, [name, str(target.flat[i])])
        else:
            target.flat[i] = data.draw(st.sampled_from([-0.5, 1.5]))
            error = (ValueError, [name, "targets must be in [0, 1]", str(target.flat[i])])
    if error is None and reduction == "mean" and pred.size == 0:
        error = (ValueError, [name, "empty batch", "(0"])
    copies = (pred.copy(), target.copy())
    with np.errstate(all="ignore"):
        if error is not None:
            expect_error(lambda: loss(pred, target, reduction=reduction), *error)
        else:
            y = loss(pred, target, reduction=reduction).data
            real = target if classes else target.astype(np.float64)
            expected = reduce(reference(pred.astype(np.float64), real), reduction)
            assert y.dtype == pred.dtype
            finite = np.isfinite(expected)
            np.testing.assert_array_equal(np.isfinite(y), finite)  # NaN/Inf where the math has
            nan_in = np.isnan(pred) if classes else np.isnan(pred) | np.isnan(real)
            nan_in = nan_in.any(axis=1) if classes else nan_in  # a NaN spoils its row
            assert np.isnan(y)[nan_in if reduction == "none" else nan_in.any()].all()
            rtol = 1e-5 if pred.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(y[finite], expected[finite], rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(pred, copies[0])  # nothing written to the inputs
    np.testing.assert_array_equal(target, copies[1])


# ---- Wide & Deep: a dict of inputs ---------------------------------------------------------------


def wide_deep_inputs(rng, n: int) -> dict:
    """A legal batch of n for the model below: 2 wide ids, 2 columns, 2 numeric values."""
    return {
        "wide": rng.integers(0, 8, (n, 2)),
        "city": rng.integers(0, 4, n),
        "device": rng.integers(0, 3, n),
        "numeric": rng.uniform(-3, 3, (n, 2)).astype(np.float32),
    }


@given(data=st.data())
@FUZZ
def test_bad_input_to_wide_and_deep(data):
    """Wide & Deep's four inputs, one of them made bad at a time: a wrong rank, a wrong
    dtype, ids out of range, a wrong numeric width, batch sizes that differ, too few inputs:
    an error naming WideAndDeep and what was received. NaN and Inf in the numeric columns,
    integer or boolean numeric columns (cast) and an empty batch are legal; each example's
    output is the model's on that example alone."""
    FUZZED["WideAndDeep"] += 1
    rng = rng_of(data)
    model = WideAndDeep(8, {"city": 4, "device": 3}, embedding_dim=2, hidden=(3,), num_numeric=2)
    model(wide_deep_inputs(rng, 2))
    randomize(model, rng)
    before = snapshot(model)
    n = data.draw(st.integers(0, 3))
    inputs = wide_deep_inputs(rng, n)
    key = data.draw(st.sampled_from(list(inputs)), label="input")
    kind = data.draw(st.sampled_from(["clean", "rank", "dtype", "nonfinite", "out_of_range",
                                      "width", "batch", "count"]))  # fmt: skip
    x = inputs[key]
    error = None
    if kind == "rank":
        inputs[key] = x[..., None] if data.draw(st.booleans()) or x.ndim == 1 else x[:, 0]
        error = (ValueError, ["WideAndDeep", str(inputs[key].shape)])
    elif kind == "dtype":
        dtype = np.dtype(data.draw(st.sampled_from(NOT_FLOAT if key == "numeric" else NOT_IDS)))
        inputs[key] = x.astype(dtype)
        if key != "numeric" or dtype.kind == "c":  # integer, boolean numeric columns: cast
            error = (TypeError, ["WideAndDeep", str(dtype)])
    elif kind == "nonfinite" and key == "numeric" and n:
        inputs[key] = with_specials(data, rng, x)
    elif kind == "out_of_range" and key != "numeric" and n:
        bad = data.draw(st.sampled_from([-1, 8]))
        inputs[key] = x.copy()
        inputs[key].flat[rng.integers(x.size)] = bad
        error = (ValueError, ["WideAndDeep", str(bad)])
    elif kind == "width" and key == "numeric":
        inputs[key] = np.zeros((n, data.draw(st.sampled_from([1, 3]))), np.float32)
        error = (ValueError, ["WideAndDeep", str(inputs[key].shape)])
    elif kind == "batch":
        inputs[key] = np.concatenate([x, x[:1] if n else np.zeros((1, *x.shape[1:]), x.dtype)])
        error = (ValueError, ["WideAndDeep", "one batch size", f"'{key}': {n + 1}"])
    elif kind == "count":
        del inputs[key]
        error = (ValueError, ["WideAndDeep", "missing", key])
    as_list = data.draw(st.booleans(), label="as a list")
    given_inputs = list(inputs.values()) if as_list and kind != "count" else inputs
    with np.errstate(all="ignore"):
        if error is not None:
            expect_error(lambda: model(given_inputs, training=True), *error)
        else:
            y = model(given_inputs, training=data.draw(st.booleans())).data
            assert y.shape == (n, 1) and y.dtype == np.float32
            for i in range(n):
                row = {k: v[i : i + 1] for k, v in inputs.items()}
                if np.isnan(row["numeric"].astype(np.float32)).any():
                    assert np.isnan(y[i]).all()
                elif np.isfinite(row["numeric"].astype(np.float32)).all():
                    close(y[i], model(row).data[0])
    assert_bitwise(model, before)


# ---- the count ----------------------------------------------------------------------------------


def test_every_entry_was_fuzzed():
    """Runs last (pytest keeps the file's order): every entry of every table was fuzzed
    with at least FUZZ.max_examples inputs. Skipped when only part of the file ran."""
    names = [e.name for e in LAYERS] + ["Add", "Concatenate", *LOSSES, "WideAndDeep"]
    print("\ninputs fuzzed per entry:", dict(FUZZED))
    if any(name not in FUZZED for name in names):
        pytest.skip("run the whole file to count the inputs")
    least = FUZZ.max_examples
    assert min(FUZZED[name] for name in names) >= least
