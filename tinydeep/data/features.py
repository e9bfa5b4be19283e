"""Feature columns for a Wide & Deep model of census data, as in TensorFlow's census tutorial.

Read in this order:
  1. the settings       which columns are categorical, numeric, bucketized, crossed
  2. hash_cross         a crossed column's bucket: CRC-32 of the joined values, mod its size
  3. WideDeepFeatures   fit on the training split, then transform any split

What transform returns for N rows (V_c = vocab_sizes[c], K = numeric columns, K_wide =
wide categorical columns + 1 age-bucket column + crossed columns; 8 + 1 + 3 = 12 by default):
    <categorical c>        (N,) int64 in [0, V_c): vocabulary ids, 0 = unseen in training
    "numeric"              (N, K) float32: standardized with the training mean and std
    "age_bucket"           (N,) int64 in [0, len(AGE_BOUNDARIES)]
    <cross name>           (N,) int64 in [0, bucket size): the hashed crossed column
    "wide"                 (N, K_wide) int64 in [0, wide_size): one id per wide column, each
                           column shifted into its own range (wide_ranges), for one
                           embedding_sum over a (wide_size, 1) table (a linear model)
The deep part uses the per-column ids (one embedding table of vocab_sizes[c] rows each) and
"numeric". A fitted spec saves as JSON through to_state / from_state, never pickle.

Left out: TensorFlow's exact hash (FarmHash fingerprints), so bucket numbers differ from
TensorFlow's; and any fitting of the crossed columns (hashing needs none).
"""

from __future__ import annotations

import zlib

import numpy as np

from tinydeep.data import adult

# The tutorial's columns (tensorflow/models official/r1/wide_deep/census_dataset.py). Its
# versions put different subsets of the categorical columns into the wide and deep parts; here
# all eight go into both by default (wide_categorical picks a subset). fnlwgt, a sampling
# weight rather than a trait of the person, is left out, as in the tutorial.
CATEGORICAL = adult.CATEGORICAL
NUMERIC = tuple(name for name in adult.NUMERIC if name != "fnlwgt")
AGE_BOUNDARIES = (18, 25, 30, 35, 40, 45, 50, 55, 60, 65)  # 11 buckets: <18, [18, 25), ..., >=65
CROSSES = (
    (("education", "occupation"), 1000),
    (("age_bucket", "education", "occupation"), 1000),
    (("native_country", "occupation"), 1000),
)
SEPARATOR = "\x1f"  # ASCII "unit separator": no category text contains it, so joins are unique
STATE_FORMAT = "tinydeep.WideDeepFeatures/1"


def hash_cross(values: list[np.ndarray], buckets: int) -> np.ndarray:
    """Bucket ids (N,) int64 in [0, buckets) of the crossed column of `values` (each (N,)).

    Row i goes to crc32(utf-8 of str(v0[i]) + SEPARATOR + str(v1[i]) + ...) % buckets. CRC-32
    gives the same number in every process, unlike Python's hash() of a str, which is salted
    per process (PYTHONHASHSEED). Only the distinct combinations are hashed.
    """
    codes, uniques = [], []
    for column in values:
        unique, inverse = np.unique(np.asarray(column).astype(str), return_inverse=True)
        codes.append(inverse.reshape(-1))
        uniques.append(unique)
    combos, row_combo = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    ids = [
        zlib.crc32(SEPARATOR.join(u[j] for u, j in zip(uniques, combo)).encode()) % buckets
        for combo in combos
    ]
    return np.asarray(ids, dtype=np.int64)[row_combo.reshape(-1)]


