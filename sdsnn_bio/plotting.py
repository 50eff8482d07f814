"""Figures of SD-SNN development, drawn from saved results (never from a simulation).

Every function takes results or arrays (a ``development_log``, a :class:`~sdsnn_bio.structure.Structure`,
the spike arrays of ``rasters.npz``, a list of results) and an optional ``ax`` (single panel) or
``fig`` (several panels), and returns the :class:`matplotlib.figure.Figure`. Figures are plain
``Figure`` objects, not pyplot figures: no global matplotlib state (backend, current figure) is
touched, and :func:`save_figure` writes them atomically into an explicit folder.

What each figure shows (SD-SNN: Han et al., arXiv 2211.12219; see ``SDSNN_METHOD.md``):

* :func:`plot_spine_dynamics` (section 1): the weight ``w`` of sample synapses inside their spine
  range ``[r_lower, r_upper]`` over development steps, with the steps where a synapse was pruned or
  regrew;
* :func:`plot_pruning` (section 2): the neurotrophic pruning rate ``p_l`` and the neurons alive per
  hidden layer (channels alive for a convolutional layer);
* :func:`plot_kernels`: the kernels of the surviving channels of a convolutional projection (its
  pruned channels listed);
* :func:`plot_regeneration` (section 3): the regeneration percentile ``q = min(60 + 1.1^(s - s0), 99)``,
  synapses added and removed per step, and synapses present per projection;
* :func:`plot_connectivity`: fan-in of the target neurons and, for a W×H×P pixel input,
  the fraction of surviving target neurons each input pixel still reaches (ON and OFF maps);
* :func:`plot_receptive_fields`: input weights of a few surviving hidden neurons as ON and OFF
  (or colour-channel) W×H maps (absent synapses masked);
* :func:`plot_rasters`: Brian2 spike rasters of a few test samples before and after development;
* :func:`plot_accuracy_vs_compression`: test accuracy versus synapses removed, mean ± sd over seeds;
* :func:`plot_monitor`: every variable a development monitor recorded
  (:class:`~sdsnn_bio.development.DevelopmentMonitor`) over development steps;
* :func:`plot_energy`: synaptic operations (SOPs) per sample and the energy estimate
  ``E = SOPs × E_SOP`` over development.

:func:`plot_results` writes every figure its results folder has the data for;
:func:`plot_seed_results` draws accuracy versus compression over several results folders (seeds).

Input channel layout: channel ``c = (p*H + y)*W + x`` for the input ``(W, H, P)`` (x, y pixel, p
polarity: 0 = OFF, 1 = ON, or colour channel of an image), so a weight column reshapes to
``(P, H, W)``. The functions default to N-MNIST's ``(34, 34, 2)``; :func:`plot_results` takes the
layout of the run's dataset from its descriptor (:mod:`sdsnn_bio.data.registry`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import runfolder
from .files import atomic_open
from .structure import Structure

__all__ = [
    "SENSOR_SIZE",
    "FIGURE_NAMES",
    "CONVOLUTION_FIGURE_NAMES",
    "MONITOR_FIGURE",
    "accuracy_compression_rows",
    "load_results",
    "plot_accuracy_vs_compression",
    "plot_connectivity",
    "plot_energy",
    "plot_kernels",
    "plot_monitor",
    "plot_pruning",
    "plot_rasters",
    "plot_receptive_fields",
    "plot_regeneration",
    "plot_results",
    "plot_seed_results",
    "plot_spine_dynamics",
    "changed_spine_synapses",
    "receptive_field",
    "save_figure",
]

logger = logging.getLogger(__name__)

#: Event-camera sensor of N-MNIST as ``(width, height, polarities)``; channel ``(p*H + y)*W + x``.
SENSOR_SIZE = (34, 34, 2)

#: File name of every figure :func:`plot_results` can write (stable across versions).
FIGURE_NAMES = {
    "spine_dynamics": "spine_dynamics.png",
    "pruning": "pruning.png",
    "regeneration": "regeneration.png",
    "connectivity": "connectivity.png",
    "receptive_fields": "receptive_fields.png",
    "rasters": "rasters.png",
    "accuracy_vs_compression": "accuracy_vs_compression.png",
    "energy": "energy.png",
}

#: Figures that :func:`plot_results` writes for convolutional runs only (``network.layers``),
#: instead of ``connectivity`` and ``receptive_fields`` (pixel maps of a fully-connected input).
CONVOLUTION_FIGURE_NAMES = {
    "kernels": "kernels.png",
}

#: File name of the figure of each development monitor (``{name}``: the monitor's name, prefixed
#: with the model's when the results folder holds several models).
MONITOR_FIGURE = "monitor_{name}.png"

MODEL_LABELS = {"dense": "dense baseline", "sdsnn": "SD-SNN"}
WEIGHT_UNIT = "weight w (1 = threshold)"
#: Width (inches) below which the spine figure's title and legend would not fit.
SPINE_FIGURE_MIN_WIDTH = 11.0
PHASE_LABELS = {"before": "before development", "after": "after development"}


# ----------------------------------------------------------------------------------------- helpers
def _new_figure(fig: Figure | None, figsize: tuple[float, float]) -> Figure:
    """A fresh constrained-layout figure, or the caller's figure (which must be empty)."""
    if fig is None:
        return Figure(figsize=figsize, layout="constrained")
    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib.figure.Figure, got {type(fig).__name__}")
    if fig.axes:
        raise ValueError(f"fig: expected an empty Figure to draw into, it already has {len(fig.axes)} axes")
    return fig


def _single_axes(ax, figsize: tuple[float, float]):
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.figure, ax


def _check_log(development_log) -> list[dict]:
    if isinstance(development_log, (str, bytes)) or not isinstance(development_log, Sequence):
        raise TypeError(
            f"development_log: expected a list of development-step records, got {type(development_log).__name__}"
        )
    if len(development_log) == 0:
        raise ValueError("development_log: no development step was recorded (empty log)")
    return list(development_log)


def _development_steps(log: list[dict]) -> np.ndarray:
    """Development step of every record (its position + 1 where the record has none)."""
    return np.array([float(rec.get("development_step", k + 1)) for k, rec in enumerate(log)])


def _integer_steps(ax, max_ticks: int | None = None) -> None:
    """Development steps are integers: no fractional ticks on the x axis.

    ``max_ticks`` bounds the number of ticks (narrow panels of a grid).
    """
    ax.xaxis.set_major_locator(MaxNLocator(nbins=max_ticks or "auto", integer=True))


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _keys_in_order(log: list[dict], field: str) -> list[str]:
    """Keys of the mapping ``record[field]`` over all records, in order of first appearance."""
    keys: list[str] = []
    for rec in log:
        for key in (rec.get(field) or {}):
            if key not in keys:
                keys.append(key)
    return keys


def _series(log: list[dict], field: str, key: str) -> np.ndarray:
    """``record[field][key]`` per record (NaN where absent)."""
    return np.array([_number((rec.get(field) or {}).get(key)) for rec in log])


def _hidden_populations(log: list[dict]) -> list[str]:
    names = _keys_in_order(log, "pruning_rates")
    for name in _keys_in_order(log, "neurons_pruned"):
        if name not in names:
            names.append(name)
    if not names:  # neurons_alive is ordered input, hidden..., output
        names = _keys_in_order(log, "neurons_alive")[1:-1]
    return names


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) via a temporary file and a rename."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with atomic_open(path) as handle:
        fig.savefig(handle, format=fmt, dpi=dpi)
    return path


def _sensor_shape(sensor_size: tuple[int, int, int]) -> tuple[int, int, int]:
    width, height, polarities = (int(v) for v in sensor_size)
    if min(width, height, polarities) < 1:
        raise ValueError(f"sensor_size: expected (width, height, polarities) >= 1, got {sensor_size!r}")
    return width, height, polarities


