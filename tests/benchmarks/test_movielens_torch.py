"""benchmarks/movielens_torch.py, the PyTorch twin of examples/movielens.py: its FTRL against
tinydeep.optim.FTRL on the same gradients, and its model against tinydeep's WideAndDeep with
the same weights, through one training step of both optimizers. Skipped without PyTorch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from devices import TORCH_SKIP_REASON

import tinydeep as td
from tinydeep import losses, optim
from tinydeep.models import WideAndDeep
from tinydeep.sparse import RowSparseGrad

torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)

TWIN = Path(__file__).resolve().parents[2] / "benchmarks" / "movielens_torch.py"
spec = importlib.util.spec_from_file_location("movielens_torch", TWIN)
twin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(twin)


# (lr, l1, l2, beta, lr_power, initial_accumulator_value): the example's (3.0, L1 1e-3 but
# here larger, so that some weights are held at 0), every term on, and another lr_power
@pytest.mark.parametrize(
    "lr, l1, l2, beta, lr_power, n0",
    [
        (3.0, 0.05, 0.0, 0.0, -0.5, 0.1),
        (0.5, 0.05, 0.1, 0.5, -0.5, 0.1),
        (0.2, 0.02, 0.3, 0.0, -0.7, 0.0),
    ],
)
def test_ftrl_matches_tinydeeps_step_for_step(lr, l1, l2, beta, lr_power, n0):
    """A (8, 1) table given row-sparse gradients in tinydeep (as the wide part gets them) and
    their dense form in torch, and a bias with dense ones, over 8 steps in float64."""
    rng = np.random.default_rng(0)
    table = td.Tensor(np.zeros((8, 1)), requires_grad=True)
    bias = td.Tensor(np.zeros(1), requires_grad=True)
    settings = {"lr": lr, "l1": l1, "l2": l2, "beta": beta, "lr_power": lr_power}
    settings["initial_accumulator_value"] = n0
    ours = optim.FTRL([table, bias], **settings)
    t_table = torch.zeros((8, 1), dtype=torch.float64, requires_grad=True)
    t_bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    theirs = twin.FTRL([t_table, t_bias], **settings)
    for step in range(8):
        # rows 0-3 at random (repeats add up), row 5 each step with a gradient too small to
        # get past L1, rows 4, 6, 7 never
        rows = np.append(rng.choice(4, size=3), 5)
        values = rng.standard_normal((4, 1)) * [[1.0], [0.2], [1.0], [0.004]]
        table.grad = RowSparseGrad(rows, values, (8, 1))
        bias.grad = rng.standard_normal(1)
        t_table.grad = torch.from_numpy(table.grad.to_dense())
        t_bias.grad = torch.from_numpy(bias.grad.copy())
        ours.step()
        theirs.step()
        np.testing.assert_allclose(t_table.detach().numpy(), table.data, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(t_bias.detach().numpy(), bias.data, rtol=1e-12, atol=1e-15)
    w = t_table.detach().numpy()[:, 0]
    assert np.all(w[[4, 6, 7]] == 0)  # untouched rows did not move
    assert np.all(w[:4] != 0) and w[5] == 0  # L1 holds row 5 at exactly 0


def test_ftrl_refuses_bad_settings_by_name():
    with pytest.raises(ValueError, match="FTRL: lr must be > 0, got 0"):
        twin.FTRL([torch.zeros(1, requires_grad=True)], lr=0)
    with pytest.raises(ValueError, match="FTRL: lr_power must be <= 0, got 0.5"):
        twin.FTRL([torch.zeros(1, requires_grad=True)], lr=0.1, lr_power=0.5)


def movielens_like_batch(n: int, rng) -> dict[str, np.ndarray]:
    return {
        "wide": rng.integers(0, 12, (n, 2)),
        "user": rng.integers(0, 5, n),
        "item": rng.integers(0, 7, n),
        "numeric": rng.standard_normal((n, 3)),
    }


class Settings:  # the example's constants that build() reads, small
    EMBEDDING_DIM, HIDDEN, DROPOUT = 4, (6, 5), 0.0
    WIDE_LR, WIDE_L1, BATCH_SIZE, DEEP_LR = {"implicit": 0.5}, 1e-3, 16, 0.01


@pytest.mark.parametrize("kind", ["wide", "deep", "wide_deep"])
def test_the_twin_is_tinydeeps_model_and_training_step(kind):
    """With tinydeep's weights copied in (no dropout): the same logits and parts, and after
    two steps of FTRL and Adam on the logistic loss, the same weights' logits again."""
    rng = np.random.default_rng(1)
    x, y = movielens_like_batch(16, rng), rng.integers(0, 2, (16, 1)).astype(np.float64)
    sizes = {"wide_size": 12, "vocab_sizes": {"user": 5, "item": 7}, "num_numeric": 3}
    s = Settings
    ours = WideAndDeep(
        wide_size=sizes["wide_size"] if kind != "deep" else None,
        vocab_sizes=sizes["vocab_sizes"] if kind != "wide" else None,
        embedding_dim=s.EMBEDDING_DIM,
        hidden=s.HIDDEN,
        num_numeric=sizes["num_numeric"] if kind != "wide" else 0,
        dtype="float64",
    )
    inputs = [x[name] for name in ours.input_names]
    ours(inputs)  # build
    for w in ours.wide_parameters():  # FTRL's weights start at 0: make the copy count
        w.data[...] = rng.standard_normal(w.shape) * 0.1
    steppers = []
    if kind != "deep":
        steppers.append(optim.FTRL(ours.wide_parameters(), lr=0.5, l1=1e-3))
    if kind != "wide":
        steppers.append(optim.Adam(ours.deep_parameters(), lr=0.01))

    model, optimizers = twin.build(kind, "implicit", sizes, s, s.BATCH_SIZE)
    model = model.double()
    named = {name: w.data for name, w in ours.named_weights().items()}
    twin.load_tinydeep_weights(model, named)
    assert model.input_names == ours.input_names
    # FTRL's first step replaces a nonzero start by its function of (z, n): so does the twin's
    t_x = twin.as_tensors(x)
    for _ in range(2):
        np.testing.assert_allclose(
            model.predict(inputs), ours.predict(inputs, batch_size=16), rtol=1e-10, atol=1e-12
        )
        loss = losses.binary_cross_entropy_with_logits(ours(inputs, training=True), y)
        for opt in steppers:
            opt.zero_grad()
        loss.backward()
        for opt in steppers:
            opt.step()
        t_loss = twin.train_step(
            model, optimizers, twin.loss_function("implicit"), t_x, torch.from_numpy(y)
        )
        assert t_loss.item() == pytest.approx(loss.item(), rel=1e-10)
    np.testing.assert_allclose(
        model.predict(inputs), ours.predict(inputs, batch_size=16), rtol=1e-9, atol=1e-12
    )
    if kind == "wide_deep":
        wide, deep = model.parts(t_x)
        with td.no_grad():
            our_wide, our_deep = ours.parts([td.Tensor(a) for a in inputs])
        np.testing.assert_allclose(wide.detach().numpy(), our_wide.numpy(), rtol=1e-9)
        np.testing.assert_allclose(deep.detach().numpy(), our_deep.numpy(), rtol=1e-9)
