"""Tests of sdsnn_bio.data.idx_split (and IDX writing): one IDX pair -> train/validation/test IDX files."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest

from sdsnn_bio.config import ExperimentConfig
from sdsnn_bio.data import DataError, MissingDataError, load_dataset, read_idx, split_idx, write_idx
from sdsnn_bio.data.__main__ import main as data_main
from sdsnn_bio.data.convert import emulate_idx
from sdsnn_bio.data.idx import encode_idx
from sdsnn_bio.data.idx_split import SPLIT_PROVENANCE_NAME, split_file_names
from sdsnn_bio.data.images import open_cifar10, open_mnist
from sdsnn_bio.data.registry import get_dataset

N_IMAGES = 60


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX of a uint8 array, written here from the format (independently of the package's writer)."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def digits(n: int = N_IMAGES, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images whose bright row band is their class, with seed-fixed speckle; labels shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for k, label in enumerate(labels):
        images[k, 2 + 2 * label: 4 + 2 * label, 4:24] = 230
    images[:, 0, 0] = np.arange(n)  # every image unique, so a file's content names its source index
    return images, labels.astype(np.uint8)


@pytest.fixture
def source(tmp_path):
    images, labels = digits()
    images_path = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    labels_path = tmp_path / "src" / "train-labels-idx1-ubyte"
    images_path.parent.mkdir()
    images_path.write_bytes(gzip.compress(idx_bytes(images)))
    labels_path.write_bytes(idx_bytes(labels))
    return images_path, labels_path, images, labels


# ----------------------------------------------------------------------------------------- IDX writing
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_write_idx_round_trips_every_idx_type(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) * 5 - 7 * (np.dtype(dtype).kind != "u")).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4), "type code and shape kept"
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress, "gzip only when asked"
    assert write_idx(tmp_path / "b.idx", array, compress=compress).read_bytes() == path.read_bytes(), \
        "equal arrays give equal files (gzip timestamp fixed)"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left"


def test_encode_idx_is_the_format_and_refuses_what_idx_cannot_hold():
    labels = np.array([3, 1, 4], dtype=np.uint8)
    assert encode_idx(labels) == idx_bytes(labels), "same bytes as the format written by hand"
    assert encode_idx(np.array([1.5], dtype="<f4"))[4:] == struct.pack(">I", 1) + struct.pack(">f", 1.5), \
        "big-endian data whatever the array's byte order"
    with pytest.raises(ValueError, match="IDX holds uint8, int8, int16, int32, float32, float64, got dtype int64"):
        encode_idx(np.arange(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"IDX holds 1 to 255 dimensions, got shape \(\)"):
        encode_idx(np.uint8(3))


# ----------------------------------------------------------------------------------------- split
def test_split_selects_the_digits_emulate_idx_records(tmp_path, source):
    images_path, labels_path, _, _ = source
    counts = dict(train=30, validation=10, test=15, seed=5)
    emulated = emulate_idx(images_path, labels_path, tmp_path / "events", progress=False, **counts)
    split = split_idx(images_path, labels_path, tmp_path / "images", **counts)
    for name in ("train", "validation", "test"):
        assert split["request"]["split_indices"][name] == emulated["request"]["split_indices"][name], \
            f"{name}: the same source images as the emulated recordings"
    assert split["request"]["source"]["images"]["md5"] == emulated["request"]["source"]["images"]["md5"]
    # a class-balanced subset (data.train_subset, data.validation_subset) of either picks the same digits
    for name, n, seed in (("train", 10, 0), ("train", 13, 4), ("validation", 5, 1)):
        static = open_mnist(tmp_path / "images", name, subset=n, seed=seed)
        events = load_dataset(tmp_path / "events", name, subset=n, seed=seed)
        static_sources = sorted(int(image[0, 0, 0]) for image in static.images)  # pixel (0, 0) = source index
        event_sources = sorted(int(item.path.rsplit("/", 1)[1][:-4]) for item in events.sources)
        assert static_sources == event_sources, f"{name} subset of {n} with seed {seed}: the same digits"


def test_split_files_hold_the_chosen_images_in_source_order(tmp_path, source):
    images_path, labels_path, images, labels = source
    provenance = split_idx(images_path, labels_path, tmp_path / "out", train=30, validation=10, test=15, seed=2,
                           command="the command")
    out = tmp_path / "out"
    indices = provenance["request"]["split_indices"]
    assert sorted(sum(indices.values(), [])) == sorted(set(sum(indices.values(), []))), "disjoint"
    assert provenance["request"]["split_sizes"] == {"train": 30, "validation": 10, "test": 15}
    for name in ("train", "validation", "test"):
        assert indices[name] == sorted(indices[name]), "source order kept"
        images_name, labels_name = split_file_names(name)
        np.testing.assert_array_equal(read_idx(out / images_name), images[indices[name]])
        written_labels = read_idx(out / labels_name)
        assert written_labels.dtype == np.uint8, "element type kept"
        np.testing.assert_array_equal(written_labels, labels[indices[name]])
        counts = np.bincount(written_labels, minlength=10)
        assert counts.max() - counts.min() <= 1, f"{name}: stratified (the source is balanced)"
        record = provenance["files"][labels_name]
        assert record["md5"] == hashlib.md5((out / labels_name).read_bytes()).hexdigest()
        assert record["class_counts"] == {str(c): int(k) for c, k in enumerate(counts) if k}
    on_disk = json.loads((out / SPLIT_PROVENANCE_NAME).read_text())
    assert on_disk == json.loads(json.dumps(provenance)) and on_disk["command"] == "the command"
    assert on_disk["request"]["source"]["labels"]["md5"] == hashlib.md5(labels_path.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"], "no temporary folder left"


def test_split_depends_on_the_seed_and_nothing_else(tmp_path, source):
    images_path, labels_path, _, _ = source
    one = split_idx(images_path, labels_path, tmp_path / "one", train=20, test=10, seed=1, compress=False)
    two = split_idx(images_path, labels_path, tmp_path / "two", train=20, test=10, seed=1, compress=False)
    other = split_idx(images_path, labels_path, tmp_path / "other", train=20, test=10, seed=2, compress=False)
    assert one["files"] == two["files"], "same request, same bytes"
    assert one["request"]["split_indices"] != other["request"]["split_indices"]
    assert sorted(one["files"]) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                                    "train-labels-idx1-ubyte"], "no files for an empty validation split; no .gz"


def test_rerun_finds_the_finished_split_and_refuses_anything_else(tmp_path, source):
    images_path, labels_path, _, _ = source
    out = tmp_path / "out"
    first = split_idx(images_path, labels_path, out, train=20, validation=5, test=5, seed=0)
    again = split_idx(images_path, labels_path, out, train=20, validation=5, test=5, seed=0)
    assert again["already_present"] is True and again["created"] == first["created"]
    with pytest.raises(DataError, match=r"out: holds a split of another request \(differs in seed, split_indices\)"):
        split_idx(images_path, labels_path, out, train=20, validation=5, test=5, seed=1)
    with pytest.raises(DataError, match=r"differs in split_indices, split_sizes"):
        split_idx(images_path, labels_path, out, train=21, validation=5, test=5, seed=0)
    (out / "validation-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(DataError, match=r"validation-labels-idx1-ubyte.gz: missing or changed since the split"):
        split_idx(images_path, labels_path, out, train=20, validation=5, test=5, seed=0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"foreign: output folder is not empty and holds no provenance.json"):
        split_idx(images_path, labels_path, foreign, train=20)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert split_idx(images_path, labels_path, empty, train=20)["request"]["split_sizes"]["train"] == 20, \
        "an empty folder is filled"
    with pytest.raises(DataError, match="names an existing file"):
        split_idx(images_path, labels_path, foreign / "notes.txt", train=20)


def test_an_interrupted_split_leaves_nothing(tmp_path, source, monkeypatch):
    import sdsnn_bio.data.idx_split as module

    images_path, labels_path, _, _ = source
    calls = []

    def failing_write(path, array, *, compress):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return write_idx(path, array, compress=compress)

    monkeypatch.setattr(module, "write_idx", failing_write)
    with pytest.raises(OSError, match="disk full"):
        split_idx(images_path, labels_path, tmp_path / "out", train=20, validation=5, test=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"], "neither the output nor a temporary folder"


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        ({"train": 0}, ValueError, "train: expected an integer >= 1, got 0"),
        ({"test": -1}, ValueError, "test: expected an integer >= 0, got -1"),
        ({"seed": 1.5}, ValueError, "seed: expected an integer >= 0, got 1.5"),
        ({"train": 50, "test": 11}, ValueError, "recordings requested, but the source holds only 60 images"),
        ({"labels": "short"}, DataError, "expected 60 integer labels (one per image of"),
        ({"images": "flat"}, DataError, "expected IDX images of shape (n, height, width), got shape (60,)"),
        ({"images": "missing"}, MissingDataError, "IDX file does not exist"),
    ],
)
def test_bad_input_is_named(tmp_path, source, change, error, needle):
    images_path, labels_path, _, _ = source
    arguments = {"train": 20, "validation": 0, "test": 0, "seed": 0}
    if change.get("labels") == "short":
        labels_path.write_bytes(idx_bytes(np.zeros(59)))
    elif change.get("images") == "flat":
        images_path.write_bytes(idx_bytes(np.zeros(60)))
    elif change.get("images") == "missing":
        images_path.unlink()
    else:
        arguments.update(change)
    with pytest.raises(error) as raised:
        split_idx(images_path, labels_path, tmp_path / "out", **arguments)
    assert needle in str(raised.value)
    if error is not ValueError:
        assert str(tmp_path / "src") in str(raised.value), "the message names the file"
    assert not (tmp_path / "out").exists()


def test_command_line(tmp_path, source, capsys):
    images_path, labels_path, _, _ = source
    out = tmp_path / "cli"
    argv = ["split-idx", str(images_path), str(labels_path), "--output", str(out), "--train", "30",
            "--validation", "10", "--test", "10", "--seed", "4"]
    assert data_main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split_sizes"] == {"train": 30, "validation": 10, "test": 10}
    assert printed["already_present"] is False and len(printed["files"]) == 6
    provenance = json.loads((out / SPLIT_PROVENANCE_NAME).read_text())
    assert provenance["command"].startswith("python -m sdsnn_bio.data split-idx ")
    assert "--seed 4" in provenance["command"]
    assert data_main(argv) == 0 and json.loads(capsys.readouterr().out)["already_present"] is True
    assert data_main(argv[:-1] + ["5"]) == 2
    assert "holds a split of another request" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_main(argv[:5] + ["--train", "0"])
    assert "--train: expected an integer >= 1, got 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- reader
def test_mnist_reader_opens_the_validation_split(tmp_path, source):
    images_path, labels_path, images, labels = source
    provenance = split_idx(images_path, labels_path, tmp_path / "out", train=30, validation=10, test=20, seed=0)
    indices = provenance["request"]["split_indices"]
    for name in ("train", "validation", "test"):
        dataset = open_mnist(tmp_path / "out", name)
        assert dataset.split == name and len(dataset) == len(indices[name])
        np.testing.assert_array_equal(dataset.images[..., 0], images[indices[name]])
        np.testing.assert_array_equal(dataset.targets, labels[indices[name]])
    subset = open_mnist(tmp_path / "out", "validation", subset=10, seed=1)
    assert sorted(subset.targets.tolist()) == list(range(10)), "class-balanced subset of the validation split"
    assert "validation" in get_dataset("mnist").splits
    ExperimentConfig.from_dict({"data": {"dataset": "mnist", "validation_split": "folder"}})  # accepted


def test_validation_split_errors_name_the_folder_and_the_command(tmp_path, source):
    images_path, labels_path, _, _ = source
    split_idx(images_path, labels_path, tmp_path / "out", train=30, test=20, seed=0)  # no validation files
    with pytest.raises(MissingDataError) as raised:
        open_mnist(tmp_path / "out", "validation")
    message = str(raised.value)
    assert str(tmp_path / "out") in message and "no validation-images/validation-labels IDX files" in message
    assert "python -m sdsnn_bio.data split-idx" in message and 'validation_split = "fraction"' in message
    (tmp_path / "out" / "validation-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28)))))
    with pytest.raises(MissingDataError, match=r"holds the validation images but no validation-labels-idx1-ubyte"):
        open_mnist(tmp_path / "out", "validation")
    with pytest.raises(ValueError, match=r"split: expected one of \['train', 'validation', 'test'\], got 'dev'"):
        open_mnist(tmp_path / "out", "dev")
    with pytest.raises(ValueError, match=r"split: expected one of \['train', 'test'\], got 'validation'"):
        open_cifar10(tmp_path / "out", "validation")


def test_run_on_a_generated_split_validates_on_its_validation_files(tmp_path, source, capsys):
    from sdsnn_bio.cli import main

    images_path, labels_path, _, _ = source
    root = tmp_path / "split"
    split_idx(images_path, labels_path, root, train=30, validation=20, test=10, seed=0)
    config = tmp_path / "mnist.toml"
    config.write_text(
        '[data]\ndataset = "mnist"\nvalidation_split = "folder"\nvalidation_subset = 10\n'
        '[network]\nhidden_sizes = [8]\nn_steps = 10\n'
        '[learning]\nbatch_size = 10\nepochs = 2\nthreads = 1\n'
        '[simulation]\ncodegen_target = "numpy"\nevaluation_batch = 10\n'
        f'[run]\noutput_dir = "{tmp_path / "run"}"\n'
    )
    assert main(["run", str(config), "--data", str(root), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["data"]["validation_samples_from_folder"] == 10, "a class-balanced 10 of the folder's 20"
    assert results["data"]["train_samples"] == 30 and results["data"]["test_samples"] == 10
    model = results["models"]["dense"]
    assert model["validation"]["source"] == "folder" and model["validation"]["n_samples"] == 10
    assert model["validation"]["n_train_samples"] == 30, "every training image is trained on"
    assert len(model["validation"]["accuracy_per_epoch"]) == 2
    assert model["test"]["n_samples"] == 10 and model["test"]["kernel_brian2_agreement"] == 1.0
    printed = capsys.readouterr().out
    assert "(10 samples from the dataset folder's validation split)" in printed, "the summary names the source"
    assert "carved" not in printed


def test_validation_subset_is_balanced_and_needs_the_folder_split(tmp_path, source):
    from sdsnn_bio.config import ConfigError
    from sdsnn_bio.experiment import prepare_data

    images_path, labels_path, _, _ = source
    split_idx(images_path, labels_path, tmp_path / "split", train=20, validation=30, test=10, seed=0)
    config = ExperimentConfig.from_dict({
        "data": {"dataset": "mnist", "root": str(tmp_path / "split"), "validation_split": "folder",
                 "validation_subset": 20},
        "network": {"hidden_sizes": [4], "n_steps": 5},
    })
    data = prepare_data(config)
    assert len(data.validation) == 20 and np.bincount(data.validation_labels).tolist() == [2] * 10
    assert len(data.train) == 20 and len(data.test) == 10
    with pytest.raises(ConfigError, match=r"data.validation_subset: applies to the folder's own validation split"):
        ExperimentConfig.from_dict({"data": {"validation_subset": 100}})
    with pytest.raises(ConfigError, match=r"data.validation_subset: expected an integer >= 0 \(0 = all\), got -1"):
        ExperimentConfig.from_dict({"data": {"dataset": "mnist", "validation_split": "folder",
                                             "validation_subset": -1}})
