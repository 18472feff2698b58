"""IDX reader, checker and downloader for MNIST and Fashion-MNIST.

Layout: ``data_dir/<name>/`` (``name`` is ``mnist`` or ``fashion-mnist``), or ``data_dir`` itself,
holds the files of a split, gzip'd as published (``*.gz``) or uncompressed (the same name without
``.gz``). A file is streamed once: its IDX header is checked before any of the body is read, the
body goes into an array of the declared size, and the md5 of the uncompressed content, taken on
the way, must be that of the file it should be (``KNOWN``). The content md5 is the same for the
published ``.gz``, a re-gzipped copy and an uncompressed copy, and names a file put in the wrong
place (a Fashion-MNIST file in an MNIST folder, say).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
MAX_COUNT = 10_000_000  # items a header may declare
MAX_BYTES = 1 << 30  # body bytes a header may declare
CHUNK = 1 << 20  # bytes decompressed at a time
GZIP_MAGIC = b"\x1f\x8b"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
WHAT = {
    "train-images-idx3-ubyte.gz": "training images",
    "train-labels-idx1-ubyte.gz": "training labels",
    "t10k-images-idx3-ubyte.gz": "test images",
    "t10k-labels-idx1-ubyte.gz": "test labels",
}
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


class Known(NamedTuple):
    """A published file: md5 of its uncompressed content, md5 of the ``.gz``, array shape."""

    md5: str
    gz_md5: str
    shape: tuple[int, ...]


KNOWN = {
    "mnist": {
        "train-images-idx3-ubyte.gz": Known(
            "6bbc9ace898e44ae57da46a324031adb", "f68b3c2dcbeaaa9fbdd348bbdeb94873", (60000, 28, 28)
        ),
        "train-labels-idx1-ubyte.gz": Known(
            "a25bea736e30d166cdddb491f175f624", "d53e105ee54ea40749a09fcbcd1e9432", (60000,)
        ),
        "t10k-images-idx3-ubyte.gz": Known(
            "2646ac647ad5339dbf082846283269ea", "9fb629c4189551a2d022fa330f9573f3", (10000, 28, 28)
        ),
        "t10k-labels-idx1-ubyte.gz": Known(
            "27ae3e4e09519cfbb04c329615203637", "ec29112dd5afa0611ce80d1b7f02629c", (10000,)
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": Known(
            "f4a8712d7a061bf5bd6d2ca38dc4d50a", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", (60000, 28, 28)
        ),
        "train-labels-idx1-ubyte.gz": Known(
            "9018921c3c673c538a1fc5bad174d6f9", "25c81989df183df01b3e8a0aad5dffbe", (60000,)
        ),
        "t10k-images-idx3-ubyte.gz": Known(
            "8181f5470baa50b63fa0f6fddb340f0a", "bef4ecab320f06d8554ea6380940ec79", (10000, 28, 28)
        ),
        "t10k-labels-idx1-ubyte.gz": Known(
            "15d484375f8d13e6eb1aabb0c3f46965", "bb300cfdad3c16e7a12a480ee83cd310", (10000,)
        ),
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
FIX = "re-download it or delete it"


def default_data_dir() -> Path:
    """``$TORCHSPIKE_DATA`` if set, else ``~/.cache/torchspike/data``."""
    env = os.environ.get("TORCHSPIKE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "torchspike" / "data"


# --- reading ----------------------------------------------------------------------------------


def _describe(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"{shape[0]} labels"
    return f"{shape[0]} images of {'x'.join(map(str, shape[1:]))}"


@contextmanager
def _content(path: Path) -> Iterator[BinaryIO]:
    """The uncompressed content of ``path`` as a stream, gzip'd or not (told by its first bytes)."""
    with open(path, "rb") as f:  # FileNotFoundError names the path
        gzipped = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if not gzipped:
            yield f
            return
        with gzip.GzipFile(fileobj=f, mode="rb") as g:
            yield g


