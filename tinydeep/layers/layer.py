"""The Layer: Keras's life cycle on tinydeep Tensors.

A layer keeps its settings in `__init__`, creates its weights in `build(input_shape)` on the
first call (so a Dense layer learns its input size from the data), and computes in
`call(inputs, training=False)`. `__call__` ties them together:

  1. turn NumPy/CuPy arrays into Tensors;
  2. on the first call, pick the weights' dtype and device from the first input and `build`;
  3. run `call`, passing `training` down: a layer called without `training` inside another
     layer's `call` inherits the outer value, as in Keras, so `model(x, training=True)`
     reaches every BatchNormalization and Dropout inside it.

Non-trainable state (BatchNorm's moving statistics) is written with `update_state`.

Sub-layers held in attributes, lists, tuples and dicts are found automatically, so
`parameters()`, `to(device)` and saving see the whole tree.

When a call fails, it changes nothing: the outermost call is all or nothing, and the error
says where in the model it happened. That machinery is in tinydeep/layers/calls.py, which
wraps the life cycle (`with calling(...)`) without entering it.

Read in this order: Layer.__call__, _build_on and update_state; check_input and
naming_errors; add_weight; the tree walk (named_sublayers, walk, named_weights, parameters);
to(); then the small helpers. Model and Sequential live in tinydeep/layers/model.py.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from tinydeep import backend, initializers, rollback, trace
from tinydeep.layers import symbolic
from tinydeep.layers.calls import calling, enclosing_training, unbuild_on_failure
from tinydeep.tensor import Tensor

_name_counts: dict[str, int] = {}
_TAKES_TRAINING: dict = {}  # call function -> whether it declares `training`


class Layer:
    """Base class of every layer and model.

    Subclasses override `build(input_shape)` to create weights with `add_weight`, and
    `call(inputs, training=False)` to compute. Layer(name=None, trainable=True).
    """

    def __init__(self, name: str | None = None, trainable: bool = True, dtype=None, **kwargs):
        unknown = set(kwargs) - {"input_shape"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(unknown)}")
        # Keras's input_shape=(...) on a Sequential model's first layer: Sequential builds on it.
        self.declared_input_shape = kwargs.get("input_shape")
        self.name = name if name else _default_name(self)
        self.trainable = trainable
        self.built = False
        # The weights' dtype: `dtype` if given, else the first input's if it is floating,
        # else float32; fixed on the first call.
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.device = "cpu"
        self._placed = False  # True once to(device) chose the device: build keeps it
        self._weights: dict[str, Tensor] = {}  # own weights, by name, in creation order
        self._trainable_names: set[str] = set()
        self.input_shape = self.input_dtype = None  # of the first input, set on the first call
        self.output_shape = None

    # ---- the life cycle --------------------------------------------------------------------

    def build(self, input_shape) -> None:
        """Create the weights for inputs of `input_shape` (batch axis first). Default: none."""

    def call(self, inputs, training: bool = False):
        """The computation. Subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs)")

    def __call__(self, inputs, *args, training: bool | None = None, **kwargs):
        """Convert the inputs, build on the first call, then call (see the module docstring)."""
        # keras.Input-derived inputs are recorded, not computed (symbolic.py); a Tensor never is.
        if not isinstance(inputs, Tensor) and symbolic.holds_symbolic(inputs):
            if args:
                raise TypeError(f"{self.where()}: in the functional API, pass settings by keyword")
            settings = kwargs if training is None else {**kwargs, "training": training}
            return symbolic.call_symbolic(self, inputs, settings)
        inputs = _as_tensors(inputs)
        if training is None:  # inherit the enclosing layer call's value, as in Keras
            training = enclosing_training()
        with calling(self, bool(training)):  # all or nothing; errors say where (calls.py)
            if not self.built:
                self._build_on(inputs)
            if self._call_takes_training():
                outputs = self.call(inputs, *args, training=bool(training), **kwargs)
            else:
                outputs = self.call(inputs, *args, **kwargs)
        self.output_shape = _shapes(outputs) if outputs is not None else None
        if trace.active is not None:  # plot_model or an export is recording (trace.py)
            trace.active.called(self, inputs, outputs)
        return outputs

    def _build_on(self, inputs) -> None:
        """The first call: take the weights' dtype from the first input, and its device too
        unless to(device) chose one (an input on another device is then an error), then
        build. The attributes as they were are kept, to unbuild if the call fails."""
        unbuild_on_failure(self)
        first = _first_tensor(inputs)
        floating = first is not None and first.dtype.kind == "f"
        if self.dtype is None:
            self.dtype = first.dtype if floating else np.dtype(np.float32)
        if first is not None and not self._placed:
            self.device = first.device
        self.input_shape, self.input_dtype = _shapes(inputs), _dtypes(inputs)
        self.build(self.input_shape)
        self.built = True

    def update_state(self, weight: Tensor, value) -> None:
        """Write `value` into the non-trainable `weight` in place (a moving statistic); the
        old values come back if the outermost layer call, or the training step, fails."""
        rollback.keep(weight)
        weight.data[...] = value

    def _call_takes_training(self) -> bool:
        """Keras lets `call` omit the training argument; pass it only when declared. Read
        once per function: inspect.signature costs more than a small layer's maths."""
        function = getattr(self.call, "__func__", self.call)
        if function not in _TAKES_TRAINING:
            parameters = inspect.signature(self.call).parameters
            _TAKES_TRAINING[function] = "training" in parameters or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
            )
        return _TAKES_TRAINING[function]

    def check_input(
        self,
        x,
        ndim: int | tuple[int, ...] | None = None,
        last: int | None = None,
        floating: bool = True,
    ) -> None:
        """Raise a ValueError (TypeError for a dtype) naming this layer, what it expected and
        what it received, before anything is computed or changed."""
        where = self.where()
        if not isinstance(x, Tensor):
            raise TypeError(
                f"{where}: expected a Tensor or an array as input, got {type(x).__name__}"
            )
        if floating and x.dtype.kind != "f":
            raise TypeError(f"{where}: expected a floating-point input, got dtype {x.dtype}")
        ranks = (ndim,) if isinstance(ndim, int) else ndim
        if ranks is not None and x.ndim not in ranks:
            wanted = " or ".join(str(r) for r in ranks)
            raise ValueError(
                f"{where}: expected an input of {wanted} dimensions, got shape {x.shape}"
            )
        if last is not None and (x.ndim == 0 or x.shape[-1] != last):
            raise ValueError(
                f"{where}: expected inputs with {last} features on the last axis "
                f"(the layer was built on input shape {self.input_shape}), got "
                f"shape {x.shape}"
            )

    def where(self) -> str:
        """How errors name this layer: its class and its name, "Dense 'dense_1'"."""
        return f"{type(self).__name__} {self.name!r}"

    @contextmanager
    def naming_errors(self):
        """Re-raise a TypeError or ValueError from the ops inside with this layer named in
        front, so an error found deep in the maths (an image smaller than the kernel, an id
        out of range) still says which layer received the input."""
        try:
            yield
        except (TypeError, ValueError) as error:
            raise type(error)(f"{self.where()}: {error}") from None

    def add_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer="glorot_uniform",
        trainable: bool = True,
    ) -> Tensor:
        """A new weight of `shape`, in the layer's dtype and on its device, registered under
        `name` (assign it too: `self.kernel = self.add_weight("kernel", ...)`)."""
        if name in self._weights:
            raise ValueError(f"{self.name}: a weight named {name!r} exists already")
        dtype = self.dtype if self.dtype is not None else np.dtype(np.float32)
        values = initializers.get(initializer)(tuple(shape), dtype)
        weight = Tensor(backend.to_device(values, self.device), requires_grad=trainable)
        self._weights[name] = weight
        if trainable:
            self._trainable_names.add(name)
        return weight

    # ---- the tree of layers and their weights ----------------------------------------------

    def named_sublayers(self) -> list[tuple[str, Layer]]:
        """The layers held directly in attributes, lists, tuples and dicts, with their
        attribute path ("conv1", "blocks/0", "heads/main"), in attribute order, each once."""
        found: list[tuple[str, Layer]] = []

        def collect(path: str, value) -> None:
            if isinstance(value, Layer):
                if all(value is not layer for _, layer in found):
                    found.append((path, value))
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    collect(f"{path}/{i}", item)
            elif isinstance(value, dict):
                for key, item in value.items():
                    collect(f"{path}/{key}", item)

        for attribute, value in vars(self).items():
            collect(attribute, value)
        return found

    def walk(self) -> Iterator[tuple[str, Layer, bool]]:
        """(path, layer, trainable) for this layer ("") and every layer below it, depth first,
        each once; `trainable` is False below a frozen layer."""
        seen: set[int] = set()
        stack: list[tuple[str, Layer, bool]] = [("", self, self.trainable)]
        while stack:
            path, layer, trainable = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield path, layer, trainable
            children = layer.named_sublayers()
            for name, child in reversed(children):
                child_path = f"{path}/{name}" if path else name
                stack.append((child_path, child, trainable and child.trainable))

    def named_weights(self, trainable_only: bool = False) -> dict[str, Tensor]:
        """Every weight of the tree by its attribute path ("block1/conv1/kernel"), each tensor
        once. The paths depend only on the model's structure, so they name the same weights in
        every process: checkpoints are keyed by them."""
        named: dict[str, Tensor] = {}
        seen: set[int] = set()
        for path, layer, trainable in self.walk():
            for name, weight in layer._weights.items():
                if trainable_only and not (trainable and name in layer._trainable_names):
                    continue
                if id(weight) not in seen:
                    seen.add(id(weight))
                    named[f"{path}/{name}" if path else name] = weight
        return named

    def parameters(self) -> list[Tensor]:
        """The trainable tensors of this layer and all below it, each exactly once."""
        return list(self.named_weights(trainable_only=True).values())

    @property
    def weights(self) -> list[Tensor]:
        return list(self.named_weights().values())

    @property
    def trainable_weights(self) -> list[Tensor]:
        return self.parameters()

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        trainable = {id(w) for w in self.parameters()}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight as NumPy arrays, in the order of `weights` (as Keras)."""
        return [w.numpy().copy() for w in self.weights]

    def set_weights(self, arrays) -> None:
        """Write arrays into the weights, in the order of `weights`; nothing changes unless
        there is one array per weight, each of the weight's shape."""
        weights = self.weights
        if len(arrays) != len(weights):
            raise ValueError(
                f"{self.where()}: set_weights needs {len(weights)} arrays, got {len(arrays)}"
            )
        names = list(self.named_weights())
        for name, w, a in zip(names, weights, arrays):
            if tuple(np.shape(a)) != w.shape:
                raise ValueError(
                    f"{self.where()}: set_weights: {name!r} has shape {w.shape}, got an array "
                    f"of shape {tuple(np.shape(a))}"
                )
        for w, a in zip(weights, arrays):
            w.data[...] = backend.to_device(np.asarray(a, dtype=w.dtype), w.device)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    # ---- devices ---------------------------------------------------------------------------

    def to(self, device: str) -> Layer:
        """Move every weight of the tree to `device` in place (the Tensors stay the same
        objects, so optimizers keep working); layers built later are built there too."""
        backend.check_device(device)
        for _, layer, _ in self.walk():
            layer.device, layer._placed = device, True
            for weight in layer._weights.values():
                weight.data = backend.to_device(weight.data, device)
                weight.grad = None
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{'' if self.built else ' (not built)'}>"


