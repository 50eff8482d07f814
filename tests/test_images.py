"""Static images: MNIST IDX and CIFAR-10 batches from generated folders, rate coding, Brian2 input."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.data import DataError, MissingDataError
from sdsnn_bio.data.images import (
    CIFAR10_CLASSES,
    encode_poisson,
    image_channels,
    open_cifar10,
    open_mnist,
    read_cifar10_batch,
)
from sdsnn_bio.data.registry import encode_split, get_dataset


# ------------------------------------------------------------------ generated files
def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: 00 00 <type 0x08 = uint8> <ndim>, big-endian uint32 sizes, then the data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def class_images(rng, labels, height, width, channels=1) -> np.ndarray:
    """Images whose bright band depends on the class (row band for MNIST-like, column band otherwise)."""
    images = rng.integers(0, 40, size=(len(labels), height, width, channels)).astype(np.uint8)
    band = height // 10 or 1
    for k, label in enumerate(labels):
        images[k, label * band:(label + 1) * band, :, :] = 230
    return images


def write_mnist(folder: Path, n_train=30, n_test=20, gz=False, dot=False, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.tile(np.arange(10), n // 10 + 1)[:n]
        images = class_images(rng, labels, 28, 28)[..., 0]
        separator = "." if dot else "-"
        for kind, array, dims in (("images", images, 3), ("labels", labels, 1)):
            name = f"{prefix}-{kind}{separator}idx{dims}-ubyte"
            data = idx_bytes(array)
            if gz:
                name, data = name + ".gz", gzip.compress(data)
            (folder / name).write_bytes(data)
        written[prefix] = (images, labels)
    return written


def write_cifar(folder: Path, per_batch=10, seed=0, protocol=2) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        labels = rng.permutation(np.tile(np.arange(10), per_batch // 10 + 1)[:per_batch])
        images = class_images(rng, labels, 32, 32, 3)  # (n, H, W, RGB)
        data = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)  # 1024 R, 1024 G, 1024 B
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                 b"filenames": [f"{k}.png".encode() for k in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        written[name] = (images, labels)
    return written


# ------------------------------------------------------------------ MNIST
@pytest.mark.parametrize("where, gz, dot", [("", False, False), ("raw", True, False), ("MNIST/raw", True, True)])
def test_mnist_layouts(tmp_path, where, gz, dot):
    written = write_mnist(tmp_path / where if where else tmp_path, gz=gz, dot=dot)
    train = open_mnist(tmp_path, "train")
    test = open_mnist(tmp_path, "test")
    assert len(train) == 30 and len(test) == 20
    image, label = test[13]
    want_images, want_labels = written["t10k"]
    assert image.shape == (28, 28, 1) and label == want_labels[13]
    np.testing.assert_array_equal(image[..., 0], want_images[13] / 255.0, err_msg="intensity = value / 255")
    subset = open_mnist(tmp_path, "train", subset=10, seed=1)
    assert sorted(subset.targets.tolist()) == list(range(10)), "class-balanced subset"


@pytest.mark.parametrize(
    ("breakage", "error", "needle"),
    [
        ("no labels", MissingDataError, "no t10k-labels-idx1-ubyte"),
        ("junk images", DataError, "expected an IDX file"),
        ("small images", DataError, "expected MNIST images (n, 28, 28) of uint8"),
        ("short labels", DataError, "expected 20 labels"),
        ("label 10", DataError, "labels in 0-9"),
        ("empty folder", MissingDataError, "no t10k-images/t10k-labels IDX files"),
    ],
)
def test_malformed_mnist_is_named(tmp_path, breakage, error, needle):
    write_mnist(tmp_path)
    images, labels = tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte"
    if breakage == "no labels":
        labels.unlink()
    elif breakage == "junk images":
        images.write_bytes(b"\x89PNG....")
    elif breakage == "small images":
        images.write_bytes(idx_bytes(np.zeros((20, 20, 20))))
    elif breakage == "short labels":
        labels.write_bytes(idx_bytes(np.zeros(19)))
    elif breakage == "label 10":
        labels.write_bytes(idx_bytes(np.full(20, 10)))
    elif breakage == "empty folder":
        images.unlink()
        labels.unlink()
    with pytest.raises(error) as raised:
        open_mnist(tmp_path, "test")
    assert needle in str(raised.value)
    assert str(tmp_path) in str(raised.value), "the message names the file or folder"


# ------------------------------------------------------------------ CIFAR-10
@pytest.mark.parametrize("nested, protocol", [(True, 2), (False, pickle.HIGHEST_PROTOCOL)])
def test_cifar10_batches(tmp_path, nested, protocol):
    written = write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path, protocol=protocol)
    train, test = open_cifar10(tmp_path, "train"), open_cifar10(tmp_path, "test")
    assert len(train) == 50 and len(test) == 10 and train.classes == list(CIFAR10_CLASSES)
    image, label = train[23]  # batch 3, item 3
    images, labels = written["data_batch_3"]
    assert label == labels[3]
    np.testing.assert_array_equal(image, images[3] / 255.0, err_msg="rows of R, G, B planes -> (H, W, RGB)")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"not a pickle at all", "could not unpickle"),
        (pickle.dumps([1, 2, 3]), "expected a pickled dict"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "missing ['labels']"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "uint8 array (n, 3072)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}), "labels in 0-9"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "expected 2 labels"),
        (pickle.dumps(__import__("datetime").date(2020, 1, 1)), "refusing to rebuild datetime.date"),
    ],
)
def test_malformed_cifar10_batch_is_named(tmp_path, content, needle):
    path = tmp_path / "test_batch"
    path.write_bytes(content)
    with pytest.raises(DataError, match="test_batch") as raised:
        read_cifar10_batch(path)
    assert needle in str(raised.value)


def test_missing_cifar10_batch_is_named(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(MissingDataError, match=r"missing \['data_batch_4'\]"):
        open_cifar10(tmp_path, "train")
    assert len(open_cifar10(tmp_path, "test")) == 10, "the test split does not need the training batches"
    with pytest.raises(DataError, match="never downloaded"):
        get_dataset("cifar10").open("", "train")


# ------------------------------------------------------------------ rate coding
def test_channel_order_is_channel_row_column():
    image = np.zeros((32, 32, 3))
    image[5, 7, 2] = 1.0  # blue pixel at row 5, column 7
    flat = image_channels(image, (32, 32, 3))
    assert np.flatnonzero(flat).tolist() == [(2 * 32 + 5) * 32 + 7], "c = (ch*H + y)*W + x"
    with pytest.raises(ValueError, match="expected shape"):
        image_channels(np.zeros((28, 28)), (32, 32, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_channels(np.full((28, 28), 2.0), (28, 28, 1))


def test_poisson_is_bernoulli_with_the_intensity_per_step():
    intensity = np.zeros((28, 28))
    intensity[0, :10] = [0.0, 1.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9]
    n_steps = 4000
    channels, steps = encode_poisson(intensity, shape=(28, 28, 1), n_steps=n_steps, rng=np.random.default_rng(0))
    counts = np.bincount(channels, minlength=784)
    assert counts[0] == 0 and counts[1] == n_steps, "intensity 0 never fires, 1 fires at every step"
    assert counts[10:].sum() == 0, "black pixels never fire"
    rates = counts[2:10] / n_steps
    np.testing.assert_allclose(rates, intensity[0, 2:10], atol=4 * np.sqrt(0.25 / n_steps),
                               err_msg="spike probability per step = intensity")
    assert np.all(np.diff(steps * 784 + channels) > 0), "sorted by step then channel, one spike per pair"
    again = encode_poisson(intensity, shape=(28, 28, 1), n_steps=n_steps, rng=np.random.default_rng(0))
    assert np.array_equal(again[0], channels) and np.array_equal(again[1], steps), "same generator, same spikes"


def test_poisson_encoding_has_the_statistics_of_a_brian2_poisson_group():
    """The encoder draws the process Brian2's PoissonGroup draws (rate = intensity / dt) per step."""
    from brian2 import Hz, Network, PoissonGroup, SpikeMonitor

    intensity = np.linspace(0.05, 0.6, 12)
    n_steps = 3000
    group = PoissonGroup(12, rates=intensity / (1 * ms), dt=1 * ms, name="poisson_reference")
    monitor = SpikeMonitor(group)
    Network(group, monitor).run(n_steps * ms)
    brian_counts = np.bincount(np.asarray(monitor.i[:]), minlength=12)
    channels, _ = encode_poisson(intensity.reshape(1, 12), shape=(12, 1, 1), n_steps=n_steps,
                                 rng=np.random.default_rng(3))
    ours = np.bincount(channels, minlength=12)
    tolerance = 5 * np.sqrt(n_steps * intensity * (1 - intensity))
    assert np.all(np.abs(ours - brian_counts) < tolerance), f"{ours} vs {brian_counts}"
    assert float(group.rates[0] / Hz) == pytest.approx(50.0), "intensity 0.05 per 1 ms step is 50 Hz"