def _fill(f: BinaryIO, view: memoryview, digest: hashlib._Hash) -> int:
    """Read ``f`` into ``view`` in chunks until it is full or ``f`` ends; bytes read."""
    pos = 0
    while pos < len(view):
        n = f.readinto(view[pos : pos + CHUNK])
        if not n:
            break
        digest.update(view[pos : pos + n])
        pos += n
    return pos


def _check_header(
    path: Path, magic: int, want: int, shape: tuple[int, ...], shapes: frozenset | None
) -> None:
    kind = "images" if want == IMAGE_MAGIC else "labels"
    if magic != want:
        raise ValueError(f"{path}: magic {magic} is not {want} (IDX {kind}): {FIX}")
    if 0 in shape[1:]:
        raise ValueError(f"{path}: bad image dims {'x'.join(map(str, shape[1:]))}: {FIX}")
    if shapes is not None and shape not in shapes:
        known = " or ".join(_describe(s) for s in sorted(shapes, reverse=True))
        raise ValueError(
            f"{path}: its IDX header declares {_describe(shape)}, which no known file has "
            f"({known}): {FIX}"
        )
    if shape[0] > MAX_COUNT or math.prod(shape) > MAX_BYTES:
        raise ValueError(
            f"{path}: its IDX header declares {_describe(shape)}, more than the {MAX_COUNT} items "
            f"or {MAX_BYTES} bytes accepted: {FIX}"
        )


