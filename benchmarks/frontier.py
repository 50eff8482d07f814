r"""Accuracy-vs-compression frontier over several sweeps (labelled), with its table.

Each ``--points LABEL FOLDER`` names a sweep folder (``sdsnn-bio sweep ... --output FOLDER``: its
``points/*/results.json``) or a run folder (``results.json``); every finished model result of the
chosen ``--model`` in it becomes one seed of the row ``LABEL``. The script prints a Markdown table
(mean ± sample sd over seeds of the final validation accuracy, the final test accuracy, synapses
and hidden neurons removed, synaptic operations per test sample) and draws the frontier (test
accuracy against synapses removed, every seed a dot) with
:func:`sdsnn_bio.plotting.plot_accuracy_vs_compression`. Nothing is simulated.

Usage::

    python benchmarks/frontier.py --points dense runs/dense --points "SD-SNN K=9" runs/k9 \\
        --model dense dense --figure figures/frontier.png

``--model LABEL MODEL`` picks the model of a row's results (default ``sdsnn``; the dense
baseline is ``dense``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", action="append", nargs=2, required=True, metavar=("LABEL", "FOLDER"),
                   help="a labelled sweep or run folder (repeatable; order = table order)")
    p.add_argument("--model", action="append", nargs=2, default=[], metavar=("LABEL", "MODEL"),
                   help="model to read for a label (default sdsnn)")
    p.add_argument("--figure", help="write the frontier figure to this file")
    return p.parse_args(argv)


def result_files(folder: Path) -> list[Path]:
    """``results.json`` of a run folder, or of every finished point of a sweep folder."""
    if (folder / "results.json").is_file():
        return [folder / "results.json"]
    files = sorted(folder.glob("points/*/results.json"))
    if not files:
        raise SystemExit(f"{folder}: no results.json and no points/*/results.json (a run or sweep folder)")
    return files


def seed_rows(label: str, folder: Path, model: str) -> list[dict]:
    """One row per finished seed of ``model`` under ``folder``."""
    rows = []
    for path in result_files(folder):
        results = json.loads(path.read_text(encoding="utf-8"))
        result = results.get("models", {}).get(model)
        if result is None:
            raise SystemExit(f"{path}: no model {model!r} (has {sorted(results.get('models', {}))})")
        rows.append({
            "model": model, "param": label, "seed": result.get("seed"),
            "accuracy": float(result["final_test_accuracy"]),
            "validation_accuracy": float(result["final_validation_accuracy"]),
            "synapses_removed_fraction": float(result["structure"]["synapses_removed_fraction"]),
            "hidden_neurons_removed_fraction": float(result["structure"]["hidden_neurons_removed_fraction"]),
            "sops_per_sample": float(result["test"]["energy"]["sops_per_sample"]),
            "source": str(path),
        })
    return rows


def _mean_sd(values, scale: float = 100.0, digits: int = 2) -> str:
    values = scale * np.asarray(values, dtype=np.float64)
    sd = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {sd:.{digits}f}"


def markdown(rows: list[dict], labels: list[str]) -> str:
    """Markdown table of the rows, one line per label (mean ± sample sd over its seeds)."""
    lines = ["| row | seeds | final validation accuracy (%) | final test accuracy (%) | synapses removed (%) "
             "| hidden neurons removed (%) | SOPs / test sample |", "|---|---|---|---|---|---|---|"]
    for label in labels:
        group = [r for r in rows if r["param"] == label]
        seeds = ",".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        sops = np.asarray([r["sops_per_sample"] for r in group])
        sops_sd = sops.std(ddof=1) if sops.size > 1 else 0.0
        lines.append(
            f"| {label} | {seeds} | {_mean_sd([r['validation_accuracy'] for r in group])} "
            f"| {_mean_sd([r['accuracy'] for r in group])} "
            f"| {_mean_sd([r['synapses_removed_fraction'] for r in group])} "
            f"| {_mean_sd([r['hidden_neurons_removed_fraction'] for r in group])} "
            f"| {sops.mean():.3g} ± {sops_sd:.3g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the table (and per-seed numbers), draw the figure if asked."""
    a = parse_args(argv)
    models = dict(a.model)
    rows, labels = [], []
    for label, folder in a.points:
        if label in labels:
            raise SystemExit(f"--points {label!r}: the label is used twice")
        labels.append(label)
        rows += seed_rows(label, Path(folder), models.get(label, "sdsnn"))
    print(markdown(rows, labels))
    for label in labels:
        per_seed = "; ".join(f"seed {r['seed']}: {100 * r['validation_accuracy']:.2f} / {100 * r['accuracy']:.2f}"
                             for r in sorted((r for r in rows if r["param"] == label), key=lambda r: r["seed"]))
        print(f"\n{label} per seed (validation / test): {per_seed}")
    if a.figure:
        from sdsnn_bio.plotting import plot_accuracy_vs_compression, save_figure

        figure = plot_accuracy_vs_compression(rows)
        figure.axes[0].set_title("Development split: accuracy versus compression (dots: seeds)")
        print(f"\nfigure: {save_figure(figure, a.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
