"""All or nothing: a layer call or a training step that fails changes nothing.

Besides its output, a call into a model changes the layers themselves: the first call builds
each layer (new weights, new attributes), a training call moves BatchNorm's statistics
(`Layer.update_state`), and a training step fills every parameter's `.grad`. When something
raises part way (a bad input deep inside a model, memory running out in the backward pass),
all of that must be as it was, not only what came after the failure.

`all_or_nothing()` brackets such work. Whatever is about to change inside it registers first
how to be taken back: `keep(tensor)` keeps a copy of a tensor's values, `on_failure(undo)`
any other undo function. When the block ends without an error the record is dropped and the
changes stand (the commit); when it raises, the record is played back, newest first, and the
error goes on. Blocks nest and only the outermost decides: the outermost layer call, or
`train_step` around a whole step. A failure in an outer layer thus also takes back what an
inner layer's call, which succeeded, changed. Outside any block a change is simply made.

Why keep the old values rather than hold back the new ones, as Keras 3's `stateless_call`
does (it returns the new non-trainable values, to be written once the step has succeeded):
a build can be taken back but not held back, and a layer called twice in one step (shared)
must see its own first update, which here is plain `.data` (Keras routes every read of a
variable through its scope for that). Either way, the step holds one copy of what it changes.

Read in this order: all_or_nothing, undo, then keep and on_failure. Left out: threads (one
record per process).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

_record: list[Callable[[], None]] | None = None  # the open block's undo functions, oldest first


class all_or_nothing:  # a context manager, lower case as contextlib names its own
    """with all_or_nothing(): changes inside are recorded, and taken back if the block raises
    (see the module docstring). A class, not a generator: every layer call enters one."""

    def __enter__(self) -> None:
        global _record
        self.outermost = _record is None  # else an outer block decides for both
        if self.outermost:
            _record = []

    def __exit__(self, kind, error, trace) -> None:
        global _record
        if self.outermost:
            try:
                if kind is not None:
                    undo()
            finally:
                _record = None


def undo() -> None:
    """Take back now, newest first, all that the open block has recorded: for a step that is
    rejected without an error (fit's guard against non-finite values)."""
    while _record:
        _record.pop()()


def keep(tensor) -> None:
    """Keep a copy of `tensor`'s values, to be written back if the open block fails."""
    if _record is not None:
        _record.append(partial(_write, tensor, tensor.data.copy()))


def on_failure(undo_function: Callable[[], None]) -> None:
    """Call `undo_function` if the open block fails (newest first, among the others)."""
    if _record is not None:
        _record.append(undo_function)


def _write(tensor, values) -> None:
    tensor.data[...] = values
