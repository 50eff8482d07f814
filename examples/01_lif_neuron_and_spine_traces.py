# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 — A LIF neuron in Brian2, and the spine traces of one synapse
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219 (Information Sciences, 2025): the network model and
# section 1, "dendritic-spine-plasticity-based synaptic constraint".
#
# Two parts:
#
# 1. **The neuron.** The package's leaky integrate-and-fire (LIF) equations and synapse equations,
#    printed as Brian2 `Equations`; one LIF neuron of a tiny `SpikingNetwork` (40 input channels ->
#    1 hidden neuron -> 1 output neuron) driven by Poisson input spikes, its membrane potential
#    recorded by the network's `StateMonitor` and drawn with the threshold and its spikes.
# 2. **The spine.** Every synapse carries a spine range `[r_lower, r_upper]`. We feed a prescribed
#    weight trajectory into one synapse of that network — persistent *potentiation*, then
#    persistent *depression* — and apply the package's development step (`develop_structure`:
#    spine enlargement/shrinkage, then the synaptic constraint) once per development step. The
#    trajectory stands in for what the learner does between two development steps; everything
#    else is the package's rule. We draw `w` inside its band and the streak counters that trigger
#    enlargement (`w >= r_upper` for K consecutive steps) and shrinkage (`|w|` decreasing for K
#    consecutive steps).
#
# Quick mode (`SDSNN_QUICK=1`): Brian2's numpy target (nothing compiled). Figures go to
# `$SDSNN_FIGURES_DIR` (default `figures/`, in quick mode a temporary folder).

# %%
# %matplotlib inline
import os
import tempfile
from pathlib import Path

import brian2
import numpy as np
from brian2 import Hz, ms, second
from matplotlib.figure import Figure

from sdsnn_bio.development import DevelopmentParameters, DevelopmentState, Schedule, develop_structure
from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    configure_brian2,
    initial_structure,
    lif_equations,
    synapse_equations,
)
from sdsnn_bio.model import ON_PRE, RESET, THRESHOLD
from sdsnn_bio.plotting import save_figure

EXAMPLE = "01_lif_neuron_and_spine_traces"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
SEED = 2022

configure_brian2("numpy" if QUICK else "auto")
brian2.prefs.logging.console_log_level = "ERROR"
brian2.seed(SEED)
rng = np.random.default_rng(SEED)
print(f"quick mode: {QUICK}; Brian2 target: {brian2.prefs.codegen.target}; figures: {FIGURES_DIR}")

# %% [markdown]
# ## Parameters
#
# Potentials are normalised: rest is 0 and the threshold 1, so a weight of 1 takes a resting
# neuron to threshold.

# %%
tau_membrane = 20 * ms  # membrane time constant
refractory = 2 * ms  # absolute refractory period
v_threshold = 1.0  # normalised firing threshold
v_reset = 0.0  # normalised reset potential
dt = 0.5 * ms  # simulation step = input time bin
duration = 200 * ms  # one presentation window
n_input = 40  # input channels
input_rate = 20 * Hz  # Poisson rate of every input channel
weight_init_gain = 4.0  # initial weights ~ N(0, (gain / sqrt(n_input))^2)

neuron = NeuronParameters(tau_membrane=tau_membrane, v_threshold=v_threshold, v_reset=v_reset,
                          refractory=refractory)
params = NetworkParameters(
    n_input=n_input, hidden_sizes=(1,), n_output=1, dt=dt, n_steps=int(round(float(duration / dt))),
    hidden=neuron, output=neuron, weight_init_gain=weight_init_gain,
)
print(neuron)
print(f"populations: {dict(zip(params.population_names, params.population_sizes))}, "
      f"{params.n_steps} steps of {dt}")

# %% [markdown]
# ## Equations
#
# The model is data: the package's Brian2 `Equations`, printed as they run (Brian2 keeps units and
# flags but drops comments; the commented source is `sdsnn_bio/model/equations.py`). The neuron
# also carries the pruning state of section 2 (`alive`, `importance`, the layer's
# `pruning_rate`), the synapse the spine state of section 1. Synapses are current pulses: a
# presynaptic spike adds `w` to the postsynaptic potential.

# %%
print("LIF neuron (sdsnn_bio.model.lif_equations):")
print(lif_equations())
print(f"threshold: {THRESHOLD!r}; reset: {RESET!r}; refractory: {neuron.refractory}")
print("\nSynapse (sdsnn_bio.model.synapse_equations):")
print(synapse_equations())
print(f"on_pre: {ON_PRE!r}")

# %% [markdown]
# ## Network, monitors and input
#
# `SpikingNetwork` builds one explicit Brian2 `Network` of named objects: the `input`
# `SpikeGeneratorGroup`, the `hidden_1` and `output` `NeuronGroup`s, one `Synapses` object per
# projection and the monitors. We ask it to record the potential of `hidden_1`.

