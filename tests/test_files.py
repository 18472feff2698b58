"""Run-directory files: atomic, durable, umask-honouring writes and one-line errors on bad files."""

from __future__ import annotations

import fractions
import os
import pickle
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from torchspike.files import (
    RunFileError,
    atomic_write,
    clean_stale_temporaries,
    load_checkpoint,
    load_json,
    load_weights,
    load_weights_metadata,
    save_checkpoint,
    save_json,
    save_weights,
)


def _checkpoint_state() -> dict:
    torch.manual_seed(0)
    return {
        "step": 3,
        "model": {"w": torch.randn(40, 40), "b": torch.zeros(4)},
        "optimizer": {"lr": 0.1, "state": {0: {"m": torch.ones(3)}}},
        "rng": torch.get_rng_state(),
    }


def _raises_naming(path: Path, fn, match: str) -> RunFileError:
    with pytest.raises(RunFileError, match=match) as info:
        fn(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return info.value


# --- writing -------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    path = tmp_path / "run" / "config.json"  # the folder is made on the way
    data = {"name": "névé", "lr": 1e-3, "layers": [784, 100, 10], "nested": {"ok": True}}
    save_json(path, data)
    assert load_json(path) == data
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert os.listdir(path.parent) == ["config.json"]


def test_a_second_write_replaces_the_first(tmp_path):
    path = tmp_path / "config.json"
    save_json(path, {"a": 1})
    save_json(path, {"b": 2})
    assert load_json(path) == {"b": 2}
    assert os.listdir(tmp_path) == ["config.json"]


@pytest.mark.parametrize(
    "umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o277, 0o400)]
)
def test_the_umask_sets_the_mode_as_for_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_json(tmp_path / "config.json", {"a": 1})
        with open(tmp_path / "plain.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == mode


@pytest.mark.parametrize("interrupt", [RuntimeError, KeyboardInterrupt])
def test_a_write_that_dies_half_way_leaves_the_old_file_and_no_temporary(tmp_path, interrupt):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def half_then_die(f):
        f.write(before[: len(before) // 2])
        f.flush()
        raise interrupt("killed")

    with pytest.raises(interrupt, match="killed"):
        atomic_write(path, half_then_die)
    assert path.read_bytes() == before
    assert load_checkpoint(path) == {"step": 1}
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_fsync_reaches_the_file_then_the_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def record(fd):
        st = os.fstat(fd)
        synced.append((stat.S_ISDIR(st.st_mode), st.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    path = tmp_path / "model.safetensors"
    save_weights(path, {"w": torch.ones(2)})
    assert synced == [(False, path.stat().st_ino), (True, tmp_path.stat().st_ino)]


def test_a_folder_that_refuses_fsync_is_skipped(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def no_folder_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", no_folder_fsync)
    save_json(tmp_path / "config.json", {"a": 1})
    assert load_json(tmp_path / "config.json") == {"a": 1}


# --- stale temporaries ---------------------------------------------------------------------------


def test_clean_stale_temporaries_removes_ours_only(tmp_path):
    ours = [".checkpoint.pt.0a1b2c3d.tmp", ".config.json.k2_x9qzu.tmp"]  # ours, mkstemp's
    theirs = [
        "checkpoint.pt",
        "notes.tmp",
        ".hidden",
        ".config.json.tmp",
        ".config.json.0a1b2c3d.tmp.bak",
        ".config.json.0A1B2C3D.tmp",
        ".config.json.0a1b2c3.tmp",
    ]
    for name in ours + theirs:
        (tmp_path / name).write_text("x")
    (tmp_path / ".folder.0a1b2c3d.tmp").mkdir()
    removed = clean_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(theirs + [".folder.0a1b2c3d.tmp"])
    assert clean_stale_temporaries(tmp_path / "missing") == []


def test_the_temporary_of_a_killed_write_is_one_the_cleaner_removes(tmp_path):
    seen = []
    atomic_write(tmp_path / "log.json", lambda f: seen.extend(os.listdir(tmp_path)))
    (temporary,) = seen
    assert temporary.startswith(".log.json.") and temporary.endswith(".tmp")
    (tmp_path / temporary).write_text("left by a kill")
    assert clean_stale_temporaries(tmp_path) == [tmp_path / temporary]
    assert os.listdir(tmp_path) == ["log.json"]


# --- JSON that cannot be loaded ------------------------------------------------------------------


def test_bad_json_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n')
    _raises_naming(path, load_json, match=r"not valid JSON \(line 4, column 1")


@pytest.mark.parametrize(
    "text, kind", [("[1, 2]", "list"), ('"x"', "str"), ("3", "int"), ("null", "NoneType")]
)
def test_json_that_is_not_an_object(tmp_path, text, kind):
    path = tmp_path / "config.json"
    path.write_text(text)
    _raises_naming(path, load_json, match=f"holds a JSON {kind}, not an object")


@pytest.mark.parametrize(
    "raw, match",
    [(b"", "not valid JSON"), (b"\xff\xfe{}", "not UTF-8"), (b'{"a": "\xe9"}', "not UTF-8")],
)
def test_empty_or_non_utf8_json(tmp_path, raw, match):
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    _raises_naming(path, load_json, match)


def test_missing_files_name_themselves(tmp_path):
    for load in (load_json, load_weights, load_checkpoint):
        path = tmp_path / "absent.file"
        with pytest.raises(FileNotFoundError, match="absent.file"):
            load(path)


# --- weights that cannot be loaded ---------------------------------------------------------------


def test_weights_round_trip_with_and_without_metadata(tmp_path):
    tensors = {"fc.weight": torch.randn(3, 4).t(), "fc.bias": torch.arange(3.0)}  # not contiguous
    save_weights(tmp_path / "a.safetensors", tensors, metadata={"format": "torchspike"})
    save_weights(tmp_path / "b.safetensors", tensors)
    for name in ("a.safetensors", "b.safetensors"):
        loaded = load_weights(tmp_path / name)
        assert loaded.keys() == tensors.keys()
        for key, value in tensors.items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert load_weights_metadata(tmp_path / "a.safetensors") == {"format": "torchspike"}
    assert load_weights_metadata(tmp_path / "b.safetensors") == {}


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.05, 0.2, 0.5, 0.99])
def test_truncated_weights(tmp_path, fraction):
    whole = tmp_path / "whole.safetensors"
    save_weights(whole, {"w": torch.randn(20, 20), "b": torch.zeros(5)}, metadata={"k": "v"})
    data = whole.read_bytes()
    path = tmp_path / "model.safetensors"
    path.write_bytes(data[: int(len(data) * fraction)])
    _raises_naming(path, load_weights, match="not readable safetensors weights")
    _raises_naming(path, load_weights_metadata, match="not readable safetensors weights")


@pytest.mark.parametrize(
    "raw", [b"garbage " * 20, b"\xff" * 8 + b"{}", (14).to_bytes(8, "little") + b'{"a": {"dtype"']
)
def test_garbage_weights(tmp_path, raw):
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    _raises_naming(path, load_weights, match="delete it, or start again with --overwrite")


# --- checkpoints that cannot be loaded -----------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    state = _checkpoint_state()
    save_checkpoint(tmp_path / "checkpoint.pt", state)
    loaded = load_checkpoint(tmp_path / "checkpoint.pt")
    assert loaded["step"] == 3 and loaded["optimizer"]["lr"] == 0.1
    torch.testing.assert_close(loaded["model"]["w"], state["model"]["w"], rtol=0, atol=0)
    torch.testing.assert_close(loaded["rng"], state["rng"], rtol=0, atol=0)


def test_checkpoint_cut_at_many_lengths(tmp_path):
    whole = tmp_path / "whole.pt"
    save_checkpoint(whole, _checkpoint_state())
    data = whole.read_bytes()
    path = tmp_path / "checkpoint.pt"
    cuts = [0, 1, 3, 4, 10, 100, 1000] + [int(len(data) * f) for f in (0.25, 0.5, 0.75, 0.9)]
    for cut in cuts + [len(data) - 100, len(data) - 22, len(data) - 1]:
        path.write_bytes(data[:cut])
        _raises_naming(path, load_checkpoint, match="not a readable checkpoint")


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage " * 20,
        b"PK\x03\x04" + b"\x00" * 100,
        pickle.dumps({"step": 1}, protocol=2),  # a legacy (not zip) torch file
        pickle.dumps({"step": 1}, protocol=4),
    ],
)
def test_garbage_checkpoint(tmp_path, raw):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(raw)
    _raises_naming(path, load_checkpoint, match="not a readable checkpoint")


def test_a_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    _raises_naming(path, load_checkpoint, match="not a readable checkpoint")


def test_a_checkpoint_holding_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 1, "ratio": fractions.Fraction(1, 3)}, path)
    holds_objects = "not loaded: it holds objects other than tensors and plain data"
    _raises_naming(path, load_checkpoint, match=holds_objects)


def test_a_checkpoint_that_is_not_a_dict(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save([torch.ones(2)], path)
    _raises_naming(path, load_checkpoint, match="holds a list, not a torchspike checkpoint")
