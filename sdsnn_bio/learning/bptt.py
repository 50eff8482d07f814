"""Back-propagation through time for LIF layers with a surrogate spike derivative.

Differentiating the update of :mod:`sdsnn_bio.learning.kernel` with the reset treated as a constant
(no gradient flows through "which neurons were reset", as in snnTorch's default) and the
refractory mask ``r_t`` treated as a constant, the gradients of a loss ``L`` satisfy, backwards in
time from ``dL/dv_{T-1} = 0``::

    dL/dI_t = (1 - s_t) * r_t * dL/dv_t
    dL/du_t = (1 - s_t) * dL/dv_t + sigma'(u_t - v_threshold) * r_t * dL/ds_t + dL/du_t (direct)
    dL/dv_{t-1} = (decay if r_t else 1) * dL/du_t

and a projection with input spikes ``x_t`` and ``I_t = W^T x_t`` has ``dL/dW = sum_t x_t dL/dI_t^T``
and passes ``dL/dx_t = W dL/dI_t`` to the layer below.
"""

from __future__ import annotations

import numpy as np

from .kernel import LayerDynamics, LayerTrace
from .surrogate import Surrogate

__all__ = ["backward_layer"]


def backward_layer(
    trace: LayerTrace,
    dynamics: LayerDynamics,
    surrogate: Surrogate,
    grad_spikes: np.ndarray | None = None,
    grad_potential: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of the loss with respect to a layer's input currents.

    Parameters
    ----------
    trace : LayerTrace
        Forward pass of the layer (shape (T, B, N)).
    dynamics : LayerDynamics
    surrogate : Surrogate
    grad_spikes : ndarray, shape (T, B, N), optional
        ``dL/ds_t`` from the layers above (or the loss).
    grad_potential : ndarray, shape (T, B, N), optional
        Direct ``dL/du_t`` (membrane losses).

    Returns
    -------
    ndarray, shape (T, B, N)
        ``dL/dI_t``.
    """
    n_steps = trace.potential.shape[0]
    direct = np.zeros_like(trace.potential)
    if grad_spikes is not None:
        np.subtract(trace.potential, dynamics.threshold, out=direct)
        direct = surrogate.derivative(direct)
        direct *= grad_spikes
        if trace.not_refractory is not None:
            direct *= trace.not_refractory
    if grad_potential is not None:
        direct += grad_potential
    keep = ~trace.spikes
    grad_currents = np.empty_like(trace.potential)
    grad_v = np.zeros(trace.potential.shape[1:], dtype=trace.potential.dtype)
    decay = trace.potential.dtype.type(dynamics.decay)
    if trace.not_refractory is None:
        for t in range(n_steps - 1, -1, -1):
            g_current = grad_currents[t]
            np.multiply(grad_v, keep[t], out=g_current)
            np.add(g_current, direct[t], out=grad_v)  # dL/du_t
            grad_v *= decay
        return grad_currents
    for t in range(n_steps - 1, -1, -1):
        r = trace.not_refractory[t]
        g_potential = grad_v * keep[t]  # dL/du_t through v_t, before the direct terms
        np.multiply(g_potential, r, out=grad_currents[t])
        np.add(g_potential, direct[t], out=grad_v)  # dL/du_t
        np.multiply(grad_v, decay, out=grad_v, where=r)
    return grad_currents
