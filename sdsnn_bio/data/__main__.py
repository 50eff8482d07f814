"""Command line of the data module.

``python -m sdsnn_bio.data describe [--sample FILE] [--root ROOT] [--cache-dir DIR]``
    Print the calibration table of ``docs/data.md``: statistics of the real sample recording and
    mean +- sd over the embedded dataset (both splits), and over a real folder if ``--root`` is given.
``python -m sdsnn_bio.data generate --cache-dir DIR``
    Generate the embedded dataset into ``DIR`` (if not already there) and print the wall time.
``python -m sdsnn_bio.data emulate-idx IMAGES LABELS --output DIR --train N [--validation N] [--test N]``
    Record an IDX image file (e.g. MNIST's ``train-images-idx3-ubyte.gz``) with the emulated event
    camera into an N-MNIST folder with a stratified split (:mod:`sdsnn_bio.data.convert`); options
    ``--seed``, ``--workers``, ``--digit-box``, ``--no-progress``. Rerun the same command to resume.
``python -m sdsnn_bio.data split-idx IMAGES LABELS --output DIR --train N [--validation N] [--test N]``
    Write the same stratified split as ``emulate-idx`` (same ``--seed``, same counts: the same
    digits) of the IDX images themselves as ``train-*``, ``validation-*`` and ``t10k-*`` IDX files
    with a ``provenance.json`` (:mod:`sdsnn_bio.data.idx_split`), the layout the MNIST reader
    opens; option ``--no-gzip``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
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


def _emulate_idx(parser, args, argv) -> int:
    from .convert import emulate_idx
    from .format import DataError

    for name in ("train", "validation", "test", "seed", "workers", "digit_box"):
        low = 1 if name in ("train", "workers") else 0
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {getattr(args, name)}")
    words = sys.argv[1:] if argv is None else list(argv)
    command = "python -m sdsnn_bio.data " + shlex.join(words)
    try:
        provenance = emulate_idx(args.images, args.labels, args.output, train=args.train,
                                 validation=args.validation, test=args.test, seed=args.seed,
                                 workers=args.workers, digit_box=args.digit_box or None,
                                 progress=not args.no_progress, command=command)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({
        "output": str(Path(args.output).expanduser()),
        "split_sizes": provenance["request"]["split_sizes"],
        "recordings_written": provenance["recordings_written"],
        "recordings_already_present": provenance["recordings_already_present"],
        "wall_seconds": provenance["wall_seconds"],
    }, indent=2))
    return 0


def _split_idx(parser, args, argv) -> int:
    from .format import DataError
    from .idx_split import split_idx

    for name in ("train", "validation", "test", "seed"):
        low = 1 if name == "train" else 0
        if getattr(args, name) < low:
            parser.error(f"--{name}: expected an integer >= {low}, got {getattr(args, name)}")
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        provenance = split_idx(args.images, args.labels, args.output, train=args.train, validation=args.validation,
                               test=args.test, seed=args.seed, compress=not args.no_gzip,
                               command="python -m sdsnn_bio.data " + shlex.join(words))
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({
        "output": str(Path(args.output).expanduser()),
        "split_sizes": provenance["request"]["split_sizes"],
        "files": sorted(provenance["files"]),
        "already_present": bool(provenance.get("already_present", False)),
        "wall_seconds": provenance["wall_seconds"],
    }, indent=2))
    return 0


def _add_idx_split_arguments(parser, unit: str, *, output: str, seed: str) -> None:
    """The arguments emulate-idx and split-idx share: the IDX pair, the output and the split."""
    parser.add_argument("images", help="IDX image file, gzip or not (e.g. train-images-idx3-ubyte.gz)")
    parser.add_argument("labels", help="IDX label file, gzip or not (e.g. train-labels-idx1-ubyte.gz)")
    parser.add_argument("--output", required=True, help=output)
    parser.add_argument("--train", type=int, required=True, help=f"training {unit} (stratified)")
    parser.add_argument("--validation", type=int, default=0, help=f"validation {unit} (default 0)")
    parser.add_argument("--test", type=int, default=0, help=f"test {unit} (default 0)")
    parser.add_argument("--seed", type=int, default=0, help=seed)


def main(argv=None) -> int:
    """Run ``python -m sdsnn_bio.data``; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m sdsnn_bio.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="statistics of the real sample and the embedded set")
    describe.add_argument("--sample", default=str(DEFAULT_SAMPLE), help="a real N-MNIST .bin recording")
    describe.add_argument("--root", default=None, help="a real N-MNIST folder to describe as well")
    describe.add_argument("--cache-dir", default=None, help="cache of the embedded dataset")
    generate = commands.add_parser("generate", help="generate the embedded dataset and time it")
    generate.add_argument("--cache-dir", default=None, help="cache folder (default: the usual cache)")
    emulate = commands.add_parser("emulate-idx", help="record IDX images into an N-MNIST folder")
    _add_idx_split_arguments(emulate, "recordings", output="folder to write (rerun the command to resume)",
                             seed="seed of the split and the recordings (default 0)")
    emulate.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    emulate.add_argument("--digit-box", type=int, default=20,
                         help="side of the digit's box in source pixels (MNIST: 20, the default); 0: whole image")
    emulate.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    split = commands.add_parser("split-idx", help="split IDX images into train/validation/test IDX files")
    _add_idx_split_arguments(split, "images", output="folder to create (empty or new)",
                             seed="seed of the split, as emulate-idx's (default 0)")
    split.add_argument("--no-gzip", action="store_true", help="write uncompressed IDX files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.command == "emulate-idx":
        return _emulate_idx(parser, args, argv)
    if args.command == "split-idx":
        return _split_idx(parser, args, argv)

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
