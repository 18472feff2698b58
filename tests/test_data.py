"""Tests for torchspike.data on small IDX files written here (never the shared data folder)."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import tracemalloc
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from torchspike import data
from torchspike.data import digits, idx, yinyang

TRAIN = idx.FILES["train"]
TEST = idx.FILES["test"]


def _images_raw(images: np.ndarray, magic: int = 2051, n: int | None = None) -> bytes:
    n = len(images) if n is None else n
    header = struct.pack(">IIII", magic, n, *images.shape[1:])
    return header + images.astype(np.uint8).tobytes()


def _labels_raw(labels: np.ndarray, magic: int = 2049, n: int | None = None) -> bytes:
    n = len(labels) if n is None else n
    return struct.pack(">II", magic, n) + labels.astype(np.uint8).tobytes()


def _images_blob(images: np.ndarray, magic: int = 2051, n: int | None = None) -> bytes:
    return gzip.compress(_images_raw(images, magic, n), mtime=0)


def _labels_blob(labels: np.ndarray, magic: int = 2049, n: int | None = None) -> bytes:
    return gzip.compress(_labels_raw(labels, magic, n), mtime=0)


def _md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def _fake(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 28, 28)).astype(np.uint8), np.arange(n) % 10


@pytest.fixture
def known(monkeypatch) -> dict[str, dict[str, idx.Known]]:
    """An empty table of known files in place of the published one; ``_write_split`` fills it."""
    table: dict[str, dict[str, idx.Known]] = {name: {} for name in idx.KNOWN}
    monkeypatch.setattr(idx, "KNOWN", table)
    return table


def _write_split(
    folder: Path,
    split: str,
    n: int,
    seed: int = 0,
    *,
    known: dict[str, dict[str, idx.Known]] | None = None,
    name: str = "mnist",
) -> tuple[np.ndarray, np.ndarray]:
    """Write fake ``split`` files into ``folder``; with ``known``, make them ``name``'s files."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _fake(n, seed)
    for file, raw, shape in zip(
        idx.FILES[split], (_images_raw(x), _labels_raw(y)), (x.shape, y.shape), strict=True
    ):
        blob = gzip.compress(raw, mtime=0)
        (folder / file).write_bytes(blob)
        if known is not None:
            known[name][file] = idx.Known(_md5(raw), _md5(blob), shape)
    return x, y


def _zeros_gz(mib: int) -> bytes:
    """``mib`` MiB of zeros as a small multi-member gzip stream."""
    return gzip.compress(bytes(1 << 20), compresslevel=9) * mib


def _error(call, exc: type[Exception] = ValueError) -> str:
    """The message of the ``exc`` that ``call()`` raises, which must be one line."""
    with pytest.raises(exc) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _peak_bytes(call) -> tuple[int, str]:
    """Peak traced allocation (numpy arrays included) while ``call()`` raises; the message."""
    tracemalloc.start()
    try:
        msg = _error(call)
        return tracemalloc.get_traced_memory()[1], msg
    finally:
        tracemalloc.stop()


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


def test_read_uncompressed_and_regzipped(tmp_path):
    x, y = _fake(7)
    raw = tmp_path / "i"
    raw.write_bytes(_images_raw(x))
    np.testing.assert_array_equal(idx.read_images(raw), x)
    (tmp_path / "l").write_bytes(_labels_raw(y))
    np.testing.assert_array_equal(idx.read_labels(tmp_path / "l"), y)
    multi = tmp_path / "i.gz"  # two gzip members and zero padding, as some tools write
    blob = _images_raw(x)
    multi.write_bytes(gzip.compress(blob[:1000], mtime=7) + gzip.compress(blob[1000:]) + bytes(9))
    np.testing.assert_array_equal(idx.read_images(multi), x)


def test_read_nonsquare_dims(tmp_path):
    x = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    (tmp_path / "i.gz").write_bytes(_images_blob(x))
    np.testing.assert_array_equal(idx.read_images(tmp_path / "i.gz"), x)


@pytest.mark.parametrize("gz", [True, False])
def test_read_declared_length(tmp_path, gz):
    x = _fake(7)[0]
    pack = (lambda raw: gzip.compress(raw)) if gz else (lambda raw: raw)
    path = tmp_path / "i.gz"
    path.write_bytes(pack(_images_raw(x, n=8)))
    msg = _error(lambda: idx.read_images(path))
    assert msg.startswith(f"{path}: truncated, {7 * 784} of the {8 * 784} bytes its header")
    assert msg.endswith("re-download it or delete it")
    path.write_bytes(pack(_images_raw(x, n=6)))
    assert _error(lambda: idx.read_images(path)).startswith(
        f"{path}: more data after the {6 * 784} bytes its header declares"
    )
    path.write_bytes(pack(_labels_raw(np.arange(5), n=6)))
    assert _error(lambda: idx.read_labels(path)).startswith(f"{path}: truncated, 5 of the 6")