# %%
structure = initial_structure(params, rng)
network = SpikingNetwork(structure, params, record_potentials=("hidden_1", "output"))
for obj in sorted(network.network.objects, key=lambda o: o.name):
    print(f"  {obj.name:<28} {type(obj).__name__}")

# Poisson input: every channel fires in a time bin with probability rate * dt.
fires = rng.random((params.n_steps, n_input)) < float(input_rate * dt)
input_steps, input_channels = np.nonzero(fires)

# %% [markdown]
# ## Run
#
# One sample, presented in one Brian2 `run()`.

# %%
recording = network.present([(input_channels, input_steps)])
time_ms = np.arange(params.n_steps) * float(dt / ms)
potential = recording.potentials["hidden_1"][:, 0, 0]  # tested against the threshold each step
_, spike_steps, _ = recording.spikes["hidden_1"]
weights = structure.projection("input_to_hidden_1").weight[:, 0]
n_hidden_spikes = spike_steps.size
print(f"input spikes: {input_steps.size} ({input_steps.size / n_input / float(duration / second):.1f} Hz "
      f"per channel, target {float(input_rate / Hz):g} Hz)")
print(f"input weights: {np.count_nonzero(weights > 0)} excitatory, {np.count_nonzero(weights < 0)} "
      f"inhibitory, mean {weights.mean():.3f}")
print(f"hidden_1 neuron: {n_hidden_spikes} spikes in {duration} "
      f"({n_hidden_spikes / float(duration / second):.1f} Hz); peak potential {potential.max():.3f}")

# %% [markdown]
# ## Plot: membrane potential with threshold and spikes

# %%
fig = Figure(figsize=(8, 5), layout="constrained")
raster_ax, v_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
raster_ax.scatter(input_steps * float(dt / ms), input_channels, marker="|", s=12,
                  c=np.where(weights[input_channels] > 0, "tab:red", "tab:blue"))
raster_ax.set_ylabel("input channel")
raster_ax.set_title("Input spikes (red: excitatory weight, blue: inhibitory)")
v_ax.plot(time_ms, potential, color="black", linewidth=1, label="membrane potential v")
v_ax.axhline(v_threshold, color="tab:red", linestyle="--", linewidth=1, label="threshold")
v_ax.plot(spike_steps * float(dt / ms), potential[spike_steps], linestyle="none", marker="*",
          markersize=9, color="tab:orange", label=f"spikes ({n_hidden_spikes})")
v_ax.set_xlabel("time (ms)")
v_ax.set_ylabel("v (normalised; 1 = threshold)")
v_ax.set_title("LIF neuron hidden_1[0], recorded by the network's StateMonitor")
v_ax.legend(loc="lower right", fontsize=8)
save_figure(fig, FIGURES_DIR / "lif_membrane_potential.png")
fig

# %% [markdown]
# ## The spine of one synapse over development steps
#
# SD-SNN's released code uses K = 18 consecutive steps; with a short, readable trajectory we take
# K = 6 (every constant is a parameter). The constraint starts after the warm-up chosen by the
# package's `Schedule` (K steps, as in the released code); pruning and regeneration are off.
#
# We drive the *strongest* input synapse of the network above (it starts at the top of its range,
# `r_upper = max(w)` of the layer): its weight grows by a constant amount per step (potentiation),
# rests, then falls by a constant amount per step (depression). The other synapses stay as they are.

# %%
development = DevelopmentParameters(consecutive_steps=6)
schedule = Schedule(pruning=False, regeneration=False)  # warm-ups derived from K by actions()
n_potentiation, n_rest, n_depression = 40, 10, 50
weight_change_per_step = np.concatenate([
    np.full(n_potentiation, +0.04),  # persistent potentiation
    np.zeros(n_rest),  # nothing changes
    np.full(n_depression, -0.015),  # persistent depression
])
n_development_steps = weight_change_per_step.size
projection_name = "input_to_hidden_1"
synapse = (int(np.argmax(structure.projection(projection_name).weight[:, 0])), 0)
print(development)
print(schedule)
constraint_from = next(s for s in range(n_development_steps) if schedule.actions(s, development).constrain)
print(f"the constraint clips from development step {constraint_from} on (K)")
print(f"driven synapse: {projection_name}[{synapse[0]}, {synapse[1]}], "
      f"initial w = {structure.projection(projection_name).weight[synapse]:.3f}")

# %%
developing = structure.copy()
state = DevelopmentState.initial(developing, development)
trace = {name: np.zeros(n_development_steps) for name in (
    "proposed_w", "w", "lower", "upper", "upper_streak", "lower_streak", "shrink_streak")}
