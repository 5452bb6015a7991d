"""Tests for isodl.core.data: offline data sets, synthetic generators and the real-data loaders.

The MNIST and CIFAR-10 loaders are tested with tiny fixture files written here
in the real formats (gzip IDX, python-pickle tar.gz). Nothing touches the
network: downloads only ever use file:// URLs made in the test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import random
import re
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from isodl.core import data as D
from isodl.core.data import ChecksumError, Dataset

FAST = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------- fixture writers (independent of the module)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx_images(path: Path, images: np.ndarray, magic: int = 2051) -> None:
    n, rows, cols = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray, magic: int = 2049) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes())


def make_mnist_folder(folder: Path, seed: int = 0):
    """6 train and 3 test images of 4x4 with labels; returns arrays and digests."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8),
        "train_y": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
        "test_x": rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8),
        "test_y": np.array([5, 6, 7], dtype=np.uint8),
    }
    arrays["train_x"][0, 0, 0] = 255
    arrays["train_x"][0, 0, 1] = 0
    write_idx_images(folder / "train-images-idx3-ubyte.gz", arrays["train_x"])
    write_idx_labels(folder / "train-labels-idx1-ubyte.gz", arrays["train_y"])
    write_idx_images(folder / "t10k-images-idx3-ubyte.gz", arrays["test_x"])
    write_idx_labels(folder / "t10k-labels-idx1-ubyte.gz", arrays["test_y"])
    digests = {name: sha(folder / name) for name in D.MNIST_FILES}
    return arrays, digests


CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def make_cifar_archive(path: Path, seed: int = 0, extra_member: bytes | None = None):
    """A tar.gz in the python-CIFAR layout with 2 rows per batch; returns the batches."""
    rng = np.random.default_rng(seed)
    batches = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, payload: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
            batch = {
                b"data": rng.integers(0, 256, size=(2, 3072), dtype=np.uint8),
                b"labels": [int(v) for v in rng.integers(0, 10, size=2)],
                b"batch_label": name.encode(),
            }
            batches[name] = batch
            add(name, extra_member if (extra_member is not None and name == "data_batch_1") else pickle.dumps(batch))
        add("batches.meta", pickle.dumps({b"label_names": CIFAR_NAMES, b"num_vis": 3072}))
    return batches


def snapshot(path: Path):
    st_ = path.stat()
    return path.read_bytes(), st_.st_mtime_ns, st_.st_size


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits0():
    return D.digits(seed=0)


def test_digits_shapes_and_classes(digits0):
    d = digits0
    assert isinstance(d, Dataset)
    assert d.n_train + d.n_test == 1797
    assert d.n_features == 64 and d.n_classes == 10
    assert d.x_train.shape == (d.n_train, 64) and d.x_test.shape == (d.n_test, 64)
    assert d.y_train.dtype == torch.int64 and d.x_train.dtype == torch.float32
    assert d.n_test == round(0.25 * 1797)
    assert d.meta["image_shape"] == (8, 8) and d.meta["standardised"] is True
    assert d.classes == [str(k) for k in range(10)]
    assert "[1348, 64]" in repr(d) and "\n" not in repr(d)


def test_digits_split_is_stratified(digits0):
    total = torch.bincount(torch.cat([digits0.y_train, digits0.y_test]), minlength=10)
    test = torch.bincount(digits0.y_test, minlength=10)
    assert torch.all((test.double() - 0.25 * total.double()).abs() <= 1.0)


def test_digits_standardised_with_train_statistics(digits0):
    raw = D.digits(seed=0, standardise=False)
    assert raw.meta["standardised"] is False and "mean" not in raw.meta
    assert raw.x_train.min() >= 0 and raw.x_train.max() <= 16
    assert torch.equal(raw.x_train, raw.x_train.round())
    d = digits0
    for x in (d.x_train, d.x_test):
        assert torch.isfinite(x).all()
    varying = raw.x_train.std(dim=0) > 0
    assert (~varying).any(), "digits has constant pixels; the eps rule must handle them"
    assert d.x_train.mean(dim=0).abs().max() < 1e-4
    assert torch.allclose(d.x_train.std(dim=0, correction=0)[varying], torch.ones(int(varying.sum())), atol=1e-4)
    # the test part uses the train statistics
    expected = (raw.x_test - d.meta["mean"]) / d.meta["std"]
    assert torch.allclose(d.x_test, expected, atol=1e-5)


