"""Small argument checks shared across modules (messages built with :func:`hhsym.errors.invalid`)."""

from __future__ import annotations

import numbers

import numpy as np

from hhsym.errors import ArgumentTypeError, invalid

__all__ = ["check_seed", "check_voltages", "check_output_path"]


def check_seed(value, argument="seed"):
    """Return ``value`` as an int if it is a non-negative integer seed, else raise.

    Parameters
    ----------
    value : int
        Seed of ``numpy.random.default_rng``.
    argument : str
        Argument name for the error message.

    Returns
    -------
    int
    """
    accepted = "a non-negative integer"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise invalid(argument, value, accepted, cls=ArgumentTypeError)
    if int(value) < 0:
        raise invalid(argument, value, accepted)
    return int(value)


def check_voltages(values, argument="V"):
    """Return ``values`` as a float array of finite membrane potentials (mV), else raise.

    Parameters
    ----------
    values : array_like
        Membrane potentials (mV).
    argument : str
        Argument name for the error message.

    Returns
    -------
    ndarray
    """
    accepted = "finite membrane potentials in mV (a number or an array of numbers)"
    if isinstance(values, (str, bytes, dict)):
        raise invalid(argument, values, accepted, cls=ArgumentTypeError)
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise invalid(argument, values, accepted, cls=ArgumentTypeError) from None
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise invalid(argument, f"{bad} among {arr.size} values", accepted)
    return arr


def check_output_path(path, argument="out", suffixes=None, what="file"):
    """Check before any work that ``path`` can be written: its folder exists and is writable.

    Parameters
    ----------
    path : str or os.PathLike
        Where a result will be written.
    argument : str
        Argument (or command-line option) name for the error message.
    suffixes : tuple of str, optional
        Accepted file name endings (e.g. ``(".npz",)``); None accepts any.
    what : str
        ``"file"`` or ``"folder"`` (a folder may not exist yet; its parent must).

    Returns
    -------
    str
        ``path`` as a string.
    """
    import os

    try:
        text = os.fspath(path)
    except TypeError:
        raise invalid(argument, path, f"a {what} path (str or os.PathLike)", cls=ArgumentTypeError) from None
    if not text:
        raise invalid(argument, path, f"a non-empty {what} path")
    if suffixes and not text.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise invalid(argument, text, f"a file name ending in {' or '.join(suffixes)}")
    if what == "folder" and os.path.exists(text) and not os.path.isdir(text):
        raise invalid(argument, text, "a folder (this path is an existing file)")
    if what == "file" and os.path.isdir(text):
        raise invalid(argument, text, "a file path (this path is an existing folder)")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise invalid(argument, text, f"a {what} in an existing folder ({parent} does not exist)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise invalid(argument, text, f"a {what} in a writable folder ({parent} is not writable)")
    if what == "file" and os.path.exists(text) and not os.access(text, os.W_OK):
        raise invalid(argument, text, "a writable file (this one is read-only)")
    return text
