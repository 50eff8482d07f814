"""DVS-Gesture from a local folder: AEDAT 3.1 decoding, both layouts, errors, encodings, a tiny run."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.data import DataError, MissingDataError
from sdsnn_bio.data.dvs_gesture import (
    CLASSES,
    decode_aedat31,
    find_gesture_samples,
    open_dvs_gesture,
    read_gesture_labels,
)
from sdsnn_bio.data.encoding import encode_frames
from sdsnn_bio.data.format import EVENT_DTYPE
from sdsnn_bio.data.registry import encode_split, get_dataset

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


# ------------------------------------------------------------------ a tiny AEDAT 3.1 writer (format spec)
def packet(event_type: int, events: bytes, event_size: int, number: int, capacity: int | None = None,
           overflow: int = 0, ts_offset: int = 4) -> bytes:
    """One packet: the 28-byte header (int16 type, int16 source, int32 size, ts offset, ts overflow,
    capacity, number, valid) and the event bytes."""
    capacity = number if capacity is None else capacity
    head = struct.pack("<hhiiiiii", event_type, 1, event_size, ts_offset, overflow, capacity, number, number)
    return head + events + b"\0" * (capacity * event_size - len(events))


def polarity_packet(x, y, p, t, valid=None, overflow: int = 0, capacity: int | None = None) -> bytes:
    """Polarity events: uint32 data (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x), int32 t."""
    x, y, p, t = (np.asarray(v, dtype=np.int64) for v in (x, y, p, t))
    valid = np.ones(x.size, dtype=np.int64) if valid is None else np.asarray(valid, dtype=np.int64)
    data = (x << 17) | (y << 2) | (p << 1) | valid
    raw = np.empty(x.size, dtype=[("data", "<u4"), ("t", "<i4")])
    raw["data"], raw["t"] = data, t
    return packet(1, raw.tobytes(), 8, x.size, capacity=capacity, overflow=overflow)


def special_packet(n: int = 2) -> bytes:
    """A special-event packet (type 0, 8-byte events): the reader skips it."""
    raw = np.zeros(n, dtype=[("data", "<u4"), ("t", "<i4")])
    raw["data"] = 0xFFFFFFFF
    return packet(0, raw.tobytes(), 8, n)


def gesture_events(rng, label: int, start: int, end: int, n: int = 300) -> np.ndarray:
    """Events of one gesture: a class-dependent quadrant of the sensor, times in [start, end)."""
    events = np.zeros(n, dtype=EVENT_DTYPE)
    events["x"] = rng.integers(0, 32, n) + 32 * (label % 4)
    events["y"] = rng.integers(0, 32, n) + 32 * (label // 4)
    events["t"] = np.sort(rng.integers(start, end, n))
    events["p"] = rng.integers(0, 2, n)
    return events


def write_original(root: Path, trials: dict, seed: int = 0) -> dict:
    """Write an original-release folder; returns the events written per (recording, label)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, names in trials.items():
        (root / f"trials_to_{split}.txt").write_text("".join(f"{n}.aedat\n" for n in names) + "\n")
        for name in names:
            rows, chunks = ["class,startTime_usec,endTime_usec"], []
            start = 1_000_000
            for label in rng.permutation(len(CLASSES))[:4]:
                events = gesture_events(rng, int(label), start, start + 600_000)
                rows.append(f"{label + 1},{start},{start + 600_000}")
                written[(name, int(label))] = events.copy()
                chunks.append(events)
                start += 700_000
            everything = np.concatenate(chunks)
            body = special_packet()
            for part in np.array_split(np.arange(everything.size), 3):
                e = everything[part]
                body += polarity_packet(e["x"], e["y"], e["p"], e["t"])
            (root / f"{name}.aedat").write_bytes(HEADER + body)
            (root / f"{name}_labels.csv").write_text("\n".join(rows) + "\n")
    return written


def write_tonic(root: Path, users: dict, seed: int = 1) -> dict:
    """Write tonic's processed layout (x, y, p, t[ms] columns); returns the events per (folder, label)."""
    rng = np.random.default_rng(seed)
    written = {}
    for split_folder, folders in users.items():
        for folder in folders:
            target = root / "DVSGesture" / split_folder / folder
            target.mkdir(parents=True)
            for label in range(len(CLASSES)):
                events = gesture_events(rng, label, 0, 6_000, n=200)  # t in ms
                np.save(target / f"{label}.npy",
                        np.stack([events["x"], events["y"], events["p"], events["t"]], axis=1))
                written[(folder, label)] = events
    return written


