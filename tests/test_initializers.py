"""tinydeep/initializers.py: the fans and the spread of each initializer, seeded."""

from __future__ import annotations

import numpy as np
import pytest

import tinydeep as td
from tinydeep import initializers


def test_fans_follow_keras():
    assert initializers.fans((30, 50)) == (30, 50)
    assert initializers.fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)
    assert initializers.fans((7,)) == (7, 7)


def test_he_normal_is_a_truncated_normal_with_variance_two_over_fan_in():
    td.manual_seed(0)
    w = initializers.he_normal((3, 3, 64, 64), np.float64)
    std = np.sqrt(2 / (3 * 3 * 64))
    assert w.std() == pytest.approx(std, rel=0.02)  # 36,864 draws
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-12


def test_glorot_uniform_zeros_ones_and_dtypes():
    td.manual_seed(0)
    w = initializers.glorot_uniform((100, 200))
    limit = np.sqrt(6 / 300)
    assert w.dtype == np.float32 and np.abs(w).max() <= limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert not initializers.zeros((2, 2)).any() and initializers.ones((2,), np.float64).all()


def test_seeding_repeats_every_draw():
    td.manual_seed(4)
    a = initializers.he_normal((5, 5))
    td.manual_seed(4)
    np.testing.assert_array_equal(a, initializers.he_normal((5, 5)))


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="initializer must be one of"):
        initializers.get("lecun_magic")
    with pytest.raises(ValueError, match="manual_seed: seed must be a non-negative integer"):
        td.manual_seed(-1)
