"""Numba evaluation of stimuli encoded by :func:`hhsym.stimuli.encode_stimuli`.

Arrays and floats in, floats out.  The arithmetic mirrors the Python
``Stimulus.__call__`` of :mod:`hhsym.stimuli` operation for operation, so both
agree to rounding error.  Times in ms, currents in µA/cm².
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["stim_at", "stim_in", "next_breakpoint", "piecewise_constant", "constant_segment",
           "stimulus_class", "shared_table_grid", "stage_currents", "GENERAL", "CONSTANT", "UNIFORM"]

# Kind codes, identical to those of hhsym.stimuli (a test checks it).  They are
# spelled out here rather than imported so that changing them changes this
# file, which invalidates numba's on-disk cache (it freezes global constants).
STEP = 0
RAMP = 1
PULSES = 2
SINE = 3
TABLE_UNIFORM = 4
TABLE_SORTED = 5

# How stage_currents evaluates a stimulus (stimulus_class): component by component, once per
# constant segment, or as its one uniform table
GENERAL = 0
CONSTANT = 1
UNIFORM = 2


def _uniform_segment(u, n):
    """Segment ``i`` (a float, clipped to ``[0, n - 2]``) and weight ``w`` in ``[0, 1]`` at grid coordinate ``u``."""
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
    return i, w


def _uniform_from_u(u, off, n, data):
    """Linear interpolation in the uniform table ``data[off:off + n]`` at grid coordinate ``u``."""
    i, w = _uniform_segment(u, n)
    m = off + int(i)
    return data[m] + w * (data[m + 1] - data[m])


def _uniform_lookup_py(t, off, n, t0, dt, data):
    """Linear interpolation at ``t`` (ms) in the uniform table ``data[off:off + n]`` (grid ``t0 + k dt``)."""
    return _uniform_from_u((t - t0) / dt, off, n, data)


# one formula for both callers: the kind dispatch below and the uniform-table path of the driver,
# which computes the grid coordinate (t - t0) / dt once for the tables of a block sharing a grid
_uniform_segment = numba.njit(inline="always")(_uniform_segment)
_uniform_from_u = numba.njit(inline="always")(_uniform_from_u)
_uniform_lookup = numba.njit(inline="always")(_uniform_lookup_py)


def _component_py(j, t, kind, par, data):
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
        return _uniform_lookup(t, off, n, par[j, 2], par[j, 3], data)
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


# Inlined into the evaluators below, which are compiled with _nrt=False: no reference
# counting of the array arguments.  With it, numba increments and decrements the counts of
# kind/par/data around every component evaluation (the branches defeat its pruning pass),
# which cost several times the evaluation itself (measured: 60-90 ns instead of 8-13 ns for
# a table lookup).  A call from a kernel into them passes the arrays without counting.
_component = numba.njit(inline="always")(_component_py)


@numba.njit(cache=True, inline="always")
def _stim_at(i, t, ptr, kind, par, data):
    s = 0.0
    for j in range(ptr[i], ptr[i + 1]):
        s += _component(j, t, kind, par, data)
    return s


@numba.njit(cache=True, inline="always")
def _stim_in(i, t, lo, hi, ptr, kind, par, data):
    eps = 1e-9 * (hi - lo)
    tt = min(max(t, lo + eps), hi - eps)
    return _stim_at(i, tt, ptr, kind, par, data)


@numba.njit(cache=True, _nrt=False)
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
    return _stim_at(i, t, ptr, kind, par, data)


@numba.njit(cache=True, _nrt=False)
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
    return _stim_in(i, t, lo, hi, ptr, kind, par, data)


@numba.njit(cache=True, _nrt=False)
def _first_after(i, t, bp_ptr, bp):
    """Index into ``bp`` of stimulus ``i``'s first breakpoint strictly after ``t`` (ms), by bisection.

    ``bp_ptr[i + 1]`` when there is none.
    """
    a = bp_ptr[i]
    b = bp_ptr[i + 1]
    while a < b:
        mid = (a + b) // 2
        if bp[mid] <= t:
            a = mid + 1
        else:
            b = mid
    return a


@numba.njit(cache=True, _nrt=False)
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
    a = _first_after(i, t, bp_ptr, bp)
    if a < bp_ptr[i + 1]:
        return bp[a]
    return np.inf


@numba.njit(cache=True, _nrt=False)
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


@numba.njit(cache=True, _nrt=False)
def stimulus_class(i, ptr, kind):
    """How :func:`stage_currents` evaluates stimulus ``i``.

    Parameters
    ----------
    i : int
        Index of the stimulus in the table.
    ptr, kind : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    int
        ``CONSTANT`` when :func:`piecewise_constant` holds (cached per
        constant segment), ``UNIFORM`` when the stimulus is one uniform table
        (``OUNoise``, uniformly sampled ``FromArray``: looked up without the
        kind dispatch), else ``GENERAL``.
    """
    if piecewise_constant(i, ptr, kind):
        return CONSTANT
    if ptr[i + 1] - ptr[i] == 1 and kind[ptr[i]] == TABLE_UNIFORM:
        return UNIFORM
    return GENERAL


@numba.njit(cache=True, _nrt=False)
def shared_table_grid(i0, nb, ptr, kind, par):
    """Whether stimuli ``i0 .. i0 + nb - 1`` are each one uniform table, all on one grid and window.

    Then they differ only in their values (``par[:, 0]``, the offset into
    ``data``): at any time every one is read at the same segment with the
    same weight, and :func:`stage_currents` keeps each table's current segment.

    Parameters
    ----------
    i0, nb : int
        First stimulus of the block and number of stimuli.
    ptr, kind, par : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.

    Returns
    -------
    bool
    """
    if nb == 0:
        return False
    c0 = ptr[i0]
    for j in range(nb):
        i = i0 + j
        if ptr[i + 1] - ptr[i] != 1 or kind[ptr[i]] != TABLE_UNIFORM:
            return False
        for q in range(1, 7):  # length, t0, dt, window and whether it is closed
            if par[ptr[i], q] != par[c0, q]:
                return False
    return True


@numba.njit(cache=True, inline="always")
def _shared_grid_stage(q, x, i0, ptr, par, data, tab, tstate, I3):
    """Stage ``q`` (value at the clamped time ``x``) of a block on one table grid (:func:`shared_table_grid`).

    ``tab[0, j]``, ``tab[1, j]`` hold table ``j``'s value and increment
    ``data[m + 1] - data[m]`` on segment ``tstate[1]`` (reloaded when the
    segment changes), so a stage costs one multiply-add per neuron; the
    arithmetic is that of :func:`_uniform_at`, so are the bits.
    """
    c0 = ptr[i0]
    nb = I3.shape[1]
    if x < par[c0, 4] or x > par[c0, 5] or (x == par[c0, 5] and par[c0, 6] == 0.0):
        for j in range(nb):
            I3[q, j] = 0.0
        return
    i, w = _uniform_segment((x - par[c0, 2]) / par[c0, 3], int(par[c0, 1]))
    k = int(i)
    if k != tstate[1]:
        for j in range(nb):
            m = int(par[ptr[i0 + j], 0]) + k
            tab[0, j] = data[m]
            tab[1, j] = data[m + 1] - data[m]
        tstate[1] = k
    for j in range(nb):
        s = 0.0
        s += tab[0, j] + w * tab[1, j]
        I3[q, j] = s


@numba.njit(cache=True, inline="always")
def _uniform_at(c, t, u, par, data):
    """What :func:`_stim_at` returns at ``t`` for a stimulus whose only component is row ``c``, a uniform table.

    ``u`` is the grid coordinate ``(t - par[c, 2]) / par[c, 3]`` (computed by
    the caller).  The same operations as the kind dispatch of ``_component``
    followed by the sum ``0.0 + value``, so the result is bit-identical to it.
    """
    v = 0.0
    if not (t < par[c, 4] or t > par[c, 5] or (t == par[c, 5] and par[c, 6] == 0.0)):
        v = _uniform_from_u(u, int(par[c, 0]), int(par[c, 1]), data)
    s = 0.0
    s += v
    return s


@numba.njit(cache=True, _nrt=False)
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
    a = _first_after(i, t, bp_ptr, bp)
    lo = bp[a - 1] if a > bp_ptr[i] else -np.inf
    hi = bp[a] if a < bp_ptr[i + 1] else np.inf
    return lo, hi


@numba.njit(cache=True, inline="always")
def stage_currents(i0, t, t1, n_stages, ptr, kind, par, data, bp_ptr, bp, how, seg, span, tab, tstate, I3):
    """Stimulus values of neurons ``i0 .. i0 + nb - 1`` inside the step ``[t, t1]`` (ms).

    ``I3[0, j]`` is the value at the start of the step, and with
    ``n_stages == 3`` ``I3[1, j]`` the midpoint and ``I3[2, j]`` the end
    value, each as :func:`stim_in` sees them from inside the step (µA/cm²).

    Stimuli of class ``how[j] == CONSTANT`` (:func:`stimulus_class`) are
    evaluated once per constant segment: ``seg[0, j], seg[1, j]`` are the
    breakpoints around the current segment and ``seg[2, j]`` its value
    (initialise ``seg[0] = inf, seg[1] = -inf``: no segment).  A step uses
    the cached value only if ``[t - margin, t1 + margin]`` lies inside the
    segment, with a margin well above the breakpoint merging tolerance
    (``1e-11 max(1, |t|)``); a step near a breakpoint evaluates its stages
    one by one, so the values are those of :func:`stim_in` in every case.
    When every neuron of the block took its cached value, ``span`` holds the
    intersection of their segments, and a later step inside it returns at
    once: ``I3`` already holds its values (initialise ``span = (inf, -inf)``).
    Stimuli of class ``UNIFORM`` are looked up in their table directly, at the
    stage times clamped into the step once for the whole block; when they are
    all on one grid (``tstate[0] == 1``, :func:`shared_table_grid`), each
    table's current segment is kept in ``tab`` (segment index ``tstate[1]``,
    initialise it to -1), so a stage costs one multiply-add per neuron.

    Parameters
    ----------
    i0 : int
        Index of the first stimulus of the block in the table.
    t, t1 : float
        Start and end of the step (ms).
    n_stages : int
        1 (start value only) or 3; the same at every call for one ``I3``.
    ptr, kind, par, data, bp_ptr, bp : numpy.ndarray
        The fields of a :class:`hhsym.stimuli.StimulusTable`.
    how : numpy.ndarray of int64, shape (nb,)
        :func:`stimulus_class` of each neuron's stimulus.
    seg : numpy.ndarray, shape (3, nb)
        Segment cache, updated in place.
    span : numpy.ndarray, shape (2,)
        Block segment cache, updated in place.
    tab : numpy.ndarray, shape (2, nb)
        Table segment cache of a block on one grid, updated in place.
    tstate : numpy.ndarray, shape (2,)
        Whether the block is on one table grid (1.0 or 0.0) and its cached
        segment index, updated in place.
    I3 : numpy.ndarray, shape (3, nb)
        Output.
    """
    margin = 1e-9 * (max(1.0, abs(t), abs(t1)) + (t1 - t))
    if not (t - margin > span[0] and t1 + margin < span[1]):
        _stage_currents(i0, t, t1, margin, n_stages, ptr, kind, par, data, bp_ptr, bp, how, seg, span, tab,
                        tstate, I3)


# stage_currents is inlined into the driver's loop over steps: inside a block's common constant
# segment a step costs two comparisons, not a call passing ~70 scalars (10 arrays); the rest is here
@numba.njit(cache=True, _nrt=False)
def _stage_currents(i0, t, t1, margin, n_stages, ptr, kind, par, data, bp_ptr, bp, how, seg, span, tab, tstate,
                    I3):
    """The body of :func:`stage_currents` outside the block's cached span."""
    a = t - margin
    z = t1 + margin
    tm = 0.5 * (t + t1)
    # the stage times as _stim_in clamps them into the step (the same for every neuron)
    eps = 1e-9 * (t1 - t)
    ts = min(max(t, t + eps), t1 - eps)
    tms = min(max(tm, t + eps), t1 - eps)
    t1s = min(max(t1, t + eps), t1 - eps)
    if tstate[0] == 1.0:  # every neuron one table on one grid
        _shared_grid_stage(0, ts, i0, ptr, par, data, tab, tstate, I3)
        if n_stages == 3:
            _shared_grid_stage(1, tms, i0, ptr, par, data, tab, tstate, I3)
            _shared_grid_stage(2, t1s, i0, ptr, par, data, tab, tstate, I3)
        span[0] = np.inf
        span[1] = -np.inf
        return
    # grid coordinates of the stage times in the last uniform table's grid (t0, dt): tables of a
    # block usually share their grid (noise of one sampling step), so most neurons reuse them
    g0 = np.nan
    gdt = np.nan
    u0 = u1 = u2 = 0.0
    lo_all = -np.inf
    hi_all = np.inf
    all_cached = True
    for j in range(I3.shape[1]):
        i = i0 + j
        if how[j] == UNIFORM:
            all_cached = False
            c = ptr[i]
            if not (par[c, 2] == g0 and par[c, 3] == gdt):
                g0 = par[c, 2]
                gdt = par[c, 3]
                u0 = (ts - g0) / gdt
                u1 = (tms - g0) / gdt
                u2 = (t1s - g0) / gdt
            I3[0, j] = _uniform_at(c, ts, u0, par, data)
            if n_stages == 3:
                I3[1, j] = _uniform_at(c, tms, u1, par, data)
                I3[2, j] = _uniform_at(c, t1s, u2, par, data)
            continue
        if how[j] == CONSTANT:
            if not (a > seg[0, j] and z < seg[1, j]):
                lo, hi = constant_segment(i, tm, bp_ptr, bp)
                if a > lo and z < hi:
                    seg[0, j] = lo
                    seg[1, j] = hi
                    seg[2, j] = _stim_in(i, tm, t, t1, ptr, kind, par, data)
                else:  # near a breakpoint: evaluate the stages one by one
                    seg[0, j] = np.inf
                    seg[1, j] = -np.inf
            if a > seg[0, j] and z < seg[1, j]:
                I3[0, j] = seg[2, j]
                if n_stages == 3:
                    I3[1, j] = seg[2, j]
                    I3[2, j] = seg[2, j]
                lo_all = max(lo_all, seg[0, j])
                hi_all = min(hi_all, seg[1, j])
                continue
        all_cached = False
        I3[0, j] = _stim_in(i, t, t, t1, ptr, kind, par, data)
        if n_stages == 3:
            I3[1, j] = _stim_in(i, tm, t, t1, ptr, kind, par, data)
            I3[2, j] = _stim_in(i, t1, t, t1, ptr, kind, par, data)
    span[0] = lo_all if all_cached else np.inf
    span[1] = hi_all if all_cached else -np.inf
