"""The validation split: stratified by class, carved from the training split, fixed by the seed."""

from __future__ import annotations

import numpy as np
import pytest

from sdsnn_bio.data import validation_split


def _labels(counts) -> np.ndarray:
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def test_split_is_stratified_disjoint_and_complete():
    labels = np.random.default_rng(0).permutation(_labels([50, 40, 30, 20]))
    train, validation = validation_split(labels, 0.1, seed=5)
    assert np.intersect1d(train, validation).size == 0, "no recording is in both parts"
    np.testing.assert_array_equal(np.union1d(train, validation), np.arange(labels.size),
                                  err_msg="every recording is in one part")
    per_class = np.bincount(labels[validation], minlength=4)
    np.testing.assert_array_equal(per_class, [5, 4, 3, 2], err_msg="10% of every class, rounded")
    assert np.all(np.diff(train) > 0) and np.all(np.diff(validation) > 0), "sorted indices"


def test_split_rounds_half_up_and_keeps_one_recording_of_every_class_in_training():
    labels = _labels([5, 3, 1])
    train, validation = validation_split(labels, 0.5, seed=0)
    per_class = np.bincount(labels[validation], minlength=3)
    np.testing.assert_array_equal(per_class, [3, 2, 0], err_msg="2.5 -> 3, 1.5 -> 2, a single one stays")
    assert set(labels[train]) == {0, 1, 2}, "every class is still trained on"


def test_split_is_fixed_by_the_seed():
    labels = _labels([30] * 10)
    first = validation_split(labels, 0.2, seed=3)
    again = validation_split(labels, 0.2, seed=3)
    other = validation_split(labels, 0.2, seed=4)
    np.testing.assert_array_equal(first[1], again[1], err_msg="same seed, same split")
    assert not np.array_equal(first[1], other[1]), "another seed draws another split"


def test_zero_fraction_keeps_every_recording_for_training():
    train, validation = validation_split(_labels([3, 3]), 0.0, seed=0)
    np.testing.assert_array_equal(train, np.arange(6))
    assert validation.size == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, True, "0.1"])
def test_invalid_fraction_names_the_key(fraction):
    with pytest.raises(ValueError, match=r"data\.validation_fraction: expected a number in \[0, 1\)"):
        validation_split(_labels([3, 3]), fraction, seed=0)


def test_fraction_too_small_for_any_recording_is_an_error():
    with pytest.raises(ValueError, match="gives no validation recording"):
        validation_split(_labels([4, 4]), 0.01, seed=0)


def test_config_validates_the_new_keys():
    from sdsnn_bio.config import ConfigError, ExperimentConfig

    with pytest.raises(ConfigError, match="data.validation_fraction"):
        ExperimentConfig.from_dict({"data": {"validation_fraction": 1.0}})
    with pytest.raises(ConfigError, match="learning.augment_max_shift"):
        ExperimentConfig.from_dict({"learning": {"augment_max_shift": -1}})
    config = ExperimentConfig.from_dict({})
    assert config.data.validation_fraction == 0.0 and config.learning.augment_max_shift == 0, (
        "defaults keep the old behaviour"
    )