def test_digits_seed_determinism():
    a, b, c = D.digits(seed=3), D.digits(seed=3), D.digits(seed=4)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.y_test, c.y_test) or not torch.equal(a.x_test, c.x_test)


def test_digits_dtype_and_to():
    d = D.digits(seed=0, dtype=torch.float64)
    assert d.x_train.dtype == torch.float64 and d.meta["mean"].dtype == torch.float64
    e = d.to(torch.float32)
    assert e.x_train.dtype == torch.float32 and e.x_test.dtype == torch.float32
    assert e.meta["std"].dtype == torch.float32 and e.y_train.dtype == torch.int64
    assert d.x_train.dtype == torch.float64  # the original is unchanged
    assert torch.allclose(e.x_train.double(), d.x_train, atol=1e-6)


# --------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_shapes_and_determinism():
    a = D.mnist1d()
    assert a.x_train.shape == (4000, 40) and a.x_test.shape == (1000, 40)
    assert a.n_classes == 10 and set(a.y_train.tolist()) == set(range(10))
    assert a.meta["t"].shape == (40,)
    assert torch.isfinite(a.x_train).all()
    b = D.mnist1d()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    a.x_train.zero_()  # fresh tensors every call: mutating one never leaks into the cache
    assert not torch.equal(D.mnist1d().x_train, a.x_train)


def test_mnist1d_standardise_option():
    d = D.mnist1d(standardise=True, dtype=torch.float64)
    assert d.meta["standardised"] is True
    assert d.x_train.mean(dim=0).abs().max() < 1e-8
    assert torch.allclose(d.x_train.std(dim=0, correction=0), torch.ones(40, dtype=torch.float64))


def test_mnist1d_restores_global_random_state():
    D._mnist1d_arrays.cache_clear()  # force a real generation

    def draws():
        return np.random.rand(5).tolist(), [random.random() for _ in range(5)]

    np.random.seed(1234)
    random.seed(1234)
    expected = draws()
    np.random.seed(1234)
    random.seed(1234)
    d = D.mnist1d(n_samples=200, generator_seed=7)
    assert draws() == expected
    assert d.n_train == 160 and d.n_test == 40


def test_mnist1d_has_no_seed_argument():
    with pytest.raises(TypeError, match="seed"):
        D.mnist1d(seed=0)


# --------------------------------------------------------------------------- synthetic generators


def test_gaussian_blobs_shapes_determinism_balance():
    d = D.gaussian_blobs(n_samples=90, n_features=5, n_classes=3, seed=2)
    assert d.x_train.shape[1] == 5 and d.n_train + d.n_test == 90 and d.n_classes == 3
    counts = torch.bincount(torch.cat([d.y_train, d.y_test]))
    assert counts.tolist() == [30, 30, 30]
    same = D.gaussian_blobs(n_samples=90, n_features=5, n_classes=3, seed=2)
    assert torch.equal(d.x_train, same.x_train) and torch.equal(d.y_test, same.y_test)
    other = D.gaussian_blobs(n_samples=90, n_features=5, n_classes=3, seed=3)
    assert not torch.equal(d.x_train, other.x_train)
    assert d.meta["centres"].shape == (3, 5)


