"""Where the time of one sdsnn_bio training step goes: phase by phase, per backend and thread count.

Same network, data and parameters as ``benchmarks/throughput.py`` (2312-512-10, batch 32, samples of
the embedded dataset binned to T steps). For each phase of ``Learner.train_step`` it prints the
median wall time and the median CPU time of this process (CPU time is less sensitive to other
processes on a shared machine; with 2 threads it adds both threads up):

* ``input batch``: ``InputBatch.from_samples`` (CSR of the binned events);
* ``forward hidden_1`` / ``forward output``: one layer's forward pass (input currents + LIF loop);
* ``backward + weight gradients``: ``Learner.gradients`` (loss, BPTT, every dL/dW);
* ``Adam``: the optimiser step over every weight;
* ``train_step``: all of it (plus the read-out and the spike counts).

    python benchmarks/profile_step.py                       # T=30 and T=300, both backends, 1 and 2 threads
    python benchmarks/profile_step.py --steps 30 --threads 2 --backends numba

Older versions of the package (no backends) are profiled with ``--backends numpy`` and
``PYTHONPATH`` pointing at them.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # Before NumPy loads OpenBLAS, which reads it once: OpenBLAS's short thread timeout unless the
    # user set one, as the sdsnn-bio command does (sdsnn_bio.blas).
    from sdsnn_bio.blas import prefer_short_thread_timeout

    prefer_short_thread_timeout()

import numpy as np  # noqa: E402  (after the timeout above)

from sdsnn_bio.blas import describe_thread_timeout  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import ARCH, BATCH, WINDOW_MS, load_batches  # noqa: E402


def measure(function, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU milliseconds of ``function()`` over ``repeats`` calls, and its result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return 1e3 * statistics.median(walls), 1e3 * statistics.median(cpus), result


def profile(n_steps: int, backend: str, n_threads: int, repeats: int, batches) -> list[tuple]:
    from brian2 import ms

    from sdsnn_bio.learning.kernel import integrate_layer
    from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
    from sdsnn_bio.model import NetworkParameters, initial_structure

    params = NetworkParameters(hidden_sizes=(ARCH[1],), n_steps=n_steps, dt=(WINDOW_MS / n_steps) * ms)
    structure = initial_structure(params, np.random.default_rng(0))
    options = {"backend": backend} if "backend" in inspect.signature(Learner).parameters else {}
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=n_threads,
                      **options)  # (an sdsnn_bio without backends is profiled as "numpy")
    for samples, labels in batches:  # warm-up: compilation or cache load, weights leave their start
        learner.train_step(InputBatch.from_samples(samples, n_steps, ARCH[0]), labels)
    samples, labels = batches[0]
    rows = []
    wall, cpu, batch = measure(lambda: InputBatch.from_samples(samples, n_steps, ARCH[0]), repeats)
    rows.append(("input batch", wall, cpu))
    presynaptic = None
    for name in learner.order:
        weight = structure.projection_into(name).weight
        alive = structure.population(name).alive

        if getattr(learner, "backend", "numpy") == "numba":
            def forward_layer(pre=presynaptic, weight=weight, name=name):
                return learner._integrate_fused(batch, pre, weight, name, None)
        else:
            def forward_layer(pre=presynaptic, weight=weight, name=name, alive=alive):
                source = batch.matrix if pre is None else pre
                currents = learner._currents(source, weight, n_steps, BATCH)
                return integrate_layer(currents, learner.dynamics[name], alive)

        wall, cpu, trace = measure(forward_layer, repeats)
        rows.append((f"forward {name}", wall, cpu))
        presynaptic = trace.spikes
    forward = learner.simulate(batch)
    wall, cpu, (_, grads) = measure(lambda: learner.gradients(batch, forward, labels), repeats)
    rows.append(("backward + weight gradients", wall, cpu))
    weights = {p.name: p.weight.copy() for p in structure.projections}
    wall, cpu, _ = measure(lambda: learner.optimizer.update(weights, grads, learner.workers), repeats)
    rows.append(("Adam", wall, cpu))
    wall, cpu, _ = measure(
        lambda: learner.train_step(InputBatch.from_samples(samples, n_steps, ARCH[0]), labels), repeats
    )
    rows.append(("train_step", wall, cpu))
    hidden_rate = forward.traces["hidden_1"].spikes.mean()
    rows.append((f"(hidden spikes per neuron-step {hidden_rate:.4f}, input events per sample "
                 f"{batch.matrix.nnz / BATCH:.0f})", float("nan"), float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--backends", nargs="+", choices=["numba", "numpy"], default=["numba", "numpy"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"command: python benchmarks/profile_step.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{describe_thread_timeout()}; load average at start {os.getloadavg()[0]:.2f}")
    for n_steps in args.steps:
        batches = load_batches(n_steps, 3)
        for backend in args.backends:
            for n_threads in args.threads:
                print(f"\nT={n_steps}, backend {backend}, {n_threads} thread(s): "
                      f"{'wall ms':>9} {'CPU ms':>9}")
                for phase, wall, cpu in profile(n_steps, backend, n_threads, args.repeats, batches):
                    if np.isnan(wall):
                        print(f"  {phase}")
                    else:
                        print(f"  {phase:<30} {wall:>9.2f} {cpu:>9.2f}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
