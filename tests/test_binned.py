"""Tests of sdsnn_bio.data.binned: compact storage of binned spikes, equal to events_to_spikes."""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import ms, us

from sdsnn_bio.data import BinnedSamples, bin_dataset, events_to_spikes, read_nmnist_file
from sdsnn_bio.data.format import EVENT_DTYPE

from conftest import SAMPLE_NMNIST


class ListDataset(list):
    sensor_size = (34, 34, 2)


def recordings() -> ListDataset:
    """The real sample and slices / time-shifted copies of it (different spike counts per step)."""
    sample = read_nmnist_file(SAMPLE_NMNIST)
    items = ListDataset()
    for k in range(6):
        part = sample[k * 300: k * 300 + 1500 + 200 * k].copy()
        part["t"] = part["t"] + 7000 * k
        items.append((part, k % 3))
    items.append((np.zeros(0, dtype=EVENT_DTYPE), 2))
    items.append((sample, 4))
    return items


@pytest.mark.parametrize("dt, n_steps", [(1 * ms, 300), (5 * ms, 20), (250 * us, 1300)])
def test_bin_dataset_equals_events_to_spikes_exactly(dt, n_steps):
    data = recordings()
    samples, labels = bin_dataset(data, dt, n_steps)
    assert labels.tolist() == [label for _, label in data] and labels.dtype == np.int64
    assert len(samples) == len(data)
    for (events, _), (channels, steps) in zip(data, samples):
        expected_channels, expected_steps = events_to_spikes(events, dt, n_steps)
        assert channels.dtype == np.int64 and steps.dtype == np.int64  # what the consumers had before
        np.testing.assert_array_equal(channels, expected_channels)  # same values, same order
        np.testing.assert_array_equal(steps, expected_steps)
    assert samples.spike_counts().tolist() == [len(events_to_spikes(e, dt, n_steps)[0]) for e, _ in data]


def test_storage_is_compact():
    data = recordings()
    samples, _ = bin_dataset(data, 1 * ms, 300)
    as_lists = [events_to_spikes(e, 1 * ms, 300) for e, _ in data]
    int64_bytes = sum(c.nbytes + s.nbytes for c, s in as_lists)
    n_spikes = int(samples.spike_counts().sum())
    assert samples._channels[0].dtype == np.uint16 and samples._step_counts.dtype == np.uint8
    assert samples.nbytes == 2 * n_spikes + len(data) * 300  # 2 bytes per spike + 1 per step
    assert samples.nbytes < int64_bytes / 4


def test_indexing_slices_and_index_arrays_share_the_spikes():
    samples, _ = bin_dataset(recordings(), 1 * ms, 300)
    picked = samples[np.array([5, 0, 7])]
    assert isinstance(picked, BinnedSamples) and len(picked) == 3
    assert picked._channels[0] is samples._channels[5]  # no copy of the spike arrays
    for got, want in zip(picked, [samples[5], samples[0], samples[7]]):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    head = samples[:2]
    assert isinstance(head, BinnedSamples) and len(head) == 2
    np.testing.assert_array_equal(samples[-1][0], samples[7][0])
    with pytest.raises(IndexError, match="index 8 out of range for 8 recordings"):
        samples[8]
    with pytest.raises(TypeError, match="expected an integer, a slice or a 1-D integer array"):
        samples[np.ones(8, bool)]


def test_from_spikes_keeps_sorted_pairs_and_sorts_others_stably():
    pairs = [(np.array([4, 2, 9]), np.array([0, 0, 3])), (np.array([7, 1, 5, 3]), np.array([2, 0, 2, 1]))]
    stored = BinnedSamples.from_spikes(pairs, n_steps=4, n_channels=10)
    np.testing.assert_array_equal(stored[0][0], [4, 2, 9])
    np.testing.assert_array_equal(stored[0][1], [0, 0, 3])
    np.testing.assert_array_equal(stored[1][0], [1, 3, 7, 5])  # by step, channel order kept within a step
    np.testing.assert_array_equal(stored[1][1], [0, 1, 2, 2])
    assert BinnedSamples.from_spikes(stored, 4, 10) is stored
    with pytest.raises(ValueError, match=r"sample 0: expected integer steps in \[0, 4\), got .* range \[4, 4\]"):
        BinnedSamples.from_spikes([(np.array([1]), np.array([4]))], n_steps=4, n_channels=10)
    with pytest.raises(ValueError, match=r"sample 0: expected integer channels in \[0, 10\)"):
        BinnedSamples.from_spikes([(np.array([10]), np.array([0]))], n_steps=4, n_channels=10)
