"""Surrogate-gradient learning of the spiking network (NumPy/SciPy, optionally Numba; no Brian2).

* :class:`Learner` trains the structure's weights by backpropagation through time: the forward pass
  integrates the LIF layers on the time grid (:func:`integrate_layer`, spike-for-spike equal to the
  Brian2 network), the backward pass uses a surrogate derivative of the spike
  (:func:`make_surrogate`) and :class:`Adam` updates existing *and* latent weights;
* :mod:`.loss` holds the losses and the prediction rule, :mod:`.augment` the random translation
  and distortion of input spikes, :mod:`.optim` the optimiser and the learning-rate schedules.

The names below are imported on first use: importing one submodule does not import the others.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "Learner": ".learner",
    "LearningParameters": ".learner",
    "InputBatch": ".learner",
    "ForwardPass": ".learner",
    "StepResult": ".learner",
    "BACKENDS": ".learner",
    "LayerDynamics": ".kernel",
    "LayerTrace": ".kernel",
    "integrate_layer": ".kernel",
    "backward_layer": ".bptt",
    "ModelTrace": ".stepping",
    "integrate_model": ".stepping",
    "backward_model": ".stepping",
    "Adam": ".optim",
    "LearningRateSchedule": ".optim",
    "LR_SCHEDULES": ".optim",
    "Surrogate": ".surrogate",
    "SURROGATES": ".surrogate",
    "make_surrogate": ".surrogate",
    "LOSSES": ".loss",
    "cross_entropy": ".loss",
    "rate_mse": ".loss",
    "predict": ".loss",
    "shift_spikes": ".augment",
    "batch_shifts": ".augment",
    "augment_samples": ".augment",
    "augment_batch": ".augment",
    "Distortion": ".augment",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
