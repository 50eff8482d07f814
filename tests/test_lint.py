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


def imported_modules(package: str) -> dict[str, set[str]]:
    """Absolute names of the sdsnn_bio modules each file of ``package`` imports (at any depth)."""
    import ast

    found = {}
    for path in sorted((ROOT / "sdsnn_bio" / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = parts[:-1] if parts[-1] == "__init__" else parts
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = list(parts[:-1]) if node.level else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                names.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        found[".".join(module)] = names
    return found


def test_the_model_does_not_import_the_learner_nor_the_learner_brian2():
    for module, names in imported_modules("model").items():
        wrong = sorted(n for n in names if n.startswith("sdsnn_bio.learning"))
        assert not wrong, (f"{module} imports {wrong}: the learner depends on the model, not the reverse "
                           "(plain records shared by both go to sdsnn_bio.dynamics or sdsnn_bio.structure)")
    for module, names in imported_modules("learning").items():
        wrong = sorted(n for n in names if n.startswith(("sdsnn_bio.model", "brian2")))
        assert not wrong, f"{module} imports {wrong}: learning runs on NumPy/SciPy, without Brian2"
    assert imported_modules("model")["sdsnn_bio.model.parameters"] >= {"sdsnn_bio.dynamics"}, "the scan sees imports"
