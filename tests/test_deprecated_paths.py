"""The old module paths of the fast paths: each warns and gives the objects of its new home."""

import importlib
import subprocess
import sys

import pytest

import torchspike

MOVED = {  # old path: its new homes
    "torchspike.sequence": ["torchspike.kernels.lif_sequence", "torchspike.steps"],
    "torchspike.lif_linear": ["torchspike.kernels.lif_linear"],
    "torchspike.folded_linear": ["torchspike.kernels.folded_linear"],
    "torchspike.sparse": ["torchspike.kernels.sparse"],
    "torchspike.workspace": ["torchspike.kernels.workspace"],
    "torchspike.allocator": ["torchspike.kernels.allocator"],
}


def _import_afresh(name: str):
    """Import ``name`` as if for the first time, so that its module body (the warning) runs."""
    sys.modules.pop(name, None)
    return __import__(name, fromlist=["__all__"])  # no frame between the shim and this file


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_gives_the_same_objects(old):
    with pytest.warns(DeprecationWarning, match=rf"^{old} moved to {MOVED[old][0]}") as record:
        shim = _import_afresh(old)
    assert record[0].filename == __file__  # stacklevel=2: the warning names the importer
    homes = [importlib.import_module(new) for new in MOVED[old]]
    assert shim.__all__
    for name in shim.__all__:
        assert any(getattr(home, name, None) is getattr(shim, name) for home in homes), name


def test_old_paths_keep_every_public_name():
    with pytest.warns(DeprecationWarning):
        names = {old: set(_import_afresh(old).__all__) for old in MOVED}
    assert {"lif_sequence", "lif_adjoint", "run_steps", "fold_time", "is_static"} <= names[
        "torchspike.sequence"
    ]
    assert {"folded_linear", "linear_into"} <= names["torchspike.folded_linear"]
    assert {"maybe_sparse_linear", "sparse_binary_linear"} <= names["torchspike.sparse"]
    assert names["torchspike.allocator"] == {"retain_freed_memory"}


def test_kernels_package_keeps_the_compiled_names():
    from torchspike.kernels import compiled

    assert torchspike.kernels.get is compiled.get
    assert torchspike.kernels.direct_grad is compiled.direct_grad
    assert torchspike.run_steps is importlib.import_module("torchspike.steps").run_steps


def test_the_library_imports_no_old_path():
    packages = ["torchspike", "torchspike.eventprop", "torchspike.nir", "torchspike.kernels"]
    packages += [f"torchspike.kernels.{m}" for m in ("allocator", "compiled", "lif_linear")]
    code = f"import sys; {'; '.join(f'import {p}' for p in packages)}; "
    code += f"print(sorted(set(sys.modules) & {set(MOVED)!r}))"
    out = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
