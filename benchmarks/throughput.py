"""Training throughput and peak memory: sdsnn_bio versus snnTorch, measured in one run.

Both train the same 2312-512-10 LIF network (tau 20 ms, threshold 1, reset to 0, no refractory
period) with full BPTT, the fast-sigmoid surrogate (slope 10), cross-entropy on output spike rates
(logits = 10 * count / T), Adam (lr 1e-3), batch 32 (``--batch-size``), 2 threads, on the same input
batches: samples of the embedded dataset binned to T steps (T=30: 10 ms bins; T=300: 1 ms bins).
The time per batch includes building the input batch from binned events, forward, backward and the
optimiser step.

Each framework runs in its own subprocess (so each has its own memory measurements), and the
frameworks take turns: ``--rounds`` rounds, each running every framework once for ``--repeats``
timed repeats of ``--batches`` batches (after 2 warm-up batches), so that a change of load on a
shared machine hits all of them alike. The parent prints the median over all repeats and the ratios
of the medians. sdsnn_bio is measured with its default backend (Numba when installed) and, as
``sdsnn_bio[numpy]``, with its NumPy reference backend; ``sdsnn_bio[float32]`` is the default
backend training in float32 (``learning.dtype = "float32"``; the others train in float64, the
default), and its speed-up over ``sdsnn_bio`` is printed.

Memory (from ``/proc/self/status``): ``RSS before`` is the resident memory once the data are loaded
and before the model is built; the peak counter is then reset (``/proc/self/clear_refs``), so
``training peak`` is the highest resident memory while building the model and training (warm-up
included), and ``+training`` their difference.

Shared machines: ``others`` is the number of cores that other processes used while a framework ran
(the highest over its rounds; machine CPU time from /proc/stat minus the worker's, over the whole
worker including its data loading, when one core is idle). PyTorch's OpenMP threads slow down far
more than sdsnn_bio's when a core is taken by someone else: the workers run with
``OMP_WAIT_POLICY=ACTIVE`` (unless set otherwise), which protects PyTorch best, ``--quiet-wait``
waits for quiet moments, and the ratio of our slowest repeat to snnTorch's fastest is printed
beside the ratio of medians as a bound that noise cannot inflate.

    python benchmarks/throughput.py                 # T=30 and T=300
    python benchmarks/throughput.py --steps 30 --rounds 1 --repeats 2 --batches 5
    python benchmarks/throughput.py --frameworks sdsnn_bio sdsnn_bio[float32]   # float64 vs float32

snnTorch is optional (``pip install torch==2.13.0 snntorch``; keep numpy<2.4); without it its rows
say "not measured".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

ARCH = (2312, 512, 10)
BATCH = 32
TAU_MS = 20.0
WINDOW_MS = 300.0
THREADS = 2
FRAMEWORKS = ("sdsnn_bio", "sdsnn_bio[float32]", "sdsnn_bio[numpy]", "snntorch", "snntorch[1 thread]")
DEFAULT_FRAMEWORKS = FRAMEWORKS[:4]


def load_batches(n_steps: int, n_batches: int, seed: int = 0, batch_size: int = BATCH):
    """Binned samples of the embedded dataset (falls back to nothing else: no synthetic data)."""
    from brian2 import ms

    from sdsnn_bio.data import events_to_spikes, load_dataset

    dataset = load_dataset(None, split="train")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))[: n_batches * batch_size]
    if len(order) < n_batches * batch_size:
        raise ValueError(f"the dataset has {len(dataset)} samples, fewer than {n_batches} batches of {batch_size}")
    dt = (WINDOW_MS / n_steps) * ms
    samples = [events_to_spikes(dataset[int(k)][0], dt, n_steps) for k in order]
    labels = np.asarray([int(dataset[int(k)][1]) for k in order])
    return [
        (samples[b * batch_size:(b + 1) * batch_size], labels[b * batch_size:(b + 1) * batch_size])
        for b in range(n_batches)
    ]


def run_sdsnn(n_steps: int, batches, repeats: int, backend: str = "auto",
              dtype: str = "float64") -> tuple[list[float], dict]:
    from brian2 import ms

    from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
    from sdsnn_bio.model import NetworkParameters, initial_structure

    params = NetworkParameters(hidden_sizes=(ARCH[1],), n_steps=n_steps, dt=(WINDOW_MS / n_steps) * ms)
    structure = initial_structure(params, np.random.default_rng(0))
    options = {} if backend == "auto" else {"backend": backend}  # also runs versions without backends
    learning = LearningParameters() if dtype == "float64" else LearningParameters(dtype=dtype)
    learner = Learner(structure, params.layer_dynamics(), learning, n_threads=THREADS, **options)
    for samples, labels in batches[:2]:  # warm-up (and Numba's compilation or cache load)
        learner.train_step(InputBatch.from_samples(samples, n_steps, ARCH[0]), labels)
    rates, hidden_spikes = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for samples, labels in batches:
            step = learner.train_step(InputBatch.from_samples(samples, n_steps, ARCH[0]), labels)
            hidden_spikes.append(step.spike_counts["hidden_1"])
        rates.append(sum(len(labels) for _, labels in batches) / (time.perf_counter() - start))
    rate = statistics.mean(hidden_spikes) / (n_steps * len(batches[0][1]) * ARCH[1])
    return rates, {"backend": getattr(learner, "backend", "numpy"), "hidden_spikes_per_neuron_step": rate}


def run_snntorch(n_steps: int, batches, repeats: int, threads: int = THREADS) -> tuple[list[float], dict]:
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    beta = float(np.exp(-(WINDOW_MS / n_steps) / TAU_MS))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            grad = surrogate.fast_sigmoid(slope=10)
            self.fc1 = torch.nn.Linear(ARCH[0], ARCH[1], bias=False)
            self.lif1 = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero", spike_grad=grad)
            self.fc2 = torch.nn.Linear(ARCH[1], ARCH[2], bias=False)
            self.lif2 = snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero", spike_grad=grad)

        def forward(self, x):
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            count, hidden = 0, 0
            for t in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                count = count + spk2
                hidden = hidden + spk1.detach().sum()
            return count, hidden

    net = Net()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(samples, labels):
        x = torch.zeros((n_steps, len(samples), ARCH[0]))
        for b, (channels, steps) in enumerate(samples):
            x[torch.as_tensor(steps), b, torch.as_tensor(channels)] = 1.0
        count, hidden = net(x)
        loss = loss_fn(10.0 * count / n_steps, torch.as_tensor(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return float(hidden)

    for samples, labels in batches[:2]:
        step(samples, labels)
    rates, hidden_spikes = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for samples, labels in batches:
            hidden_spikes.append(step(samples, labels))
        rates.append(sum(len(labels) for _, labels in batches) / (time.perf_counter() - start))
    rate = statistics.mean(hidden_spikes) / (n_steps * len(batches[0][1]) * ARCH[1])
    return rates, {"backend": f"torch {torch.__version__}", "hidden_spikes_per_neuron_step": rate}


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_memory() -> bool:
    """Reset the peak resident memory (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def worker(framework: str, n_steps: int, n_batches: int, repeats: int, batch_size: int) -> None:
    batches = load_batches(n_steps, n_batches, batch_size=batch_size)
    rss_before = _status_mib("VmRSS")
    reset = _reset_peak_memory()
    if framework.startswith("snntorch"):
        rates, info = run_snntorch(n_steps, batches, repeats, 1 if framework.endswith("[1 thread]") else THREADS)
    else:
        backend = "numpy" if framework == "sdsnn_bio[numpy]" else "auto"
        dtype = "float32" if framework == "sdsnn_bio[float32]" else "float64"
        rates, info = run_sdsnn(n_steps, batches, repeats, backend, dtype)
    peak = _status_mib("VmHWM")
    print(json.dumps({
        "framework": framework, "n_steps": n_steps, "batch_size": batch_size, "samples_per_second": rates,
        "rss_before_mib": rss_before, "training_peak_mib": peak if reset else None,
        **info,
    }))


def _cpu_busy_seconds() -> float:
    """CPU time spent by the whole machine (all processes, all cores) since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until_quiet(max_cores: float, timeout: float) -> float:
    """Wait (at most ``timeout`` s) until other processes use less than ``max_cores`` cores over
    one second; returns the last measured use."""
    deadline = time.monotonic() + timeout
    while True:
        busy, start = _cpu_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        used = (_cpu_busy_seconds() - busy) / (time.monotonic() - start)
        if used < max_cores or time.monotonic() >= deadline:
            return used


def run_worker(command, environment) -> tuple[subprocess.CompletedProcess, float]:
    """Run one worker; also returns the cores that *other* processes used meanwhile (machine CPU
    time minus the worker's, over the wall time)."""
    busy, children, start = _cpu_busy_seconds(), _children_cpu_seconds(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.monotonic() - start
    others = ((_cpu_busy_seconds() - busy) - (_children_cpu_seconds() - children)) / wall
    return done, max(others, 0.0)


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f", {int(meminfo.readline().split()[1]) / 1024**2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = ""
    return f"{model}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("numpy", "scipy", "numba", "brian2", "torch", "snntorch"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--batches", type=int, default=10, help="batches per repeat")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per round")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every framework")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(DEFAULT_FRAMEWORKS),
                        help="'snntorch[1 thread]' (not run by default) is snnTorch on one thread: "
                             "a reference when other processes slow its 2 OpenMP threads down")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each worker, wait up to this long for other processes to use "
                             "< 0.15 core (shared machines)")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps[0], args.batches, args.repeats, args.batch_size)
        return
    environment = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS),
                       MKL_NUM_THREADS=str(THREADS))
    # PyTorch's OpenMP threads keep spinning between parallel regions instead of sleeping: on a
    # dedicated machine that is what they do anyway; on a shared one it keeps them from losing their
    # core to another process (with the default, PyTorch fell to 5% of its speed here). Only PyTorch
    # uses OpenMP among the frameworks measured.
    environment.setdefault("OMP_WAIT_POLICY", "ACTIVE")
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    print(f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"network {ARCH[0]}-{ARCH[1]}-{ARCH[2]}, batch {args.batch_size}, {THREADS} threads, "
          f"{args.rounds} rounds x {args.repeats} repeats x {args.batches} batches; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print("columns: median (min-max) over all timed repeats; memory in MiB; hidden rate = hidden "
          "spikes per neuron and step; others = cores used by other processes during the runs")
    print(f"{'T':>4} {'framework':>18} {'median samples/s':>17} {'(min-max)':>15} "
          f"{'RSS before':>11} {'training peak':>14} {'+training':>10} {'hidden rate':>12} "
          f"{'others':>7}")
    rows = {}
    for n_steps in args.steps:
        runs = {framework: [] for framework in args.frameworks}
        failures = {}
        for _ in range(args.rounds):
            for framework in args.frameworks:
                if framework in failures:
                    continue
                command = [sys.executable, __file__, "--worker", framework, "--steps", str(n_steps),
                           "--batches", str(args.batches), "--repeats", str(args.repeats),
                           "--batch-size", str(args.batch_size)]
                if args.quiet_wait > 0:
                    wait_until_quiet(0.15, args.quiet_wait)
                done, others = run_worker(command, environment)
                if done.returncode != 0:
                    lines = done.stderr.strip().splitlines()
                    failures[framework] = lines[-1] if lines else "failed"
                    continue
                runs[framework].append({**json.loads(done.stdout.strip().splitlines()[-1]),
                                        "others_cores": others})
        for framework in args.frameworks:
            if framework in failures:
                print(f"{n_steps:>4} {framework:>18} not measured: {failures[framework]}")
                continue
            measured = runs[framework]
            rates = [r for run in measured for r in run["samples_per_second"]]
            before = max(run["rss_before_mib"] for run in measured)
            peaks = [run["training_peak_mib"] for run in measured if run["training_peak_mib"]]
            peak = max(peaks) if peaks else float("nan")
            extra = max(run["training_peak_mib"] - run["rss_before_mib"] for run in measured
                        if run["training_peak_mib"]) if peaks else float("nan")
            others = max(run["others_cores"] for run in measured)
            row = {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                   "peak": peak, "extra": extra}
            rows[(n_steps, framework)] = row
            spread = f"({min(rates):.0f}-{max(rates):.0f})"
            print(f"{n_steps:>4} {framework:>18} {row['median']:>17.1f} {spread:>15} {before:>11.0f} "
                  f"{peak:>14.0f} {extra:>10.0f} "
                  f"{statistics.mean(run['hidden_spikes_per_neuron_step'] for run in measured):>12.4f} "
                  f"{others:>7.2f}")
    for n_steps in args.steps:
        for reference in (f for f in args.frameworks if f.startswith("snntorch")):
            theirs = rows.get((n_steps, reference))
            for framework in args.frameworks:
                ours = rows.get((n_steps, framework))
                if framework.startswith("snntorch") or not ours or not theirs:
                    continue
                print(f"T={n_steps}: {framework} / {reference} throughput = "
                      f"{ours['median'] / theirs['median']:.2f}x "
                      f"(worst case, our slowest / their fastest repeat: {ours['min'] / theirs['max']:.2f}x), "
                      f"training peak memory = {ours['peak'] / theirs['peak']:.2f}x "
                      f"(+training {ours['extra'] / theirs['extra']:.2f}x)")
        single, double = rows.get((n_steps, "sdsnn_bio[float32]")), rows.get((n_steps, "sdsnn_bio"))
        if single and double:
            print(f"T={n_steps}: sdsnn_bio float32 / float64 throughput = "
                  f"{single['median'] / double['median']:.2f}x (medians; range of the repeats "
                  f"{single['min'] / double['max']:.2f}x-{single['max'] / double['min']:.2f}x), "
                  f"training peak memory = {single['peak'] / double['peak']:.2f}x")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
