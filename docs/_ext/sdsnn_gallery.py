"""A gallery of the examples: each jupytext percent-format ``examples/NN_*.py`` becomes a page.

Markdown cells (``# %% [markdown]``) become text, code cells become code blocks followed by what
the cell printed and the figures it wrote. The examples are executed in quick mode
(``SDSNN_QUICK=1``), cell by cell, in one subprocess per example (``python -c`` of
:data:`RUNNER`, working folder the repository root, as ``tests/test_examples.py`` runs them), with
``SDSNN_FIGURES_DIR`` and ``SDSNN_OUTPUT_DIR`` pointing into the build folder; a figure belongs to
the cell after which it appeared or changed. A failing example fails the build with its traceback.

Configuration values (``conf.py``):

``sdsnn_gallery_examples``
    Folder of the examples (relative to the configuration folder).
``sdsnn_gallery_execute``
    Run the examples (default True). False renders code and text only, with a note saying so:
    the fast documentation test uses it, the gallery test runs them.

The pages are generated into ``<source>/gallery/`` at ``builder-inited`` (not committed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

__all__ = ["Cell", "parse_percent", "RUNNER", "setup"]

logger = logging.getLogger(__name__)

GALLERY = "gallery"
CELL = re.compile(r"^# %%(?P<rest>.*)$")

#: Runs an example cell by cell; prints a JSON line per cell (stdout captured, figures written).
RUNNER = r"""
import contextlib, io, json, os, sys, traceback
from pathlib import Path
cells = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
figures = Path(os.environ["SDSNN_FIGURES_DIR"])
def pictures():
    return {str(p): p.stat().st_mtime_ns for p in figures.rglob("*.png")} if figures.is_dir() else {}
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


def _execute(example: Path, cells: list[Cell], work: Path, root: Path) -> list[dict]:
    code = [cell.text for cell in cells if cell.kind == "code"]
    work.mkdir(parents=True, exist_ok=True)
    cells_file = work / f"{example.stem}.cells.json"
    cells_file.write_text(json.dumps(code), encoding="utf-8")
    env = dict(os.environ)
    env.pop("SDSNN_NMNIST", None)
    env.update({"SDSNN_QUICK": "1", "SDSNN_FIGURES_DIR": str(work / "figures"),
                "SDSNN_OUTPUT_DIR": str(work / "runs"), "MPLBACKEND": "Agg"})
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", RUNNER, str(example.relative_to(root)), str(cells_file)],
                               cwd=root, env=env, capture_output=True, text=True)
    logger.info("gallery: %s ran in %.1f s (quick mode)", example.name, time.perf_counter() - started)
    if completed.returncode != 0:
        raise ExtensionError(f"gallery: {example} could not run\n{completed.stderr[-4000:]}")
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    failed = [r for r in results if r["error"]]
    if failed:
        raise ExtensionError(f"gallery: {example} failed in cell {len(results)}:\n{failed[0]['error']}")
    return results


def _fence(text: str, language: str = "") -> list[str]:
    ticks = "````" if "```" in text else "```"
    return [f"{ticks}{language}", text, ticks, ""]


def _page(example: Path, cells: list[Cell], results: list[dict] | None, images: Path,
          source_dir: Path) -> tuple[str, str | None]:
    """MyST text of one example page and the first figure (for the gallery index)."""
    lines = [f"({GALLERY}-{example.stem})=", ""]
    first_figure = None
    code_index = 0
    title_done = False
    for cell in cells:
        if cell.kind == "markdown":
            text = cell.text
            if not title_done and not text.lstrip().startswith("# "):
                lines += [f"# {example.stem}", ""]
            title_done = True
            lines += [text, ""]
            continue
        if not title_done:
            lines += [f"# {example.stem}", ""]
            title_done = True
        lines += _fence(cell.text, "python")
        if results is None:
            continue
        result = results[code_index]
        code_index += 1
        if result["stdout"].strip():
            lines += ["Output:", ""] + _fence(result["stdout"].rstrip("\n"), "text")
        for figure in result["figures"]:
            target = images / example.stem / Path(figure).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(figure, target)
            relative = target.relative_to(source_dir / GALLERY).as_posix()
            first_figure = first_figure or relative
            lines += [f"```{{image}} {relative}", f":alt: {Path(figure).stem}", "```", ""]
    if results is None:
        lines += ["```{note}", "This build did not run the example (``sdsnn_gallery_execute = False``); "
                  "the documentation build of record does, and shows its output and figures.", "```", ""]
    lines += [f"Source: ``examples/{example.name}`` (run it with ``python examples/{example.name}``; "
              "``SDSNN_QUICK=1`` for the quick mode shown here).", ""]
    return "\n".join(lines), first_figure


def _title(cells: list[Cell], example: Path) -> str:
    for cell in cells:
        if cell.kind == "markdown":
            for line in cell.text.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return example.stem


def generate(app) -> None:
    """Write ``<source>/gallery/index.md`` and one page per example (``builder-inited``)."""
    source_dir = Path(app.srcdir)
    examples_dir = (Path(app.confdir) / app.config.sdsnn_gallery_examples).resolve()
    root = examples_dir.parent
    examples = sorted(examples_dir.glob("[0-9]*.py"))
    if not examples:
        raise ExtensionError(f"gallery: no examples/[0-9]*.py in {examples_dir}")
    gallery = source_dir / GALLERY
    if gallery.exists():
        shutil.rmtree(gallery)
    images = gallery / "images"
    images.mkdir(parents=True)
    work = Path(app.outdir).parent / "gallery_work"
    if work.exists():
        shutil.rmtree(work)
    index = [f"({GALLERY})=", "", "# Example gallery", "",
             "The examples of ``examples/``, run in quick mode (``SDSNN_QUICK=1``: tiny subsets, "
             "Brian2's numpy target) by the documentation build; every number and figure below was "
             "produced by that run.", ""]
    toctree = ["```{toctree}", ":hidden:", ""]
    for example in examples:
        cells = parse_percent(example.read_text(encoding="utf-8"))
        results = _execute(example, cells, work / example.stem, root) if app.config.sdsnn_gallery_execute else None
        text, figure = _page(example, cells, results, images, source_dir)
        (gallery / f"{example.stem}.md").write_text(text, encoding="utf-8")
        toctree.append(example.stem)
        index += [f"## [{_title(cells, example)}]({example.stem}.md)", ""]
        if figure:
            index += [f"```{{image}} {figure}", ":width: 480px", f":target: {example.stem}.html",
                      f":alt: {example.stem}", "```", ""]
    (gallery / "index.md").write_text("\n".join(index + toctree + ["```", ""]), encoding="utf-8")


def setup(app):
    app.add_config_value("sdsnn_gallery_examples", "../examples", "env")
    app.add_config_value("sdsnn_gallery_execute", True, "env")
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
