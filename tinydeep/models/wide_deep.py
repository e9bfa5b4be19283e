"""Wide & Deep (Cheng et al., 2016, "Wide & Deep Learning for Recommender Systems"): a sparse
linear model and a feed-forward network over embeddings, trained jointly on one logit.

The paper's idea: the *wide* part memorizes. It is a linear model over one-hot ids and crossed
ids (e.g. "installed=netflix AND impression=pandora"), so a feature combination seen in
training gets its own weight, but it cannot say anything about a combination it never saw.
The *deep* part generalizes. Each categorical column becomes a low-dimensional learned
embedding, the embeddings and the numeric columns are concatenated and passed through ReLU
layers, so ids that behave alike end up close and unseen combinations still get a sensible
score (sometimes too generous: that is what the wide part corrects). The two are summed on
one logit and trained together, as in the paper:

    P(Y = 1 | x) = sigmoid(w_wide . [x, phi(x)] + w_deep . a_last + b)

The paper trains the wide part with FTRL (L1, which makes it sparse) and the deep part with
AdaGrad: one optimizer per part, through `wide_parameters()` and `deep_parameters()`.

The wide part is never a dense one-hot matrix. Its input is K active ids per example, already
numbered in one shared id space of `wide_size` ids (offset each column by the sizes of the
columns before it; a cross of a and b is a * vocab_b + b, offset the same way), and its logit
is `embedding_sum` over a (wide_size, 1) table: the sum of the K active weights. Backward
gives the table a RowSparseGrad with only those rows, so FTRL and AdaGrad touch only them.

Shapes (N examples, K wide ids each, F numeric columns, E = embedding_dim, C categorical
columns):
    inputs["wide"]      (N, K) integers in [0, wide_size)        when wide_size is given
    inputs[column]      (N,)   integers in [0, vocab_sizes[column]), one per column
    inputs["numeric"]   (N, F) floats                            when num_numeric = F > 0
    deep features       (N, C * E + F), then hidden[0], hidden[1], ... units
    output              (N, 1) logits: train with binary_cross_entropy_with_logits

Inputs are a dict with those keys, or a list in the order of `model.input_names` (fit,
evaluate and predict take lists). The paper's training, one optimizer per part:

    model = WideAndDeep(wide_size, {"city": 500, "device": 20}, num_numeric=3)
    x = model.input_list(features)              # the dict as a list, for fit
    model(x)                                    # build: the weights exist from here on
    model.compile(
        optimizer=[FTRL(model.wide_parameters(), l1=1e-4), AdaGrad(model.deep_parameters())],
        loss="binary_cross_entropy_with_logits",
    )
    model.fit(x, labels, epochs=5)

Read SparseLinear (the wide part), then WideAndDeep. Left out: building crossed ids (hashing
is the caller's), columns with a varying number of ids per example (padding and masks),
numeric columns in the wide part, the paper's warm start from a previous model, and serving.
"""

from __future__ import annotations

import numpy as np

from tinydeep import ops
from tinydeep.layers import Dense, Dropout, Embedding, Layer, Model
from tinydeep.tensor import Tensor

WIDE, NUMERIC = "wide", "numeric"


class SparseLinear(Layer):
    """SparseLinear(size, use_bias=True): y = sum over k of kernel[ids[:, k]] + bias, the
    linear model over `size` binary features of which each example has K active, given by
    their ids. Weights: `kernel` (size, 1), `bias` (1,), both starting at 0 (as FTRL's do).

    Shapes: ids (N, K) integers in [0, size) -> y (N, 1). It equals one_hot(ids) @ kernel
    + bias (a repeated id counts twice), without making the (N, size) one-hot matrix.
    """

    def __init__(self, size: int, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"SparseLinear: size must be a positive integer, got {size!r}")
        self.size = size
        self.use_bias = use_bias

    def build(self, input_shape) -> None:
        self.kernel = self.add_weight("kernel", (self.size, 1), "zeros")
        self.bias = self.add_weight("bias", (1,), "zeros") if self.use_bias else None

    def call(self, ids: Tensor) -> Tensor:
        self.check_input(ids, ndim=2, floating=False)
        with self.naming_errors():  # the op checks the ids' dtype and range
            y = ops.embedding_sum(self.kernel, ids)  # (N, 1)
        return y + self.bias if self.bias is not None else y


