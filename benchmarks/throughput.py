"""Training throughput and peak memory: sdsnn_bio versus snnTorch, SpikingJelly, Norse and Spyx, in one run.

Every framework trains the same 2312-512-10 LIF network (tau 20 ms, threshold 1, reset to 0, no
refractory period, no biases) with full BPTT, the fast-sigmoid surrogate (slope 10),
cross-entropy on output spike rates (logits = 10 * count / T), Adam (lr 1e-3), batch 32
(``--batch-size``), 2 threads, on the same input batches: samples of the embedded dataset binned to
T steps (T=30: 10 ms bins; T=300: 1 ms bins). The time per batch includes building the input batch
from binned events, forward, backward and the optimiser step. Each peer is written the way its own
tutorials write it:

* snnTorch 1.0: ``snn.Leaky`` (``reset_mechanism="zero"``, ``surrogate.fast_sigmoid(slope=10)``) in a
  Python loop over time steps;
* SpikingJelly 2.0: ``layer.Linear`` and ``neuron.LIFNode`` in an ``nn.Sequential``, multi-step mode
  (``functional.set_step_mode(net, "m")``: one (T*B) x 2312 matrix product per layer and the LIF
  sequence in one call), ``functional.reset_net`` after each batch. ``decay_input=False`` and
  ``tau = 1 / (1 - beta)`` give V = beta V + I exactly; ``surrogate.SoftSign(alpha=10)`` is the fast
  sigmoid of slope 10 times 5 (g' = alpha / (2 (1 + alpha |x|)^2));
* Norse 1.1: ``LIFBoxCell`` (the LIF without a synaptic current) in a ``SequentialState``, looped over
  time steps. Its Euler step v += dt tau_mem_inv (I - v) equals V = beta V + (1 - beta) I with
  ``dt * tau_mem_inv = 1 - beta``, so each layer's current is multiplied by 1 / (1 - beta) (a
  ``Scale`` module after each ``Linear``). Its SuperSpike surrogate ignores ``alpha`` (g' = 1 / (1 +
  |x|)^2): the potential is scaled by the slope instead (threshold 10, currents times 10), which
  gives g' = 10 / (1 + 10 |v - 1|)^2 with respect to the unscaled potential, the slope-10 shape;
* Spyx 1.0 (JAX, Flax NNX): ``nnx.Linear`` and Spyx LIF layers in a ``spyx.nn.Sequential``, the time
  loop a ``jax.lax.scan`` (``spyx.nn.run``) inside an ``nnx.jit``-compiled train step, its
  ``spyx.axn.superspike(k=10)`` surrogate (the fast sigmoid of slope 10), ``nnx.Optimizer`` with
  ``optax.adam``. Spyx's ``LIF`` resets by subtraction and has a learnable beta: the benchmark uses a
  subclass that changes only the reset (to zero) and fixes beta (a fixed ``beta`` is still one
  trainable scalar in Spyx).

Initial weights are each framework's default (PyTorch's and Flax's uniform/LeCun schemes; sdsnn_bio's
N(0, (4/sqrt(fan_in))^2)); the ``hidden rate`` column shows how active each hidden layer is, which
matters only to sdsnn_bio (event-driven) and not to the dense peers.

Each framework runs in its own subprocess (a fresh process: its own imports, thread pools and memory
counters), and the frameworks take turns: ``--processes N`` (also spelt ``--rounds``) rounds, each
running every framework once, in a fresh process, for ``--repeats`` timed repeats of ``--batches``
batches (after 3 warm-up batches, which hold JAX's three compilations of Spyx's train step), so that
a change of load on a shared machine hits all of them alike. The parent prints
the median over all repeats, the slowest and fastest repeat, and the ratios of sdsnn_bio to every
peer: of the medians, and the worst case (our slowest repeat / its fastest repeat), a bound that
noise cannot inflate. With 2 or more processes it also prints the spread across processes (each
process's median repeat: their median and range) and, from 4 processes on, whether they fall
into two speed modes (``process_spread``: the largest gap between neighbouring process speeds
must exceed three times the repeats' spread within a process, 5 % of the median and the range of
either group, with at least 2 processes on each side), as issue 15 saw them, and whether the two
groups alternated in time or each ran in one block (then a change of the machine's speed during the
run explains them as well as a difference between processes). ``--markdown FILE`` also writes the table as Markdown (for docs/benchmarks.md).

Process or time (``--live-processes N --visits M``, sdsnn_bio only, one T): fresh processes run one
after another cannot tell a difference between processes from a drift of the machine's speed. This
mode starts N worker processes one at a time (each warms up alone), keeps them alive (blocked on a
pipe between visits, using no CPU) and visits them in turn for M rounds, the starting process
rotating; a visit trains 1 untimed batch (caches after the switch) and ``--batches`` timed ones. The
logarithm of each visit's samples/s is split into a round (time) effect, a process effect (after
the rounds are removed) and a residual (``process_time_decomposition``); their standard deviations
(≈ fractions of the speed) and a verdict are printed: time when its effect is at least twice the
process effect, the process when the reverse, otherwise both.
sdsnn_bio is measured with its default backend (Numba when installed) and, as ``sdsnn_bio[numpy]``,
with its NumPy reference backend; ``sdsnn_bio[float32]`` is the default backend training in float32
(``learning.dtype = "float32"``; the others train in float64, the default), and its speed-up over
``sdsnn_bio`` is printed.

Memory (from ``/proc/self/status`` of the worker): ``RSS before`` is the resident memory once the data
are loaded and before the framework is imported or the model built; the peak counter is then reset
(``/proc/self/clear_refs``), so ``training peak`` is the highest resident memory while importing the
framework, building the model and training (warm-up and compilation included), and ``+training``
their difference. Resident memory counts every allocator (PyTorch's, XLA's, NumPy's, Numba's);
tracemalloc would see only Python's.

Threads (``--threads N``, 2 by default, the same for every framework): ``torch.set_num_threads(N)``
and ``OMP/OPENBLAS/MKL_NUM_THREADS=N`` for the PyTorch peers; sdsnn_bio's ``n_threads=N``; JAX sizes
its CPU thread pool by the CPUs the process may run on, so the Spyx worker restricts its CPU affinity
to N CPUs when it may use more (on one thread it also sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``). ``--threads 1`` is the fair setting on a machine that other
processes load: PyTorch's OpenMP threads wait for each other at every operation and collapse when
one of them loses its core (snnTorch fell to 10 samples/s at T=30 here).

Shared machines: ``others`` is the number of cores that other processes used while a framework ran
(the highest over its rounds; machine CPU time from /proc/stat minus the worker's, over the whole
worker including its data loading). PyTorch's OpenMP threads slow down far more than sdsnn_bio's
when a core is taken by someone else: the workers run with ``OMP_WAIT_POLICY=ACTIVE`` (unless set
otherwise), and ``--quiet-wait`` waits for quiet moments.

    python benchmarks/throughput.py                 # T=30 and T=300, every framework
    python benchmarks/throughput.py --steps 30 --rounds 1 --repeats 2 --batches 5 --markdown table.md
    python benchmarks/throughput.py --frameworks sdsnn_bio --processes 16   # spread across fresh processes
    python benchmarks/throughput.py --live-processes 6 --visits 8 --batches 3 --steps 300  # process or time?

The peers are optional (``pip install -e .[bench] torch==2.13.0``; keep numpy<2.4); a framework that
cannot be imported gets a "not measured" row saying why.
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
import tempfile
import time
from pathlib import Path

import numpy as np

from sdsnn_bio.blas import describe_thread_timeout, with_short_thread_timeout

ARCH = (2312, 512, 10)
BATCH = 32
TAU_MS = 20.0
WINDOW_MS = 300.0
THREADS = 2
# Warm-up batches before timing: Spyx's nnx.jit train step compiled three times, on its first three
# calls (7.7, 5.5 and 8.3 s at T=30 here; then 0.2-0.4 s per batch).
WARMUP = 3
SLOPE = 10.0  # of the fast-sigmoid surrogate, 1 / (1 + SLOPE |v - threshold|)^2
LEARNING_RATE = 1e-3
OURS = ("sdsnn_bio", "sdsnn_bio[float32]", "sdsnn_bio[numpy]")
PEERS = ("snntorch", "spikingjelly", "norse", "spyx")
FRAMEWORKS = (*OURS, *PEERS, "snntorch[1 thread]")
DEFAULT_FRAMEWORKS = FRAMEWORKS[:7]
# Issue 15's target: sdsnn_bio's median throughput over the fastest peer's, per number of steps.
TARGETS = {30: 3.0, 300: 10.0}
# The distributions whose versions the report names.
PACKAGES = ("numpy", "scipy", "numba", "brian2", "torch", "snntorch", "spikingjelly", "norse", "jax",
            "jaxlib", "flax", "optax", "spyx")


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


def decay(n_steps: int) -> float:
    """The membrane decay per step, beta = exp(-dt / tau), for ``n_steps`` steps over the window."""
    return float(np.exp(-(WINDOW_MS / n_steps) / TAU_MS))


def time_training(step, batches, repeats: int, n_steps: int) -> tuple[list[float], float]:
    """Samples per second of each of ``repeats`` passes over ``batches`` (after WARMUP batches).

    ``step(samples, labels)`` trains on one batch and returns its number of hidden spikes (as a
    Python number, which also waits for asynchronous frameworks to finish the step). Returns the
    rates and the mean hidden spikes per neuron and time step.
    """
    for b in range(WARMUP):
        step(*batches[b % len(batches)])
    rates, hidden_spikes = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for samples, labels in batches:
            hidden_spikes.append(float(step(samples, labels)))
        rates.append(sum(len(labels) for _, labels in batches) / (time.perf_counter() - start))
    rate = statistics.mean(hidden_spikes) / (n_steps * len(batches[0][1]) * ARCH[1])
    return rates, rate


def dense_input(samples, n_steps: int, xp, zeros):
    """The (T, B, 2312) 0/1 input of a batch; ``zeros`` makes the array, ``xp`` indexes it."""
    x = zeros((n_steps, len(samples), ARCH[0]))
    for b, (channels, steps) in enumerate(samples):
        x[xp.asarray(steps), b, xp.asarray(channels)] = 1.0
    return x


def run_sdsnn(n_steps: int, batches, repeats: int, backend: str = "auto", threads: int = THREADS,
              dtype: str = "float64") -> tuple[list[float], dict]:
    """sdsnn_bio's ``Learner`` (``backend`` "auto": Numba when installed; "numpy": the reference)."""
    step, learner = sdsnn_training_step(n_steps, backend, threads, dtype)
    rates, rate = time_training(step, batches, repeats, n_steps)
    return rates, {"backend": getattr(learner, "backend", "numpy"), "hidden_spikes_per_neuron_step": rate}


