"""Fingerprint of a fixed development trajectory: SHA-256 of every array and record, step by step.

Two versions of sdsnn_bio that print the same digests developed bit-identical structures (weights,
connectivity, spine state, alive masks), development logs (``StructuralScheduler.step`` records
without ``seconds`` and ``rebuilt``, which describe time and Brian2 work, not results) and Brian2
spikes. Use it to check that a change to the rules or the scheduler changes no result:

    python benchmarks/development_identity.py                     # 2312-800-10, 40 steps
    python benchmarks/development_identity.py --sync lazy         # the same digests expected
    PYTHONPATH=/path/to/old/checkout python benchmarks/development_identity.py   # the old code

The trajectory (seeded) exercises every rule on an N-MNIST-sized network: K = 3 (constraint from
step 3, pruning and regeneration from step 6), initial pruning rate 0.3, N = 1 and
``revival_min_synapses = 5``. Between steps, as a stand-in for learning, every weight moves by
Gaussian noise, 1 % of the existing weights are pushed 5 % beyond a bound (clipping, then
enlargement) and 30 absent synapses per projection get a large latent weight (regrowth and
revival). After the last step the Brian2 network is brought up to date with
``network.load_structure`` and presents 3 random samples; their spikes are fingerprinted too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np


def digest(*parts) -> str:
    """SHA-256 of arrays (dtype, shape and bytes) and JSON-able objects."""
    sha = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            sha.update(f"{part.dtype.str}{part.shape}".encode())
            sha.update(np.ascontiguousarray(part).tobytes())
        else:
            sha.update(json.dumps(part, sort_keys=True).encode())
    return sha.hexdigest()


def structure_arrays(structure) -> list[np.ndarray]:
    arrays = structure.to_arrays()
    return [np.asarray(arrays[key]) for key in sorted(arrays)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[800])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sync", choices=["eager", "lazy"], default=None,
                        help="StructuralScheduler(sync=...); default: the scheduler's own default")
    parser.add_argument("--quiet", action="store_true", help="print the final digests only")
    args = parser.parse_args()

    import brian2

    from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
    from sdsnn_bio.model import NetworkParameters, SpikingNetwork, configure_brian2, initial_structure

    configure_brian2("numpy")
    brian2.BrianLogger.suppress_name("unused_brian_object")
    brian2.seed(args.seed)
    params = NetworkParameters(hidden_sizes=tuple(args.hidden))
    rng = np.random.default_rng(args.seed)
    structure = initial_structure(params, rng)
    network = SpikingNetwork(structure, params)
    rules = DevelopmentParameters(consecutive_steps=3, initial_pruning_rate=0.3, regrowth_consecutive_steps=1,
                                  revival_min_synapses=5)
    options = {} if args.sync is None else {"sync": args.sync}
    scheduler = StructuralScheduler(network, structure, Schedule(steps_per_epoch=1), rules, **options)

    total = hashlib.sha256()
    seconds = []
    for step in range(args.steps):
        for projection in structure.projections:  # stand-in for learning between steps
            scale = float(np.abs(projection.weight).mean())
            projection.weight += rng.normal(0.0, 0.05 * scale, projection.shape)
            existing = np.flatnonzero(projection.exists)
            if existing.size:
                pushed = rng.choice(existing, size=max(1, existing.size // 100), replace=False)
                upper = projection.spine.upper.ravel()[pushed]
                lower = projection.spine.lower.ravel()[pushed]
                outward = np.where(rng.random(pushed.size) < 0.5, 1.05 * upper, 1.05 * lower)
                np.put(projection.weight, pushed, outward)
            absent = np.flatnonzero(~projection.exists)
            if absent.size:
                boosted = rng.choice(absent, size=min(absent.size, 30), replace=False)
                np.put(projection.weight, boosted, 3.0 * float(np.abs(projection.weight).max()))
        started = time.perf_counter()
        record = scheduler.step()
        seconds.append(time.perf_counter() - started)
        log = {key: value for key, value in record.items() if key not in ("seconds", "rebuilt")}
        step_digest = digest(log, *structure_arrays(structure))
        total.update(step_digest.encode())
        if not args.quiet:
            print(f"step {record['development_step']:3d} {step_digest[:16]}  "
                  f"alive {record['neurons_alive']}  added {record['synapses_added']}  "
                  f"removed {record['synapses_removed']}  pruned {record['neurons_pruned']}  "
                  f"revived {record['neurons_revived']}", flush=True)

    network.load_structure(structure)
    samples = []
    for _ in range(3):
        channels = rng.choice(params.n_input, size=400, replace=False)
        samples.append((channels, rng.integers(0, params.n_steps, size=channels.size)))
    recording = network.present(samples)
    spikes = [np.asarray(array) for name in sorted(recording.spikes) for array in recording.spikes[name]]
    print(json.dumps({
        "architecture": [params.n_input, *params.hidden_sizes, params.n_output],
        "steps": args.steps,
        "sync": args.sync or "default",
        "development_digest": total.hexdigest(),
        "brian2_spikes_digest": digest(*spikes),
        "brian2_spikes": {name: int(len(recording.spikes[name][0])) for name in sorted(recording.spikes)},
        "median_step_seconds": float(np.median(seconds)),
    }, indent=1))


if __name__ == "__main__":
    main()