def test_gaussian_blobs_one_feature_and_separation():
    d = D.gaussian_blobs(n_samples=400, n_features=1, n_classes=4, spread=0.1, seed=0)
    # with a tiny spread, the nearest centre recovers every label
    c = d.meta["centres"]
    pred = ((d.x_train[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    assert torch.equal(pred, d.y_train)


def test_isotropic_gaussian():
    x = D.isotropic_gaussian(2000, 3, seed=1)
    assert x.shape == (2000, 3) and x.dtype == torch.float64
    assert torch.equal(x, D.isotropic_gaussian(2000, 3, seed=1))
    assert not torch.equal(x, D.isotropic_gaussian(2000, 3, seed=2))
    assert x.mean(0).abs().max() < 0.1 and (x.std(0) - 1).abs().max() < 0.1
    assert D.isotropic_gaussian(4, 2, dtype=torch.float32).dtype == torch.float32


@FAST
@given(n=st.integers(1, 50), dim=st.integers(1, 20), seed=st.integers(0, 2**31))
def test_uniform_sphere_unit_norm(n, dim, seed):
    x = D.uniform_sphere(n, dim, seed=seed)
    assert x.shape == (n, dim)
    assert torch.allclose(x.norm(dim=1), torch.ones(n, dtype=torch.float64))
    assert torch.equal(x, D.uniform_sphere(n, dim, seed=seed))


def test_generators_leave_global_state_alone():
    np.random.seed(5)
    torch.manual_seed(5)
    expected = (np.random.rand(3).tolist(), torch.rand(3).tolist())
    np.random.seed(5)
    torch.manual_seed(5)
    D.isotropic_gaussian(10, 2)
    D.uniform_sphere(10, 2)
    D.gaussian_blobs(n_samples=30)
    assert (np.random.rand(3).tolist(), torch.rand(3).tolist()) == expected


# --------------------------------------------------------------------------- split and standardise


@FAST
@given(
    counts=st.lists(st.integers(1, 30), min_size=2, max_size=6),
    frac=st.floats(0.05, 0.95),
    seed=st.integers(0, 10_000),
    stratify=st.booleans(),
)
def test_train_test_split_partitions(counts, frac, seed, stratify):
    y = torch.as_tensor(np.repeat(np.arange(len(counts)), counts), dtype=torch.int64)
    n = len(y)
    x = torch.arange(n, dtype=torch.float64)[:, None] * torch.ones(1, 2, dtype=torch.float64)
    x_tr, y_tr, x_te, y_te = D.train_test_split(x, y, test_fraction=frac, seed=seed, stratify=stratify)
    idx = torch.cat([x_tr[:, 0], x_te[:, 0]]).long()
    assert sorted(idx.tolist()) == list(range(n))  # a partition of the rows
    assert torch.equal(torch.cat([y_tr, y_te]), y[idx])  # rows keep their labels
    assert len(y_te) == min(max(round(frac * n), 1), n - 1)
    if stratify:
        got = torch.bincount(y_te, minlength=len(counts)).double()
        assert torch.all((got - torch.tensor(counts) * len(y_te) / n).abs() < 1.0)
    again = D.train_test_split(x, y, test_fraction=frac, seed=seed, stratify=stratify)
    assert all(torch.equal(a, b) for a, b in zip((x_tr, y_tr, x_te, y_te), again))


def test_standardise_zero_variance_stays_finite():
    train = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [5.0, 5.0, 0.0]])
    test = torch.tensor([[2.0, 7.0, 1.0]])
    tr, te, mean, std = D.standardise(train, test)
    assert torch.isfinite(tr).all() and torch.isfinite(te).all()
    assert torch.equal(std[1:], torch.ones(2))
    assert torch.allclose(te, torch.tensor([[(2 - 3) / std[0].item(), 2.0, 1.0]]))
    assert D.standardise(train)[0].shape == train.shape and len(D.standardise(train)) == 3


@FAST
@given(
    n_train=st.integers(2, 30),
    n_other=st.integers(1, 10),
    dim=st.integers(1, 6),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 10_000),
)
def test_standardise_uses_train_statistics_only(n_train, n_other, dim, scale, seed):
    rng = np.random.default_rng(seed)
    train_np = scale * rng.standard_normal((n_train, dim)) + rng.normal(size=dim)
    other_np = 10 * scale * rng.standard_normal((n_other, dim)) - 3.0
    train, other = torch.as_tensor(train_np), torch.as_tensor(other_np)
    tr, oth, mean, std = D.standardise(train, other)
    ref_mean = train_np.mean(0)
    ref_std = train_np.std(0)
    ref_std = np.where(ref_std < 1e-8, 1.0, ref_std)
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(std.numpy(), ref_std, rtol=1e-10)
    np.testing.assert_allclose(oth.numpy(), (other_np - ref_mean) / ref_std, rtol=1e-8, atol=1e-8)
    # a different "other" never changes the statistics
    _, _, mean2, std2 = D.standardise(train, other * 100 + 7)
    assert torch.equal(mean, mean2) and torch.equal(std, std2)


