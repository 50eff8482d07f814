"""The package passes its linter.

ruff, configured in pyproject.toml: pycodestyle, pyflakes, import order, bugbear, and pydocstyle with
numpydoc's conventions; each ignored rule says why there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_passes_ruff():
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "sdsnn_bio"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert "No module named ruff" not in completed.stderr, "ruff is in the test extra: pip install '.[test]'"
    assert completed.returncode == 0, f"ruff check sdsnn_bio:\n{completed.stdout}{completed.stderr}"
