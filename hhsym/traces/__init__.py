r"""Recorded (or simulated) traces: time, membrane voltage and injected current.

A :class:`Trace` is what a lab records: samples of time ``t`` (ms), membrane
voltage ``V`` (mV) and injected current ``I`` (µA/cm², positive =
depolarising), plus, when simulated, the hidden states (gates ...).  A
:class:`TraceSet` holds several traces on one time grid.

Files
-----
CSV (one trace)
    Optional leading comment lines ``# key: <JSON value>`` carrying ``meta``,
    a header line ``t,V,I[,state,...]`` and one row per sample; floats are
    written with ``repr`` so that float64 values read back bit-exactly.
    Other ``#`` lines and blank lines are ignored; the columns ``t``, ``V``,
    ``I`` may come in any order, further columns are states.
NPZ (one trace or a set)
    Arrays ``t``, ``V``, ``I`` (1-D for a trace, ``(n_traces, n_samples)``
    for a set), ``state_<name>`` for each state, ``meta`` (a JSON string) and
    ``format``; written without pickles and read with ``allow_pickle=False``.

All writing is atomic: the data goes to a temporary file in the target
directory, is flushed and fsync'ed, and then replaces the target with
:func:`os.replace`; a failure midway leaves any previous file untouched.
"""

from hhsym.atomic import atomic_write
from hhsym.traces.read import read_trace, read_traces
from hhsym.traces.trace import Trace
from hhsym.traces.trace_set import TraceIndexError, TraceSet

__all__ = ["Trace", "TraceSet", "read_trace", "read_traces", "TraceIndexError", "atomic_write"]
