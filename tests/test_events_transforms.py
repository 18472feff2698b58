"""Event transforms and augmentations against hand-computed cases; tonic interop; plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchspike.data import events as ev
from torchspike.data.events import Sensor

SENSOR = (3, 2, 2)  # width 3, height 2, 2 polarities


def sample(rows, sensor=SENSOR):
    """Events from (t, x, y, p) rows."""
    t, x, y, p = (
        (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
        if rows
        else [np.zeros(0, np.int64)] * 4
    )
    return ev.make_events(t, x, y, p, sensor)


A = [(0, 0, 0, 1), (4, 2, 1, 0), (9, 2, 1, 0), (10, 1, 0, 1)]
B = [(3, 1, 1, 1)]


def expected(steps: int, cells: list[tuple[int, int, int, int, int]]) -> torch.Tensor:
    """[T, B, P, H, W] with a 1 added at each (k, b, p, y, x)."""
    out = torch.zeros(steps, 2, 2, 2, 3)
    for k, b, p, y, x in cells:
        out[k, b, p, y, x] += 1
    return out


def test_frames_with_a_fixed_bin_width():
    batch = ev.batch([sample(A), sample(B)])
    want = expected(
        3, [(0, 0, 1, 0, 0), (0, 0, 0, 1, 2), (1, 0, 0, 1, 2), (2, 0, 1, 0, 1), (0, 1, 1, 1, 1)]
    )
    assert torch.equal(ev.to_frames(batch, bin_width=5, duration=15), want)
    # without duration: the batch's last event + 1 us = 11 -> ceil(11 / 5) = 3 bins
    assert torch.equal(ev.to_frames(batch, bin_width=5), want)
    # with duration 10 the event at t = 10 falls outside
    short = ev.to_frames(batch, bin_width=5, duration=10)
    assert short.shape == (2, 2, 2, 2, 3) and torch.equal(short, want[:2])


def test_frames_with_a_fixed_number_of_bins():
    batch = ev.batch([sample(A), sample(B)])
    # over a common duration of 20 us: bins [0, 10) and [10, 20)
    want = expected(
        2, [(0, 0, 1, 0, 0), (0, 0, 0, 1, 2), (0, 0, 0, 1, 2), (1, 0, 1, 0, 1), (0, 1, 1, 1, 1)]
    )
    assert torch.equal(ev.to_frames(batch, bins=2, duration=20), want)
    # over each sample's own span: A spans 0..10 (11 us): k = floor(t * 2 / 11) = 0, 0, 1, 1
    want = expected(
        2, [(0, 0, 1, 0, 0), (0, 0, 0, 1, 2), (1, 0, 0, 1, 2), (1, 0, 1, 0, 1), (0, 1, 1, 1, 1)]
    )
    assert torch.equal(ev.to_frames(batch, bins=2), want)


def test_binary_spikes_and_counts_of_repeated_events():
    one = sample([(1, 2, 1, 0), (2, 2, 1, 0), (3, 2, 1, 0)])
    frames = ev.to_frames(one, bin_width=10)
    assert frames.shape == (1, 1, 2, 2, 3) and frames[0, 0, 0, 1, 2] == 3 and frames.sum() == 3
    spikes = ev.to_spikes(one, bin_width=10)
    assert spikes[0, 0, 0, 1, 2] == 1 and spikes.sum() == 1 and spikes.dtype == torch.float32


def test_audio_frames_are_time_batch_channel():
    audio = ev.batch([sample([(0, 4, 0, 0), (7, 0, 0, 0), (8, 0, 0, 0)], (5,))])
    frames = ev.to_frames(audio, bin_width=5)
    want = torch.zeros(2, 1, 5)
    want[0, 0, 4], want[1, 0, 0] = 1, 2
    assert torch.equal(frames, want)


def test_bin_arguments_are_checked():
    one = sample(A)
    with pytest.raises(ValueError, match="exactly one of bins"):
        ev.to_frames(one)
    with pytest.raises(ValueError, match="exactly one of bins"):
        ev.to_frames(one, bins=2, bin_width=5)
    with pytest.raises(ValueError, match="bins must be a positive int"):
        ev.to_frames(one, bins=0)
    with pytest.raises(ValueError, match="duration must be > 0"):
        ev.to_frames(one, bin_width=5, duration=0)


def test_exact_spike_times_for_eventprop():
    a = sample([(1500, 0, 0, 1), (2500, 2, 1, 0)])
    b = sample([(700, 1, 1, 1)])
    spikes = ev.to_spike_times(ev.batch([a, b]), dt=1e-3)
    assert (spikes.steps, spikes.units, spikes.batch_size, spikes.dt) == (3, 12, 2, 1e-3)
    # sorted by step: B's event (unit (1 * 2 + 1) * 3 + 1 = 10), then A's two
    assert spikes.step.tolist() == [0, 1, 2] and spikes.batch.tolist() == [1, 0, 0]
    assert spikes.unit.tolist() == [10, 6, 5]
    # each time is the event's own, not its step's start or end
    want = torch.tensor([700e-6, 1500e-6, 2500e-6], dtype=torch.float64)
    assert torch.equal(spikes.times, want.float())
    assert torch.equal(
        ev.to_spike_times(ev.batch([a, b]), dt=1e-3, dtype=torch.float64).times, want
    )
    cut = ev.to_spike_times(ev.batch([a, b]), dt=1e-3, steps=2)
    assert cut.steps == 2 and cut.unit.tolist() == [10, 6]


def test_spike_times_bin_like_frames():
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(3):
        n = int(torch.randint(1, 40, (1,), generator=gen))
        t = torch.sort(torch.randint(0, 20_000, (n,), generator=gen)).values
        xyp = [torch.randint(0, s, (n,), generator=gen) for s in SENSOR]
        samples.append(ev.make_events(t, *xyp, SENSOR))
    batch = ev.batch(samples)
    spikes = ev.to_spike_times(batch, dt=1e-3, steps=20, dtype=torch.float64)
    frames = ev.to_frames(batch, bin_width=1000, duration=20_000)
    counts = torch.zeros(20, 3, 12)
    counts.index_put_(
        (spikes.step, spikes.batch, spikes.unit), torch.ones(len(spikes.step)), accumulate=True
    )
    assert torch.equal(counts, frames.flatten(2))


# ---------------------------------------------------------------- augmentations


def rows(events):
    return list(
        zip(events.t.tolist(), events.x.tolist(), events.y.tolist(), events.p.tolist(), strict=True)
    )


def test_denoise_keeps_events_with_a_recent_neighbour():
    sensor = (4, 4, 2)
    events = sample(
        [
            (0, 1, 1, 0),  # no neighbour before it: dropped
            (2, 2, 1, 1),  # (1, 1) 2 us earlier: kept
            (3, 3, 3, 0),  # alone: dropped
            (20, 1, 2, 0),  # neighbour (2, 1) was 18 us ago, more than 5: dropped
            (21, 1, 1, 1),  # neighbour (1, 2) 1 us ago: kept
            (22, 3, 3, 1),  # only its own pixel fired before: dropped
            (50, 0, 0, 0),  # two neighbours at the same time: both kept
            (50, 0, 1, 1),
        ],
        sensor,
    )
    kept = ev.denoise(events, window=5)
    assert rows(kept) == [(2, 2, 1, 1), (21, 1, 1, 1), (50, 0, 0, 0), (50, 0, 1, 1)]
    assert kept.sensor == sensor


def test_downsample_space_and_time():
    events = sample([(17, 4, 2, 1), (23, 1, 0, 0)], (5, 3, 2))
    out = ev.downsample(events, spatial=2, temporal=10)
    assert out.sensor == Sensor(3, 2, 2) and rows(out) == [(10, 2, 1, 1), (20, 0, 0, 0)]
    audio = ev.downsample(sample([(5, 699, 0, 0)], (700,)), spatial=4)
    assert audio.sensor == Sensor(175) and audio.x.tolist() == [174]
    with pytest.raises(ValueError, match="spatial must be a positive int"):
        ev.downsample(events, spatial=0)


def test_crop_and_shift():
    sensor = (4, 3, 2)
    events = sample([(1, 1, 1, 0), (2, 3, 1, 1), (3, 2, 2, 1), (4, 0, 2, 0)], sensor)
    cropped = ev.crop(events, x0=1, y0=1, width=2, height=2)
    assert cropped.sensor == Sensor(2, 2, 2) and rows(cropped) == [(1, 0, 0, 0), (3, 1, 1, 1)]
    moved = ev.shift(events, dx=1, dy=-1)
    assert moved.sensor == Sensor(*sensor) and rows(moved) == [
        (1, 2, 0, 0),
        (3, 3, 1, 1),
        (4, 1, 1, 0),
    ]
    drawn = torch.randint(-1, 2, (2,), generator=torch.Generator().manual_seed(3)).tolist()
    got = ev.random_shift(events, 1, generator=torch.Generator().manual_seed(3))
    assert rows(got) == rows(ev.shift(events, dx=drawn[0], dy=drawn[1]))
    got = ev.random_crop(events, (2, 2), generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    x0, y0 = int(torch.randint(3, (1,), generator=g)), int(torch.randint(2, (1,), generator=g))
    assert rows(got) == rows(ev.crop(events, x0=x0, y0=y0, width=2, height=2))
    with pytest.raises(ValueError, match="must fit the sensor"):
        ev.random_crop(events, (5, 2))


def test_time_jitter_scale_and_event_drop():
    events = sample([(0, 0, 0, 0), (2, 1, 0, 1), (10, 2, 1, 0), (11, 1, 1, 1)])
    assert rows(ev.time_jitter(events, 0.0)) == rows(events)
    jittered = ev.time_jitter(events, 50.0, generator=torch.Generator().manual_seed(1))
    again = ev.time_jitter(events, 50.0, generator=torch.Generator().manual_seed(1))
    assert rows(jittered) == rows(again)
    assert bool((jittered.t[1:] >= jittered.t[:-1]).all()) and int(jittered.t.min()) >= 0
    assert sorted(r[1:] for r in rows(jittered)) == sorted(r[1:] for r in rows(events))
    assert ev.time_scale(events, 1.5).t.tolist() == [0, 3, 15, 16]  # 16.5 rounds to even
    assert ev.random_time_scale(events, 2.0, 2.0).t.tolist() == [0, 4, 20, 22]
    assert len(ev.drop_events(events, 0.0)) == 4 and len(ev.drop_events(events, 1.0)) == 0
    g = torch.Generator().manual_seed(7)
    keep = torch.rand(4, generator=g) >= 0.5
    dropped = ev.drop_events(events, 0.5, generator=torch.Generator().manual_seed(7))
    assert rows(dropped) == [r for r, k in zip(rows(events), keep.tolist(), strict=True) if k]
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        ev.drop_events(events, 1.5)


def test_compose_runs_left_to_right_in_a_dataset():
    events = sample([(5, 2, 1, 0), (9, 0, 0, 1)])
    pipeline = ev.compose(lambda e: ev.shift(e, dx=-1, dy=0), lambda e: ev.time_scale(e, 2))
    data = ev.EventDataset(
        [1], [events].__getitem__, sensor=SENSOR, classes=["a", "b"], transform=pipeline
    )
    got, label = data[0]
    assert label == 1 and rows(got) == [(10, 1, 1, 0)]
    assert rows(data.events(0)) == rows(events)  # the cache holds the events as read


# ---------------------------------------------------------------- tonic and plots


def test_structured_arrays_round_trip_without_tonic():
    events = sample(A)
    array = ev.to_structured(events)
    assert array.dtype.names == ("x", "y", "t", "p")
    assert rows(ev.events_from_structured(array, SENSOR)) == rows(events)
    audio = sample([(3, 4, 0, 0)], (700,))
    array = ev.to_structured(audio)
    assert array.dtype.names == ("t", "x", "p")
    array["p"] = 1  # tonic's audio sets give every spike polarity 1
    assert rows(ev.events_from_structured(array, (700, 1, 1))) == rows(audio)
    signed = ev.to_structured(sample(A))
    signed["p"] = 2 * signed["p"] - 1  # polarity -1 / +1
    assert rows(ev.events_from_structured(signed, SENSOR)) == rows(sample(A))
    with pytest.raises(ValueError, match="fields t and x"):
        ev.events_from_structured(np.zeros(2, [("a", int)]), SENSOR)


def test_plot_strip_and_raster(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    events = sample(A)
    path = ev.plot_events(events, path=tmp_path / "strip.png", bins=3, label=4, prediction=9)
    assert (tmp_path / "strip.png").read_bytes()[:4] == b"\x89PNG"
    ax = Figure().add_subplot()
    assert ev.plot_events(events, ax, kind="raster", label="four") is ax
    assert ax.get_title() == "label four" and ax.get_xlabel() == "time (ms)"
    audio = sample([(0, 4, 0, 0), (7, 0, 0, 0)], (5,))
    ax = Figure().add_subplot()
    ev.plot_events(audio, ax, bins=2, prediction=1)
    assert ax.get_ylabel() == "channel" and ax.get_title() == "predicted 1"
    with pytest.raises(ValueError, match="exactly one of ax"):
        ev.plot_events(events)
    assert path is not None
