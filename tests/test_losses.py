"""tinydeep/losses.py: values against NumPy (and PyTorch), gradients, stability, errors, get()."""

from __future__ import annotations

import numpy as np
import pytest
from devices import TORCH_SKIP_REASON
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import arrays, floats, shapes

import tinydeep as td
from tinydeep import losses

reductions = st.sampled_from(["mean", "sum", "none"])


def reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](values)


def numpy_cross_entropy(logits, labels):
    """-log softmax at the label, per example, the plain way (fine for small logits)."""
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(labels)), labels])


@st.composite
def logits_and_labels(draw):
    n, k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return draw(arrays((n, k))), labels


# ---- cross_entropy -------------------------------------------------------------------------------


@given(logits_and_labels(), reductions)
def test_cross_entropy(case, reduction):
    logits, labels = case
    y = check_gradients(lambda t, l: losses.cross_entropy(t, l, reduction=reduction), *case)
    expected = reduce(numpy_cross_entropy(logits, labels), reduction)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-14)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits = td.Tensor(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), requires_grad=True)
    losses.cross_entropy(logits, [2, 0]).backward()
    softmax = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (softmax - [[0, 0, 1], [1, 0, 0]]) / 2, rtol=1e-14)


def test_cross_entropy_is_stable_at_huge_logits():
    logits = td.Tensor(np.array([[1e4, 0.0, -1e4]] * 3, np.float32), requires_grad=True)
    per_example = losses.cross_entropy(logits, np.array([0, 1, 2]), reduction="none")
    np.testing.assert_array_equal(per_example.data, [0.0, 1e4, 2e4])
    loss = losses.cross_entropy(logits, np.array([0, 1, 2]))
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(1e4)
    loss.backward()
    np.testing.assert_allclose(logits.grad, [[0, 0, 0], [1, -1, 0], [1, 0, -1]] / np.float32(3))


def test_cross_entropy_takes_keras_shaped_labels_lists_and_tensors():
    logits = np.array([[2.0, 1.0], [0.5, 3.0]])
    expected = numpy_cross_entropy(logits, np.array([0, 1])).mean()
    for labels in ([0, 1], np.array([[0], [1]]), td.Tensor(np.array([0, 1], np.int32))):
        assert losses.cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-14)


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    rng = np.random.default_rng(0)
    logits, labels = 5 * rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    for reduction in ("mean", "sum", "none"):
        ours = td.Tensor(logits, requires_grad=True)
        y = losses.cross_entropy(ours, labels, reduction=reduction)
        dy = rng.standard_normal(y.shape)
        y.backward(dy)
        theirs = torch.tensor(logits, requires_grad=True)
        yt = torch.nn.functional.cross_entropy(theirs, torch.tensor(labels), reduction=reduction)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_cross_entropy_errors_name_the_loss_the_argument_and_both_sides():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\).*got 4"):
        losses.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be in \[0, 4\).*got -1"):
        losses.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must be integer.*float64"):
        losses.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must have shape \(3,\).*\(2,\)"):
        losses.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be \(N, K\).*\(4,\)"):
        losses.cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be one of"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="cross_entropy: cannot average over an empty batch"):
        losses.cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))


# ---- binary_cross_entropy_with_logits ------------------------------------------------------------


@st.composite
def logits_and_targets(draw):
    # targets kept inside (0, 1): gradcheck perturbs them both ways, and the range is checked
    shape = draw(shapes(max_dims=2))
    return draw(arrays(shape)), draw(arrays(shape, floats(0.01, 0.99)))


@given(logits_and_targets(), reductions)
def test_binary_cross_entropy_with_logits(case, reduction):
    z, t = case
    y = check_gradients(
        lambda a, b: losses.binary_cross_entropy_with_logits(a, b, reduction=reduction), z, t
    )
    p = 1 / (1 + np.exp(-z))
    expected = reduce(-t * np.log(p) - (1 - t) * np.log(1 - p), reduction)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-14)


def test_binary_cross_entropy_is_stable_at_huge_logits():
    z = td.Tensor(np.array([1e4, -1e4, 0.0, 1e4], np.float32), requires_grad=True)
    t = np.array([0.0, 1.0, 0.5, 1.0])  # float64 targets do not make the loss float64
    per_element = losses.binary_cross_entropy_with_logits(z, t, reduction="none")
    np.testing.assert_allclose(per_element.data, [1e4, 1e4, np.log(2), 0.0], rtol=1e-7)
    loss = losses.binary_cross_entropy_with_logits(z, t)
    assert loss.dtype == np.float32
    loss.backward()
    np.testing.assert_allclose(z.grad, [0.25, -0.25, 0.0, 0.0])


