"""Experiments end to end on tiny networks: results files, resume, divergence (Brian2 numpy target)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.experiment import (
    CHECKPOINT,
    RESULT,
    RESULTS,
    PreparedData,
    TrainingDiverged,
    run_experiment,
    train_model,
)
from sdsnn_bio.runfolder import RASTERS, STRUCTURE, load_rasters, load_structure, read_checkpoint
from sdsnn_bio.structure import Structure

N_STEPS = 20
N_INPUT = 2312


def _class_samples(rng: np.random.Generator, labels: np.ndarray) -> list:
    """Input spikes whose channels depend on the class: channel block ``c`` fires for class ``c``."""
    samples = []
    block = N_INPUT // 10
    for label in labels:
        channels = rng.choice(np.arange(label * block, (label + 1) * block), size=60, replace=False)
        noise = rng.choice(N_INPUT, size=20, replace=False)
        channels = np.concatenate([channels, noise])
        steps = rng.integers(0, N_STEPS, size=channels.size)
        pairs = np.unique(np.stack([channels, steps]), axis=1)
        samples.append((pairs[0].astype(np.int64), pairs[1].astype(np.int64)))
    return samples


@pytest.fixture
def tiny_data() -> PreparedData:
    rng = np.random.default_rng(7)
    train_labels = np.tile(np.arange(4), 6)
    test_labels = np.tile(np.arange(4), 3)
    return PreparedData(
        _class_samples(rng, train_labels), train_labels,
        _class_samples(rng, test_labels), test_labels,
        {"source": "test fixture: class-dependent random spikes"},
    )


def tiny_config(tmp_path, learning=None, **development) -> ExperimentConfig:
    raw = {
        "network": {"hidden_sizes": [12], "n_steps": N_STEPS, "dt": "5 ms", "weight_init_gain": 6.0},
        "learning": {"batch_size": 6, "epochs": 2, "learning_rate": 0.01, "threads": 1, **(learning or {})},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 6},
        "run": {"seed": 3, "output_dir": str(tmp_path / "out")},
    }
    if development:
        raw["development"] = development
    return ExperimentConfig.from_dict(raw)


def test_dense_run_writes_results_with_final_test_accuracy(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    results = run_experiment(config, data=tiny_data, progress=False)
    out = tmp_path / "out"
    saved = json.loads((out / RESULTS).read_text())
    assert saved["config"] == config.to_dict(), "the configuration is echoed into results.json"
    model = saved["models"]["dense"]
    assert model == results["models"]["dense"]
    assert len(model["history"]) == 2, "one history entry per epoch"
    accuracy = model["final_test_accuracy"]
    predictions = np.asarray(model["test"]["predictions"])
    assert accuracy == pytest.approx(np.mean(predictions == tiny_data.test_labels))
    assert model["test"]["kernel_brian2_agreement"] == 1.0, "kernel and Brian2 agree on every sample"
    assert (out / "dense" / STRUCTURE).is_file() and (out / "dense" / RASTERS).is_file()
    assert not (out / "dense" / CHECKPOINT).exists(), "the checkpoint is removed after success"
    assert model["structure"]["synapses_removed_fraction"] == 0.0, "dense training removes nothing"


def test_reported_numbers_are_the_final_epochs_even_when_an_earlier_epoch_was_better(
    tmp_path, tiny_data, monkeypatch
):
    from sdsnn_bio.experiment import kernel_accuracy
    from sdsnn_bio.learning.learner import Learner

    config = tiny_config(tmp_path, learning={"epochs": 3, "learning_rate": 0.1}).with_overrides(
        ["data.validation_fraction=0.34"])
    original = Learner.train_step
    calls = {"n": 0}

    def ruin_the_last_epoch(self, batch, labels, recorded_spikes=None):
        calls["n"] += 1
        result = original(self, batch, labels, recorded_spikes)
        if calls["n"] > 6:  # 16 training samples in batches of 6: epoch 3 starts at call 7
            self.structure.projection_into("output").weight[:] = 0.0  # every prediction is class 0
        return result

    monkeypatch.setattr(Learner, "train_step", ruin_the_last_epoch)
    result = train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                         keep_checkpoint=True)
    per_epoch = [entry["validation_accuracy"] for entry in result["history"]]
    assert max(per_epoch[:2]) > per_epoch[2] == 0.25, "an earlier epoch was better on validation"
    assert result["final_validation_accuracy"] == per_epoch[2], "the final epoch's, not the best"
    assert result["validation"]["accuracy_per_epoch"] == per_epoch
    assert result["validation"]["final_epoch_accuracy"] == per_epoch[2]
    assert result["final_test_accuracy"] == 0.25, "the test split sees the final (ruined) network"
    final = Structure.from_arrays(read_checkpoint(tmp_path / "model" / CHECKPOINT).arrays)
    learner = Learner(final, config.network_parameters().layer_dynamics(), config.learning_parameters())
    assert result["final_test_accuracy"] == kernel_accuracy(
        learner, tiny_data.test, tiny_data.test_labels, N_STEPS, N_INPUT, 6
    ), "the test number is the final structure's"


def test_validation_split_is_carved_from_training_and_reported_apart_from_test(tmp_path, tiny_data):
    config = tiny_config(tmp_path).with_overrides(["data.validation_fraction=0.25"])
    results = run_experiment(config, data=tiny_data, progress=False)
    model = results["models"]["dense"]
    validation = model["validation"]
    assert validation["n_samples"] == 8 and validation["n_train_samples"] == 16, (
        "2 of the 6 recordings of each of 4 classes are held out (1.5 rounds up)"
    )
    assert len(validation["accuracy_per_epoch"]) == 2, "validation after every epoch"
    assert all(0.0 <= a <= 1.0 for a in validation["accuracy_per_epoch"])
    assert [e["validation_accuracy"] for e in model["history"]] == validation["accuracy_per_epoch"]
    assert "final epoch" in validation["protocol"] and "once" in model["test"]["protocol"]
    assert model["test"]["n_samples"] == len(tiny_data.test), "the test split is untouched"
    assert "validation" in results["protocol"] and "test" in results["protocol"]
    plain = run_experiment(tiny_config(tmp_path / "plain"), data=tiny_data, progress=False)
    assert plain["models"]["dense"]["validation"] is None, "no split by default"
    assert plain["models"]["dense"]["history"][0]["validation_accuracy"] is None


def test_folder_validation_split_is_used_whole_and_never_trained_on(tmp_path, tiny_data):
    rng = np.random.default_rng(11)
    validation_labels = np.tile(np.arange(4), 2)
    data = PreparedData(tiny_data.train, tiny_data.train_labels, tiny_data.test, tiny_data.test_labels,
                        {"source": "fixture"}, validation=_class_samples(rng, validation_labels),
                        validation_labels=validation_labels)
    config = tiny_config(tmp_path).with_overrides(['data.validation_split="folder"'])
    model = run_experiment(config, data=data, progress=False)["models"]["dense"]
    validation = model["validation"]
    assert validation["source"] == "folder" and validation["n_samples"] == 8
    assert validation["n_train_samples"] == len(tiny_data.train), "every training recording is trained on"
    assert len(validation["accuracy_per_epoch"]) == 2


def test_folder_validation_split_refuses_a_fraction_too():
    with pytest.raises(ConfigError, match="data.validation_fraction: must be 0 with data.validation_split"):
        ExperimentConfig.from_dict({"data": {"validation_split": "folder", "validation_fraction": 0.1}})
    with pytest.raises(ConfigError, match="data.validation_split: expected one of"):
        ExperimentConfig.from_dict({"data": {"validation_split": "Validation"}})


def test_prepare_data_reads_the_folders_validation_split(tmp_path):
    from sdsnn_bio.data.format import write_nmnist_file
    from sdsnn_bio.data.format import EVENT_DTYPE
    from sdsnn_bio.experiment import prepare_data

    counts = {"Train": 3, "Validation": 2, "Test": 1}
    for split, n in counts.items():
        for label in range(2):
            for k in range(n):
                events = np.zeros(3, dtype=EVENT_DTYPE)
                events["x"], events["y"], events["p"] = [1, 2, 3], [4, 5, 6], [1, 0, 1]
                events["t"] = [1000, 2000, 3000 + k]
                folder = tmp_path / split / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                write_nmnist_file(folder / f"{k}.bin", events)
    config = ExperimentConfig.from_dict({
        "data": {"root": str(tmp_path), "validation_split": "folder"},
        "network": {"n_steps": 10, "dt": "1 ms"},
    })
    data = prepare_data(config)
    assert len(data.train) == 6 and len(data.validation) == 4 and len(data.test) == 2
    assert sorted(data.validation_labels.tolist()) == [0, 0, 1, 1]
    assert data.description["validation_samples_from_folder"] == 4
    without = prepare_data(config.with_overrides(['data.validation_split="fraction"']))
    assert len(without.validation) == 0, "Validation/ is read only when asked for"


def test_augmentation_changes_training_but_not_validation(tmp_path, tiny_data):
    from sdsnn_bio.experiment import kernel_accuracy
    from sdsnn_bio.learning.learner import Learner

    base = tiny_config(tmp_path).with_overrides(["data.validation_fraction=0.25"])
    shifted = base.with_overrides(["learning.augment_max_shift=2"])
    plain = train_model(base, tiny_data, tmp_path / "plain", development=False, progress=False)
    augmented = train_model(shifted, tiny_data, tmp_path / "shifted", development=False, progress=False,
                            keep_checkpoint=True)
    a = load_structure(tmp_path / "plain" / STRUCTURE)
    b = Structure.from_arrays(read_checkpoint(tmp_path / "shifted" / CHECKPOINT).arrays)
    assert not np.array_equal(a.projections[0].weight, b.projections[0].weight), (
        "shifted samples train other weights"
    )
    from sdsnn_bio.data import validation_split

    _, held_out = validation_split(tiny_data.train_labels, 0.25, seed=3)
    learner = Learner(b, shifted.network_parameters().layer_dynamics(), shifted.learning_parameters())
    expected = kernel_accuracy(learner, [tiny_data.train[k] for k in held_out],
                               tiny_data.train_labels[held_out], N_STEPS, N_INPUT, 6)
    assert augmented["final_validation_accuracy"] == expected, "validation sees unshifted recordings"
    assert plain["config"]["learning"]["augment_max_shift"] == 0
    warped = train_model(shifted.with_overrides(["learning.augment_max_scale=0.2"]), tiny_data,
                         tmp_path / "warped", development=False, progress=False, keep_checkpoint=True)
    c = Structure.from_arrays(read_checkpoint(tmp_path / "warped" / CHECKPOINT).arrays)
    assert not np.array_equal(b.projections[0].weight, c.projections[0].weight), (
        "distorted samples train other weights than shifted ones"
    )
    assert warped["config"]["learning"]["augment_max_scale"] == 0.2


def test_keep_checkpoints_keeps_the_exact_state_of_every_model(tmp_path, tiny_data):
    config = tiny_config(tmp_path, enabled=True, steps_per_epoch=3, consecutive_steps=2)
    run_experiment(config, data=tiny_data, progress=False, keep_checkpoints=True)
    for model in ("dense", "sdsnn"):
        checkpoint = read_checkpoint(tmp_path / "out" / model / CHECKPOINT)
        assert checkpoint.meta["epoch"] == 2, f"{model}: the final state is kept"


def test_config_mismatch_on_resume_is_refused(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                stop_after_batches=1)
    other = config.with_overrides(["learning.learning_rate=0.02"])
    with pytest.raises(ValueError, match="another configuration"):
        train_model(other, tiny_data, tmp_path / "model", development=False, resume=True,
                    progress=False)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("development", [False, True], ids=["dense", "sdsnn"])
def test_resume_after_interruption_ends_like_an_uninterrupted_run(tmp_path, tiny_data, development, schedule):
    # 16 training samples in batches of 6: 3 batches per epoch, a development step after each
    dev = {"enabled": True, "steps_per_epoch": 3, "consecutive_steps": 2} if development else {}
    config = tiny_config(tmp_path, learning={"lr_schedule": schedule, "min_learning_rate": 0.001}, **dev)
    if schedule == "cosine":  # resume must stay bit-exact with augmentation (shifts, warps) too
        config = config.with_overrides(["learning.augment_max_shift=2", "learning.augment_max_rotation=15",
                                        "learning.augment_elastic_alpha=3"])
    whole = train_model(config, tiny_data, tmp_path / "whole", development=development,
                        progress=False, keep_checkpoint=True)
    stopped = train_model(config, tiny_data, tmp_path / "parts", development=development,
                          progress=False, stop_after_batches=5)
    assert stopped == {"interrupted": True, "global_batch": 5}, "the run stopped where asked"
    assert not (tmp_path / "parts" / RESULT).exists(), "an interrupted run writes no result"
    resumed = train_model(config, tiny_data, tmp_path / "parts", development=development,
                          resume=True, progress=False, keep_checkpoint=True)
    assert resumed["final_test_accuracy"] == whole["final_test_accuracy"]
    assert resumed["test"]["predictions"] == whole["test"]["predictions"]
    rates = [entry["learning_rate"] for entry in resumed["history"]]
    assert rates == [entry["learning_rate"] for entry in whole["history"]]
    if schedule == "cosine":  # 2 epochs of 4 batches: the last batch of epoch 1 is batch 3 of 8
        assert rates == pytest.approx([0.001 + 0.009 * (1 + np.cos(np.pi * b / 8)) / 2 for b in (3, 7)])
    else:
        assert rates == [0.01, 0.01]
    def without_timing(log):
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in log]

    assert without_timing(resumed["development_log"]) == without_timing(whole["development_log"]), (
        "the same development steps happened"
    )
    if development:
        assert whole["development_log"], "development steps were logged"
    a = Structure.from_arrays(read_checkpoint(tmp_path / "whole" / CHECKPOINT).arrays)
    b = Structure.from_arrays(read_checkpoint(tmp_path / "parts" / CHECKPOINT).arrays)
    for pa, pb in zip(a.projections, b.projections):
        np.testing.assert_array_equal(pa.exists, pb.exists, err_msg=f"{pa.name}: same connectivity")
        np.testing.assert_array_equal(pa.weight, pb.weight, err_msg=f"{pa.name}: same weights")
    for qa, qb in zip(a.populations, b.populations):
        np.testing.assert_array_equal(qa.alive, qb.alive, err_msg=f"{qa.name}: same neurons alive")
    for pa, pb in zip(a.projections, b.projections):
        for name in ("lower", "upper", "upper_excess", "previous_abs_weight", "regrowth_streak"):
            np.testing.assert_array_equal(getattr(pa.spine, name), getattr(pb.spine, name),
                                          err_msg=f"{pa.name}: same spine {name} (exact float64)")


def test_diverging_run_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_data, monkeypatch
):
    from sdsnn_bio.learning.learner import Learner

    config = tiny_config(tmp_path).with_overrides(["run.checkpoint_every_batches=1"])
    original = Learner.train_step
    calls = {"n": 0}

    def poisoned(self, batch, labels, recorded_spikes=None):
        calls["n"] += 1
        result = original(self, batch, labels, recorded_spikes)
        if calls["n"] == 3:
            self.structure.projections[0].weight[0, 0] = np.nan
        return result

    monkeypatch.setattr(Learner, "train_step", poisoned)
    directory = tmp_path / "model"
    with pytest.raises(TrainingDiverged, match="not finite") as caught:
        train_model(config, tiny_data, directory, development=False, progress=False)
    assert str(directory) in str(caught.value), "the message names the run folder"
    checkpoint = read_checkpoint(directory / CHECKPOINT)
    meta, restored = checkpoint.meta, Structure.from_arrays(checkpoint.arrays)
    assert meta["global_batch"] == 2, "the checkpoint is the last good one, before the NaN"
    assert all(np.isfinite(p.weight).all() for p in restored.projections)


def test_nan_loss_is_reported_as_divergence(tmp_path, tiny_data, monkeypatch):
    from sdsnn_bio.learning import learner as learner_module

    config = tiny_config(tmp_path)
    monkeypatch.setattr(learner_module, "cross_entropy", lambda logits, labels: (float("nan"), logits * 0))
    with pytest.raises(TrainingDiverged, match="diverged.*last good checkpoint"):
        train_model(config, tiny_data, tmp_path / "model", development=False, progress=False)


def test_an_interrupted_write_leaves_the_previous_file_intact(tmp_path):
    from sdsnn_bio.files import atomic_open

    target = tmp_path / "result.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w", encoding="utf-8") as handle:
            handle.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous", "the old content survives a failed write"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "no temporary file is left"
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "a normal file, not a private temp file"


# ------------------------------------------------------------------------------- probing faults
def test_a_second_run_into_a_held_folder_is_refused(tmp_path, tiny_data):
    from sdsnn_bio.runfolder import RunFolderBusy, hold_run_folder

    config = tiny_config(tmp_path)
    (tmp_path / "out").mkdir()
    with hold_run_folder(tmp_path / "out"):  # another run is writing there
        with pytest.raises(RunFolderBusy, match="another run is writing into this folder"):
            run_experiment(config, data=tiny_data, progress=False)
    assert not (tmp_path / "out" / RESULTS).exists(), "the refused run wrote nothing"
    run_experiment(config, data=tiny_data, progress=False)  # released: the folder is free again


def test_a_rerun_into_an_unfinished_run_is_refused_without_resume_or_overwrite(tmp_path, tiny_data):
    from sdsnn_bio.runfolder import RunFolderError

    config = tiny_config(tmp_path)
    train_model(config, tiny_data, tmp_path / "out" / "dense", development=False, progress=False,
                stop_after_batches=3)
    checkpoint = tmp_path / "out" / "dense" / CHECKPOINT
    before = checkpoint.read_bytes()
    with pytest.raises(RunFolderError, match="unfinished run.*--resume.*--overwrite"):
        run_experiment(config, data=tiny_data, progress=False)
    assert checkpoint.read_bytes() == before, "the unfinished run is kept"
    results = run_experiment(config, data=tiny_data, progress=False, overwrite=True)
    assert results["models"]["dense"]["history"][0]["epoch"] == 1 and not checkpoint.exists()


def test_resume_with_changed_data_names_the_change(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                stop_after_batches=3)
    fewer = PreparedData(tiny_data.train[:20], tiny_data.train_labels[:20], tiny_data.test,
                         tiny_data.test_labels, tiny_data.description)
    with pytest.raises(ValueError, match="data changed.*train split had 24 recordings, now 20"):
        train_model(config, fewer, tmp_path / "model", development=False, resume=True, progress=False)
    relabelled = PreparedData(tiny_data.train, tiny_data.train_labels[::-1].copy(), tiny_data.test,
                              tiny_data.test_labels, tiny_data.description)
    with pytest.raises(ValueError, match="train split's recordings or labels changed"):
        train_model(config, relabelled, tmp_path / "model", development=False, resume=True, progress=False)


def test_resume_ignores_where_caches_live(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                stop_after_batches=3)
    moved = config.with_overrides([f'simulation.cache_dir="{tmp_path / "elsewhere"}"'])
    result = train_model(moved, tiny_data, tmp_path / "model", development=False, resume=True,
                         progress=False)
    assert len(result["history"]) == 2


def test_a_corrupt_checkpoint_on_resume_is_a_clear_error(tmp_path, tiny_data, capsys):
    from sdsnn_bio.runfolder import RunFolderError

    config = tiny_config(tmp_path)
    train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                stop_after_batches=3)
    path = tmp_path / "model" / CHECKPOINT
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RunFolderError, match="checkpoint.npz: .*truncated or corrupt") as caught:
        train_model(config, tiny_data, tmp_path / "model", development=False, resume=True, progress=False)
    assert "allow_pickle" not in str(caught.value)


def test_output_naming_a_file_is_a_clear_error(tmp_path, tiny_data):
    from sdsnn_bio.runfolder import RunFolderError

    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(RunFolderError, match="out is a file; expected a folder"):
        run_experiment(tiny_config(tmp_path), data=tiny_data, progress=False)


def test_a_run_that_fails_early_leaves_no_empty_folder(tmp_path, tiny_data, monkeypatch):
    from sdsnn_bio import experiment

    def fail(*args, **kwargs):
        raise ValueError("no data here")

    monkeypatch.setattr(experiment, "prepare_data", fail)
    with pytest.raises(ValueError, match="no data here"):
        run_experiment(tiny_config(tmp_path), progress=False)
    assert not (tmp_path / "out").exists(), "no empty output folder is left behind"


def test_orphaned_temporary_files_of_killed_writes_are_removed(tmp_path, tiny_data):
    orphan = tmp_path / "out" / "dense" / f".{CHECKPOINT}.a1b2c3.tmp"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x" * 100)
    mine = tmp_path / "out" / "notes.txt"
    mine.write_text("keep me")
    run_experiment(tiny_config(tmp_path), data=tiny_data, progress=False)
    assert not orphan.exists() and mine.read_text() == "keep me"


# ------------------------------------------------------------------------------- progress and logs
def test_one_info_line_per_epoch_names_model_epoch_speed_and_eta(tmp_path, tiny_data, caplog):
    import logging

    config = tiny_config(tmp_path, enabled=True, steps_per_epoch=3, consecutive_steps=2).with_overrides(
        ["data.validation_fraction=0.25"])
    with caplog.at_level(logging.DEBUG, logger="sdsnn_bio.experiment"):
        run_experiment(config, data=tiny_data, progress=False)
    info = [r.getMessage() for r in caplog.records
            if r.name == "sdsnn_bio.experiment" and r.levelno == logging.INFO]
    epochs = [m for m in info if " | train loss " in m]
    assert [m.split(" | ")[0] for m in epochs] == [
        "dense: epoch 1/2", "dense: epoch 2/2", "sdsnn: epoch 1/2", "sdsnn: epoch 2/2"]
    for line in epochs:
        assert re.search(r"validation \d+\.\d\d% \| \d+ samples/s \| \d+\.\d% synapses removed", line), line
    assert "ETA" in epochs[0] and "(training, whole run)" in epochs[0], "an ETA over both models"
    assert epochs[-1].endswith("run done")
    assert not [m for m in info if m.startswith("development step")], "steps are DEBUG, not INFO"
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum(m.startswith("development step") for m in debug) == 6, "3 steps per epoch, 2 epochs"
    summaries = [m for m in info if " development: " in m]
    assert [m.split(" development:")[0] for m in summaries] == ["sdsnn: epoch 1/2", "sdsnn: epoch 2/2"]
    assert all(re.search(r"3 steps, neurons pruned \d+, revived \d+ \(alive: hidden_1 \d+/12\)", m)
               for m in summaries)


def test_a_dense_only_run_warns_that_no_development_is_configured(tmp_path, tiny_data, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="sdsnn_bio.experiment"):
        run_experiment(tiny_config(tmp_path), data=tiny_data, progress=False)
    assert any("no development configured" in r.getMessage() for r in caplog.records)


def test_ctrl_c_stops_after_the_batch_with_a_checkpoint_and_resume_ends_like_an_uninterrupted_run(
    tmp_path, tiny_data, monkeypatch
):
    import signal

    from sdsnn_bio.interrupt import RunInterrupted
    from sdsnn_bio.learning.learner import Learner

    config = tiny_config(tmp_path, enabled=True, steps_per_epoch=3, consecutive_steps=2)
    whole = run_experiment(config, output_dir=tmp_path / "whole", data=tiny_data, progress=False)
    original = Learner.train_step
    calls = {"n": 0}

    def pressed_ctrl_c(self, batch, labels, recorded_spikes=None):
        calls["n"] += 1
        if calls["n"] == 11:  # the sdsnn model's 3rd batch (the dense model has 2 epochs of 4)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, labels, recorded_spikes)

    monkeypatch.setattr(Learner, "train_step", pressed_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)  # Brian2's own handler stops a run() half-way
    with pytest.raises(RunInterrupted, match="sdsnn: interrupted at epoch 1/2, batch 3/4") as caught:
        run_experiment(config, output_dir=tmp_path / "parts", data=tiny_data, progress=False)
    assert caught.value.checkpoint == tmp_path / "parts" / "sdsnn" / CHECKPOINT
    assert read_checkpoint(caught.value.checkpoint).meta["global_batch"] == 3, "saved after the batch"
    assert signal.getsignal(signal.SIGINT) is handler, "the previous handler is restored"
    monkeypatch.setattr(Learner, "train_step", original)
    resumed = run_experiment(config, output_dir=tmp_path / "parts", data=tiny_data, progress=False,
                             resume=True)
    for model in ("dense", "sdsnn"):
        assert resumed["models"][model]["test"]["predictions"] == whole["models"][model]["test"]["predictions"]


def test_ctrl_c_during_the_brian2_evaluation_stops_cleanly_and_resume_only_evaluates(tmp_path, tiny_data,
                                                                                   monkeypatch):
    from sdsnn_bio.interrupt import RunInterrupted, StopRequest
    from sdsnn_bio.model.network import SpikingNetwork

    config = tiny_config(tmp_path)
    whole = train_model(config, tiny_data, tmp_path / "whole", development=False, progress=False)
    stop = StopRequest()
    original = SpikingNetwork.present
    calls = {"n": 0}

    def present(self, samples):
        calls["n"] += 1
        if calls["n"] == 2:  # the first evaluation batch (the first call records the rasters)
            stop.request()
        return original(self, samples)

    monkeypatch.setattr(SpikingNetwork, "present", present)
    with pytest.raises(RunInterrupted, match=r"Brian2 evaluation \(6 of 12 samples\)") as caught:
        train_model(config, tiny_data, tmp_path / "parts", development=False, progress=False, stop=stop)
    assert caught.value.checkpoint == tmp_path / "parts" / CHECKPOINT
    resumed = train_model(config, tiny_data, tmp_path / "parts", development=False, progress=False,
                          resume=True)
    assert resumed["test"]["predictions"] == whole["test"]["predictions"]
    assert resumed["training_seconds_this_session"] < 1.0, "nothing was trained again"


def test_the_cli_names_the_checkpoint_and_the_resume_command_after_ctrl_c(tmp_path):
    from sdsnn_bio.cli import interrupted_message
    from sdsnn_bio.interrupt import RunInterrupted

    argv = ["run", "examples/configs/embedded.toml", "--output", str(tmp_path / "my run")]
    message = interrupted_message(RunInterrupted("sdsnn: interrupted", tmp_path / "c.npz"), tmp_path, argv)
    assert str(tmp_path / "c.npz") in message
    assert f"sdsnn-bio run examples/configs/embedded.toml --output '{tmp_path / 'my run'}' --resume" in message
    assert "no checkpoint was written yet" in interrupted_message(KeyboardInterrupt(), tmp_path, argv)


def test_brian2_compiling_is_announced(caplog, tmp_path):
    import logging

    import brian2

    from sdsnn_bio.experiment import _brian2_notice

    config = ExperimentConfig.from_dict({})
    previous = brian2.prefs.codegen.target
    try:
        brian2.prefs.codegen.target = "cython"
        with caplog.at_level(logging.INFO, logger="sdsnn_bio.experiment"), _brian2_notice(config):
            pass
    finally:
        brian2.prefs.codegen.target = previous
    messages = [r.getMessage() for r in caplog.records]
    assert any("compiling the network's code (cython target)" in m for m in messages)
    assert any(m.startswith("Brian2: done in") for m in messages)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sdsnn_bio.experiment"), _brian2_notice(config, tmp_path):
        pass
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"C++ standalone device, compiled in {tmp_path}" in m for m in messages)


def test_ctrl_c_while_loading_data_stops_before_training(tmp_path, tiny_data, monkeypatch):
    import signal

    from sdsnn_bio import experiment
    from sdsnn_bio.interrupt import RunInterrupted

    def loading(config):
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C only requests a stop
        return tiny_data

    monkeypatch.setattr(experiment, "prepare_data", loading)
    with pytest.raises(RunInterrupted, match="while loading the data; nothing was trained"):
        run_experiment(tiny_config(tmp_path), progress=False)
    assert not (tmp_path / "out").exists(), "nothing was written, no folder is left"


def test_a_convolutional_sd_snn_run_prunes_channels_and_brian2_agrees_with_the_kernel(tmp_path, tiny_data):
    """network.layers end to end: dense and SD-SNN models of a 3C3-AP4-8FC network train, develop
    per channel, and their Brian2 evaluation gives the kernel's predictions on every sample."""
    from sdsnn_bio.development.monitor import MONITORS_FILE, load_monitors

    raw = {
        "network": {"layers": ["3C3", "AP4", "8FC"], "n_steps": N_STEPS, "dt": "5 ms", "weight_init_gain": 6.0},
        "learning": {"batch_size": 6, "epochs": 2, "learning_rate": 0.01, "threads": 1},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 6},
        "run": {"seed": 3, "output_dir": str(tmp_path / "out")},
        "development": {"enabled": True, "steps_per_epoch": 4, "consecutive_steps": 1,
                        "initial_pruning_rate": 0.4},
        "monitor": [{"source": "hidden_1", "variables": ["alive", "importance"], "name": "channels"}],
    }
    config = ExperimentConfig.from_dict(raw)
    results = run_experiment(config, data=tiny_data, progress=False)
    for name in ("dense", "sdsnn"):
        assert results["models"][name]["test"]["kernel_brian2_agreement"] == 1.0, name
    report = results["models"]["sdsnn"]["structure"]
    assert report["channels_alive"]["hidden_1"] == 2, "floor(0.4 * 3) = 1 channel of 3 pruned"
    assert report["neurons_alive"]["hidden_1"] == 2 * 34 * 34, "a pruned channel loses every position"
    structure = load_structure(tmp_path / "out" / "sdsnn" / STRUCTURE)
    assert structure.projection("input_to_hidden_1").geometry.kind == "convolution"
    assert structure.population("hidden_1").shape == (3, 34, 34)
    channels = load_monitors(tmp_path / "out" / "sdsnn" / MONITORS_FILE)["channels"]
    assert channels.alive.shape[0] == 3, "a population monitor records one entry per channel"
    assert channels.alive[:, -1].sum() == 2
    from sdsnn_bio.plotting import CONVOLUTION_FIGURE_NAMES, FIGURE_NAMES, plot_results

    written = {path.name for path in plot_results(tmp_path / "out", tmp_path / "figures")}
    assert {CONVOLUTION_FIGURE_NAMES["kernels"], FIGURE_NAMES["pruning"]} <= written
    assert FIGURE_NAMES["receptive_fields"] not in written, "no pixel map of a convolutional input"


