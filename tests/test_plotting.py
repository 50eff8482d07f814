"""Figures from saved results: each figure draws exactly the data it is given; nothing simulates.

The producers (experiment, development scheduler) write ``results.json``, ``<model>/structure.npz``,
``<model>/rasters.npz`` and ``<model>/checkpoint.npz``; :func:`write_fake_results` writes a small
folder with exactly that schema so the figures are tested without running an experiment.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from sdsnn_bio import plotting
from sdsnn_bio.structure import Population, Projection, SpineState, Structure, atomic_save_npz

N_INPUT = 34 * 34 * 2
N_HIDDEN = 12
N_OUTPUT = 3
N_STEPS_DEV = 6
N_TRACKED = 8
RASTER_STEPS = 20
PJ_PER_SOP = 0.9


# ------------------------------------------------------------------------------------ fake producers
def fake_structure(rng: np.random.Generator, developed: bool) -> Structure:
    """input (2312) → hidden_1 (12) → output (3); developed: some neurons and synapses pruned."""
    sizes = {"input": N_INPUT, "hidden_1": N_HIDDEN, "output": N_OUTPUT}
    populations = [Population(name, size) for name, size in sizes.items()]
    projections = []
    for source, target in (("input", "hidden_1"), ("hidden_1", "output")):
        weight = rng.normal(0.0, 0.1, size=(sizes[source], sizes[target]))
        exists = np.ones_like(weight, dtype=bool)
        if developed:
            exists &= rng.random(weight.shape) < 0.6
        projections.append(Projection(f"{source}_to_{target}", source, target, weight, exists,
                                      SpineState.from_weights(weight)))
    structure = Structure(tuple(populations), tuple(projections))
    if developed:
        hidden = structure.population("hidden_1")
        hidden.alive[[1, 4, 7]] = False
        structure.projection("input_to_hidden_1").exists[:, ~hidden.alive] = False
        structure.projection("hidden_1_to_output").exists[~hidden.alive, :] = False
    return structure


def fake_development_log(rng: np.random.Generator) -> list[dict]:
    """Records shaped like StructuralScheduler.step's, plus batch and epoch as train_model adds."""
    log = []
    weights = rng.normal(0.0, 0.1, size=(N_STEPS_DEV, N_TRACKED))
    exists = np.ones((N_STEPS_DEV, N_TRACKED), dtype=bool)
    exists[2:4, 0] = False  # tracked synapse 0: pruned at step 3, regrown at step 5
    exists[1:, 5] = False  # tracked synapse 5: pruned at step 2 for good
    for s in range(N_STEPS_DEV):
        upper = 0.2 + 0.01 * s + np.arange(N_TRACKED) * 0.001
        lower = -0.2 - 0.02 * s - np.arange(N_TRACKED) * 0.001
        tracked = {
            "input_to_hidden_1": {"w": weights[s].tolist(), "lower": lower.tolist(),
                                  "upper": upper.tolist(), "exists": exists[s].tolist()},
            "hidden_1_to_output": {"w": (weights[s] / 2).tolist(), "lower": (lower / 2).tolist(),
                                   "upper": (upper / 2).tolist(), "exists": [True] * N_TRACKED},
        }
        log.append({
            "batch": 10 * (s + 1), "epoch": 1 + s // 3, "development_step": s + 1,
            "actions": {"spines": True, "constrain": s >= 1, "prune": s >= 2, "regenerate": s >= 2},
            "pruning_rates": {"hidden_1": 0.05 * s},
            "regeneration_percentile": None if s < 2 else min(60 + 1.1 ** (s - 2), 99),
            "neurons_alive": {"input": N_INPUT, "hidden_1": N_HIDDEN - s // 2, "output": N_OUTPUT},
            "neurons_pruned": {"hidden_1": 1 if s in (2, 4) else 0},
            "neurons_revived": {"hidden_1": 0},
            "synapses": {"input_to_hidden_1": N_INPUT * N_HIDDEN - 1000 * s,
                         "hidden_1_to_output": N_HIDDEN * N_OUTPUT - s},
            "synapses_removed": {"input_to_hidden_1": 1000 + 10 * s, "hidden_1_to_output": 1},
            "synapses_added": {"input_to_hidden_1": 3 * s, "hidden_1_to_output": 0},
            "mean_spine_width": {"input_to_hidden_1": 0.4, "hidden_1_to_output": 0.2},
            "tracked_synapses": tracked,
            "sops_per_sample": None if s == 0 else 5000.0 - 400.0 * s,
            "rules": {}, "rebuilt": ["input_to_hidden_1"], "seconds": 0.01,
        })
    return log


def fake_rasters(rng: np.random.Generator, phases=("before", "after")) -> dict[str, np.ndarray]:
    arrays = {"n_steps": np.array(RASTER_STEPS)}
    sizes = {"input": N_INPUT, "hidden_1": N_HIDDEN, "output": N_OUTPUT}
    for name, size in sizes.items():
        arrays[f"sizes/{name}"] = np.array(size)
    for phase in phases:
        for name, size in sizes.items():
            count = int(rng.integers(5, 60))
            arrays[f"{phase}/{name}/sample"] = rng.integers(0, 3, count).astype(np.int32)
            arrays[f"{phase}/{name}/step"] = rng.integers(0, RASTER_STEPS, count).astype(np.int32)
            arrays[f"{phase}/{name}/neuron"] = rng.integers(0, size, count).astype(np.int32)
    return arrays


def fake_result(model: str, seed: int, structure: Structure, log: list[dict], accuracy: float) -> dict:
    total = sum(p.exists.size for p in structure.projections)
    existing = sum(p.n_synapses for p in structure.projections)
    hidden = structure.population("hidden_1")
    summary = structure.summary()
    summary["synapses_removed_fraction"] = 1.0 - existing / total
    summary["hidden_neurons_removed_fraction"] = 1.0 - hidden.n_alive / hidden.size
    sops = 4000.0 if model == "sdsnn" else 6000.0
    return {
        "model": model, "seed": seed, "final_test_accuracy": accuracy,
        "test": {"accuracy": accuracy, "n_samples": 20, "spikes_per_sample": {"hidden_1": 30.0},
                 "energy": {"sops_per_sample": sops, "energy_per_sample_nJ": sops * PJ_PER_SOP / 1000,
                            "picojoule_per_sop": PJ_PER_SOP, "picojoule_per_mac": 4.6}},
        "history": [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "samples_per_second": 10.0,
                     **summary}],
        "development_log": log, "structure": summary, "config": {},
    }