# ---- helpers -----------------------------------------------------------------------------------


def _default_name(layer: Layer) -> str:
    """Keras's unique names: dense, dense_1, ...; conv2d, re_lu, max_pooling2d (Keras's
    snake case: a capital starts a word when a lower-case letter follows it or precedes it)."""
    words = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", type(layer).__name__)
    return unique_name(re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower())


def unique_name(base: str) -> str:
    """`base` the first time, then base_1, base_2, ...: Keras's numbering of layer names."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _as_tensors(inputs):
    """Arrays (and lists, tuples and dicts of them) as Tensors; other values unchanged."""
    if isinstance(inputs, dict):
        return {key: _as_tensors(x) for key, x in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_as_tensors(x) for x in inputs)
    if isinstance(inputs, Tensor) or not hasattr(inputs, "dtype"):
        return inputs
    return Tensor(inputs)


def _shapes(inputs):
    """The shape of a Tensor, or the list (dict) of shapes of a list (dict) of Tensors."""
    if isinstance(inputs, dict):
        return {key: _shapes(x) for key, x in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_shapes(x) for x in inputs]
    return tuple(inputs.shape)


def _dtypes(inputs):
    """The dtype of a Tensor, or the list (dict) of dtypes of a list (dict) of Tensors."""
    if isinstance(inputs, dict):
        return {key: _dtypes(x) for key, x in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_dtypes(x) for x in inputs]
    return inputs.dtype


def _first_tensor(inputs) -> Tensor | None:
    if isinstance(inputs, dict):
        return _first_tensor(list(inputs.values()))
    if isinstance(inputs, (list, tuple)):
        for x in inputs:
            found = _first_tensor(x)
            if found is not None:
                return found
        return None
    return inputs if isinstance(inputs, Tensor) else None
