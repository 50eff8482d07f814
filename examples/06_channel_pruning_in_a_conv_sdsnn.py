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
# # 06 — Channel pruning in a convolutional SD-SNN
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219; the released N-MNIST and MNIST scripts train the SCNN
# `2-15C3-AP2-40C3-AP2-300FC-10` and develop it per **channel**.
#
# A convolutional projection holds one weight per **kernel element**, shared by every synapse of
# that element (`sdsnn_bio.geometry`). Each kernel weight has its own dendritic-spine range
# `[r_lower, r_upper]` (section 1). The importance of an output channel is the summed normalised
# width of the spines of its kernel elements,
#
#     importance_c = sum over (c_in, dy, dx) of unit(r_upper + |r_lower|)[c_in, dy, dx, c]
#
# and the `floor(p_l * channels)` least important channels are pruned: all their positions fall
# silent together (section 2). Absent kernel elements regrow one by one when their latent weight
# stays above the regeneration percentile (section 3). As in the released scripts, the first
# convolutional layer is left alone (`undeveloped_layers`), and average pooling is folded into the
# next projection: a synapse from a pooled neuron carries `w / pool**2` (`docs/convolution.md`).
#
# A small SCNN learns a subset of the embedded N-MNIST-format dataset; the package's
# `StructuralScheduler` applies the rules after every training batch, and the Brian2 network of
# record — explicit convolutional `Synapses` whose synapses each know their `kernel_index` —
# evaluates the developed network.
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

from sdsnn_bio.data import events_to_spikes, load_dataset
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
from sdsnn_bio.model.equations import shared_synapse_equations
from sdsnn_bio.plotting import plot_kernels, plot_pruning, save_figure

EXAMPLE = "06_channel_pruning_in_a_conv_sdsnn"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
SEED = 5

configure_brian2("numpy" if QUICK else "auto")
brian2.seed(SEED)
rng = np.random.default_rng(SEED)
print(f"quick mode: {QUICK}; Brian2 target: {brian2.prefs.codegen.target}; figures: {FIGURES_DIR}")

# %% [markdown]
# ## Parameters
#
# The layers in the paper's notation: `C` a convolution (channels, kernel size; stride 1, padding
# `k // 2`), `AP` average pooling folded into the next projection, `FC` fully connected; the output
# layer (10 classes) is added.

# %%
dt = 10 * ms  # simulation step = input time bin
n_steps = 30  # steps per sample: a 300 ms window
# Quick mode pools the 34x34 input to 17x17 first (AP2), to stay small.
layers = ["AP2", "4C3", "AP2", "8C3", "AP2", "24FC"] if QUICK else ["15C3", "AP2", "40C3", "AP2", "100FC"]
n_train, n_test = (120, 30) if QUICK else (None, None)  # None: the whole split
batch_size = 20
epochs = 2 if QUICK else 6
threads = 1 if QUICK else None
learning = LearningParameters(learning_rate=0.01)
# The channels of conv2 (hidden_2) start at a pruning rate of 25 %, the neurons of the
# fully-connected layer (hidden_3) at 30 %; conv1 (hidden_1) is not developed, as released.
# K = 2: a development step follows every batch here, so the warm-ups are short.
development = DevelopmentParameters(consecutive_steps=2, initial_pruning_rate=0.3,
                                    layer_initial_pruning_rates={"hidden_2": 0.25},
                                    undeveloped_layers=("hidden_1",), revival_min_synapses=5)

neuron = NeuronParameters(tau_membrane=20 * ms)
params = NetworkParameters.from_layers(layers, input_shape=(2, 34, 34), n_output=10, dt=dt,
                                       n_steps=n_steps, hidden=neuron, output=neuron,
                                       weight_init_gain=6.0)
architecture = params.architecture()
for spec in architecture.specs:
    geometry = spec.geometry
    kind = "fully connected" if geometry is None else geometry.kind
    print(f"{spec.name:>9}: {spec.size:>6} neurons, shape {spec.shape or (spec.size,)}; projection into it: "
          f"{kind}" + ("" if geometry is None else f", parameters {geometry.parameter_shape}, "
                       f"pool {geometry.pool}, {geometry.n_synapses} synapses"))

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
# ## The Brian2 network: explicit convolutional synapses
#
# Each synapse of a shared projection carries the index of its kernel element and the pooling
# factor; the weight is stored once per kernel element (in the structure, which the learner
# trains) and gathered to the synapses.

