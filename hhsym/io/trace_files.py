"""Reading traces from ``.csv`` and ``.npz`` files: :func:`read_trace`, :func:`read_traces`."""

from __future__ import annotations

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, TraceFileError
from hhsym.io.trace_checks import _extension
from hhsym.io.csv_io import read_csv
from hhsym.io.npz_io import read_npz
from hhsym.io.trace import Trace
from hhsym.io.trace_set import TraceSet


def _build(cls, path, *args):
    try:
        return cls(*args)
    except (InvalidArgumentError, ArgumentTypeError) as exc:
        raise TraceFileError(f"{path}: {exc}") from None


def read_trace(path):
    """Read one trace from a ``.csv`` or ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`Trace.save` (or any CSV with columns ``t``
        (ms), ``V`` (mV), ``I`` (µA/cm²) and optional state columns).

    Returns
    -------
    Trace
        The trace.

    Raises
    ------
    TraceFileError
        If the file is missing or malformed; the message names the file and
        the line (CSV) or the array (NPZ).
    """
    p, ext = _extension(path, (".csv", ".npz"), TraceFileError)
    if ext == ".csv":
        return _build(Trace, p, *read_csv(p))
    t, V, I, states, meta = read_npz(p)
    if V.ndim == 2:
        if V.shape[0] != 1:
            raise TraceFileError(
                f"{p}: array 'V' holds {V.shape[0]} traces; use read_traces() to read a TraceSet"
            )
        V, I = V[0], I[0]
        states = {n: a[0] for n, a in states.items()}
    return _build(Trace, p, t, V, I, states, meta)


def read_traces(path):
    """Read a :class:`TraceSet` from a ``.npz`` (or one trace from ``.csv``).

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`TraceSet.save` or :meth:`Trace.save`; a single
        trace gives a set of one.

    Returns
    -------
    TraceSet
        The traces.

    Raises
    ------
    TraceFileError
        If the file is missing or malformed.
    """
    p, ext = _extension(path, (".csv", ".npz"), TraceFileError)
    if ext == ".csv":
        return TraceSet.from_traces([_build(Trace, p, *read_csv(p))])
    t, V, I, states, meta = read_npz(p)
    if V.ndim == 1:
        V, I = V[None, :], I[None, :]
        states = {n: a[None, :] for n, a in states.items()}
    return _build(TraceSet, p, t, V, I, states, meta)
