"""Tests of sdsnn_bio.data.idx and sdsnn_bio.data.convert: IDX files to an N-MNIST folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest

from sdsnn_bio.data import (
    DataError,
    EmulatorParameters,
    MissingDataError,
    emulate_images,
    emulate_saccades,
    load_dataset,
    read_idx,
    read_nmnist_file,
    stratified_split,
)
from sdsnn_bio.data.__main__ import main as data_main
from sdsnn_bio.data.convert import PROVENANCE_NAME, digit_box_parameters, emulate_idx

N_IMAGES = 40


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX (written here from the format, independently of the reader)."""
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, codes[big.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big.tobytes()


def small_digits(n: int = N_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images (MNIST's size): class-dependent bars and a seed-fixed speckle."""
    rng = np.random.default_rng(7)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for k, label in enumerate(labels):
        images[k, 4:24, 5 + 2 * label: 8 + 2 * label] = 255
        images[k, 6 + 3 * (label % 5): 8 + 3 * (label % 5), 4:24] = 200
        images[k] |= (rng.random((28, 28)) < 0.03).astype(np.uint8) * 90
    return images, labels.astype(np.uint8)


@pytest.fixture
def idx_files(tmp_path):
    images, labels = small_digits()
    images_path = tmp_path / "images-idx3-ubyte.gz"
    labels_path = tmp_path / "labels-idx1-ubyte"
    images_path.write_bytes(gzip.compress(idx_bytes(images)))
    labels_path.write_bytes(idx_bytes(labels))
    return images_path, labels_path, images, labels


def folder_bytes(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.bin"))}


# ----------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) * 3).astype(dtype)
    content = idx_bytes(array)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    read = read_idx(path)
    assert read.shape == (2, 3, 4) and read.dtype == np.dtype(dtype)  # native byte order
    np.testing.assert_array_equal(read, array)


def test_read_idx_errors_name_the_file(tmp_path):
    with pytest.raises(MissingDataError, match="absent.idx: IDX file does not exist"):
        read_idx(tmp_path / "absent.idx")
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x00\x00\x07\x01abcd")
    with pytest.raises(DataError, match=r"bad.idx: expected an IDX file \(header 00 00 <type>"):
        read_idx(bad)
    truncated = tmp_path / "short.idx"
    truncated.write_bytes(idx_bytes(np.zeros((3, 4), np.uint8))[:-1])
    with pytest.raises(DataError, match=r"short.idx: IDX header announces shape \(3, 4\).*got 23 bytes"):
        read_idx(truncated)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(idx_bytes(np.zeros(50, np.uint8)))[:-10])
    with pytest.raises(DataError, match="broken.gz: expected a gzip-compressed IDX file"):
        read_idx(broken)


# ----------------------------------------------------------------------------------------- split
def test_stratified_split_sizes_disjoint_and_proportional():
    labels = np.repeat(np.arange(10), [50, 60, 40, 55, 45, 50, 70, 30, 50, 50])
    splits = stratified_split(labels, {"train": 200, "validation": 60, "test": 100}, seed=3)
    assert {k: v.size for k, v in splits.items()} == {"train": 200, "validation": 60, "test": 100}
    every = np.concatenate(list(splits.values()))
    assert np.unique(every).size == every.size  # disjoint
    for name, indices in splits.items():
        assert np.all(np.diff(indices) > 0)  # sorted
        expected = indices.size * np.bincount(labels) / labels.size
        assert np.all(np.abs(np.bincount(labels[indices], minlength=10) - expected) < 1)  # stratified
    again = stratified_split(labels, {"train": 200, "validation": 60, "test": 100}, seed=3)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)  # fixed by the seed
    other = stratified_split(labels, {"train": 200, "validation": 60, "test": 100}, seed=4)
    assert not np.array_equal(splits["train"], other["train"])


def test_stratified_split_uses_everything_and_refuses_too_much():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    splits = stratified_split(labels, {"train": 5, "validation": 2, "test": 3}, seed=0)
    assert sorted(np.concatenate(list(splits.values()))) == list(range(10))
    with pytest.raises(ValueError, match="train 8 \\+ validation 2 \\+ test 1 = 11 recordings requested.*only 10"):
        stratified_split(labels, {"train": 8, "validation": 2, "test": 1}, seed=0)


def test_digit_box_parameters_keep_the_calibrated_box():
    params = digit_box_parameters(EmulatorParameters(), (28, 28), 20)
    assert params.image_size == 28 and params.start_position == (-0.5, 0.5)
    assert digit_box_parameters(EmulatorParameters(), (28, 28), None) == EmulatorParameters()
    with pytest.raises(ValueError, match=r"digit_box: expected None or an integer in \[1, 28\]"):
        digit_box_parameters(EmulatorParameters(), (28, 28), 29)


# ----------------------------------------------------------------------------------------- folder
def test_emulate_idx_writes_a_readable_stratified_folder(tmp_path, idx_files):
    images_path, labels_path, images, labels = idx_files
    out = tmp_path / "out"
    provenance = emulate_idx(images_path, labels_path, out, train=20, validation=10, test=10, seed=5,
                             progress=False, command="the command")
    assert provenance["complete"] is True and provenance["command"] == "the command"
    on_disk = json.loads((out / PROVENANCE_NAME).read_text())
    assert on_disk == json.loads(json.dumps(provenance))
    request = on_disk["request"]
    assert request["source"]["images"]["md5"] == hashlib.md5(images_path.read_bytes()).hexdigest()
    assert request["source"]["labels"]["md5"] == hashlib.md5(labels_path.read_bytes()).hexdigest()
    assert request["split_sizes"] == {"train": 20, "validation": 10, "test": 10}
    assert request["value_range"] == [0.0, 255.0] and request["seed"] == 5
    assert request["parameters"]["image_size"] == 28  # MNIST geometry: a 20-pixel digit box in 28
    indices = {name: request["split_indices"][name] for name in ("train", "validation", "test")}
    assert sorted(sum(indices.values(), [])) == list(range(N_IMAGES))
    for split in ("train", "validation", "test"):
        dataset = load_dataset(out, split)
        assert len(dataset) == len(indices[split])
        # every file is named after its source image and sits in that image's class folder
        for source, target in zip(dataset.sources, dataset.targets):
            index = int(source.path.rsplit("/", 1)[1][:-4])
            assert index in indices[split] and labels[index] == target
        assert np.bincount(dataset.targets, minlength=10).tolist() == np.bincount(
            labels[indices[split]], minlength=10).tolist()
    # a file is exactly the emulator's recording of its image with the image's own generator
    params = EmulatorParameters.from_dict(request["parameters"])
    index = indices["validation"][0]
    expected = emulate_saccades(images[index], np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, index))),
                                params, value_range=(0, 255))
    written = read_nmnist_file(out / "Validation" / str(labels[index]) / f"{index:05d}.bin")
    np.testing.assert_array_equal(written, expected)
    assert written.size > 100