def test_final_evaluation_runs_on_the_standalone_device_when_configured(tmp_path, tiny_data, monkeypatch):
    """``run`` hands the final structure to the C++ standalone evaluation (its equality with the
    runtime network is tests/test_standalone.py's): here a stand-in records the call and answers
    with a runtime network of its own, so nothing is compiled. The rasters come from the standalone
    program too (before training: a run of their 3 samples; after: the evaluation's own recordings),
    so the run's runtime network is never simulated (its code never compiled)."""
    import sdsnn_bio.model.standalone as standalone
    from sdsnn_bio.learning import learner as learner_module
    from sdsnn_bio.model import SpikingNetwork

    calls, stand_in_networks, simulated, kernel_batches = [], [], [], []
    present = SpikingNetwork.present

    def recorded_present(self, samples):
        simulated.append(self)
        return present(self, samples)

    def stand_in(structure, params, samples, *, batch_size, directory, record_potentials=("output",)):
        calls.append({"batch_size": batch_size, "directory": directory, "n": len(samples),
                      "weights": structure.projection("input_to_hidden_1").weight.copy()})
        network = SpikingNetwork(structure, params, record_potentials=record_potentials)
        stand_in_networks.append(network)
        for start in range(0, len(samples), batch_size):
            yield network.present(samples[start:start + batch_size])

    evaluate_batch = learner_module.Learner.evaluate

    def recorded_evaluate(self, batch):
        kernel_batches.append(batch.n_samples)
        return evaluate_batch(self, batch)

    monkeypatch.setattr(standalone, "present_standalone", stand_in)
    monkeypatch.setattr(SpikingNetwork, "present", recorded_present)
    monkeypatch.setattr(learner_module.Learner, "evaluate", recorded_evaluate)
    config = tiny_config(tmp_path).with_overrides([
        "simulation.evaluation_device=cpp_standalone", "simulation.standalone_batch=5",
        "simulation.evaluation_batch=4", f"simulation.cache_dir={tmp_path / 'cache'}"])
    assert config.simulation.device_in_force() == "cpp_standalone"
    result = train_model(config, tiny_data, tmp_path / "model", development=False, progress=False)
    rasters_call, evaluation_call = calls
    assert rasters_call["n"] == 3 and rasters_call["batch_size"] == 3, "the rasters before training"
    assert evaluation_call["n"] == len(tiny_data.test_labels) and evaluation_call["batch_size"] == 5
    assert not np.array_equal(rasters_call["weights"], evaluation_call["weights"]), "before and after training"
    assert {call["directory"] for call in calls} == {tmp_path / "cache" / standalone.STANDALONE_SUBDIRECTORY}
    assert all(any(network is mine for mine in stand_in_networks) for network in simulated), \
        "the run's runtime network is never simulated"
    assert kernel_batches == [4, 1, 4, 1, 2], "the kernel's check in evaluation_batch pieces of 5, 5, 2"
    assert result["test"]["brian2_device"] == "cpp_standalone"
    assert result["test"]["kernel_brian2_agreement"] == 1.0
    rasters = assert_after_rasters_are_the_final_networks(tmp_path / "model", config, tiny_data)
    assert all(f"before/{name}/sample" in rasters for name in ("input", "hidden_1", "output"))


