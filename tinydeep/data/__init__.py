"""Data sets in their real on-disk formats, read with NumPy and nothing else (never pickle).

Read `download.py` first (where the data lives, and how a missing file is fetched safely),
then `idx.py` (the IDX format of MNIST and Fashion-MNIST, and their loaders).

Every loader takes `data_dir` (default: TINYDEEP_DATA, else ~/.cache/tinydeep), finds its files
in a sub-folder named after the data set, downloads missing ones when `download=True`, and
returns plain NumPy arrays. Left out: batching and shuffling, which the training loop does.
"""

from tinydeep.data.download import DownloadError, data_dir, fetch
from tinydeep.data.idx import IdxError, load_fashion_mnist, load_mnist, read_idx

__all__ = [
    "DownloadError",
    "IdxError",
    "data_dir",
    "fetch",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
]
