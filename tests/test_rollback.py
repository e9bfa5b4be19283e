"""tinydeep/rollback.py: all or nothing, the outermost block deciding.

The layers' and the training step's guarantees built on it are tested where they are made:
tests/test_bad_input.py (a failed call, a failed first call), tests/test_train.py (a step
rejected or out of memory), tests/layers/test_layer.py (a shared layer).
"""

from __future__ import annotations

import numpy as np
import pytest

from tinydeep import rollback
from tinydeep.tensor import Tensor


def test_a_block_that_succeeds_keeps_its_changes_and_one_that_fails_takes_them_back():
    w = Tensor(np.zeros(3))
    with rollback.all_or_nothing():
        rollback.keep(w)
        w.data[...] = 1.0
    np.testing.assert_array_equal(w.data, 1.0)
    undone = []
    with pytest.raises(KeyError), rollback.all_or_nothing():
        rollback.on_failure(lambda: undone.append("first"))
        rollback.keep(w)
        w.data[...] = 2.0
        rollback.keep(w)
        w.data[...] = 3.0
        rollback.on_failure(lambda: undone.append("last"))
        raise KeyError("anything, not only errors of the layers")
    np.testing.assert_array_equal(w.data, 1.0)  # the oldest copy is written last
    assert undone == ["last", "first"]  # newest first


def test_only_the_outermost_block_decides():
    w = Tensor(np.zeros(2))
    with pytest.raises(RuntimeError), rollback.all_or_nothing():
        with rollback.all_or_nothing():  # an inner layer's call, which succeeds
            rollback.keep(w)
            w.data[...] = 5.0
        np.testing.assert_array_equal(w.data, 5.0)
        raise RuntimeError("the outer call fails after it")
    np.testing.assert_array_equal(w.data, 0.0)
    with rollback.all_or_nothing():
        try:
            with rollback.all_or_nothing():  # an inner failure that the outer block handles
                rollback.keep(w)
                w.data[...] = 7.0
                raise RuntimeError
        except RuntimeError:
            pass
    np.testing.assert_array_equal(w.data, 7.0)


def test_undo_takes_back_now_and_outside_a_block_nothing_is_recorded():
    w = Tensor(np.zeros(2))
    calls = []
    rollback.keep(w)  # no block: nothing to record, the change simply stands
    rollback.on_failure(lambda: calls.append("never"))
    w.data[...] = 4.0
    with rollback.all_or_nothing():
        rollback.keep(w)
        w.data[...] = 6.0
        rollback.undo()  # a step rejected without an error
        np.testing.assert_array_equal(w.data, 4.0)
        rollback.keep(w)
        w.data[...] = 8.0
    np.testing.assert_array_equal(w.data, 8.0)  # what came after the undo stands
    assert calls == []
    rollback.undo()  # outside a block: nothing to do
