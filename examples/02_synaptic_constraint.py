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
# # 02 — The dendritic-spine-based synaptic constraint while a network learns
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219, section 1.
#
# Every synapse has a spine range `[r_lower, r_upper]`, initialised to `±max(w)` of its projection.
# At each development step, with K the consecutive-step threshold:
#
# * **enlargement**: `w >= r_upper` at K consecutive steps -> `r_upper += mean excess (w - r_upper)`
#   (and symmetrically for `r_lower`);
# * **shrinkage**: `|w|` decreased at K consecutive steps -> `r_upper *= 0.75`, `r_lower *= 0.75`;
# * **constraint**: after a warm-up of K steps, `w <- clip(w, r_lower, r_upper)`.
#
# Here a small feed-forward LIF network (2312 -> hidden -> 10) learns a class-balanced subset of
# the embedded offline N-MNIST-format dataset with the package's surrogate-gradient learner, while
# the package's `StructuralScheduler` applies the spine rules to the Brian2 network after every
# training batch. Neuron pruning and synaptic regeneration are switched off in the `Schedule`, so
# the connectivity never changes: what we see is the constraint alone. The final network is
# evaluated in Brian2 (the simulator of record).
#
# Quick mode (`SDSNN_QUICK=1`): a tiny subset, Brian2's numpy target. Figures go to
# `$SDSNN_FIGURES_DIR` (default `figures/`, in quick mode a temporary folder).

# %%
# %matplotlib inline
import os
import tempfile
import time
from pathlib import Path

import brian2
import numpy as np
from brian2 import ms
from matplotlib.figure import Figure

from sdsnn_bio.data import load_dataset, events_to_spikes
from sdsnn_bio.development import DevelopmentParameters, Schedule, StructuralScheduler
from sdsnn_bio.experiment import evaluate
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    configure_brian2,
    initial_structure,
)
from sdsnn_bio.plotting import plot_spine_dynamics, save_figure

EXAMPLE = "02_synaptic_constraint"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
SEED = 7

configure_brian2("numpy" if QUICK else "auto")
brian2.seed(SEED)
rng = np.random.default_rng(SEED)
print(f"quick mode: {QUICK}; Brian2 target: {brian2.prefs.codegen.target}; figures: {FIGURES_DIR}")

# %% [markdown]
# ## Parameters

# %%
# Network: 34x34x2 event-camera pixels -> one hidden LIF layer -> 10 LIF output neurons.
dt = 5 * ms  # simulation step = input time bin
n_steps = 60  # steps per sample: a 300 ms window (the three N-MNIST saccades)
tau_membrane = 20 * ms
hidden_sizes = (48,) if QUICK else (128,)
# Data: class-balanced subsets of the embedded dataset (None = the whole split).
n_train, n_test = (300, 100) if QUICK else (None, None)
# Learning: surrogate-gradient BPTT with Adam.
learning = LearningParameters(learning_rate=0.01)
batch_size = 10 if QUICK else 20
epochs = 3 if QUICK else 6
threads = 1 if QUICK else None  # None: every core
# Development: spine plasticity and the constraint only. The released code's K = 18 counts epochs;
# here a development step follows every training batch (as many steps per epoch as batches, set
# once the data are loaded), so K is smaller.
development = DevelopmentParameters(consecutive_steps=8)

neuron = NeuronParameters(tau_membrane=tau_membrane)
params = NetworkParameters(hidden_sizes=hidden_sizes, dt=dt, n_steps=n_steps, hidden=neuron, output=neuron)
print(params)
print(learning)
print(development)

# %% [markdown]
# ## Data
#
# The embedded dataset: scikit-learn's handwritten digits recorded by an emulated event camera
# during the three N-MNIST saccades (generated once into the cache, offline). Events become input
# spikes on the simulation grid, channel `(p*34 + y)*34 + x`.

# %%
def load_split(split, subset):
    dataset = load_dataset(None, split, subset=subset, seed=SEED)
    samples = [events_to_spikes(dataset[k][0], params.dt, params.n_steps) for k in range(len(dataset))]
    return samples, np.asarray(dataset.targets, dtype=np.int64)


started = time.perf_counter()
train_samples, train_labels = load_split("train", n_train)
test_samples, test_labels = load_split("test", n_test)
print(f"{len(train_samples)} training and {len(test_samples)} test samples "
      f"({time.perf_counter() - started:.1f} s); mean input spikes per sample "
      f"{np.mean([c.size for c, _ in train_samples]):.0f}; training classes "
      f"{np.bincount(train_labels, minlength=10).tolist()}")