# ------------------------------------------------------------------ AEDAT 3.1 decoding
def test_aedat_decoding_follows_the_bit_layout():
    t = [5, 6, 7, 8]
    data = HEADER + special_packet() + polarity_packet([0, 127, 5, 64], [0, 3, 127, 64], [1, 0, 1, 0], t,
                                                       valid=[1, 1, 0, 1], overflow=1)
    events = decode_aedat31(data, "mem")
    assert events.dtype == EVENT_DTYPE
    assert events["x"].tolist() == [0, 127, 64], "x is bits 17-31; the invalid event (bit 0 = 0) is dropped"
    assert events["y"].tolist() == [0, 3, 64], "y is bits 2-16"
    assert events["p"].tolist() == [1, 0, 0], "polarity is bit 1"
    assert events["t"].tolist() == [(1 << 31) + 5, (1 << 31) + 6, (1 << 31) + 8], "t = overflow << 31 | ts"


def test_aedat_reads_only_event_number_of_a_larger_capacity():
    data = HEADER + polarity_packet([1, 2], [1, 2], [0, 1], [10, 20], capacity=5)
    assert decode_aedat31(data)["x"].tolist() == [1, 2]


def test_aedat_decoding_agrees_with_tonic_address_masks():
    """tonic.io.read_dvs_ibm's masks: x = addr >> 17 & 0x1FFF, y = addr >> 2 & 0x1FFF, p = addr >> 1 & 1."""
    rng = np.random.default_rng(0)
    x, y, p = rng.integers(0, 128, 50), rng.integers(0, 128, 50), rng.integers(0, 2, 50)
    data = HEADER + polarity_packet(x, y, p, np.arange(50))
    events = decode_aedat31(data)
    address = (x << 17) | (y << 2) | (p << 1) | 1
    assert np.array_equal(events["x"], (address >> 17) & 0x1FFF)
    assert np.array_equal(events["y"], (address >> 2) & 0x1FFF)
    assert np.array_equal(events["p"], (address >> 1) & 1)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "expected an AEDAT 3.1 file"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "ending with '#!END-HEADER'"),
        (HEADER + b"\x01\x00\x01", "expected a 28-byte packet header"),
        (HEADER + polarity_packet([1, 2], [1, 2], [0, 1], [1, 2])[:-3], "truncated file"),
        (HEADER + packet(1, b"\0" * 12, 12, 1), "polarity events of 8 bytes"),
        (HEADER + packet(1, b"\0" * 8, 8, 3, capacity=1), "eventNumber <= eventCapacity"),
        (HEADER + polarity_packet([200], [1], [0], [1]), "expected x in [0, 128)"),
    ],
)
def test_malformed_aedat_is_named(data, needle):
    with pytest.raises(DataError, match="broken.aedat") as error:
        decode_aedat31(data, "broken.aedat")
    assert needle in str(error.value)


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty file"),
        ("label,start,end\n1,0,10\n", "header line"),
        ("class,startTime_usec,endTime_usec\n1,0\n", "line 2: expected three integers"),
        ("class,startTime_usec,endTime_usec\n12,0,10\n", "class in 1-11, got 12"),
        ("class,startTime_usec,endTime_usec\n3,10,10\n", "startTime_usec < endTime_usec"),
        ("class,startTime_usec,endTime_usec\n", "at least one gesture row"),
    ],
)
def test_malformed_labels_are_named(tmp_path, text, needle):
    path = tmp_path / "user01_led_labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="user01_led_labels.csv") as error:
        read_gesture_labels(path)
    assert needle in str(error.value)


# ------------------------------------------------------------------ layouts
def test_original_layout_cuts_each_gesture_and_starts_it_at_zero(tmp_path):
    written = write_original(tmp_path / "DvsGesture", {"train": ["user01_fluorescent", "user02_led"],
                                                      "test": ["user24_natural"]})
    train = open_dvs_gesture(tmp_path, "train")
    assert train.layout == "original" and len(train) == 8, "4 gestures in each of 2 recordings"
    assert sorted(set(train.users.tolist())) == [1, 2]
    for index in range(len(train)):
        events, label = train[index]
        sample = train.samples[index]
        want = written[(Path(sample.path).stem, label)]
        assert np.array_equal(events["x"], want["x"]) and np.array_equal(events["p"], want["p"])
        assert np.array_equal(events["t"], want["t"] - sample.start_us), "times start at the gesture's start"
    test = open_dvs_gesture(tmp_path / "DvsGesture", "test")
    assert len(test) == 4 and set(test.users.tolist()) == {24}


