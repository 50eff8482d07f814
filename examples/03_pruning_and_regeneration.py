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
# # 03 — Neuron pruning with a neurotrophic rate, and synaptic regeneration
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219, sections 2 and 3.
#
# **Pruning** (section 2). A hidden neuron's importance is the summed normalised width of the
# spines on its dendrite, `importance_j = sum_i unit(r_upper + |r_lower|)_ij`. From the pruning
# warm-up on, the least important neurons of layer l are pruned until the pruned fraction reaches
# the layer's rate `p_l`; a pruned neuron loses its synapses and never fires. Neurons compete for
# the trophic factor their targets supply, so `p_l` rises with the competition pressure and a
# factor that decays with the steps since pruning began (the structure converges):
#
#     p_l <- p_l + a(s - s0) * alive_l / alive_{l+1}
#
# **Regeneration** (section 3). A pruned synapse keeps a latent weight that keeps learning; it
# regrows when that weight stays above the q-th percentile of its projection's weights for more
# than N consecutive steps, with `q = min(60 + 1.1^(s - s0), 99)`: generous early, rare later.
# When enough incoming synapses of a pruned neuron regrow, the neuron is revived: it returns with
# the incoming synapses that regrew (`DevelopmentParameters.revive_neurons`).
#
# A small network (2312 -> 2 hidden LIF layers -> 10) learns a subset of the embedded
# N-MNIST-format dataset while the package's `StructuralScheduler` applies every rule to the
# Brian2 network after each training batch. Afterwards we use the scheduler's condition API —
# Brian2-style string conditions, as in `S.connect(condition=...)` — to prune and regrow synapses
# of the live Brian2 network by hand.
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

from sdsnn_bio.data import load_dataset, events_to_spikes
from sdsnn_bio.development import (
    ConditionError,
    DevelopmentParameters,
    Schedule,
    StructuralScheduler,
    regeneration_threshold,
)
from sdsnn_bio.experiment import evaluate, structure_report
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.model import (
    NetworkParameters,
    NeuronParameters,
    SpikingNetwork,
    configure_brian2,
    initial_structure,
)
from sdsnn_bio.plotting import (
    plot_connectivity,
    plot_pruning,
    plot_regeneration,
    plot_spine_dynamics,
    save_figure,
)

EXAMPLE = "03_pruning_and_regeneration"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
SEED = 11

configure_brian2("numpy" if QUICK else "auto")
brian2.seed(SEED)
rng = np.random.default_rng(SEED)
print(f"quick mode: {QUICK}; Brian2 target: {brian2.prefs.codegen.target}; figures: {FIGURES_DIR}")

# %% [markdown]
# ## Parameters

# %%
dt = 5 * ms  # simulation step = input time bin
n_steps = 60  # steps per sample: a 300 ms window
tau_membrane = 20 * ms
hidden_sizes = (40, 20) if QUICK else (200, 100)
n_train, n_test = (300, 50) if QUICK else (None, None)  # None: the whole split
learning = LearningParameters(learning_rate=0.01)
batch_size = 10 if QUICK else 20
epochs = 3 if QUICK else 6
threads = 1 if QUICK else None
# Every rule constant is the released code's, except K (a development step follows every batch
# here, not every epoch). Warm-ups follow from K: constraint after K steps, pruning and
# regeneration after 2K steps.
development = DevelopmentParameters(consecutive_steps=6)

neuron = NeuronParameters(tau_membrane=tau_membrane)
params = NetworkParameters(hidden_sizes=hidden_sizes, dt=dt, n_steps=n_steps, hidden=neuron, output=neuron)
print(dict(zip(params.population_names, params.population_sizes)))
print(development)

# %% [markdown]
# ## Data (embedded dataset, class-balanced subsets)

# %%
def load_split(split, subset):
    dataset = load_dataset(None, split, subset=subset, seed=SEED)
    samples = [events_to_spikes(dataset[k][0], params.dt, params.n_steps) for k in range(len(dataset))]
    return samples, np.asarray(dataset.targets, dtype=np.int64)


