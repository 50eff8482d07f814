"""Synaptic operations and an energy estimate from recorded spikes.

A *synaptic operation* (SOP) is one spike delivered through one existing synapse: a neuron that
fires ``n`` times with ``k`` surviving outgoing synapses costs ``n*k`` SOPs. Counting SOPs from the
Brian2 spike monitors of the network of record therefore measures exactly what pruning saves.

Energy: one SOP of a spiking network is an accumulate (no multiply). Horowitz (2014, "Computing's
energy problem (and what we can do about it)", ISSCC, Fig. 1.1.9) gives, in 45 nm CMOS, 0.9 pJ for a
32-bit floating-point add and 4.6 pJ for a 32-bit floating-point multiply-accumulate (3.7 pJ multiply
+ 0.9 pJ add); these are the constants used here (parameters, so other technologies can be used).
The dense non-spiking equivalent (one MAC per synapse per time step) is reported for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure import Structure

__all__ = ["EnergyModel", "synaptic_operations", "energy_summary"]


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation, in picojoules (Horowitz 2014, 45 nm, 32-bit float)."""

    picojoule_per_sop: float = 0.9
    picojoule_per_mac: float = 4.6

    def __post_init__(self) -> None:
        for name in ("picojoule_per_sop", "picojoule_per_mac"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"EnergyModel.{name}: expected a positive number, got {value!r}")


def synaptic_operations(spike_counts: dict, structure: Structure) -> dict[str, np.ndarray]:
    """SOPs per sample for every projection.

    Parameters
    ----------
    spike_counts : dict[str, ndarray]
        Per population name, spike counts of shape (B, N) (e.g. ``Recording.spike_counts``).
    structure : Structure
        Gives each neuron's number of existing outgoing synapses.

    Returns
    -------
    dict[str, ndarray]
        Per projection, SOPs of each sample, shape (B,).
    """
    sops = {}
    for projection in structure.projections:
        fan_out = projection.fan_out().astype(np.float64)
        counts = np.asarray(spike_counts[projection.source], dtype=np.float64)
        sops[projection.name] = counts @ fan_out
    return sops


def energy_summary(sops: dict[str, np.ndarray], structure: Structure, n_steps: int,
                   model: EnergyModel = EnergyModel()) -> dict:
    """Mean SOPs and energy per sample, beside a dense non-spiking network's MACs (JSON-ready)."""
    total = sum(np.asarray(v, dtype=np.float64) for v in sops.values())
    per_projection = {name: float(np.mean(v)) for name, v in sops.items()}
    dense_macs = float(sum(p.n_potential_synapses for p in structure.projections) * n_steps)
    mean_sops = float(np.mean(total)) if np.size(total) else 0.0
    return {
        "sops_per_sample": mean_sops,
        "sops_per_sample_sd": float(np.std(total)) if np.size(total) else 0.0,
        "sops_per_projection": per_projection,
        "energy_per_sample_nJ": mean_sops * model.picojoule_per_sop / 1000.0,
        "dense_ann_macs_per_sample": dense_macs,
        "dense_ann_energy_per_sample_nJ": dense_macs * model.picojoule_per_mac / 1000.0,
        "picojoule_per_sop": model.picojoule_per_sop,
        "picojoule_per_mac": model.picojoule_per_mac,
        "energy_source": "Horowitz 2014, ISSCC, 45 nm, 32-bit float add / MAC",
    }
