"""SCNN training throughput and peak memory: sdsnn_bio versus snnTorch, measured in one run.

Both train the N-MNIST SCNN of ``examples/configs/released_nmnist_scnn.toml``
(``2-15C3-AP2-40C3-AP2-300FC-10``: 3x3 convolutions with padding 1, average pooling of the spikes
by 2, no biases) with the preset's settings: T = 20 steps, LIF neurons with decay 0.2 per step,
threshold 0.5, reset to 0, the rectangular surrogate of width 1, the rate MSE loss (mean output
spikes per step against one-hot labels), Adam (lr 1e-3), batch 100 (``--batch-size``), 2 threads,
on the same input batches: recordings of the embedded dataset (34x34x2) in the preset's frames
encoding. The time per batch includes building the input batch from the binned events, forward,
backward and the optimiser step.

snnTorch's network is written the way its tutorials write one (``nn.Conv2d``, ``F.avg_pool2d``,
``nn.Linear``, ``snn.Leaky`` with ``reset_mechanism="zero"``, a time loop in ``forward``; the
surrogate is a ``torch.autograd.Function``, as in the tutorial on custom surrogates) and starts
from sdsnn_bio's initial weights (:func:`torch_network` copies them; a conv kernel element
``K[c_out, c_in, dy, dx]`` is sdsnn_bio's parameter ``[(c_in*k + dy)*k + dx, c_out]``). It computes
in float32 (PyTorch's default), sdsnn_bio in float64 (its default), and ``sdsnn_bio[float32]``
is the same learner with ``learning.dtype = "float32"``. sdsnn_bio's backend is the preset's
``"auto"``: with Numba installed, the compiled event-driven kernels of shared projections
(``sdsnn_bio.learning.shared``). Update order: snn.Leaky adds the input before
its threshold test, sdsnn_bio after (``sdsnn_bio.learning.kernel``); the work per step is the same.

Each framework runs in a fresh subprocess of its own and the frameworks take turns (``--rounds``
rounds x ``--repeats`` timed repeats of ``--batches`` batches, after one warm-up batch); the parent
prints the median and the worst case over all repeats. Memory is read from ``/proc/self/status``
by the helpers of ``benchmarks/throughput.py``: ``RSS before`` once the data are loaded, then the
peak counter is reset (``/proc/self/clear_refs``) so that ``training peak`` (VmHWM) is the highest
resident memory while building the network and training. ``resource.getrusage(...).ru_maxrss``
could not be reset and would include the data loading and, for snnTorch, the import of torch; the
fresh subprocess keeps one framework's memory out of the other's.

    PYTHONPATH=$PWD /work/venv-bench/bin/python benchmarks/throughput_scnn.py --rounds 2

``--config`` takes another SCNN configuration and ``--data-root`` its dataset folder (default: the
N-MNIST preset on the embedded dataset), e.g. the MNIST SCNN on MNIST training digits::

    python benchmarks/throughput_scnn.py --config examples/configs/released_mnist_scnn.toml \
        --data-root DIR_WITH_MNIST_IDX --batches 1 --repeats 3 --rounds 1
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

PRESET = Path(__file__).resolve().parents[1] / "examples" / "configs" / "released_nmnist_scnn.toml"
THREADS = 2
FRAMEWORKS = ("sdsnn_bio", "sdsnn_bio[float32]", "snntorch")


@functools.lru_cache(maxsize=1)
def helpers():
    """``benchmarks/throughput.py`` as a module (memory, machine and worker helpers)."""
    spec = importlib.util.spec_from_file_location("throughput", Path(__file__).with_name("throughput.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preset(path=PRESET):
    """The preset's configuration and its network parameters."""
    from sdsnn_bio.config import load_config

    config = load_config(path)
    return config, config.network_parameters()


