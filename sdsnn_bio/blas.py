"""OpenBLAS's idle worker threads: a short spin time for the command-line entry points.

NumPy (and SciPy) compute their matrix products with OpenBLAS. After each product, OpenBLAS keeps
its worker threads spinning, waiting for the next one, for up to ``2**OPENBLAS_THREAD_TIMEOUT``
cycles before they sleep (OpenBLAS's default is 28: about 0.1 s at 2-3 GHz). The learner's compiled
kernels run on their own threads right after such a product, and a spinning OpenBLAS thread takes
one of their cores: on the 2-core benchmark machine the N-MNIST SCNN trained 1.14x faster with
``OPENBLAS_THREAD_TIMEOUT=4`` (the shortest OpenBLAS accepts: it raises 1-3 to 4), the dense
2312-512-10 network no faster (docs/benchmarks.md, "OpenBLAS thread timeout").

OpenBLAS reads the variable once, when it is loaded, that is when NumPy is first imported; set
later, it changes nothing. The package therefore cannot set it for a library user (nothing runs at
``import sdsnn_bio``, and NumPy may be loaded before it): the ``sdsnn-bio`` command (and
``python -m sdsnn_bio``) calls :func:`prefer_short_thread_timeout` first thing, before anything
imports NumPy, and the benchmark scripts do the same or pass the variable to their worker processes
(:func:`with_short_thread_timeout`). A value the user set is always kept. In a script or notebook,
set it yourself before the first ``import numpy``::

    import os
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    import numpy as np
    import sdsnn_bio

or in the shell: ``OPENBLAS_THREAD_TIMEOUT=4 python my_script.py``. Processes started afterwards
(Dask's local sweep workers, subprocesses) inherit it from the environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping

__all__ = [
    "OPENBLAS_THREAD_TIMEOUT",
    "SHORT_THREAD_TIMEOUT",
    "prefer_short_thread_timeout",
    "with_short_thread_timeout",
    "describe_thread_timeout",
]

logger = logging.getLogger(__name__)

#: The environment variable OpenBLAS reads when it is loaded: idle workers spin 2**value cycles.
OPENBLAS_THREAD_TIMEOUT = "OPENBLAS_THREAD_TIMEOUT"
#: 2**4 cycles, OpenBLAS's shortest spin (values 1-3 are raised to 4; 0 or unset means 28).
SHORT_THREAD_TIMEOUT = "4"


def prefer_short_thread_timeout(
    environ: MutableMapping[str, str] | None = None, modules: Mapping[str, object] | None = None
) -> bool:
    """Give this process's OpenBLAS a short thread timeout, if it is unset and can still take effect.

    Sets ``OPENBLAS_THREAD_TIMEOUT`` to :data:`SHORT_THREAD_TIMEOUT` (``setdefault``: a value the
    user set, even an empty one, is kept), unless NumPy is already imported: OpenBLAS has then read
    the environment already, and the call does nothing (logged at debug level). Call it at the very
    start of a program, before anything imports NumPy; command-line entry points do, the library
    never does.

    Parameters
    ----------
    environ : mutable mapping of str to str, optional
        The environment to change (default: ``os.environ``, which child processes inherit).
    modules : mapping of str to module, optional
        The modules imported so far (default: ``sys.modules``).

    Returns
    -------
    bool
        True when the variable was set here, False when the user's value was kept or NumPy was
        already imported.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if OPENBLAS_THREAD_TIMEOUT in environ:
        logger.debug("%s=%s kept (set by the user)", OPENBLAS_THREAD_TIMEOUT, environ[OPENBLAS_THREAD_TIMEOUT])
        return False
    if "numpy" in modules:
        logger.debug("%s not set: NumPy is already imported, so OpenBLAS has read its environment",
                     OPENBLAS_THREAD_TIMEOUT)
        return False
    environ[OPENBLAS_THREAD_TIMEOUT] = SHORT_THREAD_TIMEOUT
    logger.debug("%s=%s set for this process and its children", OPENBLAS_THREAD_TIMEOUT, SHORT_THREAD_TIMEOUT)
    return True


def with_short_thread_timeout(environment: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environment`` for a new process, with the short OpenBLAS thread timeout by default.

    Parameters
    ----------
    environment : mapping of str to str
        A process environment (e.g. ``os.environ``); not changed.

    Returns
    -------
    dict of str to str
        The copy, with ``OPENBLAS_THREAD_TIMEOUT`` = :data:`SHORT_THREAD_TIMEOUT` unless
        ``environment`` sets it.
    """
    copy = dict(environment)
    copy.setdefault(OPENBLAS_THREAD_TIMEOUT, SHORT_THREAD_TIMEOUT)
    return copy


def describe_thread_timeout(environment: Mapping[str, str] | None = None) -> str:
    """The OpenBLAS thread timeout that ``environment`` gives, for a benchmark's report.

    Parameters
    ----------
    environment : mapping of str to str, optional
        A process environment (default: ``os.environ``).

    Returns
    -------
    str
        ``"OPENBLAS_THREAD_TIMEOUT=4"``, or ``"OPENBLAS_THREAD_TIMEOUT unset (OpenBLAS default 28)"``.
    """
    environment = os.environ if environment is None else environment
    if OPENBLAS_THREAD_TIMEOUT not in environment:
        return f"{OPENBLAS_THREAD_TIMEOUT} unset (OpenBLAS default 28)"
    return f"{OPENBLAS_THREAD_TIMEOUT}={environment[OPENBLAS_THREAD_TIMEOUT]}"
