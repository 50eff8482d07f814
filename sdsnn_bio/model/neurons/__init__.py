"""Neuron models: one file per model, one line in :data:`NEURON_MODELS`.

A neuron model is a frozen dataclass of its constants (Brian2 quantities, validated in
``__post_init__``) that bundles, side by side in one module:

* its Brian2 side: ``equations(synaptic_input)`` (``Equations`` with a unit and a comment on every
  line, ending with :data:`~sdsnn_bio.model.neurons.base.DEVELOPMENT_STATE`), the class attributes
  ``threshold`` (ending with ``and alive``), ``reset``, ``sample_reset`` (back to rest at the start
  of every sample) and ``refractory_expression``, and ``namespace()`` (the external constants);
* its discrete-time update for the training kernels: ``dynamics(dt_seconds)`` returns a frozen
  dataclass of plain floats with ``initial_state``, ``step`` (one time step, NumPy, Brian2's order:
  state update, threshold, synapses, reset) and the surrogate-gradient ``backward_step``
  (``initial_adjoint``); :mod:`sdsnn_bio.learning.stepping` runs them over time;
* optionally the same two as compiled loops (``compiled_forward``, ``compiled_backward``: scalar
  loops compiled by Numba on first use), which the learner's ``"numba"`` backend runs.

Models: ``"lif"`` (:mod:`.lif`, the default; with voltage-jump synapses the learner runs the fused
Numba kernels of :mod:`sdsnn_bio.learning.fused` instead) and ``"alif"`` (:mod:`.alif`, adaptive threshold after
Bellec et al. 2018). The page "Write your own neuron model" (``docs/neuron_models.md``) walks
through ALIF.

Checklist for a new model ``"mymodel"``
---------------------------------------
1. ``sdsnn_bio/model/neurons/mymodel.py``: the parameters dataclass (``name = "mymodel"``, usually a
   subclass of :class:`NeuronParameters` to inherit the membrane constants and their checks), its
   ``equations``/``threshold``/``reset``/``sample_reset``/``namespace``, and its ``dynamics(dt)``
   with ``step`` and ``backward_step`` (and, optionally, ``compiled_forward`` and
   ``compiled_backward``: without them the model trains with ``learning.backend = "numpy"``);
   the module docstring states the equations, the discrete update and the backward step, and cites
   the model's paper.
2. One line in :data:`NEURON_MODELS` below.
3. Configuration: each new constant becomes a key of ``[network]`` (``NetworkConfig`` in
   :mod:`sdsnn_bio.config`, with its default and, for a time, an entry in ``_TIME_FIELDS``); keys are
   passed to the model by name, and a key set while another model is in force is refused.
4. Tests (parametrised over the registry, so most come for free): ``tests/test_neuron_models.py``
   runs the model's kernel against Brian2 spike for spike, its backward step against an independent
   forward-mode derivative and against finite differences, its compiled loops against its NumPy
   steps; add a pinned trajectory of one neuron
   against literal numbers (as ``test_pinned_alif_trajectory_against_literal_numbers``) and teach
   the forward-mode derivative in that file the model's tangent.
5. Docs: ``docs/model.rst`` renders the equations of every registered model by itself; mention the
   model in ``docs/neuron_models.md`` and add it to ``docs/api.rst``.
"""

from __future__ import annotations

from dataclasses import fields

from .alif import ALIF, AdaptiveNeuronParameters, ALIFDynamics
from .lif import LIF, LIFDynamics, NeuronParameters

__all__ = ["NEURON_MODELS", "neuron_model", "NeuronParameters", "LIF", "LIFDynamics",
           "AdaptiveNeuronParameters", "ALIF", "ALIFDynamics"]

#: Registered neuron models: ``network.neuron_model`` -> parameters class.
NEURON_MODELS = {
    "lif": NeuronParameters,
    "alif": AdaptiveNeuronParameters,
}


def neuron_model(name: str, **constants) -> NeuronParameters:
    """The neuron model registered as ``name``, with its constants.

    Parameters
    ----------
    name : str
        A key of :data:`NEURON_MODELS` (``"lif"``, ``"alif"``).
    **constants
        Fields of the model's dataclass (e.g. ``tau_membrane=20*ms``, ``tau_adaptation=100*ms``).

    Raises
    ------
    ValueError
        Naming ``network.neuron_model`` and the registered names, or the constant that does not apply.
    """
    if name not in NEURON_MODELS:
        raise ValueError(f"network.neuron_model: expected one of {sorted(NEURON_MODELS)}, got {name!r}")
    cls = NEURON_MODELS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(constants) - known)
    if unknown:
        raise ValueError(f"neuron model {name!r}: unknown constant(s) {unknown}; expected {sorted(known)}")
    return cls(**constants)
