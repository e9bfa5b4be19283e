"""tinydeep/data/adult.py: the two real UCI Adult files, malformed rows, and the download path
against a local HTTP server (good file, bad checksum, connection dropped halfway)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tinydeep.data import adult
from tinydeep.data.download import DownloadError

# Two rows in the style of adult.test: the comment line, labels ending in ".", a "?" and the
# trailing blank line.
SMALL_FILE = (
    b"|1x3 Cross validator\n"
    b"25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, "
    b"0, 0, 40, United-States, <=50K.\n"
    b"52, ?, 287927, HS-grad, 9, Married-civ-spouse, ?, Wife, White, Female, 15024, 0, 40, "
    b"?, >50K.\n"
    b"\n"
)
ROW = "25, Private, 1, 11th, 7, Never-married, Sales, Own-child, Black, Male, 0, 0, 40, Peru, >50K"


def test_the_real_training_and_test_files(data_root):
    root = data_root("adult")
    for split, name in adult.FILES.items():
        digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
        assert digest == adult.SHA256[split], f"{name} differs from the file UCI serves"

    train, train_labels = adult.load_adult(root.parent, "train", download=False)
    test, test_labels = adult.load_adult(root.parent, "test", download=False)
    assert len(train_labels) == 32_561 and len(test_labels) == 16_281
    assert train_labels.dtype == np.int64 and set(np.unique(test_labels)) == {0, 1}
    # 24.1% and 23.6% earn more than 50,000 USD: the test file's "." labels were read.
    assert train_labels.sum() == 7_841 and test_labels.sum() == 3_846
    for columns, n in ((train, 32_561), (test, 16_281)):
        assert sorted(columns) == sorted(adult.NUMERIC + adult.CATEGORICAL)
        for name in adult.NUMERIC:
            assert columns[name].dtype == np.float64 and columns[name].shape == (n,)
        for name in adult.CATEGORICAL:
            assert columns[name].dtype.kind == "U" and columns[name].shape == (n,)
    missing = {name: int((train[name] == "?").sum()) for name in adult.CATEGORICAL}
    assert missing == dict.fromkeys(adult.CATEGORICAL, 0) | {
        "workclass": 1_836,
        "occupation": 1_843,
        "native_country": 583,
    }
    missing = {name: int((test[name] == "?").sum()) for name in adult.CATEGORICAL}
    assert missing == dict.fromkeys(adult.CATEGORICAL, 0) | {
        "workclass": 963,
        "occupation": 966,
        "native_country": 274,
    }
    # The first row of each file: the comment line of adult.test is not a row.
    first = {name: values[0] for name, values in train.items()}
    assert first["age"] == 39 and first["fnlwgt"] == 77_516 and first["capital_gain"] == 2_174
    assert first["workclass"] == "State-gov" and first["gender"] == "Male"
    assert test["age"][0] == 25 and test["occupation"][0] == "Machine-op-inspct"
    assert train_labels[:8].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]
    assert test_labels[:4].tolist() == [0, 0, 1, 1]


def test_without_the_data_folder_the_test_is_skipped_by_name(data_root, monkeypatch):
    monkeypatch.delenv("TINYDEEP_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'adult'.*TINYDEEP_DATA"):
        data_root("adult")


def test_comment_line_trailing_full_stops_and_missing_values(tmp_path):
    (tmp_path / "small.test").write_bytes(SMALL_FILE)
    columns, labels = adult.read_adult(tmp_path / "small.test")
    assert labels.tolist() == [0, 1]
    assert columns["age"].tolist() == [25.0, 52.0]
    assert columns["workclass"].tolist() == ["Private", "?"]
    assert columns["native_country"].tolist() == ["United-States", "?"]
    assert columns["capital_gain"].tolist() == [0.0, 15_024.0]


@pytest.mark.parametrize(
    "line, message",
    [
        ("25, Private, 226802, 11th, 7", r"line 3: 5 comma-separated fields, expected 15"),
        (ROW.replace("25,", "2x,"), r"line 3: age is '2x', which is not a number"),
        (ROW.replace(">50K", ">60K"), r"line 3: label '>60K', expected"),
    ],
)
def test_a_malformed_row_is_named_by_file_and_line(tmp_path, line, message):
    good = SMALL_FILE.decode().splitlines()[:2]
    (tmp_path / "bad.data").write_text("\n".join([*good, line, ""]))
    with pytest.raises(adult.AdultError, match=r"bad\.data, " + message):
        adult.read_adult(tmp_path / "bad.data")


def test_download_verify_and_read(tmp_path, local_server, monkeypatch):
    local_server.files["/adult.data"] = SMALL_FILE
    monkeypatch.setitem(adult.URLS, "train", local_server.url("/adult.data"))
    monkeypatch.setitem(adult.SHA256, "train", hashlib.sha256(SMALL_FILE).hexdigest())
    columns, labels = adult.load_adult(tmp_path, "train")
    assert labels.tolist() == [0, 1] and columns["education"].tolist() == ["11th", "HS-grad"]
    assert (tmp_path / "adult" / "adult.data").read_bytes() == SMALL_FILE
    adult.load_adult(tmp_path, "train")
    assert local_server.requests == ["/adult.data"]  # downloaded once, then read from disk


def test_a_bad_checksum_or_a_dropped_connection_leaves_nothing(tmp_path, local_server, monkeypatch):
    local_server.files["/adult.data"] = SMALL_FILE
    monkeypatch.setitem(adult.URLS, "train", local_server.url("/adult.data"))
    monkeypatch.setitem(adult.SHA256, "train", "0" * 64)
    with pytest.raises(DownloadError, match="SHA-256"):
        adult.load_adult(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it

    monkeypatch.setitem(adult.SHA256, "train", hashlib.sha256(SMALL_FILE).hexdigest())
    local_server.cut["/adult.data"] = len(SMALL_FILE) // 2
    with pytest.raises(DownloadError, match="broke off"):
        adult.load_adult(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it


def test_offline_without_download_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        adult.load_adult(tmp_path, "test", download=False)
    message = str(error.value)
    assert "Download it from " + adult.BASE_URL + "adult.test" in message
    assert f"and put it in {tmp_path / 'adult'}" in message


def test_an_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        adult.load_adult(tmp_path, "valid", download=False)


def test_a_data_dir_that_holds_the_files_is_used_as_it_is(tmp_path, monkeypatch, offline_url):
    """--data-dir .../adult (the folder with adult.data in it) reads the file there; nothing
    is downloaded and no adult/adult/ folder appears."""
    (tmp_path / "adult.data").write_bytes(SMALL_FILE)
    monkeypatch.setitem(adult.URLS, "train", offline_url + "adult.data")
    _, labels = adult.load_adult(tmp_path, "train")
    assert labels.tolist() == [0, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["adult.data"]


def test_offline_a_failed_download_leaves_nothing_and_names_both_files(
    tmp_path, monkeypatch, offline_url
):
    monkeypatch.setitem(adult.URLS, "test", offline_url + "adult.test")
    with pytest.raises(DownloadError, match="could not be reached") as caught:
        adult.load_adult(tmp_path / "data", "test")
    assert not (tmp_path / "data").exists()  # neither data/ nor data/adult/ stays behind
    assert caught.value.also == ("adult.data",)
    assert caught.value.holds == ("adult.data", "adult.test")
