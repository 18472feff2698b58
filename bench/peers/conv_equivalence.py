"""Before timing configs n and v: do the conv networks of every library compute the same thing?

One set of weights (torchspike's initial ones, times a gain on every Conv and Linear weight and
bias; for v the BatchNorm running statistics set by one forward of torchspike in training mode)
and one batch are copied into every network, put in eval mode (BatchNorm on its running
statistics: in training the libraries' batch statistics differ by design, `conv_models.py`), and
each runs its timed step once (`time_peer.py --check`), dumping every LIF layer's spikes, the
loss and every parameter's gradient. Checked, as for a-c (`equivalence.py`):
  * each library against a plain-torch network of its own neuron (`lif_oracle`, the same
    stateless layers on all T*B rows): layer by layer, a neuron may part only where its
    membrane is within TIE of the threshold or where its layer's input had already parted in
    that batch row;
  * snnTorch against torchspike, spike for spike in every layer, loss and gradients;
  * SpikingJelly (reset in the same step, `>=`) against torchspike up to each first-layer
    neuron's first spike (the only layer whose input is the same in both until then).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import torch
from conv_models import CONV_CONFIGS, LIF, ConvConfig, layers, make_batch, weighted
from equivalence import divergence, first_spike_divergence, lif_oracle, time_peer
from torch import Tensor, nn


def check_data(cfg: ConvConfig, seed: int, gain: float) -> dict:
    """Weights (per weighted module, a state dict) and a batch, as every child loads them."""
    from conv_models import TorchspikeConv

    torch.manual_seed(seed)
    net = TorchspikeConv(cfg)
    with torch.no_grad():
        for m in weighted(net):
            if not isinstance(m, nn.BatchNorm2d):
                m.weight.mul_(gain)
                m.bias.mul_(gain)
    x, y = make_batch(cfg, seed + 1)
    norms = [m for m in weighted(net) if isinstance(m, nn.BatchNorm2d)]
    if norms:  # running statistics = batch statistics of one forward in training mode
        for m in norms:
            m.momentum = 1.0
        with torch.no_grad():
            net(x)
        for m in norms:
            m.momentum = 0.1
    return {"modules": [m.state_dict() for m in weighted(net)], "x": x, "y": y}


def dump(net: nn.Module, train_step, infer, cfg: ConvConfig, path_in: str, path_out: str) -> None:
    """In the child: load the data's weights, run the timed step once in eval mode, save."""
    data = torch.load(path_in, weights_only=True)
    for m, state in zip(weighted(net), data["modules"], strict=True):
        m.load_state_dict(state)
    net.eval()
    rec: list[list[Tensor]] = []
    handles = net.watch(rec)
    batch = (data["x"], data["y"])
    loss = train_step(batch) if cfg.train else None
    if not cfg.train:
        infer(batch)
    for h in handles:
        h.remove()
    spikes = [parts[0] if len(parts) == 1 else torch.stack(parts) for parts in rec]
    grads = []
    if cfg.train:
        grads = [
            {name: p.grad for name, p in m.named_parameters() if p.grad is not None}
            for m in weighted(net)
        ]
    torch.save({"spikes": spikes, "loss": loss, "grads": grads}, path_out)


def oracle(model: str, cfg: ConvConfig, data: dict) -> dict:
    """The network of ``model``'s neuron in plain torch: stateless layers on all T*B rows."""
    seq = layers(cfg.arch)
    for m, state in zip([m for m in seq if m is not LIF and any(m.state_dict())],
                        data["modules"], strict=True):  # fmt: skip
        m.load_state_dict(state)
    x = data["x"]
    xs = x.expand(cfg.steps, *x.shape) if cfg.static else x
    steps, batch = xs.shape[:2]
    h = xs.reshape(steps * batch, *xs.shape[2:])
    spikes, charged = [], []
    with torch.no_grad():
        for m in seq:
            if m is LIF:
                z, c, _ = lif_oracle(model, h.reshape(steps, batch, *h.shape[1:]))
                spikes.append(z)
                charged.append(c)
                h = z.reshape(steps * batch, *z.shape[2:])
            else:
                h = m.eval()(h)
    loss = float(torch.nn.functional.cross_entropy(spikes[-1].sum(0), data["y"]))
    return {"spikes": spikes, "charged": charged, "loss": loss}


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], t.shape[1], -1)