def test_trailing_bytes(tmp_path):
    path = tmp_path / "l.gz"
    raw = _labels_raw(np.arange(5))
    path.write_bytes(gzip.compress(raw + b"garbage"))  # inside the gzip stream
    assert "more data after the 5 bytes" in _error(lambda: idx.read_labels(path))
    path.write_bytes(gzip.compress(raw) + b"garbage")  # after the gzip stream
    assert _error(lambda: idx.read_labels(path)).startswith(f"{path}: corrupt gzip data")
    path.write_bytes(raw + b"\x00")  # uncompressed
    assert "more data after" in _error(lambda: idx.read_labels(path))


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "i.gz"
    blob = _images_blob(_fake(20)[0])
    path.write_bytes(blob[: len(blob) // 2])
    assert _error(lambda: idx.read_images(path)).startswith(f"{path}: corrupt gzip data")


def test_short_header(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03"))
    assert _error(lambda: idx.read_images(path)).startswith(
        f"{path}: too short for an IDX image header"
    )
    path.write_bytes(b"")
    assert "too short for an IDX label header" in _error(lambda: idx.read_labels(path))


def test_wrong_magic(tmp_path):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    images.write_bytes(_images_blob(_fake(3)[0], magic=2049))
    labels.write_bytes(_labels_blob(np.arange(3), magic=2051))
    assert _error(lambda: idx.read_images(images)).startswith(f"{images}: magic 2049 is not 2051")
    assert _error(lambda: idx.read_labels(labels)).startswith(f"{labels}: magic 2051 is not 2049")
    images.write_bytes(b"this is not gzip at all")  # read as an uncompressed file
    assert _error(lambda: idx.read_images(images)).startswith(f"{images}: magic 1952999795 is")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "i.gz"
    blob = bytearray(_images_blob(_fake(20)[0]))
    blob[len(blob) // 2 :] = bytes(len(blob) - len(blob) // 2)  # zero the second half
    path.write_bytes(bytes(blob))
    assert _error(lambda: idx.read_images(path)).startswith(f"{path}: corrupt gzip data")
    blob = bytearray(_images_blob(_fake(20)[0]))
    blob[-8] ^= 1  # CRC32 of the content
    path.write_bytes(bytes(blob))
    assert "CRC" in _error(lambda: idx.read_images(path))


def test_zero_dims(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 5, 28, 0)))
    assert _error(lambda: idx.read_images(path)).startswith(f"{path}: bad image dims 28x0")


def test_huge_header_rejected_before_the_body(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 2**31, 28, 28) + bytes(784)))
    peak, msg = _peak_bytes(lambda: idx.read_images(path))
    assert msg.startswith(f"{path}: its IDX header declares 2147483648 images of 28x28, more than")
    assert peak < 1 << 20
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 10**6, 1200, 1200)))
    assert "more than the" in _error(lambda: idx.read_images(path))  # few items, too many bytes


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    path = tmp_path / "i.gz"
    path.write_bytes(gzip.compress(_images_raw(_fake(10)[0])) + _zeros_gz(64))
    assert path.stat().st_size < 200_000
    peak, msg = _peak_bytes(lambda: idx.read_images(path))
    assert "more data after the 7840 bytes" in msg
    assert peak < 4 << 20  # one chunk or so, not the 64 MiB the stream would give


def test_load_checks_the_header_against_known_shapes(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / TEST[0]).write_bytes(gzip.compress(struct.pack(">IIII", 2051, 59999, 28, 28)))
    (folder / TEST[1]).write_bytes(_labels_blob(np.arange(59999) % 10))
    peak, msg = _peak_bytes(lambda: data.load("mnist", "test", tmp_path, download=False))
    assert msg == (
        f"{folder / TEST[0]}: its IDX header declares 59999 images of 28x28, which no known file "
        "has (60000 images of 28x28 or 10000 images of 28x28): re-download it or delete it"
    )
    assert peak < 1 << 20  # 59999 images would be 47 MB
    (folder / TEST[0]).write_bytes(_images_blob(np.zeros((3, 8, 8))))
    assert "declares 3 images of 8x8, which no known file" in _error(
        lambda: data.load("mnist", "test", tmp_path, download=False)
    )


