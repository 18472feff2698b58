"""IDX reader and downloader for the gzip'd MNIST and Fashion-MNIST files.

Layout: ``data_dir/<name>/*.gz`` (``name`` is ``mnist`` or ``fashion-mnist``); the files may also
lie directly in ``data_dir``. Files are only ever read whole and validated before use.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import urllib.request
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
}
TIMEOUT_S = 30.0


def default_data_dir() -> Path:
    """``$TORCHSPIKE_DATA`` if set, else ``~/.cache/torchspike/data``."""
    env = os.environ.get("TORCHSPIKE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "torchspike" / "data"


def _decompress(path: Path) -> bytes:
    blob = path.read_bytes()  # FileNotFoundError names the path
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a valid gzip file ({e})") from e


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Images of a gzip'd IDX3 file as read-only ``uint8 [N, rows, cols]``."""
    path = Path(path)
    raw = _decompress(path)
    if len(raw) < 16:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX image header")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGE_MAGIC:
        raise ValueError(f"{path}: magic {magic} is not {IMAGE_MAGIC} (IDX images)")
    if rows == 0 or cols == 0:
        raise ValueError(f"{path}: bad image dims {rows}x{cols}")
    if len(raw) != 16 + n * rows * cols:
        raise ValueError(
            f"{path}: {len(raw) - 16} pixel bytes, header says {n}x{rows}x{cols}={n * rows * cols}"
        )
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return images  # read-only: it views the immutable bytes


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels of a gzip'd IDX1 file as read-only ``uint8 [N]``."""
    path = Path(path)
    raw = _decompress(path)
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX label header")
    magic, n = struct.unpack(">II", raw[:8])
    if magic != LABEL_MAGIC:
        raise ValueError(f"{path}: magic {magic} is not {LABEL_MAGIC} (IDX labels)")
    if len(raw) != 8 + n:
        raise ValueError(f"{path}: {len(raw) - 8} label bytes, header says {n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=8)


def _check_name(name: str) -> None:
    if name not in MD5:
        raise ValueError(f"name must be one of {sorted(MD5)}, got {name!r}")


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` via a temp file in the same folder; raise OSError on failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            while chunk := r.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != md5:
            raise OSError(f"md5 {digest.hexdigest()} of {url} is not {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download(name: str, data_dir: str | os.PathLike, files: tuple[str, ...] | None = None) -> Path:
    """Download the missing ``files`` (default: all four) of ``name`` into ``data_dir/name``.

    Each file is md5-checked against the published value before it is renamed into place.
    Raises FileNotFoundError, listing the files to put where, if any could not be downloaded.
    """
    _check_name(name)
    files = tuple(MD5[name]) if files is None else files
    unknown = [f for f in files if f not in MD5[name]]
    if unknown:
        raise ValueError(f"files must be among {list(MD5[name])}, got {unknown}")
    folder = Path(data_dir) / name
    errors = []
    for file in files:
        if (folder / file).exists():
            continue
        for mirror in MIRRORS[name]:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _fetch(mirror + file, folder / file, MD5[name][file])
                break
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{mirror + file}: {e}")
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"could not download {name} ({'; '.join(errors)}); put {', '.join(missing)} in {folder}"
        )
    return folder


def find(name: str, split: str, data_dir: str | os.PathLike, *, download_missing: bool) -> Path:
    """Folder holding the two files of ``split`` (``train`` or ``test``), downloading if allowed."""
    _check_name(name)
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
    data_dir = Path(data_dir)
    files = FILES[split]
    for folder in (data_dir / name, data_dir):
        if all((folder / f).is_file() for f in files):
            return folder
    if download_missing:
        return download(name, data_dir, files)
    missing = [f for f in files if not (data_dir / name / f).is_file()]
    raise FileNotFoundError(
        f"{name} {split} files not found and download is disabled; "
        f"put {', '.join(missing)} in {data_dir / name}"
    )


@lru_cache(maxsize=8)
def _read_pair(images: Path, labels: Path, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_images(images), read_labels(labels)
    if len(x) != len(y):
        raise ValueError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if len(y) and y.max() > 9:
        raise ValueError(f"{labels}: label {y.max()} is outside 0..9")
    return x, y


def load_split(
    name: str, split: str, data_dir: str | os.PathLike, *, download_missing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``uint8`` images ``[N, 28, 28]`` and labels ``[N]`` of the IDX ``split``.

    Decoded arrays are cached in memory, keyed by path, size and modification time.
    """
    folder = find(name, split, data_dir, download_missing=download_missing)
    paths = [(folder / f).resolve() for f in FILES[split]]
    stamp = tuple((s.st_size, s.st_mtime_ns) for s in (p.stat() for p in paths))
    x, y = _read_pair(*paths, stamp)
    if x.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
    return x, y
