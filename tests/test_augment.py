"""Random translation of training images: the maths against a hand loop, the draws, the
settings' checks, and what the loop does with it (training batches only, resumable)."""

import pytest
import torch

from torchspike import files
from torchspike.app import augment, loop
from torchspike.app.config import BPTTConfig, ConfigError, from_dict
from torchspike.app.load import build
from torchspike.app.progress import Interrupted
from torchspike.app.rundir import RunDir


def _by_hand(x, shifts):
    out = torch.zeros_like(x)
    _, _, h, w = x.shape
    for b, (dy, dx) in enumerate(shifts.tolist()):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[b, :, i, j] = x[b, :, i - dy, j - dx]
    return out


@pytest.mark.parametrize("shift", [1, 2, 3])
def test_translate_moves_each_image_by_its_offset_with_zero_fill(shift):
    x = torch.rand(9, 2, 5, 7)
    shifts = augment.draw_shifts(9, shift, torch.Generator().manual_seed(shift))
    assert torch.equal(augment.translate(x, shifts), _by_hand(x, shifts))


def test_translate_known_offsets():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    down_right = augment.translate(x, torch.tensor([[1, 1]]))
    assert down_right[0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]
    up_left = augment.translate(x, torch.tensor([[-1, -2]]))
    assert up_left[0, 0].tolist() == [[5, 0, 0], [8, 0, 0], [0, 0, 0]]
    assert torch.equal(augment.translate(x, torch.zeros(1, 2, dtype=torch.long)), x)


def test_translate_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"images \[B, C, H, W\], got shape \(4, 64\)"):
        augment.translate(torch.zeros(4, 64), torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shifts must be \[4, 2\]"):
        augment.translate(torch.zeros(4, 1, 8, 8), torch.zeros(3, 2, dtype=torch.long))


def test_draws_are_uniform_on_the_range_and_fixed_by_seed_epoch_batch():
    d = augment.draw_shifts(20_000, 2, augment.generator_for(0, 0, 0))
    counts = torch.bincount((d + 2).flatten(), minlength=5).float() / d.numel()
    assert d.min() == -2 and d.max() == 2
    assert torch.allclose(counts, torch.full((5,), 0.2), atol=0.01)
    again = augment.draw_shifts(20_000, 2, augment.generator_for(0, 0, 0))
    assert torch.equal(d, again)
    for other in [(1, 0, 0), (0, 1, 0), (0, 0, 1)]:
        assert not torch.equal(d, augment.draw_shifts(20_000, 2, augment.generator_for(*other)))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"random_shift": -1}, "random_shift must be an integer >= 0, got -1"),
        ({"random_shift": 1.5}, "random_shift must be an integer, got 1.5"),
        ({"random_shift": 8}, r"random_shift must be smaller than the image \(8x8\), got 8"),
        ({"random_shift": 1, "dataset": "yinyang"}, "random_shift needs an image data set"),
        ({"random_shift": 1, "method": "stdp"}, "unknown settings for method 'stdp'"),
    ],
)
def test_bad_random_shift_is_refused_by_name(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"dataset": "digits", **values}, "test")


BASE = dict(dataset="digits", hidden=[32], steps=6, batch_size=64, epochs=2, lr=0.05)


def _fit(cfg, out, **kwargs):
    torch.manual_seed(cfg.seed)
    method, model = build(cfg)
    run = RunDir(out) if kwargs.get("resume") else RunDir.create(out, overwrite=False)
    metrics = loop.fit(
        cfg, method, model, loop.load_splits(cfg), run=run, log=lambda _: 0, **kwargs
    )
    return metrics, files.load_weights(out / "model.safetensors")


def test_the_loop_shifts_training_batches_only(monkeypatch):
    cfg = BPTTConfig(**{**BASE, "epochs": 1}, random_shift=2)
    method, model = build(cfg)
    splits = loop.load_splits(cfg)
    trained, scored = [], []
    real_loss, real_scores = method.loss_and_scores, method.scores
    monkeypatch.setattr(
        method, "loss_and_scores", lambda r, x, y, c: (trained.append(x), real_loss(r, x, y, c))[1]
    )
    monkeypatch.setattr(
        method, "scores", lambda m, x, c: (scored.append(x), real_scores(m, x, c))[1]
    )
    loop.fit(cfg, method, model, splits, log=lambda _: 0)
    order = loop.batches(len(splits.train), cfg.batch_size, torch.Generator().manual_seed(0))
    for b in (0, len(order) - 1):
        x = splits.train.take(order[b])[0]
        shifts = augment.draw_shifts(len(x), 2, augment.generator_for(0, 0, b))
        assert torch.equal(trained[b], augment.translate(x, shifts))
        assert not torch.equal(trained[b], x)
    evaluated = torch.cat(scored)  # validation then test, in order, untouched
    assert torch.equal(evaluated, torch.cat([splits.validation.x, splits.test.x]))


def test_a_shifted_run_interrupted_and_resumed_equals_one_run(tmp_path):
    cfg = BPTTConfig(**BASE, random_shift=1)
    _, whole = _fit(cfg, tmp_path / "whole")

    def interrupt(epoch, batch):
        if (epoch, batch) == (1, 3):
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        _fit(cfg, tmp_path / "parted", on_batch=interrupt)
    _, parted = _fit(cfg, tmp_path / "parted", resume=True)
    assert all(torch.equal(whole[k], parted[k]) for k in whole)
    _, unshifted = _fit(BPTTConfig(**BASE), tmp_path / "plain")
    assert not all(torch.equal(whole[k], unshifted[k]) for k in whole)
