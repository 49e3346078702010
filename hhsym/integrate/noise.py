"""Numba kernels behind :class:`hhsym.stimuli.OUNoise`: the OU recurrence, uniform-table sampling.

Compiled without fast-math flags: each operation rounds exactly as the numpy
expression it replaces does (no fused multiply-add), so the samples are
bit-identical to a loop in Python (:func:`ou_recurrence`) and to the numpy
interpolation of :mod:`hhsym.stimuli.data` (:func:`sample_uniform`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["ou_recurrence", "sample_uniform"]


@numba.njit(cache=True, nogil=True)
def ou_recurrence(z, a, b, y0, out):
    """Deviations from the mean of an exactly discretised OU process.

    ``out[0] = a * y0 + b * z[0]`` and ``out[k] = a * out[k - 1] + b * z[k]``.

    Parameters
    ----------
    z : numpy.ndarray of float64, shape (n,)
        Standard normal draws.
    a : float
        Decay factor per grid step, ``exp(-dt / tau)``.
    b : float
        Noise gain per step, ``sigma * sqrt(1 - a**2)`` (µA/cm²).
    y0 : float
        Deviation (µA/cm²) before the first update.
    out : numpy.ndarray of float64, shape (n,)
        Deviations (µA/cm²), written in place.
    """
    y = y0
    for k in range(z.shape[0]):
        y = a * y + b * z[k]
        out[k] = y


@numba.njit(cache=True, nogil=True)
def sample_uniform(t, y, t0, dt, start, stop, out):
    """Linear interpolation of the uniform table ``y`` at the times ``t``, zero outside ``[start, stop)``.

    Table point ``k`` is at ``t0 + k * dt``; the segment index is clipped to
    ``[0, y.size - 2]`` and the weight to ``[0, 1]``, operation for operation
    as ``hhsym.stimuli.data._interp_uniform`` (and the kernels' table lookup).

    Parameters
    ----------
    t : numpy.ndarray of float64, shape (n,)
        Times (ms).
    y : numpy.ndarray of float64, shape (m,)
        Table values (µA/cm²); with fewer than 2, times inside the window get nan.
    t0, dt : float
        Time of ``y[0]`` and grid step (ms, > 0).
    start, stop : float
        The window (ms) outside which the value is 0.
    out : numpy.ndarray of float64, shape (n,)
        Values (µA/cm²), written in place.

    Returns
    -------
    bool
        Whether every value written is finite.
    """
    if y.shape[0] < 2:  # no table to interpolate: nan inside the window (never asked by OUNoise)
        finite = True
        for k in range(t.shape[0]):
            out[k] = np.nan if (t[k] >= start and t[k] < stop) else 0.0
            finite = finite and not (t[k] >= start and t[k] < stop)
        return finite
    top = float(y.shape[0] - 2)
    finite = True
    for k in range(t.shape[0]):
        tk = t[k]
        v = 0.0
        if tk >= start and tk < stop:
            u = (tk - t0) / dt
            i = np.floor(u)
            if i < 0.0:
                i = 0.0
            elif i > top:
                i = top
            m = int(i)
            w = u - float(m)
            if w < 0.0:
                w = 0.0
            elif w > 1.0:
                w = 1.0
            v = y[m] + w * (y[m + 1] - y[m])
            finite = finite and abs(v) < np.inf
        out[k] = v
    return finite
