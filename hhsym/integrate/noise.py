"""Numba kernel of the Ornstein–Uhlenbeck recurrence behind :class:`hhsym.stimuli.OUNoise`.

Compiled without fast-math flags: each update rounds exactly as the Python
expression ``a * y + b * z`` does (two products, one sum, no fused
multiply-add), so the samples are bit-identical to a loop in Python.
"""

from __future__ import annotations

import numba

__all__ = ["ou_recurrence"]


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
