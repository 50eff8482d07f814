"""Layer descriptions of a feed-forward spiking network: ``["15C3", "AP2", "40C3", "AP2", "300FC"]``.

The notation of the SD-SNN papers (``2-15C3-AP2-40C3-AP2-300FC-10``: 2 input channels, 15 3x3
convolution channels, 2x2 average pooling, 40 3x3 channels, pooling, 300 fully-connected
neurons, 10 outputs). The input shape comes from the dataset and the output layer (one
fully-connected neuron per class) is always added, so a description lists the hidden layers only:

``"<n>C<k>"``
    A convolutional LIF layer of ``n`` channels with ``k x k`` kernels, stride 1 and "same" zero
    padding ``k // 2`` (the released SCNNs: ``padding=1`` for 3x3 kernels); ``"<n>C<k>P<p>"`` sets
    the padding to ``p``.
``"AP<s>"``
    Average pooling of the previous layer's spikes over ``s x s`` windows with stride ``s``, folded
    into the next projection (no neuron; see :mod:`sdsnn_bio.geometry`).
``"<n>FC"``
    A fully-connected LIF layer of ``n`` neurons.

Each LIF layer is a population ``hidden_1``, ``hidden_2``, ... (convolutional ones with the shape
``(channels, height, width)``); :func:`parse_layers` validates the description and computes every
shape, naming the offending entry in its errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..geometry import Geometry

__all__ = ["LayerSpec", "Architecture", "parse_layers"]

_CONV = re.compile(r"^(\d+)C(\d+)(?:P(\d+))?$")
_POOL = re.compile(r"^AP(\d+)$")
_DENSE = re.compile(r"^(\d+)FC$")


@dataclass(frozen=True)
class LayerSpec:
    """One LIF population and the projection into it.

    Attributes
    ----------
    name : str
        Population name (``hidden_<k>`` or ``output``).
    shape : tuple of int or None
        ``(channels, height, width)`` of a convolutional population, None for a fully-connected one.
    size : int
        Neurons.
    geometry : Geometry or None
        Geometry of the projection into it (None: fully connected to a fully-connected source).
    """

    name: str
    shape: tuple | None
    size: int
    geometry: Geometry | None


@dataclass(frozen=True)
class Architecture:
    """A parsed layer description (see the module docstring)."""

    layers: tuple[str, ...]
    input_shape: tuple[int, int, int]
    specs: tuple[LayerSpec, ...]

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Neurons per hidden population, input to output."""
        return tuple(spec.size for spec in self.specs[:-1])

    @property
    def n_input(self) -> int:
        """Number of input channels (``prod(input_shape)``)."""
        return int(np.prod(self.input_shape))


def parse_layers(layers, input_shape, n_output: int, owner: str = "network.layers") -> Architecture:
    """Validate a layer description and compute every population's shape.

    Parameters
    ----------
    layers : sequence of str
        Hidden layers, e.g. ``["15C3", "AP2", "40C3", "AP2", "300FC"]``.
    input_shape : tuple of int
        ``(channels, height, width)`` of the input (N-MNIST: ``(2, 34, 34)``).
    n_output : int
        Output neurons (classes).
    owner : str
        Name used in error messages (the config key).

    Raises
    ------
    ValueError
        Naming the entry and what was expected.
    """
    if isinstance(layers, str) or not isinstance(layers, (list, tuple)):
        raise ValueError(
            f"{owner}: expected a list of layer strings such as [\"15C3\", \"AP2\", \"300FC\"], "
            f"got {layers!r}"
        )
    shape = tuple(input_shape) if input_shape is not None else ()
    if len(shape) != 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in shape):
        raise ValueError(
            f"{owner}: the input must have a (channels, height, width) shape for a layer "
            f"description, got {input_shape!r}"
        )
    source: tuple | None = tuple(int(v) for v in shape)
    pool = 1
    specs = []
    entries = list(layers) + [f"{int(n_output)}FC"]
    for position, entry in enumerate(entries):
        last = position == len(entries) - 1
        where = "the output layer" if last else f"{owner}[{position}] = {entry!r}"
        if not isinstance(entry, str):
            raise ValueError(f"{owner}[{position}]: expected a string such as \"15C3\", got {entry!r}")
        text = entry.strip().upper()
        name = "output" if last else f"hidden_{len(specs) + 1}"
        if match := _POOL.fullmatch(text):
            size = int(match.group(1))
            if size < 1:
                raise ValueError(f"{where}: the pooling size must be >= 1")
            if pool != 1:
                raise ValueError(f"{where}: two pooling layers in a row; write one AP with the product")
            if source is None:
                raise ValueError(f"{where}: pooling needs channels, but the layer before is fully connected")
            pool = size
            continue
        if match := _CONV.fullmatch(text):
            channels, kernel = int(match.group(1)), int(match.group(2))
            padding = kernel // 2 if match.group(3) is None else int(match.group(3))
            if source is None:
                raise ValueError(
                    f"{where}: a convolution cannot follow a fully-connected layer"
                )
            if channels < 1 or kernel < 1:
                raise ValueError(f"{where}: channels and kernel size must be >= 1")
            try:
                geometry = Geometry("convolution", source, channels, kernel, padding, pool)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            specs.append(LayerSpec(name, geometry.target_shape, geometry.n_target, geometry))
            source = geometry.target_shape
        elif match := _DENSE.fullmatch(text):
            size = int(match.group(1))
            if size < 1:
                raise ValueError(f"{where}: a fully-connected layer needs >= 1 neuron")
            geometry = None
            if source is not None:
                try:
                    geometry = Geometry("dense", source, size, pool=pool)
                except ValueError as err:
                    raise ValueError(f"{where}: {err}") from None
            specs.append(LayerSpec(name, None, size, geometry))
            source = None
        else:
            raise ValueError(
                f"{where}: expected \"<channels>C<kernel>\" (e.g. \"15C3\", padding \"15C3P0\"), "
                f"\"AP<size>\" (e.g. \"AP2\") or \"<neurons>FC\" (e.g. \"300FC\")"
            )
        pool = 1
    if len(specs) < 2:
        raise ValueError(f"{owner}: expected at least one hidden LIF layer, got {list(layers)!r}")
    return Architecture(tuple(str(v) for v in layers), tuple(int(v) for v in shape), tuple(specs))
