"""Event data: readers on files written here in each published layout, batching, load()."""

from __future__ import annotations

import pickle
import stat

import numpy as np
import pytest
import torch

from torchspike.data import events as ev
from torchspike.data.events import EventFileError, Sensor, gesture, heidelberg, nmnist

# ---------------------------------------------------------------- N-MNIST: 5-byte events


def nmnist_bytes(rows: list[tuple[int, int, int, int]]) -> bytes:
    """(x, y, p, t) rows in the published 40-bit big-endian layout."""
    out = bytearray()
    for x, y, p, t in rows:
        out += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def write_nmnist(root, split: str, label: int, name: str, rows) -> str:
    folder = root / split / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.bin"
    path.write_bytes(nmnist_bytes(rows))
    return str(path)


def test_nmnist_reads_the_40_bit_layout(tmp_path):
    rows = [(0, 0, 0, 0), (33, 1, 1, 70_000), (5, 33, 1, (1 << 23) - 1)]
    path = write_nmnist(tmp_path, "Train", 3, "00001", rows)
    e = nmnist.read(path)
    assert e.sensor == Sensor(34, 34, 2)
    assert e.t.tolist() == [0, 70_000, (1 << 23) - 1]
    assert e.x.tolist() == [0, 33, 5] and e.y.tolist() == [0, 1, 33] and e.p.tolist() == [0, 1, 1]
    assert (e.t.dtype, e.x.dtype, e.p.dtype) == (torch.int64, torch.int16, torch.int8)


def test_nmnist_overflow_marker_adds_2_to_the_13(tmp_path):
    rows = [(1, 2, 1, 8000), (0, 240, 0, 0), (3, 4, 0, 100), (0, 240, 0, 0), (5, 6, 1, 50)]
    e = nmnist.read(write_nmnist(tmp_path, "Train", 0, "a", rows))
    assert e.t.tolist() == [8000, 8192 + 100, 2 * 8192 + 50]
    assert e.x.tolist() == [1, 3, 5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (nmnist_bytes([(1, 1, 0, 5)])[:-2], "3 bytes is not a whole number of 5-byte"),
        (nmnist_bytes([(1, 1, 0, 5), (34, 0, 0, 6)]), r"x must lie in \[0, 34\)"),
        (nmnist_bytes([(1, 35, 0, 5)]), r"y must lie in \[0, 34\)"),
        (nmnist_bytes([(1, 1, 0, 9), (1, 1, 0, 5)]), "not sorted: event 1 at 5 us follows 9"),
    ],
)
def test_nmnist_bad_files_are_named(tmp_path, data, message):
    path = tmp_path / "Test" / "7" / "00042.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with pytest.raises(EventFileError, match=message) as err:
        nmnist.read(path)
    assert str(path) in str(err.value)


