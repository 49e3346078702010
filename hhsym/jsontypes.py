"""Plain JSON types from numpy-laden values (one helper for every file hhsym writes)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["json_types"]


def json_types(obj, nonfinite="null"):
    """Convert ``obj`` to plain JSON types, recursively.

    Dict keys become ``str``; tuples and arrays become lists; numpy scalars
    become Python ``bool``/``int``/``float``; other values pass through.

    Parameters
    ----------
    obj : object
        A value made of dicts, lists, tuples, numpy arrays and scalars.
    nonfinite : {"null", "keep"}
        Non-finite floats become ``None`` (JSON ``null``, readable by any JSON
        reader) or are kept (Python's ``json`` writes ``NaN``/``Infinity``;
        hhsym's own fit files use this to round-trip ``inf`` costs exactly).

    Returns
    -------
    object
    """
    if isinstance(obj, dict):
        return {str(k): json_types(v, nonfinite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_types(v, nonfinite) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_types(obj.tolist(), nonfinite)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and nonfinite == "null" and not math.isfinite(obj):
        return None
    return obj
