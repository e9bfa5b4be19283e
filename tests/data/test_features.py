"""tinydeep/data/features.py: fitted on training rows only, crossed columns hashed the same in
every process, disjoint wide id ranges, and a JSON round trip; then the real Adult data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tinydeep.data import adult
from tinydeep.data.features import AGE_BOUNDARIES, WideDeepFeatures, hash_cross

ROOT = Path(__file__).resolve().parents[2]


def make_columns(rows: list[tuple]) -> dict[str, np.ndarray]:
    """Columns as load_adult returns them, from rows of (age, education, occupation, country);
    the other columns are filled with fixed values."""
    age, education, occupation, country = zip(*rows)
    n = len(rows)
    columns = {name: np.full(n, "x") for name in adult.CATEGORICAL}
    columns |= {name: np.arange(n, dtype=np.float64) for name in adult.NUMERIC}
    columns["age"] = np.array(age, dtype=np.float64)
    columns["education"] = np.array(education)
    columns["occupation"] = np.array(occupation)
    columns["native_country"] = np.array(country)
    return columns


TRAIN = make_columns(
    [
        (20, "Bachelors", "Sales", "United-States"),
        (40, "HS-grad", "Exec-managerial", "Peru"),
        (60, "Bachelors", "?", "United-States"),
    ]
)
TEST = make_columns(
    [
        (33, "Doctorate", "Sales", "United-States"),  # Doctorate: never seen in training
        (70, "HS-grad", "?", "Iceland"),
    ]
)


def test_vocabularies_come_from_training_rows_and_unseen_values_get_id_0():
    spec = WideDeepFeatures().fit(TRAIN)
    assert spec.vocabularies["education"] == ["Bachelors", "HS-grad"]
    assert spec.vocabularies["occupation"] == ["?", "Exec-managerial", "Sales"]
    assert spec.vocab_sizes["education"] == 3 and spec.vocab_sizes["gender"] == 2  # 0 + "x"
    out = spec.transform(TEST)
    assert out["education"].tolist() == [0, 2]  # Doctorate unseen -> 0; HS-grad -> 2
    assert out["occupation"].tolist() == [3, 1]  # a missing "?" is a value of its own
    assert out["native_country"].tolist() == [2, 0]
    assert out["education"].dtype == np.int64
    # Transforming the test rows leaves the fitted vocabularies alone.
    assert spec.vocabularies["education"] == ["Bachelors", "HS-grad"]


def test_standardization_uses_the_training_mean_and_std():
    spec = WideDeepFeatures().fit(TRAIN)
    age = TRAIN["age"]  # 20, 40, 60: mean 40, population std sqrt(800/3)
    out = spec.transform(TEST)
    assert out["numeric"].dtype == np.float32 and out["numeric"].shape == (2, 5)
    expected = (np.array([33.0, 70.0]) - 40.0) / age.std()
    np.testing.assert_allclose(out["numeric"][:, 0], expected, rtol=1e-6)
    train = spec.transform(TRAIN)["numeric"]
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(axis=0), 1, rtol=1e-6)


def test_a_constant_numeric_column_becomes_zeros_not_nan():
    columns = make_columns([(30, "a", "b", "c"), (30, "a", "b", "c")])
    out = WideDeepFeatures().fit(columns).transform(columns)
    assert np.isfinite(out["numeric"]).all() and (out["numeric"][:, 0] == 0).all()


def test_age_buckets_at_the_tutorial_boundaries():
    ages = [17, 18, 24.9, 25, 44, 64, 65, 90]
    columns = make_columns([(a, "a", "b", "c") for a in ages])
    out = WideDeepFeatures().fit(columns).transform(columns)
    assert AGE_BOUNDARIES == (18, 25, 30, 35, 40, 45, 50, 55, 60, 65)
    assert out["age_bucket"].tolist() == [0, 1, 1, 2, 5, 9, 10, 10]


def test_a_crossed_bucket_is_a_fixed_number():
    # crc32(b"Bachelors\x1fExec-managerial") = 3833974319, and 3833974319 % 1000 = 319.
    education, occupation = np.array(["Bachelors", "HS-grad"]), np.array(["Exec-managerial"] * 2)
    ids = hash_cross([education, occupation], 1000)
    assert ids.tolist()[0] == 319 and ids.dtype == np.int64
    assert zlib.crc32(b"Bachelors\x1fExec-managerial") == 3_833_974_319
    assert hash_cross([np.array([3]), education[:1], occupation[:1]], 1000).tolist() == [525]


def test_crossed_buckets_are_the_same_in_other_processes():
    """Python's str hash changes with PYTHONHASHSEED; the crossed buckets must not."""
    code = (
        "import numpy as np; from tinydeep.data.features import hash_cross; "
        "print(hash('Bachelors')); "
        "print(hash_cross([np.array(['Bachelors', 'Peru']), np.array(['Sales', '?'])], 1000))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.splitlines())  # [Python's hash, the bucket ids]
    assert outputs[0][0] != outputs[1][0]  # the seeds did change Python's own hash
    here = hash_cross([np.array(["Bachelors", "Peru"]), np.array(["Sales", "?"])], 1000)
    assert outputs[0][1] == outputs[1][1] == str(here)


def test_crossed_columns_hash_the_values_not_the_fitted_ids():
    spec = WideDeepFeatures().fit(TRAIN)
    other = WideDeepFeatures().fit(TEST)  # different vocabularies
    a, b = spec.transform(TEST), other.transform(TEST)
    for name in ("education_x_occupation", "native_country_x_occupation"):
        assert a[name].tolist() == b[name].tolist()
    expected = hash_cross([TEST["education"], TEST["occupation"]], 1000)
    assert a["education_x_occupation"].tolist() == expected.tolist()
    assert a["age_bucket_x_education_x_occupation"].tolist() == (
        hash_cross([a["age_bucket"], TEST["education"], TEST["occupation"]], 1000).tolist()
    )


def test_wide_ids_lie_in_disjoint_ranges_that_fill_the_table():
    spec = WideDeepFeatures().fit(TRAIN)
    ranges = spec.wide_ranges
    assert list(ranges) == spec.wide_names
    assert len(spec.wide_names) == len(adult.CATEGORICAL) + 1 + 3
    stops = [0] + [stop for _, stop in ranges.values()]
    assert [start for start, _ in ranges.values()] == stops[:-1]  # back to back, no overlap
    assert spec.wide_size == stops[-1] == sum(spec.vocab_sizes.values()) + 11 + 3 * 1000
    out = spec.transform(TEST)
    assert out["wide"].shape == (2, 12) and out["wide"].dtype == np.int64
    for k, name in enumerate(spec.wide_names):
        start, stop = ranges[name]
        assert ((start <= out["wide"][:, k]) & (out["wide"][:, k] < stop)).all()
        assert (out["wide"][:, k] - start).tolist() == out[name].tolist()


def test_a_subset_of_wide_columns_and_bad_settings():
    spec = WideDeepFeatures(wide_categorical=("education",), crosses=()).fit(TRAIN)
    assert spec.wide_names == ["education", "age_bucket"]
    assert spec.wide_size == 3 + 11
    with pytest.raises(ValueError, match="categorical column or 'age_bucket'"):
        WideDeepFeatures(crosses=((("education", "salary"), 10),))


def test_json_round_trip_gives_the_same_features():
    spec = WideDeepFeatures().fit(TRAIN)
    text = json.dumps(spec.to_state())
    again = WideDeepFeatures.from_state(json.loads(text))
    assert again.to_state() == spec.to_state()
    a, b = spec.transform(TEST), again.transform(TEST)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert a[name].dtype == b[name].dtype
    with pytest.raises(ValueError, match="format"):
        WideDeepFeatures.from_state({**spec.to_state(), "format": "other/9"})


def test_unfitted_use_and_missing_columns_are_refused():
    with pytest.raises(RuntimeError, match="call fit"):
        WideDeepFeatures().transform(TRAIN)
    columns = dict(TRAIN)
    del columns["occupation"]
    with pytest.raises(KeyError, match="no column 'occupation'"):
        WideDeepFeatures().fit(columns)


def test_the_real_adult_data(data_root):
    root = data_root("adult").parent
    train, _ = adult.load_adult(root, "train", download=False)
    test, _ = adult.load_adult(root, "test", download=False)
    spec = WideDeepFeatures().fit(train)
    assert spec.vocab_sizes == {
        "workclass": 10,  # 8 kinds and "?", plus id 0
        "education": 17,
        "marital_status": 8,
        "occupation": 16,
        "relationship": 7,
        "race": 6,
        "gender": 3,
        "native_country": 43,
    }
    assert spec.wide_size == 110 + 11 + 3000
    out = spec.transform(test)
    assert out["wide"].shape == (16_281, 12) and out["numeric"].shape == (16_281, 5)
    assert 0 <= out["wide"].min() and out["wide"].max() < spec.wide_size
    # Every test category was seen in training (Holand-Netherlands appears only in training).
    assert all((out[name] > 0).all() for name in adult.CATEGORICAL)
    assert np.abs(out["numeric"].mean(axis=0)).max() < 0.05  # training stats, close but not 0
    assert out["age_bucket"].max() == 10 and out["age_bucket"].min() == 0
