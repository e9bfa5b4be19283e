"""Data sets in their real on-disk formats, read with NumPy and nothing else (never pickle).

Read `download.py` first (where the data lives, and how a missing file is fetched safely),
then `idx.py` (the IDX format of MNIST and Fashion-MNIST), `cifar.py` (CIFAR-10's binary
format), `adult.py` (UCI Adult's CSV files), `california.py` (California housing, read from
scikit-learn's archive), `movielens.py` (MovieLens 100K's ratings, users and movies, and the
splits and sampled negatives of recommendation) and `augment.py` (normalization, the paper's
crops and flips, batches); `offline.py` is what the example scripts do without data and
network (a message, or a stand-in data set).

Every loader takes `data_dir` (default: TINYDEEP_DATA, else ~/.cache/tinydeep), finds its files
in a sub-folder named after the data set or in data_dir itself (download.find_folder),
downloads missing ones when `download=True`, and returns plain NumPy arrays.
"""

from tinydeep.data.adult import AdultError, load_adult, read_adult
from tinydeep.data.augment import batches, channel_stats, normalize, random_crop_flip
from tinydeep.data.california import CaliforniaError, load_california_housing
from tinydeep.data.cifar import CifarError, load_cifar10, read_cifar_binary
from tinydeep.data.download import DownloadError, data_dir, fetch, find_folder
from tinydeep.data.features import WideDeepFeatures, hash_cross
from tinydeep.data.idx import IdxError, load_fashion_mnist, load_mnist, read_idx
from tinydeep.data.movielens import (
    MovieLens,
    MovieLensError,
    leave_last_one_out,
    load_movielens_100k,
    random_split,
    sample_negatives,
    temporal_split,
)

__all__ = [
    "AdultError",
    "CaliforniaError",
    "CifarError",
    "DownloadError",
    "IdxError",
    "MovieLens",
    "MovieLensError",
    "WideDeepFeatures",
    "batches",
    "channel_stats",
    "data_dir",
    "fetch",
    "find_folder",
    "hash_cross",
    "leave_last_one_out",
    "load_adult",
    "load_california_housing",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "load_movielens_100k",
    "normalize",
    "random_crop_flip",
    "random_split",
    "read_adult",
    "read_cifar_binary",
    "read_idx",
    "sample_negatives",
    "temporal_split",
]