def compare_layers(spikes: list[Tensor], ref: list[Tensor], charged: list[Tensor]) -> list[dict]:
    """Per LIF layer: where ``spikes`` part from ``ref``, excused at ties (membrane ``charged``
    within TIE of the threshold) or from the step its input parted in that row."""
    rows, start = [], None
    for a, b, c in zip(spikes, ref, charged, strict=True):
        d = divergence(_flat(a), _flat(b), _flat(c), start)
        row_start = d.pop("row_start")
        start = row_start if start is None else torch.minimum(start, row_start)
        rows.append(d)
    return rows


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_contender(name: str, dump_: dict, ts: dict | None, oracles: dict) -> dict:
    own = oracles[name]
    row: dict = {"rates": [float(z.float().mean()) for z in dump_["spikes"]]}
    row["oracle"] = compare_layers(dump_["spikes"], own["spikes"], own["charged"])
    ok = all(d["unexplained"] == 0 for d in row["oracle"])
    if dump_["loss"] is not None:
        row["loss_rel_oracle"] = abs(dump_["loss"] - own["loss"]) / abs(own["loss"])
        if all(d["parted"] == 0 for d in row["oracle"]):
            ok &= row["loss_rel_oracle"] < 1e-5
    if ts is not None and name == "snntorch":
        ref = oracles["torchspike"]
        row["vs_torchspike"] = compare_layers(dump_["spikes"], ts["spikes"], ref["charged"])
        ok &= all(d["unexplained"] == 0 for d in row["vs_torchspike"])
        same = all(d["parted"] == 0 for d in row["vs_torchspike"])
        if dump_["loss"] is not None:
            row["loss_rel_torchspike"] = abs(dump_["loss"] - ts["loss"]) / abs(ts["loss"])
            pairs = zip(dump_["grads"], ts["grads"], strict=True)
            row["grad_rel_torchspike"] = max(_rel(g[k], t[k]) for g, t in pairs for k in t)
            if same:
                ok &= row["loss_rel_torchspike"] < 1e-5 and row["grad_rel_torchspike"] < 1e-4
    elif ts is not None and name == "spikingjelly":
        ref = oracles["torchspike"]
        first = first_spike_divergence(
            _flat(dump_["spikes"][0]), _flat(ts["spikes"][0]), _flat(ref["charged"][0])
        )
        row["first_spike_vs_torchspike"] = first
        ok &= first["unexplained"] == 0
    row["ok"] = bool(ok)
    return row


def run_conv_checks(cfg_name: str, contenders: dict[str, list[str]], seed: int, gains) -> dict:
    """``{weights: {contender: row}}`` for ``cfg_name`` at each weight gain."""
    cfg = CONV_CONFIGS[cfg_name]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for gain in gains:
            data = check_data(cfg, seed, float(gain))
            path_in = Path(tmp) / "in.pt"
            torch.save(data, path_in)
            dumps, rows = {}, {}
            for name, python in contenders.items():
                if name.startswith("floor"):
                    continue
                path_out = Path(tmp) / f"{name}.pt"
                flags = ("--threads", "1", "--check", str(path_in), "--dump", str(path_out))
                proc = subprocess.run(
                    time_peer(python, name, cfg_name, *flags), capture_output=True, text=True
                )
                if proc.returncode != 0:
                    err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    rows[name] = {"ok": False, "note": f"check run failed: {err}"}
                    continue
                dumps[name] = torch.load(path_out, weights_only=True)
            oracles = {n: oracle(n, cfg, data) for n in {*dumps, "torchspike"}}
            ts = dumps.get("torchspike")
            for name, d in dumps.items():
                rows[name] = check_contender(name, d, ts, oracles)
            results[f"conv/linear weights x{float(gain):g}"] = rows
    return results


def conv_check_table(checks: dict) -> list[str]:
    """Markdown rows for the conv configs' checks."""
    lines = [
        "| config | weights | contender | spike rate per LIF layer | vs own recursion: "
        "neurons parted (unexplained) per layer | vs torchspike | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for cfg, by_weights in checks.items():
        for j, (weights, res) in enumerate(by_weights.items()):
            for i, (name, r) in enumerate(res.items()):
                label = (cfg if i == j == 0 else "", weights if i == 0 else "")
                if "note" in r:
                    lines.append(f"| {label[0]} | {label[1]} | {name} | | {r['note']} | | **no** |")
                    continue
                rates = ", ".join(f"{x:.4f}" for x in r["rates"])
                own = "; ".join(f"{d['parted']} ({d['unexplained']})" for d in r["oracle"])
                if "loss_rel_oracle" in r:
                    own += f"; loss rel diff {r['loss_rel_oracle']:.0e}"
                lines.append(
                    f"| {label[0]} | {label[1]} | {name} | {rates} | {own} | {_vs(r)} | "
                    f"{'yes' if r['ok'] else '**no**'} |"
                )
    return lines


def _vs(r: dict) -> str:
    if "vs_torchspike" in r:
        text = "spikes differing per layer: " + ", ".join(
            str(d["spikes_differ"]) for d in r["vs_torchspike"]
        )
        if "loss_rel_torchspike" in r:
            text += (
                f"; loss rel diff {r['loss_rel_torchspike']:.0e}, "
                f"grads rel diff {r['grad_rel_torchspike']:.0e}"
            )
        return text
    if "first_spike_vs_torchspike" in r:
        f = r["first_spike_vs_torchspike"]
        return (
            f"first spike of layer 1 at another step: {f['parted']} ({f['unexplained']} "
            f"unexplained) of {f['neurons']}"
        )
    return "(reference)"
