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
# # 04 — SD-SNN on N-MNIST beside its dense baseline
#
# Han, Zhao, Zeng & Pan, *Adaptive Sparse Structure Development with Pruning and Regeneration for
# Spiking Neural Networks*, arXiv 2211.12219 (N-MNIST: 34x34x2 event-camera input, a
# fully-connected hidden layer, 10 outputs). Orchard et al., *Converting static image datasets to
# spiking neuromorphic datasets using saccades*, Front. Neurosci. 2015 (N-MNIST).
#
# One call, `run_experiment`, does what `sdsnn-bio run` does: it trains the dense baseline and the
# SD-SNN network (spine constraint, neuron pruning with the neurotrophic rate, synaptic
# regeneration) with the same seed and architecture, evaluates both FINAL networks on the held-out
# test split in Brian2, counts synaptic operations (SOPs) from Brian2's spike monitors, and writes
# `results.json`; `plot_results` draws every figure from that folder.
#
# Data: the embedded offline dataset (scikit-learn's handwritten digits recorded by an emulated
# event camera, in the N-MNIST format) unless a real N-MNIST folder (`Train/`, `Test/` or
# `Train.zip`, `Test.zip`) is given as the first argument or in `$SDSNN_NMNIST`:
#
#     python examples/04_pruning_on_nmnist.py /path/to/N-MNIST
#
# Quick mode (`SDSNN_QUICK=1`): a tiny subset, a tiny hidden layer, one epoch, Brian2's numpy
# target. Full mode: the package's default configuration (`sdsnn_bio.config`) with development
# switched on. Run folders go to `$SDSNN_OUTPUT_DIR` (default `runs/`), figures to
# `$SDSNN_FIGURES_DIR` (default `figures/`); in quick mode both defaults are temporary folders.

# %%
import os
import sys
import tempfile
import time
from pathlib import Path


from sdsnn_bio.config import ExperimentConfig
from sdsnn_bio.experiment import run_experiment
from sdsnn_bio.plotting import plot_results

EXAMPLE = "04_pruning_on_nmnist"
QUICK = os.environ.get("SDSNN_QUICK", "0") not in ("", "0")
# Quick mode never writes into the working tree unless told where to write.
default_root = Path(tempfile.gettempdir()) / "sdsnn_bio_examples" if QUICK else Path(".")
FIGURES_DIR = Path(os.environ.get("SDSNN_FIGURES_DIR", default_root / "figures")) / EXAMPLE
OUTPUT_DIR = Path(os.environ.get("SDSNN_OUTPUT_DIR", default_root / "runs")) / EXAMPLE
# A real N-MNIST folder: the first command-line argument (not when run as a notebook), else
# $SDSNN_NMNIST, else the embedded dataset ("").
arguments = [] if "ipykernel" in sys.argv[0] else sys.argv[1:]
NMNIST = arguments[0] if arguments else os.environ.get("SDSNN_NMNIST", "")
SEED = 0

print(f"quick mode: {QUICK}; data: {NMNIST or 'embedded dataset'}; runs: {OUTPUT_DIR}; "
      f"figures: {FIGURES_DIR}")

# %% [markdown]
# ## Configuration
#
# Every value not given here is the package's default (printed below and echoed into
# `results.json`).

# %%
if QUICK:
    raw = {
        "data": {"root": NMNIST, "train_subset": 200, "test_subset": 50},
        "network": {"hidden_sizes": [32], "dt": "5 ms", "n_steps": 60},
        "learning": {"learning_rate": 0.01, "batch_size": 10, "epochs": 1, "threads": 1},
        # 20 training batches: a development step after each, K = 3 consecutive steps.
        "development": {"enabled": True, "steps_per_epoch": 20, "consecutive_steps": 3},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 50},
        "run": {"seed": SEED, "output_dir": str(OUTPUT_DIR), "baseline": True},
    }
else:
    raw = {
        "data": {"root": NMNIST},
        "development": {"enabled": True},
        "run": {"seed": SEED, "output_dir": str(OUTPUT_DIR), "baseline": True},
    }
config = ExperimentConfig.from_dict(raw, source=EXAMPLE)
params = config.network_parameters()
print(f"network: {dict(zip(params.population_names, params.population_sizes))}, "
      f"{params.n_steps} steps of {params.dt}")
print(f"learning: {config.learning}")
print(f"development: {config.development_parameters()}")
print(f"schedule: {config.schedule()}")
print(f"simulation: {config.simulation}")

# %% [markdown]
# ## Run: the dense baseline, then SD-SNN (same seed, same architecture)

# %%
started = time.perf_counter()
results = run_experiment(config, output_dir=OUTPUT_DIR, progress=not QUICK)
print(f"run: {time.perf_counter() - started:.1f} s; results: {OUTPUT_DIR / 'results.json'}")
print(f"data: {results['data']}")

# %% [markdown]
# ## Results (final networks, held-out test split, Brian2)

# %%
for name, model in results["models"].items():
    structure = model["structure"]
    test = model["test"]
    print(f"{name:>6}: final test accuracy {model['final_test_accuracy']:.4f} (Brian2, "
          f"{test['n_samples']} held-out samples; NumPy kernel agreement "
          f"{test['kernel_brian2_agreement']:.3f}); synapses removed "
          f"{100 * structure['synapses_removed_fraction']:.1f}%; hidden neurons removed "
          f"{100 * structure['hidden_neurons_removed_fraction']:.1f}%; SOPs per sample "
          f"{test['energy']['sops_per_sample']:.0f} ({test['energy']['energy_per_sample_nJ']:.2f} nJ)")
    for projection, counts in structure["projections"].items():
        print(f"          {projection}: {counts['synapses']} of {counts['potential']} synapses "
              f"({100 * counts['connectivity']:.1f}%)")
comparison = results["comparison"]
print(f"\nfinal test accuracy: dense {comparison['dense_test_accuracy']:.4f}, SD-SNN "
      f"{comparison['sdsnn_test_accuracy']:.4f} (difference {comparison['accuracy_difference']:+.4f})")
print(f"SD-SNN removed {100 * comparison['synapses_removed_fraction']:.1f}% of the synapses and "
      f"{100 * comparison['hidden_neurons_removed_fraction']:.1f}% of the hidden neurons")
print(f"SOPs per sample: dense {comparison['dense_sops_per_sample']:.0f}, SD-SNN "
      f"{comparison['sdsnn_sops_per_sample']:.0f} "
      f"({comparison['sdsnn_sops_per_sample'] / max(comparison['dense_sops_per_sample'], 1e-12):.3f} "
      "of the dense network's)")
log = results["models"]["sdsnn"]["development_log"]
if log:
    last = log[-1]
    print(f"{len(log)} development steps; at the last one: pruning rates "
          f"{ {k: round(v, 4) for k, v in last['pruning_rates'].items()} }, regeneration percentile "
          f"{last['regeneration_percentile']}, neurons alive {last['neurons_alive']}")

# %% [markdown]
# ## Figures (the package's `plot_results`, from the results folder)

# %%
written = plot_results(OUTPUT_DIR, FIGURES_DIR)
print(f"figures written to {FIGURES_DIR}:")
for path in written:
    print(f"  {path.name}")

# %%
if "ipykernel" in sys.modules:  # in a notebook: show the figures just written
    from IPython.display import Image, display

    for path in written:
        display(Image(filename=str(path)))
