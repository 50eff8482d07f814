"""Tests of sdsnn_bio.data: the N-MNIST reader, layouts, emulator, embedded cache and binning."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdsnn_bio.data as data
from sdsnn_bio.data import embedded as embedded_module
from sdsnn_bio.data import (
    EVENT_DTYPE,
    N_CHANNELS,
    SENSOR_SIZE,
    DataError,
    EmulatorParameters,
    MissingDataError,
    binning_summary,
    channel_coordinates,
    channel_index,
    emulate_batch,
    emulate_saccades,
    encode_nmnist,
    events_to_spikes,
    load_dataset,
    load_embedded,
    read_nmnist_file,
)
from sdsnn_bio.data.summary import describe_recordings, recording_statistics

from conftest import SAMPLE_NMNIST

# Many layouts here hold a few classes on purpose; the missing-class warning is tested on its own.
pytestmark = pytest.mark.filterwarnings("ignore::sdsnn_bio.data.DataWarning")

# Facts of the real recording, counted once from the file (see docs/data.md).
SAMPLE_EVENTS = 4325
SAMPLE_T_FIRST, SAMPLE_T_LAST = 654, 311175
SAMPLE_ON, SAMPLE_OFF = 2145, 2180  # p == 1 (ON) and p == 0 (OFF)
SAMPLE_SACCADES = (1369, 1288, 1668)  # t in [0, 100), [100, 200), [200, inf) ms


def make_events(x, y, t, p) -> np.ndarray:
    events = np.zeros(len(x), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


@pytest.fixture(scope="module")
def sample_events() -> np.ndarray:
    return read_nmnist_file(SAMPLE_NMNIST)


def fake_recordings(sample: np.ndarray, n_per_class: int, n_classes: int = 10) -> dict:
    """Distinct real-format recordings: slices of the real sample, one per (class, file)."""
    files = {}
    for label in range(n_classes):
        for k in range(n_per_class):
            start = 37 * (label * n_per_class + k)
            files[(label, f"{k:05d}.bin")] = encode_nmnist(sample[start:start + 300 + label])
    return files


def write_folder(root: Path, split_name: str, files: dict) -> None:
    for (label, name), content in files.items():
        folder = root / split_name / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)


def write_zip(path: Path, files: dict, prefix: str) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for (label, name), content in files.items():
            archive.writestr(f"{prefix}{label}/{name}", content)


def items(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


# ------------------------------------------------------------------------------ real sample
def test_real_sample_facts(sample_events):
    e = sample_events
    assert e.dtype == EVENT_DTYPE and e.dtype.names == ("x", "y", "t", "p"), "tonic's (x, y, t, p) dtype"
    assert len(e) == SAMPLE_EVENTS, "event count of the real sample"
    assert (e["t"].min(), e["t"].max()) == (SAMPLE_T_FIRST, SAMPLE_T_LAST), "time span in microseconds"
    assert np.all(np.diff(e["t"]) >= 0), "N-MNIST files are sorted by time"
    assert (np.count_nonzero(e["p"] == 1), np.count_nonzero(e["p"] == 0)) == (SAMPLE_ON, SAMPLE_OFF), \
        "ON (p=1) / OFF (p=0) counts"
    stats = recording_statistics(e)
    assert (stats["saccade_1"], stats["saccade_2"], stats["saccade_3"]) == SAMPLE_SACCADES, \
        "events per 100 ms saccade window"
    assert e["x"].min() >= 0 and e["x"].max() == 33 and e["y"].max() == 33, "coordinates inside 34x34"


def test_reader_matches_tonic_and_accepts_path_bytes_and_file(sample_events):
    from tonic.io import read_mnist_file

    reference = read_mnist_file(str(SAMPLE_NMNIST), dtype=EVENT_DTYPE)
    assert np.array_equal(sample_events, reference), "same events as tonic's decoder"
    content = SAMPLE_NMNIST.read_bytes()
    assert np.array_equal(read_nmnist_file(content), reference), "bytes input"
    with open(SAMPLE_NMNIST, "rb") as handle:
        assert np.array_equal(read_nmnist_file(handle), reference), "file-object input"
    assert np.array_equal(read_nmnist_file(str(SAMPLE_NMNIST)), reference), "str path input"


def test_encoder_reproduces_the_real_file_byte_for_byte(sample_events):
    assert encode_nmnist(sample_events) == SAMPLE_NMNIST.read_bytes(), "encode(decode(file)) == file"


def test_overflow_markers_shift_later_timestamps_like_tonic():
    from tonic.io import read_mnist_file
    import io

    events = make_events([1, 2, 3], [4, 5, 6], [10, 20, 30], [1, 0, 1])
    raw = bytearray(encode_nmnist(events))
    marker = bytes([0, 240, 0, 0, 0])  # y == 240: timestamp overflow
    content = bytes(raw[:5]) + marker + bytes(raw[5:])
    decoded = read_nmnist_file(content)
    assert decoded["t"].tolist() == [10, 20 + 2**13, 30 + 2**13], "marker adds 2**13 us to later events"
    assert decoded["y"].tolist() == [4, 5, 6], "marker itself is dropped"
    assert np.array_equal(decoded, read_mnist_file(io.BytesIO(content), dtype=EVENT_DTYPE, is_stream=True)), \
        "identical to tonic"


def test_empty_file_is_an_empty_recording(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    events = read_nmnist_file(path)
    assert events.dtype == EVENT_DTYPE and len(events) == 0, "zero events, right dtype"


# ------------------------------------------------------------------------------ layouts
@pytest.fixture
def fake_root(tmp_path, sample_events):
    train = fake_recordings(sample_events, n_per_class=3)
    test = fake_recordings(sample_events[2000:], n_per_class=2)
    root = tmp_path / "folders"
    write_folder(root, "Train", train)
    write_folder(root, "Test", test)
    return root, train, test


@pytest.mark.parametrize("split, n_per_class", [("train", 3), ("test", 2)])
def test_folder_layout(fake_root, split, n_per_class):
    root, train, test = fake_root
    files = train if split == "train" else test
    dataset = load_dataset(root, split)
    assert len(dataset) == 10 * n_per_class, "one item per .bin file"
    assert dataset.sensor_size == (34, 34, 2) and dataset.dtype == EVENT_DTYPE, "tonic-style attributes"
    assert dataset.classes[3] == "3 - three" and len(dataset.classes) == 10, "class names"
    assert dataset.targets.tolist() == [label for label in range(10) for _ in range(n_per_class)], \
        "labels from the class folders, sorted by class"
    split_folder = "Train" if split == "train" else "Test"
    assert dataset.files[0] == str(root / split_folder / "0" / "00000.bin"), "provenance: file paths"
    for index, (label, name) in enumerate(sorted(files)):
        events, target = dataset[index]
        assert target == label and isinstance(target, int), "label is a Python int"
        assert encode_nmnist(events) == files[(label, name)], "events decoded from the file"


@pytest.mark.parametrize("prefix", ["Train/", "", "N-MNIST/Train/"])
def test_zip_layout_equals_folder_layout(fake_root, tmp_path, prefix):
    root, train, _ = fake_root
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    write_zip(zipped / "Train.zip", train, prefix)
    from_zip = load_dataset(zipped, "train")
    from_folder = load_dataset(root, "train")
    assert from_zip.files[0] == f"{zipped / 'Train.zip'}::{prefix}0/00000.bin", "provenance: archive::member"
    assert len(from_zip) == len(from_folder), "same number of recordings"
    for (e_zip, l_zip), (e_dir, l_dir) in zip(items(from_zip), items(from_folder)):
        assert l_zip == l_dir and np.array_equal(e_zip, e_dir), "zip and folder give identical items"
    from_zip.close()


def test_zip_ignores_macos_metadata_and_lowercase_name(fake_root, tmp_path):
    _, train, _ = fake_root
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    write_zip(zipped / "train.zip", train, "Train/")
    with zipfile.ZipFile(zipped / "train.zip", "a") as archive:
        archive.writestr("__MACOSX/Train/0/._00000.bin", b"junk")
        archive.writestr("Train/readme.txt", b"not a recording")
    assert len(load_dataset(zipped, "train")) == 30, "metadata and non-.bin members ignored"


def test_wrapping_folder_is_accepted(tmp_path, sample_events):
    files = fake_recordings(sample_events, n_per_class=1)
    write_folder(tmp_path / "root" / "Train", "Train", files)  # Train/Train/<digit>/...
    dataset = load_dataset(tmp_path / "root", "train")
    assert dataset.targets.tolist() == list(range(10)), "class folders found inside Train/Train"


def test_folder_preferred_over_zip(fake_root, sample_events):
    root, train, _ = fake_root
    write_zip(root / "Train.zip", fake_recordings(sample_events, n_per_class=1), "Train/")
    assert len(load_dataset(root, "train")) == 30, "the Train/ folder is read, not Train.zip"


def test_first_saccade_keeps_events_before_100_ms(tmp_path):
    write_folder(tmp_path, "Test", {(4, "00001.bin"): SAMPLE_NMNIST.read_bytes()})
    events, label = load_dataset(tmp_path, "test", first_saccade=True)[0]
    assert label == 4
    assert len(events) == SAMPLE_SACCADES[0] and events["t"].max() < 100_000, "t < 100 000 us only"


@pytest.mark.parametrize("first_saccade, kept", [(True, [0, 99_999]), (False, [0, 99_999, 100_000, 250_000])])
def test_first_saccade_boundary(tmp_path, first_saccade, kept):
    events = make_events([1, 2, 3, 4], [1, 2, 3, 4], [0, 99_999, 100_000, 250_000], [1, 0, 1, 0])
    write_folder(tmp_path, "Train", {(0, "00000.bin"): encode_nmnist(events)})
    got, _ = load_dataset(tmp_path, "train", first_saccade=first_saccade)[0]
    assert got["t"].tolist() == kept, "first saccade: t < 100 000 us (tonic's first_saccade_only)"


def test_transform_is_applied(tmp_path):
    import tonic

    write_folder(tmp_path, "Test", {(7, "00001.bin"): SAMPLE_NMNIST.read_bytes()})
    to_frame = tonic.transforms.ToFrame(sensor_size=SENSOR_SIZE, n_time_bins=3)
    frames, label = load_dataset(tmp_path, "test", transform=to_frame)[0]
    assert frames.shape == (3, 2, 34, 34), "ToFrame output: (time bins, polarity, y, x)"
    assert label == 7 and np.array_equal(frames, to_frame(read_nmnist_file(SAMPLE_NMNIST))), \
        "the dataset returns the transform of the recording"
    denoised, _ = load_dataset(tmp_path, "test", transform=tonic.transforms.Denoise(filter_time=10_000))[0]
    assert 0 < len(denoised) < SAMPLE_EVENTS, "Denoise removes isolated events"


@pytest.mark.parametrize("subset", [1, 10, 23, 30])
def test_class_balanced_subset(fake_root, subset):
    root, _, _ = fake_root
    dataset = load_dataset(root, "train", subset=subset, seed=5)
    counts = np.bincount(dataset.targets, minlength=10)
    assert len(dataset) == subset, "subset size"
    assert counts.max() - counts.min() <= 1, "classes balanced to within one recording"
    again = load_dataset(root, "train", subset=subset, seed=5)
    assert again.files == dataset.files, "same seed, same subset"
    assert len(set(dataset.files)) == subset, "no recording twice"


def test_subset_depends_on_seed_and_fills_short_classes():
    labels = np.array([0] * 20 + [1] * 20 + [2] * 1)
    choices = {tuple(data.balanced_subset(labels, 9, seed)) for seed in range(5)}
    assert len(choices) > 1, "different seeds choose different subsets"
    chosen = data.balanced_subset(labels, 9, 0)
    assert np.bincount(labels[chosen]).tolist() == [4, 4, 1], "short class gives all, rest spread"


# ------------------------------------------------------------------------------ bad input
def test_missing_folder(tmp_path):
    with pytest.raises(MissingDataError, match="nowhere.*does not exist") as info:
        load_dataset(tmp_path / "nowhere", "train")
    assert isinstance(info.value, FileNotFoundError), "missing data is also a FileNotFoundError"


def test_wrong_layout_without_train_or_zip(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"no Train/ folder or Train.zip.*expected ROOT/Train/<digit>"):
        load_dataset(tmp_path, "train")


def test_non_digit_class_folder(tmp_path, sample_events):
    write_folder(tmp_path, "Train", {(0, "a.bin"): encode_nmnist(sample_events[:5])})
    (tmp_path / "Train" / "cats").mkdir()
    with pytest.raises(DataError, match=r"Train: expected class folders named 0-9.*'cats'"):
        load_dataset(tmp_path, "train")


def test_non_digit_class_in_zip(tmp_path, sample_events):
    write_zip(tmp_path / "Test.zip", {("x", "a.bin"): encode_nmnist(sample_events[:5])}, "Test/")
    with pytest.raises(DataError, match=r"Test.zip: expected members <folder>/<digit>/<name>.bin"):
        load_dataset(tmp_path, "test")


def test_empty_split(tmp_path):
    (tmp_path / "Train" / "0").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Train: split 'train' holds no .bin recording"):
        load_dataset(tmp_path, "train")


def test_empty_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "Train.zip", "w"):
        pass
    with pytest.raises(DataError, match=r"Train.zip: split 'train' holds no .bin recording"):
        load_dataset(tmp_path, "train")


@pytest.mark.parametrize("stray", [1, 2, 3, 4])
def test_truncated_file(tmp_path, stray):
    path = tmp_path / "Train" / "3" / "bad.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(SAMPLE_NMNIST.read_bytes()[: 5 * 10 + stray])
    dataset = load_dataset(tmp_path, "train")
    with pytest.raises(DataError, match=rf"bad.bin: expected .*multiple of 5.*got {50 + stray} bytes"):
        dataset[0]


@pytest.mark.parametrize("field, value", [("x", 34), ("x", 255), ("y", 34), ("y", 100)])
def test_out_of_range_coordinates(tmp_path, field, value):
    events = make_events([1, 2], [3, 4], [10, 20], [0, 1])
    events[field][1] = value
    path = tmp_path / "Test" / "1" / "odd.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(encode_nmnist(events))
    with pytest.raises(DataError, match=rf"odd.bin: expected {field} in \[0, 34\).*{field}={value}"):
        load_dataset(tmp_path, "test")[0]


def test_corrupt_zip(tmp_path):
    (tmp_path / "Train.zip").write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(DataError, match=r"Train.zip: expected a readable zip archive"):
        load_dataset(tmp_path, "train")


def test_corrupt_zip_member(tmp_path, sample_events):
    content = encode_nmnist(sample_events[:200])
    path = tmp_path / "Train.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("Train/2/00001.bin", content)
    raw = bytearray(path.read_bytes())
    offset = raw.index(content)
    raw[offset + 100] ^= 0xFF  # damage the stored data: CRC check fails on read
    path.write_bytes(bytes(raw))
    dataset = load_dataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"Train.zip::Train/2/00001.bin: could not read the member"):
        dataset[0]


def test_missing_file_and_bad_arguments(tmp_path, fake_root):
    with pytest.raises(MissingDataError, match="absent.bin"):
        read_nmnist_file(tmp_path / "absent.bin")
    with pytest.raises(DataError, match="source: expected a path, bytes or a binary file object"):
        read_nmnist_file(12)
    root, _, _ = fake_root
    with pytest.raises(ValueError, match=r"split: expected one of \['test', 'train', 'validation'\], got 'valid'"):
        load_dataset(root, "valid")
    with pytest.raises(DataError, match="no Validation/ folder or Validation.zip archive for split 'validation'"):
        load_dataset(root, "validation")
    with pytest.raises(ValueError, match=r"subset: expected an integer in \[1, 30\].*got 31"):
        load_dataset(root, "train", subset=31)
    with pytest.raises(ValueError, match=r"subset: expected an integer in \[1, 30\].*got 0"):
        load_dataset(root, "train", subset=0)
    with pytest.raises(ValueError, match="transform: expected a callable"):
        load_dataset(root, "train", transform="Denoise")
    with pytest.raises(IndexError, match="index 30 out of range"):
        load_dataset(root, "train")[30]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_reader_on_random_bytes_returns_events_or_our_error(content):
    try:
        events = read_nmnist_file(content)
    except DataError as error:
        assert "<bytes>: expected" in str(error), "our error names the source and the expectation"
        return
    assert len(content) % 5 == 0, "only whole 5-byte events decode"
    assert events.dtype == EVENT_DTYPE, "structured event array"
    for field, high in (("x", 34), ("y", 34), ("p", 2)):
        assert np.all((events[field] >= 0) & (events[field] < high)), f"{field} inside the sensor"
    assert np.all(events["t"] >= 0), "timestamps non-negative"


# ------------------------------------------------------------------------------ events to spikes
def test_channel_index_formula_and_inverse():
    assert N_CHANNELS == 2312, "34*34*2 channels"
    assert channel_index(0, 0, 0) == 0 and channel_index(33, 33, 1) == 2311, "first and last channel"
    assert channel_index(1, 2, 1) == (1 * 34 + 2) * 34 + 1 == 1225, "(p*34 + y)*34 + x"
    every = np.arange(N_CHANNELS)
    x, y, p = channel_coordinates(every)
    assert np.array_equal(channel_index(x, y, p), every), "channel_coordinates inverts channel_index"
    assert channel_coordinates(1225) == (1, 2, 1), "scalar inverse"
    with pytest.raises(ValueError, match=r"expected x in \[0, 34\)"):
        channel_index(34, 0, 0)
    with pytest.raises(ValueError, match=r"expected channels in \[0, 2312\)"):
        channel_coordinates(2312)


def test_events_to_spikes_literal_example():
    from brian2 import ms

    events = make_events(
        x=[1, 1, 1, 5, 0, 2, 3],
        y=[2, 2, 2, 0, 33, 2, 3],
        t=[0, 999, 1000, 1500, 2999, 299_999, 300_000],
        p=[1, 1, 1, 0, 1, 1, 0],
    )
    channels, steps = events_to_spikes(events, 1 * ms, 300)
    assert channels.dtype == np.int64 and steps.dtype == np.int64, "int64 arrays"
    # (1,2,ON) at 0 and 999 us -> one spike at step 0 (merged); at 1000 us -> step 1 (floor).
    # (5,0,OFF) at 1500 us -> step 1; (0,33,ON) at 2999 us -> step 2; 299 999 us -> step 299;
    # 300 000 us = n_steps*dt is outside the window and dropped.
    expected = [(1225, 0), (5, 1), (1225, 1), ((1 * 34 + 33) * 34 + 0, 2), ((34 + 2) * 34 + 2, 299)]
    assert list(zip(channels.tolist(), steps.tolist())) == expected, "channels, floor binning, order"
    summary = binning_summary(events, 1 * ms, 300)
    assert summary == {"n_events": 7, "n_dropped": 1, "n_merged": 1, "n_spikes": 5}, "counts"


@pytest.mark.parametrize("dt_us, n_steps, expected_steps", [
    (500, 10, [0, 1, 2, 9]),
    (100, 50, [0, 5, 12, 47]),
    (2000, 3, [0, 0, 0, 2]),
])
def test_binning_for_several_steps(dt_us, n_steps, expected_steps):
    from brian2 import us

    events = make_events([0, 1, 2, 3], [0, 0, 0, 0], [0, 500, 1250, 4750], [0, 0, 0, 0])
    channels, steps = events_to_spikes(events, dt_us * us, n_steps)
    assert sorted(steps.tolist()) == expected_steps, "step = floor(t / dt)"
    assert sorted(channels.tolist()) == [0, 1, 2, 3], "distinct channels never merge"


def test_events_to_spikes_on_the_real_sample(sample_events):
    from brian2 import ms

    channels, steps = events_to_spikes(sample_events, 1 * ms, 300)
    summary = binning_summary(sample_events, 1 * ms, 300)
    assert summary["n_dropped"] == np.count_nonzero(sample_events["t"] >= 300_000), "window cut at 300 ms"
    assert channels.size == summary["n_spikes"] == SAMPLE_EVENTS - summary["n_dropped"] - summary["n_merged"]
    pairs = steps * N_CHANNELS + channels
    assert np.unique(pairs).size == pairs.size, "at most one spike per channel and step"
    assert channels.min() >= 0 and channels.max() < N_CHANNELS and steps.max() < 300, "inside the grid"
    assert np.count_nonzero(channels >= 34 * 34) <= SAMPLE_ON, "ON channels are the upper half"


@pytest.mark.parametrize("kwargs, message", [
    (dict(dt=0.001), "dt: expected a time with a Brian2 unit"),
    (dict(dt="volt"), "dt: expected a time \\(unit of seconds\\)"),
    (dict(dt="zero"), "dt: expected a time > 0"),
    (dict(n_steps=0), "n_steps: expected a positive integer, got 0"),
    (dict(n_steps=2.5), "n_steps: expected a positive integer, got 2.5"),
    (dict(n_steps=True), "n_steps: expected a positive integer, got True"),
])
def test_events_to_spikes_rejects_bad_arguments(kwargs, message):
    from brian2 import mV, ms

    events = make_events([1], [1], [10], [1])
    arguments = dict(dt="one", n_steps=10)
    arguments.update(kwargs)
    named = {"one": 1 * ms, "volt": 1 * mV, "zero": 0 * ms}
    if isinstance(arguments["dt"], str):
        arguments["dt"] = named[arguments["dt"]]
    with pytest.raises(ValueError, match=message):
        events_to_spikes(events, arguments["dt"], arguments["n_steps"])


@pytest.mark.parametrize("events, message", [
    (np.zeros(3, dtype=[("x", int), ("y", int), ("t", int)]), r"missing \['p'\]"),
    (np.zeros((3, 4)), "expected a structured event array"),
    (make_events([34], [0], [0], [0]), r"expected x in \[0, 34\)"),
    (make_events([0], [-1], [0], [0]), r"expected y in \[0, 34\)"),
    (make_events([0], [0], [0], [2]), r"expected p in \[0, 2\)"),
    (make_events([0], [0], [-5], [0]), "expected timestamps t >= 0"),
])
def test_events_to_spikes_rejects_bad_events(events, message):
    from brian2 import ms

    with pytest.raises(ValueError, match=message):
        events_to_spikes(events, 1 * ms, 10)


def test_events_to_spikes_other_sensor_and_empty():
    from brian2 import ms

    events = make_events([3], [1], [0], [1])
    channels, _ = events_to_spikes(events, 1 * ms, 5, sensor_size=(4, 2, 2))
    assert channels.tolist() == [(1 * 2 + 1) * 4 + 3], "(p*H + y)*W + x with W=4, H=2"
    channels, steps = events_to_spikes(np.zeros(0, dtype=EVENT_DTYPE), 1 * ms, 5)
    assert channels.size == steps.size == 0, "no events, no spikes"


# ------------------------------------------------------------------------------ emulator
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits()


@pytest.mark.parametrize("field, value, message", [
    ("image_size", 0, "image_size: expected an integer >= 1"),
    ("threshold_on", -0.1, "threshold_on: expected a finite value in \\(0.0"),
    ("threshold_off", float("nan"), "threshold_off: expected a finite value"),
    ("dark_luminance", 1.0, "dark_luminance: expected a value in \\(0, 1\\)"),
    ("time_step_ms", 2.0, "time_step_ms: expected a step <= refractory_ms"),
    ("saccades", (), "saccades: expected at least one"),
    ("saccades", ((1.0, 2.0, 3.0),), "saccades\\[0\\]: expected a pair"),
    ("sensor_size", (34,), "sensor_size: expected \\(width, height\\)"),
    ("noise_on_fraction", 1.5, "noise_on_fraction: expected a finite value in \\[0.0, 1.0\\]"),
    ("saccade_duration_ms", 5000.0, "saccade_duration_ms: .*23-bit timestamps"),
    ("dark_strokes", "yes", "dark_strokes: expected True or False"),
])
def test_emulator_parameters_are_validated(field, value, message):
    with pytest.raises(ValueError, match=f"EmulatorParameters.{message}"):
        EmulatorParameters(**{field: value})


def test_emulator_parameters_round_trip_through_json():
    params = EmulatorParameters(threshold_on=0.3, saccades=[[1, 2], [3, 4]])
    restored = EmulatorParameters.from_dict(json.loads(json.dumps(params.to_dict())))
    assert restored == params and restored.saccades == ((1.0, 2.0), (3.0, 4.0)), "lossless JSON"


def test_emulator_statistics_inside_the_calibrated_band(digits):
    n = 50
    indices = np.arange(n) * 35  # 50 digits spread over the set (all classes)
    recordings = emulate_batch(digits.images[indices], [np.random.default_rng(int(i)) for i in indices],
                               value_range=(0, 16))
    stats = describe_recordings(recordings)
    assert abs(stats["events"]["mean"] / SAMPLE_EVENTS - 1) < 0.15, "events per sample within 15% of the sample"
    for k, real in enumerate(SAMPLE_SACCADES, start=1):
        assert abs(stats[f"saccade_{k}"]["mean"] / real - 1) < 0.25, f"saccade {k} within 25% of the sample"
    assert 0.46 < stats["on_fraction"]["mean"] < 0.53, "ON/OFF balance near the sample's 0.496"
    for events in recordings:
        assert events.dtype == EVENT_DTYPE and np.all(np.diff(events["t"]) >= 0), "sorted tonic events"
        assert events["t"].min() >= 0 and events["t"].max() < 300_000, "inside the three saccades"
        assert events["x"].max() < 34 and events["y"].max() < 34, "inside the sensor"


def test_emulator_is_deterministic_and_batch_independent(digits):
    images = digits.images[:4]
    first = emulate_batch(images, [np.random.default_rng(i) for i in range(4)], value_range=(0, 16))
    again = [emulate_saccades(images[i], np.random.default_rng(i), value_range=(0, 16)) for i in range(4)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again)), "batched == one by one, same seeds"
    other = emulate_saccades(images[0], np.random.default_rng(99), value_range=(0, 16))
    assert not np.array_equal(first[0], other), "another seed gives another recording"
    assert np.array_equal(emulate_saccades(images[0], 0, value_range=(0, 16)), first[0]), "int seed accepted"


def test_emulator_polarity_follows_the_real_recording(digits, sample_events):
    """In saccade 1 the image moves right and down: ON events trail (smaller x and y than OFF)."""
    def trailing(events):
        first = events[(events["t"] > 20_000) & (events["t"] < 80_000)]
        on, off = first[first["p"] == 1], first[first["p"] == 0]
        return on["x"].mean() < off["x"].mean() and on["y"].mean() < off["y"].mean()

    assert trailing(sample_events), "real sample: ON events behind the moving strokes"
    events = emulate_saccades(digits.images[0], np.random.default_rng(0), value_range=(0, 16))
    assert trailing(events), "emulator (dark strokes): ON events behind the moving strokes"
    bright = EmulatorParameters(dark_strokes=False)
    events = emulate_saccades(digits.images[0], np.random.default_rng(0), bright, value_range=(0, 16))
    assert not trailing(events), "bright strokes flip the polarity"


@pytest.mark.parametrize("shape", [(28, 28), (10, 30), (3, 3), (100, 60)])
def test_emulator_accepts_any_image_size(shape):
    rng = np.random.default_rng(1)
    image = np.zeros(shape)
    image[shape[0] // 3: 2 * shape[0] // 3 + 1, :] = 255  # a horizontal bar
    params = EmulatorParameters(noise_rate_hz=0.0)
    events = emulate_saccades(image, rng, params)
    assert len(events) > 50, "a moving bar makes events"
    pixels = events["y"] * 34 + events["x"]
    order = np.lexsort((events["t"], pixels))
    same = pixels[order][1:] == pixels[order][:-1]
    gaps = np.diff(events["t"][order])[same]
    assert gaps.min() >= 1500 - 1, "refractory period of 1.5 ms between a pixel's events (1 us rounding)"


def test_emulator_noise_only_on_a_blank_image():
    blank = np.zeros((8, 8))
    silent = emulate_saccades(blank, 3, EmulatorParameters(noise_rate_hz=0.0))
    assert len(silent) == 0, "no edges and no noise: no events"
    noisy = emulate_saccades(blank, 3, EmulatorParameters(noise_rate_hz=10.0, noise_on_fraction=1.0))
    expected = 10.0 * 34 * 34 * 0.3
    assert abs(len(noisy) - expected) < 5 * np.sqrt(expected), "Poisson noise count at 10 Hz per pixel"
    assert np.all(noisy["p"] == 1), "noise_on_fraction=1: ON noise only"


def test_emulator_rejects_bad_images():
    with pytest.raises(ValueError, match=r"image: expected a 2-D grayscale array"):
        emulate_saccades(np.zeros((4, 4, 3)), 0)
    with pytest.raises(ValueError, match="image: expected finite values"):
        emulate_saccades(np.full((4, 4), np.nan), 0)
    with pytest.raises(ValueError, match=r"value_range: expected \(low, high\)"):
        emulate_saccades(np.zeros((4, 4)), 0, value_range=(1, 1))
    with pytest.raises(ValueError, match="rng: expected a numpy.random.Generator or a seed"):
        emulate_saccades(np.zeros((4, 4)), "seed")


# ------------------------------------------------------------------------------ embedded cache
SMALL = 3  # digits per class in the quick embedded sets


def tree_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.bin"))}


def test_embedded_layout_manifest_and_provenance(tmp_path, digits):
    root = embedded_module.embedded_root(tmp_path, max_per_class=SMALL)
    assert root == tmp_path / "embedded_nmnist", "cache folder"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"] == {"train": [2] * 10, "test": [1] * 10}, "stratified split of 3 per class"
    assert manifest["seed"] == 0 and manifest["generator_version"] >= 1, "manifest records seed/version"
    assert manifest["parameters"] == EmulatorParameters().to_dict(), "manifest records the parameters"
    train = load_embedded("train", cache_dir=tmp_path, max_per_class=SMALL)
    test = load_embedded("test", cache_dir=tmp_path, max_per_class=SMALL)
    assert len(train) == 20 and len(test) == 10, "both splits read by the N-MNIST reader"
    assert not set(Path(f).name for f in train.files) & set(Path(f).name for f in test.files), "disjoint"
    events, label = train[0]
    index = int(Path(train.files[0]).stem)
    assert digits.target[index] == label, "file name is the load_digits index"
    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(1, index)))
    assert np.array_equal(events, emulate_saccades(digits.images[index], rng, value_range=(0, 16))), \
        "stored recording == emulator output for that digit and seed"


def test_embedded_split_is_stratified_80_20(digits):
    train, test = embedded_module._split_indices(digits.target, 0.2, np.random.default_rng(0), None)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797)), "partition of all digits"
    per_class = np.bincount(digits.target)
    assert np.array_equal(np.bincount(digits.target[test]), np.rint(0.2 * per_class).astype(int)), \
        "round(20%) of every class in Test"


def test_embedded_generation_is_deterministic(tmp_path):
    first = embedded_module.embedded_root(tmp_path / "a", max_per_class=SMALL)
    second = embedded_module.embedded_root(tmp_path / "b", max_per_class=SMALL)
    other = embedded_module.embedded_root(tmp_path / "c", max_per_class=SMALL, seed=1)
    assert tree_bytes(first) == tree_bytes(second), "same seed: byte-identical files"
    assert tree_bytes(first) != tree_bytes(other), "another seed: other recordings"


def test_embedded_cache_is_written_once(tmp_path, monkeypatch):
    root = embedded_module.embedded_root(tmp_path, max_per_class=SMALL)
    stamp = (root / "manifest.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a current cache")

    monkeypatch.setattr(embedded_module, "_generate", fail)
    dataset = load_embedded("train", cache_dir=tmp_path, max_per_class=SMALL)
    assert len(dataset) == 20, "read from the existing cache"
    assert (root / "manifest.json").stat().st_mtime_ns == stamp, "manifest untouched"


@pytest.mark.parametrize("damage", ["version", "parameters", "missing_file", "no_manifest",
                                    "flipped_byte", "truncated_file"])
def test_stale_or_damaged_cache_is_regenerated(tmp_path, monkeypatch, damage):
    root = embedded_module.embedded_root(tmp_path, max_per_class=SMALL)
    reference = tree_bytes(root)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if damage == "version":
        manifest["generator_version"] = -1
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "parameters":
        manifest["parameters"]["threshold_on"] = 0.5
        manifest_path.write_text(json.dumps(manifest))
    elif damage == "missing_file":
        next(root.rglob("*.bin")).unlink()
    elif damage == "flipped_byte":  # same length, still decodable: only a checksum sees it
        victim = sorted(root.rglob("*.bin"))[3]
        content = bytearray(victim.read_bytes())
        content[-1] ^= 0x01
        victim.write_bytes(bytes(content))
    elif damage == "truncated_file":
        victim = sorted(root.rglob("*.bin"))[7]
        victim.write_bytes(victim.read_bytes()[:-5])
    else:
        manifest_path.unlink()
    calls = []
    real = embedded_module._generate
    monkeypatch.setattr(embedded_module, "_generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    embedded_module.embedded_root(tmp_path, max_per_class=SMALL)
    assert calls == [1], "regenerated exactly once"
    assert tree_bytes(root) == reference, "regenerated files identical to the originals"
    assert json.loads(manifest_path.read_text())["generator_version"] >= 1, "fresh manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedded_nmnist", "embedded_nmnist.lock"], \
        "no temporary or stale folder left behind"


def test_interrupted_generation_leaves_no_cache(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded_module, "emulate_batch", broken)
    with pytest.raises(KeyboardInterrupt):
        embedded_module.embedded_root(tmp_path, max_per_class=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedded_nmnist.lock"], "no half cache"
    monkeypatch.undo()
    assert (embedded_module.embedded_root(tmp_path, max_per_class=SMALL) / "manifest.json").is_file()


def test_concurrent_generation_happens_once(tmp_path, monkeypatch):
    import time

    calls = []
    real = embedded_module._generate

    def slow_generate(*args, **kwargs):
        calls.append(1)
        time.sleep(0.3)  # every worker reaches the lock while the first one generates
        return real(*args, **kwargs)

    monkeypatch.setattr(embedded_module, "_generate", slow_generate)
    results, errors = [], []
    barrier = threading.Barrier(3)

    def worker():
        try:
            barrier.wait()
            results.append(embedded_module.embedded_root(tmp_path, max_per_class=SMALL))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, f"no worker failed: {errors}"
    assert len(results) == 3 and len(set(results)) == 1, "every worker gets the cache"
    assert calls == [1], "generated by one worker only (the others waited on the lock)"


def test_default_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("SDSNN_BIO_CACHE", str(tmp_path / "env"))
    assert data.default_cache_dir() == tmp_path / "env", "$SDSNN_BIO_CACHE wins"
    monkeypatch.delenv("SDSNN_BIO_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_cache_dir() == tmp_path / "home" / ".cache" / "sdsnn_bio", "~/.cache/sdsnn_bio"


def test_load_dataset_without_root_reads_the_embedded_cache(tmp_path, monkeypatch):
    # Keep it quick: the embedded dataset of record is generated in full by the slow test below.
    real = embedded_module.embedded_root
    monkeypatch.setattr(data, "embedded_root",
                        lambda cache_dir, **kwargs: real(cache_dir, **{**kwargs, "max_per_class": SMALL}))
    dataset = load_dataset(None, "test", cache_dir=tmp_path, subset=5, seed=1, first_saccade=True)
    manifest = embedded_module.read_manifest(tmp_path / "embedded_nmnist")
    assert manifest["max_per_class"] == SMALL and manifest["seed"] == data.EMBEDDED_SEED, "generated here"
    assert len(dataset) == 5 and dataset.source.startswith("embedded"), "embedded dataset, subset of 5"
    assert all(Path(f).is_relative_to(tmp_path) for f in dataset.files), "files come from cache_dir"
    assert all(dataset[i][0]["t"].max() < 100_000 for i in range(5)), "first saccade applied"


def test_cache_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="file/cache: cannot create the cache folder"):
        embedded_module.embedded_root(blocker / "cache", max_per_class=SMALL)


@pytest.mark.slow
def test_full_embedded_dataset(tmp_path):
    train = load_dataset(None, "train", cache_dir=tmp_path)
    test = load_dataset(None, "test", cache_dir=tmp_path)
    assert (len(train), len(test)) == (1438, 359), "1797 digits split 80/20 per class"
    stats = describe_recordings(items(test))
    assert abs(stats["events"]["mean"] / SAMPLE_EVENTS - 1) < 0.1, "calibrated events per sample"


@pytest.mark.slow
def test_two_processes_generate_safely(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from sdsnn_bio.data.embedded import embedded_root; "
            "print(embedded_root(sys.argv[1], max_per_class=20))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs), "both processes succeed"
    assert outputs == [str(tmp_path / "embedded_nmnist")] * 2, "both get the same cache"
    manifest = json.loads((tmp_path / "embedded_nmnist" / "manifest.json").read_text())
    assert sum(manifest["counts"]["train"]) + sum(manifest["counts"]["test"]) == 200, "complete cache"
    assert sorted(os.listdir(tmp_path)) == ["embedded_nmnist", "embedded_nmnist.lock"], "no leftovers"


def test_packaged_sample_is_the_real_recording():
    """The package ships the real recording for ``describe``; it is the file the tests read."""
    from sdsnn_bio.data.__main__ import DEFAULT_SAMPLE

    assert DEFAULT_SAMPLE.is_file(), f"package data missing: {DEFAULT_SAMPLE}"
    assert DEFAULT_SAMPLE.read_bytes() == SAMPLE_NMNIST.read_bytes(), "package copy == test copy"
    events = read_nmnist_file(DEFAULT_SAMPLE)
    assert len(events) == 4325, "4325 events as decoded by tonic"


def test_describe_names_a_missing_sample(tmp_path, capsys):
    """``describe --sample`` with no file there is an error naming the path, not a silent skip."""
    from sdsnn_bio.data.__main__ import main

    missing = tmp_path / "nothing.bin"
    with pytest.raises(SystemExit):
        main(["describe", "--sample", str(missing)])
    assert str(missing) in capsys.readouterr().err


# ------------------------------------------------------------------------------ faults found by probing (#11)
def test_zip_member_above_the_size_cap_is_refused_before_reading(tmp_path, sample_events, monkeypatch):
    from sdsnn_bio.data import nmnist

    # The cap is far above any real recording and far below what would exhaust memory.
    real_bytes = len(encode_nmnist(sample_events))
    assert 100 * real_bytes < nmnist.MAX_RECORDING_BYTES <= 64 * 2**20
    monkeypatch.setattr(nmnist, "MAX_RECORDING_BYTES", 50_000)
    files = fake_recordings(sample_events, n_per_class=1)
    files[(4, "huge.bin")] = bytes(60_000)  # 12 000 zero events: compresses to almost nothing
    write_zip(tmp_path / "Train.zip", files, "Train/")
    dataset = load_dataset(tmp_path, "train")
    huge = [s.path for s in dataset.sources].index("Train/4/huge.bin")
    with pytest.raises(DataError, match=r"Train.zip::Train/4/huge.bin: 60000 bytes, more than the 50000 bytes"):
        dataset[huge]
    assert len(dataset[0][0]) > 0, "the other members still read"


def test_zip_member_lying_about_its_size_is_read_only_up_to_the_cap(tmp_path, sample_events, monkeypatch):
    from sdsnn_bio.data import nmnist

    monkeypatch.setattr(nmnist, "MAX_RECORDING_BYTES", 50_000)
    write_zip(tmp_path / "Train.zip", {(0, "big.bin"): bytes(60_000)}, "Train/")
    with zipfile.ZipFile(tmp_path / "Train.zip") as archive:
        archive.getinfo("Train/0/big.bin").file_size = 1000  # a crafted header
        dataset = load_dataset(tmp_path, "train")
        dataset._archives[str(tmp_path / "Train.zip")] = archive
        with pytest.raises(DataError, match="Train/0/big.bin"):
            dataset[0]


def test_plain_file_above_the_size_cap_is_refused(tmp_path, monkeypatch):
    from sdsnn_bio.data import nmnist

    monkeypatch.setattr(nmnist, "MAX_RECORDING_BYTES", 1000)
    write_folder(tmp_path, "Train", {(label, "a.bin"): bytes(1005 if label == 2 else 10) for label in range(10)})
    dataset = load_dataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"2/a.bin: at least 1001 bytes, more than the 1000 bytes"):
        dataset[2]


def test_class_folder_symlinked_from_outside_the_root_is_refused(tmp_path, sample_events):
    files = fake_recordings(sample_events, n_per_class=1)
    root = tmp_path / "root"
    write_folder(root, "Train", {key: value for key, value in files.items() if key[0] != 3})
    write_folder(tmp_path / "elsewhere", "Train", {(7, "x.bin"): files[(7, "00000.bin")]})
    (root / "Train" / "3").symlink_to(tmp_path / "elsewhere" / "Train" / "7", target_is_directory=True)
    with pytest.raises(DataError, match=r"Train/3: class folder is a symbolic link to .*elsewhere/Train/7, "
                                        r"outside the data root"):
        load_dataset(root, "train")


def test_class_folder_symlinked_inside_the_root_is_read(tmp_path, sample_events):
    files = fake_recordings(sample_events, n_per_class=1)
    root = tmp_path / "root"
    write_folder(root, "Train", {key: value for key, value in files.items() if key[0] != 3})
    write_folder(root, "store", {(3, "00000.bin"): files[(3, "00000.bin")]})
    (root / "Train" / "3").symlink_to(root / "store" / "3", target_is_directory=True)
    assert len(load_dataset(root, "train")) == 10


def test_file_symlink_to_a_system_file_is_refused(tmp_path, sample_events):
    root = tmp_path / "root"
    write_folder(root, "Train", fake_recordings(sample_events, n_per_class=1))
    (root / "Train" / "5" / "passwd.bin").symlink_to("/etc/passwd")
    with pytest.raises(DataError, match=r"5/passwd.bin: recording is a symbolic link to /etc/passwd, outside"):
        load_dataset(root, "train")


def test_all_empty_dataset_is_an_error(tmp_path):
    from brian2 import ms

    from sdsnn_bio.data import bin_dataset

    write_folder(tmp_path, "Train", {(label, f"{k}.bin"): b"" for label in range(10) for k in range(2)})
    dataset = load_dataset(tmp_path, "train")
    with pytest.raises(DataError, match=r"\(split 'train'\): none of its 20 recordings holds an event inside "
                                        r"the window \[0, 300 x 1. ms\)"):
        bin_dataset(dataset, 1 * ms, 300)
    late = make_events([1], [1], [400_000], [1])  # one event, after the 300 ms window
    write_folder(tmp_path / "late", "Train", {(label, "a.bin"): encode_nmnist(late) for label in range(10)})
    with pytest.raises(DataError, match="none of its 10 recordings holds an event"):
        bin_dataset(load_dataset(tmp_path / "late", "train"), 1 * ms, 300)


def test_missing_class_gives_a_warning(tmp_path, sample_events):
    files = fake_recordings(sample_events, n_per_class=1)
    write_folder(tmp_path, "Train", {key: value for key, value in files.items() if key[0] not in (2, 9)})
    with pytest.warns(data.DataWarning, match=r"split 'train' holds no recording of class\(es\) \[2, 9\]"):
        dataset = load_dataset(tmp_path, "train")
    assert len(dataset) == 8


def test_complete_split_gives_no_warning(fake_root, recwarn):
    root, _, _ = fake_root
    load_dataset(root, "train")
    assert not [w for w in recwarn if issubclass(w.category, data.DataWarning)]


@pytest.mark.parametrize("n_events", [0, 1, 50, 20_000])
def test_fast_deduplication_equals_numpy_unique(n_events, monkeypatch):
    from brian2 import ms

    from sdsnn_bio.data import encoding

    rng = np.random.default_rng(n_events)
    events = make_events(rng.integers(0, 34, n_events), rng.integers(0, 34, n_events),
                         np.sort(rng.integers(0, 320_000, n_events)), rng.integers(0, 2, n_events))
    keys = rng.integers(0, 1000, n_events)
    np.testing.assert_array_equal(encoding._sorted_unique(keys, 1000), np.unique(keys))
    fast = events_to_spikes(events, 1 * ms, 300)
    monkeypatch.setattr(encoding, "_MASK_LIMIT", 0)  # force np.unique
    reference = events_to_spikes(events, 1 * ms, 300)
    for got, want in zip(fast, reference):
        assert got.dtype == want.dtype == np.int64
        np.testing.assert_array_equal(got, want)