def test_binary_cross_entropy_takes_integer_labels_as_targets():
    z = td.Tensor(np.array([[0.3], [-1.2]], np.float32), requires_grad=True)
    loss = losses.binary_cross_entropy_with_logits(z, np.array([[1], [0]]))
    p = 1 / (1 + np.exp(-z.data.astype(np.float64)))
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(-(np.log(p[0, 0]) + np.log(1 - p[1, 0])) / 2, rel=1e-6)


def test_binary_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    rng = np.random.default_rng(0)
    z, t = 20 * rng.standard_normal((5, 3)), rng.uniform(size=(5, 3))
    for reduction in ("mean", "sum", "none"):
        ours_z, ours_t = td.Tensor(z, requires_grad=True), td.Tensor(t, requires_grad=True)
        y = losses.binary_cross_entropy_with_logits(ours_z, ours_t, reduction=reduction)
        dy = rng.standard_normal(y.shape)
        y.backward(dy)
        zt, tt = torch.tensor(z, requires_grad=True), torch.tensor(t, requires_grad=True)
        yt = torch.nn.functional.binary_cross_entropy_with_logits(zt, tt, reduction=reduction)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours_z.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(ours_t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_binary_cross_entropy_errors():
    name = "binary_cross_entropy_with_logits"
    with pytest.raises(ValueError, match=rf"{name}: targets must have the shape of logits, "
                       r"\(4, 1\), got \(4,\)"):  # fmt: skip
        losses.binary_cross_entropy_with_logits(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=rf"{name}: targets must be in \[0, 1\].*from 0.0 to 2.0"):
        losses.binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of"):
        losses.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2), reduction="max")


# ---- mse -----------------------------------------------------------------------------------------


@given(st.data(), reductions)
def test_mse(data, reduction):
    shape = data.draw(shapes(max_dims=2))
    p, t = data.draw(arrays(shape)), data.draw(arrays(shape))
    y = check_gradients(lambda a, b: losses.mse(a, b, reduction=reduction), p, t)
    np.testing.assert_allclose(y.data, reduce((p - t) ** 2, reduction), rtol=1e-13, atol=1e-15)


def test_mse_keeps_the_prediction_dtype_and_rejects_broadcasting():
    loss = losses.mse(td.Tensor(np.ones((2, 1), np.float32)), np.array([[0], [3]]))
    assert loss.dtype == np.float32 and loss.item() == 2.5
    with pytest.raises(ValueError, match=r"mse: targets must have the shape of predictions, "
                       r"\(3, 1\), got \(3,\)"):  # fmt: skip
        losses.mse(np.zeros((3, 1)), np.zeros(3))


# ---- get -----------------------------------------------------------------------------------------


def test_get_knows_the_keras_names():
    assert losses.get("mse") is losses.mse
    assert losses.get("cross_entropy") is losses.cross_entropy
    scce = losses.sparse_categorical_crossentropy
    assert losses.get("sparse_categorical_crossentropy") is scce
    bce = losses.binary_cross_entropy_with_logits
    assert losses.get("binary_cross_entropy_with_logits") is bce
    assert losses.get("binary_crossentropy_from_logits") is bce
    assert losses.get(losses.mse) is losses.mse  # a callable passes through
    with pytest.raises(ValueError, match=r"losses.get: unknown loss 'hinge'; known: \["):
        losses.get("hinge")


def test_keras_sparse_categorical_crossentropy_takes_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    probabilities = td.softmax(td.Tensor(logits)).data
    loss = losses.sparse_categorical_crossentropy(probabilities, labels)
    np.testing.assert_allclose(loss.item(), losses.cross_entropy(logits, labels).item(), rtol=1e-12)
    # clipped as in Keras: a zero probability gives -log(1e-7), not infinity
    hard = np.array([[1.0, 0.0], [0.0, 1.0]])
    clipped = losses.sparse_categorical_crossentropy(hard, np.array([1, 1])).item()
    np.testing.assert_allclose(clipped, (-np.log(1e-7) - np.log(1 - 1e-7)) / 2, rtol=1e-12)
    assert td.gradcheck(
        lambda t: losses.sparse_categorical_crossentropy(td.softmax(t), labels), logits
    )
    with pytest.raises(
        ValueError,
        match=r"sparse_categorical_crossentropy: labels must be in "
        r"\[0, 4\)",
    ):
        losses.sparse_categorical_crossentropy(probabilities, np.array([0, 4, 1, 1, 2]))
