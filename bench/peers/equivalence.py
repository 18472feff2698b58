"""Before timing: do the contenders of `bench/peers.py` compute the same thing?

One set of weights and inputs is copied into every network, which runs its timed step once
(`time_peer.py --check`) and dumps hidden spikes, output spikes, output membrane, loss and
gradients. Each dump is compared with a plain-torch recursion of its library's neuron
(`lif_oracle`), torchspike with snnTorch spike for spike, and SpikingJelly / Norse with torchspike
up to each hidden neuron's first spike (their resets differ; the models agree until then). Spike
trains may part only where a membrane is within `TIE` of the threshold (float rounding).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from peer_models import BETA, CONFIGS, Config, make_batch
from torch import Tensor, nn

TIME_PEER = Path(__file__).resolve().parent / "time_peer.py"
TIE = 1e-4  # spike trains may first differ only where |membrane - threshold| <= TIE


def time_peer(python: list[str], peer: str, cfg: str, *args: str) -> list[str]:
    """The command line of one `time_peer.py` child."""
    return [*python, str(TIME_PEER), "--peer", peer, "--config", cfg, *args]


def lif_oracle(model: str, xs: Tensor, v_th: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes, charged, readout)`` of ``model``'s neuron over currents ``xs`` [T, B, N].

    ``charged`` is the membrane compared with the threshold; ``readout`` the one the library
    returns (snnTorch/torchspike: before the reset, SpikingJelly/Norse: after it).
    torchspike, snntorch  U = beta U + x - v_th z[t-1];  z = U > v_th         (reset one step late)
    spikingjelly          H = V - V / 20 + x;  z = H >= v_th;  V = H - v_th z  (same step)
    norse                 v' = v + 0.05 (x - v);  z = v' > v_th;  v = v' (1 - z)  (x is 20 I)
    """
    beta = torch.tensor(BETA)
    v = torch.zeros_like(xs[0])
    z = torch.zeros_like(v)
    spikes, charged, readout = [], [], []
    for x in xs.unbind(0):
        if model in ("torchspike", "snntorch"):
            h = v = beta * v + x - z * v_th
            z = (h > v_th).to(x.dtype)
        elif model == "spikingjelly":
            h = v - v / 20.0 + x
            z = (h >= v_th).to(x.dtype)
            v = h - z * v_th
        elif model == "norse":
            h = v + torch.tensor(1e-3) * torch.tensor(50.0) * (x - v)
            z = (h > v_th).to(x.dtype)
            v = (1 - z) * h
        else:
            raise ValueError(f"no oracle for {model!r}")
        spikes.append(z)
        charged.append(h)
        readout.append(v)
    return torch.stack(spikes), torch.stack(charged), torch.stack(readout)


def net_oracle(model: str, cfg: Config, data: dict[str, Tensor], scale: float) -> dict:
    """The two-layer network of ``model`` on ``data``'s weights and batch, in plain torch."""
    x = data["x"]
    xs = x.expand(cfg.steps, *x.shape) if cfg.static else x
    i1 = F.linear(xs, data["fc1.weight"] * scale, data["fc1.bias"] * scale)
    z1, h1, _ = lif_oracle(model, i1)
    i2 = F.linear(z1, data["fc2.weight"] * scale, data["fc2.bias"] * scale)
    z2, h2, v2 = lif_oracle(model, i2)
    loss = sum(F.cross_entropy(v, data["y"]).item() for v in v2.unbind(0))
    return {"hidden": z1, "hidden_h": h1, "out": z2, "out_h": h2, "v": v2, "loss": loss}


def first_true(mask: Tensor) -> Tensor:
    """Index of the first True along dim 0 (``len`` where there is none)."""
    steps = torch.arange(mask.shape[0], 0, -1).view(-1, *[1] * (mask.dim() - 1))
    first = mask.shape[0] - (mask.to(torch.int64) * steps).amax(0)
    return torch.where(mask.any(0), first, torch.full_like(first, mask.shape[0]))


def divergence(a: Tensor, b: Tensor, charged: Tensor, start: Tensor | None = None) -> dict:
    """Where spike trains ``a`` and ``b`` [T, B, N] part, and whether each parting is a tie.

    A neuron's trains may part at a step where ``charged`` is within ``TIE`` of the threshold,
    or (``start`` [B]) from the step on which its layer's input parted in that batch row.
    """
    diff = a != b
    first = first_true(diff)
    parted = first < a.shape[0]
    h_at = charged.gather(0, first.clamp(max=a.shape[0] - 1).unsqueeze(0)).squeeze(0)
    excused = (h_at - 1.0).abs() <= TIE
    if start is not None:
        excused |= first >= start.unsqueeze(-1)
    return {
        "neurons": a[0].numel(),
        "parted": int(parted.sum()),
        "unexplained": int((parted & ~excused).sum()),
        "spikes_differ": int(diff.sum()),
        "row_start": first.amin(-1),  # [B]: the first step a row's layer output parted
    }


