"""The run-folder format: names, compact outputs, checkpoint schema, and clear errors on damage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio import runfolder
from sdsnn_bio.runfolder import RunFolderError
from sdsnn_bio.structure import Population, Projection, SpineState, Structure

PACKAGE = Path(__file__).resolve().parents[1] / "sdsnn_bio"


def _structure(rng: np.random.Generator) -> Structure:
    weight = rng.normal(0.0, 0.3, (40, 12))
    spine = SpineState.from_weights(weight)
    spine.upper_streak[:] = rng.integers(0, 300, weight.shape)
    spine.upper_excess[:] = rng.random(weight.shape)
    exists = rng.random(weight.shape) < 0.6
    projections = (Projection("input_to_hidden_1", "input", "hidden_1", weight, exists, spine),
                   Projection("hidden_1_to_output", "hidden_1", "output", rng.normal(size=(12, 3)),
                              np.ones((12, 3), bool), SpineState.from_weights(rng.normal(size=(12, 3)))))
    populations = (Population("input", 40), Population("hidden_1", 12, rng.random(12) < 0.8),
                   Population("output", 3))
    return Structure(populations, projections)


def test_structure_is_stored_as_float32_and_compressed_and_loads_as_float64(tmp_path):
    structure = _structure(np.random.default_rng(0))
    path = runfolder.save_structure(tmp_path / runfolder.STRUCTURE, structure)
    structure.save(tmp_path / "exact.npz")
    assert path.stat().st_size < 0.5 * (tmp_path / "exact.npz").stat().st_size, "float32 + compression"
    loaded = runfolder.load_structure(path)
    for mine, theirs in zip(structure.projections, loaded.projections):
        assert theirs.weight.dtype == np.float64 and theirs.spine.upper_excess.dtype == np.float64
        np.testing.assert_array_equal(theirs.weight, mine.weight.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(theirs.exists, mine.exists)
        np.testing.assert_array_equal(theirs.spine.upper, mine.spine.upper.astype(np.float32).astype(np.float64))
        assert theirs.spine.upper_streak.dtype == np.int32 and not theirs.spine.upper_streak.any(), (
            "development counters are not kept (the checkpoint has them): they start fresh")
        np.testing.assert_array_equal(theirs.spine.previous_abs_weight, np.abs(theirs.weight))
    for mine, theirs in zip(structure.populations, loaded.populations):
        np.testing.assert_array_equal(theirs.alive, mine.alive)


def test_checkpoint_is_exact_and_carries_its_format(tmp_path):
    structure = _structure(np.random.default_rng(1))
    optimizer = {"adam/step_count": np.array(7), "adam/m/x": np.random.default_rng(2).random(5)}
    path = runfolder.write_checkpoint(tmp_path / runfolder.CHECKPOINT, structure, optimizer, {"epoch": 3})
    checkpoint = runfolder.read_checkpoint(path)
    assert checkpoint.meta == {"epoch": 3, "format": runfolder.CHECKPOINT_FORMAT}
    np.testing.assert_array_equal(checkpoint.arrays["adam/m/x"], optimizer["adam/m/x"])
    restored = Structure.from_arrays(checkpoint.arrays)
    np.testing.assert_array_equal(restored.projections[0].weight, structure.projections[0].weight,
                                  err_msg="bit-exact float64")


def test_a_checkpoint_of_another_format_is_refused_with_its_number(tmp_path):
    path = tmp_path / runfolder.CHECKPOINT
    np.savez(path, meta=np.array(json.dumps({"epoch": 1})))
    with pytest.raises(RunFolderError, match=r"checkpoint of format None, this version reads format \d"):
        runfolder.read_checkpoint(path)


def _damaged(tmp_path: Path, how: str) -> Path:
    structure = _structure(np.random.default_rng(3))
    path = runfolder.write_checkpoint(tmp_path / runfolder.CHECKPOINT, structure, {}, {"epoch": 1})
    content = bytearray(path.read_bytes())
    if how == "truncated":
        content = content[: len(content) // 2]
    elif how == "flipped":
        middle = len(content) // 2
        content[middle:middle + 64] = bytes(b ^ 0xFF for b in content[middle:middle + 64])
    elif how == "random":
        content = bytearray(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif how == "pickle":
        np.save(path.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
        content = bytearray(path.with_suffix(".npy").read_bytes())
    elif how == "empty":
        content = bytearray()
    path.write_bytes(bytes(content))
    return path


@pytest.mark.parametrize("how", ["truncated", "flipped", "random", "pickle", "empty"])
@pytest.mark.parametrize("reader", ["read_checkpoint", "load_structure", "load_rasters"])
def test_damaged_files_give_a_clear_error_naming_the_file_and_never_suggest_pickle(tmp_path, how, reader):
    path = _damaged(tmp_path, how)
    with pytest.raises(RunFolderError) as caught:
        getattr(runfolder, reader)(path)
    message = str(caught.value)
    assert str(path) in message, "the message names the file"
    assert re.search(r"truncated or corrupt|another format|format", message)
    assert "allow_pickle" not in message, "never suggest loading with pickle"


def test_rasters_are_stored_in_small_integers(tmp_path):
    arrays = {"n_steps": np.array(300), "sizes/hidden_1": np.array(800),
              "before/hidden_1/sample": np.repeat(np.arange(3), 1000).astype(np.int32),
              "before/hidden_1/step": np.tile(np.arange(300), 10).astype(np.int32),
              "before/hidden_1/neuron": np.arange(3000).astype(np.int32) % 800}
    path = runfolder.save_rasters(tmp_path / runfolder.RASTERS, arrays)
    with np.load(path) as saved:
        assert saved["before/hidden_1/sample"].dtype == np.uint8
        assert saved["before/hidden_1/neuron"].dtype == np.uint16
    loaded = runfolder.load_rasters(path)
    for key, values in arrays.items():
        np.testing.assert_array_equal(loaded[key], values)


def test_orphaned_temporary_files_are_removed_and_nothing_else(tmp_path):
    orphans = [tmp_path / f".{runfolder.CHECKPOINT}.abc123.tmp", tmp_path / f".{runfolder.RESULTS}.x.tmp"]
    keep = [tmp_path / "notes.tmp", tmp_path / runfolder.CHECKPOINT, tmp_path / ".other.npz.q.tmp"]
    for path in orphans + keep:
        path.write_bytes(b"x")
    removed = runfolder.remove_orphaned_temporaries(tmp_path)
    assert sorted(removed) == sorted(orphans)
    assert all(path.exists() for path in keep), "only atomic_open's leftovers of run-folder files"


def test_no_run_folder_file_name_is_spelled_outside_the_format_module():
    names = [runfolder.RESULTS, runfolder.MODEL_RESULT, runfolder.CHECKPOINT, runfolder.STRUCTURE,
             runfolder.RASTERS, runfolder.POINT, runfolder.SWEEP_TABLE, runfolder.SWEEP_JSON,
             runfolder.SWEEP_SUMMARY, runfolder.SWEEP_FIGURE]
    for module in ("experiment.py", "plotting.py", "sweep.py", "cli.py"):
        code = "\n".join(line for line in (PACKAGE / module).read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("#"))
        literals = re.findall(r"(?<![\w])[\"']([\w.]+)[\"']", code)
        spelled = sorted(set(literals) & set(names))
        assert not spelled, f"{module} spells run-folder names {spelled}; take them from sdsnn_bio.runfolder"


def test_atomic_open_never_changes_the_umask(tmp_path, monkeypatch):
    import os

    from sdsnn_bio.files import atomic_open

    umask = os.umask(0o022)
    os.umask(umask)

    def forbidden(mask):
        raise AssertionError("os.umask was called: another thread could create world-writable files")

    monkeypatch.setattr(os, "umask", forbidden)
    with atomic_open(tmp_path / "a.json", "w", encoding="utf-8") as handle:
        handle.write("{}")
    monkeypatch.undo()
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask, "a normal new file's mode"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
