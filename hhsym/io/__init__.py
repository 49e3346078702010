r"""Recordings in and out: hhsym's traces (CSV/NPZ) and lab files (ABF, NWB, Igor IBW).

A :class:`Trace` is what the estimators take: samples of time ``t`` (ms),
membrane voltage ``V`` (mV) and injected current ``I`` (µA/cm², positive =
depolarising), plus, when simulated, the hidden states; a :class:`TraceSet`
holds several on one time grid.  :func:`read_trace`/:func:`read_traces` read
hhsym's own files:

CSV (one trace)
    Optional leading comment lines ``# key: <JSON value>`` carrying ``meta``,
    a header line ``t,V,I[,state,...]`` and one row per sample; floats are
    written with ``repr`` so that float64 values read back bit-exactly.
NPZ (one trace or a set)
    Arrays ``t``, ``V``, ``I``, ``state_<name>``, ``meta`` (JSON) and
    ``format``; written without pickles, read with ``allow_pickle=False``.

:func:`read` reads a lab file into a :class:`Recording` (t ms, V mV, I pA, as
the whole cell gives them); :meth:`Recording.to_traces` turns it into traces
in µA/cm² through a stated or estimated membrane area.  :func:`load_for_cli`
reads any of these files for the command line.  Measurements on recordings
(passive properties, eFEL features, noise) live in :mod:`hhsym.analysis`.

All writing is atomic (:mod:`hhsym.atomic`).  The lab readers (pyabf, pynwb,
igor2) load only when used.
"""

from hhsym.io.reader import read
from hhsym.io.recording import Recording
from hhsym.io.trace import Trace
from hhsym.io.trace_files import read_trace, read_traces
from hhsym.io.trace_set import TraceIndexError, TraceSet

__all__ = ["Trace", "TraceSet", "TraceIndexError", "read_trace", "read_traces", "read", "Recording",
           "load_for_cli"]


def __getattr__(name):
    if name == "load_for_cli":
        from hhsym.io.cli import load_for_cli

        return load_for_cli
    raise AttributeError(f"module 'hhsym.io' has no attribute {name!r}")
