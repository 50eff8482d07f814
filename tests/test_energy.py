"""Synaptic operations and the energy estimate, on hand-computed structures."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.energy import EnergyModel, energy_summary, synaptic_operations
from sdsnn_bio.structure import Population, Projection, SpineState, Structure


def _structure() -> Structure:
    w1 = np.ones((3, 2))
    e1 = np.array([[True, True], [True, False], [False, False]])  # fan-out 2, 1, 0
    w2 = np.ones((2, 2))
    e2 = np.array([[True, False], [True, True]])  # fan-out 1, 2
    return Structure(
        (Population("input", 3), Population("hidden_1", 2), Population("output", 2)),
        (Projection("input_to_hidden_1", "input", "hidden_1", w1, e1, SpineState.from_weights(w1)),
         Projection("hidden_1_to_output", "hidden_1", "output", w2, e2, SpineState.from_weights(w2))),
    )


def test_sops_are_spikes_times_surviving_fan_out():
    counts = {
        "input": np.array([[1, 2, 5], [0, 0, 0]]),
        "hidden_1": np.array([[3, 1], [0, 4]]),
        "output": np.zeros((2, 2)),
    }
    sops = synaptic_operations(counts, _structure())
    # sample 0: input 1*2 + 2*1 + 5*0 = 4; hidden 3*1 + 1*2 = 5.  sample 1: 0; 4*2 = 8.
    np.testing.assert_array_equal(sops["input_to_hidden_1"], [4, 0])
    np.testing.assert_array_equal(sops["hidden_1_to_output"], [5, 8])


def test_energy_summary_uses_the_stated_constants():
    sops = {"a": np.array([4.0, 0.0]), "b": np.array([5.0, 8.0])}
    summary = energy_summary(sops, _structure(), n_steps=10, model=EnergyModel(0.9, 4.6))
    assert summary["sops_per_sample"] == pytest.approx(8.5)  # (9 + 8) / 2
    assert summary["energy_per_sample_nJ"] == pytest.approx(8.5 * 0.9 / 1000)
    assert summary["dense_ann_macs_per_sample"] == (6 + 4) * 10, "every potential synapse, every step"
    assert "Horowitz" in summary["energy_source"], "the constants are cited"


def test_energy_model_rejects_nonpositive_constants():
    with pytest.raises(ValueError, match="EnergyModel.picojoule_per_sop: expected a positive number"):
        EnergyModel(picojoule_per_sop=0)
