"""The package's public face: lazy top-level entry points and an ``__all__`` in every subpackage."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import sdsnn_bio

ENTRY_POINTS = ["load_config", "run_experiment", "plot_results", "SpikingNetwork",
                "StructuralScheduler", "load_dataset", "load_embedded"]


def _packages() -> list[str]:
    names = [sdsnn_bio.__name__]
    for info in pkgutil.walk_packages(sdsnn_bio.__path__, prefix="sdsnn_bio."):
        if info.ispkg:
            names.append(info.name)
    return names


def test_the_entry_points_users_type_are_exported():
    missing = [name for name in ENTRY_POINTS if name not in sdsnn_bio.__all__]
    assert not missing, f"sdsnn_bio.__all__ lacks the entry points {missing}"
    assert callable(sdsnn_bio.run_experiment) and callable(sdsnn_bio.plot_results)
    from sdsnn_bio.config import load_config
    from sdsnn_bio.plotting import plot_results

    assert sdsnn_bio.load_config is load_config, "the re-export is the object itself, not a wrapper"
    assert sdsnn_bio.plot_results is plot_results


def test_importing_the_package_imports_nothing_heavy():
    code = ("import sys, sdsnn_bio, sdsnn_bio.learning; "
            "print(sorted(m for m in ('brian2', 'matplotlib', 'scipy', 'numba', 'sklearn') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]", f"import sdsnn_bio imported {completed.stdout.strip()}"


@pytest.mark.parametrize("package", _packages())
def test_every_package_declares_its_public_names(package: str):
    module = importlib.import_module(package)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{package} has no __all__"
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{package}.__all__ lists a name twice"
    for name in names:
        value = getattr(module, name)  # raises AttributeError for a name that does not exist
        owner = getattr(value, "__module__", None)
        if owner is not None and not name.startswith("__"):
            assert owner.startswith("sdsnn_bio"), f"{package}.{name} comes from {owner}, not sdsnn_bio"
    assert set(names) <= set(dir(module)), f"dir({package}) hides some of its public names"


def test_unknown_names_raise_attribute_error_naming_the_package():
    with pytest.raises(AttributeError, match="module 'sdsnn_bio' has no attribute 'load_confg'"):
        sdsnn_bio.load_confg  # noqa: B018 - the misspelling is the point
    with pytest.raises(AttributeError, match="'sdsnn_bio.learning' has no attribute"):
        importlib.import_module("sdsnn_bio.learning").Lerner  # noqa: B018


def test_every_public_module_is_in_the_api_reference():
    """A new module gets its line in docs/api.rst (an ``.. automodule::``), or the reference misses it."""
    from pathlib import Path

    api = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text(encoding="utf-8")
    modules = [info.name for info in pkgutil.walk_packages(sdsnn_bio.__path__, prefix="sdsnn_bio.")
               if not any(part.startswith("_") for part in info.name.split("."))]
    missing = [name for name in modules if f".. automodule:: {name}\n" not in api]
    assert not missing, f"docs/api.rst has no '.. automodule::' for {missing}"