def test_encoded_images_give_the_same_spikes_in_brian2_and_the_kernel(tmp_path):
    from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
    from sdsnn_bio.model import SpikingNetwork, initial_structure

    write_mnist(tmp_path)
    config = ExperimentConfig.from_dict({
        "data": {"dataset": "mnist", "root": str(tmp_path)},
        "network": {"hidden_sizes": [20], "n_steps": 25, "weight_init_gain": 3.0},
    })
    params = config.network_parameters()
    assert (params.n_input, params.n_output) == (784, 10)
    samples, labels, _ = encode_split(config.dataset(), "test", root=tmp_path, dt=params.dt,
                                      n_steps=params.n_steps, seed=2)
    samples = samples[:4]
    structure = initial_structure(params, np.random.default_rng(1))
    network = SpikingNetwork(structure, params, record_potentials=("hidden_1", "output"))
    recording = network.present(samples)
    input_spikes = recording.dense_spikes("input")
    for b, (channels, steps) in enumerate(samples):
        want = np.zeros((25, 784), dtype=bool)
        want[steps, channels] = True
        assert np.array_equal(input_spikes[:, b, :], want), "the SpikeGeneratorGroup emits the encoder's spikes"
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1)
    forward = learner.simulate(InputBatch.from_samples(samples, params.n_steps, params.n_input))
    total = 0
    for name in ("hidden_1", "output"):
        spikes = recording.dense_spikes(name)
        total += spikes.sum()
        assert np.array_equal(spikes, forward.traces[name].spikes), f"{name}: Brian2 and kernel spikes differ"
    assert total > 20, "the case must actually spike to test anything"