# %%
structure = initial_structure(params, rng)
network = SpikingNetwork(structure, params)
print(shared_synapse_equations())
conv2 = network["hidden_1_to_hidden_2"]
kernel_weights = structure.projection("hidden_1_to_hidden_2").weight.ravel()
gathered = np.allclose(conv2.w[:], conv2.pooling_factor[:] * kernel_weights[conv2.kernel_index[:]])
print(f"hidden_1_to_hidden_2: {len(conv2)} Brian2 synapses share {kernel_weights.size} kernel elements; "
      f"w == pooling_factor * kernel weight[kernel_index]: {gathered}")

# %% [markdown]
# ## Train, with a development step after every batch

# %%
learner = Learner(structure, params.layer_dynamics(), learning, n_threads=threads)
scheduler = StructuralScheduler(network, structure, schedule, development, learner, sync="lazy")
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
    print(f"epoch {epoch + 1}: train accuracy {correct / len(order):.3f}; conv2 channels alive "
          f"{alive['hidden_2']}, fc neurons alive {alive['hidden_3']}")
print(f"training: {time.perf_counter() - started:.1f} s, {len(development_log)} development steps")

# %% [markdown]
# ## Channels alive per development step
#
# The scheduler's records count units: channels for a convolutional layer, neurons for a
# fully-connected one.

# %%
channels = params.architecture().specs[1].shape[0]
print(f"{'step':>4} {'p_conv2':>8} {'conv2 channels alive':>21} {'fc neurons alive':>17}")
for r in development_log:
    print(f"{r['development_step']:>4} {r['pruning_rates']['hidden_2']:>8.4f} "
          f"{r['neurons_alive']['hidden_2']:>21} {r['neurons_alive']['hidden_3']:>17}")
hidden_2 = structure.population("hidden_2")
surviving, pruned = np.flatnonzero(hidden_2.alive), np.flatnonzero(~hidden_2.alive)
print(f"conv2 channels alive: {hidden_2.n_alive} of {channels} (pruned channels: {pruned.tolist()})")
print(f"conv1 channels alive: {structure.population('hidden_1').n_alive} of "
      f"{structure.population('hidden_1').n_units} (not developed)")
incoming = structure.projection("hidden_1_to_hidden_2")
print(f"conv2 kernel elements present: {incoming.n_synapses} of {incoming.exists.size}")

# %% [markdown]
# ## The developed network, evaluated in Brian2
#
# A pruned channel is silent at every position; the training kernel and Brian2 agree.

# %%
result = evaluate(network, structure, learner, test_samples, test_labels, batch_size=len(test_samples))
print(f"final test accuracy {result['accuracy']:.3f} (Brian2, {result['n_samples']} samples); "
      f"kernel and Brian2 agree on {100 * result['kernel_brian2_agreement']:.1f}% of the samples")
recording = network.present(test_samples[:4])
spikes = recording.dense_spikes("hidden_2").reshape(n_steps, 4, channels, -1)
per_channel = spikes.sum(axis=(0, 1, 3))
print(f"conv2 spikes per channel on 4 test samples: {per_channel.tolist()}; "
      f"spikes of pruned channels: {int(per_channel[pruned].sum())}")

# %% [markdown]
# ## Figures

# %%
fig = plot_pruning(development_log, populations=["hidden_2"], layer_sizes={"hidden_2": channels},
                   unit="channels")
save_figure(fig, FIGURES_DIR / "channels_alive.png")
fig

# %%
fig = plot_kernels(structure, "hidden_1_to_hidden_2", max_inputs=6)
save_figure(fig, FIGURES_DIR / "surviving_kernels.png")
fig

# %%
print(f"figures written to {FIGURES_DIR}:")
for path in sorted(FIGURES_DIR.glob("*.png")):
    print(f"  {path.name}")