def load_batches(config, params, n_batches: int, batch_size: int, seed: int = 0, root=None):
    """``n_batches`` batches of ``(samples, labels)`` of the preset's dataset and encoding.

    From the dataset folder ``root`` (None: the embedded dataset), a class-balanced subset drawn
    with ``seed``.
    """
    from sdsnn_bio.data.registry import encode_split

    wanted = n_batches * batch_size
    samples, labels, _ = encode_split(
        config.dataset(), "train", root=root, subset=wanted, seed=seed, encoding=config.data.encoding,
        input_size=config.data.input_size, dt=params.dt, n_steps=params.n_steps,
    )
    if len(samples) < wanted:
        raise ValueError(f"the dataset has {len(samples)} training samples, fewer than {n_batches} "
                         f"batches of {batch_size}")
    order = np.random.default_rng(seed).permutation(wanted)
    pairs = [samples[int(k)] for k in order]
    return [(pairs[b * batch_size:(b + 1) * batch_size], labels[order[b * batch_size:(b + 1) * batch_size]])
            for b in range(n_batches)]


def sdsnn_learner(config, params, seed: int = 0, dtype: str | None = None):
    """The preset's structure (initial weights from ``seed``) and its learner on 2 threads.

    ``dtype``: the learner's floating-point type (None: the preset's).
    """
    import dataclasses

    from sdsnn_bio.learning.learner import Learner
    from sdsnn_bio.model import initial_structure

    structure = initial_structure(params, np.random.default_rng(seed))
    settings = config.learning_parameters()
    if dtype is not None:
        settings = dataclasses.replace(settings, dtype=dtype)
    learner = Learner(structure, params.layer_dynamics(), settings, n_threads=THREADS)
    return structure, learner


def torch_network(structure, params, width: float = 1.0, dtype=None):
    """The same network in snnTorch, from sdsnn_bio's structure and with its initial weights.

    Every projection of ``structure`` becomes ``[nn.AvgPool2d] + nn.Conv2d`` (convolution),
    ``[nn.AvgPool2d] + flatten + nn.Linear`` (dense fed by channels) or ``nn.Linear``, followed by
    an ``snn.Leaky`` of the target layer's decay, threshold and reset, whose surrogate is the
    rectangular one of ``width``. Parameters in ``dtype`` (default: torch's, float32).
    """
    import snntorch as snn
    import torch

    class Rectangular(torch.autograd.Function):
        """Heaviside step; gradient ``1/width`` where ``|v - threshold| < width/2``.

        sdsnn_bio's ``rectangular`` surrogate.
        """

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x.abs() < 0.5 * width).to(grad.dtype) / width

    dynamics = params.layer_dynamics()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pools, self.projections, self.neurons = [], torch.nn.ModuleList(), torch.nn.ModuleList()
            for projection in structure.projections:
                geometry = projection.geometry
                weight = torch.as_tensor(projection.weight, dtype=dtype or torch.get_default_dtype())
                if geometry is None:
                    layer = torch.nn.Linear(*weight.shape, bias=False)
                    layer.weight.data = weight.T.contiguous()
                    self.pools.append((None, False))
                elif geometry.kind == "convolution":
                    c_in, k = geometry.source_shape[0], geometry.kernel_size
                    layer = torch.nn.Conv2d(c_in, geometry.out_channels, k, padding=geometry.padding, bias=False)
                    layer.weight.data = weight.reshape(c_in, k, k, -1).permute(3, 0, 1, 2).contiguous()
                    self.pools.append((geometry.pool, False))
                else:
                    layer = torch.nn.Linear(*weight.shape, bias=False)
                    layer.weight.data = weight.T.contiguous()
                    self.pools.append((geometry.pool, True))
                self.projections.append(layer)
                target = dynamics[projection.target]
                self.neurons.append(snn.Leaky(beta=target.decay, threshold=target.threshold,
                                              reset_mechanism="zero", spike_grad=Rectangular.apply))
            self.input_shape = structure.population("input").shape or (params.n_input,)

        def forward(self, x):
            """Output spike counts ``(B, classes)`` and spikes per layer of inputs ``(T, B, ...)``."""
            potentials = [neuron.reset_mem() for neuron in self.neurons]
            count, hidden = 0, [0] * len(self.neurons)
            for t in range(x.shape[0]):
                spikes = x[t]
                for i, (layer, neuron) in enumerate(zip(self.projections, self.neurons)):
                    pool, flatten = self.pools[i]
                    if pool and pool > 1:
                        spikes = torch.nn.functional.avg_pool2d(spikes, pool)
                    if flatten:
                        spikes = spikes.flatten(1)
                    spikes, potentials[i] = neuron(layer(spikes), potentials[i])
                    hidden[i] = hidden[i] + spikes.detach().sum()
                count = count + spikes
            return count, hidden

    return Net()


