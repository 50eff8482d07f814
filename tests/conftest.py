"""Shared test fixtures.

Brian2 runs on the numpy target (no compilation) and is reset per test; the examples run once per
session, for their own tests and for the documentation build.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

#: The real N-MNIST recording (a "4"; Orchard et al. 2015), kept inside the repository so that a
#: plain clone passes: tests never read outside it.
SAMPLE_NMNIST = Path(__file__).resolve().parent / "data" / "sample_nmnist.bin"
REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPOSITORY / "examples").glob("[0-9]*.py"))
#: Seconds after which an example's run is stopped and recorded as failed.
EXAMPLE_TIMEOUT_SECONDS = 600


def _load_example_runner():
    """Load ``docs/_ext/sdsnn_example_runner.py``, the gallery's cell runner, by its path.

    The package does not depend on docs/, and nothing is added to ``sys.path``.
    """
    path = REPOSITORY / "docs" / "_ext" / "sdsnn_example_runner.py"
    spec = importlib.util.spec_from_file_location("sdsnn_example_runner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example_runner = _load_example_runner()


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


def loss_central_difference(learner, batch, labels, forward, weight: np.ndarray, index: tuple,
                            eps: float = 1e-6) -> float:
    """``dL/dweight[index]`` by central differences of ``learner.loss``, with the spikes held fixed.

    ``weight`` is an array the learner reads (a projection's weights); ``weight[index]`` is moved
    by ``+eps`` and ``-eps`` (and restored), and every layer's spikes must stay those of
    ``forward`` (``learner.simulate(batch)``), so that the difference is the exact derivative that
    BPTT computes, up to rounding.
    """
    original = weight[index]
    values = []
    try:
        for sign in (+1, -1):
            weight[index] = original + sign * eps
            perturbed = learner.simulate(batch)
            for name in forward.order:
                assert np.array_equal(perturbed.traces[name].spikes, forward.traces[name].spikes), (
                    f"moving weight {index} by {sign * eps:g} changed the spikes of {name}")
            values.append(learner.loss(perturbed, labels)[0])
    finally:
        weight[index] = original
    return (values[0] - values[1]) / (2 * eps)


@pytest.fixture(scope="session")
def embedded_cache(tmp_path_factory) -> Path:
    """One embedded-dataset cache shared by every test that runs on it (generating it takes a while)."""
    from sdsnn_bio.data import load_dataset

    cache = tmp_path_factory.mktemp("embedded_cache")
    dataset = load_dataset(None, "train", cache_dir=cache)
    assert len(dataset) > 0, "the embedded dataset was generated into the shared cache"
    return cache


def _tree(folder: Path) -> dict[str, float]:
    """Files under ``folder`` with their modification times (empty if it does not exist)."""
    if not folder.is_dir():
        return {}
    return {str(p): p.stat().st_mtime for p in folder.rglob("*") if p.is_file()}


class ExampleRuns:
    """Each example run at most once per session, in quick mode, cell by cell by the gallery's runner.

    ``runs(example)`` runs it on first use into ``<folder>/<stem>/`` (``run.json``, ``figures/``,
    ``runs/``; see ``docs/_ext/sdsnn_example_runner.py``) and returns its record, to which it adds
    ``"wrote_into_repository"``: the folders of the repository where the example would write
    outside quick mode and that changed during its run (it must be empty). A failing example is
    recorded, not raised, so that its own test reports it. ``folder`` is what the documentation
    build takes as ``sdsnn_gallery_results``.
    """

    def __init__(self, folder: Path, cache: Path) -> None:
        self.folder = folder
        self._cache = cache
        self._records: dict[str, dict] = {}

    def __call__(self, example: Path) -> dict:
        """The record of ``example``'s run (run now if it has not run in this session)."""
        if example.stem not in self._records:
            env = {"SDSNN_BIO_CACHE": str(self._cache),
                   # The package of this checkout, not whichever copy is installed (e.g. editable elsewhere).
                   "PYTHONPATH": os.pathsep.join([str(REPOSITORY), *filter(None, [os.environ.get("PYTHONPATH")])])}
            # Where the example would write by default outside quick mode (relative to the working folder).
            watched = [REPOSITORY / "figures" / example.stem, REPOSITORY / "runs" / example.stem,
                       REPOSITORY / "examples" / "figures"]
            before = [_tree(folder) for folder in watched]
            record = example_runner.run_example(example, REPOSITORY, self.folder / example.stem, env=env,
                                                timeout=EXAMPLE_TIMEOUT_SECONDS)
            record["wrote_into_repository"] = [str(folder) for folder, old in zip(watched, before)
                                               if _tree(folder) != old]
            print(f"{example.name}: {record['seconds']:.1f} s in quick mode, cell by cell")
            self._records[example.stem] = record
        return self._records[example.stem]

    def all(self) -> dict[str, dict]:
        """Every example of ``examples/`` run (those not run yet are run now), by stem."""
        return {example.stem: self(example) for example in EXAMPLES}


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory, embedded_cache: Path) -> ExampleRuns:
    """The examples' quick-mode runs, shared by ``test_examples.py`` and ``test_docs.py``."""
    return ExampleRuns(tmp_path_factory.mktemp("example_runs"), embedded_cache)
