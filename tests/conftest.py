"""Shared test fixtures: Brian2 runs on the numpy target (no compilation) and is reset per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: The real N-MNIST recording (a "4"; Orchard et al. 2015), kept inside the repository so that a
#: plain clone passes: tests never read outside it.
SAMPLE_NMNIST = Path(__file__).resolve().parent / "data" / "sample_nmnist.bin"


@pytest.fixture(autouse=True)
def brian2_numpy_target():
    """Every test starts from Brian2's numpy target and a clean magic network."""
    import brian2

    brian2.prefs.codegen.target = "numpy"
    # Networks that a test builds but never runs (error paths) are deleted unrun: that is intended.
    brian2.BrianLogger.suppress_name("unused_brian_object")
    brian2.start_scope()
    yield
    brian2.prefs.codegen.target = "numpy"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def embedded_cache(tmp_path_factory) -> Path:
    """One embedded-dataset cache shared by every test that runs on it (generating it takes a while)."""
    from sdsnn_bio.data import load_dataset

    cache = tmp_path_factory.mktemp("embedded_cache")
    dataset = load_dataset(None, "train", cache_dir=cache)
    assert len(dataset) > 0, "the embedded dataset was generated into the shared cache"
    return cache
