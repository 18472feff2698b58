"""The library never imports the application at import time; old app paths say where they went."""

import importlib
import subprocess
import sys

import pytest


def test_importing_the_library_does_not_import_the_app():
    code = (
        "import sys, torchspike, torchspike.nir, torchspike.eventprop, torchspike.stdp, "
        "torchspike.kernels, torchspike.data, torchspike.data.events, torchspike.models; "
        "print(sorted(m for m in sys.modules if m.startswith('torchspike.app')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "old, new",
    [
        ("train", "torchspike.app.loop"),
        ("config", "torchspike.app.config"),
        ("checkpoint", "torchspike.files"),
        ("stdp_app", "torchspike.app.methods.stdp"),
        ("evaluate", "torchspike.app.evaluate"),
    ],
)
def test_old_app_paths_name_their_new_place(old, new):
    sys.modules.pop(f"torchspike.{old}", None)
    with pytest.raises(ImportError, match=new):
        importlib.import_module(f"torchspike.{old}")


def test_load_run_is_public():
    import torchspike

    assert "load_run" in torchspike.__all__ and callable(torchspike.load_run)
