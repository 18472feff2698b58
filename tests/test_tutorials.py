"""The tutorials (docs/tutorials/NN_name.py, percent-format scripts): each runs to the end in its
small mode as a user runs it (slow), and each is a well-formed notebook (fast)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).parents[1] / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
NAMES = [p.stem for p in TUTORIALS]


def test_the_tutorials_are_there():
    assert len(TUTORIALS) >= 9, NAMES


@pytest.mark.parametrize("path", TUTORIALS, ids=NAMES)
def test_tutorial_is_a_percent_notebook_with_a_title_and_two_modes(path):
    text = path.read_text()
    ast.parse(text, filename=str(path))
    cells = text.split("\n# %%")
    assert "format_name: percent" in cells[0], "the jupytext header names the percent format"
    assert cells[1].startswith(" [markdown]\n# # "), "the first cell is the page's title"
    assert sum(c.startswith("\n") for c in cells[1:]) >= 3, "code cells"
    assert 'os.environ.get("TORCHSPIKE_TUTORIAL") == "full"' in text
    assert '"--full" in sys.argv' in text
    assert "plt.show()" in text, "figures are shown inline"


def _run(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHSPIKE_")}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", TORCHSPIKE_RUNS=str(tmp_path / "runs"))
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,  # a tutorial must not depend on the folder it is run from
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=NAMES)
def test_tutorial_runs_in_small_mode(path, tmp_path):
    done = _run(path, tmp_path)
    output = f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert done.returncode == 0, f"{path.name} failed:\n{output}"
    assert done.stdout.startswith("mode: small"), done.stdout[:200]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert not written, f"the small mode wrote {written} into the folder it ran from"
