"""Brian2 evaluation throughput on the main network: runtime device versus C++ standalone device.

The final test evaluation of ``sdsnn-bio run`` simulates the network of record in Brian2. This
script times it on the main job's network (``examples/configs/embedded.toml``: 2312-800-10, 30 steps
of 10 ms), or on the network of ``--config`` (e.g. the N-MNIST SCNN preset), over recordings of the
configuration's dataset in its encoding (the embedded dataset unless ``data.root`` is set), with
the two devices:

* ``runtime``: :meth:`SpikingNetwork.present` under Brian2's Cython target, ``--runtime-batch``
  samples per ``run()`` (the configuration's ``simulation.evaluation_batch``);
* ``cpp_standalone``: :func:`sdsnn_bio.model.standalone.present_standalone`, ``--standalone-batch``
  samples per run of the compiled program (``simulation.standalone_batch``).

The network is the initial dense structure of the configuration's seed, or a trained one
(``--structure RUN/dense/structure.npz``). Compilation is timed apart (a first pass of one small
batch; the standalone program is built again for the timed batch size, which recompiles one file),
then ``--repeats`` timed passes over ``--samples`` recordings. ``--check N`` also compares the
spikes of both devices on the first N recordings. The load average is printed: on a shared
machine the numbers move with it (CPU seconds, also printed, move less).

    python benchmarks/evaluation.py                       # 1000 recordings, both devices
    python benchmarks/evaluation.py --devices cpp_standalone --samples 2000 --check 100
    python benchmarks/evaluation.py --config examples/configs/released_nmnist_scnn.toml \
        --samples 200 --standalone-batch 200 --check 20
"""

from __future__ import annotations

import argparse
import os
import resource
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


def load_samples(config, n_samples: int):
    """``n_samples`` recordings of the configuration's dataset (test split first, then training),
    encoded as the configuration says (``data.encoding``: e.g. the SCNN presets' frames)."""
    from sdsnn_bio.data.registry import encode_split

    params = config.network_parameters()
    samples = []
    for split in ("test", "train"):
        encoded, _, _ = encode_split(
            config.dataset(), split, root=config.data.root or None, encoding=config.data.encoding,
            input_size=config.data.input_size, dt=params.dt, n_steps=params.n_steps,
        )
        samples.extend(encoded[k] for k in range(min(len(encoded), n_samples - len(samples))))
        if len(samples) == n_samples:
            return samples
    raise SystemExit(f"--samples: the dataset has only {len(samples)} recordings")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the compiled program), in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = function()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--structure", default="", help="a saved structure.npz (default: the initial one)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--devices", default="runtime,cpp_standalone")
    parser.add_argument("--runtime-batch", type=int, default=100)
    parser.add_argument("--standalone-batch", type=int, default=5000)
    parser.add_argument("--directory", default="", help="standalone project directory (default: a new temporary one)")
    parser.add_argument("--check", type=int, default=0, help="compare both devices' spikes on N recordings")
    args = parser.parse_args(argv)

    from sdsnn_bio.config import load_config
    from sdsnn_bio.model import SpikingNetwork, configure_brian2, initial_structure
    from sdsnn_bio.model.standalone import present_standalone
    from sdsnn_bio.runfolder import load_structure

    config = load_config(args.config)
    params = config.network_parameters()
    structure = (load_structure(args.structure) if args.structure
                 else initial_structure(params, np.random.default_rng(config.run.seed)))
    samples = load_samples(config, args.samples)
    input_spikes = np.mean([len(channels) for channels, _ in samples])
    print(f"network {'-'.join(map(str, params.population_sizes))}, {params.n_steps} steps of "
          f"{params.dt}, {sum(p.n_synapses for p in structure.projections)} synapses; {len(samples)} "
          f"recordings, {input_spikes:.0f} input spikes per recording")
    print(f"{describe_thread_timeout()}; load average at start {os.getloadavg()[0]:.2f}")
    configure_brian2("cython")
    devices = args.devices.split(",")
    first = {}
    for device in devices:
        if device == "runtime":
            network = SpikingNetwork(structure, params)

            def simulate(batch=args.runtime_batch, data=samples):
                return [network.present(data[s:s + batch]) for s in range(0, len(data), batch)]
        elif device == "cpp_standalone":
            directory = Path(args.directory or tempfile.mkdtemp(prefix="sdsnn_standalone_"))

            def simulate(batch=args.standalone_batch, data=samples):
                return list(present_standalone(structure, params, data, batch_size=batch, directory=directory))
        else:
            raise SystemExit(f"--devices: unknown device {device!r} (runtime, cpp_standalone)")
        _, wall, cpu = timed(lambda: simulate(data=samples[:2]))
        print(f"{device:>15}: first run of 2 recordings (code generation and compilation) {wall:.1f} s "
              f"(CPU {cpu:.1f} s)")
        if device == "cpp_standalone":
            _, wall, cpu = timed(lambda: simulate(data=samples[:min(len(samples), args.standalone_batch)]))
            print(f"{device:>15}: first run at the timed batch size (recompiles the changed sizes) {wall:.1f} s")
        for repeat in range(args.repeats):
            load = os.getloadavg()[0]
            recordings, wall, cpu = timed(simulate)
            first.setdefault(device, recordings)
            print(f"{device:>15}: repeat {repeat + 1}: {len(samples) / wall:7.1f} samples/s "
                  f"({wall:.2f} s wall, {len(samples) / cpu:7.1f} samples per CPU second; "
                  f"load average {load:.2f} -> {os.getloadavg()[0]:.2f})")
    if args.check and len(first) == 2:
        n = min(args.check, len(samples))
        names = params.population_names[1:]

        def spikes(recordings, name):
            return np.concatenate([r.dense_spikes(name) for r in recordings], axis=1)[:, :n]

        equal = all(np.array_equal(spikes(first["runtime"], name), spikes(first["cpp_standalone"], name))
                    for name in names)
        print(f"spikes of the first {n} recordings equal on both devices: {'yes' if equal else 'NO'}")
        if not equal:
            return 1
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