def test_tonic_layout_reads_milliseconds_as_tonic_does(tmp_path):
    written = write_tonic(tmp_path, {"ibmGestureTrain": ["user01_fluorescent"], "ibmGestureTest": ["user24_led"]})
    train = open_dvs_gesture(tmp_path, "train")
    assert train.layout == "tonic" and len(train) == len(CLASSES)
    assert train.targets.tolist() == list(range(len(CLASSES))), "labels from the file names, 10.npy last"
    events, label = train[10]
    want = written[("user01_fluorescent", 10)]
    assert label == 10 and np.array_equal(events["t"], want["t"] * 1000), "t[ms] * 1000 as in tonic"
    assert np.array_equal(events["x"], want["x"]) and np.array_equal(events["y"], want["y"])
    assert open_dvs_gesture(tmp_path / "DVSGesture", "test").users.tolist() == [24] * len(CLASSES)


def test_class_names_are_tonics():
    import tonic

    assert list(CLASSES) == tonic.datasets.DVSGesture.classes
    assert get_dataset("dvs_gesture").shape == tuple(tonic.datasets.DVSGesture.sensor_size)


def test_balanced_subset(tmp_path):
    write_tonic(tmp_path, {"ibmGestureTrain": ["user01_a", "user02_b"], "ibmGestureTest": ["user24_a"]})
    subset = open_dvs_gesture(tmp_path, "train", subset=11, seed=3)
    assert sorted(subset.targets.tolist()) == list(range(11)), "one sample per class"


def _break(root: Path, what: str) -> str:
    folder = root / "DvsGesture"
    if what == "missing aedat":
        (folder / "user01_fluorescent.aedat").unlink()
        return "listed in"
    if what == "missing labels":
        (folder / "user01_fluorescent_labels.csv").unlink()
        return "user01_fluorescent_labels.csv"
    if what == "bad trial name":
        (folder / "trials_to_train.txt").write_text("user01_fluorescent.bin\n")
        return "line 1: expected a recording file name"
    if what == "bad user name":
        (folder / "trials_to_train.txt").write_text("someone.aedat\n")
        return "user<NN>_<lighting>"
    if what == "no train list":
        (folder / "trials_to_train.txt").unlink()
        return "trials_to_train.txt"
    if what == "empty list":
        (folder / "trials_to_train.txt").write_text("\n")
        return "the list is empty"
    raise AssertionError(what)


@pytest.mark.parametrize("what", ["missing aedat", "missing labels", "bad trial name", "bad user name",
                                  "no train list", "empty list"])
def test_malformed_original_layout_is_named(tmp_path, what):
    write_original(tmp_path / "DvsGesture", {"train": ["user01_fluorescent"], "test": ["user24_led"]})
    needle = _break(tmp_path, what)
    with pytest.raises(DataError) as error:
        open_dvs_gesture(tmp_path, "train")
    assert needle in str(error.value)


@pytest.mark.parametrize(
    ("what", "needle"),
    [
        ("bad file name", "<label>.npy with label 0-10"),
        ("label 11", "<label>.npy with label 0-10"),
        ("bad folder", "user<NN>_<lighting>"),
        ("stray file", "expected only user<NN>_<lighting> folders"),
        ("bad shape", "expected a numeric array (n, 4)"),
        ("not npy", "could not read the .npy sample"),
        ("x outside", "expected x in [0, 128)"),
        ("empty split", "holds no <label>.npy sample"),
    ],
)
def test_malformed_tonic_layout_is_named(tmp_path, what, needle):
    write_tonic(tmp_path, {"ibmGestureTrain": ["user01_a"], "ibmGestureTest": ["user24_a"]})
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain"
    if what == "bad file name":
        (folder / "user01_a" / "3.npy").rename(folder / "user01_a" / "three.npy")
    elif what == "label 11":
        (folder / "user01_a" / "3.npy").rename(folder / "user01_a" / "11.npy")
    elif what == "bad folder":
        (folder / "user01_a").rename(folder / "subject1")
    elif what == "stray file":
        (folder / "notes.txt").write_text("x")
    elif what == "bad shape":
        np.save(folder / "user01_a" / "0.npy", np.zeros((5, 3)))
    elif what == "not npy":
        (folder / "user01_a" / "0.npy").write_bytes(b"hello")
    elif what == "x outside":
        np.save(folder / "user01_a" / "0.npy", np.array([[130, 1, 0, 5]]))
    elif what == "empty split":
        for path in (folder / "user01_a").iterdir():
            path.unlink()
    with pytest.raises(DataError) as error:
        dataset = open_dvs_gesture(tmp_path, "train")
        for index in range(len(dataset)):
            dataset[index]
    assert needle in str(error.value)


