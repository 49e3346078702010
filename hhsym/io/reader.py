"""One entry point for every lab format: :func:`read`."""

from __future__ import annotations

import glob
import os

from hhsym.errors import TraceFileError
from hhsym.io.recording import Recording, select_sweeps  # noqa: F401

__all__ = ["read", "read_hhsym", "FORMATS"]

#: Extension -> format name.
FORMATS = {".abf": "abf", ".nwb": "nwb", ".ibw": "ibw", ".csv": "hhsym", ".npz": "hhsym"}


def read_hhsym(path, sweeps=None):
    """Read hhsym's own ``.csv`` / ``.npz`` traces (µA/cm²) as a :class:`Recording`.

    The file holds current densities; the recording carries a membrane area of 1 cm², so its
    ``I`` (pA) is the density times 10⁶ and :meth:`Recording.to_traces` gives the densities back.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`hhsym.io.Trace.save` or :meth:`~hhsym.io.TraceSet.save`.
    sweeps : int or sequence of int, optional
        Trace indices (from 0); default all.

    Returns
    -------
    Recording
    """
    from hhsym.io import read_traces

    path = os.fspath(path)
    ts = read_traces(path)
    rows = select_sweeps(range(ts.n_traces), sweeps, path)
    meta = {"file": path, "format": "hhsym", "sweep_numbers": rows,
            "units": {"t": "ms", "V": "mV", "I": "µA/cm²"}, "channels": {"V": "V", "I": "I"},
            "current_source": "file", "protocol": str(ts.meta.get("stimulus", "")),
            "hhsym_meta": ts.meta}
    return Recording(ts.t, ts.V[rows], ts.I[rows] * 1e6, meta, area_cm2=1.0)


def _format(path):
    p = os.fspath(path)
    if os.path.isdir(p):
        return "dir"
    ext = os.path.splitext(p)[1].lower()
    if ext not in FORMATS:
        raise TraceFileError(f"{p}: unknown file type {ext or '(no extension)'!r}; accepted: "
                             f"{', '.join(sorted(FORMATS))}")
    return FORMATS[ext]


def read(path, current=None, sweeps=None, channel=None):
    """Read a whole-cell current-clamp recording from ABF, NWB, Igor IBW or hhsym CSV/NPZ.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  For Igor waves, a voltage wave, a glob pattern of them
        (``"B6_Ch3_IDRest_*.ibw"``) or a folder holding them (its ``*_Ch3_*.ibw``).
    current : str or os.PathLike, optional
        Igor only: the current wave(s) (file or pattern); default paired by name
        (``_Ch3_`` -> the ``_Ch<k>_`` wave with a current unit).
    sweeps : int or sequence of int, optional
        Sweep numbers as the file numbers them (ABF: from 0; NWB: ``sweep_number``; Igor: the
        number ending the file name; hhsym: trace index); default all.
    channel : int or str, optional
        ABF: the ADC channel of V (int); NWB: the electrode name; default the first that fits.

    Returns
    -------
    Recording
        Sweeps with t (ms), V (mV), I (pA), the sampling rate and the source metadata.

    Raises
    ------
    TraceFileError
        A missing, corrupt or unknown file, a missing channel, missing or implausible units,
        mismatched V/I lengths; the message names the file and the channel.
    """
    if path is None:
        raise TraceFileError("path: no file given")
    p = os.fspath(path)
    if any(c in p for c in "*?["):
        kind = _format(p.replace("*", "x").replace("?", "x"))
        if kind != "ibw":
            raise TraceFileError(f"{p}: glob patterns are read for Igor .ibw waves only")
    else:
        kind = _format(p)
        if kind == "dir":
            waves = sorted(glob.glob(os.path.join(glob.escape(p), "*_Ch3_*.ibw")))
            if not waves:
                raise TraceFileError(f"{p}: folder without *_Ch3_*.ibw voltage waves")
            p, kind = os.path.join(p, "*_Ch3_*.ibw"), "ibw"
    if current is not None and kind != "ibw":
        raise TraceFileError(f"{p}: channel 'I': current= is for Igor waves (V and I in separate "
                             f"files); a {kind} file holds its own current")
    if kind == "abf":
        from hhsym.io.abf import read_abf

        return read_abf(p, sweeps=sweeps, channel=channel)
    if kind == "nwb":
        from hhsym.io.nwb import read_nwb

        return read_nwb(p, sweeps=sweeps, channel=channel)
    if kind == "ibw":
        from hhsym.io.igor import read_ibw

        return read_ibw(p, current=current, sweeps=sweeps, channel=channel)
    if channel is not None:
        raise TraceFileError(f"{p}: channel {channel!r}: hhsym files have one V and one I column")
    return read_hhsym(p, sweeps=sweeps)