def sdsnn_training_step(n_steps: int, backend: str = "auto", threads: int = THREADS, dtype: str = "float64"):
    """sdsnn_bio's train step on the benchmark network: ``(step(samples, labels) -> hidden spikes, learner)``."""
    from brian2 import ms

    from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
    from sdsnn_bio.model import NetworkParameters, initial_structure

    params = NetworkParameters(hidden_sizes=(ARCH[1],), n_steps=n_steps, dt=(WINDOW_MS / n_steps) * ms)
    structure = initial_structure(params, np.random.default_rng(0))
    options = {} if backend == "auto" else {"backend": backend}  # also runs versions without backends
    learning = LearningParameters() if dtype == "float64" else LearningParameters(dtype=dtype)
    learner = Learner(structure, params.layer_dynamics(), learning, n_threads=threads, **options)

    def step(samples, labels):
        trained = learner.train_step(InputBatch.from_samples(samples, n_steps, ARCH[0]), labels)
        return trained.spike_counts["hidden_1"]

    return step, learner


def _torch_training_step(net, n_steps: int):
    """The train step shared by the PyTorch peers: input, ``net(x) -> (output count, hidden
    spikes)``, cross-entropy on 10 * count / T, Adam."""
    import torch

    optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(samples, labels):
        x = dense_input(samples, n_steps, torch, torch.zeros)
        count, hidden = net(x)
        loss = loss_fn(10.0 * count / n_steps, torch.as_tensor(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return float(hidden)

    return step


def run_snntorch(n_steps: int, batches, repeats: int, threads: int = THREADS) -> tuple[list[float], dict]:
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    beta = decay(n_steps)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            grad = surrogate.fast_sigmoid(slope=SLOPE)
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

    rates, rate = time_training(_torch_training_step(Net(), n_steps), batches, repeats, n_steps)
    return rates, {"backend": f"torch {torch.__version__}, snntorch {_version('snntorch')}",
                   "hidden_spikes_per_neuron_step": rate}


def run_spikingjelly(n_steps: int, batches, repeats: int, threads: int = THREADS) -> tuple[list[float], dict]:
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # decay_input=False: V <- V - (V - V_reset) / tau + I = (1 - 1/tau) V + I, so tau = 1 / (1 - beta).
    tau = 1.0 / (1.0 - decay(n_steps))

    def lif():
        return neuron.LIFNode(tau=tau, decay_input=False, v_threshold=1.0, v_reset=0.0,
                              surrogate_function=surrogate.SoftSign(alpha=SLOPE))

    layers = torch.nn.Sequential(layer.Linear(ARCH[0], ARCH[1], bias=False), lif(),
                                 layer.Linear(ARCH[1], ARCH[2], bias=False), lif())
    functional.set_step_mode(layers, "m")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            functional.reset_net(self.layers)
            hidden = self.layers[1](self.layers[0](x))
            out = self.layers[3](self.layers[2](hidden))
            return out.sum(0), hidden.detach().sum()

    rates, rate = time_training(_torch_training_step(Net(), n_steps), batches, repeats, n_steps)
    return rates, {"backend": f"torch {torch.__version__}, spikingjelly {_version('spikingjelly')}",
                   "hidden_spikes_per_neuron_step": rate}


def run_norse(n_steps: int, batches, repeats: int, threads: int = THREADS) -> tuple[list[float], dict]:
    import torch
    from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = WINDOW_MS / n_steps / 1000.0  # s
    beta = decay(n_steps)
    # v <- v + dt tau_mem_inv (I - v) = beta v + (1 - beta) I, on a potential scaled by SLOPE
    # (threshold SLOPE), because Norse's SuperSpike ignores its alpha: g'(x) = 1 / (1 + |x|)^2.
    # The factor SLOPE / (1 - beta) multiplies the currents (not the weights, whose Adam steps
    # would then be relatively smaller): v = SLOPE * V with V = beta V + W x, threshold 1.
    parameters = LIFBoxParameters(tau_mem_inv=torch.as_tensor((1.0 - beta) / dt), v_leak=torch.as_tensor(0.0),
                                  v_th=torch.as_tensor(SLOPE), v_reset=torch.as_tensor(0.0), method="super")

    class Scale(torch.nn.Module):
        def forward(self, current):
            return current * (SLOPE / (1.0 - beta))

    model = SequentialState(torch.nn.Linear(ARCH[0], ARCH[1], bias=False), Scale(), LIFBoxCell(parameters, dt=dt),
                            torch.nn.Linear(ARCH[1], ARCH[2], bias=False), Scale(), LIFBoxCell(parameters, dt=dt),
                            return_hidden=True)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            state, count, hidden = None, 0, 0
            for t in range(x.shape[0]):
                layers, state = self.model(x[t], state)
                count = count + layers[5]
                hidden = hidden + layers[2].detach().sum()
            return count, hidden

    rates, rate = time_training(_torch_training_step(Net(), n_steps), batches, repeats, n_steps)
    return rates, {"backend": f"torch {torch.__version__}, norse {_version('norse')}",
                   "hidden_spikes_per_neuron_step": rate}


def restrict_jax_threads(threads: int) -> None:
    """Before JAX is imported: let XLA's CPU client use ``threads`` threads.

    XLA sizes its thread pool by the CPUs the process may run on, so the process is restricted to
    ``threads`` of them when it may use more; on one thread, XLA's Eigen pool is also turned off.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > threads:
        os.sched_setaffinity(0, allowed[:threads])
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def run_spyx(n_steps: int, batches, repeats: int, threads: int = THREADS) -> tuple[list[float], dict]:
    restrict_jax_threads(threads)
    import jax
    import jax.numpy as jnp
    import optax
    import spyx
    from flax import nnx

    beta = decay(n_steps)

    class ZeroResetLIF(spyx.nn.LIF):
        """Spyx's LIF with the reset of the other frameworks: to zero, in the step of the spike.

        spyx.nn.LIF computes ``s = spike(V - threshold); V = beta V + x - s * threshold``.
        """

        def __call__(self, x, V):
            V = jnp.clip(self.beta[...], 0, 1) * V + x
            spikes = self.spike(V - self.threshold)
            return spikes, V * (1.0 - spikes)

    class Net(nnx.Module):
        """2312-512-10 under Spyx's stateful contract; returns both layers' spikes."""

        def __init__(self, rngs):
            surrogate = spyx.axn.superspike(k=SLOPE)
            self.hidden = spyx.nn.Sequential(nnx.Linear(ARCH[0], ARCH[1], use_bias=False, rngs=rngs),
                                             ZeroResetLIF((ARCH[1],), beta=beta, activation=surrogate, rngs=rngs))
            self.output = spyx.nn.Sequential(nnx.Linear(ARCH[1], ARCH[2], use_bias=False, rngs=rngs),
                                             ZeroResetLIF((ARCH[2],), beta=beta, activation=surrogate, rngs=rngs))

        def initial_state(self, batch_size):
            return self.hidden.initial_state(batch_size), self.output.initial_state(batch_size)

        def __call__(self, x, state):
            hidden, hidden_state = self.hidden(x, state[0])
            out, output_state = self.output(hidden, state[1])
            return (out, hidden), (hidden_state, output_state)

    model = Net(nnx.Rngs(0))
    optimiser = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

    @nnx.jit
    def train(model, optimiser, x, labels):
        def loss_fn(model):
            (out, hidden), _ = spyx.nn.run(model, x)  # time-major scan
            logits = 10.0 * out.sum(0) / n_steps
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, hidden.sum()

        (_, hidden), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimiser.update(model, grads)
        return hidden

    def step(samples, labels):
        x = dense_input(samples, n_steps, np, lambda shape: np.zeros(shape, dtype=np.float32))
        return train(model, optimiser, jnp.asarray(x), jnp.asarray(labels))

    rates, rate = time_training(step, batches, repeats, n_steps)
    return rates, {"backend": f"jax {jax.__version__}, flax {_version('flax')}, spyx {_version('spyx')}",
                   "hidden_spikes_per_neuron_step": rate}


RUNNERS = {"snntorch": run_snntorch, "spikingjelly": run_spikingjelly, "norse": run_norse, "spyx": run_spyx}


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


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


def worker(framework: str, n_steps: int, n_batches: int, repeats: int, batch_size: int,
           threads: int = THREADS) -> None:
    """Measure one framework in this (fresh) process; prints one JSON line."""
    batches = load_batches(n_steps, n_batches, batch_size=batch_size)
    rss_before = _status_mib("VmRSS")
    reset = _reset_peak_memory()
    if framework in OURS:
        rates, info = run_sdsnn(n_steps, batches, repeats, "numpy" if framework == "sdsnn_bio[numpy]" else "auto",
                                threads, "float32" if framework == "sdsnn_bio[float32]" else "float64")
    elif framework == "snntorch[1 thread]":
        rates, info = run_snntorch(n_steps, batches, repeats, 1)
    else:
        rates, info = RUNNERS[framework](n_steps, batches, repeats, threads)
    peak = _status_mib("VmHWM")
    print(json.dumps({
        "framework": framework, "n_steps": n_steps, "batch_size": batch_size, "threads": threads,
        "samples_per_second": rates,
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


def turns(frameworks, rounds: int) -> list[str]:
    """The order in which workers run: every framework once per round, in the same order."""
    if rounds < 1:
        raise ValueError(f"--processes (--rounds) must be at least 1, got {rounds}")
    return [framework for _ in range(rounds) for framework in frameworks]


def summarise(measured: list[dict]) -> dict:
    """One framework's row from its workers' results (one dict per round, as ``worker`` prints
    them plus ``others_cores``): median, slowest and fastest repeat over every round, memory (the
    highest over the rounds) and the mean hidden rate."""
    if not measured:
        raise ValueError("no measurement to summarise")
    rates = [r for run in measured for r in run["samples_per_second"]]
    peaks = [run["training_peak_mib"] for run in measured if run.get("training_peak_mib")]
    return {
        "median": statistics.median(rates), "min": min(rates), "max": max(rates), "repeats": len(rates),
        "rss_before": max(run["rss_before_mib"] for run in measured),
        "peak": max(peaks) if peaks else float("nan"),
        "extra": max(run["training_peak_mib"] - run["rss_before_mib"] for run in measured
                     if run.get("training_peak_mib")) if peaks else float("nan"),
        "hidden_rate": statistics.mean(run["hidden_spikes_per_neuron_step"] for run in measured),
        "others": max(run.get("others_cores", 0.0) for run in measured),
        "backend": measured[0].get("backend", ""),
        "processes": process_spread([run["samples_per_second"] for run in measured]),
    }


def process_spread(process_rates: list[list[float]]) -> dict:
    """Speed across fresh processes, and whether it falls into separate modes.

    ``process_rates`` holds each process's timed repeats (samples/s). A process's speed is the
    median of its repeats. The sorted process speeds are cut at their largest gap between
    neighbours; the two groups are called separate modes when each holds at least 2 processes
    and the gap exceeds three times the median spread of the repeats within a process, 5 % of
    the median process speed, and the range inside either group. Fewer than 4 processes are
    not judged.

    ``process_rates`` is in the order the processes ran. Processes that run one after another
    cannot tell a difference between processes from a change of the machine's speed over time:
    on a quiet 2-vCPU virtual machine the speed drifts by about 10 % over 5-10 s, and consecutive
    fresh processes share that state (docs/benchmarks.md, per-process speed). So ``runs`` counts
    the runs of the two groups in time order, and two modes whose groups each ran in one block
    (``runs == 2``) are reported as such: a change over time explains them as well.

    Returns a dict: ``speeds`` (sorted), ``median``, ``min``, ``max``, ``spread`` ((max - min) /
    median), ``within`` (median range of the repeats inside a process, samples/s), ``gap``,
    ``low`` and ``high`` (the two groups), ``runs`` (runs of the two groups in time order; 1
    without two groups), ``bimodal`` (True, False or None when not judged) and ``note`` (one
    sentence).
    """
    if not process_rates or any(len(rates) == 0 for rates in process_rates):
        raise ValueError("process_spread: every process needs at least one timed repeat")
    in_order = [statistics.median(rates) for rates in process_rates]
    speeds = sorted(in_order)
    median = statistics.median(speeds)
    within = statistics.median(max(rates) - min(rates) for rates in process_rates)
    result = {"speeds": speeds, "median": median, "min": speeds[0], "max": speeds[-1],
              "spread": (speeds[-1] - speeds[0]) / median, "within": within, "gap": 0.0,
              "low": speeds, "high": [], "runs": 1, "bimodal": None}
    n = len(speeds)
    if n >= 2:
        cut = max(range(1, n), key=lambda k: speeds[k] - speeds[k - 1])
        low, high = speeds[:cut], speeds[cut:]
        gap = speeds[cut] - speeds[cut - 1]
        labels = [speed >= high[0] for speed in in_order]
        runs = 1 + sum(a != b for a, b in zip(labels, labels[1:]))
        result.update(gap=gap, low=low, high=high, runs=runs)
    else:
        low, high, gap = speeds, [], 0.0
    span = f"{n} process(es): median {median:.1f} samples/s, {speeds[0]:.1f}-{speeds[-1]:.1f} " \
           f"(spread {100 * result['spread']:.0f} % of the median; repeats within a process span {within:.1f})"
    if n < 4:
        result["note"] = f"{span}; too few processes to judge modes (4 needed)"
        return result
    separate = (min(len(low), len(high)) >= 2 and gap > 3.0 * within and gap > 0.05 * median
                and gap > max(low[-1] - low[0], high[-1] - high[0]))
    result["bimodal"] = separate
    if separate:
        result["note"] = (f"{span}; TWO MODES: {len(low)} processes at {low[0]:.1f}-{low[-1]:.1f}, "
                          f"{len(high)} at {high[0]:.1f}-{high[-1]:.1f} (gap {gap:.1f}, "
                          f"{100 * gap / median:.0f} % of the median)")
        if result["runs"] == 2:
            first = "fast" if in_order[0] >= high[0] else "slow"
            result["note"] += (f"; in time order all the {first} processes ran first, then all the others: "
                               "a change of the machine's speed during the run explains this as well")
        else:
            result["note"] += f"; the two groups alternate in time ({result['runs']} runs)"
    else:
        result["note"] = (f"{span}; one mode (largest gap between neighbouring processes {gap:.1f}, "
                          f"{100 * gap / median:.0f} % of the median)")
    return result


# A process effect or a time effect counts as the larger one when it is at least this many times the other.
DOMINANCE = 2.0


def live_worker(n_steps: int, n_batches: int, batch_size: int, threads: int, commands=None, out=None) -> None:
    """A live sdsnn_bio worker: train WARMUP batches, then answer one command per line of ``commands``.

    ``visit``: train 1 untimed batch (caches after the switch from another process), then
    ``n_batches`` timed batches, and print ``{"samples_per_second": rate}``; ``quit``: return.
    Between commands the process blocks on its input and uses no CPU. ``commands`` and ``out``
    default to standard input and output.
    """
    commands = sys.stdin if commands is None else commands
    out = sys.stdout if out is None else out
    batches = load_batches(n_steps, n_batches, batch_size=batch_size)
    step, _ = sdsnn_training_step(n_steps, threads=threads)
    position = 0
    for _ in range(WARMUP):
        step(*batches[position % n_batches])
        position += 1
    print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
    for line in commands:
        command = line.strip()
        if command == "quit":
            return
        if command != "visit":
            raise ValueError(f"live worker: unknown command {command!r} (expected 'visit' or 'quit')")
        step(*batches[position % n_batches])
        position += 1
        start = time.perf_counter()
        for samples, labels in batches:
            step(samples, labels)
        elapsed = time.perf_counter() - start
        print(json.dumps({"samples_per_second": n_batches * batch_size / elapsed}), file=out, flush=True)


class LiveProcess:
    """One live worker process (``live_worker`` behind a pipe), started and warmed up on creation.

    Parameters
    ----------
    command : list of str
        The worker's command line (``throughput.py --live-worker ...``).
    environment : dict
        Its environment (thread counts).
    """

    def __init__(self, command, environment):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=environment)
        self.pid = self._answer()["ready"]

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"live worker {self.process.pid} exited with code {code} before answering "
                               "(its error is printed above)")
        return json.loads(line)

    def visit(self) -> float:
        """Train one visit's timed batches; returns samples/s."""
        self.process.stdin.write("visit\n")
        self.process.stdin.flush()
        return float(self._answer()["samples_per_second"])

    def close(self) -> None:
        """Ask the worker to quit and wait for it (kill it if it does not quit within 30 s)."""
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def round_robin(workers, visits: int, report=None) -> np.ndarray:
    """Visit live ``workers`` in turn, ``visits`` rounds; returns samples/s, shape (processes, rounds).

    Round ``r`` starts at process ``r mod N`` (the starting process rotates, so no process is
    always first after the pause between rounds). ``workers`` are objects with a ``visit()``
    method returning samples/s; ``report(round, rates)``, if given, is called after each round.
    """
    if len(workers) < 2:
        raise ValueError(f"--live-processes must be at least 2, got {len(workers)}")
    if visits < 2:
        raise ValueError(f"--visits must be at least 2, got {visits}")
    n = len(workers)
    rates = np.full((n, visits), np.nan)
    for r in range(visits):
        for i in range(n):
            k = (i + r) % n
            rates[k, r] = workers[k].visit()
        if report is not None:
            report(r, rates[:, r])
    return rates


def process_time_decomposition(rates) -> dict:
    """Split the logarithm of the speed into a process effect, a time (round) effect and a residual.

    ``rates`` (samples/s, shape (processes, rounds), all positive) come from processes that stay
    alive and are visited in turn (``round_robin``). With ``L = log(rates)``, grand mean ``g``:
    time effect ``t_r = mean_k L[k, r] - g`` (the round means: what all processes share at one
    time), process effect ``p_k = mean_r (L[k, r] - t_r) - g`` (a process's mean after the rounds
    are removed) and residual ``L - g - t - p``. Each is reported as its standard deviation (over
    rounds, processes and visits; ddof 0), which for small values is the fraction of the speed
    (0.025 = 2.5 %). The residual also sets the noise that a process mean over R rounds carries,
    ``residual / sqrt(R)``: a process effect below twice that noise is not told apart from zero.

    Verdict (``DOMINANCE`` = 2): the speed follows time when the time effect is at least twice
    the process effect, the process when the process effect is at least twice the time effect,
    otherwise both.

    Returns a dict: ``process_medians`` (samples/s, per process), ``round_medians`` (per round),
    ``process`` (array of the process effects, log), ``time`` (array of the round effects, log),
    ``process_sd``, ``time_sd``, ``residual_sd``, ``process_noise`` (``residual_sd /
    sqrt(rounds)``) and ``verdict`` (one sentence).
    """
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 2 or rates.shape[0] < 2 or rates.shape[1] < 2:
        raise ValueError(f"process_time_decomposition: rates must be (processes >= 2, rounds >= 2), "
                         f"got shape {rates.shape}")
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError("process_time_decomposition: every rate must be finite and positive (samples/s)")
    logs = np.log(rates)
    grand = logs.mean()
    time_effect = logs.mean(axis=0) - grand
    process_effect = (logs - time_effect[None, :]).mean(axis=1) - grand
    residual = logs - grand - time_effect[None, :] - process_effect[:, None]
    process_sd, time_sd, residual_sd = (float(np.std(x)) for x in (process_effect, time_effect, residual))
    noise = residual_sd / np.sqrt(rates.shape[1])
    numbers = f"process effect {100 * process_sd:.1f} % vs time {100 * time_sd:.1f} %"
    if time_sd >= DOMINANCE * process_sd:
        verdict = f"{numbers}: speed differences follow time, not the process"
    elif process_sd >= DOMINANCE * time_sd:
        verdict = f"{numbers}: speed differences follow the process, not time"
    else:
        verdict = f"{numbers}: speed differences follow both the process and time"
    verdict += (f" (residual {100 * residual_sd:.1f} % per visit; noise of a process mean over "
                f"{rates.shape[1]} rounds {100 * noise:.1f} %"
                + ("; the process effect is within twice that noise)" if process_sd < 2 * noise else ")"))
    return {"process_medians": np.median(rates, axis=1), "round_medians": np.median(rates, axis=0),
            "process": process_effect, "time": time_effect, "process_sd": process_sd, "time_sd": time_sd,
            "residual_sd": residual_sd, "process_noise": float(noise), "verdict": verdict}


def run_live(n_processes: int, visits: int, command, environment, start=LiveProcess) -> np.ndarray:
    """Start live workers one at a time, visit them in turn and stop them; returns the rates.

    Each of the ``n_processes`` workers warms up alone (``start(command, environment)`` returns
    once it is ready); then ``visits`` rounds of ``round_robin`` (progress on stderr).
    """
    workers = []
    try:
        for k in range(n_processes):
            workers.append(start(command, environment))
            print(f"  live process {k} ready", file=sys.stderr, flush=True)

        def report(r, rates):
            print(f"  round {r}: " + " ".join(f"{rate:.1f}" for rate in rates), file=sys.stderr, flush=True)

        return round_robin(workers, visits, report)
    finally:
        for worker_process in workers:
            worker_process.close()


def live_report(rates) -> list[str]:
    """The printed lines of a live round-robin run: the table of rates, medians and the decomposition."""
    result = process_time_decomposition(rates)
    n_processes, n_rounds = np.shape(rates)
    lines = ["samples/s per process (rows) and round (columns); each process's median last:"]
    for k in range(n_processes):
        lines.append(f"  process {k}: " + " ".join(f"{rate:6.1f}" for rate in rates[k])
                     + f"   median {result['process_medians'][k]:6.1f}")
    lines.append("  round medians: " + " ".join(f"{rate:6.1f}" for rate in result["round_medians"]))
    lines.append(f"standard deviations of log samples/s: between processes (rounds removed) "
                 f"{result['process_sd']:.3f}, between rounds (time) {result['time_sd']:.3f}, "
                 f"residual per visit {result['residual_sd']:.3f}")
    lines.append(result["verdict"])
    return lines


def compare(ours: dict, theirs: dict) -> dict:
    """Ratios of two rows: of the medians, the worst case (our slowest repeat over their fastest),
    and of the training peak memory."""
    return {"median": ours["median"] / theirs["median"], "worst": ours["min"] / theirs["max"],
            "peak": ours["peak"] / theirs["peak"]}


def fastest_peer(rows: dict, n_steps: int) -> str | None:
    """The measured peer with the highest median throughput at ``n_steps`` (None if none was)."""
    measured = [peer for peer in (*PEERS, "snntorch[1 thread]") if (n_steps, peer) in rows]
    return max(measured, key=lambda peer: rows[(n_steps, peer)]["median"]) if measured else None


def target_verdict(rows: dict, n_steps: int, ours: str = "sdsnn_bio", targets=None) -> str:
    """One sentence: sdsnn_bio's median against the fastest peer's, and the issue's target."""
    targets = TARGETS if targets is None else targets
    peer = fastest_peer(rows, n_steps)
    if peer is None or (n_steps, ours) not in rows:
        return f"T={n_steps}: no peer measured beside {ours}; the target cannot be judged"
    ratio = compare(rows[(n_steps, ours)], rows[(n_steps, peer)])
    text = (f"T={n_steps}: the fastest peer is {peer} ({rows[(n_steps, peer)]['median']:.1f} samples/s); "
            f"{ours} / {peer} = {ratio['median']:.2f}x (worst case {ratio['worst']:.2f}x)")
    target = targets.get(n_steps)
    if target is None:
        return text + "; no target at this T"
    if ratio["median"] >= target:
        return text + f"; target >= {target:g}x met"
    return text + f"; target >= {target:g}x missed by a factor of {target / ratio['median']:.2f}"


def markdown_table(rows: dict, failures: dict, steps, frameworks, ours: str = "sdsnn_bio") -> str:
    """The results as a Markdown table (one row per T and framework, ratios of ``ours`` to each)."""
    lines = [f"| T | framework | version | median samples/s | slowest-fastest repeat | {ours} / it, median "
             f"| worst case (our slowest / its fastest) | training peak MiB | +training MiB | hidden rate "
             f"| others (cores) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n_steps in steps:
        for framework in frameworks:
            if (n_steps, framework) in failures:
                lines.append(f"| {n_steps} | {framework} | | not measured: {failures[(n_steps, framework)]} "
                             f"| | | | | | | |")
                continue
            row = rows.get((n_steps, framework))
            if row is None:
                continue
            mine = rows.get((n_steps, ours))
            if mine is None or framework == ours:
                ratio_median = ratio_worst = "—"
            else:
                ratio = compare(mine, row)
                ratio_median, ratio_worst = f"{ratio['median']:.2f}×", f"{ratio['worst']:.2f}×"
            lines.append(f"| {n_steps} | {framework} | {row['backend']} | {row['median']:.1f} "
                         f"| {row['min']:.1f}-{row['max']:.1f} | {ratio_median} | {ratio_worst} "
                         f"| {row['peak']:.0f} | {row['extra']:.0f} | {row['hidden_rate']:.4f} "
                         f"| {row['others']:.2f} |")
    return "\n".join(lines) + "\n"


def process_table(rows: dict, steps, frameworks) -> str:
    """The spread across fresh processes as Markdown (one row per T and framework)."""
    lines = ["| T | framework | processes | median of the process medians | slowest-fastest process "
             "| spread | modes |", "|---|---|---|---|---|---|---|"]
    for n_steps in steps:
        for framework in frameworks:
            row = rows.get((n_steps, framework))
            if row is None:
                continue
            spread = row["processes"]
            if spread["bimodal"] is None:
                modes = "not judged (< 4 processes)"
            elif spread["bimodal"]:
                low, high = spread["low"], spread["high"]
                modes = (f"**two**: {len(low)} at {low[0]:.1f}-{low[-1]:.1f}, "
                         f"{len(high)} at {high[0]:.1f}-{high[-1]:.1f}"
                         + (" (one after the other in time)" if spread["runs"] == 2 else
                            f" (alternating in time, {spread['runs']} runs)"))
            else:
                modes = f"one (largest gap {spread['gap']:.1f})"
            lines.append(f"| {n_steps} | {framework} | {len(spread['speeds'])} | {spread['median']:.1f} "
                         f"| {spread['min']:.1f}-{spread['max']:.1f} | {100 * spread['spread']:.0f} % | {modes} |")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    return ", ".join(f"{name} {_version(name)}" for name in PACKAGES)


def thread_environment(threads: int) -> dict:
    """The workers' environment: ``threads`` threads for OpenMP, OpenBLAS and MKL; OpenBLAS's timeout.

    Every framework's worker gets the same environment. ``OPENBLAS_THREAD_TIMEOUT`` (4 unless the
    caller's environment sets it, the default of the ``sdsnn-bio`` command: :mod:`sdsnn_bio.blas`) is how
    long NumPy's and SciPy's OpenBLAS threads spin after a product. PyTorch's products use MKL here
    (``torch.__config__.show()``: ``BLAS_INFO=mkl``, convolutions in oneDNN, threads from OpenMP)
    and JAX's use XLA's own kernels, so the peers' training steps do not reach OpenBLAS. Run with
    ``OPENBLAS_THREAD_TIMEOUT=28`` for OpenBLAS's own default.
    """
    return with_short_thread_timeout(dict(os.environ, OMP_NUM_THREADS=str(threads),
                                          OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)))


def main_live(parser, args, argv, start_live) -> int:
    """``--live-processes N --visits M``: sdsnn_bio's speed split into process, time and residual."""
    if args.live_processes is None or args.visits is None:
        parser.error("--live-processes and --visits go together (e.g. --live-processes 6 --visits 6)")
    if args.live_processes < 2:
        parser.error(f"--live-processes must be at least 2 (to compare processes), got {args.live_processes}")
    if args.visits < 2:
        parser.error(f"--visits must be at least 2 (to compare rounds), got {args.visits}")
    if args.batches < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error(f"--batches, --batch-size and --threads must be at least 1, got {args.batches}, "
                     f"{args.batch_size} and {args.threads}")
    if args.markdown is not None and not args.markdown.parent.is_dir():
        parser.error(f"--markdown: the folder {args.markdown.parent} does not exist")
    if len(args.steps) != 1:
        parser.error(f"--live-processes measures one T: give one --steps value, got {args.steps}")
    if argv_has(argv, "--frameworks") and args.frameworks != ["sdsnn_bio"]:
        parser.error(f"--live-processes measures sdsnn_bio only, got --frameworks {' '.join(args.frameworks)}")
    n_steps = args.steps[0]
    command = [sys.executable, __file__, "--live-worker", "--steps", str(n_steps), "--batches", str(args.batches),
               "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    header = [f"machine: {machine()}", f"versions: {versions()}",
              f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
              f"sdsnn_bio, network {ARCH[0]}-{ARCH[1]}-{ARCH[2]}, T={n_steps}, batch {args.batch_size}, "
              f"{args.threads} thread(s); {args.live_processes} live processes x {args.visits} rounds of visits "
              f"x {args.batches} timed batches (after 1 untimed); load average at start {os.getloadavg()[0]:.2f}"]
    environment = thread_environment(args.threads)
    header[-1] += f"; {describe_thread_timeout(environment)}"
    print("\n".join(header), flush=True)
    rates = run_live(args.live_processes, args.visits, command, environment, start_live)
    lines = [*live_report(rates), f"load average at end {os.getloadavg()[0]:.2f}"]
    print("\n".join(lines))
    if args.markdown is not None:
        write_atomically(args.markdown, "\n".join(["```", *header, *lines, "```", ""]))
        print(f"wrote {args.markdown}")
    return 0


def argv_has(argv, option: str) -> bool:
    """Whether ``option`` was given on the command line (``argv``, or ``sys.argv`` when None)."""
    return any(arg == option or arg.startswith(option + "=") for arg in (sys.argv[1:] if argv is None else argv))


def main(argv=None, run=run_worker, start_live=LiveProcess) -> int:
    """Run the benchmark.

    ``run(command, environment)`` runs one worker and ``start_live(command, environment)`` starts
    one live worker; tests replace them.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--batches", type=int, default=10, help="batches per repeat")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="threads of every framework (2; 1 on a machine that other processes load)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per round")
    parser.add_argument("--processes", "--rounds", dest="rounds", type=int, default=2,
                        help="fresh processes per framework and T, started in turns (each framework "
                             "once per round); from 4 on, the spread across processes is judged "
                             "for separate speed modes")
    parser.add_argument("--live-processes", type=int, metavar="N",
                        help="sdsnn_bio only: start N worker processes, keep them alive and visit them "
                             "in turn (--visits rounds, each visit 1 untimed + --batches timed batches); "
                             "reports the spread between processes, between rounds (time) and the rest")
    parser.add_argument("--visits", type=int, metavar="M",
                        help="rounds of visits with --live-processes (each process visited once per round)")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(DEFAULT_FRAMEWORKS),
                        help="'snntorch[1 thread]' (not run by default) is snnTorch on one thread: "
                             "a reference when other processes slow its 2 OpenMP threads down")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each worker, wait up to this long for other processes to use "
                             "< 0.15 core (shared machines)")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="also write the header, the table and the verdicts as Markdown to FILE")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--live-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps[0], args.batches, args.repeats, args.batch_size, args.threads)
        return 0
    if args.live_worker:
        live_worker(args.steps[0], args.batches, args.batch_size, args.threads)
        return 0
    if args.live_processes is not None or args.visits is not None:
        return main_live(parser, args, argv, start_live)
    if args.markdown is not None and not args.markdown.parent.is_dir():
        parser.error(f"--markdown: the folder {args.markdown.parent} does not exist")
    order = turns(args.frameworks, args.rounds)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    environment = thread_environment(args.threads)
    # PyTorch's OpenMP threads keep spinning between parallel regions instead of sleeping: on a
    # dedicated machine that is what they do anyway; on a shared one it keeps them from losing their
    # core to another process (with the default, PyTorch fell to 5% of its speed here). Only PyTorch
    # uses OpenMP among the frameworks measured.
    environment.setdefault("OMP_WAIT_POLICY", "ACTIVE")
    header = [f"machine: {machine()}", f"versions: {versions()}",
              f"command: python benchmarks/throughput.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
              f"network {ARCH[0]}-{ARCH[1]}-{ARCH[2]}, batch {args.batch_size}, {args.threads} thread(s), "
              f"{args.rounds} processes (rounds) x {args.repeats} repeats x {args.batches} batches; "
              f"{describe_thread_timeout(environment)}; load average at start {os.getloadavg()[0]:.2f}"]
    print("\n".join(header))
    print("columns: median (min-max) over all timed repeats; memory in MiB; hidden rate = hidden "
          "spikes per neuron and step; others = cores used by other processes during the runs")
    print(f"{'T':>4} {'framework':>18} {'median samples/s':>17} {'(min-max)':>15} "
          f"{'RSS before':>11} {'training peak':>14} {'+training':>10} {'hidden rate':>12} "
          f"{'others':>7}")
    rows, failures = {}, {}
    for n_steps in args.steps:
        runs = {framework: [] for framework in args.frameworks}
        for framework in order:
            if (n_steps, framework) in failures:
                continue
            command = [sys.executable, __file__, "--worker", framework, "--steps", str(n_steps),
                       "--batches", str(args.batches), "--repeats", str(args.repeats),
                       "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
            if args.quiet_wait > 0:
                wait_until_quiet(0.15, args.quiet_wait)
            done, others = run(command, environment)
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines()
                failures[(n_steps, framework)] = lines[-1] if lines else "failed"
                continue
            runs[framework].append({**json.loads(done.stdout.strip().splitlines()[-1]), "others_cores": others})
            measured = " ".join(f"{rate:.1f}" for rate in runs[framework][-1]["samples_per_second"])
            print(f"  T={n_steps} {framework}: {measured} samples/s, others {others:.2f} cores",
                  file=sys.stderr, flush=True)
        for framework in args.frameworks:
            if (n_steps, framework) in failures:
                print(f"{n_steps:>4} {framework:>18} not measured: {failures[(n_steps, framework)]}")
                continue
            row = rows[(n_steps, framework)] = summarise(runs[framework])
            spread = f"({row['min']:.0f}-{row['max']:.0f})"
            print(f"{n_steps:>4} {framework:>18} {row['median']:>17.1f} {spread:>15} {row['rss_before']:>11.0f} "
                  f"{row['peak']:>14.0f} {row['extra']:>10.0f} {row['hidden_rate']:>12.4f} {row['others']:>7.2f}")
    comparisons = []
    for n_steps in args.steps:
        for ours in (f for f in args.frameworks if f in OURS):
            for peer in (f for f in args.frameworks if f not in OURS):
                if (n_steps, ours) in rows and (n_steps, peer) in rows:
                    ratio = compare(rows[(n_steps, ours)], rows[(n_steps, peer)])
                    comparisons.append(f"T={n_steps}: {ours} / {peer} throughput = {ratio['median']:.2f}x "
                                       f"(worst case, our slowest / their fastest repeat: {ratio['worst']:.2f}x), "
                                       f"training peak memory = {ratio['peak']:.2f}x")
        single, double = rows.get((n_steps, "sdsnn_bio[float32]")), rows.get((n_steps, "sdsnn_bio"))
        if single and double:
            comparisons.append(f"T={n_steps}: sdsnn_bio float32 / float64 throughput = "
                               f"{single['median'] / double['median']:.2f}x (medians; range of the repeats "
                               f"{single['min'] / double['max']:.2f}x-{single['max'] / double['min']:.2f}x), "
                               f"training peak memory = {single['peak'] / double['peak']:.2f}x")
    verdicts = [target_verdict(rows, n_steps) for n_steps in args.steps]
    spreads = [f"T={n_steps} {framework}: {rows[(n_steps, framework)]['processes']['note']}"
               for n_steps in args.steps for framework in args.frameworks
               if (n_steps, framework) in rows and args.rounds >= 2]
    footer = f"load average at end {os.getloadavg()[0]:.2f}"
    if spreads:
        print("per-process speed (each process's median repeat):")
        print("\n".join(spreads))
    print("\n".join([*comparisons, *verdicts, footer]))
    if args.markdown is not None:
        table = markdown_table(rows, failures, args.steps, args.frameworks)
        if spreads:
            table += "\n" + process_table(rows, args.steps, args.frameworks)
        text = "\n".join(["```", *header, footer, "```", "", table, *(f"* {line}" for line in verdicts), ""])
        write_atomically(args.markdown, text)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
