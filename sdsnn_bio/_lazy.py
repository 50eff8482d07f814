"""Lazy re-exports: a package names its public objects without importing the modules that hold them.

Brian2, Matplotlib and SciPy cost seconds to import; ``import sdsnn_bio`` must cost nothing
(nothing runs at import). A package lists ``{public name: submodule}`` and gets a module-level
``__getattr__`` (PEP 562) that imports the submodule on first access, and a ``__dir__`` that shows
the names to tab completion and to Sphinx.
"""

from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str], namespace: dict):
    """Module ``__getattr__`` and ``__dir__`` of ``package`` re-exporting ``exports`` lazily.

    Parameters
    ----------
    package : str
        The importing package's ``__name__``.
    exports : dict of str to str
        Public name -> submodule that defines it, relative to ``package`` (e.g. ``".config"``).
    namespace : dict
        The package's ``globals()``: a resolved name is stored there, so later lookups are plain
        attribute reads.

    Returns
    -------
    (__getattr__, __dir__)
        To be assigned to the package's module-level names of the same spelling.
    """

    def __getattr__(name: str):
        try:
            module_name = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module_name, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