# --------------------------------------------------------------------------- real MNIST (fixtures)


def test_load_mnist_fixture(tmp_path):
    arrays, digests = make_mnist_folder(tmp_path / "mnist")
    d = D.load_mnist(root=tmp_path / "mnist", sha256=digests)
    assert d.x_train.shape == (6, 16) and d.x_test.shape == (3, 16)
    assert d.meta["image_shape"] == (4, 4)
    assert torch.allclose(d.x_train, torch.as_tensor(arrays["train_x"].reshape(6, 16) / 255.0, dtype=torch.float32))
    assert d.x_train[0, 0] == 1.0 and d.x_train[0, 1] == 0.0
    assert d.y_train.tolist() == [0, 1, 2, 3, 4, 9] and d.y_test.tolist() == [5, 6, 7]
    assert d.y_train.dtype == torch.int64 and d.n_classes == 10 and d.name == "mnist"
    assert D.load_mnist(root=str(tmp_path / "mnist"), sha256=digests, dtype=torch.float64).x_test.dtype == torch.float64


def test_load_mnist_default_checksums_leave_fixture_untouched(tmp_path):
    folder = tmp_path / "mnist"
    make_mnist_folder(folder)
    before = {name: snapshot(folder / name) for name in D.MNIST_FILES}
    for download in (False, True):  # an existing file is verified, never re-downloaded
        with pytest.raises(ChecksumError, match="untouched") as info:
            D.load_mnist(root=folder, download=download, url=(tmp_path / "nowhere").as_uri() + "/")
        message = str(info.value)
        name = info.value.path.name
        assert name in message and D.MNIST_SHA256[name] in message and sha(folder / name) in message
        assert isinstance(info.value, ValueError)
    assert {name: snapshot(folder / name) for name in D.MNIST_FILES} == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(D.MNIST_FILES)


def test_load_mnist_missing_file_message(tmp_path):
    folder = tmp_path / "mnist"
    _, digests = make_mnist_folder(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        D.load_mnist(root=folder, sha256=digests)
    message = str(info.value)
    assert str(folder.resolve()) in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "train-images-idx3-ubyte.gz" not in message
    assert "download=True" in message


def test_load_mnist_default_root_uses_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ISODL_DATA", str(tmp_path / "store"))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "store" / "mnist"))):
        D.load_mnist()
    _, digests = make_mnist_folder(tmp_path / "store" / "mnist")
    assert D.load_mnist(sha256=digests).n_train == 6


def test_load_mnist_download_from_file_url(tmp_path):
    source = tmp_path / "mirror"
    arrays, digests = make_mnist_folder(source)
    dest = tmp_path / "new" / "mnist"  # does not exist yet
    d = D.load_mnist(root=dest, download=True, url=source.as_uri(), sha256=digests)
    assert d.y_train.tolist() == arrays["train_y"].tolist()
    assert sorted(p.name for p in dest.iterdir()) == sorted(D.MNIST_FILES)
    for name in D.MNIST_FILES:
        assert (dest / name).read_bytes() == (source / name).read_bytes()
    # present files are not fetched again: a broken mirror no longer matters
    d2 = D.load_mnist(root=dest, download=True, url=(tmp_path / "gone").as_uri(), sha256=digests)
    assert torch.equal(d.x_train, d2.x_train)


def test_load_mnist_bad_download_leaves_nothing(tmp_path):
    good = tmp_path / "good"
    _, digests = make_mnist_folder(good)
    mirror = tmp_path / "mirror"
    make_mnist_folder(mirror, seed=99)  # different content, same file names
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="discarded"):
        D.load_mnist(root=dest, download=True, url=mirror.as_uri() + "/", sha256=digests)
    assert not dest.exists() or list(dest.iterdir()) == []
    # an unreachable source: a clear OSError, again nothing left behind
    with pytest.raises(OSError, match="could not download"):
        D.load_mnist(root=dest, download=True, url=(tmp_path / "missing").as_uri() + "/", sha256=digests)
    assert list(dest.iterdir()) == []


