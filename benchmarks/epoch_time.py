"""The time one training epoch of a configuration would take here, from generated full-size inputs.

No dataset is read: ``--batches`` batches of generated samples of the configuration's dataset at
its native size go through the configuration's own pipeline (spatial down-sampling with tonic's
``Downsample`` for event datasets, then ``data.encoding``; the same functions as
:func:`sdsnn_bio.data.registry.encode_split`) and are trained on with the configuration's learner
(``learning.batch_size``, 2 threads). The epoch time is extrapolated::

    epoch = ceil(train_size / batch_size) * median(seconds per batch)

(``--train-size``: by default the size of the dataset's training split, :data:`TRAIN_SIZES`). The
encoding runs once per run (``prepare_data``), not per epoch: it is timed per sample and reported
apart. The development step, once per epoch, is not included.

Generated samples:

* event datasets: ``--events`` events per recording (default 300 000) over ``--duration`` seconds
  (default 6 s: a DVS-Gesture gesture), uniform in time, polarity random, positions drawn around a
  point that circles the sensor (sigma 1/8 of the sensor side), so that the events are spatially
  concentrated as a moving hand's are;
* image datasets: uniform random intensities in [0, 1].

The cost of the learner depends little on the inputs' content: its convolutions are dense
products, its fully-connected input layer a sparse one (input spikes per sample are printed).

    python benchmarks/epoch_time.py examples/configs/released_dvs_gesture_scnn.toml --batches 5
    python benchmarks/epoch_time.py examples/configs/released_cifar10.toml --batches 20
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

if __name__ == "__main__":
    # Before NumPy loads OpenBLAS, which reads it once: OpenBLAS's short thread timeout unless the
    # user set one, as the sdsnn-bio command does (sdsnn_bio.blas).
    from sdsnn_bio.blas import prefer_short_thread_timeout

    prefer_short_thread_timeout()

import numpy as np  # noqa: E402  (after the timeout above)

from sdsnn_bio.blas import describe_thread_timeout  # noqa: E402

#: Training-split sizes of the datasets (for ``--train-size``'s default).
TRAIN_SIZES = {"dvs_gesture": 1077, "cifar10": 50000, "nmnist": 60000, "mnist": 60000}
THREADS = 2


def generated_sample(descriptor, rng, n_events: int, duration_s: float):
    """One generated sample of ``descriptor``'s native size (see the module docstring)."""
    width, height, channels = descriptor.shape
    if descriptor.kind == "images":
        return rng.random((height, width, channels))
    from sdsnn_bio.data.format import EVENT_DTYPE

    t = np.sort(rng.integers(0, int(duration_s * 1e6), n_events))
    angle = 2 * np.pi * t / (duration_s * 1e6)
    centre_x = width / 2 + width / 4 * np.cos(angle)
    centre_y = height / 2 + height / 4 * np.sin(angle)
    events = np.zeros(n_events, dtype=EVENT_DTYPE)
    events["x"] = np.clip(np.rint(rng.normal(centre_x, width / 8)), 0, width - 1)
    events["y"] = np.clip(np.rint(rng.normal(centre_y, height / 8)), 0, height - 1)
    events["t"] = t
    events["p"] = rng.integers(0, 2, n_events)
    return events


def encoded_batch(config, params, rng, batch_size: int, n_events: int, duration_s: float):
    """A batch of generated samples through the configuration's down-sampling and encoding.

    Returns the samples ``(channels, steps)`` and the encoding time per sample in seconds.
    """
    descriptor = config.dataset()
    shape = config.input_shape()
    encode = descriptor.encoding(config.data.encoding).load()
    downsample = None
    if descriptor.kind == "events" and tuple(shape[:2]) != tuple(descriptor.shape[:2]):
        from tonic.transforms import Downsample

        downsample = Downsample(sensor_size=descriptor.shape, target_size=shape[:2])
    samples, seconds = [], 0.0
    for _ in range(batch_size):
        sample = generated_sample(descriptor, rng, n_events, duration_s)
        start = time.perf_counter()
        if downsample is not None:
            sample = downsample(sample)
        samples.append(encode(sample, shape=shape, dt=params.dt, n_steps=params.n_steps, rng=rng))
        seconds += time.perf_counter() - start
    return samples, seconds / batch_size


def main(argv=None) -> int:
    """Time ``--batches`` training batches and print the extrapolated epoch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--batches", type=int, default=5, help="timed batches (after one warm-up batch)")
    parser.add_argument("--train-size", type=int, default=0, help="training samples per epoch (default: "
                        "the dataset's training split, TRAIN_SIZES)")
    parser.add_argument("--events", type=int, default=300_000, help="events per generated recording")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per generated recording")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from sdsnn_bio.config import load_config
    from sdsnn_bio.learning.learner import InputBatch, Learner
    from sdsnn_bio.model import initial_structure

    config = load_config(args.config)
    params = config.network_parameters()
    name = config.dataset().name
    train_size = args.train_size or TRAIN_SIZES.get(name, 0)
    if train_size < 1:
        raise SystemExit(f"--train-size: no default for dataset {name!r}; give it")
    batch_size = config.learning.batch_size
    rng = np.random.default_rng(args.seed)
    structure = initial_structure(params, rng)
    learner = Learner(structure, params.layer_dynamics(), config.learning_parameters(), n_threads=THREADS)
    print(f"config {args.config}: dataset {name}, input {'x'.join(map(str, config.input_shape()))} "
          f"({config.data.encoding or 'default'} encoding), {params.n_steps} steps, network "
          f"{'-'.join(map(str, params.population_sizes))}, batch {batch_size}, learner backend "
          f"{learner.backend}, {THREADS} threads")
    print(f"{describe_thread_timeout()}; load average at start {os.getloadavg()[0]:.2f}")
    seconds, encoding, spikes = [], [], []
    for index in range(args.batches + 1):
        samples, per_sample = encoded_batch(config, params, rng, batch_size, args.events, args.duration)
        labels = rng.integers(0, params.n_output, batch_size)
        start = time.perf_counter()
        learner.train_step(InputBatch.from_samples(samples, params.n_steps, params.n_input), labels)
        if index:  # the first batch warms up (caches, BLAS threads)
            seconds.append(time.perf_counter() - start)
            encoding.append(per_sample)
            spikes.extend(len(channels) for channels, _ in samples)
    batches_per_epoch = math.ceil(train_size / batch_size)
    per_batch = statistics.median(seconds)
    epoch = batches_per_epoch * per_batch
    print(f"seconds per training batch: median {per_batch:.3f} (min {min(seconds):.3f}, max "
          f"{max(seconds):.3f}) over {len(seconds)} batches; input spikes per sample {np.mean(spikes):.0f}")
    print(f"one epoch = ceil({train_size} / {batch_size}) = {batches_per_epoch} batches x {per_batch:.3f} s "
          f"= {epoch:.0f} s ({epoch / 3600:.2f} h); slowest batch: {batches_per_epoch * max(seconds) / 3600:.2f} h")
    print(f"encoding (once per run, not per epoch): {statistics.median(encoding) * 1e3:.1f} ms per sample, "
          f"{train_size * statistics.median(encoding):.0f} s for the training split")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
