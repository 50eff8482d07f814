"""A gallery of the examples: each jupytext percent-format ``examples/NN_*.py`` becomes a page.

Markdown cells (``# %% [markdown]``) become text, code cells become code blocks followed by what
the cell printed and the figures it wrote. The outputs come from a quick-mode run of the example,
cell by cell, by :func:`sdsnn_example_runner.run_example` (one subprocess per example, working
folder the repository root, ``SDSNN_FIGURES_DIR`` and ``SDSNN_OUTPUT_DIR`` in its run folder; a
figure belongs to the cell after which it appeared or changed): either executed by the build, or
taken from runs made beforehand with the same runner (the test suite runs the examples once and
builds the site from those runs). A failing example fails the build with its traceback.

Configuration values (``conf.py`` or ``-D``):

``sdsnn_gallery_examples``
    Folder of the examples (relative to the configuration folder).
``sdsnn_gallery_results``
    Folder of precomputed runs, ``<folder>/<example stem>/run.json`` plus the figures beside it
    (relative to the configuration folder, or absolute; default empty: none). When set, the pages
    are built from these runs and nothing is executed; a missing run, a failed one or a run of
    another version of the example (its code cells changed since) fails the build.
``sdsnn_gallery_execute``
    Without precomputed runs: run the examples (default True). False renders code and text only,
    with a note saying so.

The pages are generated into ``<source>/gallery/`` at ``builder-inited`` (not committed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sdsnn_example_runner import Cell, load_run, parse_percent, run_example, run_failure
from sphinx.errors import ExtensionError
from sphinx.util import logging

__all__ = ["generate", "setup"]

logger = logging.getLogger(__name__)

GALLERY = "gallery"


def _execute(example: Path, folder: Path, root: Path) -> dict:
    """Run ``example`` into ``folder`` (quick mode, cell by cell) and return its record."""
    record = run_example(example, root, folder)
    logger.info("gallery: %s ran in %.1f s (quick mode)", example.name, record["seconds"])
    return record


def _precomputed(example: Path, folder: Path) -> dict:
    """The record of a run made before the build, checked to be a run of this example's text."""
    try:
        return load_run(folder, example)
    except (OSError, ValueError) as error:
        raise ExtensionError(f"gallery: sdsnn_gallery_results: {error}") from error


def _fence(text: str, language: str = "") -> list[str]:
    ticks = "````" if "```" in text else "```"
    return [f"{ticks}{language}", text, ticks, ""]


def _page(example: Path, cells: list[Cell], results: list[dict] | None, run_folder: Path | None,
          images: Path, source_dir: Path) -> tuple[str, str | None]:
    """MyST text of one example page and the first figure (for the gallery index).

    ``results`` are the cells of a run record (None: the example was not run), their figures
    relative to ``run_folder``; the figures are copied into ``images/<example stem>/``.
    """
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
            shutil.copyfile(run_folder / figure, target)
            relative = target.relative_to(source_dir / GALLERY).as_posix()
            first_figure = first_figure or relative
            lines += [f"```{{image}} {relative}", f":alt: {Path(figure).stem}", "```", ""]
    if results is None:
        lines += ["```{note}", "This build did not run the example (``sdsnn_gallery_execute = False``); "
                  "a build that runs the examples shows their output and figures here.", "```", ""]
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
    precomputed = app.config.sdsnn_gallery_results
    if precomputed:
        runs = (Path(app.confdir) / precomputed).resolve()
        if not runs.is_dir():
            raise ExtensionError(f"gallery: sdsnn_gallery_results: {runs} is not a folder (expected "
                                 "<example stem>/run.json for every example)")
        logger.info("gallery: outputs and figures taken from the runs in %s", runs)
    elif app.config.sdsnn_gallery_execute:
        runs = Path(app.outdir).parent / "gallery_work"
        if runs.exists():
            shutil.rmtree(runs)
    else:
        runs = None
    index = [f"({GALLERY})=", "", "# Example gallery", "",
             "The examples of ``examples/``, run in quick mode (``SDSNN_QUICK=1``: tiny subsets, "
             "Brian2's numpy target) cell by cell; every number and figure below was produced by "
             "that run.", ""]
    toctree = ["```{toctree}", ":hidden:", ""]
    for example in examples:
        cells = parse_percent(example.read_text(encoding="utf-8"))
        results = None
        if runs is not None:
            folder = runs / example.stem
            record = _precomputed(example, folder) if precomputed else _execute(example, folder, root)
            failure = run_failure(record)
            if failure:
                raise ExtensionError(f"gallery: {example} could not run (quick mode)\n{failure}")
            results = record["cells"]
        text, figure = _page(example, cells, results, runs / example.stem if runs else None, images,
                             source_dir)
        (gallery / f"{example.stem}.md").write_text(text, encoding="utf-8")
        toctree.append(example.stem)
        index += [f"## [{_title(cells, example)}]({example.stem}.md)", ""]
        if figure:
            index += [f"```{{image}} {figure}", ":width: 480px", f":target: {example.stem}.html",
                      f":alt: {example.stem}", "```", ""]
    (gallery / "index.md").write_text("\n".join(index + toctree + ["```", ""]), encoding="utf-8")


def setup(app):
    app.add_config_value("sdsnn_gallery_examples", "../examples", "env")
    app.add_config_value("sdsnn_gallery_results", "", "env")
    app.add_config_value("sdsnn_gallery_execute", True, "env")
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