def test_stochastic_encoding_is_reproducible_and_depends_on_the_seed(tmp_path):
    write_mnist(tmp_path)
    mnist = get_dataset("mnist")
    common = dict(root=tmp_path, dt=1 * ms, n_steps=10)
    first, _, _ = encode_split(mnist, "test", seed=5, **common)
    again, _, _ = encode_split(mnist, "test", seed=5, **common)
    other, _, _ = encode_split(mnist, "test", seed=6, **common)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again)), "reproducible"
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other)), "the seed matters"
    assert not np.array_equal(first[0][0], first[10][0]) or not np.array_equal(first[0][1], first[10][1]), (
        "two samples of the same class get their own draws")


# ------------------------------------------------------------------ configuration and end to end
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"dataset": "mnist", "input_size": [14, 14]}, "applies to event datasets"),
        ({"dataset": "cifar10", "encoding": "frames"}, "cifar10 accepts ['poisson', 'direct']"),
    ],
)
def test_image_configuration_errors(data, needle):
    with pytest.raises(ConfigError, match="data.") as error:
        ExperimentConfig.from_dict({"data": data})
    assert needle in str(error.value)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_sdsnn_bio_run_on_generated_images(tmp_path, dataset, capsys):
    from sdsnn_bio.cli import main

    root = tmp_path / dataset
    if dataset == "mnist":
        write_mnist(root, n_train=20, n_test=10)
    else:
        write_cifar(root, per_batch=10)
    config = tmp_path / "images.toml"
    config.write_text(
        f'[data]\ndataset = "{dataset}"\ntest_subset = 10\n'
        '[network]\nhidden_sizes = [8]\nn_steps = 10\n'
        '[learning]\nbatch_size = 5\nepochs = 1\nthreads = 1\n'
        '[simulation]\ncodegen_target = "numpy"\nevaluation_batch = 5\n'
        f'[run]\noutput_dir = "{tmp_path / "out"}"\n'
    )
    assert main(["run", str(config), "--data", str(root), "--quiet"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    shape = get_dataset(dataset).shape
    assert results["data"]["encoding"] == "poisson" and results["data"]["input_shape"] == list(shape)
    model = results["models"]["dense"]
    assert model["structure"]["neurons"]["input"] == int(np.prod(shape)) and model["structure"]["neurons"]["output"] == 10
    assert model["test"]["n_samples"] == 10 and model["test"]["kernel_brian2_agreement"] == 1.0
    assert "final test accuracy" in capsys.readouterr().out
    figures = tmp_path / "figures"
    assert main(["plot", str(tmp_path / "out"), "--figures", str(figures)]) == 0
    assert (figures / "receptive_fields.png").is_file(), "pixel maps drawn at the dataset's image layout"
