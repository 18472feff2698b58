"""Sphinx configuration of the torchspike site: `make docs` builds it offline into build/docs/html.

Markdown pages through MyST, tutorials (percent-format scripts in tutorials/) through myst-nb and
jupytext, executed at build time in their small mode; API pages from docstrings (autodoc).
Warnings are errors (`-W --keep-going` in the Makefile) and references are nitpicky; internal
links of the built HTML are checked by the local extension `_ext/check_links.py`, and each tutorial
page ends with its committed full-mode outputs and figures (`_ext/full_mode.py`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import torchspike  # noqa: E402

project = "torchspike"
author = "torchspike developers"
copyright = "torchspike developers"
release = torchspike.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "check_links",
    "full_mode",
]

# Sources: Markdown pages, and the tutorials as percent-format scripts read by jupytext.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
exclude_patterns = [
    "conf.py",
    "_ext/**",
    "_build/**",
    "tutorials/_*.py",  # helpers imported by tutorials, not pages
    "tutorials/full/**",
    "migration/*.py",  # the scripts that check the migration guides against the peers
    "**/__pycache__/**",
    "**/.ipynb_checkpoints/**",
]
root_doc = "index"

# Tutorials run at build time in small mode (their default), in their own folder; an error in a
# cell fails the build. TORCHSPIKE_DOCS_EXECUTE=off renders them unexecuted (a quick look only).
nb_execution_mode = os.environ.get("TORCHSPIKE_DOCS_EXECUTE", "force")
nb_execution_timeout = int(os.environ.get("TORCHSPIKE_DOCS_TIMEOUT", "900"))
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_kernel_rgx_aliases = {".*": "python3"}
nb_merge_streams = True
nb_output_stderr = "show"

myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# API reference from docstrings. Google-style sections ("Args:") go through napoleon's parser for
# functions and classes only (napoleon as an extension also reads a property's "summary: detail"
# line as "type: description"); see setup() below.
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autoclass_content = "class"
autosummary_generate = False

# Every reference must resolve, except to libraries whose inventories cannot be fetched offline
# (torch, numpy, the standard library) and to private modules named in docstrings.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|nn|optim|collections|typing|pathlib|os|io|enum|ctypes)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Parameter|Path|Any|Callable|Iterable|Iterator|Sequence)"),
    (r"py:.*", r"(Mapping|NamedTuple|ContextManager|AbstractContextManager|PathLike)"),
    (r"py:.*", r"(int|float|str|bool|None|dict|list|tuple|type|object|bytes|slice)"),
    (r"py:.*", r"(dict|list|tuple)\[.*"),  # pieces of Callable[[dict[str, Any]], None]
    (r"py:.*", r"torchspike(\.\w+)*\._\w+.*"),  # private modules and names
    (r"py:.*", r"torchspike\.app(\..*)?"),  # the command-line application (its own pages: guides)
    (r"py:.*", r"nir(\..*)?|nirtorch(\..*)?|h5py(\..*)?|tonic(\..*)?|matplotlib(\..*)?"),
]

html_theme = "furo"
html_title = f"torchspike {release}"
html_static_path = ["_static"]
html_css_files = ["torchspike.css"]
html_show_sourcelink = False
html_last_updated_fmt = None

# A missing reference in a tutorial's markdown (MyST) is an error like any other warning.
# The guides (modules.md, perf.md, ...) start at "##" (they are also read on GitHub beside the
# README); MyST nests them correctly but warns that the first heading is not H1.
suppress_warnings = ["myst.header"]


def _google_sections(app, what, name, obj, options, lines) -> None:
    """Napoleon's Google-style sections (``Args:``, ``Returns:``) of functions and classes."""
    if what in ("function", "method", "class", "exception") and any(
        line.strip() in ("Args:", "Returns:", "Raises:", "Yields:", "Example:", "Examples:")
        for line in lines
    ):
        from sphinx.ext.napoleon import Config
        from sphinx.ext.napoleon.docstring import GoogleDocstring

        config = Config(napoleon_use_param=True, napoleon_use_rtype=True)
        lines[:] = GoogleDocstring(lines, config, app, what, name, obj, options).lines()


def _skip_torch_overrides(app, what, name, obj, skip, options) -> bool | None:
    """Leave out undocumented overrides of ``nn.Module`` methods (``extra_repr``, ...): autodoc
    would show PyTorch's generic docstring for them."""
    import torch

    if what == "class" and name in vars(torch.nn.Module) and not getattr(obj, "__doc__", None):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _google_sections)
    app.connect("autodoc-skip-member", _skip_torch_overrides)
