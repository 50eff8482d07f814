"""Command line: ``sdsnn-bio run | info | plot | sweep``.

``sdsnn-bio run`` (no argument) trains on the embedded offline dataset with the default
configuration; ``sdsnn-bio run CONFIG.toml --set development.enabled=true`` runs SD-SNN development
beside its dense baseline. ``sdsnn-bio --help`` lists everything.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

logger = logging.getLogger("sdsnn_bio")


def build_parser() -> argparse.ArgumentParser:
    """The ``sdsnn-bio`` argument parser (``run``, ``plot``, ``sweep``, ``info``)."""
    parser = argparse.ArgumentParser(
        prog="sdsnn-bio",
        description="Developmental structural plasticity (SD-SNN) in Brian2 spiking networks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", aliases=["train"], help="train, evaluate in Brian2, write results.json")
    run.add_argument("config", nargs="?", help="experiment configuration (TOML); default: built-in")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a configuration value (repeatable)")
    run.add_argument("--data", help="dataset folder (sets data.root; N-MNIST: Train/ and Test/, or Train.zip "
                                    "and Test.zip; see data.dataset)")
    run.add_argument("--output", help="output folder (default: run.output_dir)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    run.add_argument("--overwrite", action="store_true",
                     help="discard an unfinished run in the output folder and start again")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--keep-checkpoints", action="store_true",
                     help="keep each model's checkpoint.npz (exact float64 state) after it finished")

    info = sub.add_parser("info", help="versions, configuration and dataset summary")
    info.add_argument("config", nargs="?")
    info.add_argument("--set", dest="overrides", action="append", default=[])
    info.add_argument("--data", help="dataset folder to summarise (default: embedded N-MNIST)")

    plot = sub.add_parser(
        "plot", help="figures from results folders (no simulation)",
        description="Figures of the first results folder; with several folders (e.g. one per seed, "
                    "such as a sweep's points/*), accuracy versus compression is drawn over all.",
    )
    plot.add_argument("results", nargs="+", help="folder(s) holding results.json")
    plot.add_argument("--figures", help="output folder for PNG files (default: RUN/figures of the first folder)")
    plot.add_argument("--spine-projection", metavar="NAME",
                      help="projection of the spine-dynamics figure, e.g. input_to_hidden_1 (default: "
                           "figures.spine_projection, else the first whose tracked spine ranges changed)")
    plot.add_argument("--spine-synapses", metavar="K,K,...", type=_positions,
                      help="positions among that projection's tracked synapses, e.g. 0,3,5 (default: "
                           "figures.spine_synapses, else those whose spine range changed)")
    plot.add_argument("--spine-monitor", metavar="NAME",
                      help="draw the synapses recorded by this development monitor instead "
                           "(a [[monitor]] recording w, spine_range_lower and spine_range_upper)")

    sweep = sub.add_parser("sweep", help="parameter and seed sweep on Dask")
    sweep.add_argument("config", nargs="?")
    sweep.add_argument("--set", dest="grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                       help="a grid axis (repeatable); one value = a fixed override")
    sweep.add_argument("--seeds", default="0", help="seeds, e.g. 0-4 or 0,3,7")
    sweep.add_argument("--output", default="runs/sweep", help="sweep folder")
    sweep.add_argument("--scheduler", help="address of a Dask scheduler (default: a LocalCluster)")
    sweep.add_argument("--workers", type=int, default=0, help="LocalCluster workers (0: cores)")
    return parser


def _positions(text: str) -> list[int]:
    """``"0,3,5"`` -> ``[0, 3, 5]`` (argparse type of ``--spine-synapses``)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,3,5, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0 such as 0,3,5, got {text!r}")
    return values


def _load(args):
    from .config import load_config

    config = load_config(args.config)
    overrides = list(getattr(args, "overrides", []))
    if overrides:
        config = config.with_overrides(overrides)
    if getattr(args, "data", None):
        # Set as a value, never spliced into TOML text: paths may hold quotes or backslashes.
        config = config.replace("data", root=args.data)
    return config


