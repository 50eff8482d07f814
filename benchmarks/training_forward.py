"""Training throughput with the kernel's forward pass versus Brian2's (``learning.forward``).

Trains the main job's network (``examples/configs/embedded.toml``: 2312-800-10, 30 steps of 10 ms,
batches of 32, augmentation by up to 2 pixels, its learning rate and loss) on recordings of the
embedded training split, twice from the same initial structure: once with ``learning.forward =
"kernel"`` (the learner simulates each batch) and once with ``"brian2"`` (each batch simulated by
the Brian2 network under the Cython target, weights pushed before every batch, the learner training
from the ``SpikeMonitor`` recordings). Both see the same batches in the same order.

A first batch of each path is untimed (Brian2 generates and compiles its code objects there, or
finds them in the cache). Then ``--rounds`` rounds, each one timed pass of each path over
``--samples`` recordings (paths take turns, so a change of load hits both). Printed: samples/s per
pass, their medians and ratio, the Brian2 path's time split (Brian2 run + weight push, and the
learner), the number of Cython modules compiled during the timed passes (0: no batch recompiles),
and whether both paths still hold the same weights at the end (max |difference|). The load average
is printed: on a shared machine the numbers move with it.

    python benchmarks/training_forward.py                        # 320 recordings, 2 rounds
    python benchmarks/training_forward.py --samples 640 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    # Before NumPy loads OpenBLAS, which reads it once: OpenBLAS's short thread timeout unless the
    # user set one, as the sdsnn-bio command does (sdsnn_bio.blas).
    from sdsnn_bio.blas import prefer_short_thread_timeout

    prefer_short_thread_timeout()

import numpy as np  # noqa: E402  (after the timeout above)

from sdsnn_bio.blas import describe_thread_timeout  # noqa: E402

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "configs" / "embedded.toml"


def cache_modules(directory: Path) -> int:
    """Compiled Cython modules in Brian2's cache ``directory``."""
    return sum(1 for path in directory.rglob("*") if path.suffix in (".so", ".pyd"))


def main(argv=None) -> int:
    """Run the benchmark (options: see ``--help``); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--samples", type=int, default=320, help="recordings per timed pass")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "sdsnn_forward_bench_cache"),
                        help="Brian2 Cython cache (kept between runs: only the first run compiles)")
    args = parser.parse_args(argv)

    from sdsnn_bio.config import load_config
    from sdsnn_bio.data import events_to_spikes, load_dataset
    from sdsnn_bio.forward import training_forward
    from sdsnn_bio.learning.augment import augment_samples, batch_shifts
    from sdsnn_bio.learning.learner import InputBatch, Learner
    from sdsnn_bio.model import SpikingNetwork, configure_brian2, initial_structure

    config = load_config(args.config)
    params = config.network_parameters()
    learning = config.learning
    dataset = load_dataset(None, split="train")
    n_samples = args.samples + learning.batch_size  # the first batch is the untimed warm-up
    if n_samples > len(dataset):
        raise SystemExit(f"--samples: the embedded training split has {len(dataset)} recordings")
    samples = [events_to_spikes(dataset[k][0], params.dt, params.n_steps) for k in range(n_samples)]
    labels = np.asarray([dataset[k][1] for k in range(n_samples)])
    batches = []
    for index, start in enumerate(range(0, n_samples, learning.batch_size)):
        chunk = samples[start:start + learning.batch_size]
        if learning.augment_max_shift:
            chunk = augment_samples(chunk, batch_shifts(config.run.seed, 0, index, len(chunk),
                                                        learning.augment_max_shift), config.input_shape())
        batches.append((InputBatch.from_samples(chunk, params.n_steps, params.n_input),
                        labels[start:start + learning.batch_size]))
    warm_up, timed_batches = batches[0], batches[1:]

    cache = Path(args.cache_dir)
    configure_brian2("cython", cache)
    structure = initial_structure(params, np.random.default_rng(config.run.seed))
    paths = {}
    for name in ("kernel", "brian2"):
        mine = copy.deepcopy(structure)
        learner = Learner(mine, params.layer_dynamics(), config.learning_parameters(), n_threads=args.threads)
        learner.optimizer.learning_rate = learning.learning_rate
        network = SpikingNetwork(mine, params) if name == "brian2" else None
        paths[name] = training_forward(name, learner, network, mine)
    print(f"network {'-'.join(map(str, params.population_sizes))}, {params.n_steps} steps of {params.dt}, "
          f"batch {learning.batch_size}, {args.threads} threads, learner backend "
          f"{paths['kernel'].learner.backend}; {args.samples} timed recordings per pass, {args.rounds} rounds")
    print(f"{describe_thread_timeout()}; load average at start {os.getloadavg()[0]:.2f}")

    brian2_seconds = [0.0]
    record = paths["brian2"].record

    def timed_record(batch):
        tick = time.perf_counter()
        try:
            return record(batch)
        finally:
            brian2_seconds[0] += time.perf_counter() - tick

    paths["brian2"].record = timed_record
    for name, path in paths.items():
        tick = time.perf_counter()
        path.train_step(*warm_up)
        print(f"{name:>7}: first batch (Brian2 code generation/compilation or cache) "
              f"{time.perf_counter() - tick:.1f} s")
    modules_before = cache_modules(cache)
    rates = {name: [] for name in paths}
    brian2_share = []
    for round_ in range(args.rounds):
        for name, path in paths.items():
            brian2_seconds[0] = 0.0
            load = os.getloadavg()[0]
            tick = time.perf_counter()
            for batch, batch_labels in timed_batches:
                path.train_step(batch, batch_labels)
            wall = time.perf_counter() - tick
            rates[name].append(args.samples / wall)
            split = ""
            if name == "brian2":
                brian2_share.append(brian2_seconds[0] / wall)
                split = (f"; Brian2 run + weight push {brian2_seconds[0]:.2f} s, learner "
                         f"{wall - brian2_seconds[0]:.2f} s")
            print(f"{name:>7}: round {round_ + 1}: {rates[name][-1]:7.1f} samples/s ({wall:.2f} s{split}; "
                  f"load average {load:.2f} -> {os.getloadavg()[0]:.2f})")
    compiled = cache_modules(cache) - modules_before
    kernel, brian2 = (float(np.median(rates[name])) for name in ("kernel", "brian2"))
    print(f"median samples/s: kernel {kernel:.1f}, brian2 {brian2:.1f}; kernel / brian2 = {kernel / brian2:.2f}x; "
          f"Brian2's share of the brian2 path {np.median(brian2_share):.0%}")
    print(f"Cython modules compiled during the timed passes: {compiled}")
    difference = max(float(np.max(np.abs(a.weight - b.weight))) for a, b in zip(
        paths["kernel"].learner.structure.projections, paths["brian2"].learner.structure.projections))
    print(f"after {1 + args.rounds * len(timed_batches)} identical batches per path: max |weight difference| "
          f"{difference:.3g}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