def first_spike_divergence(a: Tensor, b: Tensor, charged: Tensor) -> dict:
    """Compare the first hidden spike of every neuron: up to it, all the resets agree."""
    fa, fb = first_true(a > 0), first_true(b > 0)
    parted = fa != fb
    at = torch.minimum(fa, fb).clamp(max=a.shape[0] - 1)
    h_at = charged.gather(0, at.unsqueeze(0)).squeeze(0)
    return {
        "neurons": int(fa.numel()),
        "parted": int(parted.sum()),
        "unexplained": int((parted & ((h_at - 1.0).abs() > TIE)).sum()),
        "silent": int((fa == a.shape[0]).sum()),
    }


def compare_spikes(
    dump: dict, ref: dict, hidden_charged: Tensor, out_charged: Tensor
) -> tuple[dict, Tensor]:
    """Hidden and output spikes of ``dump`` against ``ref`` (an output neuron is excused from
    the step its row's hidden spikes parted); also the [B] mask of rows whose spikes all agree."""
    hidden = divergence(dump["hidden"], ref["hidden"], hidden_charged)
    hidden_start = hidden.pop("row_start")
    out = divergence(dump["out"], ref["out"], out_charged, start=hidden_start)
    same_rows = (hidden_start == dump["hidden"].shape[0]) & (
        out.pop("row_start") == dump["out"].shape[0]
    )
    return {"hidden": hidden, "out": out}, same_rows


def _max_diff(a: Tensor, b: Tensor, rows: Tensor) -> float:
    """Largest |a - b| / max(1, |b|) over the batch rows ``rows`` of [T, B, N] tensors."""
    if not bool(rows.any()):
        return 0.0
    a, b = a[:, rows], b[:, rows]
    return float((a - b).abs().amax() / b.abs().amax().clamp_min(1.0))


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_contender(name: str, dump: dict, ts: dict | None, oracles: dict) -> dict:
    """One contender's dump against its own model's oracle, and against torchspike's dump."""
    oracle = oracles[name]
    row: dict = {"readout": dump["readout"]}
    row["oracle"], same = compare_spikes(dump, oracle, oracle["hidden_h"], oracle["out_h"])
    row["readout_diff_oracle"] = _max_diff(dump["v"], oracle["v"], same)
    row["hidden_rate"] = float(dump["hidden"].mean())
    row["out_rate"] = float(dump["out"].mean())
    ok = all(v["unexplained"] == 0 for v in row["oracle"].values())
    ok &= row["readout_diff_oracle"] < 1e-4
    if dump["loss"] is not None:
        row["loss"] = dump["loss"]
        row["loss_rel_oracle"] = abs(dump["loss"] - oracle["loss"]) / abs(oracle["loss"])
        if bool(same.all()):
            ok &= row["loss_rel_oracle"] < 1e-5
    if ts is None or name == "torchspike":
        row["ok"] = bool(ok)
        return row
    ts_oracle = oracles["torchspike"]
    if name == "snntorch":  # the same model: spike for spike, membrane, loss and gradients
        row["vs_torchspike"], same = compare_spikes(
            dump, ts, ts_oracle["hidden_h"], ts_oracle["out_h"]
        )
        ok &= all(v["unexplained"] == 0 for v in row["vs_torchspike"].values())
        row["membrane_diff"] = _max_diff(dump["v"], ts["v"], same)
        ok &= row["membrane_diff"] < 1e-4
        if dump["loss"] is not None:
            row["loss_rel_torchspike"] = abs(dump["loss"] - ts["loss"]) / abs(ts["loss"])
            row["grad_rel_torchspike"] = max(
                _rel(ts["grads"][k], dump["grads"][k]) for k in dump["grads"]
            )
            if bool(same.all()):
                ok &= row["loss_rel_torchspike"] < 1e-5 and row["grad_rel_torchspike"] < 1e-4
    else:  # different resets: the same model up to each hidden neuron's first spike
        row["first_spike_vs_torchspike"] = first_spike_divergence(
            dump["hidden"], ts["hidden"], ts_oracle["hidden_h"]
        )
        ok &= row["first_spike_vs_torchspike"]["unexplained"] == 0
        row["hidden_spikes_differ_from_torchspike"] = float(
            (dump["hidden"] != ts["hidden"]).float().mean()
        )
    row["ok"] = bool(ok)
    return row