def _command_run(args) -> int:
    from .experiment import run_experiment

    config = _load(args)
    from .runfolder import RESULTS

    output = Path(args.output or config.run.output_dir)
    try:
        results = run_experiment(config, output_dir=args.output, resume=args.resume,
                                 progress=not args.quiet, keep_checkpoints=args.keep_checkpoints,
                                 overwrite=args.overwrite)
    except KeyboardInterrupt as err:
        print(interrupted_message(err, output, args.argv), file=sys.stderr)
        return 130
    print(f"results: {output / RESULTS}")
    for name, model in results["models"].items():
        structure = model["structure"]
        if model.get("final_validation_accuracy") is not None:
            validation = model["validation"]
            where = ("from the dataset folder's validation split" if validation.get("source") == "folder"
                     else "carved from the training split")
            print(f"{name:>6}: final-epoch validation accuracy {model['final_validation_accuracy']:.4f} "
                  f"({validation['n_samples']} samples {where})")
        print(
            f"{name:>6}: final test accuracy {model['final_test_accuracy']:.4f} (Brian2, "
            f"{model['test']['n_samples']} held-out samples), "
            f"synapses removed {100 * structure['synapses_removed_fraction']:.1f}%, "
            f"hidden neurons removed {100 * structure['hidden_neurons_removed_fraction']:.1f}%, "
            f"SOPs/sample {model['test']['energy']['sops_per_sample']:.0f}"
        )
    return 0


def interrupted_message(err: KeyboardInterrupt, output: Path, argv: list[str]) -> str:
    """What to tell the user after Ctrl-C: where the checkpoint is and the command that resumes."""
    import shlex

    from .runfolder import unfinished_checkpoints

    checkpoint = getattr(err, "checkpoint", None)
    checkpoints = [checkpoint] if checkpoint else unfinished_checkpoints(output)
    what = str(err) or "interrupted"
    command = "sdsnn-bio " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"]))
    if not checkpoints:
        return (f"sdsnn-bio: {what}; no checkpoint was written yet in {output}, so the run starts "
                f"again from the beginning: {command}")
    return (f"sdsnn-bio: {what}. Checkpoint: {checkpoints[0]}\n"
            f"Continue the run (same result as an uninterrupted one) with:\n  {command}")


def _command_info(args) -> int:
    import brian2
    import numpy
    import tonic

    from . import __version__
    from .experiment import prepare_data

    config = _load(args)
    print(f"sdsnn_bio {__version__}; brian2 {brian2.__version__}, numpy {numpy.__version__}, "
          f"tonic {tonic.__version__}")
    in_force, derived = config.in_force()
    print("configuration in force (every key, defaults included):")
    print(json.dumps(in_force, indent=2, sort_keys=True, default=str))
    if derived:
        print(f"derived from development.consecutive_steps (K): {', '.join(derived)}")
    data = prepare_data(config)
    print(json.dumps(data.description, indent=2))
    return 0


def _command_plot(args) -> int:
    from .plotting import plot_results
    from .runfolder import FIGURES

    figures = args.figures or Path(args.results[0]) / FIGURES  # never the repository's figures/
    written = plot_results(args.results[0], figures, spine_projection=args.spine_projection,
                           spine_synapses=args.spine_synapses, spine_monitor=args.spine_monitor)
    if len(args.results) > 1:
        from .plotting import plot_seed_results

        # Over several runs, accuracy versus compression shows every seed (replaces the one-run plot).
        written = [p for p in written if p.stem != "accuracy_vs_compression"]
        written += plot_seed_results(args.results, figures)
    for path in written:
        print(path)
    return 0


def _command_sweep(args) -> int:
    from .config import load_config
    from .sweep import parse_grid, parse_seeds, run_sweep

    config = load_config(args.config)
    table = run_sweep(
        config, parse_grid(args.grid), parse_seeds(args.seeds), args.output,
        scheduler=args.scheduler, n_workers=args.workers or None,
    )
    import csv

    from .sweep import summarise, summary_markdown

    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    print(summary_markdown(summarise(rows)))
    from .runfolder import SWEEP_SUMMARY

    print(f"sweep table: {table}\nsummary over seeds: {table.parent / SWEEP_SUMMARY}")
    return 0


def main(argv=None) -> int:
    """Run the ``sdsnn-bio`` command line; returns the process exit status.

    First of all, before anything imports NumPy, OpenBLAS is given a short thread timeout unless
    the user set one (:func:`sdsnn_bio.blas.prefer_short_thread_timeout`: its idle threads would
    otherwise spin on the cores the training kernels need).
    """
    from .blas import prefer_short_thread_timeout

    prefer_short_thread_timeout()
    from .config import ConfigError
    from .experiment import TrainingDiverged
    from .progress import ProgressAwareHandler

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    handler = ProgressAwareHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    logging.getLogger("brian2").setLevel(logging.WARNING)
    commands = {"run": _command_run, "train": _command_run, "info": _command_info,
                "plot": _command_plot, "sweep": _command_sweep}
    try:
        return commands[args.command](args)
    except (ConfigError, FileNotFoundError, TrainingDiverged, ValueError, KeyError, IndexError) as err:
        print(f"sdsnn-bio: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
