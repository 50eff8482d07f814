"""A validation split carved from the training recordings: stratified by class, fixed by the seed.

Settings (constants, epochs, schedule, learning rate) are chosen on validation accuracy; the test
split is evaluated once, at the end. The validation recordings are taken out of the training
split, so they are never trained on. For every class ``c`` with ``n_c`` training recordings::

    n_validation_c = min(round_half_up(fraction * n_c), n_c - 1)

recordings of class ``c``, drawn without replacement by a generator seeded with ``(seed, 11)``, go
to validation (at least one recording of every class stays in training). The split is a pure
function of the labels, the fraction and the seed: every model of a run, a resumed run and a
rerun get the same split.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["validation_split"]

#: Second word of the split generator's seed, so the split stream differs from the run's others.
_STREAM = 11


def validation_split(labels, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` of a class-stratified validation split.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        Class of each training recording.
    fraction : float
        Share of each class moved to validation, in ``[0, 1)``; 0 gives no validation split.
    seed : int
        The run's seed (``run.seed``).

    Returns
    -------
    train, validation : ndarray of int64
        Sorted, disjoint indices into ``labels`` whose union is ``range(n)``.

    Raises
    ------
    ValueError
        ``fraction`` outside ``[0, 1)``, or a positive fraction too small to give any recording.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction < 1:
        raise ValueError(f"data.validation_fraction: expected a number in [0, 1), got {fraction!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"validation_split: expected labels of shape (n,), got {labels.shape}")
    everything = np.arange(labels.size, dtype=np.int64)
    if fraction == 0:
        return everything, np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([int(seed), _STREAM])
    chosen = []
    for label in np.unique(labels):
        members = everything[labels == label]
        count = min(int(np.floor(fraction * members.size + 0.5)), members.size - 1)
        if count > 0:
            chosen.append(rng.choice(members, size=count, replace=False))
    if not chosen:
        raise ValueError(
            f"data.validation_fraction: {fraction} of {labels.size} training recordings "
            f"({np.unique(labels).size} classes) gives no validation recording; use a larger "
            "fraction or 0 for no validation split"
        )
    validation = np.sort(np.concatenate(chosen)).astype(np.int64)
    train = np.setdiff1d(everything, validation).astype(np.int64)
    return train, validation
