"""Every example in ``examples/`` runs end to end in quick mode, as a notebook user would run it.

Each example runs once per test session (fixture ``example_runs`` of ``conftest.py``): a subprocess
from the repository root that executes its ``# %%`` code cells in order in one namespace (the
gallery's runner, ``docs/_ext/sdsnn_example_runner.py``), with ``SDSNN_QUICK=1``, its figures, run
folders and the embedded-dataset cache redirected into temporary folders. The same runs give the
documentation site its gallery (``tests/test_docs.py``), so the examples are executed once. A new
``examples/[0-9]*.py`` is picked up automatically and gets the generic checks (every cell ran, at
least one PNG written, nothing written into the repository); the examples listed in ``EXPECTED``
must also write the named figures and print (the cells' output concatenated) their measured
quantities.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, example_runner

# Run in the pytest-xdist worker that builds the documentation site, which shows these same runs
# (fixture ``example_runs``: each example runs once per worker).
pytestmark = pytest.mark.xdist_group("examples")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUMBER = r"-?\d+(?:\.\d+)?"

def _numbers(stdout: str, pattern: str) -> list[float]:
    """The groups of the first line matching ``pattern``, as numbers (the line must exist)."""
    match = re.search(pattern, stdout)
    assert match, f"no line matches {pattern!r}\n--- stdout\n{stdout[-4000:]}"
    return [float(group) for group in match.groups()]


def _integers(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


#: Accuracy that a trained quick-mode example must beat: twice chance on 10 classes (its test sets
#: hold 50-100 samples, so chance alone reaches this with probability below 1e-3).
TRAINED = 0.2


def _check_01(stdout: str, runs: Path, example: str) -> None:
    """Spikes at the printed rate, above-threshold potential; spine events every K steps, in order."""
    spikes, hz, peak = _numbers(stdout, rf"hidden_1 neuron: (\d+) spikes in 200\. ms \(({NUMBER}) Hz\); "
                                        rf"peak potential ({NUMBER})")
    assert spikes >= 1 and hz == pytest.approx(spikes / 0.2, abs=0.05), "rate = spikes / 200 ms"
    assert peak > 1.0, "a spiking neuron's potential crossed the threshold (1)"
    (k,) = _numbers(stdout, r"constraint from step (\d+)")  # the warm-up is K steps
    (n_steps,) = _numbers(stdout, r"development steps: (\d+);")
    enlarged = _integers(re.search(r"enlargements of r_upper at steps \[([\d, ]+)\]", stdout).group(1))
    shrunk = _integers(re.search(r"shrinkages of the range at steps \[([\d, ]+)\]", stdout).group(1))
    assert len(enlarged) >= 2 and len(shrunk) >= 2, "persistent potentiation and depression both act"
    assert set(np.diff(enlarged)) == {k} and set(np.diff(shrunk)) == {k}, "one event per K steps"
    assert max(enlarged) < min(shrunk), "enlargement during potentiation, shrinkage during depression"
    clipped, total = _numbers(stdout, r"weight clipped into its range at (\d+) of (\d+) steps")
    assert total == n_steps and 1 <= clipped <= n_steps - k, "clipped only after the warm-up, and at least once"


def _check_02(stdout: str, runs: Path, example: str) -> None:
    """The constraint acts from its warm-up on, at every step after it, and leaves no weight outside."""
    (accuracy,) = _numbers(stdout, rf"final test accuracy ({NUMBER}) \(Brian2")
    assert TRAINED < accuracy <= 1.0, f"trained network: accuracy {accuracy}"
    n_steps, first = _numbers(stdout, r"(\d+) development steps; the constraint clips weights from development step (\d+) on")
    for projection in ("input_to_hidden_1", "hidden_1_to_output"):
        block = stdout[stdout.index(f"{projection} ("):]
        clippings, constrained = _numbers(block, r"weights clipped: (\d+) clippings in (\d+) constrained steps")
        assert constrained == n_steps - first + 1, f"{projection}: every step from the warm-up on"
        assert clippings >= 1, f"{projection}: the constraint clipped weights"
        enlarged, shrunk = _numbers(block, r"spines enlarged: (\d+); spines shrunk: (\d+)")
        assert enlarged >= 1 and shrunk >= 1, f"{projection}: spines enlarged and shrank"
        (outside,) = _numbers(block, r"weights outside their range after the last step: (\d+);")
        assert outside == 0, f"{projection}: every weight inside its range"


def _check_03(stdout: str, runs: Path, example: str) -> None:
    """Pruning removes, regeneration regrows and revives: each count must be positive."""
    (k,) = _numbers(stdout, r"DevelopmentParameters\(consecutive_steps=(\d+),")
    (start,) = _numbers(stdout, r"pruning and regeneration run from development step (\d+) on")
    assert start == 2 * k + 1, "from step 2K + 1 (1-based), the released warm-up"
    removed, regrown, revived = _numbers(
        stdout, r"over all steps: (\d+) synapses removed, (\d+) regrown, (\d+) neurons revived")
    assert removed >= 1 and regrown >= 1 and revived >= 1, (
        f"removed {removed}, regrown {regrown}, revived {revived}: every mechanism must act")
    (accuracy,) = _numbers(stdout, rf"final test accuracy ({NUMBER}) \(Brian2")
    assert TRAINED < accuracy <= 1.0, f"trained network: accuracy {accuracy}"
    (pruned_now,) = _numbers(stdout, r"removed (\d+) synapses; Brian2 Synapses")
    before, after = _numbers(stdout, r"'input_to_hidden_1': (\d+) -> (\d+) synapses")
    assert pruned_now >= 1 and before - after == pruned_now, "the Brian2 object lost exactly those synapses"
    (regrew,) = _numbers(stdout, r"regrew (\d+) synapses onto")
    assert regrew >= 1, "the condition regrew synapses"


def _printed_numbers_are_those_of_results_json(stdout: str, runs: Path, example: str) -> None:
    """Example 04's accuracies, removals and SOPs are read from its results.json, not typed, and
    show development at work: fewer synapses and SOPs than dense, neurons pruned during the run."""
    results = json.loads((runs / example / "results.json").read_text(encoding="utf-8"))
    comparison = results["comparison"]
    assert TRAINED < comparison["dense_test_accuracy"] <= 1.0, "the dense baseline learned"
    assert 0.05 < comparison["synapses_removed_fraction"] < 1.0, "SD-SNN removed synapses"
    assert comparison["sdsnn_sops_per_sample"] < comparison["dense_sops_per_sample"], "fewer SOPs"
    log = results["models"]["sdsnn"]["development_log"]
    assert len(log) == 20, "20 development steps: one per batch of the one quick epoch"
    pruned = sum(sum(entry["neurons_pruned"].values()) for entry in log)
    revived = sum(sum(entry["neurons_revived"].values()) for entry in log)
    assert pruned >= 1, "neuron pruning acted"
    hidden = results["models"]["sdsnn"]["structure"]["hidden_neurons_removed_fraction"]
    assert hidden == pytest.approx((pruned - revived) / 32), "removed = pruned - revived, of 32 hidden neurons"
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
        "check": _check_01,
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
        "check": _check_02,
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
        "check": _check_03,
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
    "05_development_monitors": {
        "figures": ["monitored_spines.png", "monitored_neurons.png"],
        "printed": [
            # 8 ON channels of the centre row x 4 hidden neurons, 24 bytes (+1 for exists) each.
            r"centre_row: 32 recorded over (\d+) steps, 808 bytes per step, \d+ bytes in all",
            r"hidden_1_monitor: 32 recorded over \d+ steps, 552 bytes per step",
            r"synapses recorded: input\[1736\] → hidden_1\[0\], ",
            r"among the recorded synapses: \d+ prunings and \d+ regrowths between steps",
            rf"hidden neurons alive: 32 at step 1, fewest \d+ at step \d+, \d+ at step \d+",
        ],
    },
    "06_channel_pruning_in_a_conv_sdsnn": {
        "figures": ["channels_alive.png", "surviving_kernels.png"],
        "printed": [
            r"kernel_index : 1 \(constant\)",
            r"Brian2 synapses share \d+ kernel elements; w == pooling_factor \* kernel weight\[kernel_index\]: True",
            r"conv2 channels alive: [1-7] of 8 \(pruned channels: \[\d+(, \d+)*\]\)",  # channels pruned, not all
            r"conv1 channels alive: 4 of 4 \(not developed\)",
            rf"kernel and Brian2 agree on 100\.0% of the samples",
            r"spikes of pruned channels: 0\n",
        ],
    },
}


def test_examples_are_found():
    names = [path.stem for path in EXAMPLES]
    missing = sorted(set(EXPECTED) - set(names))
    assert not missing, f"examples listed in EXPECTED but not in examples/: {missing}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_in_quick_mode(example: Path, example_runs):
    run = example_runs(example)
    failure = example_runner.run_failure(run)
    assert failure is None, failure
    assert len(run["cells"]) == len(example_runner.code_cells(example)), "every code cell ran"
    stdout = example_runner.run_stdout(run)
    folder = example_runs.folder / example.stem
    figures, runs = folder / "figures", folder / "runs"

    written = sorted((figures / example.stem).glob("*.png"))
    assert written, f"{example.name} wrote no figure into $SDSNN_FIGURES_DIR/{example.stem}"
    for path in written:
        with open(path, "rb") as handle:
            assert handle.read(8) == PNG_SIGNATURE, f"{path.name} is a PNG file"
        assert path.stat().st_size > 10_000, f"{path.name} holds a drawn figure, not an empty canvas"
    assert sorted(folder / name for name in example_runner.run_figures(run)) == written, (
        "each figure written is attributed to the cell that wrote it (the gallery shows it there)")
    assert not run["wrote_into_repository"], (
        f"{example.name} wrote into the repository ({run['wrote_into_repository']}) in quick mode")

    expected = EXPECTED.get(example.stem)
    if expected is None:
        return
    names = {path.name for path in written}
    missing = [name for name in expected["figures"] if name not in names]
    assert not missing, f"{example.name} did not write {missing} (wrote {sorted(names)})"
    for pattern in expected["printed"]:
        assert re.search(pattern, stdout), (
            f"{example.name} did not print a line matching {pattern!r}\n--- stdout\n{stdout[-4000:]}"
        )
    if "check" in expected:
        expected["check"](stdout, runs, example.stem)


def test_the_runner_records_each_cell_and_the_failing_one(tmp_path: Path):
    """Check the cell runner behind ``example_runs`` and the gallery.

    Per cell: its output and the figures that appeared or changed after it; a failing cell stops
    the run and is named with its traceback.
    """
    example = tmp_path / "examples" / "99_cells.py"
    example.parent.mkdir()
    example.write_text(
        "# %% [markdown]\n# # A title\n"
        "# %%\nimport os\nfrom pathlib import Path\n"
        "folder = Path(os.environ['SDSNN_FIGURES_DIR']) / '99_cells'\nprint('first', os.environ['SDSNN_QUICK'])\n"
        "# %%\n# %matplotlib inline\nfolder.mkdir(parents=True)\n(folder / 'a.png').write_bytes(b'a')\n"
        "print('second')\n"
        "# %%\n(folder / 'a.png').write_bytes(b'changed')\n(folder / 'b.png').write_bytes(b'b')\n"
        "# %%\nprint('fourth')\nraise RuntimeError('cell four fails')\n"
        "# %%\nprint('never')\n",
        encoding="utf-8")
    run = example_runner.run_example(example, tmp_path, tmp_path / "run", timeout=60)
    assert run["returncode"] == 0 and run["example"] == "99_cells"
    assert [cell["stdout"] for cell in run["cells"]] == ["first 1\n", "second\n", "", "fourth\n"]
    assert [cell["figures"] for cell in run["cells"]] == [
        [], ["figures/99_cells/a.png"], ["figures/99_cells/a.png", "figures/99_cells/b.png"], []]
    assert example_runner.run_figures(run) == ["figures/99_cells/a.png", "figures/99_cells/b.png"]
    assert example_runner.run_stdout(run) == "first 1\nsecond\nfourth\n"
    failure = example_runner.run_failure(run)
    assert failure.startswith("99_cells failed in code cell 4:") and "RuntimeError: cell four fails" in failure
    assert example_runner.load_run(tmp_path / "run", example) == run, "run.json holds the record"
    with pytest.raises(ValueError, match="is not empty"):
        example_runner.run_example(example, tmp_path, tmp_path / "run")