def _input_shape(results: Mapping) -> tuple[int, int, int]:
    """Input layout of a run from its configuration echo (the dataset's descriptor)."""
    from .data.registry import input_shape_of_config

    try:
        return input_shape_of_config(results.get("config") or {})
    except ValueError as err:
        logger.info("plot: input layout unknown (%s); assuming N-MNIST's %s", err, SENSOR_SIZE)
        return SENSOR_SIZE


def _polarity_label(p: int, polarities: int) -> str:
    if polarities == 2:
        return "ON (p=1)" if p == 1 else "OFF (p=0)"
    if polarities == 3:
        return ("red", "green", "blue")[p]  # an RGB image (e.g. CIFAR-10)
    return f"channel {p}"


# ------------------------------------------------------------------------------- (a) spine dynamics
def _feedforward_position(projection: str) -> tuple:
    """Sort key putting projections in network order: input -> hidden_1 -> ... -> output."""
    source = projection.partition("_to_")[0]
    if source == "input":
        return (0, 0, projection)
    match = re.fullmatch(r"hidden_(\d+)", source)
    return (1, int(match.group(1)), projection) if match else (2, 0, projection)


def changed_spine_synapses(development_log: Sequence[dict], projection: str | None = None,
                           tolerance: float = 1e-9) -> tuple[str, list[int]]:
    """The projection and tracked synapses whose spine range changed over development.

    Parameters
    ----------
    development_log : list of dict
        ``result["development_log"]`` (records with ``tracked_synapses``).
    projection : str, optional
        Look only at this projection; default: the first logged projection (input → hidden
        first) with a tracked synapse whose range changed, else the first logged one.
    tolerance : float
        A range "changed" when ``r_lower`` or ``r_upper`` moved by more than this (weight units).

    Returns
    -------
    projection : str
    synapses : list of int
        Positions among the projection's tracked synapses whose range changed; all of them when
        none did (a run too short for the spine rules to act).
    """
    log = [rec for rec in _check_log(development_log) if rec.get("tracked_synapses")]
    if not log:
        raise ValueError("development_log: no record has 'tracked_synapses' (nothing to draw)")
    names = sorted(_keys_in_order(log, "tracked_synapses"), key=_feedforward_position)
    if projection is not None and projection not in names:
        raise KeyError(f"projection {projection!r} has no tracked synapses; logged: {names}")

    def changed(name: str) -> list[int]:
        records = [rec["tracked_synapses"][name] for rec in log if name in rec["tracked_synapses"]]
        lower = np.array([r["lower"] for r in records], dtype=np.float64)
        upper = np.array([r["upper"] for r in records], dtype=np.float64)
        moved = (np.ptp(lower, axis=0) > tolerance) | (np.ptp(upper, axis=0) > tolerance)
        return [int(k) for k in np.flatnonzero(moved)]

    candidates = [projection] if projection is not None else names
    for name in candidates:
        synapses = changed(name)
        if synapses:
            return name, synapses
    name = candidates[0]
    n_tracked = len(next(rec["tracked_synapses"][name]["w"] for rec in log if name in rec["tracked_synapses"]))
    return name, list(range(n_tracked))


