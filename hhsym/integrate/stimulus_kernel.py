"""Numba evaluation of stimuli encoded by :func:`hhsym.stimuli.encode_stimuli`.

Arrays and floats in, floats out.  The arithmetic mirrors the Python
``Stimulus.__call__`` of :mod:`hhsym.stimuli` operation for operation, so both
agree to rounding error.  Times in ms, currents in µA/cm².
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["stim_at", "stim_in", "next_breakpoint", "piecewise_constant", "constant_segment"]

# Kind codes, identical to those of hhsym.stimuli (a test checks it).  They are
# spelled out here rather than imported so that changing them changes this
# file, which invalidates numba's on-disk cache (it freezes global constants).
STEP = 0
RAMP = 1
PULSES = 2
SINE = 3
TABLE_UNIFORM = 4
TABLE_SORTED = 5


@numba.njit(cache=True)
def _component(j, t, kind, par, data):
    """Value (µA/cm²) of component row ``j`` at time ``t`` (ms), right-continuous."""
    k = kind[j]
    if k == STEP:
        if t >= par[j, 1] and t < par[j, 2]:
            return par[j, 0]
        return 0.0
    if k == RAMP:
        a0 = par[j, 0]
        a1 = par[j, 1]
        t0 = par[j, 2]
        t1 = par[j, 3]
        if t >= t0 and t < t1:
            return a0 + (a1 - a0) * ((t - t0) / (t1 - t0))
        return 0.0
    if k == PULSES:
        amp = par[j, 0]
        width = par[j, 1]
        period = par[j, 2]
        start = par[j, 3]
        stop = par[j, 4]
        if not (t >= start and t < stop):
            return 0.0
        n = np.floor((t - start) / period)
        onset = start + n * period
        if onset > t:
            n -= 1.0
        elif start + (n + 1.0) * period <= t:
            n += 1.0
        onset = start + n * period
        if t < onset + width:
            return amp
        return 0.0
    if k == SINE:
        if t >= par[j, 4] and t < par[j, 5]:
            return par[j, 3] + par[j, 0] * math.sin(
                2.0 * math.pi * par[j, 1] * t / 1000.0 + par[j, 2]
            )
        return 0.0
    # tables
    off = int(par[j, 0])
    n = int(par[j, 1])
    lo = par[j, 4]
    hi = par[j, 5]
    if t < lo or t > hi or (t == hi and par[j, 6] == 0.0):
        return 0.0
    if k == TABLE_UNIFORM:
        u = (t - par[j, 2]) / par[j, 3]
        i = np.floor(u)
        if i < 0.0:
            i = 0.0
        elif i > n - 2:
            i = float(n - 2)
        w = u - i
        if w < 0.0:
            w = 0.0
        elif w > 1.0:
            w = 1.0
        m = off + int(i)
        return data[m] + w * (data[m + 1] - data[m])
    if k == TABLE_SORTED:
        # largest i with tt[i] <= t, clipped to [0, n - 2]
        a = 0
        b = n
        while a < b:
            mid = (a + b) // 2
            if data[off + mid] <= t:
                a = mid + 1
            else:
                b = mid
        i = a - 1
        if i < 0:
            i = 0
        elif i > n - 2:
            i = n - 2
        ti = data[off + i]
        ti1 = data[off + i + 1]
        yi = data[off + n + i]
        yi1 = data[off + n + i + 1]
        return yi + (t - ti) * ((yi1 - yi) / (ti1 - ti))
    return math.nan  # unknown kind: never silent


@numba.njit(cache=True, inline="always")  # inlined: called 3x per neuron per step
def stim_at(i, t, ptr, kind, par, data):
    """Right-continuous value of stimulus ``i`` at time ``t``.

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    t : float
        Time (ms).
    ptr, kind, par, data : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    float
        Injected current (µA/cm²).
    """
    s = 0.0
    for j in range(ptr[i], ptr[i + 1]):
        s += _component(j, t, kind, par, data)
    return s


@numba.njit(cache=True, inline="always")  # inlined: called 3x per neuron per step
def stim_in(i, t, lo, hi, ptr, kind, par, data):
    """Value of stimulus ``i`` at ``t`` as seen from inside the step ``[lo, hi]``.

    Evaluates at ``min(max(t, lo + eps), hi - eps)`` with
    ``eps = 1e-9 * (hi - lo)``: at a jump coinciding with ``lo`` this is the
    value after the jump, at ``hi`` the value before it (one-sided limits),
    so an integration step never straddles a discontinuity.

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    t : float
        Time (ms) of the evaluation, normally within ``[lo, hi]``.
    lo, hi : float
        Start and end (ms) of the integration step, ``lo < hi``.
    ptr, kind, par, data : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    float
        Injected current (µA/cm²).
    """
    eps = 1e-9 * (hi - lo)
    tt = min(max(t, lo + eps), hi - eps)
    return stim_at(i, tt, ptr, kind, par, data)


@numba.njit(cache=True)
def next_breakpoint(i, t, bp_ptr, bp):
    """First breakpoint of stimulus ``i`` strictly after ``t`` (ms), or ``inf``.

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    t : float
        Time (ms).
    bp_ptr, bp : numpy.ndarray
        The breakpoint fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    float
        The breakpoint time (ms), ``inf`` if there is none after ``t``.
    """
    a = bp_ptr[i]
    b = bp_ptr[i + 1]
    while a < b:
        mid = (a + b) // 2
        if bp[mid] <= t:
            a = mid + 1
        else:
            b = mid
    if a < bp_ptr[i + 1]:
        return bp[a]
    return np.inf


@numba.njit(cache=True)
def piecewise_constant(i, ptr, kind):
    """Whether stimulus ``i`` is constant between its breakpoints (only steps and pulse trains).

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    ptr, kind : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    bool
    """
    for j in range(ptr[i], ptr[i + 1]):
        if kind[j] != STEP and kind[j] != PULSES:
            return False
    return True


@numba.njit(cache=True)
def constant_segment(i, t, bp_ptr, bp):
    """The breakpoints ``(lo, hi)`` around ``t``: last one ``<= t`` and first one ``> t`` (ms).

    ``-inf`` / ``inf`` where there is none.  For a stimulus for which
    :func:`piecewise_constant` holds, the current is constant on
    ``(lo + tol, hi)``, with ``tol`` the breakpoint merging tolerance
    (``1e-11 * max(1, |lo|)`` ms, see ``Stimulus.breakpoints``).

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    t : float
        Time (ms).
    bp_ptr, bp : numpy.ndarray
        The breakpoint fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    tuple of float
    """
    a = bp_ptr[i]
    b = bp_ptr[i + 1]
    while a < b:
        mid = (a + b) // 2
        if bp[mid] <= t:
            a = mid + 1
        else:
            b = mid
    lo = bp[a - 1] if a > bp_ptr[i] else -np.inf
    hi = bp[a] if a < bp_ptr[i + 1] else np.inf
    return lo, hi
