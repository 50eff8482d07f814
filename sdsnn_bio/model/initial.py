"""Initial structure of a dense network: every potential synapse exists, all neurons alive."""

from __future__ import annotations

import numpy as np

from ..structure import Population, Projection, SpineState, Structure
from .parameters import NetworkParameters

__all__ = ["initial_structure"]


def initial_structure(params: NetworkParameters, rng: np.random.Generator) -> Structure:
    """Fully connected feed-forward structure with Gaussian weights.

    Weights of a projection with fan-in ``n`` are drawn from ``N(0, (gain / sqrt(n))**2)`` with
    ``gain = params.weight_init_gain``; spine ranges start at ``[-max(w), max(w)]`` of the projection
    (SD-SNN released code).

    Parameters
    ----------
    params : NetworkParameters
        Architecture.
    rng : numpy.random.Generator
        Source of the initial weights.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    names = params.population_names
    sizes = params.population_sizes
    populations = tuple(Population(name, size) for name, size in zip(names, sizes))
    projections = []
    for (source, n_source), (target, n_target) in zip(
        zip(names[:-1], sizes[:-1]), zip(names[1:], sizes[1:])
    ):
        scale = params.weight_init_gain / np.sqrt(n_source)
        weight = rng.normal(0.0, scale, size=(n_source, n_target))
        projections.append(Projection(
            f"{source}_to_{target}", source, target, weight,
            np.ones((n_source, n_target), dtype=bool), SpineState.from_weights(weight),
        ))
    return Structure(populations, tuple(projections))