def test_load_mnist_bad_idx(tmp_path):
    folder = tmp_path / "mnist"
    arrays, _ = make_mnist_folder(folder)
    write_idx_images(folder / "train-images-idx3-ubyte.gz", arrays["train_x"], magic=2049)
    digests = {name: sha(folder / name) for name in D.MNIST_FILES}
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*magic"):
        D.load_mnist(root=folder, sha256=digests)

    # a header that promises more bytes than the file holds
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, 7, 4, 4) + arrays["train_x"].tobytes())
    digests = {name: sha(folder / name) for name in D.MNIST_FILES}
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*truncated"):
        D.load_mnist(root=folder, sha256=digests)

    # labels and images disagree on the count
    write_idx_images(folder / "train-images-idx3-ubyte.gz", arrays["train_x"])
    write_idx_labels(folder / "train-labels-idx1-ubyte.gz", arrays["train_y"][:5])
    digests = {name: sha(folder / name) for name in D.MNIST_FILES}
    with pytest.raises(ValueError, match="6 images.*5 labels"):
        D.load_mnist(root=folder, sha256=digests)

    # not gzip at all
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip")
    digests = {name: sha(folder / name) for name in D.MNIST_FILES}
    with pytest.raises(ValueError, match="gzip"):
        D.load_mnist(root=folder, sha256=digests)


def test_sha256_of_streams(tmp_path):
    p = tmp_path / "blob.bin"
    payload = os.urandom(3 * (1 << 20) + 17)
    p.write_bytes(payload)
    assert D.sha256_of(p) == hashlib.sha256(payload).hexdigest()
    with pytest.raises(FileNotFoundError):
        D.sha256_of(tmp_path / "absent")


# --------------------------------------------------------------------------- real CIFAR-10 (fixtures)


def test_load_cifar10_fixture(tmp_path):
    archive = tmp_path / "cifar10" / D.CIFAR10_FILE
    batches = make_cifar_archive(archive)
    d = D.load_cifar10(root=tmp_path / "cifar10", sha256=sha(archive))
    assert d.x_train.shape == (10, 3, 32, 32) and d.x_test.shape == (2, 3, 32, 32)
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1
    assert d.n_features == 3072 and d.classes == [n.decode() for n in CIFAR_NAMES]
    first = torch.as_tensor(batches["data_batch_1"][b"data"][0].reshape(3, 32, 32) / 255.0, dtype=torch.float32)
    assert torch.allclose(d.x_train[0], first)
    assert d.y_train.tolist() == sum((batches[f"data_batch_{k}"][b"labels"] for k in range(1, 6)), [])
    assert d.y_test.tolist() == batches["test_batch"][b"labels"]


def test_load_cifar10_default_checksum_leaves_file_untouched(tmp_path):
    archive = tmp_path / D.CIFAR10_FILE
    make_cifar_archive(archive)
    before = snapshot(archive)
    with pytest.raises(ChecksumError, match="untouched") as info:
        D.load_cifar10(root=tmp_path)
    assert D.CIFAR10_SHA256 in str(info.value) and str(archive) in str(info.value)
    assert snapshot(archive) == before
    assert [p.name for p in tmp_path.iterdir()] == [D.CIFAR10_FILE]


