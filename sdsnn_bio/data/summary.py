"""Statistics of event recordings: events per sample, per saccade, ON/OFF balance.

Used to calibrate the emulated camera against a real N-MNIST recording (``docs/data.md``) and
printed by ``python -m sdsnn_bio.data describe``. Saccade ``i`` is the window
``[i, i + 1) * 100 ms`` (the last window is open-ended), the first one being tonic's
``first_saccade_only`` cut.
"""

from __future__ import annotations

import numpy as np

from .nmnist import FIRST_SACCADE_US

__all__ = ["recording_statistics", "describe_recordings", "format_table"]

_SACCADE_EDGES_US = (0, FIRST_SACCADE_US, 2 * FIRST_SACCADE_US)


def recording_statistics(events) -> dict:
    """Counts of one recording.

    Returns
    -------
    dict
        ``events``, ``saccade_1``, ``saccade_2``, ``saccade_3`` (events in ``[0, 100)``,
        ``[100, 200)`` and ``[200, inf)`` ms), ``on`` and ``off`` (``p == 1`` / ``p == 0``),
        ``on_fraction``, ``t_first_us``, ``t_last_us``, ``active_pixels``.
    """
    t = np.asarray(events["t"])
    p = np.asarray(events["p"])
    n = int(t.size)
    on = int(np.count_nonzero(p == 1))
    edges = list(_SACCADE_EDGES_US) + [np.inf]
    saccades = [int(np.count_nonzero((t >= lo) & (t < hi))) for lo, hi in zip(edges[:-1], edges[1:])]
    pixels = np.unique(np.asarray(events["y"]).astype(np.int64) * 256 + np.asarray(events["x"]))
    return {
        "events": n,
        "saccade_1": saccades[0],
        "saccade_2": saccades[1],
        "saccade_3": saccades[2],
        "on": on,
        "off": int(np.count_nonzero(p == 0)),
        "on_fraction": on / n if n else float("nan"),
        "t_first_us": int(t.min()) if n else None,
        "t_last_us": int(t.max()) if n else None,
        "active_pixels": int(pixels.size),
    }


_KEYS = ("events", "saccade_1", "saccade_2", "saccade_3", "on", "off", "on_fraction", "active_pixels")


def describe_recordings(recordings) -> dict:
    """Mean and standard deviation of :func:`recording_statistics` over recordings.

    Parameters
    ----------
    recordings : iterable
        Event arrays, or ``(events, label)`` pairs (a dataset).

    Returns
    -------
    dict
        ``n`` (recordings) and, for each statistic, ``{"mean": ..., "sd": ...}`` (population sd).
    """
    rows = []
    for item in recordings:
        events = item[0] if isinstance(item, tuple) else item
        rows.append(recording_statistics(events))
    out: dict = {"n": len(rows)}
    for key in _KEYS:
        values = np.asarray([row[key] for row in rows], dtype=np.float64)
        out[key] = {
            "mean": float(values.mean()) if values.size else float("nan"),
            "sd": float(values.std()) if values.size else float("nan"),
        }
    return out


def format_table(columns: dict) -> str:
    """A Markdown table: one row per statistic, one column per description (``mean +- sd``)."""
    names = list(columns)
    lines = ["| statistic | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines.append("| recordings | " + " | ".join(str(columns[n]["n"]) for n in names) + " |")
    for key in _KEYS:
        cells = []
        for name in names:
            entry = columns[name][key]
            digits = 3 if key == "on_fraction" else 0
            if columns[name]["n"] == 1:
                cells.append(f"{entry['mean']:.{digits}f}")
            else:
                cells.append(f"{entry['mean']:.{digits}f} ± {entry['sd']:.{digits}f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
