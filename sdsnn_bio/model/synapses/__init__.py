"""Synapse models: one file per model, one line in :data:`SYNAPSE_MODELS`.

A synapse model is a frozen dataclass of its constants that bundles, side by side in one module:

* its Brian2 side: ``equations()`` (the ``Synapses`` model: ``w`` and the dendritic-spine state of
  :func:`sdsnn_bio.model.equations.synapse_equations`), ``on_pre``, and what it adds to the
  postsynaptic neurons: ``neuron_equations()`` (``None`` for none), ``neuron_input`` (the variable
  driving the membrane, passed to the neuron model's ``equations``; ``""`` for none),
  ``sample_reset`` and ``namespace()``;
* its discrete-time update for the training kernels: ``dynamics(dt_seconds, neuron)`` returns a
  frozen dataclass of plain floats whose ``split(currents)`` turns the summed weights of the
  presynaptic spikes of each step, ``J_t`` of shape (T, B, N), into ``(jump, drive)``: a voltage jump
  after the threshold and a drive entering the neuron's state update (either may be ``None``), and
  whose ``split_backward(grad_jump, grad_drive)`` is its transpose (``dL/dJ``).

Models: ``"voltage_jump"`` (:mod:`.voltage_jump`, the default: ``v_post += w``) and
``"current_exponential"`` (:mod:`.current_exponential`: a current ``synaptic_current_post += w`` that
decays with ``tau_synapse`` and drives the membrane).

Checklist for a new model ``"mysynapse"``
-----------------------------------------
1. ``sdsnn_bio/model/synapses/mysynapse.py``: the dataclass (``name = "mysynapse"``) with the members
   above; its docstring states the Brian2 equations and the discrete ``split`` and its transpose.
2. One line in :data:`SYNAPSE_MODELS` below.
3. Its constants as keys of ``[network]`` (``NetworkConfig`` in :mod:`sdsnn_bio.config`).
4. Tests: ``tests/test_neuron_models.py`` is parametrised over neuron x synapse models (kernel vs
   Brian2, backward vs forward-mode derivative and finite differences); add a pinned trajectory and
   the model's tangent to the forward-mode derivative there.
5. Docs: ``docs/model.rst`` renders every registered model; add it to ``docs/api.rst``.
"""

from __future__ import annotations

from dataclasses import fields

from .current_exponential import CurrentSynapseDynamics, ExponentialCurrentParameters
from .voltage_jump import VoltageJumpDynamics, VoltageJumpParameters

__all__ = ["SYNAPSE_MODELS", "synapse_model", "VoltageJumpParameters", "VoltageJumpDynamics",
           "ExponentialCurrentParameters", "CurrentSynapseDynamics"]

#: Registered synapse models: ``network.synapse_model`` -> parameters class.
SYNAPSE_MODELS = {
    "voltage_jump": VoltageJumpParameters,
    "current_exponential": ExponentialCurrentParameters,
}


def synapse_model(name: str, **constants):
    """The synapse model registered as ``name``, with its constants (e.g. ``tau_synapse=5*ms``).

    Raises
    ------
    ValueError
        Naming ``network.synapse_model`` and the registered names, or the constant that does not apply.
    """
    if name not in SYNAPSE_MODELS:
        raise ValueError(f"network.synapse_model: expected one of {sorted(SYNAPSE_MODELS)}, got {name!r}")
    cls = SYNAPSE_MODELS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(constants) - known)
    if unknown:
        raise ValueError(f"synapse model {name!r}: unknown constant(s) {unknown}; expected {sorted(known)}")
    return cls(**constants)