def assert_after_rasters_are_the_final_networks(model_dir, config, data) -> dict:
    """The saved "after" rasters are the spikes of the saved final structure on the first 3 test
    recordings (a fresh runtime network); returns the rasters."""
    from sdsnn_bio.model import SpikingNetwork

    rasters = load_rasters(model_dir / RASTERS)
    final = load_structure(model_dir / STRUCTURE)
    expected = SpikingNetwork(final, config.network_parameters()).present(data.test[:3])
    for name in ("input", "hidden_1", "output"):
        got = np.stack([rasters[f"after/{name}/{key}"] for key in ("sample", "step", "neuron")])
        np.testing.assert_array_equal(got, np.stack(expected.spikes[name]), err_msg=f"after/{name}")
    return rasters


@pytest.mark.parametrize("evaluation_batch", [6, 2], ids=["one_batch", "three_batches"])
def test_rasters_after_training_are_the_evaluations_first_recordings(tmp_path, tiny_data, monkeypatch,
                                                                    evaluation_batch):
    """The "after" rasters are the Brian2 evaluation's own spikes of the first 3 test recordings,
    also when they span several evaluation batches; no Brian2 run is added for them."""
    from sdsnn_bio.model import SpikingNetwork

    present, runs = SpikingNetwork.present, []
    monkeypatch.setattr(SpikingNetwork, "present", lambda self, samples: runs.append(len(samples)) or
                        present(self, samples))
    config = tiny_config(tmp_path).with_overrides([f"simulation.evaluation_batch={evaluation_batch}"])
    train_model(config, tiny_data, tmp_path / "model", development=False, progress=False)
    n_test = len(tiny_data.test_labels)
    assert runs == [3] + [min(evaluation_batch, n_test - k) for k in range(0, n_test, evaluation_batch)], \
        "the rasters before training, then the evaluation batches only"
    monkeypatch.setattr(SpikingNetwork, "present", present)
    rasters = assert_after_rasters_are_the_final_networks(tmp_path / "model", config, tiny_data)
    assert rasters["after/input/sample"].max() == 2 and rasters["after/hidden_1/sample"].size > 0


