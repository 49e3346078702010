"""Kernel encoding of stimuli: kind codes, component rows, :func:`encode_stimuli`.

The layout of the ``par`` entries of each kind is given in the docstring of
:mod:`hhsym.stimuli`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hhsym.errors import ArgumentTypeError, invalid
from hhsym.stimuli.base import Stimulus
from hhsym.stimuli.checks import _t_stop

#: Kind codes of the kernel encoding (see the docstring of hhsym.stimuli).  They are
#: repeated in hhsym/integrate/stimulus_kernel.py (tests check both agree).
STEP = 0
RAMP = 1
PULSES = 2
SINE = 3
TABLE_UNIFORM = 4
TABLE_SORTED = 5
#: Number of parameters per component row.
N_PAR = 8


class StimulusComponent(NamedTuple):
    """One row of the kernel encoding of a stimulus.

    Attributes
    ----------
    kind : int
        One of the kind codes ``STEP`` ... ``TABLE_SORTED``.
    par : tuple of float
        ``N_PAR`` parameters (layout in the module docstring).  For table
        kinds ``par[0]`` is the offset into ``data`` *of this component*
        (0); :func:`encode_stimuli` shifts it into the shared array.
    data : numpy.ndarray
        Table values (float64), empty for analytic kinds.
    """

    kind: int
    par: tuple
    data: np.ndarray


def _component(kind, values, data=None):
    par = tuple(float(v) for v in values) + (0.0,) * (N_PAR - len(values))
    if data is None:
        data = np.empty(0, dtype=np.float64)
    return StimulusComponent(kind, par, np.ascontiguousarray(data, dtype=np.float64))


class StimulusTable(NamedTuple):
    """Arrays describing ``N`` stimuli for the numba kernels.

    Attributes
    ----------
    ptr : numpy.ndarray of int64, shape (N + 1,)
        Components of stimulus ``i`` are rows ``ptr[i]:ptr[i + 1]``.
    kind : numpy.ndarray of int64, shape (K,)
        Kind code of each component.
    par : numpy.ndarray of float64, shape (K, 8)
        Parameters of each component (offsets into ``data`` stored as floats).
    data : numpy.ndarray of float64, shape (D,)
        Concatenated tables.
    bp_ptr : numpy.ndarray of int64, shape (N + 1,)
        Breakpoints of stimulus ``i`` are ``bp[bp_ptr[i]:bp_ptr[i + 1]]``.
    bp : numpy.ndarray of float64, shape (B,)
        Sorted breakpoints (ms) in ``(0, t_stop)`` of each stimulus.
    """

    ptr: np.ndarray
    kind: np.ndarray
    par: np.ndarray
    data: np.ndarray
    bp_ptr: np.ndarray
    bp: np.ndarray


def encode_stimuli(stimuli, t_stop):
    """Encode stimuli as flat arrays for :mod:`hhsym.integrate.stimulus_kernel`.

    Parameters
    ----------
    stimuli : Stimulus, None or sequence of (Stimulus or None)
        The stimuli; ``None`` stands for no injected current.  A single
        stimulus is treated as a sequence of one.
    t_stop : float
        End of the simulation (ms); tables (noise) are generated to cover
        ``[0, t_stop]`` and breakpoints are those in ``(0, t_stop)``.

    Returns
    -------
    StimulusTable
        The CSR-style arrays.  A stimulus object listed several times is
        encoded once: its rows are repeated and point to one copy of its
        tables in ``data``.
    """
    t_stop = _t_stop(t_stop)
    if stimuli is None or isinstance(stimuli, Stimulus):
        stimuli = [stimuli]
    try:
        stimuli = list(stimuli)
    except TypeError:
        raise invalid(
            "stimuli", stimuli, "a Stimulus, None or a sequence of them", cls=ArgumentTypeError
        ) from None
    ptr = [0]
    kinds, pars, datas = [], [], []
    bp_ptr = [0]
    bps = []
    offset = 0
    rows_of = {}  # id of a stimulus -> its (kind, par) rows and breakpoints, encoded once
    for i, s in enumerate(stimuli):
        if s is not None and id(s) in rows_of:
            # the same object again (e.g. one stimulus for a parameter sweep): share its
            # rows, and with them its tables in data
            rows, b = rows_of[id(s)]
        elif s is None or isinstance(s, Stimulus):
            comps, b = ([], np.empty(0)) if s is None else (s.encode(t_stop), s.breakpoints(t_stop))
            rows = []
            for c in comps:
                par = list(c.par)
                if c.kind in (TABLE_UNIFORM, TABLE_SORTED):
                    par[0] = float(offset)
                    datas.append(c.data)
                    offset += c.data.size
                rows.append((c.kind, par))
            b = np.asarray(b, dtype=np.float64)
            if s is not None:
                rows_of[id(s)] = rows, b
        else:
            raise invalid(
                f"stimuli[{i}]", s, "a Stimulus or None", cls=ArgumentTypeError
            )
        for kind, par in rows:
            kinds.append(kind)
            pars.append(par)
        ptr.append(len(kinds))
        bps.append(b)
        bp_ptr.append(bp_ptr[-1] + len(b))
    return StimulusTable(
        ptr=np.asarray(ptr, dtype=np.int64),
        kind=np.asarray(kinds, dtype=np.int64),
        par=np.asarray(pars, dtype=np.float64).reshape(len(kinds), N_PAR),
        data=np.concatenate(datas) if datas else np.empty(0, dtype=np.float64),
        bp_ptr=np.asarray(bp_ptr, dtype=np.int64),
        bp=np.concatenate(bps) if bps else np.empty(0, dtype=np.float64),
    )
