"""Run an example cell by cell in quick mode and keep what each cell printed and drew.

One runner for the two users of the examples' output: the gallery extension
(``sdsnn_gallery.py``, which turns each run into a page) and the test suite
(``tests/conftest.py``, which runs every example once per session, checks its output in
``tests/test_examples.py`` and hands the runs to the documentation build in
``tests/test_docs.py``, so the examples are executed once for both). It imports neither Sphinx nor
the package: the tests load it by its path.

An example is a jupytext percent-format script (``# %%`` cells). :func:`run_example` executes its
code cells in order, in one namespace, in one subprocess (``python -c`` of :data:`RUNNER`, working
folder the repository root, ``SDSNN_QUICK=1``), with ``SDSNN_FIGURES_DIR`` and ``SDSNN_OUTPUT_DIR``
pointing into its run folder; a figure belongs to the cell after which it appeared or changed
(its modification time or size). The run folder then holds::

    <run folder>/run.json      # the record below (written atomically, last)
    <run folder>/figures/...   # the PNG files the example wrote
    <run folder>/runs/...      # its run folders (results.json, structures, ...)

and ``run.json`` is ``{"example": stem, "source_sha256": digest of the code cells, "returncode":
int or null (timed out), "seconds": float, "stderr": str (its last 20000 characters), "cells":
[{"stdout": str, "figures": [path relative to the run folder, ...], "error": traceback or
null}, ...]}``. Execution stops at the first failing cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Cell", "parse_percent", "code_cells", "source_digest", "RUNNER", "RUN_FILE",
           "run_example", "load_run", "run_stdout", "run_figures", "run_failure"]

RUN_FILE = "run.json"
CELL = re.compile(r"^# %%(?P<rest>.*)$")
STDERR_KEPT = 20_000

#: Runs an example cell by cell; prints one JSON line: per cell, its stdout, new figures and error.
RUNNER = r"""
import contextlib, io, json, os, sys, traceback
from pathlib import Path
cells = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
figures = Path(os.environ["SDSNN_FIGURES_DIR"])
def pictures():
    if not figures.is_dir():
        return {}
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in figures.rglob("*.png")}
namespace = {"__name__": "__main__", "__file__": sys.argv[1]}
sys.argv = [sys.argv[1]]
seen = pictures()
results = []
for index, source in enumerate(cells):
    buffer = io.StringIO()
    error = None
    with contextlib.redirect_stdout(buffer):
        try:
            exec(compile(source, f"{sys.argv[0]} (cell {index + 1})", "exec"), namespace)
        except BaseException:
            error = traceback.format_exc()
    now = pictures()
    new = sorted(p for p, t in now.items() if seen.get(p) != t)
    seen = now
    results.append({"stdout": buffer.getvalue(), "figures": new, "error": error})
    if error:
        break
print(json.dumps(results))
"""


class Cell:
    """One cell of a percent-format file: ``kind`` is "markdown" or "code"."""

    def __init__(self, kind: str, lines: list[str]) -> None:
        self.kind = kind
        self.lines = lines

    @property
    def text(self) -> str:
        """The cell's text: markdown without its comment marks, code without ``# %matplotlib``."""
        if self.kind == "markdown":
            stripped = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in self.lines]
            return "\n".join(stripped).strip("\n")
        kept = [line for line in self.lines if not line.startswith("# %matplotlib")]
        return "\n".join(kept).strip("\n")


def parse_percent(text: str) -> list[Cell]:
    """Cells of a jupytext percent-format script (the YAML header and empty cells dropped)."""
    cells: list[Cell] = []
    current: Cell | None = None
    for line in text.splitlines():
        match = CELL.match(line)
        if match:
            kind = "markdown" if "[markdown]" in match.group("rest") else "code"
            current = Cell(kind, [])
            cells.append(current)
        elif current is not None:
            current.lines.append(line)
    return [cell for cell in cells if cell.text.strip()]


def code_cells(example: Path) -> list[str]:
    """The code cells of ``example``, in order, as :data:`RUNNER` executes them."""
    return [cell.text for cell in parse_percent(example.read_text(encoding="utf-8")) if cell.kind == "code"]


