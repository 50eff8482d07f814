"""Parameter and seed sweeps on Dask: one machine by default, a cluster when users outgrow it.

A sweep is a grid (``--set development.consecutive_steps=10,18,30 --set network.hidden_sizes=[100],[200]``)
times a list of seeds. Every point is an independent experiment — its own output folder, seed,
checkpoint and Brian2 code cache — run by :func:`sdsnn_bio.experiment.run_experiment` on a
``dask.distributed`` worker: a ``LocalCluster`` sized to the machine, or an existing cluster given
by its scheduler address (``tcp://host:8786``).

* A point's folder is named after the swept values (axes with more than one value) and the seed;
  fixed overrides are recorded in ``sweep_points.json`` (with every folder's full parameters), and a
  long name ends in a hash (:data:`MAX_POINT_NAME`).
* A point that fails is recorded with its error; the sweep goes on.
* Re-running a sweep skips the points already finished with the same configuration (resume), and
  unfinished points resume from their checkpoints.
* Results are gathered into ``sweep.csv`` and ``sweep.json`` (parameters, seed, model, final test
  accuracy, % synapses and hidden neurons removed, SOPs per sample, wall time, status, error) and a
  figure ``sweep.png`` (accuracy versus compression per parameter value, mean ± sd over seeds).

Dask is an optional extra: ``pip install 'sdsnn-bio[sweep]'``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import logging
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import runfolder
from .config import ConfigError, ExperimentConfig, json_values, parse_value
from .files import atomic_open

__all__ = [
    "SweepPoint", "parse_grid", "parse_seeds", "expand_grid", "run_point", "run_sweep", "summarise",
    "summary_markdown", "write_point_map", "MAX_POINT_NAME",
]

logger = logging.getLogger(__name__)

POINT_FILE = runfolder.POINT
TABLE_COLUMNS = (
    "point", "seed", "model", "status", "final_test_accuracy", "synapses_removed_fraction",
    "hidden_neurons_removed_fraction", "sops_per_sample", "wall_seconds", "error",
)


# ------------------------------------------------------------------------------------------ grid
def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_grid(assignments) -> list[tuple[str, list]]:
    """``["development.consecutive_steps=10,18"]`` → ``[("development.consecutive_steps", [10, 18])]``."""
    axes = []
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"--set: expected SECTION.KEY=V1,V2,..., got {assignment!r}")
        key, text = assignment.split("=", 1)
        key = key.strip()
        if "." not in key:
            raise ConfigError(f"--set: expected SECTION.KEY=V1,V2,..., got {assignment!r}")
        values = [parse_value(v) for v in _split_top_level(text)]
        if not values or any(v == "" for v in values) and len(values) == 1 and text.strip() == "":
            raise ConfigError(f"--set {key}: expected at least one value")
        axes.append((key, values))
    return axes


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``"0,3,7"`` → ``[0, 3, 7]``."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                raise ConfigError(f"--seeds: range {part!r} is empty (expected LOW-HIGH with LOW <= HIGH)")
            seeds.extend(range(low, high + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ConfigError(f"--seeds: expected integers or ranges like 0-4, got {part!r}")
    return seeds


def _format_value(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


#: Longest point folder name written; a longer label becomes a readable prefix and a short hash.
MAX_POINT_NAME = 120


@dataclass(frozen=True)
class SweepPoint:
    """One experiment of the sweep.

    ``name`` (also its folder under ``points/``) holds the swept parameters (axes with more than one
    value) and the seed; ``parameters`` holds every ``--set`` value, the fixed ones included.
    ``legacy_name`` is the folder name of sweeps written before fixed overrides left the name
    (every parameter in it), so their finished and unfinished points are still found.
    """

    name: str
    parameters: dict
    seed: int
    config: ExperimentConfig
    legacy_name: str = ""


def expand_grid(base: ExperimentConfig, axes, seeds) -> list[SweepPoint]:
    """Every combination of the axes' values, for every seed (validated configurations).

    Point names carry only the swept axes (more than one value) and the seed; a name longer than
    :data:`MAX_POINT_NAME` characters, or two names that the folder-name spelling would make equal,
    end in a hash of the point's exact parameters instead (``<prefix>~<hash>__seed=N``).
    """
    keys = [key for key, _ in axes]
    swept = {key for key, values in axes if len(values) > 1}
    points = []
    for values in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        for seed in seeds:
            parameters = dict(zip(keys, values))
            overrides = [f"{k}={_toml(v)}" for k, v in parameters.items()] + [f"run.seed={seed}"]
            config = base.with_overrides(overrides)
            varying = {k: v for k, v in parameters.items() if k in swept}
            points.append(SweepPoint(_point_name(varying, seed), parameters, seed, config,
                                     _point_name(parameters, seed, limit=None)))
    names = [point.name for point in points]
    if len(set(names)) < len(names):  # two values spelled alike in a folder name ("a b", "a_b")
        points = [
            SweepPoint(_point_name({k: v for k, v in p.parameters.items() if k in swept}, p.seed,
                                   hashed=True), p.parameters, p.seed, p.config, p.legacy_name)
            for p in points
        ]
    return points


def _point_name(parameters: dict, seed: int, limit: int | None = MAX_POINT_NAME,
                hashed: bool = False) -> str:
    """``key=value__...__seed=N``; with a hash of the exact parameters when too long (or asked)."""
    label = "__".join(f"{k}={_slug(v)}" for k, v in parameters.items())
    suffix = f"seed={seed}"
    if limit is not None and (hashed or len(label) + len(suffix) + 2 > limit):
        digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode("utf-8")).hexdigest()[:10]
        label = f"{label[:max(0, limit - len(suffix) - 14)].rstrip('_')}~{digest}"
    return f"{label}__{suffix}" if label else suffix


def _toml(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _slug(value) -> str:
    text = _format_value(value)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "empty"


# ------------------------------------------------------------------------------------------ points
def run_point(config_dict: dict, directory: str, name: str, parameters: dict) -> dict:
    """Run one sweep point (on a Dask worker): returns its summary; never raises.

    Each worker process gets its own Brian2 code cache directory, so concurrent compilations
    never share files.
    """
    from .experiment import atomic_write_json, run_experiment

    directory = Path(directory)
    started = time.perf_counter()
    summary = {"point": name, "parameters": parameters, "config": config_dict}
    try:
        config = ExperimentConfig.from_dict(config_dict, source=name)
        cache = None
        if not config.simulation.cache_dir:
            # The worker's own code cache is passed beside the configuration, never into it: a
            # checkpoint written by one worker must resume on any other (another PID).
            cache = directory.parent.parent / runfolder.BRIAN_CACHE / f"worker-{os.getpid()}"
        with _point_log(directory / runfolder.POINT_LOG):
            results = run_experiment(config, output_dir=directory, resume=True, progress=False,
                                     brian_cache_dir=cache)
        summary["status"] = "done"
        summary["models"] = {
            model: {
                "final_test_accuracy": result["final_test_accuracy"],
                "synapses_removed_fraction": result["structure"]["synapses_removed_fraction"],
                "hidden_neurons_removed_fraction": result["structure"]["hidden_neurons_removed_fraction"],
                "sops_per_sample": result["test"]["energy"]["sops_per_sample"],
            }
            for model, result in results["models"].items()
        }
    except Exception as err:  # a failing point is recorded, the sweep goes on
        summary["status"] = "failed"
        summary["error"] = f"{type(err).__name__}: {err}"
        summary["traceback"] = traceback.format_exc()
    summary["wall_seconds"] = time.perf_counter() - started
    try:
        atomic_write_json(directory / POINT_FILE, summary)
    except OSError as err:  # an uncreatable point folder: the summary still reaches the table
        summary["error"] = summary.get("error") or f"{type(err).__name__}: {err}"
        logger.warning("sweep: %s: summary not written (%s)", name, err)
    return summary


@contextlib.contextmanager
def _point_log(path: Path):
    """Append the package's INFO messages of this point's run to ``path`` while it runs.

    A sweep's workers print nowhere a user looks; this file (``points/<name>/run.log``) shows a
    running point's epochs, validation accuracy and ETA (``tail -f``), and stays beside its results.
    Only records of the calling thread are kept, in case a worker runs several points at once. A
    folder that cannot be created leaves the point without a log (the run itself says why it fails).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        yield
        return
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    package = logging.getLogger("sdsnn_bio")
    level = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


