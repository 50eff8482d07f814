"""Where a training batch's forward pass comes from: the learner's kernel or Brian2 (``learning.forward``).

Surrogate-gradient learning needs, for every training batch, the spikes of every layer; the
potentials and the traces of the backward pass follow from the spikes and the weights. Two sources
give the same spikes (the kernel is tested spike for spike against the Brian2 network):

``"kernel"`` (default)
    The learner simulates the batch itself (:meth:`~sdsnn_bio.learning.Learner.simulate`: NumPy, or
    its compiled Numba loops).
``"brian2"``
    The network of record simulates it. Before each batch the current weights and ``alive`` masks
    are written into the existing ``Synapses`` and ``NeuronGroup`` objects
    (:meth:`~sdsnn_bio.model.SpikingNetwork.load_weights`: the same objects under the same names,
    so Brian2 generates and compiles no code again; a projection whose connectivity development
    changed is rebuilt under its name, which reuses the compiled code). The batch's input spikes,
    exactly those the kernel would see, augmentation included (:meth:`InputBatch.samples
    <sdsnn_bio.learning.InputBatch.samples>`; with direct encoding its intensity vectors), are
    presented in one ``run()``; the spikes of every
    layer are read from its ``SpikeMonitor`` (:meth:`~sdsnn_bio.model.Recording.dense_spikes`) and
    the learner reconstructs the potentials and traces from them
    (:meth:`~sdsnn_bio.learning.Learner.reconstruct`), then runs its backward pass and Adam on
    them. Pruned neurons are silent in Brian2 (their ``alive`` is 0) and absent synapses do not
    exist there, which is the kernel's ``learning.masked_forward = true``; the released
    semantics' ``masked_forward = false`` (pruned synapses and neurons taking part between
    development steps) has no Brian2 counterpart and is refused.

Both give the same spikes and the same weights up to floating-point rounding (tested over several
batches, with development; for convolutional networks bit for bit, also tested). The kernel is the
default because it is faster (``docs/benchmarks.md``: the Brian2 path simulates the batch in Brian2
*and* rebuilds its potentials).

Brian2 is not imported here: :class:`Brian2Forward` is handed the network.
"""

from __future__ import annotations

import gc

import numpy as np

__all__ = ["FORWARD_PASSES", "KernelForward", "Brian2Forward", "training_forward"]

#: Sources of the training forward pass (``learning.forward``), the default first.
FORWARD_PASSES = ("kernel", "brian2")


class KernelForward:
    """Training batches simulated by the learner's own kernel (``learning.forward = "kernel"``).

    Parameters
    ----------
    learner : Learner
    """

    name = "kernel"

    def __init__(self, learner) -> None:
        self.learner = learner

    def train_step(self, batch, labels):
        """Forward pass, backward pass and Adam update of one batch (:meth:`Learner.train_step`)."""
        return self.learner.train_step(batch, labels)


class Brian2Forward:
    """Training batches simulated by the Brian2 network of record (``learning.forward = "brian2"``).

    Parameters
    ----------
    network : SpikingNetwork
        The Brian2 network built from ``structure``; it is run once per batch.
    structure : Structure
        The structure the learner trains (weights, existence masks and ``alive`` are read from it
        before every batch).
    learner : Learner
        Its ``params.masked_forward`` must be True (see the module docstring).
    """

    name = "brian2"

    def __init__(self, network, structure, learner) -> None:
        if not learner.params.masked_forward:
            raise ValueError(
                "learning.forward: 'brian2' needs learning.masked_forward = true (the Brian2 network "
                "holds only the existing synapses and silences pruned neurons); got "
                "masked_forward = false, which only the 'kernel' forward pass implements"
            )
        self.network = network
        self.structure = structure
        self.learner = learner

    def record(self, batch) -> dict[str, np.ndarray]:
        """Simulate ``batch`` in Brian2 with the current weights; spikes per layer, each (T, B, N) bool."""
        if batch.n_steps != self.network.params.n_steps:
            raise ValueError(
                f"learning.forward = 'brian2': the batch has {batch.n_steps} steps per sample, the "
                f"network {self.network.params.n_steps}"
            )
        self.network.load_weights(self.structure)
        # Brian2's Network.run starts with gc.collect(), a full collection of this process's heap
        # (0.4 s per batch on the main network): frozen objects are skipped, and the freeze is undone
        # after the run (both only move the collector's lists).
        gc.freeze()
        try:
            recording = self.network.present(batch.samples())
        finally:
            gc.unfreeze()
        return {name: recording.dense_spikes(name) for name in self.learner.order}

    def train_step(self, batch, labels):
        """Brian2 forward pass, reconstruction, backward pass and Adam update of one batch."""
        return self.learner.train_step(batch, labels, recorded_spikes=self.record(batch))


def training_forward(name: str, learner, network=None, structure=None):
    """The forward pass ``learning.forward = name`` of training.

    Parameters
    ----------
    name : {"kernel", "brian2"}
    learner : Learner
    network : SpikingNetwork, optional
        Needed for ``"brian2"``.
    structure : Structure, optional
        Needed for ``"brian2"`` (default: the learner's).

    Returns
    -------
    KernelForward or Brian2Forward
        An object whose ``train_step(batch, labels)`` trains one batch.
    """
    if name not in FORWARD_PASSES:
        raise ValueError(f"learning.forward: expected one of {list(FORWARD_PASSES)}, got {name!r}")
    if name == "kernel":
        return KernelForward(learner)
    if network is None:
        raise ValueError("learning.forward = 'brian2': a SpikingNetwork is needed to simulate the batches")
    return Brian2Forward(network, learner.structure if structure is None else structure, learner)
