"""Notebooks 00, 02-12 (00, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12): offline datasets (digits, MNIST-1D, synthetic) and real MNIST/CIFAR-10 loaders.

Datasets for the course: offline first.

Everything the notebooks need by default works without a network:

* :func:`digits` -- the 8x8 handwritten digits that ship inside scikit-learn
  (1797 images, 64 pixels, 10 classes);
* :func:`mnist1d` -- MNIST-1D, *generated locally* by the ``mnist1d`` package
  (never downloaded);
* :func:`gaussian_blobs`, :func:`isotropic_gaussian`, :func:`uniform_sphere`
  -- small synthetic data sets drawn from a seeded local generator.

The real MNIST and CIFAR-10 are read from files you place yourself in
:func:`data_dir` (``ISODL_DATA`` or the repository's ``data/`` folder).
Every file is checked against its official SHA-256 before it is used. A file
that does not match is reported and *left untouched* -- never overwritten,
moved or deleted. ``download=True`` fetches a missing file where a network
exists; it writes to a temporary ``.part`` file first and only moves it into
place once its checksum is right.

Randomness: every function that draws random numbers takes a ``seed`` and uses
its own :class:`numpy.random.Generator`, so calling it never changes the global
streams that :func:`isodl.setup` seeded (and the global streams never change
what it returns). MNIST-1D's own generator reseeds the global NumPy and
Python streams, so :func:`mnist1d` saves and restores them around it.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import math
import os
import pickle
import random
import struct
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from isodl.core.validate import check_bool, check_choice, check_float, check_int, check_tensor

__all__ = [
    "DATA_ENV",
    "MNIST_URL",
    "MNIST_FILES",
    "MNIST_SHA256",
    "CIFAR10_URL",
    "CIFAR10_FILE",
    "CIFAR10_SHA256",
    "Dataset",
    "train_test_split",
    "standardise",
    "digits",
    "mnist1d",
    "gaussian_blobs",
    "isotropic_gaussian",
    "uniform_sphere",
    "data_dir",
    "sha256_of",
    "ChecksumError",
    "load_mnist",
    "load_cifar10",
    "DATASETS",
    "load_dataset",
]

#: Environment variable that overrides :func:`data_dir`.
DATA_ENV = "ISODL_DATA"

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: The four MNIST files, in the order train images, train labels, test images, test labels.
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
#: Official SHA-256 digests of the gzip-compressed MNIST files.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_FILE = "cifar-10-python.tar.gz"
#: Official SHA-256 digest of the python-version CIFAR-10 archive.
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"

_IDX_IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension
_CHUNK = 1 << 20
_DIGIT_CLASSES = [str(k) for k in range(10)]


# --------------------------------------------------------------------------- helpers


def _check_dtype(name: str, dtype) -> torch.dtype:
    """Return ``dtype`` if it is a real floating torch dtype, else raise naming ``name``."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch floating dtype such as torch.float32, got {dtype!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"{name} must be a torch floating dtype such as torch.float32, got {dtype}")
    return dtype


def _check_seed(seed) -> int:
    return check_int("seed", seed, minimum=0, maximum=2**63 - 1)


def _check_test_fraction(test_fraction) -> float:
    value = check_float("test_fraction", test_fraction, minimum=0.0, strict_minimum=True)
    if value >= 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {value}")
    return value


def _check_root(root, default: Path) -> Path:
    if root is None:
        return default
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or pathlib.Path) or None, got {type(root).__name__}")
    return Path(root).expanduser().resolve()


