"""Validation of model constants, shared by the neuron models, synapse models and network parameters.

Each check raises a ``ValueError`` naming ``Owner.field``, the expected unit and range, and the value
received.
"""

from __future__ import annotations

import math

import numpy as np
from brian2 import Quantity, second
from brian2.units.fundamentalunits import DimensionMismatchError, fail_for_dimension_mismatch

__all__ = ["check_time", "check_number"]


def check_time(owner: str, name: str, value, *, allow_zero: bool = False) -> Quantity:
    """Validate that ``value`` is a Brian2 time quantity (and positive).

    Raises
    ------
    ValueError
        Naming ``owner.name``, the expected unit and range, and the value received.
    """
    if not isinstance(value, Quantity):
        raise ValueError(
            f"{owner}.{name}: expected a time with a Brian2 unit (e.g. 20*ms), got {value!r}"
        )
    try:
        fail_for_dimension_mismatch(value, second)
    except DimensionMismatchError:
        raise ValueError(
            f"{owner}.{name}: expected a time (unit of seconds), got {value!r}"
        ) from None
    seconds = float(value / second)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}.{name}: expected a time {bound}, got {value!r}")
    return value


def check_number(owner: str, name: str, value, *, low=-math.inf, high=math.inf) -> None:
    """Validate that ``value`` is a finite dimensionless number in ``[low, high]``.

    Raises
    ------
    ValueError
        Naming ``owner.name``, the expected range and the value received.
    """
    if isinstance(value, Quantity) and not value.is_dimensionless:
        raise ValueError(f"{owner}.{name}: expected a dimensionless number, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{owner}.{name}: expected a number, got {value!r}")
    if not (low <= float(value) <= high) or not math.isfinite(float(value)):
        raise ValueError(f"{owner}.{name}: expected a value in [{low}, {high}], got {value!r}")
