"""A lazy event data set: labels up front, each sample read from its file when first asked for.

Nothing is densified and nothing is written beside the data (the data folder may be read-only).
With ``cache=True`` (the default) a sample read once stays in memory in the container's compact
dtypes (13 bytes an event: 1,000 N-MNIST recordings take about 55 MB), so the second epoch
pays no parsing cost; pass ``cache=False`` for data sets larger than memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from .container import EventBatch, Events, Sensor, collate


class EventDataset(torch.utils.data.Dataset):
    """Samples ``(events, label)`` from ``read(i) -> Events``; ``labels`` are known up front.

    This is also the hook for one's own data: give it the labels and a function that reads
    sample ``i`` (e.g. with :func:`~torchspike.data.events.make_events`).

    Args:
        labels: the class index of each sample, ``[N]``.
        read: reads sample ``i``; may return several samples at once as ``{index: events}``
            (a DVS Gesture recording holds a dozen), all of which are cached.
        sensor: the :class:`Sensor` (or ``(width, height, polarities)``) of every sample.
        classes: the class names, in label order.
        name: the data set's name, used in messages.
        transform: applied to each sample after the cache (augmentations stay random).
        cache: keep each sample once read.
    """

    def __init__(
        self,
        labels: Sequence[int] | Tensor,
        read: Callable[[int], Events | dict[int, Events]],
        *,
        sensor: Sensor | Sequence[int],
        classes: Sequence[str],
        name: str = "events",
        transform: Callable[[Events], Events] | None = None,
        cache: bool = True,
    ):
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.sensor = Sensor(*sensor)
        self.classes = list(classes)
        self.name = name
        self.transform = transform
        self.cache = cache
        self._read = read
        self._cached: dict[int, Events] = {}
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise ValueError(
                f"{name}: labels must lie in [0, {len(self.classes)}), got "
                f"[{int(self.labels.min())}, {int(self.labels.max())}]"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def events(self, i: int) -> Events:
        """Sample ``i``'s events as read (before ``transform``)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} samples")
        i %= len(self)
        got = self._cached.get(i)
        if got is not None:
            return got
        read = self._read(i)
        many = read if isinstance(read, dict) else {i: read}
        if self.cache:
            self._cached.update(many)
        return many[i]

    def __getitem__(self, i: int) -> tuple[Events, int]:
        events = self.events(i)
        if self.transform is not None:
            events = self.transform(events)
        return events, int(self.labels[i])

    def cached_bytes(self) -> int:
        return sum(e.nbytes() for e in self._cached.values())

    def __repr__(self) -> str:
        return (
            f"EventDataset({self.name!r}, {len(self)} samples, sensor={tuple(self.sensor)}, "
            f"{len(self.classes)} classes)"
        )


def batches(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[EventBatch, Tensor]]:
    """Mini-batches ``(EventBatch, labels)`` in this process (a DataLoader with ``collate``
    does the same with workers)."""
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size].tolist()
        if drop_last and len(idx) < batch_size:
            return
        yield collate([dataset[i] for i in idx])
