"""OpenBLAS's thread timeout: set by the command-line entry points before NumPy loads, never by the library."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdsnn_bio.blas import (
    OPENBLAS_THREAD_TIMEOUT,
    SHORT_THREAD_TIMEOUT,
    describe_thread_timeout,
    prefer_short_thread_timeout,
    with_short_thread_timeout,
)

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_short_timeout_is_set_when_unset_and_numpy_not_yet_imported():
    environ = {"PATH": "/bin"}
    assert prefer_short_thread_timeout(environ, modules={"os": os}) is True
    assert environ == {"PATH": "/bin", OPENBLAS_THREAD_TIMEOUT: "4"}, "setdefault adds only the timeout"
    assert SHORT_THREAD_TIMEOUT == "4", "4 is OpenBLAS's shortest spin (it raises 1-3 to 4)"


@pytest.mark.parametrize("users_value", ["28", "0", ""])
def test_a_value_the_user_set_is_kept(users_value):
    environ = {OPENBLAS_THREAD_TIMEOUT: users_value}
    assert prefer_short_thread_timeout(environ, modules={}) is False
    assert environ == {OPENBLAS_THREAD_TIMEOUT: users_value}


def test_nothing_is_set_once_numpy_is_imported_and_debug_says_why(caplog):
    environ = {}
    with caplog.at_level(logging.DEBUG, logger="sdsnn_bio.blas"):
        assert prefer_short_thread_timeout(environ, modules={"numpy": object()}) is False
    assert environ == {}, "OpenBLAS has read its environment already: setting it would only mislead"
    assert "NumPy is already imported" in caplog.text


def test_worker_environments_get_the_default_without_changing_the_parents():
    parent = {"PATH": "/bin"}
    child = with_short_thread_timeout(parent)
    assert child == {"PATH": "/bin", OPENBLAS_THREAD_TIMEOUT: "4"} and parent == {"PATH": "/bin"}
    assert with_short_thread_timeout({OPENBLAS_THREAD_TIMEOUT: "28"}) == {OPENBLAS_THREAD_TIMEOUT: "28"}


def test_the_report_line_names_the_value_or_the_openblas_default():
    assert describe_thread_timeout({OPENBLAS_THREAD_TIMEOUT: "4"}) == "OPENBLAS_THREAD_TIMEOUT=4"
    assert describe_thread_timeout({}) == "OPENBLAS_THREAD_TIMEOUT unset (OpenBLAS default 28)"


def _environment(users_value: str | None) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != OPENBLAS_THREAD_TIMEOUT}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    if users_value is not None:
        environment[OPENBLAS_THREAD_TIMEOUT] = users_value
    return environment


#: Runs the command line the way ``python -m sdsnn_bio``, the ``sdsnn-bio`` console script or
#: ``python benchmarks/SCRIPT.py`` does, recording the variable at the moment NumPy is first imported (when OpenBLAS reads it).
ENTRY_POINT_PROBE = """
import importlib.metadata, json, os, runpy, sys

at_numpy_import = []

class WatchNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" and not at_numpy_import:
            at_numpy_import.append(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
        return None

sys.meta_path.insert(0, WatchNumpy())
way, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["sdsnn-bio", *argv]
try:
    if way == "module":
        runpy.run_module("sdsnn_bio", run_name="__main__", alter_sys=True)
    elif way.endswith(".py"):
        sys.argv[0] = way
        runpy.run_path(way, run_name="__main__")
    else:
        (script,) = importlib.metadata.entry_points(group="console_scripts", name="sdsnn-bio")
        sys.exit(script.load()())
except SystemExit as stop:
    status = stop.code
print(json.dumps({"at_numpy_import": at_numpy_import, "status": status}))
"""


@pytest.mark.parametrize("way", ["module", "console script"])
@pytest.mark.parametrize("users_value", [None, "12"])
def test_the_command_line_sets_the_timeout_before_numpy_loads_and_keeps_the_users(tmp_path, way, users_value):
    # `plot` of a missing folder imports the package's modules (NumPy among them), then exits 2.
    missing = tmp_path / "no-such-run"
    completed = subprocess.run([sys.executable, "-c", ENTRY_POINT_PROBE, way, "plot", str(missing)],
                               capture_output=True, text=True, env=_environment(users_value), timeout=300)
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    assert seen["status"] == 2 and str(missing) in completed.stderr, completed.stderr
    expected = SHORT_THREAD_TIMEOUT if users_value is None else users_value
    assert seen["at_numpy_import"] == [expected], (
        f"when NumPy (and with it OpenBLAS) loaded, OPENBLAS_THREAD_TIMEOUT was {seen['at_numpy_import']}, "
        f"expected [{expected!r}]: something imports NumPy before cli.main sets it, or it is not set")


def test_importing_the_library_leaves_the_environment_alone():
    code = ("import json, os; before = dict(os.environ); "
            "import sdsnn_bio, sdsnn_bio.cli, sdsnn_bio.blas; sdsnn_bio.load_config; "
            "print(json.dumps([before == dict(os.environ), 'numpy' in __import__('sys').modules]))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=_environment(None), check=True, timeout=300)
    unchanged, numpy_loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert numpy_loaded, "the probe should load NumPy through the package (sdsnn_bio.load_config)"
    assert unchanged, "import sdsnn_bio changed os.environ: library users decide OPENBLAS_THREAD_TIMEOUT themselves"


#: The benchmark scripts that time sdsnn_bio in their own process (throughput.py and
#: throughput_scnn.py time it in worker processes: tests/test_throughput.py checks their environment).
TIMING_SCRIPTS = ["profile_step", "epoch_time", "evaluation", "training_forward", "development_epoch",
                  "development_step"]


@pytest.mark.parametrize("script", TIMING_SCRIPTS)
def test_timing_scripts_set_the_timeout_before_numpy_loads(script):
    path = REPOSITORY / "benchmarks" / f"{script}.py"
    completed = subprocess.run([sys.executable, "-c", ENTRY_POINT_PROBE, str(path), "--help"],
                               capture_output=True, text=True, env=_environment(None), timeout=300)
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0, completed.stderr
    assert seen["at_numpy_import"] == [SHORT_THREAD_TIMEOUT], (
        f"benchmarks/{script}.py loaded NumPy with OPENBLAS_THREAD_TIMEOUT={seen['at_numpy_import']}")
