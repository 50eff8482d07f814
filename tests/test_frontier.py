"""benchmarks/frontier.py: the frontier table and figure over labelled sweep folders."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "frontier.py"


def _load():
    spec = importlib.util.spec_from_file_location("frontier", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point(folder: Path, seed: int, validation: float, test: float, removed: float, neurons: float):
    folder.mkdir(parents=True)
    result = {"seed": seed, "final_test_accuracy": test, "final_validation_accuracy": validation,
              "structure": {"synapses_removed_fraction": removed, "hidden_neurons_removed_fraction": neurons},
              "test": {"energy": {"sops_per_sample": 1000.0 + seed}}}
    (folder / "results.json").write_text(json.dumps({"models": {"sdsnn": result, "dense": result}}))


def test_table_is_mean_and_sample_sd_over_the_seeds_of_each_label(tmp_path, capsys):
    """Each label's row holds the mean and sample sd of its seeds."""
    frontier = _load()
    _point(tmp_path / "a" / "points" / "s0", 0, 0.90, 0.91, 0.60, 0.50)
    _point(tmp_path / "a" / "points" / "s1", 1, 0.92, 0.93, 0.62, 0.52)
    _point(tmp_path / "b", 0, 0.95, 0.96, 0.0, 0.0)
    figure = tmp_path / "frontier.png"
    assert frontier.main(["--points", "K=9, p=0.6", str(tmp_path / "a"), "--points", "dense", str(tmp_path / "b"),
                          "--model", "dense", "dense", "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    # mean 91.00, sample sd of (90, 92) = 1.41; the label may hold "=" and ","
    assert "| K=9, p=0.6 | 0,1 | 91.00 ± 1.41 | 92.00 ± 1.41 | 61.00 ± 1.41 | 51.00 ± 1.41 |" in out
    assert "| dense | 0 | 95.00 ± 0.00 | 96.00 ± 0.00 | 0.00 ± 0.00 | 0.00 ± 0.00 |" in out
    assert "seed 1: 92.00 / 93.00" in out
    assert figure.stat().st_size > 0


def test_folder_without_results_and_missing_model_are_named(tmp_path):
    """Bad folders and models are refused with their names."""
    frontier = _load()
    with pytest.raises(SystemExit, match="no results.json"):
        frontier.main(["--points", "x", str(tmp_path)])
    _point(tmp_path / "run", 0, 0.9, 0.9, 0.5, 0.5)
    with pytest.raises(SystemExit, match="no model 'baseline'"):
        frontier.main(["--points", "x", str(tmp_path / "run"), "--model", "x", "baseline"])