class _Tripwire:
    """Unpickling this creates a file: proves whether a pickle was ever loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_cifar10_never_unpickles_before_checksum(tmp_path):
    marker = tmp_path / "unpickled.txt"
    archive = tmp_path / "c" / D.CIFAR10_FILE
    make_cifar_archive(archive, extra_member=pickle.dumps(_Tripwire(str(marker))))
    with pytest.raises(ChecksumError):
        D.load_cifar10(root=tmp_path / "c")
    assert not marker.exists()


def test_load_cifar10_download_and_missing(tmp_path):
    mirror = tmp_path / "mirror" / D.CIFAR10_FILE
    make_cifar_archive(mirror)
    dest = tmp_path / "dest"
    with pytest.raises(FileNotFoundError) as info:
        D.load_cifar10(root=dest, sha256=sha(mirror))
    assert str(dest.resolve()) in str(info.value) and D.CIFAR10_FILE in str(info.value)
    d = D.load_cifar10(root=dest, download=True, url=mirror.as_uri(), sha256=sha(mirror))
    assert d.n_train == 10 and [p.name for p in dest.iterdir()] == [D.CIFAR10_FILE]
    other = tmp_path / "other"
    with pytest.raises(ChecksumError):
        D.load_cifar10(root=other, download=True, url=mirror.as_uri(), sha256="0" * 64)
    assert list(other.iterdir()) == []


def test_load_cifar10_missing_member(tmp_path):
    archive = tmp_path / D.CIFAR10_FILE
    with tarfile.open(archive, "w:gz") as tar:
        payload = pickle.dumps({b"label_names": CIFAR_NAMES})
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ValueError, match="data_batch_1"):
        D.load_cifar10(root=tmp_path, sha256=sha(archive))


# --------------------------------------------------------------------------- data_dir and dispatch


def test_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ISODL_DATA", str(tmp_path))
    assert D.data_dir() == tmp_path.resolve()
    monkeypatch.delenv("ISODL_DATA")
    repo_data = Path(D.__file__).resolve().parents[3] / "data"
    expected = repo_data if repo_data.is_dir() else Path.cwd() / "data"
    assert D.data_dir() == expected and D.data_dir().is_absolute()


def test_load_dataset_dispatch(tmp_path):
    a = D.load_dataset("digits", seed=1)
    assert torch.equal(a.x_test, D.digits(seed=1).x_test)
    assert D.load_dataset(" Blobs ", n_samples=30, seed=0).name == "blobs"
    assert D.load_dataset("mnist1d", n_samples=100).n_test == 20
    _, digests = make_mnist_folder(tmp_path / "m")
    assert D.load_dataset("mnist", root=tmp_path / "m", sha256=digests).n_train == 6
    archive = tmp_path / "c" / D.CIFAR10_FILE
    make_cifar_archive(archive)
    assert D.load_dataset("cifar10", root=tmp_path / "c", sha256=sha(archive)).n_test == 2


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match="imagenet.*digits.*mnist1d.*blobs.*mnist.*cifar10"):
        D.load_dataset("imagenet")
    with pytest.raises(TypeError, match="name"):
        D.load_dataset(3)


# --------------------------------------------------------------------------- bad inputs

X2 = torch.zeros(4, 2)
Y4 = torch.tensor([0, 1, 0, 1])

BAD_CALLS = [
    (lambda: D.digits(seed=-1), ValueError, "seed"),
    (lambda: D.digits(seed=1.5), TypeError, "seed"),
    (lambda: D.digits(test_fraction=0), ValueError, "test_fraction"),
    (lambda: D.digits(test_fraction=1.0), ValueError, "test_fraction"),
    (lambda: D.digits(test_fraction=-0.2), ValueError, "test_fraction"),
    (lambda: D.digits(test_fraction="0.2"), TypeError, "test_fraction"),
    (lambda: D.digits(standardise="yes"), TypeError, "standardise"),
    (lambda: D.digits(dtype=torch.int64), ValueError, "dtype"),
    (lambda: D.digits(dtype="float32"), TypeError, "dtype"),
    (lambda: D.mnist1d(n_samples=0), ValueError, "n_samples"),
    (lambda: D.mnist1d(generator_seed=-3), ValueError, "generator_seed"),
    (lambda: D.mnist1d(dtype=torch.complex64), ValueError, "dtype"),
    (lambda: D.gaussian_blobs(n_classes=1), ValueError, "n_classes"),
    (lambda: D.gaussian_blobs(n_samples=0), ValueError, "n_samples"),
    (lambda: D.gaussian_blobs(n_samples=5, n_classes=3), ValueError, "n_samples"),
    (lambda: D.gaussian_blobs(n_features=0), ValueError, "n_features"),
    (lambda: D.gaussian_blobs(spread=0.0), ValueError, "spread"),
    (lambda: D.gaussian_blobs(spread=float("nan")), ValueError, "spread"),
    (lambda: D.gaussian_blobs(test_fraction=1.5), ValueError, "test_fraction"),
    (lambda: D.isotropic_gaussian(0, 2), ValueError, "n_samples"),
    (lambda: D.isotropic_gaussian(2.5, 2), TypeError, "n_samples"),
    (lambda: D.isotropic_gaussian(3, 0), ValueError, "dim"),
    (lambda: D.isotropic_gaussian(3, 2, dtype=torch.int32), ValueError, "dtype"),
    (lambda: D.uniform_sphere(3, -1), ValueError, "dim"),
    (lambda: D.uniform_sphere(3, 2, seed=-1), ValueError, "seed"),
    (lambda: D.train_test_split(X2, Y4[:3]), ValueError, "x and y"),
    (lambda: D.train_test_split(X2, Y4.float()), TypeError, "y"),
    (lambda: D.train_test_split([1, 2], Y4), TypeError, "x"),
    (lambda: D.train_test_split(X2, Y4, test_fraction=0.0), ValueError, "test_fraction"),
    (lambda: D.train_test_split(X2, Y4, stratify="no"), TypeError, "stratify"),
    (lambda: D.train_test_split(X2[:1], Y4[:1]), ValueError, "at least 2"),
    (lambda: D.standardise(torch.zeros(3, 2, dtype=torch.int64)), TypeError, "train"),
    (lambda: D.standardise(torch.zeros(3, 2), torch.zeros(3, 5)), ValueError, r"others\[0\]"),
    (lambda: D.standardise(torch.zeros(3, 2), eps=-1.0), ValueError, "eps"),
    (lambda: D.standardise(torch.tensor([[float("nan")]])), ValueError, "train"),
    (lambda: D.load_mnist(root=123), TypeError, "root"),
    (lambda: D.load_mnist(download="yes"), TypeError, "download"),
    (lambda: D.load_mnist(sha256="abc"), TypeError, "sha256"),
    (lambda: D.load_mnist(sha256={"other.gz": "0" * 64}), ValueError, "sha256"),
    (lambda: D.load_mnist(sha256={"t10k-labels-idx1-ubyte.gz": "xyz"}), ValueError, "sha256"),
    (lambda: D.load_mnist(url=None), TypeError, "url"),
    (lambda: D.load_mnist(dtype=torch.uint8), ValueError, "dtype"),
    (lambda: D.load_cifar10(sha256="not-hex"), ValueError, "sha256"),
    (lambda: D.load_cifar10(root=1.5), TypeError, "root"),
    (lambda: D.load_cifar10(dtype=None), TypeError, "dtype"),
    (lambda: D.sha256_of(42), TypeError, "path"),
    (lambda: Dataset(X2, Y4[:3], X2, Y4, "x", ["a", "b"]), ValueError, "x_train and y_train"),
    (lambda: Dataset(X2, Y4.float(), X2, Y4, "x", ["a", "b"]), TypeError, "y_train"),
    (lambda: Dataset(X2, Y4, torch.zeros(4, 3), Y4, "x", ["a", "b"]), ValueError, "x_test"),
    (lambda: D.digits().to(torch.int32), ValueError, "dtype"),
]


@pytest.mark.parametrize("call, error, match", BAD_CALLS, ids=[f"bad{i}-{m}" for i, (_, _, m) in enumerate(BAD_CALLS)])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_bad_dataset_name_message_lists_choices():
    with pytest.raises(ValueError) as info:
        D.load_dataset("mnist-1d")
    for name in D.DATASETS:
        assert repr(name) in str(info.value)
