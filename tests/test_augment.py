"""Tests of sdsnn_bio.learning.augment: random translations of input spikes."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.data import channel_coordinates, channel_index
from sdsnn_bio.learning.augment import augment_samples, batch_shifts, shift_spikes


def test_shift_moves_pixels_and_keeps_time_and_polarity():
    x = np.array([0, 5, 33, 10])
    y = np.array([0, 7, 20, 33])
    p = np.array([1, 0, 1, 0])
    steps = np.array([3, 4, 5, 6])
    channels, shifted_steps = shift_spikes(channel_index(x, y, p), steps, dx=2, dy=-1)
    sx, sy, sp = channel_coordinates(channels)
    # (0,0) leaves the sensor (y = -1), (33,20) leaves it (x = 35); the other two move.
    assert sx.tolist() == [7, 12] and sy.tolist() == [6, 32], "pixels move by (2, -1)"
    assert sp.tolist() == [0, 0], "polarity kept"
    assert shifted_steps.tolist() == [4, 6], "time steps kept, spikes off the sensor dropped"


def test_zero_shift_is_identity_and_inverse_shift_restores_inner_spikes(rng):
    x, y, p = rng.integers(3, 31, 50), rng.integers(3, 31, 50), rng.integers(0, 2, 50)
    channels, steps = channel_index(x, y, p), rng.integers(0, 300, 50)
    same = shift_spikes(channels, steps, 0, 0)
    assert np.array_equal(same[0], channels) and np.array_equal(same[1], steps), "no shift"
    there = shift_spikes(channels, steps, 3, -2)
    back = shift_spikes(*there, -3, 2)
    assert np.array_equal(back[0], channels) and np.array_equal(back[1], steps), "shift then unshift"


def test_batch_shifts_are_a_pure_function_of_the_batch_position():
    a = batch_shifts(0, 2, 5, 32, 2)
    assert a.shape == (32, 2) and a.min() >= -2 and a.max() <= 2, "shape and range"
    assert np.array_equal(a, batch_shifts(0, 2, 5, 32, 2)), "same position, same shifts (resume)"
    assert not np.array_equal(a, batch_shifts(0, 2, 6, 32, 2)), "another batch, other shifts"
    assert not np.array_equal(a, batch_shifts(1, 2, 5, 32, 2)), "another seed, other shifts"
    assert set(np.unique(batch_shifts(0, 0, 0, 2000, 1))) == {-1, 0, 1}, "every shift is drawn"


def test_augment_samples_shifts_each_sample_by_its_row():
    samples = [(np.array([channel_index(10, 10, 0)]), np.array([1])),
               (np.array([channel_index(20, 5, 1)]), np.array([2]))]
    out = augment_samples(samples, np.array([[1, 0], [0, -5]]))
    assert channel_coordinates(out[0][0][0]) == (11, 10, 0), "first sample shifted right"
    assert channel_coordinates(out[1][0][0]) == (20, 0, 1), "second sample shifted up"


@pytest.mark.parametrize("bad, message", [
    (lambda: shift_spikes([0], [0], 1.5, 0), "dx: expected an integer"),
    (lambda: shift_spikes([0, 1], [0], 1, 0), "one equal length"),
    (lambda: shift_spikes([5000], [0], 1, 0), "expected channels in"),
    (lambda: batch_shifts(0, 0, 0, 4, -1), "learning.augment_max_shift"),
    (lambda: augment_samples([([0], [0])], np.zeros((2, 2), int)), "shifts: expected shape"),
])
def test_bad_input_names_the_parameter(bad, message):
    with pytest.raises(ValueError, match=message):
        bad()