def _check_hex_digest(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a SHA-256 hex digest (64 hex characters), got {type(value).__name__}")
    digest = value.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{name} must be a SHA-256 hex digest (64 hex characters), got {value!r}")
    return digest


def _check_url(url) -> str:
    if not isinstance(url, str) or not url.strip():
        raise TypeError(f"url must be a non-empty string, got {url!r}")
    return url.strip()


# --------------------------------------------------------------------------- Dataset


@dataclass
class Dataset:
    """A classification data set split into train and test parts.

    ``x_*`` are floating tensors whose first dimension indexes examples,
    ``y_*`` are int64 class indices into ``classes``. ``meta`` holds extras
    such as ``"image_shape"``, ``"standardised"``, ``"mean"``/``"std"`` (the
    train statistics, when standardised) and ``"source"``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    classes: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x = check_tensor(f"x_{part}", getattr(self, f"x_{part}"))
            y = check_tensor(f"y_{part}", getattr(self, f"y_{part}"), ndim=1)
            if x.ndim < 1 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"x_{part} and y_{part} must have the same number of rows, got {list(x.shape)} and {list(y.shape)}"
                )
            if y.dtype != torch.int64:
                raise TypeError(f"y_{part} must be an int64 tensor of class indices, got dtype {y.dtype}")
            setattr(self, f"x_{part}", x)
            setattr(self, f"y_{part}", y)
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"x_train and x_test must have the same feature shape, "
                f"got {list(self.x_train.shape[1:])} and {list(self.x_test.shape[1:])}"
            )
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {type(self.name).__name__}")
        self.classes = [str(c) for c in self.classes]

    @property
    def n_features(self) -> int:
        """Number of input values per example (image dimensions multiplied out)."""
        return int(math.prod(self.x_train.shape[1:]))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: x_train={list(self.x_train.shape)} y_train={list(self.y_train.shape)} "
            f"x_test={list(self.x_test.shape)} y_test={list(self.y_test.shape)} "
            f"classes={self.n_classes} dtype={self.x_train.dtype})"
        )

    def to(self, dtype: torch.dtype) -> Dataset:
        """Return a copy whose floating tensors (inputs and ``meta`` statistics) have ``dtype``."""
        dtype = _check_dtype("dtype", dtype)

        def cast(value):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.to(dtype)
            return value

        return dataclasses.replace(
            self,
            x_train=cast(self.x_train),
            x_test=cast(self.x_test),
            classes=list(self.classes),
            meta={key: cast(value) for key, value in self.meta.items()},
        )


# --------------------------------------------------------------------------- split and standardise


def train_test_split(x, y, test_fraction: float = 0.25, seed: int = 0, stratify: bool = True):
    """Split ``x``/``y`` into ``(x_train, y_train, x_test, y_test)``.

    The test part has ``round(test_fraction * n)`` rows (at least 1, at most
    ``n - 1``). With ``stratify=True`` each class contributes to the test part
    in proportion to its size (largest-remainder rounding), so class balance is
    kept. The same ``seed`` always gives the same split; a local
    ``numpy.random.Generator`` is used, never the global state. Both parts are
    shuffled.
    """
    x = check_tensor("x", x)
    y = check_tensor("y", y, ndim=1)
    if x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {list(x.shape)} and {list(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    test_fraction = _check_test_fraction(test_fraction)
    seed = _check_seed(seed)
    stratify = check_bool("stratify", stratify)
    n = int(y.shape[0])
    if n < 2:
        raise ValueError(f"x and y must have at least 2 rows to split, got {n}")

    rng = np.random.default_rng(seed)
    n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
    labels = y.cpu().numpy()
    if stratify:
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * (n_test / n)
        per_class = np.floor(exact).astype(np.int64)
        remaining = n_test - int(per_class.sum())
        if remaining > 0:
            # largest fractional parts first; ties broken at random (but by seed)
            order = np.lexsort((rng.random(len(classes)), -(exact - per_class)))
            per_class[order[:remaining]] += 1
        test_parts, train_parts = [], []
        for cls, k in zip(classes, per_class):
            idx = np.flatnonzero(labels == cls)
            idx = idx[rng.permutation(len(idx))]
            test_parts.append(idx[:k])
            train_parts.append(idx[k:])
        test_idx = np.concatenate(test_parts)
        train_idx = np.concatenate(train_parts)
        test_idx = test_idx[rng.permutation(len(test_idx))]
        train_idx = train_idx[rng.permutation(len(train_idx))]
    else:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]

    train_t = torch.as_tensor(train_idx, dtype=torch.long, device=x.device)
    test_t = torch.as_tensor(test_idx, dtype=torch.long, device=x.device)
    return x[train_t], y[train_t.to(y.device)], x[test_t], y[test_t.to(y.device)]


def _standardise(train: torch.Tensor, others, eps: float):
    mean = train.mean(dim=0)
    std = train.std(dim=0, correction=0)
    std = torch.where(std < eps, torch.ones_like(std), std)
    return [(t - mean) / std for t in (train, *others)], mean, std


def standardise(train, *others, eps: float = 1e-8):
    """Standardise features with the statistics of ``train`` only.

    Returns ``(train_std, *others_std, mean, std)``. ``mean`` and ``std`` are
    per feature (over the first dimension of ``train``; population std). A
    feature whose std is below ``eps`` (for example a pixel that is always 0)
    gets std 1, so it is only centred and nothing becomes NaN or infinite.
    The test data must never contribute to the statistics: that would leak
    information about it into training.
    """
    eps = check_float("eps", eps, minimum=0.0)
    train = check_tensor("train", train, floating=True, finite=True)
    if train.ndim < 1 or train.shape[0] < 1:
        raise ValueError(f"train must have at least one row, got shape {list(train.shape)}")
    checked = []
    for i, other in enumerate(others):
        name = f"others[{i}]"
        other = check_tensor(name, other, floating=True)
        if other.shape[1:] != train.shape[1:]:
            raise ValueError(
                f"{name} must have the same feature shape as train {list(train.shape[1:])}, got {list(other.shape[1:])}"
            )
        checked.append(other)
    parts, mean, std = _standardise(train, checked, eps)
    return (*parts, mean, std)


# --------------------------------------------------------------------------- offline data sets


def digits(
    seed: int = 0,
    test_fraction: float = 0.25,
    standardise: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """The 8x8 handwritten digits bundled with scikit-learn (no download).

    1797 images of 64 pixels (values 0..16), 10 classes, split stratified by
    ``seed``. With ``standardise=True`` every pixel is centred and scaled with
    the *train* statistics (stored in ``meta["mean"]``/``meta["std"]``); with
    ``standardise=False`` you get the raw pixel values 0..16.
    """
    from sklearn.datasets import load_digits

    seed = _check_seed(seed)
    test_fraction = _check_test_fraction(test_fraction)
    do_standardise = check_bool("standardise", standardise)
    dtype = _check_dtype("dtype", dtype)

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float64)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, test_fraction=test_fraction, seed=seed, stratify=True)
    meta = {
        "image_shape": (8, 8),
        "standardised": do_standardise,
        "source": "sklearn.datasets.load_digits (bundled with scikit-learn)",
        "seed": seed,
    }
    if do_standardise:
        (x_tr, x_te), mean, std = _standardise(x_tr, [x_te], 1e-8)
        meta["mean"], meta["std"] = mean.to(dtype), std.to(dtype)
    return Dataset(x_tr.to(dtype), y_tr, x_te.to(dtype), y_te, "digits", list(_DIGIT_CLASSES), meta)


@functools.lru_cache(maxsize=8)
def _mnist1d_arrays(n_samples: int, generator_seed: int):
    """Generate MNIST-1D once per (n_samples, generator_seed); arrays are read-only."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n_samples
    args.seed = generator_seed
    # make_dataset reseeds and consumes the GLOBAL numpy and python streams:
    # save and restore them so the caller's seeded experiment is undisturbed.
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        np.asarray(raw["x"], dtype=np.float64),
        np.asarray(raw["y"], dtype=np.int64),
        np.asarray(raw["x_test"], dtype=np.float64),
        np.asarray(raw["y_test"], dtype=np.int64),
        np.asarray(raw["t"], dtype=np.float64),
    )
    for a in arrays:
        a.setflags(write=False)
    return arrays