def plot_spine_dynamics(
    development_log: Sequence[dict],
    projection: str | None = None,
    *,
    synapses: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Weight of sample synapses inside their spine range over development steps (SD-SNN §1).

    One panel per tracked synapse: the spine range ``[r_lower, r_upper]`` as a shaded band, the
    weight ``w`` as a line (the latent weight while the synapse is absent, marked with open circles),
    a down-triangle where the synapse was pruned and an up-triangle where it regrew. Before the first
    development step every synapse exists (the initial structure is dense).

    Parameters
    ----------
    development_log : list of dict
        ``result["development_log"]``; records need ``tracked_synapses[projection]`` with lists
        ``w``, ``lower``, ``upper``, ``exists`` (one entry per tracked synapse).
    projection : str, optional
        Projection whose tracked synapses are drawn (default: the first one logged).
    synapses : sequence of int, optional
        Positions among the tracked synapses to draw (default: all).
    labels : sequence of str, optional
        Panel title of each tracked synapse (e.g. its source and target neuron), indexed like the
        tracked synapses.
    fig : Figure, optional
        Empty figure to draw into.

    Notes
    -----
    ``development_log`` may also be a :class:`~sdsnn_bio.development.DevelopmentMonitor` of a
    projection recording ``w``, ``spine_range_lower`` and ``spine_range_upper`` (and, to mark
    pruning and regrowth, ``exists``): its synapses are drawn instead of the log's tracked ones,
    titled ``source[i] → target[j]`` (at most the first :data:`MONITOR_PANELS` unless ``synapses``
    says which).
    """
    if _is_monitor(development_log):
        development_log, projection, labels, synapses = _spine_log_of_monitor(
            development_log, projection, labels, synapses)
    log = [rec for rec in _check_log(development_log) if rec.get("tracked_synapses")]
    if not log:
        raise ValueError("development_log: no record has 'tracked_synapses' (nothing to draw)")
    names = _keys_in_order(log, "tracked_synapses")
    projection = names[0] if projection is None else projection
    log = [rec for rec in log if projection in rec["tracked_synapses"]]
    if not log:
        raise KeyError(f"projection {projection!r} has no tracked synapses; logged: {names}")
    steps = _development_steps(log)

    def field(name: str) -> np.ndarray:
        return np.array([rec["tracked_synapses"][projection][name] for rec in log],
                        dtype=bool if name == "exists" else np.float64)

    weight, lower, upper, exists = field("w"), field("lower"), field("upper"), field("exists")
    n_tracked = weight.shape[1]
    synapses = list(range(n_tracked)) if synapses is None else [int(k) for k in synapses]
    for k in synapses:
        if not 0 <= k < n_tracked:
            raise IndexError(f"synapses: {k} is not a tracked synapse of {projection!r} (0..{n_tracked - 1})")
    if not synapses:
        raise ValueError("synapses: expected at least one tracked synapse to draw")

    ncols = min(4, len(synapses))
    nrows = math.ceil(len(synapses) / ncols)
    # at least SPINE_FIGURE_MIN_WIDTH wide: the title and the five-entry legend do not shrink with
    # the number of panels (with one or two synapses they were cut off)
    fig = _new_figure(fig, (max(3.2 * ncols, SPINE_FIGURE_MIN_WIDTH), 2.5 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
    for position, ax in enumerate(axes.flat):
        if position >= len(synapses):
            ax.set_visible(False)
            continue
        k = synapses[position]
        present = exists[:, k]
        previous = np.concatenate(([True], present[:-1]))
        pruned = previous & ~present
        regrown = ~previous & present
        ax.fill_between(steps, lower[:, k], upper[:, k], color="tab:blue", alpha=0.25, linewidth=0,
                        label="spine range [r_lower, r_upper]")
        ax.plot(steps, weight[:, k], color="black", linewidth=1.2, label="weight w")
        if np.any(~present):
            ax.plot(steps[~present], weight[~present, k], linestyle="none", marker="o", markersize=3.5,
                    markerfacecolor="white", markeredgecolor="tab:gray", label="absent (latent weight)")
        if np.any(pruned):
            ax.plot(steps[pruned], weight[pruned, k], linestyle="none", marker="v", markersize=8,
                    color="tab:red", label="pruned")
        if np.any(regrown):
            ax.plot(steps[regrown], weight[regrown, k], linestyle="none", marker="^", markersize=8,
                    color="tab:green", label="regrown")
        ax.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
        _integer_steps(ax, max_ticks=4)
        ax.set_title(labels[k] if labels is not None else f"tracked synapse {k}", fontsize=9)
        if position % ncols == 0:
            ax.set_ylabel(WEIGHT_UNIT)
        if position // ncols == nrows - 1 or position + ncols >= len(synapses):
            ax.set_xlabel("development step")
    handles = [
        Patch(color="tab:blue", alpha=0.25, label="spine range [r_lower, r_upper]"),
        Line2D([], [], color="black", linewidth=1.2, label="weight w"),
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="white", markeredgecolor="tab:gray",
               label="absent: latent weight"),
        Line2D([], [], linestyle="none", marker="v", color="tab:red", label="pruned at this step"),
        Line2D([], [], linestyle="none", marker="^", color="tab:green", label="regrown at this step"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=8, frameon=False)
    fig.suptitle(f"Spine dynamics of {len(synapses)} sample synapses of {projection}: "
                 "weight inside its spine range (SD-SNN §1)")
    return fig


# ------------------------------------------------------------------------------------- (b) pruning
def plot_pruning(
    development_log: Sequence[dict],
    *,
    populations: Sequence[str] | None = None,
    layer_sizes: Mapping[str, int] | None = None,
    fig: Figure | None = None,
    unit: str = "neurons",
) -> Figure:
    """Neurotrophic pruning rate ``p_l`` and neurons alive per hidden layer (SD-SNN §2).

    Parameters
    ----------
    development_log : list of dict, DevelopmentMonitor or sequence of DevelopmentMonitor
        Records with ``pruning_rates`` and ``neurons_alive`` (per population name); or population
        monitors (:class:`~sdsnn_bio.development.DevelopmentMonitor` of a hidden layer) that record
        ``alive`` (and ``pruning_rate`` for the upper panel): the lower panel then counts the
        *recorded* neurons alive, and the layer size defaults to the number recorded.
    populations : sequence of str, optional
        Layers to draw (default: those with a pruning rate).
    layer_sizes : mapping, optional
        Neurons per layer (``result["structure"]["neurons"]``); adds the layer size and the target
        ``(1 - p_l) × size`` that pruning drives the layer towards (channels for a convolutional
        layer, whose records count channels). From monitors: the recorded neurons per layer.
    fig : Figure, optional
        Empty figure to draw into (two panels).
    unit : str
        What the layers' records count: ``"neurons"``, or ``"channels"`` for convolutional layers,
        which are pruned per channel (``"neurons or channels"`` for a mix).
    """
    if _monitors(development_log):
        development_log, recorded = _pruning_log_of_monitors(_monitors(development_log))
        layer_sizes = recorded if layer_sizes is None else layer_sizes
    log = _check_log(development_log)
    populations = list(populations) if populations is not None else _hidden_populations(log)
    if not populations:
        raise ValueError("development_log: no pruning rate or hidden layer is recorded")
    steps = _development_steps(log)
    fig = _new_figure(fig, (7.0, 6.0))
    rate_ax, alive_ax = fig.subplots(2, 1, sharex=True)
    colors = [f"C{k}" for k in range(len(populations))]
    for name, color in zip(populations, colors):
        rate = _series(log, "pruning_rates", name)
        alive = _series(log, "neurons_alive", name)
        rate_ax.plot(steps, rate, marker=".", color=color, label=f"{name}")
        alive_ax.plot(steps, alive, marker=".", color=color, label=f"{name}: {unit} alive")
        size = None if layer_sizes is None else layer_sizes.get(name)
        if size is not None:
            alive_ax.axhline(size, color=color, linestyle=":", linewidth=1, label=f"{name}: layer size")
            target = (1.0 - np.clip(rate, 0.0, 1.0)) * size
            alive_ax.plot(steps, target, color=color, linestyle="--", linewidth=1,
                          label=f"{name}: target (1 − p_l) × size")
    rate_ax.set_ylabel("pruning rate p_l\n(fraction of the layer)")
    rate_ax.set_title("Neurotrophic pruning rate per hidden layer")
    rate_ax.legend(title="layer", fontsize=8)
    _integer_steps(alive_ax)
    alive_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    alive_ax.set_ylabel(f"{unit} alive (count)")
    alive_ax.set_xlabel("development step")
    alive_ax.set_title(f"Surviving {unit} per hidden layer")
    alive_ax.legend(fontsize=8)
    fig.suptitle("Neuron pruning with a neurotrophic rate (SD-SNN §2)")
    return fig


# -------------------------------------------------------------------------------- (c) regeneration
def plot_regeneration(
    development_log: Sequence[dict],
    *,
    projection: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Regeneration percentile ``q``, synapses added and removed per step, synapses present (§3).

    Parameters
    ----------
    development_log : list of dict, DevelopmentMonitor or sequence of DevelopmentMonitor
        Records with ``regeneration_percentile`` (a number, ``None`` while regeneration is off, or
        a mapping projection → q), ``synapses_added``, ``synapses_removed`` and ``synapses``; or
        projection monitors that record ``exists``: the synapses present among the *recorded*
        ones, and those that appeared (regrown) or disappeared (removed) since the monitor's
        previous step (none at its first step). The percentile ``q`` is not a synapse variable,
        so its panel says so.
    projection : str, optional
        Count added/removed synapses of this projection only (default: summed over projections).
    fig : Figure, optional
        Empty figure to draw into (three panels).
    """
    from_monitors = bool(_monitors(development_log))
    if from_monitors:
        development_log = _regeneration_log_of_monitors(_monitors(development_log))
    log = _check_log(development_log)
    steps = _development_steps(log)
    fig = _new_figure(fig, (7.0, 8.0))
    q_ax, change_ax, count_ax = fig.subplots(3, 1, sharex=True)

    values = [rec.get("regeneration_percentile") for rec in log]
    if from_monitors:
        q_ax.text(0.5, 0.5, "q is a per-step quantity of the development log;\n"
                  "monitors record synapses (see plot_regeneration(development_log))",
                  transform=q_ax.transAxes, ha="center", va="center", color="0.4")
    elif any(isinstance(v, Mapping) for v in values):
        for name in _keys_in_order(log, "regeneration_percentile"):
            q_ax.plot(steps, _series(log, "regeneration_percentile", name), marker=".", label=name)
        q_ax.legend(title="projection", fontsize=8)
    else:
        q = np.array([_number(v) for v in values])
        q_ax.plot(steps, q, marker=".", color="tab:purple", label="q")
    if all(v is None for v in values) and not from_monitors:
        q_ax.text(0.5, 0.5, "regeneration not active in any step", transform=q_ax.transAxes,
                  ha="center", va="center", color="0.4")
    q_ax.set_ylabel("regeneration\npercentile q (%)")
    q_ax.set_title("Regeneration percentile q: a pruned synapse regrows above it")

    projections = _keys_in_order(log, "synapses_added") or _keys_in_order(log, "synapses")
    chosen = projections if projection is None else [projection]
    added = sum((np.nan_to_num(_series(log, "synapses_added", n)) for n in chosen), np.zeros(len(log)))
    removed = sum((np.nan_to_num(_series(log, "synapses_removed", n)) for n in chosen), np.zeros(len(log)))
    width = 0.8 * (np.min(np.diff(steps)) if len(steps) > 1 else 1.0)
    change_ax.bar(steps, added, width=width, color="tab:green", label="added (regrown)")
    change_ax.bar(steps, -removed, width=width, color="tab:red", label="removed")
    change_ax.axhline(0.0, color="black", linewidth=0.6)
    change_ax.set_yscale("symlog", linthresh=1.0)
    change_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    change_ax.set_ylabel("synapses per step\n(removed below 0, symlog)")
    which = "all projections" if projection is None else projection
    change_ax.set_title(f"Synapses added and removed at each development step ({which})")
    change_ax.legend(fontsize=8)

    for name in _keys_in_order(log, "synapses"):
        count_ax.plot(steps, _series(log, "synapses", name), marker=".", label=name)
    count_ax.set_yscale("log")
    count_ax.set_ylabel("synapses present\n(count, log scale)")
    count_ax.set_xlabel("development step")
    _integer_steps(count_ax)
    count_ax.set_title("Synapses present per projection")
    count_ax.legend(title="projection", fontsize=8)
    fig.suptitle("Synaptic regeneration with an adaptive rate (SD-SNN §3)")
    return fig


# -------------------------------------------------------------------------------- (d) connectivity
def plot_connectivity(
    structures: Mapping[str, Structure],
    projection: str = "input_to_hidden_1",
    *,
    sensor_size: tuple[int, int, int] = SENSOR_SIZE,
    fig: Figure | None = None,
) -> Figure:
    """Connectivity of one projection in several structures (e.g. dense baseline and SD-SNN).

    One row per structure: the fan-in histogram of the surviving target neurons (existing incoming
    synapses per neuron) and, when the source is the event-camera input, ON and OFF maps of the
    fraction of surviving target neurons each input pixel still reaches.

    Parameters
    ----------
    structures : mapping label → Structure
        Structures to compare, drawn in order.
    projection : str
        Projection name (default: the input → first hidden layer).
    sensor_size : (width, height, polarities)
        Input layout; maps are drawn only when the source population has ``W*H*P`` neurons.
    fig : Figure, optional
        Empty figure to draw into.
    """
    if not structures:
        raise ValueError("structures: expected at least one structure to draw")
    width, height, polarities = _sensor_shape(sensor_size)
    items = [(label, structure.projection(projection), structure) for label, structure in structures.items()]
    n_source = items[0][1].shape[0]
    maps = n_source == width * height * polarities
    if not maps:
        logger.info("plot_connectivity: %s has %d source neurons, not %dx%dx%d; no pixel maps",
                    projection, n_source, width, height, polarities)
    ncols = 1 + (polarities if maps else 0)
    fig = _new_figure(fig, (3.6 + 3.0 * (ncols - 1), 2.9 * len(items) + 0.6))
    axes = fig.subplots(len(items), ncols, squeeze=False,
                        width_ratios=[1.4] + [1.0] * (ncols - 1))
    bins = np.linspace(0, n_source, 41)
    image = None
    for row, (label, proj, structure) in enumerate(items):
        target = structure.population(proj.target)
        alive = target.alive
        fan_in = proj.exists.sum(axis=0)
        hist_ax = axes[row, 0]
        hist_ax.hist(fan_in[alive], bins=bins, color=f"C{row}",
                     label=f"{target.n_alive}/{target.size} {proj.target} neurons alive")
        hist_ax.set_xlim(0, n_source * 1.02)
        hist_ax.set_ylabel(f"{label}\nneurons (count)")
        hist_ax.set_title(f"{label}: {100 * proj.connectivity:.1f}% of synapses exist", fontsize=9)
        hist_ax.legend(fontsize=7, loc="upper left")
        if row == len(items) - 1:
            hist_ax.set_xlabel(f"fan-in (existing synapses from {proj.source})")
        if not maps:
            continue
        n_alive = max(int(alive.sum()), 1)
        reach = proj.exists[:, alive].sum(axis=1) / n_alive
        reach = reach.reshape(polarities, height, width)
        for p in range(polarities):
            polarity = polarities - 1 - p  # ON first
            ax = axes[row, 1 + p]
            image = ax.imshow(reach[polarity], vmin=0.0, vmax=1.0, cmap="viridis", origin="upper",
                              interpolation="nearest")
            ax.set_title(f"{_polarity_label(polarity, polarities)} pixels: fan-out", fontsize=9)
            ax.set_xlabel("x (pixel)")
            ax.set_ylabel("y (pixel)")
    if image is not None:
        fig.colorbar(image, ax=axes[:, 1:].ravel().tolist(), shrink=0.8,
                     label=f"fraction of surviving {items[0][1].target} neurons reached")
    fig.suptitle(f"Connectivity of {projection}: fan-in per neuron and fan-out per input pixel")
    return fig


def receptive_field(structure: Structure, neuron: int, projection: str = "input_to_hidden_1",
                    sensor_size: tuple[int, int, int] = SENSOR_SIZE) -> np.ma.MaskedArray:
    """Incoming weights of target ``neuron`` as a masked ``(polarities, height, width)`` array.

    Absent synapses are masked (their latent weights are not part of the network).
    """
    width, height, polarities = _sensor_shape(sensor_size)
    proj = structure.projection(projection)
    if proj.shape[0] != width * height * polarities:
        raise ValueError(
            f"{projection}: {proj.shape[0]} source neurons cannot be shown as a "
            f"{width}x{height}x{polarities} sensor (expected {width * height * polarities})"
        )
    if not 0 <= neuron < proj.shape[1]:
        raise IndexError(f"neuron {neuron}: {proj.target} has neurons 0..{proj.shape[1] - 1}")
    field = np.ma.array(proj.weight[:, neuron], mask=~proj.exists[:, neuron])
    return field.reshape(polarities, height, width)


def plot_kernels(structure: Structure, projection: str, *, max_inputs: int = 8,
                 fig: Figure | None = None) -> Figure:
    """Kernels of the surviving output channels of a convolutional projection.

    One row per surviving output channel, one column per input channel (the first ``max_inputs``),
    each a ``k x k`` image of the kernel weights on a common diverging scale; absent kernel
    elements are grey. The pruned channels are listed in the title (their kernels are gone).

    Parameters
    ----------
    structure : Structure
    projection : str
        A projection with a ``"convolution"`` geometry.
    max_inputs : int
        Input channels drawn.
    fig : Figure, optional
        Empty figure to draw into.
    """
    proj = structure.projection(projection)
    geometry = proj.geometry
    if geometry is None or geometry.kind != "convolution":
        raise ValueError(f"plot_kernels: projection {projection!r} is not convolutional")
    if max_inputs < 1:
        raise ValueError(f"plot_kernels: max_inputs must be >= 1, got {max_inputs}")
    k = geometry.kernel_size
    c_in = geometry.source_shape[0]
    # (rows, cols) -> (C_out, C_in, k, k), absent elements NaN.
    weight = np.where(proj.exists, proj.weight, np.nan)
    kernels = weight.reshape(c_in, k, k, geometry.out_channels).transpose(3, 0, 1, 2)
    alive = structure.population(proj.target).alive
    surviving = np.flatnonzero(alive)
    pruned = np.flatnonzero(~alive)
    inputs = min(c_in, int(max_inputs))
    rows = max(surviving.size, 1)
    fig = _new_figure(fig, (1.0 + 0.9 * inputs, 1.2 + 0.8 * rows))
    axes = np.atleast_2d(fig.subplots(rows, inputs, squeeze=False))
    shown = kernels[surviving][:, :inputs]
    finite = shown[np.isfinite(shown)]
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    limit = limit if limit > 0 else 1.0
    cmap = _diverging_with_grey()
    image = None
    for row in range(rows):
        for col in range(inputs):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row >= surviving.size:
                ax.set_visible(False)
                continue
            image = ax.imshow(shown[row, col], cmap=cmap, vmin=-limit, vmax=limit)
            if row == 0:
                ax.set_title(f"in {col}", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"channel {surviving[row]}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label=WEIGHT_UNIT)
    listed = ", ".join(str(c) for c in pruned[:20]) + (" ..." if pruned.size > 20 else "")
    fig.suptitle(f"{projection}: kernels of the {surviving.size} surviving of {alive.size} channels"
                 + (f"\npruned: {listed}" if pruned.size else ""), fontsize=10)
    return fig


def plot_receptive_fields(
    structure: Structure,
    projection: str = "input_to_hidden_1",
    *,
    neurons: Sequence[int] | None = None,
    n_neurons: int = 6,
    sensor_size: tuple[int, int, int] = SENSOR_SIZE,
    fig: Figure | None = None,
) -> Figure:
    """Receptive fields of surviving neurons: input weights as ON and OFF sensor maps.

    Parameters
    ----------
    structure : Structure
        The (developed) structure.
    projection : str
        A projection from the event-camera input (default ``"input_to_hidden_1"``).
    neurons : sequence of int, optional
        Target neurons to draw (default: ``n_neurons`` surviving neurons evenly spread over the
        surviving ones, by index).
    n_neurons : int
        Number of neurons when ``neurons`` is not given.
    sensor_size : (width, height, polarities)
        Input layout (channel ``(p*H + y)*W + x``).
    fig : Figure, optional
        Empty figure to draw into.
    """
    width, height, polarities = _sensor_shape(sensor_size)
    proj = structure.projection(projection)
    target = structure.population(proj.target)
    if neurons is None:
        surviving = np.flatnonzero(target.alive)
        if surviving.size == 0:
            raise ValueError(f"{proj.target}: no surviving neuron to draw")
        count = min(int(n_neurons), surviving.size)
        picks = np.unique(np.round(np.linspace(0, surviving.size - 1, count)).astype(int))
        neurons = surviving[picks].tolist()
    neurons = [int(n) for n in neurons]
    if not neurons:
        raise ValueError("neurons: expected at least one neuron to draw")
    fields = [receptive_field(structure, n, projection, sensor_size) for n in neurons]
    existing = [np.abs(f.compressed()) for f in fields if f.count()]
    vmax = max((float(v.max()) for v in existing if v.size), default=0.0) or 1.0
    cmap = _diverging_with_grey()
    fig = _new_figure(fig, (1.9 * len(neurons) + 1.4, 2.0 * polarities + 1.0))
    axes = fig.subplots(polarities, len(neurons), squeeze=False)
    image = None
    for col, (neuron, field) in enumerate(zip(neurons, fields)):
        state = "" if target.alive[neuron] else " (pruned)"
        for row in range(polarities):
            polarity = polarities - 1 - row  # ON first
            ax = axes[row, col]
            image = ax.imshow(field[polarity], cmap=cmap, vmin=-vmax, vmax=vmax, origin="upper",
                              interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{proj.target} #{neuron}{state}\nfan-in {field.count()}", fontsize=8)
            if col == 0:
                ax.set_ylabel(_polarity_label(polarity, polarities))
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8,
                 label=f"{WEIGHT_UNIT}; grey = absent synapse")
    fig.suptitle(f"Receptive fields of surviving {proj.target} neurons ({projection}, "
                 f"{width}×{height} pixels per polarity)")
    return fig


def _diverging_with_grey():
    import matplotlib

    return matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.82")


# ------------------------------------------------------------------------------------- (e) rasters
def _raster_populations(rasters: Mapping[str, np.ndarray]) -> dict[str, int]:
    return {key.split("/", 1)[1]: int(np.asarray(rasters[key])) for key in rasters
            if key.startswith("sizes/")}


def plot_rasters(
    rasters: Mapping[str, np.ndarray],
    *,
    populations: Sequence[str] | None = None,
    dt_ms: float | None = None,
    phase_labels: Mapping[str, str] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Brian2 spike rasters of a few test samples before and after development.

    Parameters
    ----------
    rasters : mapping of arrays
        The contents of ``rasters.npz``: ``n_steps``, ``sizes/<population>`` and
        ``<phase>/<population>/{sample,step,neuron}`` for phase ``before`` and/or ``after``.
        Samples are drawn one after the other, separated by dotted lines.
    populations : sequence of str, optional
        Populations to draw (default: all, in the file's order).
    dt_ms : float, optional
        Time step in milliseconds; the time axis is in time steps without it.
    phase_labels : mapping, optional
        Panel label of each phase (default ``before development`` / ``after development``).
    fig : Figure, optional
        Empty figure to draw into (one row per population, one column per phase).
    """
    if "n_steps" not in rasters:
        raise ValueError("rasters: missing 'n_steps' (expected the arrays of rasters.npz)")
    n_steps = int(np.asarray(rasters["n_steps"]))
    sizes = _raster_populations(rasters)
    phases = [phase for phase in PHASE_LABELS if any(k.startswith(f"{phase}/") for k in rasters)]
    if not phases:
        raise ValueError("rasters: no 'before/...' or 'after/...' spike arrays")
    populations = list(sizes) if populations is None else list(populations)
    for name in populations:
        if name not in sizes:
            raise KeyError(f"rasters: no population {name!r}; recorded: {list(sizes)}")
    phase_labels = {**PHASE_LABELS, **(phase_labels or {})}
    scale = 1.0 if dt_ms is None else float(dt_ms)
    unit = "time step" if dt_ms is None else "time (ms)"
    fig = _new_figure(fig, (5.2 * len(phases), 2.2 * len(populations) + 0.8))
    axes = fig.subplots(len(populations), len(phases), squeeze=False, sharex=True, sharey="row")
    for col, phase in enumerate(phases):
        n_samples = 0
        for name in populations:
            key = f"{phase}/{name}/sample"
            if key in rasters and np.size(rasters[key]):
                n_samples = max(n_samples, int(np.max(rasters[key])) + 1)
        for row, name in enumerate(populations):
            ax = axes[row, col]
            base = f"{phase}/{name}"
            if f"{base}/sample" in rasters:
                sample = np.asarray(rasters[f"{base}/sample"], dtype=np.int64)
                step = np.asarray(rasters[f"{base}/step"], dtype=np.int64)
                neuron = np.asarray(rasters[f"{base}/neuron"], dtype=np.int64)
            else:
                sample = step = neuron = np.zeros(0, dtype=np.int64)
            time = (sample * n_steps + step) * scale
            crowded = sample.size > 2000  # thinner ticks keep dense rasters readable
            ax.scatter(time, neuron, s=2.0 if crowded else 6.0, marker="|",
                       linewidths=0.4 if crowded else 0.8, color="black")
            for boundary in range(1, n_samples):
                ax.axvline(boundary * n_steps * scale, color="tab:red", linestyle="--", linewidth=1.0,
                           zorder=3)
            ax.set_ylim(-0.5, sizes[name] - 0.5)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{phase_labels[phase]}: {name}, {sample.size} spikes", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{name}\nneuron index")
            if row == len(populations) - 1:
                ax.set_xlabel(f"{unit}; samples one after another")
        axes[0, col].set_xlim(0, max(n_samples, 1) * n_steps * scale)
    fig.suptitle("Brian2 spike rasters of test samples (dashed lines separate samples)")
    return fig


# ----------------------------------------------------------------- (f) accuracy versus compression
def accuracy_compression_rows(items: Sequence[Mapping]) -> list[dict]:
    """Normalise results into rows ``{model, seed, accuracy, synapses_removed_fraction, param}``.

    ``items`` may mix whole ``results.json`` dicts (every model in ``models``), single model
    results (``result.json``: ``final_test_accuracy`` and ``structure``) and rows as written by
    :mod:`sdsnn_bio.sweep` (``accuracy``, ``synapses_removed_fraction``, optional ``param``).
    """
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(f"item {position}: expected a results dict, got {type(item).__name__}")
        if isinstance(item.get("models"), Mapping):
            seed = (item.get("config") or {}).get("run", {}).get("seed")
            for model, result in item["models"].items():
                rows.append(_result_row(result, model, seed, f"item {position}, model {model!r}"))
        elif "final_test_accuracy" in item:
            rows.append(_result_row(item, item.get("model", "model"), item.get("seed"), f"item {position}"))
        elif "accuracy" in item and "synapses_removed_fraction" in item:
            rows.append({"model": item.get("model", "model"), "seed": item.get("seed"),
                         "accuracy": float(item["accuracy"]),
                         "synapses_removed_fraction": float(item["synapses_removed_fraction"]),
                         "param": item.get("param")})
        else:
            raise ValueError(
                f"item {position}: expected results.json ('models'), a model result "
                f"('final_test_accuracy', 'structure') or a row ('accuracy', "
                f"'synapses_removed_fraction'); got keys {sorted(item)}"
            )
    return rows


def _result_row(result: Mapping, model: str, seed, where: str) -> dict:
    try:
        return {"model": result.get("model", model), "seed": result.get("seed", seed),
                "accuracy": float(result["final_test_accuracy"]),
                "synapses_removed_fraction": float(result["structure"]["synapses_removed_fraction"]),
                "param": None}
    except (KeyError, TypeError) as err:
        raise ValueError(f"{where}: result lacks {err} (need final_test_accuracy and "
                         "structure.synapses_removed_fraction)") from None


def plot_accuracy_vs_compression(entries: Sequence[Mapping], ax=None) -> Figure:
    """Test accuracy versus synapses removed: every seed as a dot, mean ± sd per model.

    Parameters
    ----------
    entries : sequence of dict
        Results over seeds (see :func:`accuracy_compression_rows`); grouped by model and, for
        sweep rows, by parameter value. The sd is the sample standard deviation over seeds
        (0 with a single seed).
    ax : Axes, optional
        Axes to draw into.
    """
    rows = accuracy_compression_rows(entries)
    if not rows:
        raise ValueError("entries: no finished result to plot")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row.get("param")), []).append(row)
    fig, ax = _single_axes(ax, (6.4, 4.6))
    for k, ((model, param), members) in enumerate(groups.items()):
        color = "tab:gray" if model == "dense" and param is None else f"C{k}"
        accuracy = 100.0 * np.array([m["accuracy"] for m in members])
        removed = 100.0 * np.array([m["synapses_removed_fraction"] for m in members])
        ddof = 1 if len(members) > 1 else 0
        name = MODEL_LABELS.get(model, str(model)) + (f" ({param})" if param else "")
        ax.scatter(removed, accuracy, s=16, alpha=0.35, color=color)
        ax.errorbar([removed.mean()], [accuracy.mean()], xerr=[removed.std(ddof=ddof)],
                    yerr=[accuracy.std(ddof=ddof)],
                    fmt="o", markersize=7, capsize=4, color=color,
                    label=f"{name}: mean ± sd over {len(members)} seeds" if len(members) > 1
                    else f"{name}: 1 seed")
    ax.set_xlabel("synapses removed (% of potential synapses)")
    ax.set_ylabel("final test accuracy (%, Brian2, held-out split)")
    ax.set_title("Accuracy versus compression (dots: single seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


# -------------------------------------------------------------------------------------- (g) energy
def plot_energy(
    development_log: Sequence[dict],
    picojoule_per_sop: float,
    *,
    reference_sops: Mapping[str, float] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Synaptic operations and estimated energy per sample over development.

    ``energy = SOPs × picojoule_per_sop``. The development log's SOPs come from the latest training
    batch (NumPy kernel spikes) with the new connectivity after each step.

    Parameters
    ----------
    development_log : list of dict
        Records with ``sops_per_sample`` (``None`` where not measured).
    picojoule_per_sop : float
        Energy of one synaptic operation (pJ), from the result's ``test.energy`` block.
    reference_sops : mapping label → SOPs per sample, optional
        Horizontal reference lines (e.g. the final test SOPs of each model, measured in Brian2).
    fig : Figure, optional
        Empty figure to draw into (two panels).
    """
    log = _check_log(development_log)
    if not (isinstance(picojoule_per_sop, (int, float)) and picojoule_per_sop > 0):
        raise ValueError(f"picojoule_per_sop: expected a positive number (pJ), got {picojoule_per_sop!r}")
    sops = np.array([_number(rec.get("sops_per_sample")) for rec in log])
    if np.all(np.isnan(sops)):
        raise ValueError("development_log: no record has sops_per_sample")
    steps = _development_steps(log)
    nanojoule = sops * picojoule_per_sop / 1000.0
    fig = _new_figure(fig, (7.0, 6.0))
    sops_ax, energy_ax = fig.subplots(2, 1, sharex=True)
    sops_ax.plot(steps, sops, marker=".", color="tab:blue", label="SD-SNN, training batch after each step")
    energy_ax.plot(steps, nanojoule, marker=".", color="tab:orange",
                   label="SD-SNN, training batch after each step")
    for k, (label, value) in enumerate((reference_sops or {}).items()):
        style = dict(color=f"C{k + 2}", linestyle="--", linewidth=1)
        sops_ax.axhline(float(value), label=label, **style)
        energy_ax.axhline(float(value) * picojoule_per_sop / 1000.0, label=label, **style)
    sops_ax.set_ylabel("synaptic operations\nper sample (SOPs)")
    sops_ax.set_title("Synaptic operations per sample over development")
    sops_ax.legend(fontsize=8)
    energy_ax.set_ylabel("energy per sample (nJ)")
    energy_ax.set_xlabel("development step")
    _integer_steps(energy_ax)
    energy_ax.set_title(f"Estimated energy per sample = SOPs × {picojoule_per_sop:g} pJ")
    energy_ax.legend(fontsize=8)
    for ax in (sops_ax, energy_ax):
        ax.set_ylim(bottom=0)
    fig.suptitle("Synaptic operations and energy over development")
    return fig


# ------------------------------------------------------------------------------- development monitors
#: Panels :func:`plot_spine_dynamics` draws from a monitor by default (the first recorded synapses).
MONITOR_PANELS = 12
#: Lines per panel :func:`plot_monitor` draws by default (evenly spaced among the recorded elements).
MONITOR_LINES = 40


def _is_monitor(value) -> bool:
    from .development.monitor import DevelopmentMonitor

    return isinstance(value, DevelopmentMonitor)


def _spine_log_of_monitor(monitor, projection, labels, synapses):
    """The monitor as ``tracked_synapses`` records, for :func:`plot_spine_dynamics`."""
    needed = ("w", "spine_range_lower", "spine_range_upper")
    missing = [v for v in needed if v not in monitor.variables]
    if monitor.kind != "projection" or missing:
        raise ValueError(
            f"plot_spine_dynamics: monitor {monitor.name!r} must record {list(needed)} of a projection; "
            f"it records {list(monitor.variables)} of {monitor.source!r}"
        )
    if projection is not None and projection != monitor.source:
        raise ValueError(f"plot_spine_dynamics: monitor {monitor.name!r} records {monitor.source!r}, "
                         f"not {projection!r}")
    if monitor.steps.size == 0:
        raise ValueError(f"plot_spine_dynamics: monitor {monitor.name!r} recorded no development step")
    weight, lower, upper = (monitor.values(v) for v in needed)
    exists = monitor.values("exists") if "exists" in monitor.variables else np.ones(weight.shape, bool)
    log = [{"development_step": int(step),
            "tracked_synapses": {monitor.source: {"w": weight[:, k], "lower": lower[:, k],
                                                  "upper": upper[:, k], "exists": exists[:, k]}}}
           for k, step in enumerate(monitor.steps)]
    if synapses is None and monitor.n_recorded > MONITOR_PANELS:
        logger.info("plot_spine_dynamics: drawing the first %d of the %d synapses of monitor %r",
                    MONITOR_PANELS, monitor.n_recorded, monitor.name)
        synapses = range(MONITOR_PANELS)
    return log, monitor.source, monitor.labels if labels is None else labels, synapses


def _monitors(value) -> list:
    """``value`` as a list of monitors, or ``[]`` when it is a development log."""
    if _is_monitor(value):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and value \
            and all(_is_monitor(v) for v in value):
        return list(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and any(_is_monitor(v) for v in value):
        raise TypeError("development_log: expected development-step records or DevelopmentMonitors, not a mix")
    return []


def _monitor_steps(monitors: list, kind: str, variable: str, caller: str) -> np.ndarray:
    """The development steps all ``monitors`` recorded; each must be of ``kind`` and record ``variable``."""
    for monitor in monitors:
        if getattr(monitor, "kind", None) != kind or variable not in monitor.variables:
            raise ValueError(f"{caller}: monitor {monitor.name!r} must record {variable!r} of a {kind}; it records "
                             f"{list(monitor.variables)} of {monitor.source!r}")
        if monitor.steps.size == 0:
            raise ValueError(f"{caller}: monitor {monitor.name!r} recorded no development step")
    steps = monitors[0].steps
    for monitor in monitors[1:]:
        if not np.array_equal(monitor.steps, steps):
            raise ValueError(f"{caller}: monitors {monitors[0].name!r} and {monitor.name!r} recorded different "
                             f"development steps ({steps.size} vs {monitor.steps.size})")
    return steps


def _pruning_log_of_monitors(monitors: list) -> tuple[list[dict], dict[str, int]]:
    """Population monitors as ``pruning_rates``/``neurons_alive`` records, and the neurons recorded per layer."""
    steps = _monitor_steps(monitors, "population", "alive", "plot_pruning")
    log = [{"development_step": int(step), "pruning_rates": {}, "neurons_alive": {}} for step in steps]
    for monitor in monitors:
        alive = monitor.values("alive").sum(axis=0)
        rate = monitor.values("pruning_rate")[0] if "pruning_rate" in monitor.variables and monitor.n_recorded \
            else np.full(steps.size, np.nan)
        for k, rec in enumerate(log):
            rec["pruning_rates"][monitor.source] = float(rate[k])
            rec["neurons_alive"][monitor.source] = int(alive[k])
    return log, {monitor.source: monitor.n_recorded for monitor in monitors}


def _regeneration_log_of_monitors(monitors: list) -> list[dict]:
    """Projection monitors as ``synapses``/``synapses_added``/``synapses_removed`` records (recorded synapses)."""
    steps = _monitor_steps(monitors, "projection", "exists", "plot_regeneration")
    log = [{"development_step": int(step), "regeneration_percentile": None, "synapses": {},
            "synapses_added": {}, "synapses_removed": {}} for step in steps]
    for monitor in monitors:
        exists = monitor.values("exists")
        for k, rec in enumerate(log):
            rec["synapses"][monitor.source] = int(exists[:, k].sum())
            before = exists[:, k - 1] if k else exists[:, k]
            rec["synapses_added"][monitor.source] = int((exists[:, k] & ~before).sum())
            rec["synapses_removed"][monitor.source] = int((before & ~exists[:, k]).sum())
    return log


def plot_monitor(monitor, variables: Sequence[str] | None = None, *, max_lines: int = MONITOR_LINES,
                 fig: Figure | None = None) -> Figure:
    """What a development monitor recorded, one panel per variable, over development steps.

    A thin line per recorded synapse (neuron), at most ``max_lines`` of them evenly spaced among
    the recorded ones, and their mean over *all* recorded elements as a thick line; a boolean
    variable (``exists``, ``alive``) is drawn as the fraction of recorded elements where it holds.

    Parameters
    ----------
    monitor : DevelopmentMonitor
        A monitor that recorded at least one step (e.g. from
        :func:`~sdsnn_bio.development.load_monitors`).
    variables : sequence of str, optional
        Which of its variables to draw (default: all).
    max_lines : int
        Most individual traces per panel.
    fig : Figure, optional
        Empty figure to draw into.
    """
    if not _is_monitor(monitor):
        raise TypeError(f"monitor: expected a DevelopmentMonitor, got {type(monitor).__name__}")
    variables = list(monitor.variables if variables is None else variables)
    if not variables:
        raise ValueError("variables: expected at least one recorded variable to draw")
    if monitor.steps.size == 0 or monitor.n_recorded == 0:
        raise ValueError(f"monitor {monitor.name!r}: nothing recorded ({monitor.n_recorded} elements, "
                         f"{monitor.steps.size} steps)")
    if max_lines < 0:
        raise ValueError(f"max_lines: expected an integer >= 0, got {max_lines}")
    steps = monitor.steps
    chosen = np.unique(np.linspace(0, monitor.n_recorded - 1, min(max_lines, monitor.n_recorded)).astype(int))
    ncols = min(3, len(variables))
    nrows = math.ceil(len(variables) / ncols)
    fig = _new_figure(fig, (4.2 * ncols, 3.0 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)
    what = "synapses" if monitor.kind == "projection" else "neurons"
    for position, ax in enumerate(axes.flat):
        if position >= len(variables):
            ax.set_visible(False)
            continue
        variable = variables[position]
        values = monitor.values(variable)
        if values.dtype == bool:
            ax.step(steps, values.mean(axis=0), where="post", color="black", linewidth=2)
            ax.set_ylim(-0.05, 1.05)
            ax.set_ylabel(f"fraction with {variable}")
        else:
            if chosen.size:
                ax.plot(steps, values[chosen].T, color="tab:blue", linewidth=0.6, alpha=0.5)
            ax.plot(steps, values.mean(axis=0), color="black", linewidth=2,
                    label=f"mean over {monitor.n_recorded} {what}")
            ax.set_ylabel(variable)
            ax.legend(fontsize=8)
        ax.set_title(variable, fontsize=10)
        _integer_steps(ax)
        if position // ncols == nrows - 1 or position + ncols >= len(variables):
            ax.set_xlabel("development step")
    where = "" if monitor.condition is None else f" where {monitor.condition}"
    fig.suptitle(f"Monitor {monitor.name}: {monitor.n_recorded} {what} of {monitor.source}{where}")
    return fig


# ------------------------------------------------------------------------------------ results folders
def load_results(results_dir: str | os.PathLike) -> dict:
    """Read ``results_dir/results.json``; errors name the file and what was expected.

    The reader of record is :func:`sdsnn_bio.runfolder.load_results`; this name stays for users.
    """
    return runfolder.load_results(results_dir)


def _dt_ms(results: dict) -> float | None:
    text = (results.get("config") or {}).get("network", {}).get("dt")
    if not text:
        return None
    try:
        from brian2 import ms

        from .config import parse_time

        return float(parse_time("network.dt", text) / ms)
    except ValueError:
        logger.info("plot: network.dt %r is not a time; rasters are drawn in time steps", text)
        return None


def _tracked_labels(model_dir: Path, projection: str, result: dict | None = None) -> list[str] | None:
    """``source[i] → target[j]`` of each tracked synapse.

    From the model's result (``tracked_synapses``); runs written before it was recorded there
    still have the indices in the checkpoint's scheduler state.
    """
    tracked = (result or {}).get("tracked_synapses")
    if tracked is None:
        path = model_dir / runfolder.CHECKPOINT
        if not path.is_file():
            return None
        try:
            tracked = runfolder.read_checkpoint(path).meta["scheduler_state"]["tracked"]
        except (KeyError, TypeError, ValueError, OSError):
            return None
    try:
        sources, targets = tracked[projection]
    except (KeyError, TypeError, ValueError):
        return None
    source, _, target = projection.partition("_to_")
    return [f"{source}[{i}] → {target}[{j}]" for i, j in zip(sources, targets)]


def _load_structure(model_dir: Path) -> Structure | None:
    path = model_dir / runfolder.STRUCTURE
    return runfolder.load_structure(path) if path.is_file() else None


def _load_monitors(model_dir: Path) -> dict:
    from .development.monitor import load_monitors

    path = model_dir / runfolder.MONITORS
    return load_monitors(path) if path.is_file() else {}


def _load_rasters(model_dir: Path) -> dict | None:
    path = model_dir / runfolder.RASTERS
    return runfolder.load_rasters(path) if path.is_file() else None


def plot_results(results_dir: str | os.PathLike, figures_dir: str | os.PathLike, *,
                 dpi: int = 120, spine_projection: str | None = None,
                 spine_synapses: Sequence[int] | None = None, spine_monitor: str | None = None) -> list[Path]:
    """Write every figure the results folder has the data for; returns the paths written.

    The spine-dynamics figure draws ``spine_projection`` and ``spine_synapses`` (positions among
    its tracked synapses), or the synapses of the development monitor ``spine_monitor``; each
    left at None comes from the run's ``[figures]`` configuration, and failing that the default is
    the first projection whose tracked spine ranges changed, with those synapses
    (:func:`changed_spine_synapses`).

    Reads the run folder (:mod:`sdsnn_bio.runfolder`): ``results.json`` and, per model,
    ``<model>/structure.npz``, ``<model>/rasters.npz`` and ``<model>/monitors.npz`` (every
    development monitor is drawn as ``monitor_<name>.png``, :data:`MONITOR_FIGURE`). Figures whose
    data is missing (a dense-only run has no development log; an interrupted run has no structure)
    are skipped and logged. File names are those of :data:`FIGURE_NAMES` (and
    :data:`CONVOLUTION_FIGURE_NAMES`).

    Raises
    ------
    FileNotFoundError
        ``results.json`` is missing.
    ValueError
        ``results.json`` is malformed.
    """
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    figures_dir = Path(figures_dir)
    models = results["models"]
    developed = models.get("sdsnn")
    written: list[Path] = []

    names = {**FIGURE_NAMES, **CONVOLUTION_FIGURE_NAMES}

    def write(key: str, fig: Figure) -> None:
        written.append(save_figure(fig, figures_dir / names[key], dpi=dpi))

    def skip(key: str, why: str) -> None:
        logger.info("plot: %s skipped (%s)", names[key], why)

    log = (developed or {}).get("development_log") or []
    if not log:
        for key in ("spine_dynamics", "pruning", "regeneration", "energy"):
            skip(key, "no SD-SNN development log")
    else:
        chosen = (results.get("config") or {}).get("figures") or {}
        monitor_name = spine_monitor if spine_monitor is not None else chosen.get("spine_monitor") or None
        if monitor_name:
            monitors = _load_monitors(results_dir / "sdsnn")
            if monitor_name not in monitors:
                raise KeyError(f"spine monitor {monitor_name!r}: not recorded in "
                               f"{results_dir / 'sdsnn' / runfolder.MONITORS}; recorded: {sorted(monitors)}")
            picked = spine_synapses if spine_synapses is not None else chosen.get("spine_synapses") or None
            write("spine_dynamics", plot_spine_dynamics(monitors[monitor_name], synapses=picked))
        elif any(rec.get("tracked_synapses") for rec in log):
            projection = spine_projection or chosen.get("spine_projection") or None
            picked = spine_synapses if spine_synapses is not None else chosen.get("spine_synapses") or None
            projection, default = changed_spine_synapses(log, projection)
            labels = _tracked_labels(results_dir / "sdsnn", projection, developed)
            write("spine_dynamics", plot_spine_dynamics(log, projection, labels=labels,
                                                        synapses=default if picked is None else picked))
        else:
            skip("spine_dynamics", "no tracked synapses in the development log")
        if _hidden_populations(log):
            report = developed.get("structure") or {}
            sizes = report.get("neurons")
            channels = report.get("channels") or {}
            if sizes is not None and channels:  # convolutional layers: their records count channels
                sizes = {**sizes, **channels}
            write("pruning", plot_pruning(log, layer_sizes=sizes,
                                          unit="neurons or channels" if channels else "neurons"))
        else:
            skip("pruning", "no pruning rates in the development log")
        if any(rec.get("synapses") for rec in log):
            write("regeneration", plot_regeneration(log))
        else:
            skip("regeneration", "no synapse counts in the development log")
        picojoule = ((developed.get("test") or {}).get("energy") or {}).get("picojoule_per_sop")
        if picojoule is None:
            skip("energy", "no picojoule_per_sop in the SD-SNN test energy block")
        elif all(rec.get("sops_per_sample") is None for rec in log):
            skip("energy", "no sops_per_sample in the development log")
        else:
            reference = {
                f"{MODEL_LABELS.get(name, name)}, final test (Brian2)": result["test"]["energy"]["sops_per_sample"]
                for name, result in models.items()
                if "sops_per_sample" in ((result.get("test") or {}).get("energy") or {})
            }
            write("energy", plot_energy(log, float(picojoule), reference_sops=reference))

    structures = {}
    for name in ("dense", "sdsnn"):
        if name in models:
            structure = _load_structure(results_dir / name)
            if structure is not None:
                label = "SD-SNN (after development)" if name == "sdsnn" else "dense baseline"
                structures[label] = structure
    convolutional = structures and next(iter(structures.values())).projections[0].geometry is not None
    if convolutional:
        last = list(structures.values())[-1]
        for key in ("connectivity", "receptive_fields"):
            skip(key, "the input projection is convolutional (see kernels.png)")
        candidates = [p for p in last.projections if p.geometry is not None and p.geometry.kind == "convolution"]
        chosen = max(candidates, key=lambda p: np.count_nonzero(~last.population(p.target).alive))
        write("kernels", plot_kernels(last, chosen.name))
    elif structures:
        first = next(iter(structures.values()))
        projection = first.projections[0].name
        sensor_size = _input_shape(results)
        write("connectivity", plot_connectivity(structures, projection, sensor_size=sensor_size))
        last = list(structures.values())[-1]
        width, height, polarities = sensor_size
        if last.projections[0].shape[0] == width * height * polarities:
            write("receptive_fields", plot_receptive_fields(last, projection, sensor_size=sensor_size))
        else:
            skip("receptive_fields", f"{projection} does not come from a {width}x{height}x{polarities} sensor")
    else:
        skip("connectivity", f"no {runfolder.STRUCTURE}")
        skip("receptive_fields", f"no {runfolder.STRUCTURE}")

    raster_model = next((name for name in ("sdsnn", "dense")
                         if name in models and (results_dir / name / runfolder.RASTERS).is_file()), None)
    if raster_model is None:
        skip("rasters", f"no {runfolder.RASTERS}")
    else:
        rasters = _load_rasters(results_dir / raster_model)
        labels = None
        if raster_model == "dense":
            labels = {"before": "dense baseline before training", "after": "dense baseline after training"}
        write("rasters", plot_rasters(rasters, dt_ms=_dt_ms(results), phase_labels=labels))

    finished = [r for r in models.values() if "final_test_accuracy" in r and "structure" in r]
    if finished:
        write("accuracy_vs_compression", plot_accuracy_vs_compression(finished))
    else:
        skip("accuracy_vs_compression", "no finished model")
    written += _write_monitor_figures(results_dir, models, figures_dir, dpi)
    return written


def _write_monitor_figures(results_dir: Path, models: Mapping, figures_dir: Path, dpi: int) -> list[Path]:
    """``monitor_<name>.png`` of every monitor saved in the models' folders."""
    from .development.monitor import load_monitors

    written = []
    for model in models:
        path = results_dir / model / runfolder.MONITORS
        if not path.is_file():
            continue
        for name, monitor in load_monitors(path).items():
            if monitor.steps.size == 0 or monitor.n_recorded == 0:
                logger.info("plot: monitor %s of %s skipped (nothing recorded)", name, model)
                continue
            file_name = MONITOR_FIGURE.format(name=name if len(models) == 1 else f"{model}_{name}")
            written.append(save_figure(plot_monitor(monitor), figures_dir / file_name, dpi=dpi))
    return written


def plot_seed_results(results_dirs: Sequence[str | os.PathLike], figures_dir: str | os.PathLike, *,
                      dpi: int = 120) -> list[Path]:
    """Accuracy versus compression over several results folders (e.g. one per seed).

    Returns the list with the path of ``accuracy_vs_compression.png`` written into ``figures_dir``.
    """
    if not results_dirs:
        raise ValueError("results_dirs: expected at least one results folder")
    results = [load_results(d) for d in results_dirs]
    fig = plot_accuracy_vs_compression(results)
    return [save_figure(fig, Path(figures_dir) / FIGURE_NAMES["accuracy_vs_compression"], dpi=dpi)]
