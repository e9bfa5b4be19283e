"""What surrounds every layer call: the `training` value, all or nothing, and where it failed.

`Layer.__call__` (tinydeep/layers/layer.py) runs build and call inside `calling(layer,
training)`, which

  1. keeps the `training` value of each call in progress, so that a layer called without one
     inside another layer's `call` inherits it (`enclosing_training`), as in Keras:
     `model(x, training=True)` reaches every BatchNormalization and Dropout inside it;
  2. makes the outermost call all or nothing (tinydeep/rollback.py): if anything in it raises,
     the layers it built go back to unbuilt (`unbuild_on_failure`, registered by build) and
     the state written with `update_state` gets its old values back, so a bad input deep
     inside a model (a batch of one reaching a 1x1 BatchNorm) changes nothing, not just the
     layers after the one that failed;
  3. names where an error happened: the error remembers the innermost layer it passed
     through, the one that got the bad input, and the outermost call puts the model and the
     path to that layer in front of its message ("ResNet 'res_net', at blocks/2/bn1:
     BatchNormalization 'batch_normalization_5': ..."), before undoing builds that may drop it.

Read in this order: calling, enclosing_training, unbuild_on_failure, then _name_the_path.
"""

from __future__ import annotations

from functools import partial

from tinydeep import rollback, trace

_calls: list[bool] = []  # the `training` value of each layer call in progress, outermost first


class calling:  # a context manager, lower case as contextlib names its own
    """with calling(layer, training): one layer call (see the module docstring). A class, not
    a generator: every layer call enters one, and a generator's frame costs more."""

    def __init__(self, layer, training: bool):
        self.layer, self.training, self.block = layer, training, rollback.all_or_nothing()

    def __enter__(self) -> None:
        self.outermost = not _calls
        _calls.append(self.training)
        if trace.active is not None:  # plot_model or an export is recording (trace.py)
            trace.active.enter(self.layer)
        self.block.__enter__()

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if isinstance(error, Exception):
                if not hasattr(error, "_raised_in"):
                    error._raised_in = self.layer
                if self.outermost:
                    _name_the_path(self.layer, error)
            self.block.__exit__(kind, error, traceback)
        finally:
            _calls.pop()
            if trace.active is not None:
                trace.active.leave(self.layer)


def enclosing_training() -> bool:
    """The `training` value of the layer call in progress; False outside any."""
    return _calls[-1] if _calls else False


def unbuild_on_failure(layer) -> None:
    """Before build: keep the layer's attributes as they are (the weight registry that build
    adds to copied), to be put back exactly if the call fails."""
    attributes = dict(vars(layer))
    attributes.update(_weights=dict(layer._weights), _trainable_names=set(layer._trainable_names))
    rollback.on_failure(partial(_put_back, layer, attributes))


def _put_back(layer, attributes: dict) -> None:
    vars(layer).clear()
    vars(layer).update(attributes)


def _name_the_path(model, error: Exception) -> None:
    """Put "ResNet 'res_net', at blocks/2/bn1: " in front of the message of a TypeError or
    ValueError raised in a sub-layer, so the error says where in the model it happened."""
    inner = getattr(error, "_raised_in", model)
    if inner is model or not isinstance(error, (TypeError, ValueError)):
        return
    if not error.args or not isinstance(error.args[0], str):
        return
    path = next((p for p, layer, _ in model.walk() if layer is inner), None)
    where = f"{model.where()}, at {path}" if path else model.where()
    error.args = (f"{where}: {error.args[0]}", *error.args[1:])
