"""Cost of one SD-SNN structural step on the N-MNIST-sized network (2312-800-10 by default).

A step, as ``StructuralScheduler.step`` times it (its ``seconds``): the rules
(``develop_structure``), copying the result into the structure shared with the learner, writing
the weights into the Brian2 ``Synapses`` and rebuilding those whose connectivity changed, telling the
learner, and the record. Three kinds of steps are timed separately:

* ``spines``: spine update only (the first K steps);
* ``spines+constraint``: spine update and constraint, connectivity unchanged (steps K to 2K);
* ``all_rules_with_rebuild``: every rule, each step pruning a few more neurons, so the two
  projections touching the hidden layer are rebuilt (the most expensive kind of step);
* ``all_rules_no_change``: every rule, the pruning rate reached and nothing regrowing (the steps
  after the neurotrophic rate has converged).

Brian2 runs on the numpy target (nothing is compiled; with Cython the rebuilt ``Synapses`` keep
their name, so their code is compiled once and reused).

    python benchmarks/development_step.py                  # 2312-800-10, 5 repeats
    python benchmarks/development_step.py --hidden 100 --repeats 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[800])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import brian2

    from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
    from sdsnn_bio.learning.learner import Learner, LearningParameters
    from sdsnn_bio.model import NetworkParameters, SpikingNetwork, configure_brian2, initial_structure

    configure_brian2("numpy")
    # Rebuilt Synapses replaced before any run are deleted unrun: intended here.
    brian2.BrianLogger.suppress_name("unused_brian_object")
    params = NetworkParameters(hidden_sizes=tuple(args.hidden))
    rng = np.random.default_rng(0)
    structure = initial_structure(params, rng)
    network = SpikingNetwork(structure, params)
    learner = Learner(structure, params.layer_dynamics(), LearningParameters(), n_threads=1)
    rules = DevelopmentParameters(consecutive_steps=args.repeats, initial_pruning_rate=0.05,
                                  output_trophic_gain=0.0, hidden_trophic_gain=0.0)
    scheduler = StructuralScheduler(network, structure, Schedule(interval_batches=1), rules, learner)

    timings: dict[str, list[float]] = {"spines": [], "spines+constraint": [], "all_rules_with_rebuild": [],
                                       "all_rules_no_change": []}
    rebuilt = []
    for kind in timings:
        for repeat in range(args.repeats):
            for projection in structure.projections:  # stand-in for learning between steps
                projection.weight += rng.normal(0.0, 1e-3, projection.shape)
            if kind == "all_rules_with_rebuild":  # a rising rate: every step prunes again
                scheduler.state = dataclasses.replace(scheduler.state, pruning_rates={
                    name: 0.05 * (repeat + 1) for name in scheduler.state.pruning_rates})
            record = scheduler.step()
            expected = {"spines": ["spines"], "spines+constraint": ["spines", "constrain"]}.get(
                kind, ["spines", "constrain", "prune", "regenerate"])
            assert [name for name, on in record["actions"].items() if on] == expected
            if kind == "all_rules_no_change":
                assert record["rebuilt"] == [], "nothing pruned or regrown"
            timings[kind].append(record["seconds"])
            if kind == "all_rules_with_rebuild":
                rebuilt.append(record["rebuilt"])
    print(json.dumps({
        "architecture": [params.n_input, *params.hidden_sizes, params.n_output],
        "potential_synapses": sum(p.exists.size for p in structure.projections),
        "brian2_target": "numpy",
        "seconds": timings,
        "median_seconds": {kind: statistics.median(values) for kind, values in timings.items()},
        "rebuilt": rebuilt,
    }, indent=1))


if __name__ == "__main__":
    main()