def test_evaluation_device_auto_compiles_only_when_the_target_does(tmp_path):
    assert tiny_config(tmp_path).simulation.device_in_force() == "runtime", "numpy target: nothing compiled"
    auto = tiny_config(tmp_path).with_overrides(["simulation.codegen_target=cython"])
    assert auto.simulation.device_in_force() == "cpp_standalone"
    forced = tiny_config(tmp_path).with_overrides(["simulation.evaluation_device=runtime",
                                                   "simulation.codegen_target=cython"])
    assert forced.simulation.device_in_force() == "runtime"
    with pytest.raises(ConfigError, match="simulation.evaluation_device: expected 'auto', 'cpp_standalone' "
                                          "or 'runtime', got 'gpu'"):
        tiny_config(tmp_path).with_overrides(["simulation.evaluation_device=gpu"])
    with pytest.raises(ConfigError, match="simulation.standalone_batch: expected an integer >= 1, got 0"):
        tiny_config(tmp_path).with_overrides(["simulation.standalone_batch=0"])


def test_ctrl_c_that_stops_the_standalone_program_discards_its_batch(tmp_path, tiny_data, monkeypatch):
    """The terminal's Ctrl-C reaches the C++ program too: Brian2 then reports a failed run, which
    becomes a clean interrupt naming the checkpoint (nothing of the batch is used)."""
    import sdsnn_bio.model.standalone as standalone
    from sdsnn_bio.interrupt import RunInterrupted, StopRequest
    from sdsnn_bio.model import SpikingNetwork

    stop = StopRequest()

    def killed(structure, params, samples, *, batch_size, directory, record_potentials=("output",)):
        if len(samples) == 3:  # the rasters before training: answered by a runtime network
            yield SpikingNetwork(structure, params, record_potentials=record_potentials).present(samples)
            return
        stop.request()
        raise RuntimeError("Project run failed (project directory: ...)")
        yield  # a generator, like present_standalone

    monkeypatch.setattr(standalone, "present_standalone", killed)
    config = tiny_config(tmp_path).with_overrides(["simulation.evaluation_device=cpp_standalone"])
    with pytest.raises(RunInterrupted, match=r"Brian2 evaluation \(0 of 12 samples\)") as caught:
        train_model(config, tiny_data, tmp_path / "model", development=False, progress=False, stop=stop,
                    brian_cache_dir=tmp_path / "cache")
    assert caught.value.checkpoint == tmp_path / "model" / CHECKPOINT
    monkeypatch.setattr(standalone, "present_standalone", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("no compiler")))
    with pytest.raises(RuntimeError, match="no compiler"):  # without a Ctrl-C, the error itself
        train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                    resume=True, brian_cache_dir=tmp_path / "cache")

    def killed_at_once(*args, **kwargs):
        stop.request()
        raise RuntimeError("Project run failed (project directory: ...)")
        yield

    monkeypatch.setattr(standalone, "present_standalone", killed_at_once)  # during the rasters' build
    with pytest.raises(RunInterrupted, match="rasters before training; nothing was trained yet") as caught:
        train_model(config, tiny_data, tmp_path / "fresh", development=False, progress=False, stop=stop,
                    brian_cache_dir=tmp_path / "cache")
    assert caught.value.checkpoint is None and not (tmp_path / "fresh" / CHECKPOINT).exists()


