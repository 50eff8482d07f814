"""Tests of sdsnn_bio.learning.augment: random translations and distortions of input spikes."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.data import channel_coordinates, channel_index
from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.learning.augment import (
    Distortion, augment_batch, augment_samples, batch_shifts, batch_sources, shift_intensities, shift_spikes,
    warp_intensities, warp_source, warp_spikes,
)


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


# ------------------------------------------------------------------------------------ distortions
def random_spikes(rng, n=300):
    """Unique (channel, step) spikes anywhere on the 34 x 34 x 2 sensor."""
    flat = rng.choice(34 * 34 * 2 * 30, size=n, replace=False)
    return flat // 30, flat % 30


def as_set(channels, steps):
    return set(zip(np.asarray(channels).tolist(), np.asarray(steps).tolist()))


def test_identity_warp_keeps_every_spike(rng):
    channels, steps = random_spikes(rng)
    source = warp_source(0.0, 1.0)
    assert np.array_equal(source, np.arange(34 * 34)), "no rotation, no scaling: every pixel its own source"
    out = warp_spikes(channels, steps, source)
    assert np.array_equal(out[0], channels) and np.array_equal(out[1], steps)


def test_a_pure_displacement_warp_is_the_shift(rng):
    channels, steps = random_spikes(rng)
    displacement = np.stack([np.full((34, 34), -3.0), np.full((34, 34), 2.0)])  # source = d - (3, -2)
    warped = warp_spikes(channels, steps, warp_source(0.0, 1.0, displacement))
    assert as_set(*warped) == as_set(*shift_spikes(channels, steps, 3, -2))


def test_quarter_turn_maps_pixels_onto_the_grid():
    # R(90 degrees) in image coordinates (y down: clockwise on screen) about the centre (16.5, 16.5)
    # takes the source pixel (x, y) to (33 - y, x).
    x, y, p = np.array([0, 5, 30]), np.array([33, 7, 2]), np.array([0, 1, 1])
    channels, steps = warp_spikes(channel_index(x, y, p), np.array([4, 5, 6]), warp_source(90.0, 1.0))
    order = np.argsort(steps)
    wx, wy, wp = channel_coordinates(channels[order])
    assert wx.tolist() == (33 - y).tolist() and wy.tolist() == x.tolist() and wp.tolist() == p.tolist()
    assert steps[order].tolist() == [4, 5, 6], "timing kept"


def test_enlarging_fills_without_holes_and_shrinking_never_duplicates(rng):
    # A filled 10 x 10 square of one polarity at one step, at the centre.
    xs, ys = np.meshgrid(np.arange(12, 22), np.arange(12, 22))
    channels = channel_index(xs.ravel(), ys.ravel(), 0)
    steps = np.zeros_like(channels)
    big = warp_spikes(channels, steps, warp_source(0.0, 1.5))
    bx, by, _ = channel_coordinates(big[0])
    assert len(set(big[0].tolist())) == big[0].size, "one spike per channel and step"
    assert big[0].size == (bx.max() - bx.min() + 1) * (by.max() - by.min() + 1), "a filled square: no holes"
    assert 14 <= bx.max() - bx.min() + 1 <= 16, "about 1.5 x 10 pixels wide"
    small = warp_spikes(channels, steps, warp_source(0.0, 0.5))
    assert len(as_set(*small)) == small[0].size == 25, "a 5 x 5 square, each channel once"
    spikes = random_spikes(rng, 2000)
    for scale in (0.7, 1.3):
        for rotation in (-20.0, 33.0):
            out = warp_spikes(*spikes, warp_source(rotation, scale))
            assert len(as_set(*out)) == out[0].size, "warps never put two spikes in one channel at one step"


def test_warp_intensities_agrees_with_warp_spikes(rng):
    image = rng.random(34 * 34 * 2)
    source = warp_source(17.0, 1.2)
    warped = warp_intensities(image, source)
    on = np.flatnonzero(image > 0.5)
    channels, _ = warp_spikes(on, np.zeros_like(on), source)
    assert set(channels.tolist()) == set(np.flatnonzero(warped > 0.5).tolist())
    assert np.all(warped.reshape(2, -1)[:, source < 0] == 0), "uncovered pixels are 0"
    displacement = np.stack([np.full((34, 34), 1.0), np.zeros((34, 34))])
    assert np.array_equal(warp_intensities(image, warp_source(0.0, 1.0, displacement)),
                          shift_intensities(image, -1, 0)), "a displacement of +1 in x is a shift by -1"


def test_batch_sources_are_a_pure_function_of_the_batch_position_and_the_ranges():
    distortion = Distortion(max_rotation=15.0, max_scale=0.1, elastic_alpha=20.0, elastic_sigma=4.0)
    a = batch_sources(0, 2, 5, 8, distortion)
    assert a.shape == (8, 34 * 34) and a.min() >= -1 and a.max() < 34 * 34
    assert np.array_equal(a, batch_sources(0, 2, 5, 8, distortion)), "same position, same warps (resume)"
    assert not np.array_equal(a, batch_sources(0, 2, 6, 8, distortion)), "another batch, other warps"
    assert not np.array_equal(a, batch_sources(1, 2, 5, 8, distortion)), "another seed, other warps"
    assert len({row.tobytes() for row in a}) == 8, "every sample its own warp"
    identity = batch_sources(0, 2, 5, 3, Distortion())
    assert np.all(identity == np.arange(34 * 34)), "all ranges 0: the identity"
    moved = np.mean(a != np.arange(34 * 34), axis=1)
    assert np.all((moved > 0.05) & (moved < 1.0)), "a warp moves some pixels, not a permutation of all"


def test_augment_samples_shifts_then_warps_spikes_and_intensities(rng):
    spikes = random_spikes(rng)
    image = rng.random(34 * 34 * 2)
    sources = np.stack([warp_source(12.0, 0.9), warp_source(-30.0, 1.1)])
    out = augment_samples([spikes, image], [[1, -2], [0, 3]], sources=sources)
    assert as_set(*out[0]) == as_set(*warp_spikes(*shift_spikes(*spikes, 1, -2), sources[0]))
    assert np.array_equal(out[1], warp_intensities(shift_intensities(image, 0, 3), sources[1]))


def test_distortion_keys_are_validated_and_default_off():
    config = ExperimentConfig.from_dict({})
    assert not config.distortion().enabled, "no distortion unless asked"
    on = ExperimentConfig.from_dict({"learning": {"augment_max_rotation": 10, "augment_elastic_alpha": 30.0}})
    assert on.distortion() == Distortion(10.0, 0.0, 30.0, 4.0) and on.distortion().enabled
    for key, value in [("augment_max_rotation", -1.0), ("augment_max_rotation", 180.0),
                       ("augment_max_scale", 1.0), ("augment_elastic_alpha", -0.5),
                       ("augment_elastic_sigma", 0.0), ("augment_max_rotation", "10"),
                       ("augment_max_scale", float("nan")), ("augment_elastic_alpha", True)]:
        with pytest.raises(ConfigError, match=f"learning.{key}: expected"):
            ExperimentConfig.from_dict({"learning": {key: value}})


@pytest.mark.parametrize("bad, message", [
    (lambda: warp_spikes([0], [0], np.arange(10)), r"warp_spikes: expected an integer source map of shape \(1156,\)"),
    (lambda: warp_spikes([0], [0], np.full(34 * 34, 2000)), "warp_spikes: expected source pixels in"),
    (lambda: warp_spikes([5000], [0], np.arange(34 * 34)), "warp_spikes: expected channels in"),
    (lambda: warp_intensities(np.zeros(3), np.arange(34 * 34)), "warp_intensities: expected 2312 intensities"),
    (lambda: warp_source(0.0, 0.0), "warp_source: expected a scale > 0"),
    (lambda: warp_source(0.0, 1.0, np.zeros((2, 3, 3))), "warp_source: expected a displacement of shape"),
    (lambda: augment_samples([([0], [0])], np.zeros((1, 2), int), sources=np.zeros((2, 1156), int)),
     "sources: expected shape"),
    (lambda: batch_sources(0, 0, 0, 1, {"max_rotation": 5}), "expected a Distortion"),
    (lambda: Distortion(max_rotation="10"), r"learning.augment_max_rotation: expected a number of degrees"),
    (lambda: Distortion(elastic_sigma=None), r"learning.augment_elastic_sigma: expected a number of pixels"),
])
def test_bad_warp_input_names_the_parameter(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        bad()


def test_augment_batch_is_the_shift_then_the_warp_drawn_from_the_batch_position(rng):
    samples = [random_spikes(rng) for _ in range(3)]
    distortion = Distortion(max_rotation=12.0)
    out = augment_batch(samples, 4, 1, 7, 2, distortion)
    expected = augment_samples(samples, batch_shifts(4, 1, 7, 3, 2), sources=batch_sources(4, 1, 7, 3, distortion))
    assert all(as_set(*a) == as_set(*b) for a, b in zip(out, expected))
    shifted = augment_batch(samples, 4, 1, 7, 2, Distortion())
    assert all(as_set(*a) == as_set(*b) for a, b in zip(shifted, augment_samples(samples, batch_shifts(4, 1, 7, 3, 2))))
    same = augment_batch(samples, 4, 1, 7, 0, Distortion())
    assert all(a is b for a, b in zip(same, samples)), "no augmentation: the samples as they are"