class WideAndDeep(Model):
    """WideAndDeep(wide_size, vocab_sizes, embedding_dim=8, hidden=(100, 50), num_numeric=0,
    dropout=0.0, dtype=None): one logit (N, 1) from a wide part and a deep part (see the
    module docstring).

    wide_size: ids in the wide part's shared id space, or None for a deep-only model.
    vocab_sizes: {column: ids in that column} for the deep part's embeddings (a dict, so the
        weights are named by column: "embeddings/<column>/embeddings"), or None.
    num_numeric: numeric columns concatenated with the embeddings. The deep part is on when
        there are categorical or numeric columns; a wide-only model has neither.
    dropout: the rate of a Dropout after each hidden layer of the deep part (0: none).
    dtype: of every weight, float32 unless given (float64 for gradcheck); numeric inputs are
        cast to it.

    The one bias b of the paper's formula belongs to the wide part when there is one, else to
    the deep part's last Dense layer.
    """

    def __init__(
        self,
        wide_size: int | None,
        vocab_sizes: dict[str, int] | None,
        embedding_dim: int = 8,
        hidden: tuple[int, ...] = (100, 50),
        num_numeric: int = 0,
        dropout: float = 0.0,
        dtype=None,
        **kwargs,
    ):
        super().__init__(dtype=np.float32 if dtype is None else dtype, **kwargs)
        vocab_sizes = dict(vocab_sizes or {})
        for column in vocab_sizes:
            if not isinstance(column, str) or not column or "/" in column:
                raise ValueError(
                    f"WideAndDeep: column names must be non-empty strings without '/', "
                    f"got {column!r}"
                )
            if column in (WIDE, NUMERIC):
                raise ValueError(f"WideAndDeep: {column!r} is reserved for an input, not a column")
        if not isinstance(num_numeric, int) or num_numeric < 0:
            raise ValueError(
                f"WideAndDeep: num_numeric must be an integer >= 0, got {num_numeric!r}"
            )
        has_deep = bool(vocab_sizes) or num_numeric > 0
        if wide_size is None and not has_deep:
            raise ValueError(
                "WideAndDeep: both parts are off; give wide_size, or vocab_sizes / num_numeric"
            )
        self.vocab_sizes, self.num_numeric = vocab_sizes, num_numeric
        self.input_names = (
            ([WIDE] if wide_size is not None else [])
            + list(vocab_sizes)
            + ([NUMERIC] if num_numeric else [])
        )
        # ---- wide: a sparse linear model, holding the bias
        self.wide = None if wide_size is None else SparseLinear(wide_size, dtype=self.dtype)
        # ---- deep: an embedding per column, ReLU layers, one logit (no bias beside the wide's)
        self.embeddings = {
            column: Embedding(size, embedding_dim, dtype=self.dtype)
            for column, size in vocab_sizes.items()
        }
        self.hidden = (
            [Dense(units, "relu", dtype=self.dtype) for units in hidden] if has_deep else []
        )
        self.dropouts = [Dropout(dropout) for _ in self.hidden] if dropout else []
        self.deep_logit = (
            Dense(1, use_bias=self.wide is None, dtype=self.dtype) if has_deep else None
        )

    # ---- the two parts' parameters, for one optimizer each -----------------------------------

    def wide_parameters(self) -> list[Tensor]:
        """The wide part's kernel (wide_size, 1) and the bias: give them FTRL or AdaGrad.
        Empty for a deep-only model. The weights exist once the model has seen a batch."""
        self._require_built("wide_parameters")
        return [] if self.wide is None else self.wide.parameters()

    def deep_parameters(self) -> list[Tensor]:
        """The embeddings and the Dense layers: give them AdaGrad, Adam or SGD. Empty for a
        wide-only model. The weights exist once the model has seen a batch."""
        self._require_built("deep_parameters")
        layers = [*self.embeddings.values(), *self.hidden]
        layers += [self.deep_logit] if self.deep_logit is not None else []
        return [p for layer in layers for p in layer.parameters()]

    def _require_built(self, what: str) -> None:
        if not self.built:  # else an optimizer would get an empty list and a vaguer error
            raise ValueError(
                f"WideAndDeep {self.name!r}: {what}() before the weights exist; call the model "
                "on a batch first, e.g. model(inputs), then create the optimizers"
            )

    # ---- inputs ---------------------------------------------------------------------------

    def input_list(self, inputs) -> list:
        """The inputs as a list in the order of `input_names` (fit, evaluate and predict take
        lists, not dicts). A dict must hold exactly those keys; a list that many arrays."""
        names = self.input_names
        if isinstance(inputs, dict):
            missing = [name for name in names if name not in inputs]
            unknown = [key for key in inputs if key not in names]
            if missing or unknown:
                raise ValueError(
                    f"WideAndDeep {self.name!r}: expected inputs {names}; "
                    + (f"missing {missing}" if missing else "")
                    + ("; " if missing and unknown else "")
                    + (f"unknown {unknown}" if unknown else "")
                )
            return [inputs[name] for name in names]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != len(names):
                raise ValueError(
                    f"WideAndDeep {self.name!r}: expected {len(names)} inputs in the order "
                    f"{names}, got {len(inputs)}"
                )
            return list(inputs)
        if len(names) == 1:  # one input may come bare
            return [inputs]
        raise TypeError(
            f"WideAndDeep {self.name!r}: expected a dict with keys {names} or a list in that "
            f"order, got {type(inputs).__name__}"
        )

    def __call__(self, inputs, *args, **kwargs):
        # One order for every caller, dict or list: the order of input_names (fit, evaluate
        # and predict pass lists).
        return super().__call__(self.input_list(inputs), *args, **kwargs)

    # ---- the computation --------------------------------------------------------------------

    def call(self, inputs: list[Tensor]) -> Tensor:
        wide, deep = self.parts(inputs)
        if wide is None or deep is None:
            return deep if wide is None else wide
        return wide + deep  # (N, 1): the paper's one logit

    def parts(self, inputs: list[Tensor]) -> tuple[Tensor | None, Tensor | None]:
        """(wide logit, deep logit), each (N, 1) or None for a part that is off: what each
        part adds to the logit (the wide one holds the bias). `call` sums them."""
        x = dict(zip(self.input_names, inputs))
        self._check_batch(x)
        wide = deep = None
        if self.wide is not None:
            wide = self.wide(x[WIDE])  # (N, 1)
        if self.deep_logit is not None:
            parts = [self.embeddings[c](x[c]) for c in self.vocab_sizes]  # C of (N, E)
            if self.num_numeric:
                numeric = x[NUMERIC]
                parts.append(numeric if numeric.dtype == self.dtype else numeric.astype(self.dtype))
            h = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)  # (N, C*E + F)
            for i, layer in enumerate(self.hidden):
                h = layer(h)  # (N, units)
                if self.dropouts:
                    h = self.dropouts[i](h)  # in training only
            deep = self.deep_logit(h)  # (N, 1)
        return wide, deep

    def _check_batch(self, x: dict[str, Tensor]) -> None:
        """Every input a Tensor of the expected rank, all with one batch size."""
        ranks = {WIDE: 2, NUMERIC: 2} | dict.fromkeys(self.vocab_sizes, 1)
        for name, t in x.items():
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"WideAndDeep {self.name!r}: input {name!r} must be an array or a Tensor, "
                    f"got {type(t).__name__}"
                )
            if t.ndim != ranks[name]:
                wanted = {WIDE: "(N, K) ids", NUMERIC: "(N, F) floats"}.get(name, "(N,) ids")
                raise ValueError(
                    f"WideAndDeep {self.name!r}: input {name!r} must be {wanted}, "
                    f"got shape {t.shape}"
                )
        if NUMERIC in x and x[NUMERIC].dtype.kind not in "biuf":  # cast to self.dtype below
            raise TypeError(
                f"WideAndDeep {self.name!r}: input 'numeric' must hold real numbers (floats, "
                f"integers or booleans), got dtype {x[NUMERIC].dtype}"
            )
        if NUMERIC in x and x[NUMERIC].shape[1] != self.num_numeric:
            raise ValueError(
                f"WideAndDeep {self.name!r}: input 'numeric' must have {self.num_numeric} "
                f"columns, got shape {x[NUMERIC].shape}"
            )
        sizes = {name: t.shape[0] for name, t in x.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"WideAndDeep {self.name!r}: the inputs must have one batch size, got {sizes}"
            )
