"""Tests for torchspike.data on small IDX files written here (never the shared data folder)."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from torchspike import data
from torchspike.data import digits, idx, yinyang

TRAIN = idx.FILES["train"]
TEST = idx.FILES["test"]


def _images_blob(images: np.ndarray, magic: int = 2051, n: int | None = None) -> bytes:
    n = len(images) if n is None else n
    header = struct.pack(">IIII", magic, n, *images.shape[1:])
    return gzip.compress(header + images.astype(np.uint8).tobytes())


def _labels_blob(labels: np.ndarray, magic: int = 2049, n: int | None = None) -> bytes:
    n = len(labels) if n is None else n
    return gzip.compress(struct.pack(">II", magic, n) + labels.astype(np.uint8).tobytes())


def _fake(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 28, 28)).astype(np.uint8), np.arange(n) % 10


def _write_split(folder: Path, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _fake(n, seed)
    (folder / idx.FILES[split][0]).write_bytes(_images_blob(x))
    (folder / idx.FILES[split][1]).write_bytes(_labels_blob(y))
    return x, y


# --- IDX reader -------------------------------------------------------------------------------


def test_read_valid_round_trip(tmp_path):
    x, y = _fake(7)
    (tmp_path / "i.gz").write_bytes(_images_blob(x))
    (tmp_path / "l.gz").write_bytes(_labels_blob(y))
    xi, yl = idx.read_images(tmp_path / "i.gz"), idx.read_labels(tmp_path / "l.gz")
    assert xi.dtype == np.uint8 and xi.shape == (7, 28, 28)
    np.testing.assert_array_equal(xi, x)
    np.testing.assert_array_equal(yl, y)
    assert not xi.flags.writeable and not yl.flags.writeable


def test_read_nonsquare_dims(tmp_path):
    x = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    (tmp_path / "i.gz").write_bytes(_images_blob(x))
    np.testing.assert_array_equal(idx.read_images(tmp_path / "i.gz"), x)


@pytest.mark.parametrize("n_claimed", [6, 8])
def test_read_images_wrong_length(tmp_path, n_claimed):
    path = tmp_path / "i.gz"
    path.write_bytes(_images_blob(_fake(7)[0], n=n_claimed))
    with pytest.raises(ValueError, match=str(path)):
        idx.read_images(path)


def test_read_labels_wrong_length(tmp_path):
    path = tmp_path / "l.gz"
    path.write_bytes(_labels_blob(np.arange(5), n=6))
    with pytest.raises(ValueError, match=f"{path}.*header says 6"):
        idx.read_labels(path)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "i.gz"
    blob = _images_blob(_fake(20)[0])
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=f"{path}.*gzip"):
        idx.read_images(path)


def test_short_header(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03"))
    with pytest.raises(ValueError, match="too short"):
        idx.read_images(path)


def test_wrong_magic(tmp_path):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    images.write_bytes(_images_blob(_fake(3)[0], magic=2049))
    labels.write_bytes(_labels_blob(np.arange(3), magic=2051))
    with pytest.raises(ValueError, match=f"{images}: magic 2049 is not 2051"):
        idx.read_images(images)
    with pytest.raises(ValueError, match=f"{labels}: magic 2051 is not 2049"):
        idx.read_labels(labels)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "i.gz"
    blob = bytearray(_images_blob(_fake(20)[0]))
    blob[len(blob) // 2 :] = bytes(len(blob) - len(blob) // 2)  # zero the second half
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=str(path)):
        idx.read_images(path)
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match=f"{path}: not a valid gzip"):
        idx.read_images(path)


def test_count_mismatch(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / TEST[0]).write_bytes(_images_blob(_fake(10)[0]))
    (folder / TEST[1]).write_bytes(_labels_blob(np.arange(9) % 10))
    with pytest.raises(ValueError, match="10 images but .* 9 labels"):
        data.load("mnist", "test", tmp_path, download=False)


def test_label_out_of_range(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / TEST[0]).write_bytes(_images_blob(_fake(3)[0]))
    (folder / TEST[1]).write_bytes(_labels_blob(np.array([1, 2, 12])))
    with pytest.raises(ValueError, match="label 12"):
        data.load("mnist", "test", tmp_path, download=False)


def test_wrong_image_size(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / TEST[0]).write_bytes(_images_blob(np.zeros((3, 8, 8))))
    (folder / TEST[1]).write_bytes(_labels_blob(np.arange(3)))
    with pytest.raises(ValueError, match="8x8, expected 28x28"):
        data.load("mnist", "test", tmp_path, download=False)


# --- missing files and download ---------------------------------------------------------------


def test_missing_without_download_lists_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.load("fashion-mnist", "test", tmp_path, download=False)
    msg = str(e.value)
    assert f"put {TEST[0]}, {TEST[1]} in {tmp_path / 'fashion-mnist'}" in msg


def test_missing_offline_lists_files(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / TRAIN[1]).write_bytes(_labels_blob(np.arange(12) % 10))
    with pytest.raises(FileNotFoundError) as e:
        data.load("mnist", "train", tmp_path)
    msg = str(e.value)
    assert f"put {TRAIN[0]} in {tmp_path / 'mnist'}" in msg
    assert "no network" in msg
    assert calls == [m + TRAIN[0] for m in idx.MIRRORS["mnist"]]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [TRAIN[1]]


def test_download_checks_md5_and_renames(tmp_path, monkeypatch):
    x, y = _fake(12)
    blobs = {TEST[0]: _images_blob(x), TEST[1]: _labels_blob(y)}
    md5 = {f: hashlib.md5(b).hexdigest() for f, b in blobs.items()}
    monkeypatch.setitem(idx.MD5, "mnist", md5)
    bad_mirror = idx.MIRRORS["mnist"][0]

    def fake_urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        return io.BytesIO(b"garbage" if url.startswith(bad_mirror) else blobs[name])

    monkeypatch.setattr(idx.urllib.request, "urlopen", fake_urlopen)
    folder = idx.download("mnist", tmp_path)
    assert folder == tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(blobs)  # no .part files left
    xt, yt = data.load("mnist", "test", tmp_path)
    assert torch.equal(yt, torch.tensor(y))
    np.testing.assert_allclose(xt[:, 0].numpy(), x / 255.0, rtol=1e-6)


def test_download_all_mirrors_bad_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(idx.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"x"))
    with pytest.raises(FileNotFoundError, match=f"md5 .*put {TEST[1]} in"):
        idx.download("fashion-mnist", tmp_path, (TEST[1],))
    assert list((tmp_path / "fashion-mnist").iterdir()) == []


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHSPIKE_DATA", str(tmp_path))
    assert idx.default_data_dir() == tmp_path
    _write_split(tmp_path / "mnist", "test", 10)
    assert data.load("mnist", "test", download=False)[0].shape == (10, 1, 28, 28)
    monkeypatch.delenv("TORCHSPIKE_DATA")
    assert idx.default_data_dir() == Path.home() / ".cache" / "torchspike" / "data"


# --- load on fake IDX files -------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["mnist", ""])
def test_load_idx_splits(tmp_path, sub):
    x, y = _write_split(tmp_path / sub, "train", 240)
    splits = ("train", "validation", "train+validation")
    parts = {s: data.load("mnist", s, tmp_path, download=False) for s in splits}
    for xs, ys in parts.values():
        assert xs.dtype == torch.float32 and ys.dtype == torch.int64
        assert xs.shape[1:] == data.input_shape("mnist") and len(xs) == len(ys)
        assert 0.0 <= xs.min() and xs.max() <= 1.0
    full_x, full_y = parts["train+validation"]
    np.testing.assert_allclose(full_x[:, 0].numpy(), x / 255.0, rtol=1e-6)
    assert torch.equal(full_y, torch.tensor(y))
    (tx, ty), (vx, vy) = parts["train"], parts["validation"]
    assert len(vy) == 20 and len(ty) == 220  # 1/12 held out
    assert torch.equal(torch.bincount(vy), torch.full((10,), 2))  # stratified
    rows = {tuple(r) for r in full_x.flatten(1)[:, ::97].tolist()}
    assert len(rows) == 240
    train_rows = {tuple(r) for r in tx.flatten(1)[:, ::97].tolist()}
    val_rows = {tuple(r) for r in vx.flatten(1)[:, ::97].tolist()}
    assert train_rows.isdisjoint(val_rows) and train_rows | val_rows == rows
    assert torch.equal(data.load("mnist", "validation", tmp_path, download=False)[0], vx)


def test_load_returns_fresh_tensors(tmp_path):
    _write_split(tmp_path / "mnist", "test", 10)
    x1, _ = data.load("mnist", "test", tmp_path, download=False)
    x1.fill_(7.0)
    x2, _ = data.load("mnist", "test", tmp_path, download=False)
    assert x2.max() <= 1.0


# --- digits -----------------------------------------------------------------------------------


def test_digits_split():
    parts = {s: data.load("digits", s) for s in data.SPLITS}
    sizes = {s: len(y) for s, (_, y) in parts.items()}
    assert sizes == {"train": 1293, "validation": 144, "test": 360, "train+validation": 1437}
    for x, y in parts.values():
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert torch.equal(x * 16, (x * 16).round())  # pixel / 16 exactly
    i = {s: set(digits.indices(s).tolist()) for s in data.SPLITS}
    assert i["train"].isdisjoint(i["validation"]) and i["train"].isdisjoint(i["test"])
    assert i["validation"].isdisjoint(i["test"])
    assert i["train"] | i["validation"] == i["train+validation"]
    assert len(i["train+validation"] | i["test"]) == 1797
    all_counts = torch.bincount(torch.cat([parts["train+validation"][1], parts["test"][1]]))
    for s in ("train", "validation", "test"):
        frac = torch.bincount(parts[s][1], minlength=10) / all_counts
        assert (frac - sizes[s] / 1797).abs().max() < 0.02, s  # stratified


def test_digits_deterministic():
    before = {s: digits.indices(s).copy() for s in data.SPLITS}
    digits._digits.cache_clear()
    for s in data.SPLITS:
        np.testing.assert_array_equal(digits.indices(s), before[s])
    assert digits.indices("test")[:5].tolist() == sorted(digits.indices("test")[:5].tolist())


# --- Yin-Yang ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "c"),
    [
        (0.25, 0.5, 2),  # left dot centre
        (0.75, 0.5, 2),  # right dot centre
        (0.78, 0.53, 2),  # inside right dot
        (0.25, 0.7, 1),  # ring around the left dot, upper half
        (0.25, 0.3, 1),  # ring around the left dot, lower half
        (0.75, 0.7, 0),  # ring around the right dot, upper half
        (0.75, 0.3, 0),  # ring around the right dot, lower half
        (0.5, 0.9, 1),  # upper half, far from the dots
        (0.5, 0.1, 0),  # lower half, far from the dots
        (0.02, 0.5, 1),  # left edge on the axis: within 0.25 of the left dot
        (0.98, 0.5, 0),  # right edge on the axis: within 0.25 of the right dot
    ],
)
def test_yinyang_class_points(x, y, c):
    assert data.yinyang_class(x, y) == c


def test_yinyang_point_symmetry():
    rng = np.random.RandomState(0)
    swap = {0: 1, 1: 0, 2: 2}
    for x, y in rng.rand(500, 2):
        assert data.yinyang_class(1 - x, 1 - y) == swap[data.yinyang_class(x, y)]


def test_yinyang_generate_test_split():
    x, y = yinyang.generate("test")
    assert x.shape == (1000, 4) and x.dtype == np.float64 and y.dtype == np.int64
    assert not x.flags.writeable
    np.testing.assert_array_equal(x[:, 2:], 1.0 - x[:, :2])
    assert np.bincount(y).tolist() == [350, 316, 334]  # published counts
    for (a, b), c in zip(x[:200, :2], y[:200], strict=True):
        assert math.hypot(a - 0.5, b - 0.5) <= 0.5
        assert data.yinyang_class(a, b) == c
    xt, yt = data.load("yinyang", "test")
    assert xt.shape == (1000, *data.input_shape("yinyang")) and xt.dtype == torch.float32
    assert torch.equal(yt, torch.tensor(y))
    assert len(data.load("yinyang", "train+validation")[1]) == 6000


# --- names ------------------------------------------------------------------------------------


def test_registry():
    assert data.DATASETS == ("digits", "mnist", "fashion-mnist", "yinyang")
    assert [data.num_classes(n) for n in data.DATASETS] == [10, 10, 10, 3]
    assert data.input_shape("fashion-mnist") == (1, 28, 28)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: data.load("cifar10", "train"), "name .*'cifar10'"),
        (lambda: data.load("digits", "val"), "split .*'val'"),
        (lambda: data.num_classes("MNIST"), "name .*'MNIST'"),
        (lambda: data.input_shape("svhn"), "name .*'svhn'"),
        (lambda: yinyang.generate("dev"), "split .*'dev'"),
        (lambda: idx.download("kmnist", "."), "name .*'kmnist'"),
    ],
)
def test_bad_names(call, match):
    with pytest.raises(ValueError, match=match):
        call()
