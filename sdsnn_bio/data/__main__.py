"""Command line of the data module.

``python -m sdsnn_bio.data describe [--sample FILE] [--root ROOT] [--cache-dir DIR]``
    Print the calibration table of ``docs/data.md``: statistics of the real sample recording and
    mean +- sd over the embedded dataset (both splits), and over a real folder if ``--root`` is given.
``python -m sdsnn_bio.data generate --cache-dir DIR``
    Generate the embedded dataset into ``DIR`` (if not already there) and print the wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from . import describe_recordings, load_dataset, read_nmnist_file
from .embedded import embedded_root, read_manifest
from .summary import format_table

#: One real N-MNIST recording (a "4", Orchard et al. 2015) shipped as package data.
DEFAULT_SAMPLE = Path(__file__).resolve().parent / "samples" / "sample_nmnist.bin"


def _both_splits(root, cache_dir):
    for split in ("train", "test"):
        dataset = load_dataset(root, split, cache_dir=cache_dir)
        for index in range(len(dataset)):
            yield dataset[index]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdsnn_bio.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="statistics of the real sample and the embedded set")
    describe.add_argument("--sample", default=str(DEFAULT_SAMPLE), help="a real N-MNIST .bin recording")
    describe.add_argument("--root", default=None, help="a real N-MNIST folder to describe as well")
    describe.add_argument("--cache-dir", default=None, help="cache of the embedded dataset")
    generate = commands.add_parser("generate", help="generate the embedded dataset and time it")
    generate.add_argument("--cache-dir", default=None, help="cache folder (default: the usual cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.command == "generate":
        started = time.perf_counter()
        root = embedded_root(args.cache_dir)
        elapsed = time.perf_counter() - started
        manifest = read_manifest(root) or {}
        print(json.dumps({
            "root": str(root),
            "wall_seconds": round(elapsed, 2),
            "generation_seconds (manifest)": manifest.get("generation_seconds"),
            "n_train": manifest.get("n_train"),
            "n_test": manifest.get("n_test"),
        }, indent=2))
        return 0

    columns = {}
    if args.sample:
        if not Path(args.sample).is_file():
            parser.error(f"--sample: no N-MNIST recording at {args.sample}")
        columns[f"real sample ({Path(args.sample).name})"] = describe_recordings([read_nmnist_file(args.sample)])
    if args.root:
        columns[f"N-MNIST at {args.root}"] = describe_recordings(_both_splits(args.root, None))
    columns["embedded (train + test)"] = describe_recordings(_both_splits(None, args.cache_dir))
    print(format_table(columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
