"""Tests of sdsnn_bio.baselines: per-saccade count features, selection on validation, one test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdsnn_bio.baselines import main, run_baselines, saccade_count_features, standardise
from sdsnn_bio.data import EVENT_DTYPE, DataError, encode_nmnist


def events(x, y, t, p) -> np.ndarray:
    out = np.zeros(len(x), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["t"], out["p"] = x, y, t, p
    return out


def test_saccade_count_features_literal():
    e = events([1, 1, 0, 5, 33], [2, 2, 0, 6, 33], [50_000, 99_999, 250_000, 400_000, 100_000], [1, 1, 0, 0, 1])
    features = saccade_count_features(e)
    assert features.shape == (3 * 2 * 34 * 34,) and features.dtype == np.float32
    expected = np.zeros(6936)
    expected[((0 * 2 + 1) * 34 + 2) * 34 + 1] = 2      # two ON events of saccade 0 at (1, 2)
    expected[((2 * 2 + 0) * 34 + 0) * 34 + 0] = 1      # OFF, saccade 2
    expected[((2 * 2 + 0) * 34 + 6) * 34 + 5] = 1      # t = 400 ms counts in the last saccade
    expected[((1 * 2 + 1) * 34 + 33) * 34 + 33] = 1    # t = 100 ms starts saccade 1
    np.testing.assert_array_equal(features, expected)


def test_standardise_uses_training_statistics_only():
    train = np.array([[0.0, 3.0], [np.e - 1, 3.0]], dtype=np.float32)
    other = np.array([[np.e ** 2 - 1, 0.0]], dtype=np.float32)
    scaled_train, scaled_other = standardise(train, other)
    np.testing.assert_allclose(scaled_train, [[-1, 0], [1, 0]], atol=1e-6)
    np.testing.assert_allclose(scaled_other, [[3, -np.log(4)]], atol=1e-5)  # constant feature: scale 1


def write_split(root, name, n_per_class, rng):
    """Recordings whose class sets the row of a horizontal stroke (noisy, so not trivially separable)."""
    for label in range(10):
        folder = root / name / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            n = 120
            row = np.clip(3 * label + 2 + rng.integers(-2, 3, n), 0, 33)
            x = rng.integers(4, 30, n)
            t = np.sort(rng.integers(0, 300_000, n))
            e = events(x, row, t, rng.integers(0, 2, n))
            (folder / f"{k:05d}.bin").write_bytes(encode_nmnist(e))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    write_split(root, "Train", 6, rng)
    write_split(root, "Validation", 3, rng)
    write_split(root, "Test", 3, rng)
    return root


def test_selection_on_validation_and_one_test(folder):
    report = run_baselines(folder, logistic_grid=(0.01, 1.0), mlp_grid=(1e-3,), mlp_epochs=40, mlp_hidden=32)
    assert report["samples"] == {"train": 60, "validation": 30, "test": 30}
    assert report["validation"].startswith("the folder's Validation/ split")
    logistic = report["models"]["logistic"]
    scores = logistic["validation_accuracy"]
    assert set(scores) == {"0.01", "1.0"}
    assert scores[str(logistic["chosen_C"])] == max(scores.values())  # chosen on validation
    assert logistic["chosen_at_grid_edge"] is True  # a two-value grid: any choice is at an end
    mlp = report["models"]["mlp"]
    curve = mlp["validation_accuracy_by_epoch"]["0.001"]
    assert len(curve) == 40 and mlp["validation_accuracy_chosen"] == max(curve)
    assert curve[mlp["chosen_epoch"] - 1] == max(curve)
    assert mlp["chosen_at_grid_edge"] is False  # one alpha: no grid to widen
    assert mlp["chosen_at_last_epoch"] == (mlp["chosen_epoch"] == 40)
    for record in (logistic, mlp):
        assert record["test_accuracy"] > 0.8  # the stroke row is learnable (chance: 0.1)


def test_carved_validation_when_the_folder_has_none(folder):
    import shutil

    shutil.rmtree(folder / "Validation")
    with pytest.raises(DataError, match="no Validation/ split; give --validation-fraction"):
        run_baselines(folder, models=("logistic",))
    report = run_baselines(folder, validation_fraction=0.5, models=("logistic",), logistic_grid=(0.1,))
    assert report["samples"] == {"train": 30, "validation": 30, "test": 30}
    assert "0.5 of Train/, stratified, seed 0" in report["validation"]


def test_command_line_writes_the_report(folder, tmp_path, capsys):
    out = tmp_path / "baseline.json"
    argv = [str(folder), "--models", "logistic", "--logistic-c", "0.1", "--output", str(out), "--no-progress"]
    assert main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved == json.loads(capsys.readouterr().out)
    assert saved["command"].startswith("python -m sdsnn_bio.baselines ") and "--logistic-c 0.1" in saved["command"]
    assert list(saved["models"]) == ["logistic"]
    assert main([str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
