"""The NIR paper's published graphs in torchspike: what each loads as, and how it compares.

Needs only torchspike's own environment (nir, h5py); a few seconds:

    .venv/bin/python bench/nir_published.py --out bench/RESULTS_nir_published.md \
        [--nir-repo /path/to/NIR]

Without ``--nir-repo`` it reads the graphs and traces kept in ``tests/data/nir``. With a clone
(or bare git directory) of github.com/neuromorphs/NIR it also tries every ``.nir`` file in that
repository's history and compares with every platform's recorded trace.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import nir
import numpy as np
import torch

import torchspike.nir as tn

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data" / "nir"
sys.path.insert(0, str(DATA))
import braille_input  # noqa: E402  (the figure's decoding, kept with the data)

LIF_PLATFORMS = ("exact", "norse", "snntorch", "nengo", "spinnaker2", "rockpool", "sinabs")
LIF_PLATFORMS += ("spyx", "lava_cpu_float", "lava_cpu_fixed", "lava_loihi_fixed")
BRAILLE_PLATFORMS = ("norse", "snntorch", "nengo", "s2", "spyx", "lava", "rockpool", "xylo")
BRAILLE_MODELS = ("noDelay_bias_zero", "noDelay_noBias_subtract")


class Source:
    """Files by their path in the NIR repository: a git directory, else tests/data/nir."""

    def __init__(self, repo: str | None):
        self.repo = repo
        self.head = self._git("rev-parse", "HEAD").strip() if repo else None

    def _git(self, *args: str, binary: bool = False):
        out = subprocess.run(["git", "--git-dir", self._dir(), *args], capture_output=True)
        return out.stdout if binary else out.stdout.decode()

    def _dir(self) -> str:
        repo = Path(self.repo)
        return str(repo / ".git" if (repo / ".git").exists() else repo)

    def read(self, path: str, commit: str | None = None) -> bytes | None:
        if self.repo is None:
            local = DATA / Path(path).name
            return local.read_bytes() if local.exists() else None
        data = self._git("show", f"{commit or 'HEAD'}:{path}", binary=True)
        return data or None

    def history(self) -> list[tuple[str, str, str]]:
        """``(blob, first commit, path)`` of every ``.nir`` file version, oldest first."""
        seen, found = set(), []
        for commit in self._git("rev-list", "--all", "--reverse").split():
            for line in self._git("ls-tree", "-r", commit).splitlines():
                meta, path = line.split("\t", 1)
                blob = meta.split()[2]
                if path.endswith(".nir") and blob not in seen:
                    seen.add(blob)
                    found.append((blob, commit, path))
        return found


def _outcome(path: Path, **kwargs) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net = tn.load(path, **kwargs)
            result = f"loads ({type(net).__name__})"
        except Exception as err:  # every refusal is reported, whatever its type
            result = f"refused: `{type(err).__name__}: {_short(err)}`"
    notes = sorted({_short(w.message, 90) for w in caught if issubclass(w.category, UserWarning)})
    return result + "".join(f"; warns `{n}`" for n in notes)


def _short(message, n: int = 150) -> str:
    text = " ".join(str(message).split()).replace("|", "/").replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def _dt_for(path: str) -> float:
    return 1.0 if "cnn" in path else 1e-4  # the step each paper folder used


def survey(source: Source, tmp: Path, label: str = "", seen: set | None = None) -> list[str]:
    if source.repo is None:
        files = [(None, None, p.name) for p in sorted(DATA.glob("*.nir"))]
    else:
        files = source.history()
    rows = []
    for blob, commit, path in files:
        if seen is not None and blob in seen:
            continue  # the same file as one already tried
        seen = set() if seen is None else seen
        seen.add(blob)
        data = source.read(path, commit) if blob else (DATA / path).read_bytes()
        if data is None:
            rows.append(f"| {label}`{path}` @ `{commit[:10]}` | not in the snapshot | |")
            continue
        local = tmp / Path(path).name
        local.write_bytes(data)
        dt = _dt_for(path)
        where = f"{label}`{path}` @ `{commit[:10]}`" if commit else f"`tests/data/nir/{path}`"
        checked = _outcome(local).replace(f"{tmp}/", "")
        unchecked = _outcome(local, type_check=False, dt=dt).replace(f"{tmp}/", "")
        rows.append(f"| {where} | {checked} | {unchecked} |")
    return rows


def _steps(spikes) -> str:
    steps = np.nonzero(np.asarray(spikes).ravel())[0].tolist()
    return str(steps) if len(steps) <= 6 else f"{len(steps)} spikes"


def lif(source: Source) -> list[str]:
    data = source.read("paper/01_lif/lif_exact.csv")
    exact = np.loadtxt(data.decode().splitlines(), delimiter=",")
    xs = torch.from_numpy(exact[:, 0]).reshape(-1, 1, 1)
    rows, membrane = [], {}
    for dt in (1e-4, 1e-3):
        net = tn.load(DATA / "lif_norse.nir", dt=dt, probe=False).double()
        with torch.no_grad():
            _, rec = net.trace(xs)
        membrane[dt] = rec["1"]["v"].ravel().numpy()
        rows.append(f"| torchspike, dt = {dt:g} | {_steps(rec['1']['out'])} | |")
    for name in LIF_PLATFORMS:
        data = source.read(f"paper/01_lif/lif_{name}.csv")
        if data is None:
            rows.append(f"| {name} | not available here | |")
            continue
        trace = np.loadtxt(data.decode().splitlines(), delimiter=",")
        rows.append(f"| {name} | {_steps(trace[:, 2])} | {_v_diff(trace[:, 1], membrane[1e-4])} |")
    return rows


def _v_diff(theirs: np.ndarray, ours: np.ndarray) -> str:
    """The largest difference, after the best of a constant scale and a shift of one step."""
    best = None
    for shift in (0, 1):
        a, b = theirs[shift:], ours[: len(ours) - shift]
        scale = float(np.median(a[b > 1e-3] / b[b > 1e-3]))
        scale = 1.0 if abs(scale - 1) < 0.05 else scale  # a unit, not a drift
        diff = float(np.abs(a / scale - b).max())
        if best is None or diff < best[0]:
            best = (diff, scale, shift)
    diff, scale, shift = best
    how = [f"scaled by {scale:.4g}"] if abs(scale - 1) > 1e-3 else []
    how += ["one step later"] if shift else []
    return f"{diff:.2g}" + (f" ({', '.join(how)})" if how else "")


def braille(source: Source) -> list[str]:
    xs = torch.tensor(braille_input.read(), dtype=torch.float32).unsqueeze(1)
    rows = []
    for model in BRAILLE_MODELS:
        hidden = {}
        for init in ("rest", "zero"):
            net = tn.load(DATA / f"braille_{model}.nir", dt=1e-4, delay_init=init, probe=False)
            with torch.no_grad():
                hidden[init] = net.trace(xs, ["lif1.lif"])[1]["lif1.lif"][:, 0].numpy()
        for name in BRAILLE_PLATFORMS:
            data = source.read(f"paper/03_rnn/{name}_activity_{model}.npy")
            if data is None:
                continue
            with tempfile.TemporaryFile() as f:
                f.write(data)
                f.seek(0)
                ref = np.load(f).squeeze()
            ref = ref.T if ref.shape != hidden["rest"].shape else ref
            if ref.shape != hidden["rest"].shape:
                rows.append(f"| {model} | {name} | shape {ref.shape} | | |")
                continue
            counts = [f"{int((hidden[k] != ref).sum())}" for k in ("rest", "zero")]
            rows.append(
                f"| {model} | {name} | {int(ref.sum())} | {int(hidden['rest'].sum())}: "
                f"{counts[0]} differ | {int(hidden['zero'].sum())}: {counts[1]} differ |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/RESULTS_nir_published.md")
    parser.add_argument("--nir-repo", default=None, help="a clone of neuromorphs/NIR")
    parser.add_argument(
        "--other-repo",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also try the .nir files in the history of this clone (e.g. NIRTorch, snnTorch)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    source = Source(args.nir_repo)
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as d:
        rows = survey(source, Path(d), seen=seen)
        for other in args.other_repo:
            name, _, path = other.partition("=")
            repo = Source(path)
            rows += survey(repo, Path(d), f"{name} (`{repo.head[:10]}`): ", seen)
    origin = (
        f"every `.nir` file in the history of neuromorphs/NIR (HEAD `{source.head}`)"
        if source.repo
        else "the graphs kept in `tests/data/nir`"
    )
    if args.other_repo:
        names = ", ".join(o.partition("=")[0] for o in args.other_repo)
        origin += f", then in the histories of {names}"
    text = HEAD.format(
        origin=origin,
        versions=f"torch {torch.__version__}, nir {nir.version}",
        survey="\n".join(rows),
        lif="\n".join(lif(source)),
        braille="\n".join(braille(source)),
    )
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


HEAD = """# The NIR paper's published graphs in torchspike