def check_weights(
    cfg_name: str, contenders: dict[str, list[str]], data: dict[str, Tensor], tmp: Path
) -> dict:
    """Run every spiking contender once on ``data`` and check what each computed."""
    cfg = CONFIGS[cfg_name]
    path_in = tmp / "in.pt"
    torch.save(data, path_in)
    dumps, rows = {}, {}
    for name, python in contenders.items():
        if name == "floor":
            continue
        path_out = tmp / f"{name}.pt"
        flags = ("--threads", "1", "--check", str(path_in), "--dump", str(path_out))
        cmd = time_peer(python, name, cfg_name, *flags)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows[name] = {"ok": False, "note": f"check run failed: {err}"}
            continue
        dumps[name] = torch.load(path_out, weights_only=True)
    oracles = {name: net_oracle(name, cfg, data, dump["scale"]) for name, dump in dumps.items()}
    oracles.setdefault("torchspike", net_oracle("torchspike", cfg, data, 1.0))
    ts = dumps.get("torchspike")
    for name, dump in dumps.items():
        rows[name] = check_contender(name, dump, ts, oracles)
    return rows


def run_checks(
    configs: list[str], contenders: dict[str, list[str]], seed: int, gains: list[str]
) -> dict:
    """``{config: {weights: {contender: row}}}`` for the initial weights times each gain.

    A gain ``G1xG2`` multiplies the initial fc1 / fc2 weights and biases: 1x1 is the benchmark's
    operating point, where b's output layer is nearly silent; larger gains make it spike.
    """
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg_name in configs:
            cfg = CONFIGS[cfg_name]
            results[cfg_name] = {}
            for gain in gains:
                g1, g2 = (float(g) for g in gain.split("x"))
                torch.manual_seed(seed)
                fc1 = nn.Linear(cfg.n_in, cfg.n_hidden)
                fc2 = nn.Linear(cfg.n_hidden, cfg.n_out)
                data = {
                    f"{n}.{p}": getattr(fc, p).detach() * g
                    for n, fc, g in (("fc1", fc1, g1), ("fc2", fc2, g2))
                    for p in ("weight", "bias")
                }
                data["x"], data["y"] = make_batch(cfg, seed + 1)
                label = f"fc1 x{g1:g}, fc2 x{g2:g}"
                results[cfg_name][label] = check_weights(cfg_name, contenders, data, Path(tmp))
    return results


def check_table(checks: dict) -> list[str]:
    rows = [
        "| config | weights | contender | hidden / output spike rate | vs own recursion: "
        "neurons parted, hidden / output (unexplained) | vs torchspike | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for cfg, by_weights in checks.items():
        for j, (weights, res) in enumerate(by_weights.items()):
            for i, (name, r) in enumerate(res.items()):
                label = (cfg if i == j == 0 else "", weights if i == 0 else "")
                if "note" in r:
                    rows.append(f"| {label[0]} | {label[1]} | {name} | | {r['note']} | | **no** |")
                    continue
                o = r["oracle"]
                own = (
                    f"{o['hidden']['parted']} ({o['hidden']['unexplained']}) of "
                    f"{o['hidden']['neurons']} / {o['out']['parted']} "
                    f"({o['out']['unexplained']}) of {o['out']['neurons']}; readout "
                    f"rel diff {r['readout_diff_oracle']:.0e}"
                )
                rows.append(
                    f"| {label[0]} | {label[1]} | {name} | {r['hidden_rate']:.3f} / "
                    f"{r['out_rate']:.3f} | {own} | {_vs_torchspike(r)} | "
                    f"{'yes' if r['ok'] else '**no**'} |"
                )
    return rows


def _vs_torchspike(r: dict) -> str:
    if "vs_torchspike" in r:
        v = r["vs_torchspike"]
        text = (
            f"spikes differing: {v['hidden']['spikes_differ']} hidden, "
            f"{v['out']['spikes_differ']} output; membrane rel diff "
            f"{r['membrane_diff']:.0e}"
        )
        if "loss_rel_torchspike" in r:
            text += (
                f"; loss rel diff {r['loss_rel_torchspike']:.0e}, "
                f"weight grads rel diff {r['grad_rel_torchspike']:.0e}"
            )
        return text
    if "first_spike_vs_torchspike" in r:
        f = r["first_spike_vs_torchspike"]
        return (
            f"first hidden spike at another step: {f['parted']} ({f['unexplained']} "
            f"unexplained) of {f['neurons']}; later, "
            f"{100 * r['hidden_spikes_differ_from_torchspike']:.2f}% of hidden entries differ"
        )
    return "(reference)"
