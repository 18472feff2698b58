"""DVS128 Gesture (Amir et al. 2017): AEDAT 3.1 recordings cut into samples by ``_labels.csv``.

The published ``DvsGesture`` folder holds ``userNN_<lighting>.aedat`` recordings, one
``userNN_<lighting>_labels.csv`` each (``class,startTime_usec,endTime_usec``, classes 1..11) and
``trials_to_train.txt`` / ``trials_to_test.txt`` naming the recordings of each split.

AEDAT 3.1: a text header of ``#`` lines, the first ``#!AER-DAT3.1``, the last ``#!END-HEADER``,
then packets. A packet header is 28 bytes, little-endian: int16 type, int16 source, int32 size
(bytes per event), int32 timestamp offset, int32 timestamp overflow, int32 capacity, int32 number,
int32 valid. Polarity packets (type 1) hold 8-byte events: uint32 data (bit 0 valid, bit 1
polarity, bits 2-16 y, bits 17-31 x) and int32 timestamp (us); the full time is
``overflow << 31 | timestamp``. Other packet types are skipped. Sensor: 128 x 128, 2 polarities.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from .container import EventFileError, Events, Sensor, make_events
from .dataset import EventDataset

SENSOR = Sensor(128, 128, 2)
CLASSES = [
    "hand clap",
    "right hand wave",
    "left hand wave",
    "right arm clockwise",
    "right arm counter-clockwise",
    "left arm clockwise",
    "left arm counter-clockwise",
    "arm roll",
    "air drums",
    "air guitar",
    "other gestures",
]
SPLIT_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
PACKET_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
POLARITY_EVENT = np.dtype([("data", "<u4"), ("t", "<i4")])
POLARITY_TYPE = 1


def _data_start(path: Path, raw: bytes) -> int:
    if not raw.startswith(MAGIC):
        raise EventFileError(path, f"not an AEDAT 3.1 file: it does not start with {MAGIC!r}")
    pos = 0
    while pos < len(raw) and raw[pos : pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        if end < 0:
            break
        line, pos = raw[pos:end], end + 1
        if line.rstrip(b"\r") == END_HEADER:
            return pos
    raise EventFileError(path, f"AEDAT header has no {END_HEADER!r} line (truncated?)")


def read_aedat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All valid polarity events ``(t, x, y, p)`` of an AEDAT 3.1 file, as numpy arrays."""
    path = Path(path)
    raw = path.read_bytes()
    pos = _data_start(path, raw)
    chunks: list[np.ndarray] = []
    while pos < len(raw):
        if len(raw) - pos < PACKET_HEADER.itemsize:
            raise EventFileError(
                path,
                f"truncated: {len(raw) - pos} bytes at offset {pos} cannot hold a "
                "28-byte packet header",
            )
        head = np.frombuffer(raw, PACKET_HEADER, 1, pos)[0]
        size, number = int(head["size"]), int(head["number"])
        if size <= 0 or number < 0:
            raise EventFileError(
                path, f"corrupt packet header at offset {pos}: event size {size}, {number} events"
            )
        pos += PACKET_HEADER.itemsize
        end = pos + size * number
        if end > len(raw):
            raise EventFileError(
                path,
                f"truncated: the packet at offset {pos - 28} declares {number} events of "
                f"{size} bytes, but only {len(raw) - pos} bytes remain",
            )
        if int(head["type"]) == POLARITY_TYPE:
            if size != POLARITY_EVENT.itemsize:
                raise EventFileError(
                    path, f"polarity packet at offset {pos - 28} has {size}-byte events, expected 8"
                )
            ev = np.frombuffer(raw, POLARITY_EVENT, number, pos)
            ev = ev[(ev["data"] & 1) == 1]
            t = ev["t"].astype(np.int64) | (np.int64(head["ts_overflow"]) << 31)
            chunks.append(
                np.stack(
                    [
                        t,
                        (ev["data"] >> 17).astype(np.int64) & 0x7FFF,
                        (ev["data"] >> 2).astype(np.int64) & 0x7FFF,
                        (ev["data"] >> 1).astype(np.int64) & 1,
                    ]
                )
            )
        pos = end
    allev = np.concatenate(chunks, axis=1) if chunks else np.zeros((4, 0), np.int64)
    return allev[0], allev[1], allev[2], allev[3]


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """``[[label, start_us, end_us], ...]`` of a ``_labels.csv`` file, labels 0-based."""
    path = Path(path)
    rows = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            label, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise EventFileError(
                path, f"line {n} is not 'class,startTime_usec,endTime_usec': {line!r}"
            ) from None
        if not 1 <= label <= len(CLASSES) or end <= start:
            raise EventFileError(
                path, f"line {n}: class must be 1..{len(CLASSES)} and end > start, got {line!r}"
            )
        rows.append((label - 1, start, end))
    if not lines or not lines[0].startswith("class"):
        raise EventFileError(path, "no 'class,startTime_usec,endTime_usec' header line")
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def read_recording(
    aedat: str | os.PathLike, labels: str | os.PathLike | None = None
) -> list[tuple[Events, int]]:
    """The labelled samples of one recording: events in ``[start, end)``, times from start."""
    aedat = Path(aedat)
    labels = Path(labels) if labels else aedat.with_name(aedat.stem + "_labels.csv")
    t, x, y, p = read_aedat(aedat)
    back = np.flatnonzero(t[1:] < t[:-1])
    if len(back):
        i = int(back[0])
        raise EventFileError(
            aedat, f"times are not sorted: event {i + 1} at {t[i + 1]} us follows {t[i]} us"
        )
    out = []
    for label, start, end in read_labels(labels):
        lo, hi = np.searchsorted(t, [start, end])
        out.append(
            (
                make_events(
                    t[lo:hi] - start,
                    x[lo:hi],
                    y[lo:hi],
                    p[lo:hi],
                    SENSOR,
                    source=f"{aedat} ({start}-{end} us)",
                ),
                int(label),
            )
        )
    return out


