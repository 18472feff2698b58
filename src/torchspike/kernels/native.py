"""The native CPU kernels (``native.c``): compiled on first use with the system C compiler and
loaded with ctypes, so torchspike needs neither PyTorch's headers nor a build step.

The library is built once per source, compiler and flags into ``$XDG_CACHE_HOME/torchspike``
(or ``~/.cache/torchspike``), written under a temporary name and renamed, so processes that
build it at the same time (torchrun ranks, pytest-xdist workers) never load a half-written
file. ``TORCHSPIKE_NATIVE=0`` turns the kernels off; ``TORCHSPIKE_CC`` names the compiler
(default ``cc``, else ``gcc``). Without a working compiler :func:`library` returns ``None``
(with one ``RuntimeWarning`` when a compiler was found but failed) and the callers run their
pure-PyTorch path. The kernels take float32 data pointers; the callers check the layouts.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("native.c")
FLAGS = ("-O3", "-fPIC", "-shared", "-fopenmp")  # no -ffast-math: results must stay exact

_i64, _int, _ptr = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
_SIGNATURES = {
    "pool2x2_backward": ([_ptr] * 3 + [_i64] * 4 + [_int], _int),
    "pool2x2_nhwc_forward": ([_ptr] * 3 + [_i64] * 4 + [_int], _int),
    "pool2x2_nhwc_backward": ([_ptr] * 3 + [_i64] * 4 + [_int], _int),
    "pool2x2_nchw_forward": ([_ptr] * 3 + [_i64] * 4 + [_int], _int),
    "pool2x2_nchw_backward": ([_ptr] * 3 + [_i64] * 4 + [_int], _int),
    "count_spikes": ([_ptr, _i64, _int], _i64),
    "event_conv_forward": ([_ptr] * 4 + [_i64] * 9 + [_int], _int),
    "event_conv_weight_grad": ([_ptr] * 5 + [_i64] * 9 + [_int], _int),
    "event_conv_pool_forward": ([_ptr] * 6 + [_i64] * 9 + [_int], _int),
    "event_conv_pool_weight_grad": ([_ptr] * 7 + [_i64] * 9 + [_int], _int),
}

_loaded: dict[tuple[str, ...], ctypes.CDLL | None] = {}  # by compiler command


def enabled() -> bool:
    """False when ``TORCHSPIKE_NATIVE=0`` turns the native kernels off."""
    return os.environ.get("TORCHSPIKE_NATIVE", "1") != "0"


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or ``None`` where they are off or cannot be built."""
    if not enabled():
        return None
    compiler = _compiler()
    if compiler is None:
        return None
    key = (compiler, *FLAGS)
    if key not in _loaded:
        _loaded[key] = _build(compiler)
    return _loaded[key]


def check(status: int) -> None:
    """Raise ``MemoryError`` for a kernel's status -1 (a buffer it could not allocate)."""
    if status < 0:
        raise MemoryError("a native kernel could not allocate its buffer")


def threads() -> int:
    return torch.get_num_threads()


def ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _compiler() -> str | None:
    return os.environ.get("TORCHSPIKE_CC") or _default_compiler()


@functools.cache  # looked up once: library() runs on every kernel call
def _default_compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "torchspike"


def _build(compiler: str) -> ctypes.CDLL | None:
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, timeout=60, check=False
        ).stdout
        digest = hashlib.sha256(source + version + " ".join((compiler, *FLAGS)).encode())
        target = _cache_dir() / f"native-{digest.hexdigest()[:16]}.so"
        if not target.exists():
            _compile(compiler, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as err:
        warnings.warn(
            f"torchspike's native kernels could not be built with {compiler!r} "
            f"({str(err)[:300]}); running the pure-PyTorch versions",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    for name, (args, result) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


def _compile(compiler: str, target: Path) -> None:
    """Compile into a temporary file next to ``target``, then rename it (atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, *FLAGS, "-o", tmp, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise OSError(f"exit status {done.returncode}: {done.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