def mnist1d(
    *,
    n_samples: int = 5000,
    generator_seed: int = 42,
    standardise: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package.

    Nothing is downloaded: the package's ``make_dataset`` builds the signals
    from ten 1-D templates. With the defaults (``n_samples=5000``,
    ``generator_seed=42``) you get the standard data set: 4000 train and 1000
    test signals of length 40, 10 classes, using the package's own 80/20
    split.

    There is deliberately no ``seed`` argument: the data set (and its split) is
    fixed by ``generator_seed``, so results stay comparable with published
    MNIST-1D numbers. Change ``generator_seed`` to draw a different data set.
    The global random state of NumPy and Python is restored after generation,
    and the result is cached in-process (each call returns fresh tensors).

    ``meta["t"]`` holds the 40 sample positions (for plotting). The package
    already centres the whole data set and scales it to std 1; set
    ``standardise=True`` to standardise each position with train statistics.
    """
    n_samples = check_int("n_samples", n_samples, minimum=10)
    generator_seed = check_int("generator_seed", generator_seed, minimum=0, maximum=2**32 - 1)
    do_standardise = check_bool("standardise", standardise)
    dtype = _check_dtype("dtype", dtype)

    x_tr, y_tr, x_te, y_te, t = _mnist1d_arrays(n_samples, generator_seed)
    x_tr = torch.tensor(x_tr, dtype=torch.float64)
    x_te = torch.tensor(x_te, dtype=torch.float64)
    meta = {
        "t": torch.tensor(t, dtype=dtype),
        "standardised": do_standardise,
        "source": "mnist1d.data.make_dataset (generated locally)",
        "n_samples": n_samples,
        "generator_seed": generator_seed,
    }
    if do_standardise:
        (x_tr, x_te), mean, std = _standardise(x_tr, [x_te], 1e-8)
        meta["mean"], meta["std"] = mean.to(dtype), std.to(dtype)
    return Dataset(
        x_tr.to(dtype),
        torch.tensor(y_tr, dtype=torch.int64),
        x_te.to(dtype),
        torch.tensor(y_te, dtype=torch.int64),
        "mnist1d",
        list(_DIGIT_CLASSES),
        meta,
    )


# --------------------------------------------------------------------------- synthetic data


def gaussian_blobs(
    n_samples: int = 600,
    n_features: int = 2,
    n_classes: int = 3,
    spread: float = 1.0,
    seed: int = 0,
    test_fraction: float = 0.25,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Balanced Gaussian blobs: class ``k`` is ``centre_k + spread * N(0, I)``.

    The centres lie evenly on a circle in the first two features (on a line
    when ``n_features == 1``), with neighbouring centres 4 apart, so
    ``spread=1`` gives well separated classes and larger spreads overlap.
    Features beyond the second are pure noise. Centres are stored in
    ``meta["centres"]``. The split is stratified with the same ``seed``.
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    n_features = check_int("n_features", n_features, minimum=1)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    spread = check_float("spread", spread, minimum=0.0, strict_minimum=True)
    seed = _check_seed(seed)
    test_fraction = _check_test_fraction(test_fraction)
    dtype = _check_dtype("dtype", dtype)
    if n_samples < 2 * n_classes:
        raise ValueError(
            f"n_samples must be at least 2 * n_classes = {2 * n_classes} so every class "
            f"appears in train and test, got {n_samples}"
        )

    rng = np.random.default_rng(seed)
    centres = np.zeros((n_classes, n_features))
    if n_features == 1:
        centres[:, 0] = 4.0 * np.arange(n_classes) - 2.0 * (n_classes - 1)
    else:
        radius = 2.0 / math.sin(math.pi / n_classes)  # neighbouring centres are 4 apart
        angles = rng.uniform(0, 2 * math.pi) + 2 * math.pi * np.arange(n_classes) / n_classes
        centres[:, 0] = radius * np.cos(angles)
        centres[:, 1] = radius * np.sin(angles)
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    labels = np.repeat(np.arange(n_classes), counts)
    points = centres[labels] + spread * rng.standard_normal((n_samples, n_features))

    x = torch.as_tensor(points, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.int64)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, test_fraction=test_fraction, seed=seed, stratify=True)
    meta = {
        "centres": torch.as_tensor(centres, dtype=dtype),
        "spread": spread,
        "standardised": False,
        "source": "synthetic (isodl.core.data.gaussian_blobs)",
        "seed": seed,
    }
    return Dataset(x_tr.to(dtype), y_tr, x_te.to(dtype), y_te, "blobs", [str(k) for k in range(n_classes)], meta)


def isotropic_gaussian(n_samples: int, dim: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n_samples`` draws from the standard normal N(0, I) in ``dim`` dimensions, shape ``[n, dim]``."""
    n_samples = check_int("n_samples", n_samples, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    seed = _check_seed(seed)
    dtype = _check_dtype("dtype", dtype)
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.standard_normal((n_samples, dim)), dtype=dtype)


def uniform_sphere(n_samples: int, dim: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n_samples`` points uniform on the unit sphere in ``dim`` dimensions, shape ``[n, dim]``.

    A standard normal vector divided by its length is uniform on the sphere,
    because the normal distribution is isotropic (looks the same in every
    direction).
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    seed = _check_seed(seed)
    dtype = _check_dtype("dtype", dtype)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n_samples, dim))
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    while np.any(norms == 0):  # probability zero, but never divide by 0
        bad = norms[:, 0] == 0
        g[bad] = rng.standard_normal((int(bad.sum()), dim))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
    return torch.as_tensor(g / norms, dtype=dtype)