Generated by `bench/nir_published.py` ({versions}) over {origin}. A file met
again (the same bytes) in a later repository is listed once. See
`tests/data/nir/README.md` for the sources and `docs/nir.md` for what each exporter assumes.

## What `torchspike.nir.load` does with each graph

The second column loads the file as is; the third skips nir's type check and gives the step
the paper used (1e-4 for the LIF and Braille graphs, 1 for the CNN, whose IF neurons Sinabs
steps once per time bin).

| graph (path @ first commit with this version) | `load(path)` | `type_check=False`, `dt` |
|---|---|---|
{survey}

## The LIF graph (`paper/01_lif/lif_norse.nir`) against every platform's trace

The input is the recorded 34 input spikes. "v diff" is the largest difference from
torchspike's membrane at dt = 1e-4, after dividing by the platform's constant membrane scale
and, where that fits better, shifting its trace by one step.

| run | output spike steps | v diff |
|---|---|---|
{lif}

## The Braille RNN's hidden layer (`lif1.lif`) against every platform's record

The input is the first test sample, read from the paper's figure (tests/data/nir/README.md).
Entries: hidden spikes, and how many of the 256 x neurons entries differ from the platform's.

| graph | platform | its spikes | torchspike, delay_init="rest" | torchspike, delay_init="zero" |
|---|---|---|---|---|
{braille}
"""


if __name__ == "__main__":
    main()