def run_sdsnn(config, params, batches, repeats: int, dtype: str | None = None) -> tuple[list[float], dict]:
    """Samples/s of each timed repeat of sdsnn_bio's learner (``dtype``: None, the preset's), and its
    backend and spike counts."""
    from sdsnn_bio.learning.learner import InputBatch

    _, learner = sdsnn_learner(config, params, dtype=dtype)
    n_steps, n_input = params.n_steps, params.n_input

    def step(samples, labels):
        return learner.train_step(InputBatch.from_samples(samples, n_steps, n_input), labels).spike_counts

    step(*batches[0])  # warm-up
    rates, counts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for samples, labels in batches:
            counts.append(step(samples, labels))
        rates.append(sum(len(labels) for _, labels in batches) / (time.perf_counter() - start))
    return rates, {"backend": f"{learner.backend} {learner.dtype.name}", "spikes_per_sample": _mean_counts(counts, len(batches[0][1]))}


def run_snntorch(config, params, batches, repeats: int) -> tuple[list[float], dict]:
    """Samples/s of each timed repeat of the snnTorch network, and torch's version and spike counts."""
    import torch

    from sdsnn_bio.model import initial_structure

    torch.set_num_threads(THREADS)
    structure = initial_structure(params, np.random.default_rng(0))
    if config.learning.surrogate != "rectangular":
        raise ValueError("the snnTorch network has the rectangular surrogate, the preset "
                         f"{config.learning.surrogate!r}")
    net = torch_network(structure, params, config.learning.surrogate_scale or 1.0)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning.learning_rate)
    n_steps, n_input, n_classes = params.n_steps, params.n_input, params.n_output
    shape = tuple(structure.population("input").shape)
    names = [p.target for p in structure.projections]

    def step(samples, labels):
        x = torch.zeros((n_steps, len(samples), n_input))
        for b, (channels, steps) in enumerate(samples):
            x[torch.as_tensor(steps), b, torch.as_tensor(channels)] = 1.0
        count, spikes = net(x.reshape(n_steps, len(samples), *shape))
        target = torch.nn.functional.one_hot(torch.as_tensor(labels), n_classes).to(count.dtype)
        loss = torch.nn.functional.mse_loss(count / n_steps, target)  # = sdsnn_bio's rate_mse
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return {name: float(s) for name, s in zip(names, spikes)}

    step(*batches[0])
    rates, counts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for samples, labels in batches:
            counts.append(step(samples, labels))
        rates.append(sum(len(labels) for _, labels in batches) / (time.perf_counter() - start))
    return rates, {"backend": f"torch {torch.__version__}",
                   "spikes_per_sample": _mean_counts(counts, len(batches[0][1]))}


def _mean_counts(counts: list[dict], batch_size: int) -> dict:
    return {name: statistics.mean(c[name] for c in counts) / batch_size for name in counts[0]}