class WideDeepFeatures:
    """Feature columns fitted on training data: vocabularies and numeric statistics.

    categorical: columns given vocabulary ids (the deep part embeds each one).
    numeric: columns standardized into one (N, K) matrix.
    wide_categorical: columns whose ids go into the wide part (default: all categorical).
    crosses: ((column names, bucket size), ...); a name is a categorical column or
        "age_bucket".
    age_boundaries: where age is cut into buckets (np.digitize: bucket b holds
        boundaries[b - 1] <= age < boundaries[b]).
    """

    def __init__(
        self,
        categorical: tuple[str, ...] = CATEGORICAL,
        numeric: tuple[str, ...] = NUMERIC,
        wide_categorical: tuple[str, ...] | None = None,
        crosses: tuple[tuple[tuple[str, ...], int], ...] = CROSSES,
        age_boundaries: tuple[float, ...] = AGE_BOUNDARIES,
    ):
        self.categorical = tuple(categorical)
        self.numeric = tuple(numeric)
        self.wide_categorical = tuple(categorical if wide_categorical is None else wide_categorical)
        self.crosses = tuple((tuple(names), int(size)) for names, size in crosses)
        self.age_boundaries = tuple(age_boundaries)
        known = set(self.categorical) | {"age_bucket"}
        for names, size in self.crosses:
            if not set(names) <= known or size < 1:
                raise ValueError(
                    f"WideDeepFeatures: cross {names} of {size} buckets: each name must be a "
                    f"categorical column or 'age_bucket', and the size at least 1"
                )
        if not set(self.wide_categorical) <= set(self.categorical):
            raise ValueError("WideDeepFeatures: wide_categorical must be categorical columns")
        self.vocabularies: dict[str, list[str]] | None = None  # set by fit
        self.mean: np.ndarray | None = None  # (K,) float64, set by fit
        self.std: np.ndarray | None = None

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, columns: dict[str, np.ndarray]) -> WideDeepFeatures:
        """Learn the vocabularies (sorted distinct values; id i + 1 for the i-th) and the
        numeric mean and std from `columns`, the training split only. Returns self."""
        self.vocabularies = {
            name: np.unique(_column(columns, name).astype(str)).tolist()
            for name in self.categorical
        }
        numbers = self._numeric_matrix(columns)
        self.mean = numbers.mean(axis=0)
        std = numbers.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)  # a constant column becomes zeros, not NaN
        return self

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Categorical column -> number of ids, counting id 0 (unseen): an embedding's rows."""
        self._check_fitted()
        return {name: len(vocabulary) + 1 for name, vocabulary in self.vocabularies.items()}

    @property
    def wide_names(self) -> list[str]:
        """The wide columns in the order of the "wide" array's K_wide columns."""
        return [*self.wide_categorical, "age_bucket", *(_cross_name(n) for n, _ in self.crosses)]

    @property
    def wide_ranges(self) -> dict[str, tuple[int, int]]:
        """Wide column -> (start, stop): its ids in the "wide" array lie in [start, stop)."""
        sizes = self.vocab_sizes
        widths = [sizes[name] for name in self.wide_categorical]
        widths += [len(self.age_boundaries) + 1, *(size for _, size in self.crosses)]
        stops = np.cumsum(widths).tolist()
        return {n: (stop - w, stop) for n, w, stop in zip(self.wide_names, widths, stops)}

    @property
    def wide_size(self) -> int:
        """Number of distinct wide ids: the rows of the wide part's (wide_size, 1) table."""
        return max(stop for _, stop in self.wide_ranges.values())

    # -- transforming -------------------------------------------------------------------------

    def transform(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Model inputs for the rows of `columns` (any split); shapes in the module docstring."""
        self._check_fitted()
        out: dict[str, np.ndarray] = {}
        for name in self.categorical:
            out[name] = _lookup(self.vocabularies[name], _column(columns, name).astype(str))
        out["numeric"] = ((self._numeric_matrix(columns) - self.mean) / self.std).astype(np.float32)
        age = _column(columns, "age").astype(np.float64)
        out["age_bucket"] = np.digitize(age, self.age_boundaries).astype(np.int64)
        for names, size in self.crosses:
            # Crosses hash the raw values, as the tutorial does, so they need no vocabulary.
            parts = [out["age_bucket"] if n == "age_bucket" else _column(columns, n) for n in names]
            out[_cross_name(names)] = hash_cross(parts, size)
        ranges = self.wide_ranges
        out["wide"] = np.stack(
            [out[name] + ranges[name][0] for name in self.wide_names], axis=1
        )  # (N, K_wide)
        return out

    def _numeric_matrix(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The numeric columns side by side: (N, K) float64."""
        if not self.numeric:
            return np.zeros((len(_column(columns, "age")), 0))
        return np.stack([_column(columns, n).astype(np.float64) for n in self.numeric], axis=1)

    def _check_fitted(self) -> None:
        if self.vocabularies is None:
            raise RuntimeError("WideDeepFeatures: call fit (training split) before using it")

    # -- saving -------------------------------------------------------------------------------

    def to_state(self) -> dict:
        """Settings and fitted values as plain lists, numbers and strings (json.dumps-able).

        Floats are written as Python floats, whose JSON text reads back to the same float64.
        """
        self._check_fitted()
        return {
            "format": STATE_FORMAT,
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "wide_categorical": list(self.wide_categorical),
            "crosses": [[list(names), size] for names, size in self.crosses],
            "age_boundaries": list(self.age_boundaries),
            "vocabularies": {name: list(v) for name, v in self.vocabularies.items()},
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict) -> WideDeepFeatures:
        """The fitted spec that to_state described (e.g. after a JSON round trip)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(
                f"WideDeepFeatures.from_state: format {state.get('format')!r}, "
                f"expected {STATE_FORMAT!r}"
            )
        spec = cls(
            categorical=tuple(state["categorical"]),
            numeric=tuple(state["numeric"]),
            wide_categorical=tuple(state["wide_categorical"]),
            crosses=tuple((tuple(names), size) for names, size in state["crosses"]),
            age_boundaries=tuple(state["age_boundaries"]),
        )
        spec.vocabularies = {name: list(v) for name, v in state["vocabularies"].items()}
        spec.mean = np.asarray(state["mean"], dtype=np.float64)
        spec.std = np.asarray(state["std"], dtype=np.float64)
        return spec


def _column(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in columns:
        raise KeyError(f"WideDeepFeatures: no column {name!r} among {sorted(columns)}")
    return np.asarray(columns[name])


def _lookup(vocabulary: list[str], values: np.ndarray) -> np.ndarray:
    """Ids (N,) int64 of `values` in the sorted `vocabulary`: i + 1 for vocabulary[i], 0 when
    absent."""
    if not vocabulary:
        return np.zeros(len(values), dtype=np.int64)
    table = np.asarray(vocabulary)
    at = np.searchsorted(table, values).clip(max=len(table) - 1)
    return np.where(table[at] == values, at + 1, 0).astype(np.int64)


def _cross_name(names: tuple[str, ...]) -> str:
    return "_x_".join(names)
