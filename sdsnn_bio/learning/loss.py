"""Losses on the output layer and the read-out of a prediction.

``rate_cross_entropy`` (default): cross-entropy of ``softmax(logit_scale * c / T)`` where ``c`` are
the output spike counts of a sample and ``T`` its time steps, so the loss does not depend on the
time resolution; the gradient reaches each output spike ``s_t`` as ``dL/dc``.

``membrane_cross_entropy``: cross-entropy of ``softmax(logit_scale * mean_t u_t)`` with ``u_t`` the
output potentials tested against the threshold (useful when output spikes are rare).

``rate_mse`` (the released SD-SNN scripts' loss): mean squared error between the output firing rates
``c / T`` and the one-hot label, averaged over samples and classes,
``L = mean_{b,k} (c_bk / T - y_bk)**2`` (PyTorch's ``MSELoss`` on mean spike counts);
``logit_scale`` is not used.

Prediction: the output neuron with the most spikes; ties (including "no spike at all") are broken
by the highest mean potential.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOSSES", "cross_entropy", "rate_mse", "predict"]

LOSSES = ("rate_cross_entropy", "membrane_cross_entropy", "rate_mse")


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy over the batch and its gradient with respect to ``logits``.

    Parameters
    ----------
    logits : ndarray, shape (B, C)
    labels : ndarray of int, shape (B,)
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_prob = shifted - log_norm
    batch = np.arange(len(labels))
    loss = float(-log_prob[batch, labels].mean())
    grad = np.exp(log_prob)
    grad[batch, labels] -= 1.0
    grad /= len(labels)
    return loss, grad


def rate_mse(rates: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over samples and classes of ``(rate - one_hot)**2`` and its gradient w.r.t. ``rates``.

    Parameters
    ----------
    rates : ndarray, shape (B, C)
        Output spikes per time step (``counts / T``), dimensionless in [0, 1].
    labels : ndarray of int, shape (B,)
    """
    rates = np.asarray(rates, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    target = np.zeros_like(rates)
    target[np.arange(len(labels)), labels] = 1.0
    error = rates - target
    loss = float(np.mean(error**2))
    return loss, error * (2.0 / error.size)


def predict(counts: np.ndarray, mean_potential: np.ndarray) -> np.ndarray:
    """Class with the most output spikes, ties broken by the highest mean potential."""
    counts = np.asarray(counts, dtype=np.float64)
    squashed = 0.5 / (1.0 + np.exp(-np.asarray(mean_potential, dtype=np.float64)))  # in (0, 0.5)
    return np.argmax(counts + squashed, axis=1)
