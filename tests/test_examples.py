"""Every example in ``examples/`` runs end to end in quick mode, as a user would run it.

Each example is a subprocess (``python examples/<name>.py`` from the repository root) with
``SDSNN_QUICK=1``, its figures, run folders and the embedded-dataset cache redirected into
temporary folders. A new ``examples/[0-9]*.py`` is picked up automatically and gets the generic
checks (exit code 0, at least one PNG written, nothing written into the repository); the examples
listed in ``EXPECTED`` must also write the named figures and print their measured quantities.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPOSITORY / "examples").glob("[0-9]*.py"))
TIMEOUT_SECONDS = 600
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUMBER = r"-?\d+(?:\.\d+)?"

def _printed_numbers_are_those_of_results_json(stdout: str, runs: Path, example: str) -> None:
    """Example 04's accuracies, removals and SOPs are read from its results.json, not typed."""
    results = json.loads((runs / example / "results.json").read_text(encoding="utf-8"))
    comparison = results["comparison"]
    assert (f"final test accuracy: dense {comparison['dense_test_accuracy']:.4f}, SD-SNN "
            f"{comparison['sdsnn_test_accuracy']:.4f}") in stdout, "the printed accuracies are measured"
    assert (f"SD-SNN removed {100 * comparison['synapses_removed_fraction']:.1f}% of the synapses and "
            f"{100 * comparison['hidden_neurons_removed_fraction']:.1f}% of the hidden neurons") in stdout
    assert (f"SOPs per sample: dense {comparison['dense_sops_per_sample']:.0f}, SD-SNN "
            f"{comparison['sdsnn_sops_per_sample']:.0f}") in stdout, "the printed SOPs are measured"
    assert results["data"]["source"].startswith("embedded"), "without a folder the embedded data is used"
    for name in ("dense", "sdsnn"):
        assert (runs / example / name / "structure.npz").is_file(), f"{name}: final structure saved"


#: Per example: figures it must write (under ``$SDSNN_FIGURES_DIR/<example>/``) and patterns its
#: output must contain (measured numbers, not prose); optionally a further check of its outputs.
EXPECTED = {
    "01_lif_neuron_and_spine_traces": {
        "figures": ["lif_membrane_potential.png", "spine_traces.png"],
        "printed": [
            r"dv/dt = -v / tau_membrane : 1 \(unless refractory\)",  # the package's equations
            r"spine_range_upper : 1",
            rf"hidden_1 neuron: \d+ spikes in 200\. ms \({NUMBER} Hz\); peak potential {NUMBER}",
            r"enlargements of r_upper at steps \[\d+(, \d+)*\]",
            r"shrinkages of the range at steps \[\d+(, \d+)*\]",
            r"weight clipped into its range at \d+ of \d+ steps",
        ],
    },
    "02_synaptic_constraint": {
        "figures": ["weights_in_spine_ranges.png", "constraint_over_development.png",
                    "spine_dynamics.png"],
        "printed": [
            rf"final test accuracy {NUMBER} \(Brian2, \d+ held-out samples\)",
            rf"weights clipped: \d+ clippings in \d+ constrained steps, i\.e\. {NUMBER}% of the weights",
            r"spines enlarged: \d+; spines shrunk: \d+",
            rf"mean spine width \(r_upper \+ \|r_lower\|\): {NUMBER} before, {NUMBER} after",
            # The constraint's invariant: after a development step every weight is in its range.
            r"input_to_hidden_1 \(\d+ synapses; removed: 0\)",
            r"weights outside their range after the last step: 0;",
        ],
    },
    "03_pruning_and_regeneration": {
        "figures": ["pruning.png", "regeneration.png", "spine_dynamics.png", "connectivity.png"],
        "printed": [
            r"pruning and regeneration run from development step \d+ on",
            r"over all steps: \d+ synapses removed, \d+ regrown, \d+ neurons revived",
            rf"final test accuracy {NUMBER} \(Brian2, \d+ samples\), \d+ SOPs per sample",
            r"removed \d+ synapses; Brian2 Synapses 'input_to_hidden_1': \d+ -> \d+ synapses "
            r"\(object rebuilt: True\); latent weights kept: True",
            r"regrew \d+ synapses onto \d+ hidden_1 neurons .*all inside their spine range: True",
            r"ConditionError: condition 'abs\(weight\) < 0\.01': unknown variable 'weight'",
        ],
    },
    "04_pruning_on_nmnist": {
        "figures": ["pruning.png", "regeneration.png", "spine_dynamics.png", "connectivity.png",
                    "rasters.png", "accuracy_vs_compression.png"],
        "printed": [
            rf" dense: final test accuracy {NUMBER} \(Brian2",
            rf" sdsnn: final test accuracy {NUMBER} \(Brian2",
            rf"SD-SNN removed {NUMBER}% of the synapses and {NUMBER}% of the hidden neurons",
            rf"SOPs per sample: dense {NUMBER}, SD-SNN {NUMBER}",
        ],
        "check": _printed_numbers_are_those_of_results_json,
    },
}