def test_output_does_not_depend_on_workers(tmp_path):
    images, labels = small_digits()
    emulate_images(images, labels, tmp_path / "one", train=30, test=10, seed=1, workers=1, progress=False)
    emulate_images(images, labels, tmp_path / "two", train=30, test=10, seed=1, workers=2, progress=False)
    one, two = folder_bytes(tmp_path / "one"), folder_bytes(tmp_path / "two")
    assert len(one) == 40 and one == two


def test_rerun_resumes_missing_and_broken_files_only(tmp_path):
    images, labels = small_digits()
    out = tmp_path / "out"
    emulate_images(images, labels, out, train=24, validation=8, test=8, seed=2, progress=False)
    reference = folder_bytes(out)
    files = sorted(out.rglob("*.bin"))
    files[0].unlink()                              # never written
    files[5].write_bytes(files[5].read_bytes()[:7])  # not a whole number of events
    files[9].write_bytes(b"")                      # empty
    (files[3].parent / f".{files[3].name}.123.tmp").write_bytes(b"partial")  # an interrupted write
    provenance = emulate_images(images, labels, out, train=24, validation=8, test=8, seed=2, progress=False)
    assert provenance["recordings_written"] == 3 and provenance["recordings_already_present"] == 37
    assert folder_bytes(out) == reference
    assert not list(out.rglob("*.tmp"))


def test_refuses_another_request_or_a_foreign_folder(tmp_path):
    images, labels = small_digits()
    out = tmp_path / "out"
    emulate_images(images, labels, out, train=20, test=10, seed=2, progress=False)
    with pytest.raises(DataError, match=r"holds a conversion of another request \(differs in seed, split_indices\)"):
        emulate_images(images, labels, out, train=20, test=10, seed=3, progress=False)
    with pytest.raises(DataError, match=r"differs in parameters"):
        emulate_images(images, labels, out, train=20, test=10, seed=2, progress=False,
                       params=EmulatorParameters(threshold_on=0.3))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"foreign: output folder is not empty and holds no provenance.json"):
        emulate_images(images, labels, foreign, train=20, progress=False)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="names an existing file"):
        emulate_images(images, labels, a_file, train=20, progress=False)


def test_bad_arguments_name_the_parameter(tmp_path):
    images, labels = small_digits()
    with pytest.raises(ValueError, match=r"images: expected an array \(n, height, width\)"):
        emulate_images(images[0], labels, tmp_path / "o", train=1)
    with pytest.raises(ValueError, match="labels: expected 40 integer labels"):
        emulate_images(images, labels[:5], tmp_path / "o", train=1)
    with pytest.raises(ValueError, match="workers: expected an integer >= 1, got 0"):
        emulate_images(images, labels, tmp_path / "o", train=1, workers=0)
    with pytest.raises(ValueError, match="recordings requested, but the source holds only 40 images"):
        emulate_images(images, labels, tmp_path / "o", train=30, test=11)


def test_command_line(tmp_path, idx_files, capsys):
    images_path, labels_path, _, _ = idx_files
    out = tmp_path / "cli"
    argv = ["emulate-idx", str(images_path), str(labels_path), "--output", str(out), "--train", "16",
            "--validation", "4", "--test", "8", "--seed", "0", "--workers", "1", "--no-progress"]
    assert data_main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split_sizes"] == {"train": 16, "validation": 4, "test": 8}
    assert printed["recordings_written"] == 28
    provenance = json.loads((out / PROVENANCE_NAME).read_text())
    assert provenance["command"].startswith("python -m sdsnn_bio.data emulate-idx ")
    assert "--validation 4" in provenance["command"]
    assert data_main(argv) == 0 and json.loads(capsys.readouterr().out)["recordings_already_present"] == 28
    assert data_main(argv[:-3] + ["--seed", "1", "--no-progress"]) == 2
    assert "holds a conversion of another request" in capsys.readouterr().err