enlarged, shrunk, clipped = [], [], []
for step in range(n_development_steps):
    before = developing.projection(projection_name).spine
    upper_before = before.upper[synapse]
    # Between two development steps the learner changes the weight; here we prescribe the change.
    developing.projection(projection_name).weight[synapse] += weight_change_per_step[step]
    trace["proposed_w"][step] = developing.projection(projection_name).weight[synapse]
    actions = schedule.actions(state.step, development)
    developing, record, state = develop_structure(developing, actions, development, state)
    projection = developing.projection(projection_name)
    trace["w"][step] = projection.weight[synapse]
    for name in ("lower", "upper", "upper_streak", "lower_streak", "shrink_streak"):
        trace[name][step] = getattr(projection.spine, name)[synapse]
    if projection.spine.upper[synapse] > upper_before:
        enlarged.append(step)
    elif projection.spine.upper[synapse] < upper_before:
        shrunk.append(step)
    if trace["w"][step] != trace["proposed_w"][step]:
        clipped.append(step)

steps = np.arange(n_development_steps)
print(f"development steps: {n_development_steps}; constraint from step "
      f"{constraint_from}")
print(f"enlargements of r_upper at steps {enlarged}")
print(f"shrinkages of the range at steps {shrunk}")
print(f"weight clipped into its range at {len(clipped)} of {n_development_steps} steps")
print(f"spine range: initial [{structure.projection(projection_name).spine.lower[synapse]:.3f}, "
      f"{structure.projection(projection_name).spine.upper[synapse]:.3f}], "
      f"largest r_upper {trace['upper'].max():.3f}, final [{trace['lower'][-1]:.3f}, "
      f"{trace['upper'][-1]:.3f}]; final w {trace['w'][-1]:.3f}")

# %% [markdown]
# ## Plot: the weight inside its spine range, and the streak counters

# %%
fig = Figure(figsize=(8, 6.5), layout="constrained")
w_ax, streak_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
phases = [(0, n_potentiation, "potentiation", "tab:red"),
          (n_potentiation, n_potentiation + n_rest, "rest", "0.7"),
          (n_potentiation + n_rest, n_development_steps, "depression", "tab:blue")]
for ax in (w_ax, streak_ax):
    for start, stop, _, color in phases:
        ax.axvspan(start - 0.5, stop - 0.5, color=color, alpha=0.07, linewidth=0)
    ax.axvline(constraint_from - 0.5, color="0.3", linestyle=":", linewidth=1)
for start, stop, label, color in phases:
    w_ax.text((start + stop) / 2, 1.01, label, transform=w_ax.get_xaxis_transform(), ha="center",
              va="bottom", color=color, fontsize=9)
w_ax.fill_between(steps, trace["lower"], trace["upper"], step="mid", color="tab:green", alpha=0.25,
                  linewidth=0, label="spine range [r_lower, r_upper]")
w_ax.plot(steps, trace["proposed_w"], color="0.5", linestyle="--", linewidth=1,
          label="w proposed by the learner (before the constraint)")
w_ax.plot(steps, trace["w"], color="black", linewidth=1.5, label="w after the development step")
w_ax.plot(enlarged, trace["upper"][enlarged], linestyle="none", marker="^", color="tab:red",
          markersize=8, label=f"enlargement ({len(enlarged)})")
w_ax.plot(shrunk, trace["upper"][shrunk], linestyle="none", marker="v", color="tab:blue",
          markersize=8, label=f"shrinkage ({len(shrunk)})")
w_ax.axhline(0, color="0.6", linewidth=0.6)
w_ax.set_ylabel("weight w (1 = threshold)")
w_ax.set_title(f"Synapse {projection_name}[{synapse[0]}, {synapse[1]}]: weight inside its spine range "
               f"(dotted: constraint starts, step {constraint_from})", fontsize=10,
               pad=16)
w_ax.legend(fontsize=8, loc="lower left")
for name, color in (("upper_streak", "tab:red"), ("shrink_streak", "tab:blue"),
                    ("lower_streak", "tab:purple")):
    streak_ax.step(steps, trace[name], where="mid", color=color, label=name)
streak_ax.axhline(development.consecutive_steps, color="black", linestyle="--", linewidth=1,
                  label=f"K = {development.consecutive_steps}")
# A counter that reaches K triggers its rule and restarts from 0 within the same step.
streak_ax.plot(enlarged, np.full(len(enlarged), development.consecutive_steps), linestyle="none",
               marker="^", color="tab:red", label="reached K: enlarge")
streak_ax.plot(shrunk, np.full(len(shrunk), development.consecutive_steps), linestyle="none",
               marker="v", color="tab:blue", label="reached K: shrink")
streak_ax.set_ylabel("consecutive steps")
streak_ax.set_xlabel("development step")
streak_ax.set_title("Streak counters: w >= r_upper (enlarge), |w| decreasing (shrink), w <= r_lower",
                    fontsize=10)
streak_ax.set_ylim(-0.3, development.consecutive_steps + 1.5)
streak_ax.legend(fontsize=8, loc="upper left", ncols=3)
save_figure(fig, FIGURES_DIR / "spine_traces.png")
fig

# %%
print(f"figures written to {FIGURES_DIR}:")
for path in sorted(FIGURES_DIR.glob("*.png")):
    print(f"  {path.name}")
