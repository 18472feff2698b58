"""The files of a run directory: written whole or not at all, read back with one-line errors.

Every write goes to a temporary beside the target (``.NAME.<8 random>.tmp``), is flushed and
fsynced, then renamed over the target with ``os.replace``; the folder is fsynced after the rename.
A reader therefore sees the old file or the new one, never half of one, even across a power cut.
A process killed mid-write leaves only its temporary, which ``clean_stale_temporaries`` removes.

Loading a file that is damaged or was not written by torchspike raises ``RunFileError`` naming
the file and what to do; a missing file raises the usual ``FileNotFoundError``, which names it too.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

__all__ = [
    "RunFileError",
    "atomic_write",
    "clean_stale_temporaries",
    "load_checkpoint",
    "load_json",
    "load_weights",
    "load_weights_metadata",
    "save_checkpoint",
    "save_json",
    "save_weights",
]

# Ours: ".NAME.<8 chars>.tmp". The 8 chars are hex here and [a-z0-9_] from tempfile.mkstemp,
# which the torchspike.checkpoint of earlier releases used with the same prefix and suffix.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_START_AGAIN = "delete it, or start again with --overwrite"
_FIX_OR_START_AGAIN = "fix it, or start again with --overwrite"


class RunFileError(ValueError):
    """A file in a run directory cannot be loaded; the message names it and says what to do."""


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with what ``write_fn`` writes into the binary file it is given.

    The new file's mode is the one a plain ``open(path, "w")`` would give a new file
    (``0o666 & ~umask``). If ``write_fn`` raises, ``path`` is left as it was and no temporary stays.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _create_temporary(path: Path) -> tuple[Path, int]:
    """Create ``.NAME.<random>.tmp`` beside ``path``; return it and a descriptor to write it."""
    # Created with 0o666 so the kernel applies the umask (and any default ACL) exactly as it does
    # for open(..., "w"): no need to read the umask, which os.umask can only do racily.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; skipped where folders cannot be opened or fsynced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows: a folder cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder (EINVAL)
        pass
    finally:
        os.close(fd)


def clean_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries a killed writer left in ``folder``; return what was removed.

    Only regular files named like ours (``.NAME.<8 chars>.tmp``) go. Call it when no other
    process is writing into ``folder``: a temporary being written looks the same as a stale one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if _TEMPORARY.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def save_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as indented UTF-8 JSON ending in a newline."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"  # fails before any file exists
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def load_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object written by ``save_json`` (or by hand)."""
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not UTF-8 text: {_FIX_OR_START_AGAIN}") from None
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}: {e.msg}"
        raise RunFileError(f"{path} is not valid JSON ({where}): {_FIX_OR_START_AGAIN}") from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise RunFileError(f"{path} holds a JSON {kind}, not an object: {_FIX_OR_START_AGAIN}")
    return data


def save_weights(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``tensors`` (moved to the CPU, made contiguous) as safetensors, with ``metadata``."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    data = safetensors_bytes(tensors, metadata=metadata)
    atomic_write(path, lambda f: f.write(data))


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the tensors of a safetensors file onto the CPU."""
    try:
        return load_file(os.fspath(path))
    except SafetensorError as e:
        raise _not_weights(path, e) from None


def load_weights_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read the metadata of a safetensors file (``{}`` when it has none)."""
    try:
        with safe_open(os.fspath(path), "pt") as f:
            return f.metadata() or {}
    except SafetensorError as e:
        raise _not_weights(path, e) from None


def _not_weights(path: str | os.PathLike[str], e: SafetensorError) -> RunFileError:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    return RunFileError(
        f"{path} is not readable safetensors weights ({reason}; truncated or not written by "
        f"torchspike): {_START_AGAIN}"
    )


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain data) with ``torch.save``."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint onto the CPU with ``weights_only=True``: tensors and plain data only."""
    with open(path, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:  # empty, garbage, or a legacy pickle torchspike never writes
        raise _not_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise RunFileError(
                f"{path} was not loaded: it holds objects other than tensors and plain data "
                f"(torchspike does not unpickle code); {_START_AGAIN}"
            ) from None
        raise _not_checkpoint(path) from None
    # What a damaged archive raises: RuntimeError (zip reader), OSError (seek past the start of a
    # truncated file), EOFError, ValueError (UnicodeDecodeError in a record name).
    except (RuntimeError, OSError, EOFError, ValueError):
        raise _not_checkpoint(path) from None
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise RunFileError(f"{path} holds a {kind}, not a torchspike checkpoint: {_START_AGAIN}")
    return state


def _not_checkpoint(path: str | os.PathLike[str]) -> RunFileError:
    return RunFileError(
        f"{path} is not a readable checkpoint (truncated or not written by torchspike): "
        f"{_START_AGAIN}"
    )