def worker(framework: str, n_batches: int, repeats: int, batch_size: int, path=PRESET, root=None) -> None:
    """One framework's measurement in this (fresh) process; prints one JSON line.

    ``path``: the configuration; ``root``: its dataset's folder (None: the embedded dataset).
    """
    tools = helpers()
    config, params = preset(path)
    batches = load_batches(config, params, n_batches, batch_size, root=root)
    rss_before = tools._status_mib("VmRSS")
    reset = tools._reset_peak_memory()
    if framework == "snntorch":
        rates, info = run_snntorch(config, params, batches, repeats)
    else:
        rates, info = run_sdsnn(config, params, batches, repeats,
                                "float32" if framework == "sdsnn_bio[float32]" else None)
    peak = tools._status_mib("VmHWM")
    print(json.dumps({"framework": framework, "batch_size": batch_size, "samples_per_second": rates,
                      "rss_before_mib": rss_before, "training_peak_mib": peak if reset else None, **info}))


def summarise(runs: dict) -> dict:
    """Median, worst and best samples/s and the memory of each framework's measured runs."""
    rows = {}
    for framework, measured in runs.items():
        if not measured:
            continue
        rates = [r for run in measured for r in run["samples_per_second"]]
        peaks = [run["training_peak_mib"] for run in measured if run["training_peak_mib"]]
        rows[framework] = {
            "median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "rss_before": max(run["rss_before_mib"] for run in measured),
            "peak": max(peaks) if peaks else float("nan"),
            "extra": max((run["training_peak_mib"] - run["rss_before_mib"] for run in measured
                          if run["training_peak_mib"]), default=float("nan")),
            "others": max(run.get("others_cores", 0.0) for run in measured),
            "spikes": measured[0]["spikes_per_sample"],
            "backend": measured[0].get("backend", ""),
        }
    return rows


def turns(frameworks, rounds: int, timeouts=None) -> list[tuple[str, str | None]]:
    """The order of the workers: ``(framework, OPENBLAS_THREAD_TIMEOUT or None)`` per worker.

    Every round runs every framework once per timeout value (one after another, so that both values
    see the same state of the machine), the values' order reversed every other round (28, 4 / 4, 28
    / ...), which cancels a steady drift of the machine's speed.
    """
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    values = list(timeouts) if timeouts else [None]
    return [(framework, value) for round_ in range(rounds) for framework in frameworks
            for value in (values if round_ % 2 == 0 else values[::-1])]


def label(framework: str, timeout: str | None) -> str:
    """A row's name: the framework, with its OpenBLAS thread timeout when several are compared."""
    return framework if timeout is None else f"{framework} timeout={timeout}"


def timeout_value(text: str) -> str:
    """``--openblas-thread-timeouts`` values: integers from 0 (OpenBLAS's default, 28) to 30."""
    if not text.isdigit() or int(text) > 30:
        raise argparse.ArgumentTypeError(f"expected an OPENBLAS_THREAD_TIMEOUT from 0 to 30, got {text!r}")
    return text


