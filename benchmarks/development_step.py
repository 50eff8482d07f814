"""Cost of one SD-SNN structural step on the N-MNIST-sized network (2312-800-10 by default).

A step, as ``StructuralScheduler.step`` times it (its ``seconds``): the rules
(``develop_structure``), copying the result into the structure shared with the learner, bringing
the Brian2 network up to date (``sync="eager"``: weights written, ``Synapses`` whose connectivity
changed rebuilt; ``sync="lazy"``: neuron variables only), telling the learner, and the record.
Kinds of steps timed separately (synthetic run from the initial dense structure):

* ``spines``: spine update only (the first K steps);
* ``spines+constraint``: spine update and constraint, connectivity unchanged (steps K to 2K);
* ``all_rules_connectivity_changed``: every rule, each step pruning a few more neurons, so the
  two projections touching the hidden layer change (with ``sync="eager"`` both ``Synapses`` are
  rebuilt: the most expensive kind of step);
* ``all_rules_no_change``: every rule, the pruning rate reached and nothing regrowing (the steps
  after the neurotrophic rate has converged).

With ``--checkpoint`` the steps continue a real run instead (a ``checkpoint.npz`` written by
``sdsnn-bio run``: its structure, Adam state, scheduler state and configuration), with Gaussian
noise (sd 0.002) added to the weights between steps as a stand-in for training; they are timed
as ``connectivity_changed`` and ``no_change``. With ``sync="lazy"`` the deferred Brian2 update
(``scheduler.sync()``, what the next ``network.load_structure`` does) is timed once at the end.

Brian2 runs on the numpy target (nothing is compiled; with Cython the rebuilt ``Synapses`` keep
their name, so their code is compiled once and reused).

    python benchmarks/development_step.py                  # 2312-800-10, 5 repeats, default sync
    python benchmarks/development_step.py --sync lazy --repeats 7
    python benchmarks/development_step.py --hidden 100 --repeats 2
    python benchmarks/development_step.py --checkpoint runs/embedded/sdsnn/checkpoint.npz --repeats 15
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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


def synthetic_steps(args, options) -> tuple[dict, list, object]:
    from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
    from sdsnn_bio.learning.learner import Learner, LearningParameters
    from sdsnn_bio.model import NetworkParameters, SpikingNetwork, initial_structure

    params = NetworkParameters(hidden_sizes=tuple(args.hidden))
    rng = np.random.default_rng(0)
    structure = initial_structure(params, rng)
    network = SpikingNetwork(structure, params)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1)
    rules = DevelopmentParameters(consecutive_steps=args.repeats, initial_pruning_rate=0.05,
                                  output_trophic_gain=0.0, hidden_trophic_gain=0.0)
    scheduler = StructuralScheduler(network, structure, Schedule(steps_per_epoch=1), rules, learner, **options)

    timings: dict[str, list[float]] = {"spines": [], "spines+constraint": [],
                                       "all_rules_connectivity_changed": [], "all_rules_no_change": []}
    rebuilt = []
    for kind in timings:
        for repeat in range(args.repeats):
            for projection in structure.projections:  # stand-in for learning between steps
                projection.weight += rng.normal(0.0, 1e-3, projection.shape)
            if kind == "all_rules_connectivity_changed":  # a rising rate: every step prunes again
                scheduler.state = dataclasses.replace(scheduler.state, pruning_rates={
                    name: 0.05 * (repeat + 1) for name in scheduler.state.pruning_rates})
            record = scheduler.step()
            expected = {"spines": ["spines"], "spines+constraint": ["spines", "constrain"]}.get(
                kind, ["spines", "constrain", "prune", "regenerate"])
            assert [name for name, on in record["actions"].items() if on] == expected
            changed = sum(record["synapses_added"].values()) + sum(record["synapses_removed"].values())
            if kind == "all_rules_no_change":
                assert changed == 0, "nothing pruned or regrown"
            if kind == "all_rules_connectivity_changed":
                assert changed > 0, "neurons pruned"
                rebuilt.append(record["rebuilt"])
            timings[kind].append(record["seconds"])
    return timings, rebuilt, scheduler


def checkpoint_steps(args, options) -> tuple[dict, list, object]:
    from sdsnn_bio.config import ExperimentConfig
    from sdsnn_bio.development import StructuralScheduler
    from sdsnn_bio.learning.learner import Learner
    from sdsnn_bio.model import SpikingNetwork
    from sdsnn_bio.structure import Structure

    with np.load(args.checkpoint, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta"]))
        structure = Structure.from_arrays(saved, source=args.checkpoint)
        config = ExperimentConfig.from_dict(meta["config"])
        params = config.network_parameters()
        learner = Learner(structure, params.layer_dynamics(), config.learning_parameters(), n_threads=1)
        learner.optimizer.load_state_arrays(saved)
    network = SpikingNetwork(structure, params)
    scheduler = StructuralScheduler(network, structure, config.schedule(), config.development_parameters(),
                                    learner, state=meta["scheduler_state"], **options)
    rng = np.random.default_rng(1)
    timings: dict[str, list[float]] = {"connectivity_changed": [], "no_change": []}
    rebuilt = []
    for _ in range(args.repeats):
        for projection in structure.projections:  # stand-in for training between steps
            projection.weight += rng.normal(0.0, 2e-3, projection.shape)
        record = scheduler.step()
        changed = sum(record["synapses_added"].values()) + sum(record["synapses_removed"].values())
        timings["connectivity_changed" if changed else "no_change"].append(record["seconds"])
        rebuilt.append(record["rebuilt"])
    return timings, rebuilt, scheduler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[800])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sync", choices=["eager", "lazy"], default=None,
                        help="StructuralScheduler(sync=...); default: the scheduler's own default")
    parser.add_argument("--checkpoint", default=None, help="continue the run of this checkpoint.npz")
    args = parser.parse_args()

    import brian2

    from sdsnn_bio.model import configure_brian2

    configure_brian2("numpy")
    # Rebuilt Synapses replaced before any run are deleted unrun: intended here.
    brian2.BrianLogger.suppress_name("unused_brian_object")
    load_start = os.getloadavg()[0]
    options = {} if args.sync is None else {"sync": args.sync}
    steps = checkpoint_steps if args.checkpoint else synthetic_steps
    timings, rebuilt, scheduler = steps(args, options)
    deferred = None
    if args.sync == "lazy":
        started = time.perf_counter()
        scheduler.sync()
        deferred = time.perf_counter() - started
    structure = scheduler.structure
    print(json.dumps({
        "command": " ".join(["python", "benchmarks/development_step.py", *sys.argv[1:]]),
        "architecture": [p.size for p in structure.populations],
        "potential_synapses": sum(p.exists.size for p in structure.projections),
        "brian2_target": "numpy",
        "sync": args.sync or "default",
        "load_average_start_end": [load_start, os.getloadavg()[0]],
        "openblas_thread_timeout": describe_thread_timeout(),
        "seconds": timings,
        "median_seconds": {kind: statistics.median(values) for kind, values in timings.items() if values},
        "rebuilt": rebuilt,
        "deferred_sync_seconds": deferred,
    }, indent=1))


if __name__ == "__main__":
    main()