# --------------------------------------------------------------------------- files, checksums, downloads


def data_dir() -> Path:
    """The folder that holds downloaded data sets (absolute path).

    The environment variable ``ISODL_DATA`` wins; otherwise the repository's
    ``data/`` folder when it exists; otherwise ``./data`` under the current
    working directory.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    repo_data = Path(__file__).resolve().parents[2] / "data"
    if repo_data.is_dir():
        return repo_data
    return (Path.cwd() / "data").resolve()


def sha256_of(path) -> str:
    """SHA-256 hex digest of a file, read in chunks (constant memory)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or pathlib.Path), got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not an existing file")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the expected one.

    An existing file is never changed; a failed download leaves nothing
    behind. Attributes: ``path``, ``expected``, ``actual``, ``url``.
    """

    def __init__(self, path, expected: str, actual: str, *, url: str | None = None):
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        self.url = url
        if url is None:
            message = (
                f"checksum mismatch for {self.path}: expected SHA-256 {expected}, got {actual}. "
                f"The file was left untouched. It is probably incomplete, corrupted or a different "
                f"version: delete or replace it yourself with the official file, then try again."
            )
        else:
            message = (
                f"checksum mismatch for the download of {self.path.name} from {url}: expected SHA-256 "
                f"{expected}, got {actual}. The downloaded data was discarded and nothing was written to "
                f"{self.path}. Check the url, or download the official file yourself and place it there."
            )
        super().__init__(message)


def _download(url: str, dest: Path, expected: str) -> None:
    """Fetch ``url`` into ``dest`` via a temporary ``.part`` file in the same folder."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except OSError as exc:  # URLError, HTTPError, timeouts are all OSErrors
                raise OSError(
                    f"could not download {url} ({exc}). Without a network, download the file "
                    f"elsewhere and place it at {dest}."
                ) from exc
        actual = digest.hexdigest()
        if actual != expected:
            raise ChecksumError(dest, expected, actual, url=url)
        if dest.exists():  # appeared meanwhile: never overwrite a user's file
            raise FileExistsError(f"{dest} appeared during the download; it was left untouched, run again to verify it")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a data file is ordinary
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _missing_files_error(what: str, folder: Path, missing: list[str], function: str) -> FileNotFoundError:
    names = ", ".join(missing)
    return FileNotFoundError(
        f"{what} file(s) not found: {names}. Place {'this file' if len(missing) == 1 else 'these files'} "
        f"in the folder {folder} (or pass root=... to {function}, or set the environment variable "
        f"{DATA_ENV}). Where a network exists, {function}(download=True) fetches missing files and "
        f"checks their SHA-256."
    )