def test_a_float32_run_is_checked_against_brian2_by_a_float64_kernel(tmp_path, tiny_data):
    """Brian2 simulates the float32 weights in float64; the kernel of record does the same."""
    config = tiny_config(tmp_path, learning={"dtype": "float32"})
    model = run_experiment(config, data=tiny_data, progress=False)["models"]["dense"]
    test = model["test"]
    assert test["kernel_dtype"] == "float64" and test["learner_dtype"] == "float32"
    assert test["kernel_brian2_agreement"] == 1.0, "the float64 kernel reproduces Brian2 on float32 weights"
    assert 0.0 <= test["learner_dtype_brian2_agreement"] <= 1.0, "the float32 learner's own agreement"
    assert 0.0 <= test["learner_dtype_accuracy"] <= 1.0
    assert load_structure(tmp_path / "out" / "dense" / STRUCTURE).projections[0].weight.dtype == np.float64


@pytest.mark.slow  # a cold C++ standalone build of its own (tens of seconds to minutes here)
def test_a_run_evaluated_standalone_compiles_no_runtime_code(tmp_path, tiny_data):
    """With the Cython target and the standalone evaluation, the rasters and the evaluation are
    recorded by the compiled program and training by the kernel: the runtime network is built (for
    development to write into) but never run, so Brian2's Cython cache holds only the code that
    building it needs, one ``synapses_create_array`` module per projection, and none of the code
    objects of a run (state updates, thresholds, resets, propagation, monitors, sample resets).
    Slow: ``pytest -m slow tests/test_experiment.py``."""
    config = tiny_config(tmp_path).with_overrides(["simulation.codegen_target=cython"])
    assert config.simulation.device_in_force() == "cpp_standalone"
    cache = tmp_path / "cache"
    result = train_model(config, tiny_data, tmp_path / "model", development=False, progress=False,
                         brian_cache_dir=cache)
    assert result["test"]["brian2_device"] == "cpp_standalone"
    assert result["test"]["kernel_brian2_agreement"] == 1.0
    cython_modules = [p for p in cache.rglob("*") if p.suffix in (".so", ".pyd", ".pyx")
                      and "cpp_standalone" not in p.parts]
    n_projections = len(config.network_parameters().population_names) - 1
    assert len(cython_modules) == n_projections, f"only the synapse creation code was compiled: {cython_modules}"
    assert (cache / "cpp_standalone" / "main.cpp").is_file(), "the standalone project is in the cache"
    rasters = load_rasters(tmp_path / "model" / RASTERS)
    assert rasters["before/input/sample"].size and rasters["after/input/sample"].size, "recorded by the program"
    assert "before/hidden_1/sample" in rasters and "after/hidden_1/sample" in rasters


