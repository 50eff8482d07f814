"""Work arrays of the training step: page-aligned, reused across steps, results unchanged."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from brian2 import ms

from sdsnn_bio.learning.fused import numba_available
from sdsnn_bio.learning.learner import InputBatch, Learner, LearningParameters
from sdsnn_bio.learning.workspace import PAGE_BYTES, Workspace, aligned_empty
from sdsnn_bio.model import NetworkParameters, NeuronParameters, initial_structure
from sdsnn_bio.structure import Structure

needs_numba = pytest.mark.skipif(not numba_available(), reason="Numba is not installed")
N_INPUT, N_STEPS = 40, 30


@pytest.mark.parametrize("shape, dtype", [((7,), np.float64), ((3, 5, 11), np.float32), ((30, 4, 25), bool),
                                          ((2312, 512), np.float64)])
def test_aligned_empty_starts_on_a_page_with_the_shape_and_type_asked(shape, dtype):
    array = aligned_empty(shape, dtype)
    assert array.ctypes.data % PAGE_BYTES == 0, "first element on a 4096-byte boundary"
    assert array.shape == shape and array.dtype == np.dtype(dtype) and array.flags.c_contiguous
    array[...] = 1  # writable, and exactly its own size
    assert array.size == int(np.prod(shape))


def test_aligned_empty_rejects_an_alignment_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="alignment: expected a power of two >= 8 bytes, got 48"):
        aligned_empty((3,), np.float64, alignment=48)
    with pytest.raises(ValueError, match="got 4"):
        aligned_empty((3,), np.float64, alignment=4)


def test_workspace_reuses_an_array_while_its_shape_and_type_stay():
    workspace = Workspace()
    first = workspace.empty(("potential", "hidden_1"), (30, 4, 25), np.float64)
    first[...] = 3.0
    again = workspace.empty(("potential", "hidden_1"), (30, 4, 25), np.float64)
    assert again is first and again[0, 0, 0] == 3.0, "the same memory, contents left as they were"
    zeroed = workspace.zeros(("potential", "hidden_1"), (30, 4, 25), np.float64)
    assert zeroed is first and not zeroed.any()
    smaller = workspace.empty(("potential", "hidden_1"), (30, 3, 25), np.float64)
    assert smaller is not first and smaller.shape == (30, 3, 25) and smaller.ctypes.data % PAGE_BYTES == 0
    other_type = workspace.empty(("potential", "hidden_1"), (30, 3, 25), np.float32)
    assert other_type.dtype == np.float32 and workspace.names() == [("potential", "hidden_1")]
    assert workspace.nbytes() == other_type.nbytes
    assert pickle.loads(pickle.dumps(workspace)).names() == [], "a pickled workspace carries no arrays"
    workspace.clear()
    assert workspace.names() == [] and workspace.nbytes() == 0


def _case(rng, refractory):
    params = NetworkParameters(
        n_input=N_INPUT, hidden_sizes=(25, 15), n_output=4, n_steps=N_STEPS, weight_init_gain=7.0,
        hidden=NeuronParameters(refractory=refractory), output=NeuronParameters(refractory=refractory),
    )
    return params, initial_structure(params, rng)


def _samples(rng, n_samples):
    samples = []
    for _ in range(n_samples):
        key = np.unique(rng.integers(0, N_STEPS, 150) * N_INPUT + rng.integers(0, N_INPUT, 150))
        samples.append((key % N_INPUT, key // N_INPUT))
    return samples


@needs_numba
@pytest.mark.parametrize("refractory", [0 * ms, 2 * ms], ids=["no_refractory", "refractory"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_train_step_with_reused_work_arrays_trains_bit_for_bit_as_with_fresh_ones(rng, refractory, dtype):
    """Steps of changing batch sizes (work arrays replaced, then reused with stale contents): the
    weights equal, bit for bit, those of the same steps run from fresh arrays (simulate +
    gradients + Adam), and the work arrays are page-aligned and reused, not reallocated."""
    params, structure = _case(rng, refractory)
    copy = Structure(tuple(structure.populations), tuple(p.copy() for p in structure.projections))
    learning = LearningParameters(dtype=dtype)
    reused = Learner(structure, params.layer_dynamics(), learning, n_threads=2, backend="numba")
    fresh = Learner(copy, params.layer_dynamics(), learning, n_threads=2, backend="numba")
    addresses = None
    for n_samples in (5, 3, 5, 5):
        batch = InputBatch.from_samples(_samples(rng, n_samples), N_STEPS, N_INPUT)
        labels = rng.integers(0, 4, n_samples)
        step = reused.train_step(batch, labels)
        forward = fresh.simulate(batch)
        value, grads = fresh.gradients(batch, forward, labels)
        fresh.optimizer.update({p.name: p.weight for p in copy.projections}, grads, fresh.workers)
        assert step.loss == value
        for projection in structure.projections:
            assert np.array_equal(projection.weight, copy.projection(projection.name).weight), projection.name
        arrays = reused.workspace._arrays
        assert ("potential", "hidden_1") in arrays and ("grad_weight", "input_to_hidden_1") in arrays
        assert all(array.ctypes.data % PAGE_BYTES == 0 for array in arrays.values()), "page-aligned"
        now = {name: array.ctypes.data for name, array in arrays.items()}
        if addresses is not None and n_samples == 5 and previous == 5:
            assert now == addresses, "same shapes: the same arrays, no new memory"
        addresses, previous = now, n_samples
    assert fresh.workspace.names() == [], "simulate and gradients never use the workspace"
