"""Initial structure: every potential synapse (or kernel element) exists, all neurons alive."""

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
    if params.layers:
        return _layered_structure(params, rng)
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


def _layered_structure(params: NetworkParameters, rng: np.random.Generator) -> Structure:
    """Structure of a network described by ``params.layers`` (convolutions, pooling folded in).

    A shared projection's parameters have fan-in ``rows`` (``C_in * k * k`` kernel elements, or the
    pooled inputs of a dense layer) and are drawn from ``N(0, (gain * pool / sqrt(rows))**2)``:
    pooling spreads each parameter over ``pool**2`` synapses of weight ``parameter / pool**2``,
    which divides the variance of the input current by ``pool**2`` at a given spike rate; the
    factor ``pool`` restores it, so one ``gain`` suits every layer.
    """
    architecture = params.architecture()
    populations = [Population("input", architecture.n_input, shape=architecture.input_shape)]
    projections = []
    source = "input"
    for spec in architecture.specs:
        populations.append(Population(spec.name, spec.size, shape=spec.shape))
        shape = spec.geometry.parameter_shape if spec.geometry is not None else (
            populations[-2].size, spec.size)
        pool = spec.geometry.pool if spec.geometry is not None else 1
        weight = rng.normal(0.0, params.weight_init_gain * pool / np.sqrt(shape[0]), size=shape)
        projections.append(Projection(
            f"{source}_to_{spec.name}", source, spec.name, weight, np.ones(shape, dtype=bool),
            SpineState.from_weights(weight), spec.geometry,
        ))
        source = spec.name
    return Structure(tuple(populations), tuple(projections))
