"""Peak memory of loading a dataset for training: ``prepare_data`` on a folder, compact vs int64 lists.

Runs what ``sdsnn-bio run CONFIG --data DIR`` does before training (both splits read and binned on
the configured time grid) and prints the peak resident set size of the process (``ru_maxrss``), the
bytes held by the binned spikes, the spike count and the wall time. ``--storage lists`` keeps every
recording as the two int64 arrays of ``events_to_spikes`` in a Python list instead (the storage
before ``sdsnn_bio.data.binned``), for comparison. Run each storage in its own process: the peak is
per process.

    python benchmarks/data_memory.py /work/data/mnist-emulated
    python benchmarks/data_memory.py /work/data/mnist-emulated --storage lists --set "network.dt=1 ms" --set network.n_steps=300
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="N-MNIST folder (Train/ and Test/)")
    parser.add_argument("--config", default="examples/configs/embedded.toml")
    parser.add_argument("--storage", choices=("compact", "lists"), default="compact")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help='configuration override, e.g. --set "network.dt=1 ms" --set network.n_steps=300')
    args = parser.parse_args()

    from sdsnn_bio.config import load_config

    config = load_config(args.config).with_overrides(args.overrides).replace("data", root=args.root)
    params = config.network_parameters()
    started = time.perf_counter()
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.storage == "compact":
        from sdsnn_bio.experiment import prepare_data

        data = prepare_data(config)
        held = data.train.nbytes + data.test.nbytes
        n_recordings = len(data.train) + len(data.test)
        n_spikes = int(data.train.spike_counts().sum() + data.test.spike_counts().sum())
    else:
        from sdsnn_bio.data import events_to_spikes, load_dataset

        lists = []
        for split in ("train", "test"):
            dataset = load_dataset(args.root, split)
            lists.append([events_to_spikes(dataset[i][0], params.dt, params.n_steps) for i in range(len(dataset))])
        held = sum(c.nbytes + s.nbytes for samples in lists for c, s in samples)
        n_recordings = sum(len(samples) for samples in lists)
        n_spikes = sum(c.size for samples in lists for c, _ in samples)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "root": str(Path(args.root)),
        "dt": str(params.dt),
        "n_steps": params.n_steps,
        "storage": args.storage,
        "recordings": n_recordings,
        "spikes": n_spikes,
        "spike_array_MiB": round(held / 2**20, 1),
        "peak_rss_MiB": round(peak_kib / 1024, 1),
        "peak_rss_before_loading_MiB": round(baseline_kib / 1024, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "python": sys.version.split()[0],
    }, indent=2))


if __name__ == "__main__":
    main()