def _two_layer_config_with_a_list_setting(tmp_path):
    """An SD-SNN config whose echo holds a list (``development.undeveloped_layers``), as the SCNN presets."""
    config = tiny_config(tmp_path, enabled=True, steps_per_epoch=3, consecutive_steps=2,
                         undeveloped_layers=["hidden_1"])
    return config.with_overrides(["network.hidden_sizes=[12, 8]", "run.baseline=true"])


def test_a_checkpoint_of_a_config_with_list_settings_resumes(tmp_path, tiny_data):
    # The echo read back from the checkpoint has lists; the live one must compare equal to it (a
    # tuple there once made every SCNN checkpoint "another configuration").
    config = _two_layer_config_with_a_list_setting(tmp_path)
    assert config.development["undeveloped_layers"], "the setting under test is in force"
    stopped = train_model(config, tiny_data, tmp_path / "model", development=True, progress=False,
                          stop_after_batches=2)
    assert stopped["interrupted"]
    resumed = train_model(config, tiny_data, tmp_path / "model", development=True, resume=True,
                          progress=False)
    assert len(resumed["history"]) == 2, "the resumed run finished its two epochs"


def test_a_rerun_reuses_the_finished_dense_model_of_a_config_with_list_settings(tmp_path, tiny_data, caplog):
    config = _two_layer_config_with_a_list_setting(tmp_path)
    out = tmp_path / "out"
    run_experiment(config, data=tiny_data, progress=False)
    dense_result = out / "dense" / RESULT
    before = (dense_result.read_bytes(), dense_result.stat().st_mtime_ns)
    (out / "sdsnn" / RESULT).unlink()  # as if the run had stopped while training the SD-SNN
    (out / RESULTS).unlink()
    with caplog.at_level("INFO", logger="sdsnn_bio.experiment"):
        results = run_experiment(config, data=tiny_data, progress=False, resume=True)
    assert "dense: already finished, result reused" in caplog.text
    assert (dense_result.read_bytes(), dense_result.stat().st_mtime_ns) == before, "the dense model was not retrained"
    assert set(results["models"]) == {"dense", "sdsnn"}