def _read_idx(path: Path, ndim: int, shapes: frozenset | None = None) -> tuple[np.ndarray, str]:
    """Read-only ``uint8`` array of an IDX file with ``ndim`` dims and the md5 of its content.

    The header is read and checked first (against ``shapes`` if given, else against
    ``MAX_COUNT``/``MAX_BYTES``); only then is the body streamed into an array of the declared size.
    """
    want = IMAGE_MAGIC if ndim == 3 else LABEL_MAGIC
    digest = hashlib.md5()
    head = bytearray(4 + 4 * ndim)
    with _content(path) as f:
        try:
            if _fill(f, memoryview(head), digest) < len(head):
                kind = "image" if ndim == 3 else "label"
                raise ValueError(f"{path}: too short for an IDX {kind} header: {FIX}")
            magic, *dims = struct.unpack(f">{1 + ndim}I", head)
            shape = tuple(dims)
            _check_header(path, magic, want, shape, shapes)
            array = np.empty(shape, np.uint8)
            n = _fill(f, memoryview(array.reshape(-1)), digest)
            if n < array.size:
                raise ValueError(
                    f"{path}: truncated, {n} of the {array.size} bytes its header declares: {FIX}"
                )
            if f.read(1):
                raise ValueError(
                    f"{path}: more data after the {array.size} bytes its header declares: {FIX}"
                )
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e}): {FIX}") from e
    array.flags.writeable = False
    return array, digest.hexdigest()


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Images of an IDX3 file (gzip'd or not) as read-only ``uint8 [N, rows, cols]``."""
    return _read_idx(Path(path), 3)[0]


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels of an IDX1 file (gzip'd or not) as read-only ``uint8 [N]``."""
    return _read_idx(Path(path), 1)[0]


_CACHE: dict[Path, tuple[tuple[int, ...], np.ndarray, str]] = {}  # verified, oldest first
CACHE_FILES = 8


def _verified(name: str, file: str, path: Path) -> np.ndarray:
    """The array in ``path``, which must hold the content of ``name``'s ``file``.

    Verified arrays are kept in memory, keyed by path, size and modification time, so a file is
    read once for the train and validation splits.
    """
    s = path.stat()
    stamp = (s.st_size, s.st_mtime_ns, s.st_ino, s.st_dev)
    key = path.resolve()
    known = KNOWN[name][file]
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        array, md5 = cached[1:]
    else:
        ndim = len(known.shape)
        shapes = frozenset(
            k.shape for d in KNOWN.values() for k in d.values() if len(k.shape) == ndim
        )
        array, md5 = _read_idx(path, ndim, shapes)
    if md5 == known.md5:
        _CACHE.pop(key, None)
        _CACHE[key] = (stamp, array, md5)
        while len(_CACHE) > CACHE_FILES:
            del _CACHE[next(iter(_CACHE))]
        return array
    title = TITLES[name]
    for other, files in KNOWN.items():
        for other_file, other_known in files.items():
            if other_known.md5 != md5:
                continue
            what = f"{TITLES[other]}'s {WHAT[other_file]}"
            if other != name:
                wanted = f"{title}'s" if other_file == file else f"{title}'s {WHAT[file]}"
                raise ValueError(
                    f"{path} is {what}, not {wanted}: point --data-dir at the {name} folder"
                )
            raise ValueError(f"{path} is {what}, not the {WHAT[file]}: {FIX}")
    raise ValueError(f"{path} does not match any known {title} file (md5 {md5}): {FIX}")


# --- finding and downloading ------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in KNOWN:
        raise ValueError(f"name must be one of {sorted(KNOWN)}, got {name!r}")


def _present(folder: Path, file: str) -> Path | None:
    """``folder/file``, or else its uncompressed copy (``file`` without ``.gz``), if there."""
    for path in (folder / file, folder / file.removesuffix(".gz")):
        if path.is_file():
            return path
    return None


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` via a temp file in the same folder; raise OSError on failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            while chunk := r.read(CHUNK):
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

    Each file is md5-checked against the published value before it is renamed into place; a file
    already there (gzip'd or not) is left alone. Raises FileNotFoundError, naming the files to put
    where, if any could not be downloaded.
    """
    _check_name(name)
    files = tuple(KNOWN[name]) if files is None else files
    unknown = [f for f in files if f not in KNOWN[name]]
    if unknown:
        raise ValueError(f"files must be among {list(KNOWN[name])}, got {unknown}")
    folder = Path(data_dir) / name
    errors = []
    for file in files:
        if _present(folder, file):
            continue
        for mirror in MIRRORS[name]:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _fetch(mirror + file, folder / file, KNOWN[name][file].gz_md5)
                break
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"{mirror + file}: {e}")
    missing = [f for f in files if not _present(folder, f)]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not in {folder} and could not be downloaded "
            f"({'; '.join(errors)}): put {', '.join(missing)} in {folder}"
        )
    return folder


def find(
    name: str, split: str, data_dir: str | os.PathLike, *, download_missing: bool
) -> tuple[Path, Path]:
    """Images and labels files of ``split`` (``train`` or ``test``), downloaded if allowed."""
    _check_name(name)
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
    data_dir = Path(data_dir)
    folder = data_dir / name
    for where in (folder, data_dir):
        images, labels = (_present(where, f) for f in FILES[split])
        if images and labels:
            return images, labels
    if download_missing:
        download(name, data_dir, FILES[split])
        return find(name, split, data_dir, download_missing=False)
    missing = [f for f in FILES[split] if not _present(folder, f)]
    raise FileNotFoundError(
        f"{name} {split} files not in {folder} or {data_dir} and download is disabled: "
        f"put {', '.join(missing)} (gzip'd or not) in {folder}"
    )


def load_split(
    name: str, split: str, data_dir: str | os.PathLike, *, download_missing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``uint8`` images ``[N, 28, 28]`` and labels ``[N]`` of the IDX ``split``.

    Each file must hold the published content of its name (checked by md5 while it is read).
    """
    images, labels = find(name, split, data_dir, download_missing=download_missing)
    x = _verified(name, FILES[split][0], images)
    y = _verified(name, FILES[split][1], labels)
    if len(x) != len(y):
        raise ValueError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if len(y) and y.max() > 9:
        raise ValueError(f"{labels}: label {y.max()} is outside 0..9")
    return x, y