def test_load_zeros_of_a_known_size(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    header = struct.pack(">IIII", 2051, 10000, 28, 28)
    (folder / TEST[0]).write_bytes(gzip.compress(header) + _zeros_gz(100))
    (folder / TEST[1]).write_bytes(_labels_blob(np.arange(10000) % 10))
    peak, msg = _peak_bytes(lambda: data.load("mnist", "test", tmp_path, download=False))
    assert msg.startswith(f"{folder / TEST[0]}: more data after the 7840000 bytes")
    assert peak < 7_840_000 + (4 << 20)  # the declared size, not the 100 MiB in the stream


# --- which file is which ----------------------------------------------------------------------


def test_published_table():
    assert set(idx.KNOWN) == set(idx.MIRRORS) == set(idx.TITLES) == {"mnist", "fashion-mnist"}
    md5s = [k.md5 for files in idx.KNOWN.values() for k in files.values()]
    assert len(set(md5s)) == 8 and all(len(m) == 32 for m in md5s)
    assert idx.KNOWN["mnist"][TRAIN[0]].md5 == "6bbc9ace898e44ae57da46a324031adb"
    assert idx.KNOWN["fashion-mnist"][TEST[1]].gz_md5 == "bb300cfdad3c16e7a12a480ee83cd310"
    for files in idx.KNOWN.values():
        assert list(files) == [*TRAIN, *TEST]
        assert [k.shape for k in files.values()] == [
            (60000, 28, 28),
            (60000,),
            (10000, 28, 28),
            (10000,),
        ]


def test_copies_of_the_known_content_load(tmp_path, known):
    folder = tmp_path / "mnist"
    x, y = _write_split(folder, "test", 30, known=known)
    raw = gzip.decompress((folder / TEST[0]).read_bytes())
    (folder / TEST[0]).write_bytes(gzip.compress(raw, compresslevel=1, mtime=123456789))
    assert known["mnist"][TEST[0]].gz_md5 != _md5((folder / TEST[0]).read_bytes())
    np.testing.assert_array_equal(idx.load_split("mnist", "test", tmp_path)[0], x)
    (folder / TEST[0]).unlink()
    (folder / TEST[0].removesuffix(".gz")).write_bytes(raw)  # uncompressed, without .gz
    np.testing.assert_array_equal(idx.load_split("mnist", "test", tmp_path)[0], x)
    (folder / TEST[1]).write_bytes(gzip.decompress((folder / TEST[1]).read_bytes()))
    np.testing.assert_array_equal(idx.load_split("mnist", "test", tmp_path)[1], y)


def test_wrong_dataset_is_named(tmp_path, known):
    _write_split(tmp_path / "fashion-mnist", "test", 30, seed=1, known=known, name="fashion-mnist")
    _write_split(tmp_path / "mnist", "test", 30, seed=2, known=known)
    fashion = tmp_path / "fashion-mnist"
    assert _error(lambda: data.load("mnist", "test", fashion, download=False)) == (
        f"{fashion / TEST[0]} is Fashion-MNIST's test images, not MNIST's: "
        "point --data-dir at the mnist folder"
    )
    assert len(data.load("fashion-mnist", "test", fashion, download=False)[1]) == 30
    assert len(data.load("mnist", "test", tmp_path, download=False)[1]) == 30
    # the same file, now cached as Fashion-MNIST's, is still refused as MNIST's
    assert "is Fashion-MNIST's test images" in _error(
        lambda: data.load("mnist", "test", fashion, download=False)
    )


def test_swapped_files_are_named(tmp_path, known):
    _write_split(tmp_path / "a", "test", 24, seed=1, known=known)
    _write_split(tmp_path / "mnist", "train", 48, seed=2, known=known)
    labels = tmp_path / "mnist" / TRAIN[1]
    labels.write_bytes((tmp_path / "a" / TEST[1]).read_bytes())
    assert _error(lambda: data.load("mnist", "train", tmp_path, download=False)) == (
        f"{labels} is MNIST's test labels, not the training labels: re-download it or delete it"
    )
    _write_split(tmp_path / "fashion-mnist", "test", 36, known=known, name="fashion-mnist")
    labels.write_bytes((tmp_path / "fashion-mnist" / TEST[1]).read_bytes())
    assert f"{labels} is Fashion-MNIST's test labels, not MNIST's training labels" in _error(
        lambda: data.load("mnist", "train", tmp_path, download=False)
    )


def test_unknown_content_is_refused(tmp_path, known):
    folder = tmp_path / "mnist"
    x, _ = _write_split(folder, "test", 20, known=known)
    x[3, 4, 5] ^= 1
    raw = _images_raw(x)
    (folder / TEST[0]).write_bytes(gzip.compress(raw))
    assert _error(lambda: data.load("mnist", "test", tmp_path, download=False)) == (
        f"{folder / TEST[0]} does not match any known MNIST file (md5 {_md5(raw)}): "
        "re-download it or delete it"
    )


def test_each_file_is_read_once(tmp_path, known, monkeypatch):
    reads = []
    read_idx = idx._read_idx

    def counting(path, *args):
        reads.append(Path(path).name)
        return read_idx(path, *args)

    monkeypatch.setattr(idx, "_read_idx", counting)
    folder = tmp_path / "mnist"
    _write_split(folder, "train", 240, known=known)
    for split in ("train", "validation", "train+validation"):
        data.load("mnist", split, tmp_path, download=False)
    assert reads == list(TRAIN)
    os.utime(folder / TRAIN[0], ns=(0, 10**18))  # a new modification time: read again
    data.load("mnist", "validation", tmp_path, download=False)
    assert reads == [*TRAIN, TRAIN[0]]


def test_count_mismatch(tmp_path, known):
    folder = tmp_path / "mnist"
    _write_split(folder, "test", 10, known=known)
    _write_split(tmp_path / "b", "train", 9, known=known)
    (folder / TEST[1]).write_bytes((tmp_path / "b" / TRAIN[1]).read_bytes())
    known["mnist"][TEST[1]] = known["mnist"][TRAIN[1]]
    msg = _error(lambda: data.load("mnist", "test", tmp_path, download=False))
    assert msg == f"{folder / TEST[0]} has 10 images but {folder / TEST[1]} has 9 labels"


def test_label_out_of_range(tmp_path, known):
    folder = tmp_path / "mnist"
    _write_split(folder, "test", 3, known=known)
    raw = _labels_raw(np.array([1, 2, 12]))
    (folder / TEST[1]).write_bytes(gzip.compress(raw))
    known["mnist"][TEST[1]] = idx.Known(_md5(raw), "", (3,))
    assert "label 12 is outside 0..9" in _error(
        lambda: data.load("mnist", "test", tmp_path, download=False)
    )


# --- missing files and download ---------------------------------------------------------------


def test_missing_without_download_lists_files(tmp_path):
    msg = _error(lambda: data.load("fashion-mnist", "test", tmp_path, download=False), OSError)
    folder = tmp_path / "fashion-mnist"
    assert msg == (
        f"fashion-mnist test files not in {folder} or {tmp_path} and download is disabled: "
        f"put {TEST[0]}, {TEST[1]} (gzip'd or not) in {folder}"
    )


def test_missing_offline_lists_files(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(idx.urllib.request, "urlopen", offline)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / TRAIN[1]).write_bytes(_labels_blob(np.arange(12) % 10))
    msg = _error(lambda: data.load("mnist", "train", tmp_path), FileNotFoundError)
    assert msg.startswith(f"{TRAIN[0]} not in {tmp_path / 'mnist'} and could not be downloaded")
    assert msg.endswith(f"put {TRAIN[0]} in {tmp_path / 'mnist'}")
    assert "no network" in msg
    assert calls == [m + TRAIN[0] for m in idx.MIRRORS["mnist"]]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [TRAIN[1]]


def test_download_checks_md5_and_renames(tmp_path, monkeypatch, known):
    x, y = _fake(12)
    raws = {TEST[0]: _images_raw(x), TEST[1]: _labels_raw(y)}
    blobs = {f: gzip.compress(raw) for f, raw in raws.items()}
    for f, raw in raws.items():
        known["mnist"][f] = idx.Known(
            _md5(raw), _md5(blobs[f]), (12, 28, 28)[: 3 if "im" in f else 1]
        )
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
    msg = _error(lambda: idx.download("fashion-mnist", tmp_path, (TEST[1],)), FileNotFoundError)
    assert f"md5 {_md5(b'x')} of " in msg and msg.endswith(
        f"put {TEST[1]} in {tmp_path / 'fashion-mnist'}"
    )
    assert list((tmp_path / "fashion-mnist").iterdir()) == []


def test_download_skips_uncompressed_copies(tmp_path, monkeypatch):
    monkeypatch.setattr(idx.urllib.request, "urlopen", lambda url, timeout=None: 1 / 0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / TEST[1].removesuffix(".gz")).write_bytes(b"")
    assert idx.download("mnist", tmp_path, (TEST[1],)) == folder


def test_default_data_dir(monkeypatch, tmp_path, known):
    monkeypatch.setenv("TORCHSPIKE_DATA", str(tmp_path))
    assert idx.default_data_dir() == tmp_path
    _write_split(tmp_path / "mnist", "test", 10, known=known)
    assert data.load("mnist", "test", download=False)[0].shape == (10, 1, 28, 28)
    monkeypatch.delenv("TORCHSPIKE_DATA")
    assert idx.default_data_dir() == Path.home() / ".cache" / "torchspike" / "data"


# --- load on fake IDX files -------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["mnist", ""])
def test_load_idx_splits(tmp_path, sub, known):
    x, y = _write_split(tmp_path / sub, "train", 240, known=known)
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


def test_load_returns_fresh_tensors(tmp_path, known):
    _write_split(tmp_path / "mnist", "test", 10, known=known)
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
