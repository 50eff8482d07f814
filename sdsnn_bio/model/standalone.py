"""The network of record compiled by Brian2's C++ standalone device, for fast evaluation.

Brian2's runtime device (:class:`~sdsnn_bio.model.SpikingNetwork` under the Cython or numpy
target) calls every code object from Python at every time step; on the main 2312-800-10 network
that per-step cost is as large as the synaptic propagation itself. The ``cpp_standalone`` device
turns the same Brian2 objects (the same ``SpikingNetwork``, the same equations, connectivity,
weights, sample resets and monitors) into one C++ program whose time loop runs without Python.
Only the spine state is left at zero (``spine_state=False``): it never enters the dynamics, and
copying it would add nine arrays per synapse to write and read for every run.

:func:`present_standalone` presents many samples in batches: each batch is one run of the program,
with the samples one after the other in time as :meth:`SpikingNetwork.present` places them (the
``run_regularly`` sample reset separates them). Brian2 cannot change a ``SpikeGeneratorGroup``'s
spikes between runs of a compiled program, so every batch is built again; to keep the generated
C++ code identical (and hence compiled once), every batch simulates the same number of sample
windows (a short last batch is completed with empty windows) and hands the same number of input
spikes to the ``SpikeGeneratorGroup`` (the samples' spikes, then spikes placed after the end of the
run, never emitted). Only the data files change between batches (Brian2 may still order a few
initialisation lines of ``main.cpp`` differently, which recompiles that one file). Large batches
spread the fixed cost of a run (a build, the data files) over more samples. Direct (analog) input
goes to the input group's ``TimedArray``, padded with zero rows to the same number of windows.

Pruned synapses are absent, as in the runtime network: the standalone ``Synapses`` are built from
the structure's existing ``(i, j)`` pairs. A structure with other connectivity (or a network of
another size) changes the generated code; ``make`` then recompiles the few files that changed.

The project directory holds the generated code, its compiled objects, the data files and the
results of the last batch; a lock file inside it serialises processes sharing it, and the data
files (hundreds of MiB for the main network) are removed after every batch.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
from pathlib import Path

import numpy as np

from ..structure import Structure
from .network import Recording, SpikingNetwork
from .parameters import NetworkParameters

__all__ = ["STANDALONE_SUBDIRECTORY", "default_standalone_directory", "present_standalone"]

#: Subdirectory of a code cache directory (``simulation.cache_dir``) holding the standalone project.
STANDALONE_SUBDIRECTORY = "cpp_standalone"


def default_standalone_directory() -> Path:
    """The standalone project directory used when no cache directory is configured.

    ``$XDG_CACHE_HOME/sdsnn_bio/cpp_standalone`` (``~/.cache/sdsnn_bio/cpp_standalone``).
    """
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "sdsnn_bio" / STANDALONE_SUBDIRECTORY


@contextlib.contextmanager
def _standalone_device(directory: Path):
    """Brian2's ``cpp_standalone`` device inside the block; the previous device afterwards.

    Brian2's device is process-wide: it is set here, for the block only, and its state is
    cleared on the way out whatever happens inside.
    """
    from brian2 import device, get_device, prefs, set_device
    from brian2.devices.device import reset_device

    # Objects of an earlier build still alive would keep their names, and the new objects would get
    # suffixed names (new code, recompiled): free them first.
    gc.collect()
    # Brian2's default ``make -j`` starts one compiler per source file at once (dozens): as many
    # jobs as this process may use cores instead.
    make_args = prefs.devices.cpp_standalone.extra_make_args_unix
    prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{_cores()}"]
    set_device("cpp_standalone", build_on_run=False, directory=str(directory))
    try:
        yield get_device()
    finally:
        device.reinit()
        reset_device()
        prefs.devices.cpp_standalone.extra_make_args_unix = make_args
        gc.collect()


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _clear_data(directory: Path) -> None:
    """Remove the data files (static arrays, results) of the last build; keep code and objects."""
    for name in ("static_arrays", "results"):
        shutil.rmtree(directory / name, ignore_errors=True)


def present_standalone(structure: Structure, params: NetworkParameters, samples, *, batch_size: int,
                       directory: str | Path, record_potentials: tuple[str, ...] = ("output",)):
    """Present ``samples`` to the network of record compiled by Brian2's C++ standalone device.

    Parameters
    ----------
    structure : Structure
        Populations and projections (weights, spine state, alive masks, existing synapses).
    params : NetworkParameters
        Neuron models and time grid.
    samples : sequence of (channels, steps), or of intensity vectors
        Input spikes per sample, or direct input (``params.direct_input``), as for
        :meth:`SpikingNetwork.present`.
    batch_size : int
        Samples per run of the compiled program (>= 1). Larger batches spread the fixed cost of a
        run (building the Brian2 objects, writing and reading their data files) over more samples.
    directory : path
        Standalone project directory (created if missing); reusing it across calls reuses the
        compiled code. Processes sharing it take turns (a lock file inside it).
    record_potentials : tuple of str
        Neuron groups whose potential is recorded (as for :class:`SpikingNetwork`).

    Yields
    ------
    Recording
        One per batch of ``batch_size`` samples (fewer in the last), in order, equal spike for spike
        to what :meth:`SpikingNetwork.present` records for the same batch.

    Raises
    ------
    RuntimeError
        If the C++ program cannot be compiled or run (Brian2's message names the project
        directory); Brian2 needs a C++ compiler for this device.
    """
    from brian2.utils.filelock import FileLock

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"present_standalone: batch_size: expected an integer >= 1, got {batch_size!r}")
    samples = list(samples)
    if not samples:
        raise ValueError("present_standalone: expected at least one sample, got none")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    batches = [samples[k:k + batch_size] for k in range(0, len(samples), batch_size)]
    windows = len(batches[0])
    # Direct input: the intensities go to a TimedArray of n_samples rows, not to spikes (n_spikes unused).
    spikes = 0 if params.direct_input else max(
        sum(int(np.size(channels)) for channels, _ in batch) for batch in batches)
    for batch in batches:
        with FileLock(str(directory / "sdsnn_bio.lock")):
            try:
                with _standalone_device(directory):
                    network = SpikingNetwork(structure, params, record_potentials=record_potentials,
                                             spine_state=False)
                    recording: Recording = network.present_standalone(
                        batch, n_samples=windows, n_spikes=spikes, directory=directory
                    )
                    del network
            finally:
                _clear_data(directory)
        yield recording
