"""tonic interoperability: tonic's structured event arrays <-> :class:`Events`.

tonic (an optional extra, ``pip install tonic``) gives each sample as a numpy structured array
with fields ``x``, ``y``, ``t``, ``p`` (audio: ``t``, ``x``, ``p``) and ``sensor_size`` as
``(width, height, polarities)``. :func:`from_tonic` wraps a tonic data set, its own transforms
included, so that its samples go through torchspike's transforms and batching unchanged.
tonic itself is never imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .container import Events, Sensor, make_events


def events_from_structured(
    array: np.ndarray, sensor_size: Sequence[int], *, source: str = "<tonic sample>"
) -> Events:
    """:class:`Events` from a structured array with fields ``t``, ``x`` and optionally ``y``,
    ``p`` (tonic's layout; float times are rounded to whole microseconds)."""
    names = array.dtype.names or ()
    if "t" not in names or "x" not in names:
        raise ValueError(
            f"{source}: a structured array with fields t and x is needed, got fields {names}"
        )
    order = np.argsort(array["t"], kind="stable")
    array = array[order]
    t = np.rint(array["t"]).astype(np.int64)
    y = array["y"] if "y" in names else None
    p = array["p"].astype(np.int64) if "p" in names else None
    if p is not None and len(p) and p.min() < 0:
        p = (p > 0).astype(np.int64)  # polarity -1 / +1 (some tonic sets) -> 0 / 1
    w, h, n_p = (*tuple(int(s) for s in sensor_size), 1, 1)[:3]
    if y is None and h == 1 and n_p == 1 and p is not None:
        p = None  # tonic's audio sets give every spike polarity 1 on a 1-polarity sensor
    return make_events(t, array["x"], y, p, Sensor(w, h, n_p), source=source)


def to_structured(events: Events) -> np.ndarray:
    """tonic's structured array (``x, y, t, p``; audio ``t, x, p``) of one sample."""
    if events.sensor.is_audio:
        dtype = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])
        fields = {"t": events.t, "x": events.x, "p": events.p}
    else:
        dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
        fields = {"x": events.x, "y": events.y, "t": events.t, "p": events.p}
    out = np.empty(len(events), dtype=dtype)
    for k, v in fields.items():
        out[k] = v.numpy()
    return out


class TonicDataset(torch.utils.data.Dataset):
    """A tonic data set seen as ``(Events, label)`` samples (see :func:`from_tonic`).

    Args:
        dataset: the tonic data set: ``(structured array, label)`` samples with fields ``t``,
            ``x`` and optionally ``y``, ``p`` (times in us).
        sensor_size: ``(width, height, polarities)``; default the data set's ``sensor_size``.
        classes: the class names; default the data set's ``classes``.
        transform: applied to each sample after conversion.
    """

    def __init__(
        self,
        dataset,
        *,
        sensor_size: Sequence[int] | None = None,
        classes: Sequence[str] | None = None,
        transform: Callable[[Events], Events] | None = None,
    ):
        self.dataset = dataset
        size = sensor_size if sensor_size is not None else dataset.sensor_size
        self.sensor = Sensor(*(tuple(int(s) for s in size) + (1, 1))[:3])
        if classes is None:
            classes = getattr(dataset, "classes", None)
        self.classes = [str(c) for c in classes] if classes is not None else None
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Events, int]:
        array, label = self.dataset[i]
        events = events_from_structured(array, self.sensor, source=f"tonic sample {i}")
        if self.transform is not None:
            events = self.transform(events)
        return events, int(label)


def from_tonic(dataset, **kwargs) -> TonicDataset:
    """Wrap a tonic data set (whose transforms, if any, must still return events)."""
    return TonicDataset(dataset, **kwargs)
