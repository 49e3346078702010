"""Layout of the charge-balance and shooting windows in a recording, and the model as kernel arrays.

Helpers of :mod:`hhsym.estimate.losses.charge_balance` (re-exported there):
:func:`window_layout` places the stage-1 windows and stage-2 shooting windows,
:func:`window_weights` weighs the charge windows by their voltage change,
:func:`current_jumps` finds the jumps of the injected current they leave out,
:func:`model_arrays` turns a ConductanceModel into the kernels' arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["model_arrays", "window_layout", "window_weights", "current_jumps", "DV_SCALE", "JUMP_FACTOR"]


def model_arrays(model):
    """Structure of a ConductanceModel as kernel arrays.

    Returns
    -------
    dict
        ``C`` (µF/cm²), ``ch_g`` (mS/cm²), ``ch_E`` (mV), ``gate_ch``,
        ``gate_pow`` and ``gate_names``.
    """
    ch_g, ch_E, gate_ch, gate_pow, names = [], [], [], [], []
    for c, ch in enumerate(model.channels):
        ch_g.append(ch.g)
        ch_E.append(ch.E)
        for g in ch.gates:
            gate_ch.append(c)
            gate_pow.append(g.power)
            names.append(g.name)
    return {
        "C": float(model.params["C_m"]),
        "ch_g": np.array(ch_g, dtype=float),
        "ch_E": np.array(ch_E, dtype=float),
        "gate_ch": np.array(gate_ch, dtype=np.int64),
        "gate_pow": np.array(gate_pow, dtype=np.int64),
        "gate_names": names,
    }


#: Default voltage scale (mV) of the charge-window weights (see :func:`window_weights`).
DV_SCALE = 1.0


def window_weights(dV, dv_scale=DV_SCALE):
    r"""Weights of the stage-1 charge windows: :math:`1/\sqrt{1 + (\Delta V/v_s)^2}`.

    A window's residual is dominated by the currents flowing in it: through a
    spike upstroke the charge moved is a thousand times the sub-threshold one,
    and so is the residual of any small error in the fast gates (and, with
    noise on V, the noise carried into the ionic current through the large
    conductances).  Left unweighted, those few windows dominate the loss, and
    the loss has deep false minima (e.g. an instantaneous activation gate with
    a fast inactivation gate doing its work).  Weighting each window by the
    inverse of its voltage change (beyond ``dv_scale``) makes every window
    count by its *relative* error, so the slow sub-threshold dynamics weigh as
    much as the spikes.  The minimum of noise-free data stays at the truth.

    Parameters
    ----------
    dV : ndarray
        Voltage change across each window (mV).
    dv_scale : float or None
        Scale :math:`v_s` (mV); ``None`` gives uniform weights.

    Returns
    -------
    ndarray
    """
    dV = np.asarray(dV, dtype=float)
    if dv_scale is None:
        return np.ones(dV.shape)
    return 1.0 / np.sqrt(1.0 + (dV / float(dv_scale)) ** 2)


#: A sample-to-sample change of the current larger than this many robust standard deviations of
#: all its changes is a jump (:func:`current_jumps`).
JUMP_FACTOR = 8.0


def current_jumps(I):
    r"""Sample intervals across which the injected current jumps (e.g. the edges of a step).

    Where the current jumps between two samples, when in the interval it
    jumped is unknown, and any interpolation of I misplaces charge of up to
    :math:`|\Delta I|\,dt/C_m` (mV): with a 7 µA/cm² step sampled at
    0.025 ms that is 0.09 mV, against charge-balance residuals of 1e-4 mV at
    the true rates elsewhere — on the demo's step protocol the two step
    edges made 99.9 % of the true rates' stage-1 cost, and the fitted rates
    drifted to cancel them.  A change counts as a jump when it exceeds
    ``JUMP_FACTOR`` robust standard deviations (1.4826 × median absolute
    deviation) of all sample-to-sample changes and 1 % of the current's
    range (so a piecewise-constant protocol has exactly its edges, a smoothly
    varying or noisy current, sampled finely, has none, and the
    one-digitisation-step flicker of a recorded holding current is no jump).

    Parameters
    ----------
    I : ndarray
        Injected current (µA/cm²) on a uniform grid.

    Returns
    -------
    ndarray of int
        Indices ``k`` of the intervals ``(k, k + 1)`` holding a jump.
    """
    dI = np.diff(np.asarray(I, dtype=float))
    if dI.size == 0:
        return np.zeros(0, dtype=np.int64)
    spread = 1.4826 * float(np.median(np.abs(dI - np.median(dI))))
    I = np.asarray(I, dtype=float)
    floor = max(1e-2 * float(np.max(I) - np.min(I)), 1e-9 * float(np.max(np.abs(I))), 1e-300)
    return np.flatnonzero(np.abs(dI) > max(JUMP_FACTOR * spread, floor)).astype(np.int64)


def window_layout(V, dt, window, burn_in, shooting_window, shooting_stride, n_shooting, dv_scale=DV_SCALE,
                  I=None):
    """Sample indices of the stage-1 windows and stage-2 shooting windows of one trace.

    Parameters
    ----------
    V : ndarray
        Recorded voltage (mV) on a uniform grid of step ``dt`` (ms).
    dt, window, burn_in, shooting_window, shooting_stride : float
        Sampling step, charge-balance window, left-out start, shooting window
        and residual stride (ms).
    n_shooting : int
        Shooting windows per trace.
    dv_scale : float or None
        Voltage scale (mV) of the charge-window weights (:func:`window_weights`).
    I : ndarray, optional
        Injected current (µA/cm²); charge windows holding a jump of it
        (:func:`current_jumps`) get weight 0, and shooting windows holding
        one are left out.

    Returns
    -------
    tuple
        ``(bounds, starts, Ls, stride, w1)``: window edges, shooting starts,
        shooting length and stride (samples), charge-window weights.
    """
    n = V.shape[0]
    L = max(1, int(round(window / dt)))
    b0 = min(int(round(burn_in / dt)), n - 1)
    bounds = np.arange(b0, n, L, dtype=np.int64)
    Ls = max(2, int(round(shooting_window / dt)))
    stride = min(max(1, int(round(shooting_stride / dt))), Ls)
    last = n - 1 - Ls
    if n_shooting > 0 and last >= b0:
        starts = np.unique(np.linspace(b0, last, int(n_shooting)).round().astype(np.int64))
    else:
        starts = np.zeros(0, dtype=np.int64)
    w1 = window_weights(np.diff(V[bounds]), dv_scale)
    if I is not None:
        jumps = current_jumps(I)
        if jumps.size:
            j = np.searchsorted(bounds, jumps, side="right") - 1  # the window holding each jump
            w1[j[(j >= 0) & (j < w1.size)]] = 0.0
            hit = np.searchsorted(jumps, starts, side="left")  # first jump at or after each start
            clear = (hit >= jumps.size) | (jumps[np.minimum(hit, jumps.size - 1)] >= starts + Ls)
            starts = starts[clear]
    return bounds, starts, Ls, stride, w1
