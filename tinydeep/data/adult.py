"""UCI Adult (Census Income): the original CSV files, read with plain Python and NumPy.

Each line of `adult.data` (32,561 rows) and `adult.test` (16,281 rows) is one person: 15
fields separated by ", ", with no header. A missing value is "?" (only in workclass,
occupation and native_country). `adult.test` opens with the comment line "|1x3 Cross
validator" and its labels end in a full stop ("<=50K."); both files end in a blank line.

Read COLUMNS (the fields, in file order), then read_adult (the format), then load_adult (where
the files live, downloading). What it returns, N rows:
    columns: dict name -> (N,) array: NUMERIC as float64, CATEGORICAL as str with "?" kept
    labels:  (N,) int64, 1 for ">50K" (income above 50,000 USD), 0 for "<=50K"

Left out: turning columns into model inputs (see features.py), and fnlwgt's meaning as a
sampling weight (it is returned as a plain number).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tinydeep.data.download import fetch, find_folder

# The 15 fields in file order; the UCI names with "-" as "_", and "sex" called "gender" as in
# TensorFlow's census tutorial. The last one is the label.
COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income_bracket",
)
NUMERIC = ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL = (
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "gender",
    "native_country",
)
LABELS = {"<=50K": 0, ">50K": 1}

BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
FILES = {"train": "adult.data", "test": "adult.test"}
URLS = {split: BASE_URL + name for split, name in FILES.items()}
# SHA-256 of the files as UCI serves them (3,974,305 and 2,003,153 bytes; MD5s
# 5d7c39d7b8804f071cdd1f2a7c460872 and 35238206dfdf7f1fe215bbb874adecdc).
SHA256 = {
    "train": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}


class AdultError(ValueError):
    """A line of an Adult file is not a valid row; the message names the file and line."""


def read_adult(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns (dict name -> (N,) array) and labels (N,) int64 from one UCI Adult file.

    Blank lines and lines starting with "|" (comments) are skipped. A row with the wrong
    number of fields, a number that does not parse, or an unknown label raises AdultError.
    """
    path = Path(path)
    rows, line_numbers = [], []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.strip()
            if not line or line.startswith("|"):
                continue
            fields = [field.strip() for field in line.split(",")]
            if len(fields) != len(COLUMNS):
                raise AdultError(
                    f"{path}, line {number}: {len(fields)} comma-separated fields, expected "
                    f"{len(COLUMNS)} ({', '.join(COLUMNS)}): {line[:80]!r}"
                )
            rows.append(fields)
            line_numbers.append(number)
    if not rows:
        raise AdultError(f"{path}: no data rows (empty, or not a UCI Adult file)")

    fields_by_column = dict(zip(COLUMNS, zip(*rows)))  # transpose: one tuple per column
    columns = {}
    for name in NUMERIC:
        columns[name] = _numbers(fields_by_column[name], name, path, line_numbers)
    for name in CATEGORICAL:
        columns[name] = np.array(fields_by_column[name], dtype=str)

    labels = np.empty(len(rows), dtype=np.int64)
    for i, text in enumerate(fields_by_column["income_bracket"]):
        label = LABELS.get(text.removesuffix("."))  # adult.test writes "<=50K."
        if label is None:
            raise AdultError(
                f"{path}, line {line_numbers[i]}: label {text!r}, expected '<=50K' or '>50K' "
                "(optionally ending in '.')"
            )
        labels[i] = label
    return columns, labels


def _numbers(texts: tuple[str, ...], name: str, path: Path, line_numbers: list[int]) -> np.ndarray:
    """The column's texts as float64; on failure, name the first line that does not parse."""
    try:
        return np.array(texts).astype(np.float64)
    except ValueError:
        pass
    for text, number in zip(texts, line_numbers):
        try:
            float(text)
        except ValueError:
            raise AdultError(
                f"{path}, line {number}: {name} is {text!r}, which is not a number"
            ) from None
    raise AssertionError("unreachable: NumPy refused a column that float() accepts")


def load_adult(
    data_dir: str | os.PathLike | None = None, split: str = "train", download: bool = True
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """UCI Adult: columns (dict name -> (N,) array) and labels (N,) int64, 1 for ">50K".

    N is 32,561 for split="train" (adult.data) and 16,281 for split="test" (adult.test).
    Columns: NUMERIC as float64, CATEGORICAL as str, missing values as "?". The file is read
    from `<data_dir>/adult/`, or from data_dir itself when it holds the Adult files and that
    sub-folder does not (data_dir as in tinydeep.data.data_dir; see find_folder), and, when missing and
    download=True, downloaded there first and checked against its SHA-256; else
    FileNotFoundError says what to download and where to put it.
    """
    if split not in FILES:
        raise ValueError(f"load_adult: split must be 'train' or 'test', got {split!r}")
    root = find_folder(data_dir, ("adult", "."), list(FILES.values()))
    path = root / FILES[split]
    if not path.exists():
        if not download:
            raise FileNotFoundError(
                f"load_adult: {path} is missing and download=False.\n"
                f"  Download it from {URLS[split]}\n  and put it in {root}{os.sep}"
            )
        also = [n for n in FILES.values() if n != FILES[split] and not (root / n).exists()]
        fetch(URLS[split], path, SHA256[split], also=also, holds=list(FILES.values()))
    return read_adult(path)