def test_nmnist_folder_is_lazy_cached_and_never_written(tmp_path, monkeypatch):
    for label, name in ((0, "00002"), (0, "00001"), (4, "00003")):
        write_nmnist(tmp_path, "Train", label, name, [(label, 1, 1, 10), (2, 2, 0, 20)])
    write_nmnist(tmp_path, "Test", 9, "00001", [(9, 9, 1, 1)])
    before = sorted(p for p in tmp_path.rglob("*"))
    for p in before:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    reads = []
    real = nmnist.read
    monkeypatch.setattr(nmnist, "read", lambda path: reads.append(path) or real(path))
    try:
        train = ev.load("n-mnist", "train", tmp_path)
        assert reads == [] and len(train) == 3 and train.labels.tolist() == [0, 0, 4]
        assert train.sensor == (34, 34, 2) and train.classes == [str(d) for d in range(10)]
        events, label = train[2]
        assert label == 4 and events.x.tolist() == [4, 2]
        assert [p.name for p in reads] == ["00003.bin"]
        train[2]
        assert len(reads) == 1  # the second epoch pays no parsing cost
        test = ev.load("n-mnist", "test", tmp_path, cache=False)
        test[0], test[0]
        assert len(reads) == 3
        assert sorted(p for p in tmp_path.rglob("*")) == before
    finally:
        for p in before:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match="must be one of"):
        ev.load("mnist", "train", tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        ev.load("n-mnist", "valid", tmp_path)
    with pytest.raises(FileNotFoundError, match="Train/<label>/<id>.bin"):
        ev.load("n-mnist", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="shd_test.h5"):
        ev.load("shd", "test", tmp_path)
    with pytest.raises(FileNotFoundError, match="trials_to_train.txt"):
        ev.load("dvs-gesture", "train", tmp_path)
    assert ev.sensor("dvs-gesture") == (128, 128, 2) and ev.splits("ssc")[1] == "valid"


# ---------------------------------------------------------------- SHD / SSC: HDF5

h5py = pytest.importorskip("h5py")


def write_shd(path, times, units, labels, *, keys=None, extra=True):
    """The published layout: vlen float16 seconds, vlen uint16 units, uint16 labels."""
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ti, ui) in enumerate(zip(times, units, strict=True)):
            t[i] = np.asarray(ti, dtype=np.float16)
            u[i] = np.asarray(ui, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if extra:
            keys = keys or [f"word-{i}".encode() for i in range(20)]
            f.create_dataset("extra/keys", data=np.array(keys, dtype="S"))
            f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
    return path


def test_shd_reads_the_published_hdf5_layout(tmp_path):
    times = [[0.0, 0.25, 0.5, 0.5, 1.0], [0.125]]
    write_shd(tmp_path / "shd_train.h5", times, [[3, 699, 0, 1, 3], [42]], [19, 0])
    data = ev.load("shd", "train", tmp_path)
    assert len(data) == 2 and data.labels.tolist() == [19, 0]
    assert data.sensor == Sensor(700) and data.sensor.shape == (700,)
    assert data.classes[19] == "word-19"
    e, label = data[0]
    assert label == 19
    assert e.t.tolist() == [0, 250_000, 500_000, 500_000, 1_000_000]
    assert e.channel.tolist() == [3, 699, 0, 1, 3] and e.y.tolist() == [0] * 5
    # a float16 time that is not a whole microsecond rounds to the nearest one
    write_shd(tmp_path / "shd_test.h5", [[0.3]], [[1]], [2])
    (e, _), t16 = ev.load("shd", "test", tmp_path)[0], float(np.float16(0.3))
    assert e.t.tolist() == [round(t16 * 1e6)]
    # handles do not travel: a pickled data set (DataLoader workers) reopens its file
    again = pickle.loads(pickle.dumps(data))
    assert again[1][0].t.tolist() == [125_000]


def test_ssc_splits_and_classes(tmp_path):
    keys = [f"cmd{i}".encode() for i in range(35)]
    write_shd(tmp_path / "ssc_valid.h5", [[0.1]], [[5]], [34], keys=keys)
    data = ev.load("ssc", "validation", tmp_path)
    assert data.classes[34] == "cmd34" and data[0][1] == 34
    with pytest.raises(ValueError, match="ssc split must be one of"):
        ev.load("ssc", "dev", tmp_path)


def test_shd_bad_files_are_named(tmp_path):
    good = write_shd(tmp_path / "good.h5", [[0.1, 0.2]] * 50, [[1, 2]] * 50, [1] * 50)
    cut = tmp_path / "shd_train.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(EventFileError, match="not a readable HDF5 file") as err:
        ev.load("shd", "train", tmp_path)
    assert str(cut) in str(err.value)

    cases = {
        "units.h5": ([[0.1]], [[700]], [0], r"channel must lie in \[0, 700\)"),
        "order.h5": ([[0.2, 0.1]], [[1, 1]], [0], "not sorted"),
        "negative.h5": ([[-0.1]], [[1]], [0], "negative time"),
        "lengths.h5": ([[0.1, 0.2]], [[1]], [0], "2 spike times but 1 units"),
        "label.h5": ([[0.1]], [[1]], [20], r"labels must lie in \[0, 20\)"),
    }
    for name, (times, units, labels, message) in cases.items():
        path = write_shd(tmp_path / name, times, units, labels)
        with pytest.raises(EventFileError, match=message) as err:
            heidelberg.read_file(path, name="shd")[0]
        assert str(path) in str(err.value), name

    with h5py.File(tmp_path / "nolabels.h5", "w") as f:
        f.create_dataset("spikes/times", data=np.zeros((1, 2), np.float16))
        f.create_dataset("spikes/units", data=np.zeros((1, 2), np.uint16))
    with pytest.raises(EventFileError, match="no dataset 'labels'"):
        heidelberg.read_file(tmp_path / "nolabels.h5")


# ---------------------------------------------------------------- DVS Gesture: AEDAT 3.1

HEADER = (
    b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
    b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
)


def polarity_packet(rows, *, overflow=0, valid=None) -> bytes:
    """A polarity packet (type 1) of (x, y, p, t[, valid]) rows."""
    data = np.zeros(len(rows), dtype=gesture.POLARITY_EVENT)
    for i, row in enumerate(rows):
        x, y, p, t, *ok = row
        data[i] = ((x << 17) | (y << 2) | (p << 1) | (ok[0] if ok else 1), t)
    head = np.array(
        [(1, 1, 8, 4, overflow, len(rows), len(rows), len(rows))], gesture.PACKET_HEADER
    )
    return head.tobytes() + data.tobytes()


def other_packet(n: int) -> bytes:
    """A packet of another type (special events, 8 bytes each), which the reader skips."""
    head = np.array([(0, 1, 8, 4, 0, n, n, n)], gesture.PACKET_HEADER)
    return head.tobytes() + bytes(8 * n)


def write_gesture(root, name="user01_fluorescent", body=None, labels=None):
    body = (
        body
        if body is not None
        else (
            polarity_packet([(1, 2, 1, 100), (127, 0, 0, 150, 0), (3, 4, 0, 200)])
            + other_packet(2)
            + polarity_packet([(5, 6, 1, 300), (7, 8, 0, 5)], overflow=1)
        )
    )
    (root / f"{name}.aedat").write_bytes(HEADER + body)
    labels = labels or "class,startTime_usec,endTime_usec\n1,100,250\n11,250,3000000000\n"
    (root / f"{name}_labels.csv").write_text(labels)
    return root / f"{name}.aedat"


def test_aedat31_polarity_events(tmp_path):
    t, x, y, p = gesture.read_aedat(write_gesture(tmp_path))
    # the invalid event (valid bit 0) and the other packet are skipped; overflow << 31 adds
    assert t.tolist() == [100, 200, (1 << 31) + 300, (1 << 31) + 5]
    assert x.tolist() == [1, 3, 5, 7] and y.tolist() == [2, 4, 6, 8] and p.tolist() == [1, 0, 1, 0]


def test_gesture_samples_cut_by_labels(tmp_path):
    write_gesture(tmp_path, body=polarity_packet([(1, 2, 1, 100), (3, 4, 0, 200), (5, 6, 1, 260)]))
    write_gesture(
        tmp_path,
        "user02_led",
        body=polarity_packet([(9, 9, 1, 10)]),
        labels="class,startTime_usec,endTime_usec\n3,0,100\n",
    )
    (tmp_path / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_led.aedat\n")
    (tmp_path / "trials_to_test.txt").write_text("user02_led.aedat\n")
    train = ev.load("dvs-gesture", "train", tmp_path)
    assert train.labels.tolist() == [0, 10, 2] and len(train.classes) == 11
    first, second = train[0][0], train[1][0]
    assert first.t.tolist() == [0, 100] and first.x.tolist() == [1, 3]  # times from start
    assert second.t.tolist() == [10] and second.x.tolist() == [5]
    assert train[2][0].x.tolist() == [9]
    assert len(train._cached) == 3  # one parse of a recording caches all its samples
    assert ev.load("dvs-gesture", "test", tmp_path).labels.tolist() == [2]


@pytest.mark.parametrize(
    ("raw", "labels", "message"),
    [
        (b"#!AER-DAT2.0\r\n" + HEADER[14:], None, "not an AEDAT 3.1 file"),
        (HEADER[:-14], None, "no b'#!END-HEADER' line"),
        (HEADER + polarity_packet([(1, 1, 1, 5)])[:20], None, "cannot hold a 28-byte packet"),
        (
            HEADER + polarity_packet([(1, 1, 1, 5), (1, 1, 1, 6)])[:-3],
            None,
            "declares 2 events of 8 bytes, but only 13 bytes remain",
        ),
        (HEADER + polarity_packet([(1, 1, 1, 9), (1, 1, 1, 5)]), None, "not sorted"),
        (HEADER + polarity_packet([(1, 200, 1, 9)]), None, r"y must lie in \[0, 128\)"),
        (
            HEADER + polarity_packet([(1, 1, 1, 9)]),
            "class,start,end\n12,0,10\n",
            "class must be 1..11",
        ),
        (HEADER + polarity_packet([(1, 1, 1, 9)]), "class,start,end\n1;0;10\n", "line 2 is not"),
    ],
)
def test_gesture_bad_files_are_named(tmp_path, raw, labels, message):
    path = tmp_path / "user05_lab.aedat"
    path.write_bytes(raw)
    (tmp_path / "user05_lab_labels.csv").write_text(labels or "class,s,e\n1,0,100\n")
    with pytest.raises(EventFileError, match=message) as err:
        gesture.read_recording(path)
    assert "user05_lab" in str(err.value)


# ---------------------------------------------------------------- tonic (optional)


def same(a, b) -> bool:
    return a.sensor == b.sensor and all(torch.equal(getattr(a, k), getattr(b, k)) for k in "txyp")


def test_a_tonic_dataset_trains_through_our_transforms(tmp_path):
    tonic = pytest.importorskip("tonic")

    folder = tmp_path / "SHD"
    folder.mkdir()
    (folder / "shd_train.h5.zip").write_bytes(b"")  # tonic checks the archive is present
    times, units = [[0.0, 0.25, 0.5], [0.125, 0.375]], [[3, 699, 3], [1, 2]]
    write_shd(folder / "shd_train.h5", times, units, [4, 7])
    theirs = ev.from_tonic(tonic.datasets.SHD(str(tmp_path), train=True))
    ours = ev.load("shd", "train", folder)
    assert theirs.sensor == ours.sensor and len(theirs) == 2
    for b in (2, 1):
        (x1, y1), (x2, y2) = next(ev.batches(theirs, b)), next(ev.batches(ours, b))
        assert torch.equal(y1, y2)
        assert torch.equal(ev.to_frames(x1, bin_width=100_000), ev.to_frames(x2, bin_width=1e5))

    # a tonic transform on tonic's arrays, then ours; tonic's own N-MNIST reader agrees with ours
    denoised = ev.events_from_structured(
        tonic.transforms.Denoise(filter_time=10)(
            ev.to_structured(ev.make_events([0, 4, 9], [0, 2, 2], [0, 1, 1], [1, 0, 0], (3, 2, 2)))
        ),
        (3, 2, 2),
    )
    assert ev.to_frames(denoised, bins=1).shape == (1, 1, 2, 2, 3)
    path = tmp_path / "00001.bin"
    path.write_bytes(nmnist_bytes([(1, 2, 1, 5), (0, 240, 0, 0), (33, 0, 0, 7)]))
    array = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    assert same(ev.events_from_structured(array, (34, 34, 2)), nmnist.read(path))


# ---------------------------------------------------------------- batching


def sample(t, x, y, p, sensor=(4, 3, 2)):
    return ev.make_events(np.array(t), np.array(x), np.array(y), np.array(p), sensor)


def test_batch_unbatch_and_collate():
    a = sample([0, 5], [1, 2], [0, 1], [1, 0])
    b = sample([], [], [], [])
    c = sample([7], [3], [2], [1])
    batch = ev.batch([a, b, c])
    assert batch.batch_size == 3 and batch.sample.tolist() == [0, 0, 2]
    back = ev.unbatch(batch)
    assert [e.t.tolist() for e in back] == [[0, 5], [], [7]]
    loader = torch.utils.data.DataLoader([(a, 1), (c, 0)], batch_size=2, collate_fn=ev.collate)
    got, labels = next(iter(loader))
    assert labels.tolist() == [1, 0] and got.t.tolist() == [0, 5, 7]
    with pytest.raises(ValueError, match="different sensors"):
        ev.batch([a, sample([1], [1], [1], [0], (5, 5, 2))])


def test_batches_of_a_dataset_in_a_seeded_order():
    items = [sample([i], [i % 4], [0], [0]) for i in range(5)]
    data = ev.EventDataset(
        list(range(5)), items.__getitem__, sensor=(4, 3, 2), classes=list("abcde")
    )
    got = list(ev.batches(data, 2, shuffle=True, generator=torch.Generator().manual_seed(0)))
    again = list(ev.batches(data, 2, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b, _ in got] == [2, 2, 1]
    assert all(torch.equal(x[1], y[1]) for x, y in zip(got, again, strict=True))
    assert sorted(torch.cat([y for _, y in got]).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ev.EventDataset([0, 2], items.__getitem__, sensor=(4, 3, 2), classes=["a", "b"])
    with pytest.raises(IndexError):
        data.events(5)


def test_make_events_checks_what_it_is_given():
    with pytest.raises(EventFileError, match=r"my.bin: polarity must lie in \[0, 2\)"):
        ev.make_events([1], [0], [0], [2], (4, 3, 2), source="my.bin")
    with pytest.raises(EventFileError, match="x has"):
        ev.make_events([1, 2], [0], [0, 0], [0, 0], (4, 3, 2))