def _ensure_files(
    what: str, folder: Path, expected: dict[str, str], urls: dict[str, str], download: bool, function: str
) -> dict[str, Path]:
    """Make sure every file exists and matches its digest; download missing ones if allowed."""
    paths = {name: folder / name for name in expected}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing and not download:
        raise _missing_files_error(what, folder, missing, function)
    for name, path in paths.items():
        if name in missing:
            _download(urls[name], path, expected[name])
        else:
            actual = sha256_of(path)
            if actual != expected[name]:
                raise ChecksumError(path, expected[name], actual)
    return paths


# --------------------------------------------------------------------------- MNIST


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable gzip-compressed IDX file: {exc}") from exc
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{path} is too short for an IDX header ({len(data)} bytes)")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise ValueError(
            f"{path} has IDX magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}); "
            f"is it the right file?"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    if any(d == 0 for d in dims):
        raise ValueError(f"{path} declares an empty array of shape {dims}")
    payload = len(data) - header_len
    if payload != math.prod(dims):
        raise ValueError(
            f"{path} declares shape {dims} ({math.prod(dims)} bytes of data) but holds {payload} bytes; "
            f"the file is truncated or corrupted"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def load_mnist(
    root=None,
    download: bool = False,
    url: str = MNIST_URL,
    sha256: dict[str, str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """The real MNIST from its four gzip-compressed IDX files.

    ``root`` defaults to ``data_dir() / "mnist"``. Each file is checked against
    :data:`MNIST_SHA256` (``sha256`` overrides some or all digests, as a dict
    ``filename -> hex``). ``download=True`` fetches missing files from
    ``url + filename``. Pixels become floats in [0, 1], flattened to
    ``[N, rows * cols]``; ``meta["image_shape"]`` is ``(rows, cols)``.
    """
    folder = _check_root(root, data_dir() / "mnist")
    download = check_bool("download", download)
    url = _check_url(url)
    dtype = _check_dtype("dtype", dtype)
    expected = dict(MNIST_SHA256)
    if sha256 is not None:
        if not isinstance(sha256, dict):
            raise TypeError(f"sha256 must be a dict filename -> hex digest or None, got {type(sha256).__name__}")
        for name, digest in sha256.items():
            if name not in MNIST_SHA256:
                raise ValueError(f"unknown file {name!r} in sha256; expected keys among {list(MNIST_FILES)}")
            expected[name] = _check_hex_digest(f"sha256[{name!r}]", digest)
    base = url if url.endswith("/") else url + "/"
    urls = {name: base + name for name in MNIST_FILES}
    paths = _ensure_files("MNIST", folder, expected, urls, download, "load_mnist")

    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images_path = paths[f"{prefix}-images-idx3-ubyte.gz"]
        labels_path = paths[f"{prefix}-labels-idx1-ubyte.gz"]
        images = _read_idx(images_path, _IDX_IMAGES_MAGIC, 3)
        labels = _read_idx(labels_path, _IDX_LABELS_MAGIC, 1)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} labels"
            )
        if labels.max() > 9:
            raise ValueError(f"{labels_path} holds label {int(labels.max())}; MNIST labels are 0..9")
        parts[split] = (images, labels)
    image_shape = tuple(int(d) for d in parts["train"][0].shape[1:])
    if tuple(parts["test"][0].shape[1:]) != image_shape:
        raise ValueError(f"train images are {image_shape} but test images are {tuple(parts['test'][0].shape[1:])}")

    def images_to_tensor(images: np.ndarray) -> torch.Tensor:
        return torch.tensor(images.reshape(images.shape[0], -1), dtype=dtype) / 255

    meta = {"image_shape": image_shape, "standardised": False, "source": f"MNIST IDX files in {folder}"}
    return Dataset(
        images_to_tensor(parts["train"][0]),
        torch.tensor(parts["train"][1], dtype=torch.int64),
        images_to_tensor(parts["test"][0]),
        torch.tensor(parts["test"][1], dtype=torch.int64),
        "mnist",
        list(_DIGIT_CLASSES),
        meta,
    )


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_member(tar: tarfile.TarFile, archive: Path, name: str) -> dict:
    member_name = f"cifar-10-batches-py/{name}"
    try:
        member = tar.getmember(member_name)
    except KeyError:
        raise ValueError(f"{archive} has no member {member_name!r}; is it the python version of CIFAR-10?") from None
    handle = tar.extractfile(member)
    if handle is None:
        raise ValueError(f"{archive}: member {member_name!r} is not a regular file")
    with handle:
        # safe only because the archive's SHA-256 was verified before we got here
        content = pickle.load(handle, encoding="bytes")
    if not isinstance(content, dict):
        raise ValueError(f"{archive}: member {member_name!r} does not hold a dict")
    return content


def _cifar_batch(tar: tarfile.TarFile, archive: Path, name: str):
    batch = _cifar_member(tar, archive, name)
    if b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{archive}: batch {name!r} lacks the keys b'data' and b'labels'")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{archive}: batch {name!r} data must have shape [N, 3072], got {list(data.shape)}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{archive}: batch {name!r} has {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{archive}: batch {name!r} has labels outside 0..9")
    return data, labels