def test_missing_folder_and_no_layout(tmp_path):
    with pytest.raises(MissingDataError, match="does not exist"):
        find_gesture_samples(tmp_path / "nowhere", "train")
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match="no DVS-Gesture layout found") as error:
        find_gesture_samples(tmp_path, "train")
    assert "pictures" in str(error.value), "what was found is listed"
    with pytest.raises(DataError, match="never downloaded"):
        get_dataset("dvs_gesture").open("", "train")


# ------------------------------------------------------------------ encodings
def test_frames_encoding_is_tonic_to_frame_binarised():
    from tonic.transforms import ToFrame

    rng = np.random.default_rng(2)
    events = gesture_events(rng, 5, 0, 6_000_000, n=2000)
    events["x"] //= 4
    events["y"] //= 4
    channels, steps = encode_frames(events, shape=(32, 32, 2), dt=1 * ms, n_steps=40)
    frames = ToFrame(sensor_size=(32, 32, 2), n_time_bins=40)(events.copy())
    dense = np.zeros((40, 2 * 32 * 32), dtype=bool)
    dense[steps, channels] = True
    assert np.array_equal(dense, (frames > 0).reshape(40, -1)), "channel (p*H + y)*W + x of frame (T, P, H, W)"
    assert steps.max() == 39 and steps.min() == 0, "the recording spans all n_steps bins"
    assert np.all(np.diff(steps) >= 0), "sorted by step"
    empty = encode_frames(np.zeros(0, dtype=EVENT_DTYPE), shape=(32, 32, 2), dt=1 * ms, n_steps=40)
    assert empty[0].size == 0 and empty[1].size == 0


def test_encode_split_downsamples_to_32_by_32_by_default(tmp_path):
    write_tonic(tmp_path, {"ibmGestureTrain": ["user01_a"], "ibmGestureTest": ["user24_a"]})
    descriptor = get_dataset("dvs_gesture")
    assert descriptor.input_shape() == (32, 32, 2) and descriptor.n_input() == 2048
    samples, labels, source = encode_split(descriptor, "train", root=tmp_path, dt=1 * ms, n_steps=20)
    assert labels.tolist() == list(range(11)) and "tonic layout" in source
    dataset = open_dvs_gesture(tmp_path, "train")
    events, _ = dataset[7]
    small = events.copy()
    small["x"] //= 4
    small["y"] //= 4
    want = encode_frames(small, shape=(32, 32, 2), dt=1 * ms, n_steps=20)
    assert np.array_equal(samples[7][0], want[0]) and np.array_equal(samples[7][1], want[1])
    assert max(c.max() for c, _ in samples) < 2048


# ------------------------------------------------------------------ end to end
def test_sdsnn_bio_run_on_a_generated_original_release(tmp_path, capsys):
    from sdsnn_bio.cli import main

    root = tmp_path / "gesture"
    write_original(root, {"train": ["user01_fluorescent", "user02_led", "user03_natural"],
                          "test": ["user24_led"]})
    config = tmp_path / "gesture.toml"
    config.write_text(
        '[data]\ndataset = "dvs_gesture"\ninput_size = [16, 16]\n'
        '[network]\nhidden_sizes = [8]\nn_steps = 12\ndt = "5 ms"\n'
        '[learning]\nbatch_size = 4\nepochs = 1\nthreads = 1\n'
        '[simulation]\ncodegen_target = "numpy"\nevaluation_batch = 4\n'
        f'[run]\noutput_dir = "{tmp_path / "out"}"\n'
    )
    assert main(["run", str(config), "--data", str(root), "--quiet"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["data"]["dataset"] == "dvs_gesture" and results["data"]["input_shape"] == [16, 16, 2]
    assert results["data"]["encoding"] == "frames", "DVS-Gesture's default encoding"
    model = results["models"]["dense"]
    assert model["structure"]["neurons"]["input"] == 16 * 16 * 2, "n_input from the descriptor and input_size"
    assert model["structure"]["neurons"]["output"] == 11, "n_output = 11 classes"
    assert model["test"]["n_samples"] == 4 and model["test"]["kernel_brian2_agreement"] == 1.0
    assert "final test accuracy" in capsys.readouterr().out
    figures = tmp_path / "figures"
    assert main(["plot", str(tmp_path / "out"), "--figures", str(figures)]) == 0
    assert (figures / "receptive_fields.png").is_file(), "pixel maps drawn at the run's 16x16x2 input layout"
