"""The documentation site builds with warnings as errors, with its generated pages.

``test_site_builds_without_running_the_examples`` (default suite, about 10 s) builds the API
reference, the model page generated from the Brian2 objects, every Markdown page and the gallery
pages (code and text); ``test_gallery_runs_the_examples`` (slow: the examples take about a minute in
quick mode, and ``tests/test_examples.py`` already runs them in the default suite) builds the whole
site with the examples executed and checks their outputs and figures are on the pages. The docs are
built from a copy of ``docs/`` in a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the documentation extra (pip install '.[docs]') is not installed")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPOSITORY / "examples").glob("[0-9]*.py"))


def _text(path: Path) -> str:
    """Visible text of an HTML page (tags removed, entities decoded)."""
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _build(tmp_path: Path, *, execute: bool, cache: Path | None = None) -> Path:
    """Build the site from a copy of docs/ beside links to the package and the examples."""
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
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, (
        f"sphinx -W failed ({completed.returncode}): a new docs page goes into a toctree of "
        f"docs/index.md, a new module into docs/api.rst; see docs/building_the_docs.md\n--- stdout\n{completed.stdout[-3000:]}"
        f"\n--- stderr\n{completed.stderr[-6000:]}"
    )
    return out


def test_site_builds_without_running_the_examples(tmp_path: Path):
    out = _build(tmp_path, execute=False)

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

    gallery = _text(out / "gallery" / "index.html")
    for example in EXAMPLES:
        page = out / "gallery" / f"{example.stem}.html"
        assert page.is_file(), f"{example.name} has a gallery page"
        text = _text(page)
        assert "did not run the example" in text, "a gallery built without running says so"
        assert "import" in text, "the example's code is on its page"
    assert "Example gallery" in gallery


@pytest.mark.slow
def test_gallery_runs_the_examples(tmp_path: Path):
    out = _build(tmp_path, execute=True, cache=tmp_path / "embedded_cache")
    for example in EXAMPLES:
        page = out / "gallery" / f"{example.stem}.html"
        source = page.read_text(encoding="utf-8")
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', source)
        assert images, f"{example.name}: its figures are on its gallery page"
        for image in images:
            assert (page.parent / image).is_file(), f"{example.name}: {image} was copied into the site"
        text = _text(page)
        assert "Output:" in text, f"{example.name}: what it printed is on its page"
        assert "did not run the example" not in text
    first = _text(out / "gallery" / "01_lif_neuron_and_spine_traces.html")
    assert "dv/dt = -v / tau_membrane" in first, "example 01 prints the package's equations"
