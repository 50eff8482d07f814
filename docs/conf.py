"""Sphinx configuration of the sdsnn_bio documentation.

Build (warnings are errors)::

    pip install '.[docs]'
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The example gallery runs every ``examples/NN_*.py`` in quick mode (about a minute on 2 cores);
``-D sdsnn_gallery_execute=0`` renders it without running the examples, and
``-D sdsnn_gallery_results=FOLDER`` takes their outputs from runs made beforehand (the test suite
does; see ``docs/building_the_docs.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))  # document the package of this checkout, not another installed copy

import sdsnn_bio  # noqa: E402

project = "sdsnn_bio"
author = "sdsnn_bio developers"
copyright = "sdsnn_bio developers (MIT licence)"  # noqa: A001 - Sphinx's name
version = release = sdsnn_bio.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into _static/: the site renders math offline
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sdsnn_equations",
    "sdsnn_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "gallery_work"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections carry the types (with units)
numpydoc_show_class_members = False  # members are documented by autodoc, once
numpydoc_class_members_toctree = False

sdsnn_gallery_examples = "../examples"
sdsnn_gallery_execute = True
sdsnn_gallery_results = ""  # a folder of precomputed runs (<example>/run.json); empty: none

html_theme = "alabaster"
html_title = f"sdsnn_bio {release}"
html_static_path: list[str] = []
# The package's code is 100-110 columns wide: a wider page shows the examples' cells unwrapped.
html_theme_options = {"page_width": "1280px", "body_max_width": "none", "sidebar_width": "230px"}