def _tree(folder: Path) -> dict[str, float]:
    """Files under ``folder`` with their modification times (empty if it does not exist)."""
    if not folder.is_dir():
        return {}
    return {str(p): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def embedded_cache(tmp_path_factory) -> Path:
    """One embedded-dataset cache shared by every example (generating it takes a while)."""
    from sdsnn_bio.data import load_dataset

    cache = tmp_path_factory.mktemp("embedded_cache")
    dataset = load_dataset(None, "train", cache_dir=cache)
    assert len(dataset) > 0, "the embedded dataset was generated into the shared cache"
    return cache


def test_examples_are_found():
    names = [path.stem for path in EXAMPLES]
    missing = sorted(set(EXPECTED) - set(names))
    assert not missing, f"examples listed in EXPECTED but not in examples/: {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_in_quick_mode(example: Path, tmp_path: Path, embedded_cache: Path):
    figures, runs = tmp_path / "figures", tmp_path / "runs"
    env = {key: value for key, value in os.environ.items() if key != "SDSNN_NMNIST"}
    env.update({
        "SDSNN_QUICK": "1",
        "SDSNN_FIGURES_DIR": str(figures),
        "SDSNN_OUTPUT_DIR": str(runs),
        "SDSNN_BIO_CACHE": str(embedded_cache),
        "MPLBACKEND": "Agg",
        # The package of this checkout, not whichever copy is installed (e.g. editable elsewhere).
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), *filter(None, [os.environ.get("PYTHONPATH")])]),
    })
    # Where the example would write by default outside quick mode (relative to the working folder).
    watched = [REPOSITORY / "figures" / example.stem, REPOSITORY / "runs" / example.stem,
               REPOSITORY / "examples" / "figures"]
    before = [_tree(folder) for folder in watched]

    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(example.relative_to(REPOSITORY))], cwd=REPOSITORY, env=env,
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
    )
    seconds = time.perf_counter() - started
    print(f"{example.name}: {seconds:.1f} s in quick mode")
    assert completed.returncode == 0, (
        f"{example.name} exited with {completed.returncode}\n--- stdout\n{completed.stdout[-4000:]}"
        f"\n--- stderr\n{completed.stderr[-4000:]}"
    )

    written = sorted((figures / example.stem).glob("*.png"))
    assert written, f"{example.name} wrote no figure into $SDSNN_FIGURES_DIR/{example.stem}"
    for path in written:
        with open(path, "rb") as handle:
            assert handle.read(8) == PNG_SIGNATURE, f"{path.name} is a PNG file"
        assert path.stat().st_size > 10_000, f"{path.name} holds a drawn figure, not an empty canvas"
    after = [_tree(folder) for folder in watched]
    for folder, old, new in zip(watched, before, after):
        assert old == new, f"{example.name} wrote into the repository ({folder}) in quick mode"

    expected = EXPECTED.get(example.stem)
    if expected is None:
        return
    names = {path.name for path in written}
    missing = [name for name in expected["figures"] if name not in names]
    assert not missing, f"{example.name} did not write {missing} (wrote {sorted(names)})"
    for pattern in expected["printed"]:
        assert re.search(pattern, completed.stdout), (
            f"{example.name} did not print a line matching {pattern!r}\n--- stdout\n"
            f"{completed.stdout[-4000:]}"
        )
    if "check" in expected:
        expected["check"](completed.stdout, runs, example.stem)
