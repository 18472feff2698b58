"""Sphinx extension: each tutorial page ends with its committed full-mode outputs and figures.

A tutorial ``tutorials/NN_name.py`` runs in its small mode during the build; what its full mode
printed and drew (``make tutorials-full``) is committed as ``tutorials/full/NN_name.out`` and
``tutorials/full/NN_name/*.png``. Those are appended to the page as a last section, so the site
shows the recipe-scale results next to the small run. Runs before Sphinx collects images, so
the figures are copied and checked like any other.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes

TITLE = "Full mode: recorded outputs"


def _append_full_mode(app, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not docname.startswith("tutorials/") or docname.count("/") != 1:
        return
    name = docname.split("/", 1)[1]
    full = Path(app.srcdir) / "tutorials" / "full"
    figures = sorted((full / name).glob("*.png"))
    out = full / f"{name}.out"
    text = out.read_text(encoding="utf-8").rstrip() if out.exists() else ""
    if not figures and not text:
        return
    page = doctree.next_node(nodes.section)
    if page is None:
        return
    section = nodes.section(
        ids=["full-mode-recorded-outputs"], names=[nodes.fully_normalize_name(TITLE)]
    )
    section += nodes.title(text=TITLE)
    intro = nodes.paragraph()
    intro += nodes.Text("What this tutorial printed and drew in its full mode, committed under ")
    intro += nodes.literal(text=f"docs/tutorials/full/{name}")
    intro += nodes.Text(" (made by ")
    intro += nodes.literal(text="make tutorials-full")
    intro += nodes.Text(", which runs ")
    intro += nodes.literal(text=f"TORCHSPIKE_TUTORIAL=full python docs/tutorials/{name}.py")
    intro += nodes.Text(
        "). The outputs above come from the small mode, run when this site was built."
    )
    section += intro
    if text:
        section += nodes.literal_block(text, text, language="text")
    for path in figures:
        figure = nodes.figure(ids=[nodes.make_id(f"full-{name}-{path.stem}")])
        figure += nodes.image(uri=f"full/{name}/{path.name}", alt=path.stem.replace("_", " "))
        figure += nodes.caption(text=path.stem.replace("_", " "))
        section += figure
    page += section


def setup(app):
    # before the image collector (priority 500) reads the page's images
    app.connect("doctree-read", _append_full_mode, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