def _finished(directory: Path, config_dict: dict) -> dict | None:
    path = directory / POINT_FILE
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    if summary.get("status") == "done" and summary.get("config") == json_values(config_dict):
        return summary
    return None


def _point_folder(output: Path, point: SweepPoint) -> str:
    """The point's folder name: its name, or the legacy name of a sweep written before the names changed.

    A sweep folder made by an earlier version named every point after all its ``--set`` values; when
    only that folder exists, the point resumes (or is skipped as finished) there.
    """
    points = output / runfolder.POINTS
    if point.legacy_name and point.legacy_name != point.name and not (points / point.name).exists():
        try:
            legacy = (points / point.legacy_name).is_dir()
        except OSError:  # e.g. a name longer than the file system allows: no such folder can exist
            legacy = False
        if legacy:
            logger.info("sweep: %s continues in the folder of an earlier sweep, %s", point.name, point.legacy_name)
            return point.legacy_name
    return point.name


def write_point_map(output: Path, axes, points: list[SweepPoint], folders: dict | None = None) -> Path:
    """Write ``sweep_points.json``: the fixed overrides, the swept axes and every point's folder.

    Point names hold only the swept values (and a hash when long), so this file is where a folder's
    full parameters are read back. Points of earlier invocations into the same sweep folder (other
    seeds, other values) are kept.

    Parameters
    ----------
    output : Path
        The sweep folder.
    axes : list of (key, values)
        The grid (:func:`parse_grid`).
    points : list of SweepPoint
        The points of this invocation (:func:`expand_grid`).
    folders : dict, optional
        Point name -> folder name under ``points/`` (default: the point's name).
    """
    from .experiment import atomic_write_json

    path = output / runfolder.SWEEP_POINTS
    known = {}
    if path.is_file():
        try:
            known = json.loads(path.read_text(encoding="utf-8")).get("points", {})
        except (json.JSONDecodeError, AttributeError):
            logger.warning("sweep: %s is not readable JSON; written again from this sweep's points", path)
    folders = folders or {}
    swept = [key for key, values in axes if len(values) > 1]
    for point in points:
        folder = folders.get(point.name, point.name)
        known[folder] = {"parameters": point.parameters, "seed": point.seed,
                         "swept": [key for key in swept if key in point.parameters]}
    atomic_write_json(path, {
        "fixed": {key: values[0] for key, values in axes if len(values) == 1},
        "swept": {key: values for key, values in axes if len(values) > 1},
        "points": dict(sorted(known.items())),
    })
    return path


