"""tinydeep/data/augment.py: crops, flips and normalization, against a per-image loop."""

from __future__ import annotations

import numpy as np

from tinydeep.data import augment


def test_random_crop_flip_matches_a_loop_over_images():
    images = np.random.default_rng(0).integers(0, 255, (64, 8, 8, 3)).astype(np.float32)
    out = augment.random_crop_flip(images, pad=4, rng=np.random.default_rng(1))
    rng = np.random.default_rng(1)  # replay the same draws, one image at a time
    top, left = rng.integers(0, 9, 64), rng.integers(0, 9, 64)
    mirrored = rng.random(64) < 0.5
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for i in range(64):
        crop = padded[i, top[i] : top[i] + 8, left[i] : left[i] + 8]
        np.testing.assert_array_equal(out[i], crop[:, ::-1] if mirrored[i] else crop)
    assert 10 < mirrored.sum() < 54 and out.dtype == np.float32


def test_normalize_and_channel_stats():
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    mean, std = augment.channel_stats(images)
    x = augment.normalize(images, mean, std)
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1, rtol=1e-5)


def test_batches_cover_the_epoch_once():
    x, y = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 1)), np.arange(10)
    seen = [yb for _, yb in augment.batches(x, y, 4, rng=np.random.default_rng(0))]
    assert [len(b) for b in seen] == [4, 4, 2]
    assert sorted(np.concatenate(seen).tolist()) == list(range(10))
