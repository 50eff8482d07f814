"""Adam (Kingma & Ba 2015) over named weight arrays, updated in place.

With ``g`` the gradient, ``k`` the step count, ``lr`` the learning rate::

    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g**2
    w <- w - lr * sqrt(1 - beta2**k) / (1 - beta1**k) * m / (sqrt(v) + epsilon)

The update is memory-bound (four arrays the size of the weights). ``fused=True`` runs it as one
compiled pass per row block (:func:`.fused.kernels`, Numba), with the same operations in the same
order as the NumPy path, hence the same result bit for bit (tested).

:class:`LearningRateSchedule` gives the learning rate of each training batch: constant, or a cosine
decay from the base rate to a minimum over the whole run (the released SD-SNN code trains with a
cosine schedule). It is a pure function of the batch index, so a resumed run follows the same
schedule as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Adam", "LearningRateSchedule", "LR_SCHEDULES"]

LR_SCHEDULES = ("constant", "cosine")


@dataclass
class Adam:
    """Adam optimiser state for a set of named arrays.

    Parameters
    ----------
    learning_rate : float
        Step size (normalised potential per update).
    beta1, beta2 : float
        Decay rates of the first and second moment estimates.
    epsilon : float
        Added to the denominator.
    fused : bool
        One compiled pass per row block (Numba) instead of a sequence of NumPy operations.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    fused: bool = False

    def __post_init__(self) -> None:
        self.step_count = 0
        self.first_moment: dict[str, np.ndarray] = {}
        self.second_moment: dict[str, np.ndarray] = {}

    def update(
        self, parameters: dict[str, np.ndarray], gradients: dict[str, np.ndarray], workers=None
    ) -> None:
        """One Adam step: ``parameters[name] -= step`` in place for every gradient given.

        ``workers`` (a :class:`~sdsnn_bio.learning.parallel.RowBlocks`) splits the update of large
        arrays over threads; the result is the same.
        """
        self.step_count += 1
        t = self.step_count
        correction = math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        step_size = self.learning_rate * correction
        for name, grad in gradients.items():
            param = parameters[name]
            if name not in self.first_moment:
                self.first_moment[name] = np.zeros_like(param)
                self.second_moment[name] = np.zeros_like(param)
            m, v = self.first_moment[name], self.second_moment[name]
            if self.fused and _fusable(param, grad, m, v):
                block = self._fused_block(param, grad, m, v, step_size)
            else:
                def block(a: int, b: int) -> None:
                    self._update_block(param[a:b], grad[a:b], m[a:b], v[a:b], step_size)

            if workers is None:
                block(0, param.shape[0])
            else:
                workers.map(block, param.shape[0], 4 if self.fused else 1)

    def _fused_block(self, param, grad, m, v, step_size: float):
        from .fused import kernels

        adam_block = kernels().adam_block
        shape = (param.shape[0], -1)
        arrays = [np.reshape(x, shape) for x in (param, grad, m, v)]  # views: all C-contiguous

        def block(a: int, b: int) -> None:
            adam_block(*arrays, self.beta1, self.beta2, self.epsilon, step_size, a, b)

        return block

    def _update_block(self, param, grad, m, v, step_size: float) -> None:
        scratch = np.multiply(grad, 1.0 - self.beta1)
        m *= self.beta1
        m += scratch
        np.square(grad, out=scratch)
        scratch *= 1.0 - self.beta2
        v *= self.beta2
        v += scratch
        np.sqrt(v, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        param -= scratch

    def reset(self, name: str, mask: np.ndarray) -> None:
        """Forget the moments of the entries selected by ``mask`` (e.g. regrown synapses)."""
        for moments in (self.first_moment, self.second_moment):
            if name in moments:
                moments[name][mask] = 0.0

    def state_arrays(self, prefix: str = "adam") -> dict[str, np.ndarray]:
        arrays = {f"{prefix}/step_count": np.array(self.step_count)}
        for name, value in self.first_moment.items():
            arrays[f"{prefix}/m/{name}"] = value
        for name, value in self.second_moment.items():
            arrays[f"{prefix}/v/{name}"] = value
        return arrays

    def load_state_arrays(self, arrays, prefix: str = "adam") -> None:
        self.step_count = int(arrays[f"{prefix}/step_count"])
        self.first_moment = {
            key[len(prefix) + 3:]: np.array(arrays[key]) for key in arrays if key.startswith(f"{prefix}/m/")
        }
        self.second_moment = {
            key[len(prefix) + 3:]: np.array(arrays[key]) for key in arrays if key.startswith(f"{prefix}/v/")
        }


def _fusable(*arrays) -> bool:
    """The compiled update needs C-contiguous float64 arrays of one shape, at least 1-D."""
    shape = arrays[0].shape
    return len(shape) >= 1 and arrays[0].size > 0 and all(
        x.shape == shape and x.dtype == np.float64 and x.flags.c_contiguous for x in arrays
    ) and arrays[0].flags.writeable


@dataclass(frozen=True)
class LearningRateSchedule:
    """Learning rate as a function of the training batch.

    ``constant``: ``base`` at every batch. ``cosine``::

        lr(b) = minimum + (base - minimum) * (1 + cos(pi * b / total_batches)) / 2

    for ``b = 0 .. total_batches - 1`` (the batches already done), from ``base`` at the first batch
    down towards ``minimum`` at the last.

    Parameters
    ----------
    kind : {"constant", "cosine"}
    base : float
        Learning rate of the first batch (> 0).
    minimum : float
        Learning rate the cosine decays to (0 <= minimum <= base; ignored by ``constant``).
    total_batches : int
        Training batches of the whole run (>= 1).
    """

    kind: str = "constant"
    base: float = 1e-3
    minimum: float = 0.0
    total_batches: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule: expected one of {list(LR_SCHEDULES)}, got {self.kind!r}")
        if not (isinstance(self.base, (int, float)) and math.isfinite(self.base) and self.base > 0):
            raise ValueError(f"learning_rate: expected a finite number > 0, got {self.base!r}")
        if not (isinstance(self.minimum, (int, float)) and 0.0 <= self.minimum <= self.base):
            raise ValueError(
                f"min_learning_rate: expected a number in [0, learning_rate = {self.base!r}], "
                f"got {self.minimum!r}"
            )
        if isinstance(self.total_batches, bool) or not isinstance(self.total_batches, int) \
                or self.total_batches < 1:
            raise ValueError(f"total_batches: expected an integer >= 1, got {self.total_batches!r}")

    def at(self, batch: int) -> float:
        """Learning rate of training batch ``batch`` (0-based: the number of batches already done)."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 0:
            raise ValueError(f"LearningRateSchedule.at: expected an integer >= 0, got {batch!r}")
        if self.kind == "constant":
            return float(self.base)
        progress = min(int(batch), self.total_batches) / self.total_batches
        return float(self.minimum + (self.base - self.minimum) * 0.5 * (1.0 + math.cos(math.pi * progress)))
