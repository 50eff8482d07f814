"""Surrogate derivatives of the spike nonlinearity, chosen by name.

A neuron spikes when its potential ``u`` exceeds the threshold: ``s = H(u - v_threshold)``, whose
derivative is zero almost everywhere. Surrogate-gradient learning (Neftci, Mostafa & Zenke 2019,
IEEE Signal Processing Magazine 36:51) keeps the Heaviside step in the forward pass and replaces its
derivative by a smooth pseudo-derivative ``sigma'(x)`` of ``x = u - v_threshold`` in the backward
pass.

=================  ==============================================  ====================================
name               sigma'(x)                                       source
=================  ==============================================  ====================================
``fast_sigmoid``   ``1 / (1 + slope*|x|)**2``                       Zenke & Ganguli 2018 (SuperSpike)
``sigmoid``        ``slope * S(slope*x) * (1 - S(slope*x))``        snnTorch's ``surrogate.sigmoid``
``arctan``         ``(alpha/2) / (1 + (pi/2*alpha*x)**2)``          Fang et al. 2021 (SpikingJelly)
``rectangular``    ``1/width`` if ``|x| < width/2`` else 0          Wu et al. 2018 (STBP)
=================  ==============================================  ====================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Surrogate", "SURROGATES", "make_surrogate"]


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative with its shape parameter.

    Parameters
    ----------
    name : str
        One of :data:`SURROGATES`.
    scale : float
        The shape parameter (``slope`` for the sigmoids, ``alpha`` for arctan, ``width`` for the
        rectangle), in inverse units of the normalised potential (width: in its units).
    """

    name: str = "fast_sigmoid"
    scale: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SURROGATES:
            raise ValueError(
                f"learning.surrogate: expected one of {sorted(SURROGATES)}, got {self.name!r}"
            )
        if self.scale == 0.0:
            object.__setattr__(self, "scale", SURROGATES[self.name])
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(
                f"learning.surrogate_scale: expected a positive number, got {self.scale!r}"
            )

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``sigma'(x)`` elementwise, for ``x = u - v_threshold`` (float32 stays float32)."""
        x = np.asarray(x)
        if x.dtype != np.float32:
            x = x.astype(np.float64, copy=False)
        k = float(self.scale)  # a Python float: computed in the type of x
        if self.name == "fast_sigmoid":
            return 1.0 / np.square(1.0 + k * np.abs(x))
        if self.name == "sigmoid":
            s = 1.0 / (1.0 + np.exp(-k * x))
            return k * s * (1.0 - s)
        if self.name == "arctan":
            return (k / 2.0) / (1.0 + np.square(math.pi / 2.0 * k * x))
        return (np.abs(x) < k / 2.0).astype(x.dtype) / k  # rectangular


#: Available surrogates and their default shape parameter.
SURROGATES = {"fast_sigmoid": 10.0, "sigmoid": 5.0, "arctan": 2.0, "rectangular": 1.0}


def make_surrogate(name: str, scale: float | None = None) -> Surrogate:
    """Surrogate by name, with its default shape parameter unless ``scale`` is given."""
    return Surrogate(name, 0.0 if scale is None else scale)