train_samples, train_labels = load_split("train", n_train)
test_samples, test_labels = load_split("test", n_test)
print(f"{len(train_samples)} training and {len(test_samples)} test samples")
batches_per_epoch = -(-len(train_samples) // batch_size)
schedule = Schedule(steps_per_epoch=batches_per_epoch)  # a development step after every batch

# %% [markdown]
# ## Network, learner and structural scheduler

# %%
structure = initial_structure(params, rng)
initial = structure.copy()
network = SpikingNetwork(structure, params)
learner = Learner(structure, params.layer_dynamics(), learning, n_threads=threads)
scheduler = StructuralScheduler(network, structure, schedule, development, learner)
print(scheduler.schedule)  # warm-ups derived from K

# %% [markdown]
# ## Train, with a development step after every batch

# %%
development_log = []
batch_index = 0
started = time.perf_counter()
for epoch in range(epochs):
    order = rng.permutation(len(train_samples))
    correct = 0
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        batch = InputBatch.from_samples([train_samples[k] for k in chosen], params.n_steps, params.n_input)
        correct += learner.train_step(batch, train_labels[chosen]).n_correct
        batch_index += 1
        record = scheduler.after_batch(batch_index, batches_per_epoch)
        if record is not None:
            development_log.append(record)
    alive = development_log[-1]["neurons_alive"]
    print(f"epoch {epoch + 1}: train accuracy {correct / len(order):.3f}; neurons alive "
          f"{ {name: alive[name] for name in params.population_names[1:-1]} }")
print(f"training: {time.perf_counter() - started:.1f} s, {len(development_log)} development steps")

# %% [markdown]
# ## The development, step by step
#
# `p_l` per hidden layer, the regeneration percentile `q`, neurons alive, synapses removed and
# added and neurons revived, at every step where pruning or regeneration ran and something
# changed (and at the last step).

# %%
hidden = params.population_names[1:-1]
pruning_start = next((r["development_step"] for r in development_log if r["actions"]["prune"]), None)
print(f"pruning and regeneration run from development step {pruning_start} on")
header = (f"{'step':>4} " + " ".join(f"{'p_' + h:>10}" for h in hidden) + f" {'q':>6} "
          + " ".join(f"{'alive_' + h:>14}" for h in hidden) + f" {'removed':>8} {'added':>6} {'revived':>7}")
print(header)
for k, r in enumerate(development_log):
    removed = sum(r["synapses_removed"].values())
    added = sum(r["synapses_added"].values())
    revived = sum(r["neurons_revived"].values())
    if not (removed or added or revived or k == len(development_log) - 1):
        continue
    q = "-" if r["regeneration_percentile"] is None else f"{r['regeneration_percentile']:.2f}"
    print(f"{r['development_step']:>4} " + " ".join(f"{r['pruning_rates'][h]:>10.4f}" for h in hidden)
          + f" {q:>6} " + " ".join(f"{r['neurons_alive'][h]:>14}" for h in hidden)
          + f" {removed:>8} {added:>6} {revived:>7}")
total_removed = sum(sum(r["synapses_removed"].values()) for r in development_log)
total_added = sum(sum(r["synapses_added"].values()) for r in development_log)
total_revived = sum(sum(r["neurons_revived"].values()) for r in development_log)
print(f"over all steps: {total_removed} synapses removed, {total_added} regrown, "
      f"{total_revived} neurons revived")

# %% [markdown]
# ## The developed network, evaluated in Brian2

# %%
report = structure_report(structure)
for name, counts in report["projections"].items():
    print(f"{name:>22}: {counts['synapses']:>7} of {counts['potential']:>7} synapses "
          f"({100 * counts['connectivity']:.1f}%)")
for name in hidden:
    print(f"{name:>22}: {report['neurons_alive'][name]} of {report['neurons'][name]} neurons alive")
print(f"synapses removed: {100 * report['synapses_removed_fraction']:.1f}%; hidden neurons removed: "
      f"{100 * report['hidden_neurons_removed_fraction']:.1f}%")
developed = evaluate(network, structure, learner, test_samples, test_labels,
                     batch_size=len(test_samples))
print(f"final test accuracy {developed['accuracy']:.3f} (Brian2, {developed['n_samples']} samples), "
      f"{developed['energy']['sops_per_sample']:.0f} SOPs per sample")

# %% [markdown]
# ## Plots (the package's plotting functions)

# %%
fig = plot_pruning(development_log, layer_sizes=report["neurons"])
save_figure(fig, FIGURES_DIR / "pruning.png")
fig

# %%
fig = plot_regeneration(development_log)
save_figure(fig, FIGURES_DIR / "regeneration.png")
fig

# %%
fig = plot_spine_dynamics(development_log, "hidden_1_to_hidden_2", synapses=range(4))
save_figure(fig, FIGURES_DIR / "spine_dynamics.png")
fig

# %%
fig = plot_connectivity({"initial (dense)": initial, "after development": structure}, "input_to_hidden_1")
save_figure(fig, FIGURES_DIR / "connectivity.png")
fig

# %% [markdown]
# ## The condition API on the live Brian2 network
#
# Brian2 selects synapses with string conditions but cannot delete them (brian2 issue #166). The
# scheduler's `prune(projection, condition)` and `regrow(projection, condition, w=...)` evaluate a
# Brian2-style condition over every potential synapse (`w`, `i`, `j`, `exists`, the spine state
# `lower`, `upper`, `spine_width`, the streaks, `alive_pre`, `alive_post`, `rand()`), rebuild the
# projection's `Synapses` object under the same name, keep pruned synapses' latent weights and tell
# the learner. First: remove the input synapses whose weights are tiny (magnitude pruning).

# %%
projection_name = "input_to_hidden_1"
before_ids = id(network[projection_name])
n_before = len(network[projection_name])
weights_before = structure.projection(projection_name).weight.copy()
removed_i, removed_j = scheduler.prune(projection_name, condition="abs(w) < 0.01")
n_after = len(network[projection_name])
latent_kept = np.array_equal(structure.projection(projection_name).weight[removed_i, removed_j],
                             weights_before[removed_i, removed_j])
print(f'scheduler.prune({projection_name!r}, condition="abs(w) < 0.01"): removed {removed_i.size} '
      f"synapses; Brian2 Synapses {projection_name!r}: {n_before} -> {n_after} synapses "
      f"(object rebuilt: {id(network[projection_name]) != before_ids}); latent weights kept: {latent_kept}")
pruned_by_condition = evaluate(network, structure, learner, test_samples, test_labels,
                               batch_size=len(test_samples))
print(f"test accuracy {developed['accuracy']:.3f} -> {pruned_by_condition['accuracy']:.3f} (Brian2); SOPs "
      f"per sample {developed['energy']['sops_per_sample']:.0f} -> "
      f"{pruned_by_condition['energy']['sops_per_sample']:.0f}")

# %% [markdown]
# Now regrow by hand what section 3 would regrow: absent synapses (between alive neurons) whose
# latent weight beats the 99th percentile of the projection's existing weights, the package's
# `regeneration_threshold`. They start from their latent weight clipped into their spine range.

# %%
existing = structure.projection(projection_name)
threshold = regeneration_threshold(existing.weight, existing.exists, 99.0)
condition = f"w > {threshold:.6f}"
n_before_regrowth = len(network[projection_name])
regrown_i, regrown_j = scheduler.regrow(projection_name, condition, w="clip(w, lower, upper)")
removed_pairs = set(zip(removed_i.tolist(), removed_j.tolist()))
regrown_pairs = set(zip(regrown_i.tolist(), regrown_j.tolist()))
regrown = structure.projection(projection_name)
inside = np.all((regrown.weight[regrown_i, regrown_j] >= regrown.spine.lower[regrown_i, regrown_j])
                & (regrown.weight[regrown_i, regrown_j] <= regrown.spine.upper[regrown_i, regrown_j]))
print(f"scheduler.regrow({projection_name!r}, {condition!r}, w=\"clip(w, lower, upper)\"): regrew "
      f"{regrown_i.size} synapses onto {np.unique(regrown_j).size} hidden_1 neurons "
      f"({len(regrown_pairs & removed_pairs)} of them among those just removed; all inside their "
      f"spine range: {bool(inside)}); Brian2 Synapses {projection_name!r}: {n_before_regrowth} -> "
      f"{len(network[projection_name])} synapses")

# %% [markdown]
# A condition that names an unknown variable is refused before anything changes, and the message
# lists the variables a condition may use.

# %%
try:
    scheduler.prune(projection_name, condition="abs(weight) < 0.01")
except ConditionError as err:
    print(f"ConditionError: {err}")

# %%
print(f"figures written to {FIGURES_DIR}:")
for path in sorted(FIGURES_DIR.glob("*.png")):
    print(f"  {path.name}")