TRACKED = {"input_to_hidden_1": [list(range(100, 108)), list(range(8))],
           "hidden_1_to_output": [list(range(8)), [0, 1, 2, 0, 1, 2, 0, 1]]}


def write_fake_results(directory, seed: int = 0, models=("dense", "sdsnn"), accuracy=None) -> dict:
    """A results folder with the schema run_experiment writes; returns results.json's content."""
    rng = np.random.default_rng(seed)
    config = {"network": {"dt": "1 ms", "hidden_sizes": [N_HIDDEN]}, "run": {"seed": seed}}
    results = {"config": config, "data": {"train_samples": 10}, "models": {}}
    for model in models:
        developed = model == "sdsnn"
        structure = fake_structure(rng, developed)
        log = fake_development_log(rng) if developed else []
        acc = accuracy[model] if accuracy else (0.9 if developed else 0.92)
        result = fake_result(model, seed, structure, log, acc)
        result["config"] = config
        folder = directory / model
        folder.mkdir(parents=True, exist_ok=True)
        structure.save(folder / "structure.npz")
        atomic_save_npz(folder / "rasters.npz", fake_rasters(rng))
        result["tracked_synapses"] = TRACKED if developed else None
        (folder / "result.json").write_text(json.dumps(result), encoding="utf-8")
        results["models"][model] = result
    (directory / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return results


def quick_save(fig, path, dpi=120):
    """Stand-in for save_figure where which figures are made is under test, not their rendering."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def log(rng) -> list[dict]:
    return fake_development_log(rng)


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


# ---------------------------------------------------------------------------------- spine dynamics
def test_spine_dynamics_draws_tracked_weights_inside_their_band(log):
    fig = plotting.plot_spine_dynamics(log, "input_to_hidden_1")
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == N_TRACKED, "one panel per tracked synapse"
    steps = np.arange(1, N_STEPS_DEV + 1)
    for k, ax in enumerate(axes):
        track = {name: np.array([rec["tracked_synapses"]["input_to_hidden_1"][name][k] for rec in log])
                 for name in ("w", "lower", "upper", "exists")}
        line = lines_by_label(ax)["weight w"]
        np.testing.assert_array_equal(line.get_xdata(), steps, err_msg="x is the development step")
        np.testing.assert_allclose(line.get_ydata(), track["w"], err_msg="line = tracked weights")
        (band,) = ax.collections
        vertices = {tuple(np.round(v, 12)) for v in band.get_paths()[0].vertices}
        for s, low, high in zip(steps, track["lower"], track["upper"]):
            assert (s, round(low, 12)) in vertices and (s, round(high, 12)) in vertices, \
                "the band spans [r_lower, r_upper] at every step"


def test_spine_dynamics_marks_pruning_and_regrowth_at_the_right_steps(log):
    fig = plotting.plot_spine_dynamics(log)  # default: first projection logged
    lines = lines_by_label(fig.axes[0])
    np.testing.assert_array_equal(lines["pruned"].get_xdata(), [3])
    np.testing.assert_array_equal(lines["regrown"].get_xdata(), [5])
    np.testing.assert_array_equal(lines["absent (latent weight)"].get_xdata(), [3, 4])
    lines = lines_by_label(fig.axes[5])
    np.testing.assert_array_equal(lines["pruned"].get_xdata(), [2])
    assert "regrown" not in lines, "a synapse that never regrew has no regrowth marker"
    assert {"pruned", "regrown"}.isdisjoint(lines_by_label(fig.axes[1])), "synapse 1 always existed"


def test_spine_dynamics_subset_labels_and_errors(log):
    fig = plotting.plot_spine_dynamics(log, "hidden_1_to_output", synapses=[2, 6],
                                       labels=[f"syn {k}" for k in range(N_TRACKED)])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["syn 2", "syn 6"]
    expected = [rec["tracked_synapses"]["hidden_1_to_output"]["w"][6] for rec in log]
    np.testing.assert_allclose(lines_by_label(axes[1])["weight w"].get_ydata(), expected)
    with pytest.raises(KeyError, match="no_such_projection"):
        plotting.plot_spine_dynamics(log, "no_such_projection")
    with pytest.raises(IndexError, match="not a tracked synapse"):
        plotting.plot_spine_dynamics(log, synapses=[N_TRACKED])
    with pytest.raises(ValueError, match="empty log"):
        plotting.plot_spine_dynamics([])
    with pytest.raises(ValueError, match="tracked_synapses"):
        plotting.plot_spine_dynamics([{"development_step": 1}])


def test_a_figure_to_draw_into_must_be_empty(log):
    fig = Figure()
    fig.add_subplot()
    with pytest.raises(ValueError, match="empty Figure"):
        plotting.plot_pruning(log, fig=fig)
    mine = Figure()
    assert plotting.plot_pruning(log, fig=mine) is mine, "the caller's figure is drawn into"


# ------------------------------------------------------------------------------------------- pruning
def test_pruning_draws_rates_and_neurons_alive(log):
    fig = plotting.plot_pruning(log, layer_sizes={"hidden_1": N_HIDDEN})
    rate_ax, alive_ax = fig.axes
    rates = np.array([rec["pruning_rates"]["hidden_1"] for rec in log])
    alive = np.array([rec["neurons_alive"]["hidden_1"] for rec in log])
    np.testing.assert_allclose(lines_by_label(rate_ax)["hidden_1"].get_ydata(), rates)
    lines = lines_by_label(alive_ax)
    np.testing.assert_array_equal(lines["hidden_1: neurons alive"].get_ydata(), alive)
    np.testing.assert_allclose(lines["hidden_1: target (1 − p_l) × size"].get_ydata(), (1 - rates) * N_HIDDEN)
    np.testing.assert_array_equal(lines["hidden_1: layer size"].get_ydata(), [N_HIDDEN, N_HIDDEN])
    assert "pruning rate" in rate_ax.get_ylabel() and "development step" in alive_ax.get_xlabel()


def test_pruning_without_sizes_and_with_a_missing_rate(log):
    log = [dict(rec) for rec in log]
    log[0]["pruning_rates"] = {}  # before pruning starts a layer may have no rate yet
    fig = plotting.plot_pruning(log)
    rate = lines_by_label(fig.axes[0])["hidden_1"].get_ydata()
    assert np.isnan(rate[0]) and np.all(np.isfinite(rate[1:]))
    assert len(fig.axes[1].get_lines()) == 1, "no size lines without layer sizes"


# -------------------------------------------------------------------------------------- regeneration
def test_regeneration_draws_q_and_synapse_changes(log):
    fig = plotting.plot_regeneration(log)
    q_ax, change_ax, count_ax = fig.axes
    q = lines_by_label(q_ax)["q"].get_ydata()
    assert np.all(np.isnan(q[:2])), "steps without regeneration have no q"
    np.testing.assert_allclose(q[2:], [rec["regeneration_percentile"] for rec in log[2:]])
    added_bars, removed_bars = change_ax.containers
    added = [sum(rec["synapses_added"].values()) for rec in log]
    removed = [sum(rec["synapses_removed"].values()) for rec in log]
    np.testing.assert_allclose([b.get_height() for b in added_bars], added)
    np.testing.assert_allclose([b.get_height() for b in removed_bars], np.negative(removed))
    counts = lines_by_label(count_ax)
    assert set(counts) == {"input_to_hidden_1", "hidden_1_to_output"}
    np.testing.assert_array_equal(counts["hidden_1_to_output"].get_ydata(),
                                  [rec["synapses"]["hidden_1_to_output"] for rec in log])


def test_regeneration_per_projection_and_mapping_q(log):
    log = [dict(rec, regeneration_percentile={"input_to_hidden_1": 61.0 + s, "hidden_1_to_output": 70.0})
           for s, rec in enumerate(log)]
    fig = plotting.plot_regeneration(log, projection="hidden_1_to_output")
    q_lines = lines_by_label(fig.axes[0])
    np.testing.assert_allclose(q_lines["input_to_hidden_1"].get_ydata(), 61.0 + np.arange(N_STEPS_DEV))
    removed_bars = fig.axes[1].containers[1]
    np.testing.assert_allclose([b.get_height() for b in removed_bars], [-1] * N_STEPS_DEV)


def test_regeneration_that_never_ran_says_so(log):
    log = [dict(rec, regeneration_percentile=None) for rec in log]
    fig = plotting.plot_regeneration(log)
    assert any("not active" in t.get_text() for t in fig.axes[0].texts)


# -------------------------------------------------------------------------------------- connectivity
def test_connectivity_histograms_and_pixel_maps(rng):
    dense, developed = fake_structure(rng, False), fake_structure(rng, True)
    fig = plotting.plot_connectivity({"dense": dense, "developed": developed})
    image_axes = [ax for ax in fig.axes if ax.images]
    hist_axes = [ax for ax in fig.axes if ax.patches]
    assert len(image_axes) == 4 and len(hist_axes) == 2, "2 rows: histogram + ON + OFF maps"
    for ax, structure in zip(hist_axes, (dense, developed)):
        heights = [patch.get_height() for patch in ax.patches]
        assert sum(heights) == structure.population("hidden_1").n_alive, "one count per surviving neuron"
    proj, alive = developed.projection("input_to_hidden_1"), developed.population("hidden_1").alive
    reach = (proj.exists[:, alive].sum(axis=1) / alive.sum()).reshape(2, 34, 34)
    on_map, off_map = (ax.images[0].get_array() for ax in image_axes[2:])
    assert on_map.shape == (34, 34)
    np.testing.assert_allclose(on_map, reach[1], err_msg="ON map is polarity 1")
    np.testing.assert_allclose(off_map, reach[0], err_msg="OFF map is polarity 0")
    np.testing.assert_allclose(image_axes[0].images[0].get_array(), 1.0, err_msg="dense reaches all")


def test_connectivity_of_a_non_sensor_projection_has_no_maps(rng):
    developed = fake_structure(rng, True)
    fig = plotting.plot_connectivity({"developed": developed}, "hidden_1_to_output")
    assert len(fig.axes) == 1 and not fig.axes[0].images
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert sum(heights) == N_OUTPUT
    with pytest.raises(ValueError, match="at least one structure"):
        plotting.plot_connectivity({})


# ---------------------------------------------------------------------------------- receptive fields
def test_receptive_fields_are_sensor_maps_of_weights_with_absent_synapses_masked(rng):
    structure = fake_structure(rng, True)
    proj = structure.projection("input_to_hidden_1")
    p, y, x = 1, 3, 5
    channel = (p * 34 + y) * 34 + x
    proj.weight[channel, 0] = 0.77
    proj.exists[channel, 0] = True
    fig = plotting.plot_receptive_fields(structure, neurons=[0, 2])
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 4, "2 neurons × (ON, OFF)"
    on_image = image_axes[0].images[0].get_array()
    assert on_image.shape == (34, 34)
    assert on_image[y, x] == pytest.approx(0.77), "channel (p*34 + y)*34 + x lands on pixel (x, y) of polarity p"
    off_image = image_axes[2].images[0].get_array()
    weights = proj.weight[:, 0].reshape(2, 34, 34)
    exists = proj.exists[:, 0].reshape(2, 34, 34)
    np.testing.assert_array_equal(np.ma.getmaskarray(off_image), ~exists[0], err_msg="absent = masked")
    np.testing.assert_allclose(off_image.compressed(), weights[0][exists[0]])
    assert image_axes[0].get_ylabel().startswith("ON") and image_axes[2].get_ylabel().startswith("OFF")


def test_receptive_fields_default_to_surviving_neurons(rng):
    structure = fake_structure(rng, True)
    fig = plotting.plot_receptive_fields(structure, n_neurons=20)
    alive = structure.population("hidden_1").alive
    titles = [ax.get_title() for ax in fig.axes if ax.images and ax.get_title()]
    drawn = [int(t.split("#")[1].split("\n")[0]) for t in titles]
    assert drawn == np.flatnonzero(alive).tolist(), "every surviving neuron, no pruned one"
    with pytest.raises(ValueError, match="cannot be shown"):
        plotting.plot_receptive_fields(structure, "hidden_1_to_output")


# -------------------------------------------------------------------------------------------- rasters
def test_raster_point_counts_equal_spike_counts(rng):
    rasters = fake_rasters(rng)
    fig = plotting.plot_rasters(rasters, dt_ms=0.5)
    assert len(fig.axes) == 3 * 2, "one row per population, one column per phase"
    for ax in fig.axes:
        phase = "before" if ax.get_title().startswith("before") else "after"
        name = ax.get_title().split(": ")[1].split(",")[0]
        (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        offsets = points.get_offsets()
        sample = rasters[f"{phase}/{name}/sample"]
        assert len(offsets) == sample.size, f"{phase}/{name}: one point per spike"
        np.testing.assert_allclose(offsets[:, 0], (sample * RASTER_STEPS + rasters[f"{phase}/{name}/step"]) * 0.5)
        np.testing.assert_array_equal(offsets[:, 1], rasters[f"{phase}/{name}/neuron"])
    assert fig.axes[-1].get_xlabel().startswith("time (ms)")


def test_rasters_with_only_the_before_phase_and_a_population_subset(rng):
    rasters = fake_rasters(rng, phases=("before",))
    fig = plotting.plot_rasters(rasters, populations=["hidden_1"])
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel().startswith("time step")
    with pytest.raises(KeyError, match="hidden_9"):
        plotting.plot_rasters(rasters, populations=["hidden_9"])
    with pytest.raises(ValueError, match="before"):
        plotting.plot_rasters({"n_steps": np.array(5), "sizes/input": np.array(3)})


# ------------------------------------------------------------------------- accuracy vs compression
def test_accuracy_vs_compression_mean_and_sd_over_seeds():
    results = [
        {"model": "dense", "seed": s, "final_test_accuracy": a, "structure": {"synapses_removed_fraction": 0.0}}
        for s, a in enumerate((0.90, 0.92, 0.94))
    ] + [
        {"model": "sdsnn", "seed": s, "final_test_accuracy": a, "structure": {"synapses_removed_fraction": r}}
        for s, (a, r) in enumerate(((0.88, 0.40), (0.90, 0.50), (0.89, 0.60)))
    ]
    fig = plotting.plot_accuracy_vs_compression(results)
    (ax,) = fig.axes
    assert len(ax.containers) == 2, "one mean ± sd marker per model"
    dense, developed = ax.containers
    np.testing.assert_allclose(developed.lines[0].get_xdata().astype(float), [50.0])
    np.testing.assert_allclose(developed.lines[0].get_ydata().astype(float), [89.0])
    y_bar = developed.lines[2][1].get_segments()[0]
    np.testing.assert_allclose(y_bar[:, 1], [89.0 - 1.0, 89.0 + 1.0], err_msg="sample sd of 88, 90, 89 is 1")
    x_bar = developed.lines[2][0].get_segments()[0]
    np.testing.assert_allclose(x_bar[:, 0], [40.0, 60.0], err_msg="sample sd of 40, 50, 60 is 10")
    np.testing.assert_allclose(dense.lines[0].get_ydata().astype(float), [92.0])
    seeds = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in seeds) == 6, "every seed drawn as a dot"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("SD-SNN" in t and "over 3 seeds" in t for t in labels)


def test_accuracy_vs_compression_takes_sweep_rows_and_an_axes():
    rows = [{"model": "sdsnn", "seed": s, "accuracy": 0.8 + 0.01 * s, "synapses_removed_fraction": 0.3,
             "param": f"development.consecutive_steps={k}"} for k in (10, 18) for s in range(2)]
    fig = Figure()
    ax = fig.add_subplot()
    assert plotting.plot_accuracy_vs_compression(rows, ax=ax) is fig
    assert len(ax.containers) == 2, "one group per parameter value"
    np.testing.assert_allclose(ax.containers[0].lines[0].get_ydata().astype(float), [80.5])
    with pytest.raises(ValueError, match="got keys"):
        plotting.plot_accuracy_vs_compression([{"accuracy": 0.5}])
    with pytest.raises(ValueError, match="no finished result"):
        plotting.plot_accuracy_vs_compression([])


def test_sweep_figure_rows_are_accepted():
    from sdsnn_bio.sweep import _figure_rows

    rows = [{"point": "p", "seed": 0, "status": "done", "model": "dense", "final_test_accuracy": 0.9,
             "synapses_removed_fraction": 0.0, "param:network.hidden_sizes": "[100]"},
            {"point": "q", "seed": 0, "status": "failed", "model": ""}]
    fig = plotting.plot_accuracy_vs_compression(_figure_rows(rows))
    assert len(fig.axes[0].containers) == 1, "failed points are not drawn"


# --------------------------------------------------------------------------------------------- energy
def test_energy_is_sops_times_energy_per_sop(log):
    fig = plotting.plot_energy(log, PJ_PER_SOP, reference_sops={"dense baseline": 6000.0})
    sops_ax, energy_ax = fig.axes
    sops = np.array([np.nan if rec["sops_per_sample"] is None else rec["sops_per_sample"] for rec in log])
    label = "SD-SNN, training batch after each step"
    np.testing.assert_allclose(lines_by_label(sops_ax)[label].get_ydata(), sops)
    np.testing.assert_allclose(lines_by_label(energy_ax)[label].get_ydata(), sops * PJ_PER_SOP / 1000.0)
    np.testing.assert_allclose(lines_by_label(energy_ax)["dense baseline"].get_ydata(), [5.4, 5.4])
    assert "nJ" in energy_ax.get_ylabel()
    with pytest.raises(ValueError, match="picojoule_per_sop"):
        plotting.plot_energy(log, 0.0)
    with pytest.raises(ValueError, match="sops_per_sample"):
        plotting.plot_energy([dict(rec, sops_per_sample=None) for rec in log], PJ_PER_SOP)


# ------------------------------------------------------------------------------------ results folders
def test_plot_results_writes_every_figure(tmp_path):
    results_dir, figures = tmp_path / "run", tmp_path / "figures"
    write_fake_results(results_dir)
    written = plotting.plot_results(results_dir, figures, dpi=30)
    assert sorted(p.name for p in written) == sorted(plotting.FIGURE_NAMES.values())
    for path in written:
        assert path.parent == figures and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(figures.glob(".*")), "no temporary file is left behind"


def test_plot_results_skips_what_a_dense_only_run_lacks(tmp_path, monkeypatch):
    write_fake_results(tmp_path / "run", models=("dense",))
    drawn = {}

    def recording_save(fig, path, dpi=120):
        drawn[path.name] = fig
        return quick_save(fig, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", recording_save)
    written = plotting.plot_results(tmp_path / "run", tmp_path / "figures")
    assert sorted(p.name for p in written) == ["accuracy_vs_compression.png", "connectivity.png",
                                              "rasters.png", "receptive_fields.png"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(p.name for p in written)
    rasters = drawn["rasters.png"]
    assert rasters.axes[0].get_title().startswith("dense baseline before training")
    assert rasters.axes[-1].get_xlabel().startswith("time (ms)"), "network.dt = 1 ms from the echoed config"


def test_plot_results_of_an_sdsnn_only_run_without_sops(tmp_path, monkeypatch):
    results = write_fake_results(tmp_path / "run", models=("sdsnn",))
    for record in results["models"]["sdsnn"]["development_log"]:
        record["sops_per_sample"] = None
    (tmp_path / "run" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    monkeypatch.setattr(plotting, "save_figure", quick_save)
    written = {p.name for p in plotting.plot_results(tmp_path / "run", tmp_path / "figures")}
    assert written == set(plotting.FIGURE_NAMES.values()) - {"energy.png"}, "no SOPs logged: no energy figure"


def test_plot_results_labels_tracked_synapses_from_the_result(tmp_path):
    results = write_fake_results(tmp_path / "run")
    developed = results["models"]["sdsnn"]
    labels = plotting._tracked_labels(tmp_path / "run" / "sdsnn", "input_to_hidden_1", developed)
    assert labels[0] == "input[100] → hidden_1[0]" and len(labels) == N_TRACKED
    fig = plotting.plot_spine_dynamics(developed["development_log"], labels=labels)
    assert fig.axes[3].get_title() == "input[103] → hidden_1[3]"


def test_tracked_synapse_labels_of_an_older_run_come_from_its_checkpoint(tmp_path):
    from sdsnn_bio import runfolder

    write_fake_results(tmp_path / "run")
    folder = tmp_path / "run" / "sdsnn"
    structure = runfolder.load_structure(folder / "structure.npz")
    runfolder.write_checkpoint(folder / "checkpoint.npz", structure, {},
                               {"scheduler_state": {"rules": {}, "tracked": TRACKED}})
    labels = plotting._tracked_labels(folder, "hidden_1_to_output", {"model": "sdsnn"})
    assert labels[1] == "hidden_1[1] → output[1]" and len(labels) == N_TRACKED


def test_plot_results_names_a_missing_or_malformed_results_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "results.json")):
        plotting.plot_results(tmp_path, tmp_path / "figures")
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="results.json: malformed results file, not valid JSON"):
        plotting.plot_results(tmp_path, tmp_path / "figures")
    (tmp_path / "results.json").write_text('{"config": {}}', encoding="utf-8")
    with pytest.raises(ValueError, match="'models' mapping"):
        plotting.plot_results(tmp_path, tmp_path / "figures")
    assert not (tmp_path / "figures").exists(), "nothing is written for a bad results file"


def test_cli_plot_prints_paths_and_reports_errors(tmp_path, capsys, monkeypatch):
    from sdsnn_bio.cli import main

    monkeypatch.setattr(plotting, "save_figure", quick_save)
    write_fake_results(tmp_path / "run")
    (tmp_path / "run" / "sdsnn" / "rasters.npz").unlink()
    (tmp_path / "run" / "dense" / "rasters.npz").unlink()
    assert main(["plot", str(tmp_path / "run"), "--figures", str(tmp_path / "fig")]) == 0
    printed = capsys.readouterr().out.split()
    expected = sorted(set(plotting.FIGURE_NAMES.values()) - {"rasters.png"})
    assert sorted(printed) == [str(tmp_path / "fig" / name) for name in expected], \
        "every figure but the rasters, whose files are missing"
    assert main(["plot", str(tmp_path / "nothing"), "--figures", str(tmp_path / "fig")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_plot_seed_results_over_three_seeds(tmp_path):
    folders = []
    for seed in range(3):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        results = {"config": {"run": {"seed": seed}}, "models": {
            "dense": {"model": "dense", "seed": seed, "final_test_accuracy": 0.9,
                      "structure": {"synapses_removed_fraction": 0.0}},
            "sdsnn": {"model": "sdsnn", "seed": seed, "final_test_accuracy": 0.85 + 0.01 * seed,
                      "structure": {"synapses_removed_fraction": 0.5}},
        }}
        (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
        folders.append(folder)
    (written,) = plotting.plot_seed_results(folders, tmp_path / "figures")
    assert written == tmp_path / "figures" / "accuracy_vs_compression.png" and written.is_file()
    with pytest.raises(FileNotFoundError, match="missing"):
        plotting.plot_seed_results([tmp_path / "missing"], tmp_path / "figures")


def test_plotting_leaves_global_matplotlib_state_alone(tmp_path):
    """No pyplot import (no current figure, no backend selection): figures are plain Figure objects."""
    code = (
        "import sys\n"
        "from sdsnn_bio import plotting\n"
        "fig = plotting.plot_accuracy_vs_compression([{'accuracy': 0.9, 'synapses_removed_fraction': 0.1}])\n"
        f"plotting.save_figure(fig, {str(tmp_path / 'f.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (tmp_path / "f.png").is_file()


def _flat_except(log: list[dict], projection: str, moving: list[int]) -> list[dict]:
    """A copy of ``log`` where only ``moving`` tracked synapses of ``projection`` change range."""
    import copy

    log = copy.deepcopy(log)
    first = {name: copy.deepcopy(values) for name, values in log[0]["tracked_synapses"].items()}
    for rec in log:
        for name, values in rec["tracked_synapses"].items():
            for key in ("lower", "upper"):
                values[key] = [v if (name == projection and k in moving) else first[name][key][k]
                               for k, v in enumerate(values[key])]
    return log


def test_spine_figure_defaults_to_the_synapses_whose_range_changed(log):
    flat_output = _flat_except(log, "input_to_hidden_1", [1, 4])
    # the hidden -> output synapses are logged first and stay flat: they are not the default
    for rec in flat_output:
        rec["tracked_synapses"] = dict(reversed(list(rec["tracked_synapses"].items())))
    assert plotting.changed_spine_synapses(flat_output) == ("input_to_hidden_1", [1, 4])
    both = [dict(reversed(list(rec["tracked_synapses"].items()))) for rec in log]
    both = [{**rec, "tracked_synapses": tracked} for rec, tracked in zip(log, both)]
    assert plotting.changed_spine_synapses(both)[0] == "input_to_hidden_1", (
        "both changed: network order (input -> hidden first), not the log's or alphabetical order")
    assert plotting.changed_spine_synapses(flat_output, "hidden_1_to_output") == (
        "hidden_1_to_output", list(range(N_TRACKED))), "nothing changed there: every tracked synapse"
    with pytest.raises(KeyError, match="'hidden_9_to_output' has no tracked synapses"):
        plotting.changed_spine_synapses(flat_output, "hidden_9_to_output")


def test_plot_results_draws_the_chosen_projection_and_synapses(tmp_path, monkeypatch):
    from sdsnn_bio.cli import main

    results = write_fake_results(tmp_path / "run")
    developed = results["models"]["sdsnn"]
    developed["development_log"] = _flat_except(developed["development_log"], "input_to_hidden_1", [2, 6])
    results["config"]["figures"] = {"spine_projection": "", "spine_synapses": [], "spine_monitor": ""}
    (tmp_path / "run" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    drawn = []

    def spy(log, projection=None, *, synapses=None, labels=None, fig=None):
        drawn.append((projection, list(synapses)))
        return Figure()

    monkeypatch.setattr(plotting, "plot_spine_dynamics", spy)
    monkeypatch.setattr(plotting, "save_figure", quick_save)
    plotting.plot_results(tmp_path / "run", tmp_path / "figures")
    assert drawn[-1] == ("input_to_hidden_1", [2, 6]), "default: the synapses whose range changed"
    results["config"]["figures"] = {"spine_projection": "hidden_1_to_output", "spine_synapses": [0, 7],
                                    "spine_monitor": ""}
    (tmp_path / "run" / "results.json").write_text(json.dumps(results), encoding="utf-8")
    plotting.plot_results(tmp_path / "run", tmp_path / "figures")
    assert drawn[-1] == ("hidden_1_to_output", [0, 7]), "the run's [figures] configuration"
    assert main(["plot", str(tmp_path / "run"), "--spine-projection", "input_to_hidden_1",
                 "--spine-synapses", "3,5"]) == 0
    assert drawn[-1] == ("input_to_hidden_1", [3, 5]), "the command line wins"


def test_plot_kernels_draws_the_surviving_channels_and_refuses_a_dense_projection():
    from sdsnn_bio.model import NetworkParameters, initial_structure

    params = NetworkParameters.from_layers(["3C3", "AP2", "4C3", "6FC"], (2, 8, 8), 3)
    structure = initial_structure(params, np.random.default_rng(0))
    structure.population("hidden_2").alive[[0, 2]] = False
    structure.projection("hidden_1_to_hidden_2").exists[:, [0, 2]] = False
    fig = plotting.plot_kernels(structure, "hidden_1_to_hidden_2")
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 2 * 3, "one row per surviving channel, one column per input channel"
    assert "pruned: 0, 2" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="is not convolutional"):
        plotting.plot_kernels(structure, "hidden_2_to_hidden_3")


@pytest.mark.parametrize("synapses", [[0], [0, 1], [0, 1, 2, 3, 4]])
def test_spine_figure_title_and_legend_fit_inside_the_figure(log, synapses):
    # With one or two panels the figure used to be as narrow as the panels, and its title and
    # five-entry legend were cut off at both sides.
    fig = plotting.plot_spine_dynamics(log, "input_to_hidden_1", synapses=synapses)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    bounds = fig.bbox
    for artist in [fig._suptitle, *fig.legends]:
        extent = artist.get_window_extent(renderer)
        assert extent.x0 >= bounds.x0 - 0.5 and extent.x1 <= bounds.x1 + 0.5, (
            f"{type(artist).__name__} spans {extent.x0:.0f}..{extent.x1:.0f} px of a {bounds.x1:.0f} px figure")