def source_digest(code: list[str]) -> str:
    """SHA-256 of the code cells: a run is used only for the example text it ran."""
    return hashlib.sha256(json.dumps(code).encode("utf-8")).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def run_example(example: Path, root: Path, folder: Path, *, env: dict[str, str] | None = None,
                timeout: float | None = None) -> dict:
    """Run ``example`` in quick mode, cell by cell, and record the run into ``folder``.

    Parameters
    ----------
    example : Path
        The percent-format script, inside ``root``.
    root : Path
        Working folder of the run (the repository root: the examples' relative paths start there).
    folder : Path
        Run folder, created; it must not exist or be empty (a figure already there would be
        taken for one the example wrote).
    env : dict of str to str, optional
        Variables added to the environment (after ``os.environ`` without ``SDSNN_NMNIST`` and the
        quick-mode variables), e.g. ``PYTHONPATH`` or ``SDSNN_BIO_CACHE``.
    timeout : float, optional
        Seconds after which the run is stopped and recorded as failed (``returncode`` null).

    Returns
    -------
    dict
        The record written to ``folder/run.json`` (see the module docstring). A failing example
        is recorded, not raised: :func:`run_failure` describes it.
    """
    example, root, folder = Path(example).resolve(), Path(root).resolve(), Path(folder).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"run folder {folder} is not empty: a run needs a fresh folder")
    folder.mkdir(parents=True, exist_ok=True)
    code = code_cells(example)
    cells_file = folder / "cells.json"
    cells_file.write_text(json.dumps(code), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key != "SDSNN_NMNIST"}
    environment.update({"SDSNN_QUICK": "1", "SDSNN_FIGURES_DIR": str(folder / "figures"),
                        "SDSNN_OUTPUT_DIR": str(folder / "runs"), "MPLBACKEND": "Agg"})
    environment.update(env or {})
    started = time.perf_counter()
    try:
        completed = subprocess.run([sys.executable, "-c", RUNNER, str(example.relative_to(root)), str(cells_file)],
                                   cwd=root, env=environment, capture_output=True, text=True, timeout=timeout)
        returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
    except subprocess.TimeoutExpired as expired:
        returncode = None
        stdout = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else expired.stdout or ""
        stderr = (expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes)
                  else expired.stderr or "") + f"\ntimed out after {timeout} s"
    seconds = time.perf_counter() - started
    lines = stdout.strip().splitlines()
    try:
        cells = json.loads(lines[-1]) if lines else []
    except json.JSONDecodeError:
        cells = []
    if not isinstance(cells, list):
        cells = []
    if not cells and returncode == 0:  # the runner always prints its line: something else printed last
        returncode = -1
        stderr += f"\nno result line from the runner; its stdout ended with:\n{stdout[-4000:]}"
    for cell in cells:
        cell["figures"] = [Path(path).relative_to(folder).as_posix() for path in cell["figures"]]
    record = {"example": example.stem, "source_sha256": source_digest(code), "returncode": returncode,
              "seconds": round(seconds, 3), "stderr": stderr[-STDERR_KEPT:], "cells": cells}
    _write_atomically(folder / RUN_FILE, json.dumps(record, indent=1))
    return record


def load_run(folder: Path, example: Path | None = None) -> dict:
    """The record of ``folder/run.json``; with ``example``, checked to be a run of its current text.

    Raises
    ------
    FileNotFoundError
        No ``run.json`` in ``folder``.
    ValueError
        ``run.json`` is not a run record, or it ran another example or another version of it.
    """
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record (expected the run.json that run_example writes)")
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = {"example", "source_sha256", "returncode", "stderr", "cells"} - set(record)
    if missing:
        raise ValueError(f"{path}: not a run record, missing {sorted(missing)}")
    if example is not None:
        if record["example"] != example.stem:
            raise ValueError(f"{path}: a run of {record['example']}, expected {example.stem}")
        if record["source_sha256"] != source_digest(code_cells(example)):
            raise ValueError(f"{path}: a run of another version of {example.name} (its code cells changed "
                             "since); run the example again")
    return record


def run_stdout(record: dict) -> str:
    """Everything the example printed, its cells' output concatenated."""
    return "".join(cell["stdout"] for cell in record["cells"])


def run_figures(record: dict) -> list[str]:
    """The figures it wrote (relative to the run folder), each once, in the order they appeared."""
    return list(dict.fromkeys(path for cell in record["cells"] for path in cell["figures"]))


def run_failure(record: dict) -> str | None:
    """Why the run failed (exit code, failing cell with its traceback, output tails), or None."""
    errors = [(index, cell["error"]) for index, cell in enumerate(record["cells"], 1) if cell["error"]]
    if record["returncode"] == 0 and not errors:
        return None
    why = (f"{record['example']} failed in code cell {errors[0][0]}:\n{errors[0][1]}" if errors
           else f"{record['example']} exited with {record['returncode']}")
    return (f"{why}\n--- stdout\n{run_stdout(record)[-4000:]}\n--- stderr\n{record['stderr'][-4000:]}")
