"""Adam (Kingma & Ba 2015) over named weight arrays, updated in place."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Adam"]


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
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

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
            m = self.first_moment.setdefault(name, np.zeros_like(param))
            v = self.second_moment.setdefault(name, np.zeros_like(param))

            def block(a: int, b: int) -> None:
                self._update_block(param[a:b], grad[a:b], m[a:b], v[a:b], step_size)

            if workers is None:
                block(0, param.shape[0])
            else:
                workers.map(block, param.shape[0])

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
