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
# # 05 — Watching development: monitors of spines and neurons
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219: section 1 (each synapse's spine range
# `[r_lower, r_upper]` bounds its weight), section 2 (neurons ranked by their `importance`, pruned
# at the neurotrophic rate `p_l`) and section 3 (pruned synapses regrow).
#
# A Brian2 `StateMonitor` records a variable at every time step; the spine and trophic variables
# change only between runs, at development steps, so a `DevelopmentMonitor` records them there.
# Here two `[[monitor]]` tables of the configuration record, at every development step,
#
# 1. `w`, `spine_range_lower`, `spine_range_upper` and `exists` of the input synapses onto the
#    first four hidden neurons from the centre row of ON pixels (a Brian2-style condition on
#    `i` and `j`), and
# 2. `alive`, `importance` and `pruning_rate` of every hidden neuron.
#
# `run_experiment` saves them with the run (`sdsnn/monitors.npz`); we read them back with
# `load_monitors` and draw them with `plot_spine_dynamics` and `plot_monitor`.
#
# Quick mode (`SDSNN_QUICK=1`): a tiny subset, a tiny hidden layer, one epoch, Brian2's numpy
# target. Run folders go to `$SDSNN_OUTPUT_DIR` (default `runs/`), figures to `$SDSNN_FIGURES_DIR`
# (default `figures/`); in quick mode both defaults are temporary folders.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np

from sdsnn_bio.config import ExperimentConfig
from sdsnn_bio.development import MONITORS_FILE, load_monitors
from sdsnn_bio.experiment import run_experiment
from sdsnn_bio.plotting import plot_monitor, plot_spine_dynamics, save_figure

EXAMPLE = "05_development_monitors"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
OUTPUT_DIR = Path(os.environ.get("SDSNN_OUTPUT_DIR", default_root / "runs")) / EXAMPLE
SEED = 0
print(f"quick mode: {QUICK}; runs: {OUTPUT_DIR}; figures: {FIGURES_DIR}")

# %% [markdown]
# ## Configuration with two monitors
#
# Input channel `c = (p*34 + y)*34 + x` (polarity `p`, pixel `x, y`): the centre row `y = 17` of ON
# pixels (`p = 1`) is `1734 <= i < 1768`. The condition is parsed, never executed as code, and
# evaluated once, when the monitor is attached: the same synapses are recorded for the whole run.

# %%
centre_row = "i >= (34 + 17) * 34 and i < (34 + 18) * 34"
monitors = [
    {"source": "input_to_hidden_1", "name": "centre_row",
     "variables": ["w", "spine_range_lower", "spine_range_upper", "exists"],
     "condition": f"{centre_row} and j < 4 and i % 4 == 0"},
    {"source": "hidden_1", "variables": ["alive", "importance", "pruning_rate"]},
]
if QUICK:
    raw = {
        "data": {"train_subset": 200, "test_subset": 50},
        "network": {"hidden_sizes": [32], "dt": "5 ms", "n_steps": 60},
        "learning": {"learning_rate": 0.01, "batch_size": 10, "epochs": 1, "threads": 1},
        # 20 training batches: a development step after each, K = 3 consecutive steps; the
        # constraint from step 3 and pruning from step 8 on, so 20 steps show all three rules.
        "development": {"enabled": True, "steps_per_epoch": 20, "consecutive_steps": 3,
                        "constraint_warmup_steps": 3, "pruning_warmup_steps": 8},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 50},
    }
else:
    raw = {"network": {"hidden_sizes": [200]}, "learning": {"epochs": 6},
           "development": {"enabled": True}}
raw["run"] = {"seed": SEED, "output_dir": str(OUTPUT_DIR), "baseline": False}
raw["monitor"] = monitors
config = ExperimentConfig.from_dict(raw, source=EXAMPLE)
for table in config.monitors:
    print(f"monitor: {table}")

# %% [markdown]
# ## Train with development; the monitors are saved with the run

# %%
results = run_experiment(config, output_dir=OUTPUT_DIR, progress=not QUICK)
model = results["models"]["sdsnn"]
print(f"final test accuracy {model['final_test_accuracy']:.4f} (Brian2, {model['test']['n_samples']} "
      f"held-out samples); {len(model['development_log'])} development steps")
for name, summary in model["monitors"].items():
    print(f"{name}: {summary['recorded']} recorded over {summary['steps']} steps, "
          f"{summary['bytes_per_step']} bytes per step, {summary['bytes']} bytes in all")

# %% [markdown]
# ## Read them back
#
# `monitor.w` has shape `(recorded synapses, steps)`, like `StateMonitor.v`; `monitor.steps`
# numbers the development steps as the development log does.

# %%
saved = load_monitors(OUTPUT_DIR / "sdsnn" / MONITORS_FILE)
spines, neurons = saved["centre_row"], saved["hidden_1_monitor"]
print(spines)
print(f"synapses recorded: {', '.join(spines.labels[:4])}, ... ({spines.n_recorded} in all)")
inside = (spines.w >= spines.spine_range_lower) & (spines.w <= spines.spine_range_upper)
present = spines.exists
print(f"existing synapses whose weight lies inside its spine range: {int(inside[present].sum())} "
      f"of {int(present.sum())} (synapse, step) pairs")
pruned = np.count_nonzero(present[:, :-1] & ~present[:, 1:])
regrown = np.count_nonzero(~present[:, :-1] & present[:, 1:])
print(f"among the recorded synapses: {pruned} prunings and {regrown} regrowths between steps")
width = spines.spine_range_upper - spines.spine_range_lower
print(f"mean spine width: {width[:, 0].mean():.4f} at step {spines.steps[0]}, "
      f"{width[:, -1].mean():.4f} at step {spines.steps[-1]}")
alive = neurons.alive.sum(axis=0)
fewest = int(np.argmin(alive))
print(f"hidden neurons alive: {alive[0]} at step {neurons.steps[0]}, fewest {alive[fewest]} at step "
      f"{neurons.steps[fewest]}, {alive[-1]} at step {neurons.steps[-1]} (pruned neurons can be revived); "
      f"pruning rate {neurons.pruning_rate[0, 0]:.4f} -> {neurons.pruning_rate[0, -1]:.4f}")

# %% [markdown]
# ## Figures
#
# The recorded synapses' weights inside their spine ranges (section 1), and every variable of
# the neuron monitor (section 2).

# %%
FIGURES_DIR.mkdir(parents=True, exist_ok=True)
for file_name, fig in (("monitored_spines.png", plot_spine_dynamics(spines)),
                       ("monitored_neurons.png", plot_monitor(neurons))):
    path = save_figure(fig, FIGURES_DIR / file_name)
    print(f"wrote {path}")
