"""The API reference covers the public API: every exported name has a page entry and a docstring,
and every neuron constructor documents each of its arguments (docs/api/*.md, built by `make docs`).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import torchspike as ts

API = Path(__file__).resolve().parents[1] / "docs" / "api"
MODULES = [
    "torchspike",
    "torchspike.neurons",
    "torchspike.surrogate",
    "torchspike.encode",
    "torchspike.decode",
    "torchspike.loss",
    "torchspike.eventprop",
    "torchspike.stdp",
    "torchspike.data",
    "torchspike.data.events",
    "torchspike.nir",
]


def _public(name: str) -> list[str]:
    """``__all__``, or the functions and classes a module without one defines itself."""
    module = importlib.import_module(name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        key
        for key, value in vars(module).items()
        if not key.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    ]


def _pages() -> str:
    return "\n".join(p.read_text() for p in sorted(API.glob("*.md")))


def _covered(module: str, name: str, pages: str) -> bool:
    """Named by a directive, or a member of an ``automodule`` that documents its members."""
    if re.search(
        rf"::\s+(torchspike\.)?({re.escape(module)}\.)?{re.escape(name)}\s*$", pages, re.M
    ):
        return True
    whole = re.search(rf"\.\. automodule:: {re.escape(module)}\n(?!\s+:no-members:)", pages)
    return bool(whole) and not inspect.ismodule(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_on_an_api_page(module):
    pages = _pages()
    missing = [n for n in _public(module) if n != "__version__" and not _covered(module, n, pages)]
    assert not missing, f"{module}: not in docs/api/*.md: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_public_function_and_class_has_a_docstring(module):
    mod = importlib.import_module(module)
    missing = []
    for name in _public(module):
        obj = getattr(mod, name)
        if inspect.isclass(obj):
            doc = obj.__dict__.get("__doc__")
        elif callable(obj) and not inspect.ismodule(obj):
            doc = obj.__doc__
        else:
            continue
        if not (doc or "").strip():
            missing.append(name)
    assert not missing, f"{module}: no docstring: {missing}"


NEURONS = [ts.LIF, ts.IF, ts.LI, ts.CubaLIF, ts.ALIF, ts.RecurrentLIF]


@pytest.mark.parametrize("cls", NEURONS, ids=lambda c: c.__name__)
def test_neuron_constructors_document_every_argument(cls):
    doc = inspect.getdoc(cls) or ""
    assert "Args:" in doc, f"{cls.__name__}: no Args: section"
    args = doc.split("Args:", 1)[1]
    documented = set(re.findall(r"^\s{4}(\w+):", args, re.M))
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    missing = [p for p in params if p not in documented]
    assert not missing, f"{cls.__name__}: arguments not in Args: {missing}"
