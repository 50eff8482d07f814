"""Cost of the structural step inside finished runs, read from their ``result.json`` files.

Every development-log entry of an SD-SNN run records the wall time of its step (rules plus the
scheduler's bookkeeping; training syncs Brian2 lazily, so the ``Synapses`` are rebuilt at the next
Brian2 run, not inside the step) and the synapses it removed and added; every history entry
records the wall time of its epoch (training batches plus development steps). This script pools
them over the runs given and prints medians (steps that changed the connectivity and steps that
did not) and shares:

    python benchmarks/development_cost_from_runs.py runs/seeds/points/seed=0 runs/seeds/points/seed=1 ...

Each argument is a run folder holding ``dense/result.json`` and ``sdsnn/result.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def _load(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (expected a finished run with this model)")
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with dense/ and sdsnn/)")
    args = parser.parse_args()

    steps, changing, plain, dense_epochs, sdsnn_epochs = [], [], [], [], []
    development_total = sdsnn_training_total = 0.0
    for run in args.runs:
        dense, sdsnn = _load(run / "dense" / "result.json"), _load(run / "sdsnn" / "result.json")
        dense_epochs += [entry["seconds"] for entry in dense["history"]]
        sdsnn_epochs += [entry["seconds"] for entry in sdsnn["history"]]
        sdsnn_training_total += sum(entry["seconds"] for entry in sdsnn["history"])
        for entry in sdsnn["development_log"]:
            steps.append(entry["seconds"])
            development_total += entry["seconds"]
            changed = sum(entry["synapses_added"].values()) + sum(entry["synapses_removed"].values())
            (changing if changed else plain).append(entry["seconds"])
    if not steps:
        raise SystemExit("no development steps in the runs given")
    dense_epoch = statistics.median(dense_epochs)
    step_plain = statistics.median(plain) if plain else None
    step_change = statistics.median(changing) if changing else None

    def share(step):
        return None if step is None else step / dense_epoch

    print(json.dumps({
        "command": " ".join(["python", "benchmarks/development_cost_from_runs.py", *sys.argv[1:]]),
        "runs": len(args.runs),
        "development_steps": len(steps),
        "steps_changing_connectivity": len(changing),
        "median_step_seconds_unchanged": step_plain,
        "median_step_seconds_changing": step_change,
        "median_epoch_seconds_dense": dense_epoch,
        "median_epoch_seconds_sdsnn": statistics.median(sdsnn_epochs),
        "step_share_of_dense_epoch_unchanged": share(step_plain),
        "step_share_of_dense_epoch_changing": share(step_change),
        "development_share_of_sdsnn_training": development_total / sdsnn_training_total,
        "steps_per_epoch": len(steps) / len(sdsnn_epochs),
    }, indent=2))


if __name__ == "__main__":
    main()
