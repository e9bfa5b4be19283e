"""Model and Sequential: layers that can be compiled, trained, summarized and saved.

`Model` is subclassed the Keras way: make the sub-layers in `__init__` (attributes, lists and
dicts of layers are all found), compute in `call(inputs, training=False)`; `inputs` may be a
list (several inputs) and the result a tuple (several outputs). `Sequential([...])` chains
layers. Training (`compile`, `fit`, `evaluate`, `predict`) is in tinydeep/train.py and saving
in tinydeep/checkpoint.py; the methods here are their front doors.

`Model(inputs=..., outputs=...)` over `keras.Input` tensors is Keras's functional API: it
makes a Functional model (tinydeep/layers/functional.py).
"""

from __future__ import annotations

from tinydeep import checkpoint, train
from tinydeep.layers.layer import Layer
from tinydeep.layers.symbolic import KerasTensor
from tinydeep.tensor import Tensor


class Model(Layer):
    """A layer with a training loop. Subclass it and define `call`, or use Sequential."""

    def __new__(cls, *args, **kwargs):
        """Model(inputs=..., outputs=...) makes a Functional model, as in Keras."""
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from tinydeep.layers.functional import Functional  # it subclasses Model

            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(
                f"{type(self).__name__}: inputs and outputs make a functional model, "
                "keras.Model(inputs=..., outputs=...); a subclass of Model defines call() instead"
            )
        super().__init__(**kwargs)
        self.compiled = None  # set by compile(): optimizer, losses, loss weights, metrics
        self.stop_training = False  # a callback sets this to end fit() after the current step

    @property
    def layers(self) -> list[Layer]:
        """The direct sub-layers, in the order they were assigned."""
        return [layer for _, layer in self.named_sublayers()]

    def get_layer(self, name: str) -> Layer:
        """The direct sub-layer called `name`."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in self.layers]
        raise ValueError(f"{self.where()}: no layer named {name!r}; its layers are {names}")

    # ---- training: tinydeep/train.py ---------------------------------------------------------

    def compile(self, optimizer="sgd", loss=None, metrics=None, loss_weights=None) -> None:
        """Choose the optimizer (an Optimizer, or "sgd", "adam", "adagrad", "ftrl"), the loss
        (a name, a function, or one per output), metrics names, and loss_weights for
        multi-output models (the total loss is their weighted sum)."""
        self.compiled = train.Compiled.create(self, optimizer, loss, metrics, loss_weights)
        if self.built:  # else fit() binds the optimizer once the first batch has built it
            self.compiled.bind(self)

    def fit(self, x, y, epochs: int = 1, batch_size: int = 32, **kwargs):
        """Train on arrays x, y (lists/tuples of arrays for several inputs/outputs); returns a
        History. See tinydeep.train.fit for every option."""
        return train.fit(self, x, y, epochs=epochs, batch_size=batch_size, **kwargs)

    def evaluate(self, x, y, batch_size: int = 32, **kwargs) -> dict[str, float]:
        """The loss and metrics on x, y, with training=False: {"loss": ..., ...}."""
        return train.evaluate(self, x, y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size: int = 32):
        """The outputs for x as NumPy arrays (a tuple for several outputs), training=False."""
        return train.predict(self, x, batch_size=batch_size)

    # ---- saving: tinydeep/checkpoint.py --------------------------------------------------------

    def save_weights(self, path) -> None:
        """Write every weight to `path`, atomically: a .safetensors file for that suffix (the
        format PyTorch and Hugging Face share), else .npz with JSON metadata; no pickle."""
        checkpoint.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Read weights written by save_weights; every name, shape and dtype is checked before
        anything changes."""
        checkpoint.load_weights(self, path)

    # ---- summary -----------------------------------------------------------------------------

    def summary(self, print_fn=print) -> str:
        """A table of the direct sub-layers: name, type, output shape, parameter count."""
        if not self.built:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: call the model on a batch "
                "first, so that its layers are built and their shapes known"
            )
        connected = hasattr(self, "connections")  # a functional model: say what feeds what
        rows = [("Layer (type)", "Output shape", "Params", "Connected to")]
        named = [(layer.name, layer) for layer in self.layers] if connected else None
        for path, layer in named or self.named_sublayers():
            shape = "?" if layer.output_shape is None else _batch_free(layer.output_shape)
            links = ", ".join(self.connections(layer)) if connected else ""
            row = (f"{path} ({type(layer).__name__})", shape, f"{layer.count_params():,}", links)
            rows.append(row)
        trainable = sum(p.size for p in self.parameters())
        total = self.count_params()
        columns = 4 if connected else 3
        widths = [max(len(row[i]) for row in rows) for i in range(columns)]
        rule = "-" * (sum(widths) + 2 * (columns - 1))
        lines = [f'Model: "{self.name}"', rule]
        for i, row in enumerate(rows):
            cells = [f"{row[0]:<{widths[0]}}", f"{row[1]:<{widths[1]}}", f"{row[2]:>{widths[2]}}"]
            lines.append("  ".join(cells + list(row[3:columns])).rstrip())
            if i == 0:
                lines.append(rule)
        lines += [
            rule,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def _batch_free(shape) -> str:
    """A shape with the batch axis shown as None, as Keras prints it: (None, 8, 8, 16)."""
    if isinstance(shape, list):
        return ", ".join(_batch_free(s) for s in shape)
    return str((None, *shape[1:])) if shape else "()"


class Sequential(Model):
    """Sequential(layers=None): each layer's output is the next one's input.

    As in Keras, a first item `keras.Input(shape=...)`, or a first layer given
    `input_shape=(...)`, builds the model as layers are added (so `summary()` works before any
    data, and a layer that does not fit fails in `add`); otherwise the first batch builds it.
    """

    def __init__(self, layers: list[Layer] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._stack: list[Layer] = []
        self._symbolic: KerasTensor | None = None  # the last layer's output, when built early
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer | KerasTensor) -> None:
        if isinstance(layer, KerasTensor):
            if self._stack or self._symbolic is not None:
                raise ValueError(f"Sequential {self.name!r}: a keras.Input can only come first")
            self._symbolic = layer
            self.input_shape, self.input_dtype = layer.shape, layer.dtype
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if self._symbolic is None and not self._stack and layer.declared_input_shape is not None:
            from tinydeep.layers.functional import Input  # functional.py imports this module

            self.add(Input(shape=tuple(layer.declared_input_shape)))
        if self._symbolic is not None:  # build it now, on the shape the last layer gives
            self._symbolic = layer(self._symbolic)
            self.built = True
        self._stack.append(layer)

    def named_sublayers(self) -> list[tuple[str, Layer]]:
        """The layers by position: "0", "1", ... (checkpoint paths are "0/kernel", ...)."""
        return [(str(i), layer) for i, layer in enumerate(self._stack)]

    def call(self, x: Tensor) -> Tensor:
        if not self._stack:
            raise ValueError(f"Sequential {self.name!r}: add layers before calling it")
        for layer in self._stack:
            x = layer(x)
        return x