def _rows(summary: dict, seed: int) -> list[dict]:
    base = {"point": summary["point"], "seed": seed, "status": summary.get("status"),
            "wall_seconds": summary.get("wall_seconds"), "error": summary.get("error", ""),
            **{f"param:{k}": _format_value(v) for k, v in summary.get("parameters", {}).items()}}
    if summary.get("status") != "done":
        return [{**base, "model": ""}]
    return [{**base, "model": model, **values} for model, values in summary["models"].items()]


def _write_table(output: Path, rows: list[dict]) -> Path:
    from .experiment import atomic_write_json

    atomic_write_json(output / runfolder.SWEEP_JSON, {"rows": rows})
    params = sorted({k for row in rows for k in row if k.startswith("param:")})
    columns = list(TABLE_COLUMNS[:3]) + params + list(TABLE_COLUMNS[3:])
    with atomic_open(output / runfolder.SWEEP_TABLE, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return output / runfolder.SWEEP_TABLE


# ------------------------------------------------------------------------------------------ sweep
def local_cluster(cluster_class, n_workers: int):
    """Start the sweep's own ``LocalCluster`` with Dask's worker time-to-live switched off.

    Dask's scheduler restarts a worker that has not sent a heartbeat for
    ``distributed.scheduler.worker-ttl`` (5 minutes by default). A sweep's worker spends hours in
    one training task; on a machine that other jobs load (or with the sweep deliberately given a low
    CPU priority) its heartbeats can starve for minutes, and Dask then killed workers in the middle
    of a run, over and over, so that no point ever finished. A local worker that really dies is
    noticed by its nanny (the process exits); the time-to-live adds nothing for it here.

    Parameters
    ----------
    cluster_class : type
        ``dask.distributed.LocalCluster`` (a parameter so that tests can record the call).
    n_workers : int
        Worker processes, one thread each.
    """
    import dask

    with dask.config.set({"distributed.scheduler.worker-ttl": None}):
        return cluster_class(n_workers=n_workers, threads_per_worker=1, processes=True,
                             dashboard_address=":0")


def run_sweep(
    base: ExperimentConfig,
    axes,
    seeds,
    output_dir: str | Path,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    client=None,
) -> Path:
    """Run every point of the grid on Dask; returns the path of ``sweep.csv``.

    Parameters
    ----------
    base : ExperimentConfig
        Configuration every point starts from.
    axes : list of (key, values)
        Grid axes (see :func:`parse_grid`).
    seeds : list of int
    output_dir : path
        Sweep folder: ``points/<point>/`` per point, ``sweep_points.json`` (fixed overrides, swept
        axes, every point's folder and parameters), ``sweep.csv``, ``sweep.json``, ``sweep.png``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a ``LocalCluster``.
    n_workers : int, optional
        LocalCluster workers (default: the cores available); each worker trains with
        ``cores // n_workers`` threads.
    client : dask.distributed.Client, optional
        Use this client (tests, notebooks).
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("sweeps need Dask: pip install 'sdsnn-bio[sweep]'") from err
    from .learning.parallel import default_threads

    output = Path(output_dir)
    (output / runfolder.POINTS).mkdir(parents=True, exist_ok=True)
    points = expand_grid(base, axes, seeds)
    cores = default_threads()
    n_workers = n_workers or cores
    own_cluster = None
    if client is None:
        if scheduler:
            client = Client(scheduler)
        else:
            own_cluster = local_cluster(LocalCluster, n_workers)
            client = Client(own_cluster)
    rows, futures = [], {}
    folders = {point.name: _point_folder(output, point) for point in points}
    write_point_map(output, axes, points, folders)
    try:
        for point in points:
            config = point.config
            if not config.learning.threads:
                config = config.replace("learning", threads=max(1, cores // n_workers))
            config_dict = config.to_dict()
            name = folders[point.name]
            directory = output / runfolder.POINTS / name
            done = _finished(directory, config_dict)
            if done is not None:
                logger.info("sweep: %s already finished, skipped", name)
                rows.extend(_rows({**done, "point": name}, point.seed))  # the folder's name
                continue
            future = client.submit(run_point, config_dict, str(directory), name,
                                   point.parameters, pure=False, key=f"sdsnn-{name}-{time.time_ns()}")
            futures[future] = point
        for future in as_completed(list(futures)):
            point = futures[future]
            try:
                summary = future.result()
            except Exception as err:  # a lost worker or an unpicklable error: the sweep goes on
                summary = {"point": folders[point.name], "parameters": point.parameters, "status": "failed",
                           "error": f"{type(err).__name__}: {err}"}
            if summary["status"] != "done":
                logger.warning("sweep: %s failed: %s", folders[point.name], summary.get("error"))
            rows.extend(_rows(summary, point.seed))
            _write_table(output, rows)
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    rows.sort(key=lambda r: (r["point"], r.get("model", "")))
    table = _write_table(output, rows)
    _write_summary(output, summarise(rows))
    try:
        from .plotting import plot_accuracy_vs_compression

        figure = plot_accuracy_vs_compression(_figure_rows(rows))
        figure.savefig(output / runfolder.SWEEP_FIGURE, dpi=120)
    except Exception as err:  # the table is the result; a figure problem must not lose it
        logger.warning("sweep: figure not written (%s)", err)
    return table


SUMMARY_METRICS = (
    "final_test_accuracy", "synapses_removed_fraction", "hidden_neurons_removed_fraction",
    "sops_per_sample",
)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation over seeds, per grid point (parameters) and model.

    Failed points are left out (their count is reported in ``failed``).
    """
    import numpy as np

    groups: dict[tuple, list] = {}
    failed: dict[tuple, int] = {}
    for row in rows:
        params = tuple(sorted((k, v) for k, v in row.items() if k.startswith("param:")))
        if row.get("status") == "done":
            groups.setdefault((params, row["model"]), []).append(row)
        else:  # a failed point has no model: count it against its parameters
            failed[params] = failed.get(params, 0) + 1
    summary = []
    for (params, model), done in sorted(groups.items()):
        entry = {**dict(params), "model": model, "seeds": len(done), "failed": failed.get(params, 0)}
        for metric in SUMMARY_METRICS:
            values = np.asarray([float(r[metric]) for r in done], dtype=np.float64)
            entry[f"{metric}_mean"] = float(values.mean()) if values.size else float("nan")
            entry[f"{metric}_sd"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        summary.append(entry)
    return summary


def _write_summary(output: Path, summary: list[dict]) -> Path:
    columns = sorted({k for entry in summary for k in entry if k.startswith("param:")})
    columns += ["model", "seeds", "failed"] + [
        f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "sd")]
    with atomic_open(output / runfolder.SWEEP_SUMMARY, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(summary)
    return output / runfolder.SWEEP_SUMMARY


def summary_markdown(summary: list[dict]) -> str:
    """The summary as a Markdown table: accuracy (%), synapses and hidden neurons removed (%), SOPs."""
    params = sorted({k for entry in summary for k in entry if k.startswith("param:")})
    header = [p[6:] for p in params] + [
        "model", "seeds", "test accuracy (%)", "synapses removed (%)", "hidden neurons removed (%)",
        "SOPs / sample"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary:
        def pct(metric: str) -> str:
            return f"{100 * entry[metric + '_mean']:.2f} ± {100 * entry[metric + '_sd']:.2f}"

        cells = [str(entry.get(p, "")) for p in params] + [
            entry["model"], str(entry["seeds"]), pct("final_test_accuracy"),
            pct("synapses_removed_fraction"), pct("hidden_neurons_removed_fraction"),
            f"{entry['sops_per_sample_mean']:.3g} ± {entry['sops_per_sample_sd']:.2g}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure_rows(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        if row.get("status") != "done":
            continue
        label = ", ".join(f"{k[6:]}={v}" for k, v in row.items() if k.startswith("param:"))
        out.append({"model": row["model"], "seed": row["seed"], "accuracy": row["final_test_accuracy"],
                    "synapses_removed_fraction": row["synapses_removed_fraction"],
                    "param": label or None})
    return out
