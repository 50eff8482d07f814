"""The documentation site builds with warnings as errors, with its generated pages.

``test_site_builds_with_the_examples_outputs`` (default suite, about 10 s beyond the examples'
runs) builds the whole site: the API reference, the model page generated from the Brian2 objects,
every Markdown page, and the gallery with every example's printed output and figures, taken from
the quick-mode runs that ``tests/test_examples.py`` checks (fixture ``example_runs``: each example
runs once per session; ``sdsnn_gallery_results`` points the build at them).
``test_gallery_runs_the_examples`` (slow: about a minute more) builds it as the documented command
does, the build itself running the examples. The docs are built from a copy of ``docs/`` in a
temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import example_runner

pytest.importorskip("sphinx", reason="the documentation extra (pip install '.[docs]') is not installed")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

# The site shows the examples' quick-mode runs that tests/test_examples.py checks: one pytest-xdist worker
# runs them once for both modules (fixture ``example_runs``).
pytestmark = pytest.mark.xdist_group("examples")

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPOSITORY / "examples").glob("[0-9]*.py"))


def _text(path: Path) -> str:
    """Visible text of an HTML page (tags removed, entities decoded)."""
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _build(tmp_path: Path, *, execute: bool, results: Path | None = None, cache: Path | None = None) -> Path:
    """Build the site from a copy of docs/ beside links to the package and the examples.

    ``results``: a folder of the examples' runs for the gallery (``sdsnn_gallery_results``);
    without it, ``execute`` says whether the build runs the examples itself.
    """
    shutil.copytree(REPOSITORY / "docs", tmp_path / "docs",
                    ignore=shutil.ignore_patterns("_build", "gallery", "__pycache__"))
    for name in ("sdsnn_bio", "examples"):
        (tmp_path / name).symlink_to(REPOSITORY / name, target_is_directory=True)
    out = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg")
    if cache is not None:
        env["SDSNN_BIO_CACHE"] = str(cache)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-D", f"sdsnn_gallery_execute={int(execute)}", "docs", str(out)]
    if results is not None:
        command[-2:-2] = ["-D", f"sdsnn_gallery_results={results}"]
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, (
        f"sphinx -W failed ({completed.returncode}): a new docs page goes into a toctree of "
        f"docs/index.md, a new module into docs/api.rst; see docs/building_the_docs.md\n--- stdout\n{completed.stdout[-3000:]}"
        f"\n--- stderr\n{completed.stderr[-6000:]}"
    )
    return out


def _assert_gallery_shows_the_runs(out: Path, runs: Path) -> None:
    """Check that every example's page carries each cell's output and every figure.

    The figures are copied into the site byte for byte, as recorded in ``runs/<stem>/run.json``.
    """
    assert "Example gallery" in _text(out / "gallery" / "index.html")
    for example in EXAMPLES:
        record = example_runner.load_run(runs / example.stem, example)
        page = out / "gallery" / f"{example.stem}.html"
        assert page.is_file(), f"{example.name} has a gallery page"
        source = page.read_text(encoding="utf-8")
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', source)
        assert images, f"{example.name}: its figures are on its gallery page"
        for image in images:
            assert (page.parent / image).is_file(), f"{example.name}: {image} was copied into the site"
        # Sphinx renames images whose names collide across pages: a figure is found by its content.
        shown = {hashlib.sha256((page.parent / image).read_bytes()).hexdigest() for image in images}
        figures = example_runner.run_figures(record)
        assert figures, f"{example.name}: the run recorded its figures"
        for figure in figures:
            digest = hashlib.sha256((runs / example.stem / figure).read_bytes()).hexdigest()
            assert digest in shown, f"{example.name}: {figure} is on its page, copied byte for byte"
        text = _text(page)
        assert "Output:" in text, f"{example.name}: what it printed is on its page"
        assert "did not run the example" not in text
        assert "import" in text, "the example's code is on its page"
        for index, cell in enumerate(record["cells"], 1):
            printed = [line.strip() for line in cell["stdout"].splitlines() if line.strip()]
            for line in printed[:1] + printed[-1:]:
                assert line in text, f"{example.name}: cell {index} printed {line!r}, not on its page"
    first = _text(out / "gallery" / "01_lif_neuron_and_spine_traces.html")
    assert "dv/dt = -v / tau_membrane" in first, "example 01 prints the package's equations"


def test_site_builds_with_the_examples_outputs(tmp_path: Path, example_runs):
    failed = [name for name, run in example_runs.all().items() if example_runner.run_failure(run)]
    assert not failed, f"examples failed (tests/test_examples.py says why): {failed}"
    out = _build(tmp_path, execute=False, results=example_runs.folder)

    model = _text(out / "model.html")
    # Generated from the Brian2 objects: the equations, the threshold, the spine variables.
    assert "dv/dt = -v / tau_membrane : 1 (unless refractory)" in model
    assert "threshold = 'v > v_threshold and alive'" in model
    assert "spine_range_upper : 1" in model and "upper_streak : integer" in model
    assert "v_post += w" in model, "the synapses' on_pre code is shown"
    assert "20. * msecond" in model, "the constants in force are shown with their units"
    page = (out / "model.html").read_text(encoding="utf-8")
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    assert any(src.endswith("_static/mathjax/tex-chtml.js") for src in sources), sources
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is shipped with the site"
    for path in out.rglob("*.html"):
        remote = [src for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', path.read_text(encoding="utf-8"))
                  if "//" in src]
        assert not remote, f"{path.name} loads scripts from the network: {remote}"

    api = (out / "api.html").read_text(encoding="utf-8")
    for anchor in ("sdsnn_bio.config.load_config", "sdsnn_bio.experiment.run_experiment",
                   "sdsnn_bio.plotting.plot_results", "sdsnn_bio.model.network.SpikingNetwork",
                   "sdsnn_bio.development.scheduler.StructuralScheduler", "sdsnn_bio.data.load_dataset"):
        assert f'id="{anchor}"' in api, f"the API reference documents {anchor}"
    assert "Parameters" in _text(out / "api.html"), "numpydoc sections are rendered"

    for page in ("development", "data", "results", "benchmarks", "sweeps", "building_the_docs"):
        assert (out / f"{page}.html").is_file(), f"docs/{page}.md is a page of the site"
    assert "Dendritic-spine plasticity" in _text(out / "development.html")

    _assert_gallery_shows_the_runs(out, example_runs.folder)


@pytest.mark.slow
def test_gallery_runs_the_examples(tmp_path: Path):
    out = _build(tmp_path, execute=True, cache=tmp_path / "embedded_cache")
    _assert_gallery_shows_the_runs(out, tmp_path / "gallery_work")


def _gallery_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPOSITORY / "docs" / "_ext"))
    import sdsnn_gallery

    return sdsnn_gallery


def test_a_gallery_page_without_a_run_says_so(tmp_path: Path, monkeypatch):
    gallery = _gallery_module(monkeypatch)
    example = EXAMPLES[0]
    cells = gallery.parse_percent(example.read_text(encoding="utf-8"))
    text, figure = gallery._page(example, cells, None, None, tmp_path / "gallery" / "images", tmp_path)
    assert "did not run the example" in text and "Output:" not in text
    assert figure is None and not (tmp_path / "gallery").exists(), "no figure without a run"
    assert example_runner.code_cells(example)[0] in text, "the code is on the page"


def test_precomputed_runs_must_exist_and_be_of_the_current_example(tmp_path: Path, monkeypatch):
    gallery = _gallery_module(monkeypatch)
    from sphinx.errors import ExtensionError

    example = EXAMPLES[0]
    with pytest.raises(ExtensionError, match=r"run\.json: no run record"):
        gallery._precomputed(example, tmp_path / example.stem)
    (tmp_path / example.stem).mkdir()
    record = {"example": example.stem, "source_sha256": example_runner.source_digest(["print(1)"]),
              "returncode": 0, "seconds": 1.0, "stderr": "", "cells": [{"stdout": "1\n", "figures": [], "error": None}]}
    (tmp_path / example.stem / "run.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ExtensionError, match=r"another version of 01_lif_neuron_and_spine_traces\.py"):
        gallery._precomputed(example, tmp_path / example.stem)
    with pytest.raises(ExtensionError, match=r"a run of 01_lif_neuron_and_spine_traces, expected 02_"):
        gallery._precomputed(EXAMPLES[1], tmp_path / example.stem)
    record["source_sha256"] = example_runner.source_digest(example_runner.code_cells(example))
    (tmp_path / example.stem / "run.json").write_text(json.dumps(record), encoding="utf-8")
    assert gallery._precomputed(example, tmp_path / example.stem) == record
