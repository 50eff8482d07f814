"""Parameter and seed sweeps on a Dask LocalCluster of 2 worker processes (tiny networks)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import csv
import json

import pytest

from sdsnn_bio.config import ConfigError, ExperimentConfig
from sdsnn_bio.sweep import POINT_FILE, expand_grid, parse_grid, parse_seeds, run_sweep

distributed = pytest.importorskip("dask.distributed")

# One pytest-xdist worker starts the module's Dask cluster once.
pytestmark = pytest.mark.xdist_group("dask")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def tiny_base(tmp_path) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "data": {"train_subset": 20, "test_subset": 10, "cache_dir": str(tmp_path / "data_cache")},
        "network": {"hidden_sizes": [6], "n_steps": 20, "dt": "15 ms"},
        "learning": {"batch_size": 10, "epochs": 1, "threads": 1},
        "simulation": {"codegen_target": "numpy", "evaluation_batch": 10},
    })


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_grid_and_seed_parsing():
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    axes = parse_grid(["development.consecutive_steps=10,18,30", "network.hidden_sizes=[100],[200, 50]"])
    assert axes == [("development.consecutive_steps", [10, 18, 30]),
                    ("network.hidden_sizes", [[100], [200, 50]])]
    points = expand_grid(ExperimentConfig(), axes, [0, 1])
    assert len(points) == 3 * 2 * 2, "every combination for every seed"
    assert len({p.name for p in points}) == len(points), "point names are unique"
    assert points[0].config.network.hidden_sizes == (100,)
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("a-b")
    with pytest.raises(ConfigError, match="network.tau_membrane"):
        expand_grid(ExperimentConfig(), parse_grid(["network.tau_membrane=20"]), [0])


def test_two_by_two_sweep_with_a_failing_point_and_resume(tmp_path, client):
    base = tiny_base(tmp_path)
    axes = parse_grid(["network.hidden_sizes=[4],[6]"])
    output = tmp_path / "sweep"
    table = run_sweep(base, axes, [0, 1], output, client=client)
    rows = _rows(table)
    assert len(rows) == 4, "2 hidden sizes x 2 seeds, one dense model each"
    assert {r["status"] for r in rows} == {"done"}
    assert {(r["param:network.hidden_sizes"], r["seed"]) for r in rows} == {
        ("[4]", "0"), ("[4]", "1"), ("[6]", "0"), ("[6]", "1")}
    for row in rows:
        assert 0.0 <= float(row["final_test_accuracy"]) <= 1.0
        assert float(row["wall_seconds"]) > 0
    assert (output / "sweep.json").is_file()
    # Each point's worker-side messages go to its own log, not to a terminal nobody sees.
    logs = sorted((output / "points").glob("*/run.log"))
    assert len(logs) == 4, "one log per point"
    for log in logs:
        text = log.read_text(encoding="utf-8")
        assert "dense: epoch 1/1 |" in text and "validation" in text, f"{log}: the epoch line"
        assert text.count("dense: epoch 1/1 |") == 1, f"{log}: only this point's own run"

    # Resume: finished points are skipped (their summaries are not rewritten).
    summaries = sorted((output / "points").glob(f"*/{POINT_FILE}"))
    assert len(summaries) == 4
    stamps = {p: p.stat().st_mtime_ns for p in summaries}
    again = _rows(run_sweep(base, axes, [0, 1], output, client=client))
    assert {p: p.stat().st_mtime_ns for p in summaries} == stamps, "finished points were skipped"
    assert sorted(r["final_test_accuracy"] for r in again) == sorted(
        r["final_test_accuracy"] for r in rows)

    # A point that fails is recorded with its error and the other points still run.
    missing = tmp_path / "no_such_nmnist"
    failing_axes = parse_grid([f'data.root="{missing}",""'])
    mixed = _rows(run_sweep(base, failing_axes, [0], tmp_path / "mixed", client=client))
    by_status = {r["status"]: r for r in mixed}
    assert set(by_status) == {"done", "failed"}, "one point failed, the other finished"
    assert str(missing) in by_status["failed"]["error"], "the error names the missing folder"
    failed_summary = next((tmp_path / "mixed" / "points").glob(f"*no_such*/{POINT_FILE}"))
    assert json.loads(failed_summary.read_text())["status"] == "failed"


def test_summary_over_seeds_gives_mean_and_sample_sd():
    from sdsnn_bio.sweep import summarise, summary_markdown

    def row(seed, model, accuracy, removed, status="done"):
        return {"point": f"p{seed}", "seed": seed, "model": model, "status": status,
                "param:network.hidden_sizes": "[4]", "final_test_accuracy": accuracy,
                "synapses_removed_fraction": removed, "hidden_neurons_removed_fraction": removed,
                "sops_per_sample": 100.0 * (1 - removed)}

    rows = [row(0, "dense", 0.90, 0.0), row(1, "dense", 0.94, 0.0),
            row(0, "sdsnn", 0.88, 0.5), row(1, "sdsnn", 0.92, 0.7),
            {"point": "p2", "seed": 2, "model": "", "status": "failed",
             "param:network.hidden_sizes": "[4]"}]
    summary = {entry["model"]: entry for entry in summarise(rows)}
    assert summary["sdsnn"]["seeds"] == 2 and summary["sdsnn"]["failed"] == 1
    assert summary["sdsnn"]["final_test_accuracy_mean"] == pytest.approx(0.90)
    assert summary["sdsnn"]["final_test_accuracy_sd"] == pytest.approx(0.0282843, rel=1e-5), "sample sd"
    assert summary["dense"]["synapses_removed_fraction_mean"] == 0.0
    table = summary_markdown(summarise(rows))
    assert "| [4] | sdsnn | 2 | 90.00 ± 2.83 | 60.00 ± 14.14 |" in table


def test_a_point_resumes_on_another_worker(tmp_path, monkeypatch):
    """The worker's Brian2 cache (named by its PID) never enters the checkpoint's configuration."""
    import os

    from sdsnn_bio import experiment
    from sdsnn_bio.runfolder import CHECKPOINT
    from sdsnn_bio.sweep import run_point

    config_dict = tiny_base(tmp_path).to_dict()
    directory = tmp_path / "sweep" / "points" / "seed=0"
    original = experiment.train_model

    def killed(*args, **kwargs):
        original(*args, **{**kwargs, "stop_after_batches": 1})
        raise RuntimeError("worker killed")

    monkeypatch.setattr(experiment, "train_model", killed)
    monkeypatch.setattr(os, "getpid", lambda: 1111)
    first = run_point(config_dict, str(directory), "seed=0", {})
    assert first["status"] == "failed" and (directory / "dense" / CHECKPOINT).is_file()
    monkeypatch.setattr(experiment, "train_model", original)
    monkeypatch.setattr(os, "getpid", lambda: 2222)  # the retry runs on another worker
    second = run_point(config_dict, str(directory), "seed=0", {})
    assert second["status"] == "done", second.get("error")
    assert (tmp_path / "sweep" / "brian_cache" / "worker-2222").is_dir(), "the worker's own cache"


def test_an_uncreatable_point_folder_fails_that_point_and_the_table_is_written(tmp_path, client):
    base = tiny_base(tmp_path)
    output = tmp_path / "sweep"
    names = [point.name for point in expand_grid(base, [], [0, 1])]
    (output / "points").mkdir(parents=True)
    (output / "points" / names[0]).write_text("a file where the point's folder should be")
    rows = _rows(run_sweep(base, [], [0, 1], output, client=client))
    status = {row["point"]: row["status"] for row in rows}
    assert status == {names[0]: "failed", names[1]: "done"}
    assert "is a file" in next(row["error"] for row in rows if row["point"] == names[0])


def test_point_names_hold_the_swept_values_only_and_stay_short():
    from sdsnn_bio.sweep import MAX_POINT_NAME

    long_root = "/data/" + "x" * 300
    axes = parse_grid([f'data.root="{long_root}"', "learning.threads=1",
                       'learning.dtype="float64","float32"'])
    points = expand_grid(ExperimentConfig(), axes, [0, 1])
    assert [p.name for p in points] == [
        "learning.dtype=float64__seed=0", "learning.dtype=float64__seed=1",
        "learning.dtype=float32__seed=0", "learning.dtype=float32__seed=1"], "fixed overrides left out"
    assert points[0].parameters == {"data.root": long_root, "learning.threads": 1, "learning.dtype": "float64"}
    assert points[0].config.data.root == long_root, "fixed overrides still apply"
    assert points[0].legacy_name.startswith("data.root=data_xxx"), "the earlier name, for resuming"
    assert len(points[0].legacy_name) > 255, "the earlier name could not be a folder name"
    from sdsnn_bio.sweep import _point_folder

    with tempfile.TemporaryDirectory() as output:  # looking for it must not fail (ENAMETOOLONG)
        (Path(output) / "points").mkdir()
        assert _point_folder(Path(output), points[0]) == points[0].name, "no earlier folder: the new name"

    swept_long = parse_grid([f'data.root="{long_root}a","{long_root}b"'])
    names = [p.name for p in expand_grid(ExperimentConfig(), swept_long, [3])]
    assert all(len(n) <= MAX_POINT_NAME for n in names), "long values: a prefix and a hash"
    assert all(n.startswith("data.root=data_xxx") and n.endswith("__seed=3") for n in names)
    assert len(set(names)) == 2, "the hash keeps different values apart"

    alike = parse_grid(['run.output_dir="a b","a_b"'])
    names = [p.name for p in expand_grid(ExperimentConfig(), alike, [0])]
    assert len(set(names)) == 2 and all("~" in n for n in names), "values spelled alike get a hash"
    assert [p.name for p in expand_grid(ExperimentConfig(), [], [4])] == ["seed=4"]


def test_sweep_points_map_and_resume_in_folders_of_the_earlier_names(tmp_path, client):
    from sdsnn_bio.runfolder import SWEEP_POINTS

    base = tiny_base(tmp_path)
    axes = parse_grid(["learning.threads=1", "network.hidden_sizes=[4],[5]"])
    output = tmp_path / "sweep"
    rows = _rows(run_sweep(base, axes, [0], output, client=client))
    assert {r["point"] for r in rows} == {"network.hidden_sizes=4__seed=0", "network.hidden_sizes=5__seed=0"}
    assert {r["param:learning.threads"] for r in rows} == {"1"}, "fixed overrides stay in the table"
    mapping = json.loads((output / SWEEP_POINTS).read_text())
    assert mapping["fixed"] == {"learning.threads": 1}
    assert mapping["swept"] == {"network.hidden_sizes": [[4], [5]]}
    assert mapping["points"]["network.hidden_sizes=4__seed=0"] == {
        "parameters": {"learning.threads": 1, "network.hidden_sizes": [4]}, "seed": 0,
        "swept": ["network.hidden_sizes"]}

    # A sweep folder of an earlier version: every --set value in the folder names.
    legacy = {p.name: p.legacy_name for p in expand_grid(base, axes, [0])}
    for name, old in legacy.items():
        (output / "points" / name).rename(output / "points" / old)
    (output / SWEEP_POINTS).unlink()
    summaries = sorted((output / "points").glob(f"*/{POINT_FILE}"))
    stamps = {p: p.stat().st_mtime_ns for p in summaries}
    again = _rows(run_sweep(base, axes, [0], output, client=client))
    assert {p: p.stat().st_mtime_ns for p in summaries} == stamps, "finished points found and skipped"
    assert {r["point"] for r in again} == set(legacy.values())
    assert sorted(p.name for p in (output / "points").iterdir()) == sorted(legacy.values()), \
        "no new folders beside the earlier ones"
    assert set(json.loads((output / SWEEP_POINTS).read_text())["points"]) == set(legacy.values())


def test_the_sweeps_own_cluster_never_restarts_a_busy_worker_for_missed_heartbeats():
    # Dask's default worker time-to-live (5 minutes) restarted sweep workers mid-run whenever a
    # loaded machine starved their heartbeats (seen on 3 Dec 2026 with low-priority sweeps).
    import dask

    from sdsnn_bio.sweep import local_cluster

    seen = {}

    class RecordingCluster:
        def __init__(self, **kwargs):
            seen.update(kwargs, ttl=dask.config.get("distributed.scheduler.worker-ttl"))

    assert isinstance(local_cluster(RecordingCluster, 3), RecordingCluster)
    assert seen["ttl"] is None, "the scheduler is created with no worker time-to-live"
    assert seen["n_workers"] == 3 and seen["threads_per_worker"] == 1 and seen["processes"] is True
    assert dask.config.get("distributed.scheduler.worker-ttl") is not None, "the setting stays local"


def test_a_finished_point_is_recognised_when_its_config_holds_lists(tmp_path):
    # The point file is read back from JSON (lists); the live echo may have held tuples.
    from sdsnn_bio.sweep import _finished

    live = {"development": {"undeveloped_layers": ("hidden_1",)}}
    (tmp_path / POINT_FILE).write_text(json.dumps({"status": "done", "config": live}), encoding="utf-8")
    assert _finished(tmp_path, live) is not None, "a done point with the same settings is skipped"
    other = {"development": {"undeveloped_layers": ("hidden_2",)}}
    assert _finished(tmp_path, other) is None, "a point with other settings is run again"


@pytest.mark.parametrize("value", ["4", "28"])
def test_the_sweeps_own_workers_inherit_the_openblas_thread_timeout(monkeypatch, value):
    # `sdsnn-bio sweep` sets OPENBLAS_THREAD_TIMEOUT in its own process (sdsnn_bio.blas); the
    # LocalCluster's workers are spawned processes and must see it (Dask only forces
    # OPENBLAS_NUM_THREADS=1 there).
    import os

    from sdsnn_bio.sweep import local_cluster

    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", value)
    cluster = local_cluster(distributed.LocalCluster, 1)
    try:
        with distributed.Client(cluster) as client:
            seen = client.run(lambda: os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
    finally:
        cluster.close()
    assert list(seen.values()) == [value], f"the sweep worker saw {seen}, the parent had {value!r}"