def main(argv=None, run=None) -> None:
    """Run the frameworks in turns in subprocesses and print the comparison.

    ``run(command, environment)`` runs one worker (default: ``benchmarks/throughput.py``'s
    ``run_worker``); tests replace it.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2, help="batches per repeat")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per round")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every framework")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each worker, wait up to this long for other processes to use "
                             "< 0.15 core (shared machines)")
    parser.add_argument("--config", type=Path, default=PRESET,
                        help="an SCNN configuration (default: the N-MNIST preset)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="the configuration's dataset folder (default: the embedded dataset)")
    parser.add_argument("--openblas-thread-timeouts", nargs="+", type=timeout_value, metavar="N",
                        help="run every framework once per value in each round, in alternating order, "
                             "e.g. '28 4' (OpenBLAS's default against the short one that the workers "
                             "get otherwise): one row per framework and value, and the ratio of the medians")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.batches, args.repeats, args.batch_size, args.config, args.data_root)
        return
    order = turns(args.frameworks, args.rounds, args.openblas_thread_timeouts)
    tools = helpers()
    run = run or tools.run_worker
    # The same for both frameworks: thread counts and OpenBLAS's short thread timeout (unless set
    # by the caller), see benchmarks/throughput.py.
    environment = tools.thread_environment(THREADS)
    environment.setdefault("OMP_WAIT_POLICY", "ACTIVE")  # see benchmarks/throughput.py
    timeouts = args.openblas_thread_timeouts
    in_force = (tools.describe_thread_timeout(environment) if not timeouts
                else f"OPENBLAS_THREAD_TIMEOUT {' and '.join(timeouts)} in alternating order")
    print(f"machine: {tools.machine()}")
    print(f"versions: {tools.versions()}")
    print(f"command: python benchmarks/throughput_scnn.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    config, params = preset(args.config)
    layers = "-".join((str(params.input_shape[0]), *config.network.layers, str(params.n_output)))
    print(f"network {layers} ({args.config.name}), batch {args.batch_size}, {THREADS} threads, "
          f"{args.rounds} rounds x {args.repeats} repeats x {args.batches} batches; "
          f"{in_force}; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    names = list(dict.fromkeys(label(framework, value) for framework, value in order))
    runs, failures = {name: [] for name in names}, {}
    for framework, value in order:
        name = label(framework, value)
        if name in failures:
            continue
        if args.quiet_wait > 0:
            tools.wait_until_quiet(0.15, args.quiet_wait)
        command = [sys.executable, __file__, "--worker", framework, "--batches", str(args.batches),
                   "--config", str(args.config), *(["--data-root", args.data_root] if args.data_root else []),
                   "--repeats", str(args.repeats), "--batch-size", str(args.batch_size)]
        done, others = run(command, environment if value is None
                           else dict(environment, OPENBLAS_THREAD_TIMEOUT=value))
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            failures[name] = lines[-1] if lines else "failed"
            continue
        runs[name].append({**json.loads(done.stdout.strip().splitlines()[-1]), "others_cores": others})
        measured = " ".join(f"{rate:.2f}" for rate in runs[name][-1]["samples_per_second"])
        print(f"  {name}: {measured} samples/s, others {others:.2f} cores", file=sys.stderr, flush=True)
    print("columns: samples/s median (slowest-fastest repeat); memory in MiB; others = cores used by "
          "other processes meanwhile; spikes per sample in each layer")
    rows = summarise(runs)
    for name in names:
        if name in failures:
            print(f"{name:>18} not measured: {failures[name]}")
            continue
        row = rows[name]
        spikes = ", ".join(f"{layer} {value:.0f}" for layer, value in row["spikes"].items())
        print(f"{name:>18} {row['median']:8.2f} ({row['min']:.2f}-{row['max']:.2f})  RSS before "
              f"{row['rss_before']:.0f}  training peak {row['peak']:.0f} (+{row['extra']:.0f})  others "
              f"{row['others']:.2f}  [{row['backend']}]  spikes: {spikes}")
    for value in timeouts or [None]:
        for mine in ("sdsnn_bio", "sdsnn_bio[float32]"):
            ours, theirs = rows.get(label(mine, value)), rows.get(label("snntorch", value))
            if ours and theirs:
                print(f"{label(mine, value)} / {label('snntorch', value)} throughput = "
                      f"{ours['median'] / theirs['median']:.2f}x (worst case, our slowest / their fastest repeat: "
                      f"{ours['min'] / theirs['max']:.2f}x), training peak memory = "
                      f"{ours['peak'] / theirs['peak']:.2f}x (+training {ours['extra'] / theirs['extra']:.2f}x)")
    if timeouts and len(timeouts) >= 2:
        first, last = timeouts[0], timeouts[-1]
        for framework in args.frameworks:
            before, after = rows.get(label(framework, first)), rows.get(label(framework, last))
            if before and after:
                print(f"{framework}: OPENBLAS_THREAD_TIMEOUT={last} / ={first} throughput = "
                      f"{after['median'] / before['median']:.2f}x (medians; slowest / fastest repeat "
                      f"{after['min'] / before['max']:.2f}x, fastest / slowest {after['max'] / before['min']:.2f}x)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
