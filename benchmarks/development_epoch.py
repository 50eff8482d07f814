"""Wall time of one training epoch with SD-SNN development, and the share its development steps take.

Trains the configured model (default: ``examples/configs/embedded.toml``, 2312-800-10, batches of
32; here with 22.5 development steps per epoch, one every 2 batches) for one epoch with ``train_model(...,
stop_after_batches=...)``, so nothing is evaluated, and reads from the checkpoint the wall time of
the training loop (``epoch_totals.seconds``: training batches + development steps) and the
``seconds`` of every development step. ``development.steps_per_epoch`` defaults to 22.5 and
``development.consecutive_steps`` to 3 here, so that one epoch holds 22 steps and every rule runs
from the 7th step on (pruning, regeneration, revival), as in the later epochs of a real run.

Printed: the epoch's seconds, the development steps' total and median seconds (all steps, and
the steps running every rule), the training seconds (epoch minus development), the share of the
epoch the steps took, and the share one step of the median all-rules cost would take at 1 and at
22.5 steps per epoch (45 batches: a step every 45 and every 2 batches).

    python benchmarks/development_epoch.py
    python benchmarks/development_epoch.py --set learning.threads=1 --set development.steps_per_epoch=9
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":
    # Before NumPy loads OpenBLAS, which reads it once: OpenBLAS's short thread timeout unless the
    # user set one, as the sdsnn-bio command does (sdsnn_bio.blas).
    from sdsnn_bio.blas import prefer_short_thread_timeout

    prefer_short_thread_timeout()

import numpy as np  # noqa: E402  (after the timeout above)

from sdsnn_bio.blas import describe_thread_timeout  # noqa: E402

DEFAULTS = ["run.baseline=false", "development.enabled=true", "development.steps_per_epoch=22.5",
            "development.consecutive_steps=3",
            "simulation.codegen_target=numpy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/configs/embedded.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override KEY=VALUE (after the defaults " + " ".join(DEFAULTS) + ")")
    args = parser.parse_args()

    from sdsnn_bio.config import load_config
    from sdsnn_bio.experiment import CHECKPOINT, prepare_data, train_model

    config = load_config(args.config).with_overrides(DEFAULTS + args.overrides)
    data = prepare_data(config)
    n_batches = math.ceil(len(data.train) / config.learning.batch_size)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        train_model(config, data, directory, development=True, progress=False, stop_after_batches=n_batches)
        with np.load(Path(directory) / CHECKPOINT, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
    log = meta["development_log"]
    epoch = float(meta["epoch_totals"]["seconds"])
    steps = [entry["seconds"] for entry in log]
    all_rules = [entry["seconds"] for entry in log if all(entry["actions"].values())]
    development = float(sum(steps))
    training = epoch - development
    step = statistics.median(all_rules) if all_rules else float("nan")

    def share(steps_per_epoch: int) -> float:
        return steps_per_epoch * step / (training + steps_per_epoch * step)

    print(json.dumps({
        "command": " ".join(["python", "benchmarks/development_epoch.py", *sys.argv[1:]]),
        "overrides": DEFAULTS + args.overrides,
        "load_average_start_end": [load_start, os.getloadavg()[0]],
        "openblas_thread_timeout": describe_thread_timeout(),
        "batches": n_batches,
        "epoch_seconds": epoch,
        "development_steps": len(steps),
        "all_rules_steps": len(all_rules),
        "steps_changing_connectivity": sum(
            1 for entry in log
            if sum(entry["synapses_added"].values()) + sum(entry["synapses_removed"].values())),
        "development_seconds": development,
        "training_seconds": training,
        "development_share_of_epoch": development / epoch,
        "median_step_seconds": statistics.median(steps) if steps else float("nan"),
        "median_all_rules_step_seconds": step,
        "share_at_1_step_per_epoch": share(1),
        "share_at_22_steps_per_epoch": share(22),
    }, indent=1))


if __name__ == "__main__":
    main()