def recordings(root: str | os.PathLike, split: str) -> list[Path]:
    """The ``.aedat`` recordings listed for ``split`` in ``trials_to_<split>.txt``."""
    if split not in SPLIT_LISTS:
        raise ValueError(f"DVS Gesture split must be one of {list(SPLIT_LISTS)}, got {split!r}")
    listing = Path(root) / SPLIT_LISTS[split]
    if not listing.is_file():
        raise FileNotFoundError(
            f"{listing}: no such file; data_dir must be the unpacked DvsGesture folder "
            "(userNN_<lighting>.aedat, its _labels.csv, trials_to_train.txt, trials_to_test.txt)"
        )
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    return [Path(root) / n for n in names]


def dataset(root: str | os.PathLike, split: str, **kwargs) -> EventDataset:
    """DVS Gesture ``split``: one sample per labelled gesture; the labels CSVs are read up front,
    each recording when one of its samples is first asked for."""
    index: list[tuple[Path, int]] = []
    labels: list[int] = []
    for rec in recordings(root, split):
        if not rec.is_file():
            raise FileNotFoundError(f"{rec}: listed in {SPLIT_LISTS[split]} but missing")
        rows = read_labels(rec.with_name(rec.stem + "_labels.csv"))
        index += [(rec, k) for k in range(len(rows))]
        labels += rows[:, 0].tolist()
    return EventDataset(
        labels,
        partial(_read_sample, index),
        sensor=SENSOR,
        classes=CLASSES,
        name=f"dvs-gesture {split}",
        **kwargs,
    )


def _read_sample(index: list[tuple[Path, int]], i: int) -> dict[int, Events]:
    rec, _ = index[i]
    first = i - index[i][1]
    return {first + k: ev for k, (ev, _) in enumerate(read_recording(rec))}