batches_per_epoch = -(-len(train_samples) // batch_size)
schedule = Schedule(steps_per_epoch=batches_per_epoch, pruning=False, regeneration=False)

# %% [markdown]
# ## Network, learner and structural scheduler
#
# One `Structure` (weights, spine state, alive masks) is shared by the Brian2 network, the learner
# (which trains its weights in place) and the scheduler (which applies the rules between runs).

# %%
structure = initial_structure(params, rng)
initial = structure.copy()  # the "before" picture
network = SpikingNetwork(structure, params)
learner = Learner(structure, params.layer_dynamics(), learning, n_threads=threads)
scheduler = StructuralScheduler(network, structure, schedule, development, learner)
print(scheduler.schedule)  # warm-ups derived from K
for name in network.synapse_names:
    print(f"  Brian2 Synapses {name!r}: {len(network[name])} synapses")

# %% [markdown]
# ## Train, with a development step after every batch

# %%
development_log = []
batch_index = 0
started = time.perf_counter()
for epoch in range(epochs):
    order = rng.permutation(len(train_samples))
    loss, correct = 0.0, 0
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = InputBatch.from_samples([train_samples[k] for k in chosen], params.n_steps, params.n_input)
        step = learner.train_step(batch, train_labels[chosen])
        loss += step.loss * len(chosen)
        correct += step.n_correct
        batch_index += 1
        record = scheduler.after_batch(batch_index, batches_per_epoch)
        if record is not None:
            development_log.append(record)
    print(f"epoch {epoch + 1}: train loss {loss / len(order):.3f}, train accuracy "
          f"{correct / len(order):.3f}, development steps so far {len(development_log)}")
print(f"training: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Evaluate the final network in Brian2

# %%
evaluation = evaluate(network, structure, learner, test_samples, test_labels, batch_size=50)
print(f"final test accuracy {evaluation['accuracy']:.3f} (Brian2, {evaluation['n_samples']} held-out "
      f"samples); NumPy kernel agrees with Brian2 on {100 * evaluation['kernel_brian2_agreement']:.1f}% "
      "of them")

# %% [markdown]
# ## What the constraint did
#
# Counts come from the scheduler's record of every development step.

# %%
steps = np.array([r["development_step"] for r in development_log])
constrained = np.array([r["actions"]["constrain"] for r in development_log])
first_constrained = int(steps[constrained][0]) if constrained.any() else None
projections = [p.name for p in structure.projections]


def per_step(field, name):
    return np.array([r["rules"]["projections"][name][field] for r in development_log], dtype=float)


print(f"{len(steps)} development steps; the constraint clips weights from development step "
      f"{first_constrained} on")
for name in projections:
    before, after = initial.projection(name), structure.projection(name)
    synapses = per_step("synapses", name)
    clipped = per_step("weights_clipped", name)
    enlarged = per_step("upper_enlarged", name) + per_step("lower_enlarged", name)
    shrunk = per_step("spines_shrunk", name)
    outside = after.exists & ((after.weight < after.spine.lower) | (after.weight > after.spine.upper))
    at_edge = after.exists & ((after.weight == after.spine.lower) | (after.weight == after.spine.upper))
    print(f"\n{name} ({after.n_synapses} synapses; removed: {before.n_synapses - after.n_synapses})")
    print(f"  weights clipped: {int(clipped.sum())} clippings in {int(constrained.sum())} constrained "
          f"steps, i.e. {100 * clipped[constrained].sum() / synapses[constrained].sum():.2f}% of the "
          f"weights per step (largest: {100 * (clipped / synapses).max():.2f}% at step "
          f"{int(steps[np.argmax(clipped / synapses)])})")
    print(f"  spines enlarged: {int(enlarged.sum())}; spines shrunk: {int(shrunk.sum())}")
    print(f"  mean spine width (r_upper + |r_lower|): {before.spine.width.mean():.4f} before, "
          f"{after.spine.width.mean():.4f} after")
    print(f"  weights outside their range after the last step: {int(outside.sum())}; on an edge of "
          f"their range: {int(at_edge.sum())} ({100 * at_edge.sum() / after.n_synapses:.2f}%)")

# %% [markdown]
# ## Plot: weights inside their spine ranges, before and after development
#
# A random sample of synapses of each projection, sorted by weight: the spine range of each
# synapse as a grey bar, its weight as a dot. Before development every range of a projection is
# `±max(w)`; afterwards each synapse has its own capacity.

# %%
sample_rng = np.random.default_rng(SEED)
n_shown = 150
fig = Figure(figsize=(11, 6.5), layout="constrained")
axes = fig.subplots(2, len(projections), squeeze=False)
for col, name in enumerate(projections):
    size = structure.projection(name).exists.size
    shown = sample_rng.choice(size, size=min(n_shown, size), replace=False)
    for row, (label, snapshot) in enumerate((("before development", initial),
                                             ("after development", structure))):
        projection = snapshot.projection(name)
        w = projection.weight.ravel()[shown]
        lower = projection.spine.lower.ravel()[shown]
        upper = projection.spine.upper.ravel()[shown]
        rank = np.argsort(w)
        x = np.arange(rank.size)
        ax = axes[row, col]
        ax.vlines(x, lower[rank], upper[rank], color="0.75", linewidth=1.5, label="spine range")
        edge = (w[rank] <= lower[rank]) | (w[rank] >= upper[rank])
        ax.plot(x[~edge], w[rank][~edge], ".", color="black", markersize=3, label="weight w")
        ax.plot(x[edge], w[rank][edge], ".", color="tab:red", markersize=5,
                label=f"w on an edge of its range ({int(edge.sum())})")
        ax.axhline(0, color="0.5", linewidth=0.6)
        ax.set_title(f"{name}, {label}", fontsize=10)
        ax.set_xlabel(f"{rank.size} sampled synapses, sorted by weight")
        ax.set_ylabel("w and [r_lower, r_upper]")
        ax.legend(fontsize=7, loc="upper left")
fig.suptitle("Weights inside their spine ranges (SD-SNN section 1)")
save_figure(fig, FIGURES_DIR / "weights_in_spine_ranges.png")
fig

# %% [markdown]
# ## Plot: the constraint over development steps

# %%
fig = Figure(figsize=(8, 8), layout="constrained")
clip_ax, width_ax, count_ax = fig.subplots(3, 1, sharex=True)
for k, name in enumerate(projections):
    color = f"C{k}"
    clip_ax.plot(steps, 100 * per_step("weights_clipped", name) / per_step("synapses", name),
                 marker=".", color=color, label=name)
    width = np.array([r["mean_spine_width"][name] for r in development_log])
    width_ax.plot(steps, width, marker=".", color=color, label=name)
    enlarged = per_step("upper_enlarged", name) + per_step("lower_enlarged", name)
    shrunk = per_step("spines_shrunk", name)
    count_ax.plot(steps, enlarged, color=color, linestyle="-", label=f"{name}: enlarged")
    count_ax.plot(steps, shrunk, color=color, linestyle="--", label=f"{name}: shrunk")
for ax in (clip_ax, width_ax, count_ax):
    if first_constrained is not None:
        ax.axvline(first_constrained, color="0.3", linestyle=":", linewidth=1)
clip_ax.set_ylabel("weights clipped\n(% of synapses)")
clip_ax.set_title("Fraction of weights clipped into their range (dotted: the constraint starts)")
clip_ax.legend(fontsize=8)
width_ax.set_yscale("log")
width_ax.set_ylabel("mean spine width\nr_upper + |r_lower| (log)")
width_ax.set_title("Mean spine width")
width_ax.legend(fontsize=8)
count_ax.set_yscale("symlog", linthresh=1)
count_ax.set_ylim(bottom=0)
count_ax.set_ylabel("spines per step\n(symlog)")
count_ax.set_xlabel("development step")
count_ax.set_title(f"Spines enlarged (w beyond the range) and shrunk (|w| falling), K = "
                   f"{development.consecutive_steps} steps")
count_ax.legend(fontsize=8, ncols=2)
save_figure(fig, FIGURES_DIR / "constraint_over_development.png")
fig

# %% [markdown]
# ## Plot: sample synapses over development (the package's `plot_spine_dynamics`)

# %%
fig = plot_spine_dynamics(development_log, projections[-1])
save_figure(fig, FIGURES_DIR / "spine_dynamics.png")
fig

# %%
print(f"figures written to {FIGURES_DIR}:")
for path in sorted(FIGURES_DIR.glob("*.png")):
    print(f"  {path.name}")