def load_cifar10(
    root=None,
    download: bool = False,
    url: str = CIFAR10_URL,
    sha256: str = CIFAR10_SHA256,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """The real CIFAR-10 from the python-version archive ``cifar-10-python.tar.gz``.

    ``root`` defaults to ``data_dir() / "cifar10"``. The archive's SHA-256 is
    verified *before* anything in it is unpickled (unpickling runs code, so
    only pass a different ``sha256`` for a file you trust). The batches are
    read straight from the archive in memory; nothing is extracted to disk.
    Pixels become floats in [0, 1] of shape ``[N, 3, 32, 32]``; the class names
    come from ``batches.meta``.
    """
    folder = _check_root(root, data_dir() / "cifar10")
    download = check_bool("download", download)
    url = _check_url(url)
    expected = _check_hex_digest("sha256", sha256)
    dtype = _check_dtype("dtype", dtype)
    paths = _ensure_files("CIFAR-10", folder, {CIFAR10_FILE: expected}, {CIFAR10_FILE: url}, download, "load_cifar10")
    archive = paths[CIFAR10_FILE]
    try:
        tar = tarfile.open(archive, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{archive} is not a readable tar.gz archive: {exc}") from exc
    with tar:
        train = [_cifar_batch(tar, archive, f"data_batch_{k}") for k in range(1, 6)]
        test = _cifar_batch(tar, archive, "test_batch")
        meta_dict = _cifar_member(tar, archive, "batches.meta")
    names = meta_dict.get(b"label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise ValueError(f"{archive}: batches.meta must hold 10 label names under b'label_names'")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]

    def to_images(data: np.ndarray) -> torch.Tensor:
        return torch.tensor(data.reshape(-1, 3, 32, 32), dtype=dtype) / 255

    x_train = to_images(np.concatenate([d for d, _ in train]))
    y_train = torch.tensor(np.concatenate([lab for _, lab in train]), dtype=torch.int64)
    meta = {"image_shape": (3, 32, 32), "standardised": False, "source": f"CIFAR-10 python archive {archive}"}
    return Dataset(
        x_train, y_train, to_images(test[0]), torch.tensor(test[1], dtype=torch.int64), "cifar10", classes, meta
    )


# --------------------------------------------------------------------------- dispatch

#: Names accepted by :func:`load_dataset` and the functions they call.
DATASETS = {
    "digits": digits,
    "mnist1d": mnist1d,
    "blobs": gaussian_blobs,
    "mnist": load_mnist,
    "cifar10": load_cifar10,
}


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load a data set by name: ``"digits"``, ``"mnist1d"``, ``"blobs"``, ``"mnist"`` or ``"cifar10"``.

    Keyword arguments go to the matching function (:func:`digits`,
    :func:`mnist1d`, :func:`gaussian_blobs`, :func:`load_mnist`,
    :func:`load_cifar10`).
    """
    key = check_choice("dataset name", name, DATASETS)
    return DATASETS[key](**kwargs)
