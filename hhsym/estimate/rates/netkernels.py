r"""Numba kernels for the rate networks (arrays and floats in, arrays out).

A rate network maps a membrane potential :math:`V` (mV) to a log-rate
:math:`f(u)` with :math:`u = (V - c)/s` the potential normalised by the data's
voltage range (:math:`u \in [-1, 1]` on the recorded range).  The network is a
tanh multilayer perceptron plus a linear skip term,

.. math:: f(u) = w_L^\top h_{L-1}(u) + b_L + w_\mathrm{skip}\, u,

so the rate :math:`r = e^{f}` (1/ms) is positive by construction.  Outside
:math:`u \in [-1, 1]` the log-rate is continued linearly with the secant slope
over the last ``delta`` of the range (a log-linear, i.e. exponential, tail).

Parameter layout (flat vector): for each layer ``W`` (n_out x n_in, row
major) then ``b`` (n_out), finally ``w_skip``.  ``sizes = [1, H1, ..., 1]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["n_params", "mlp", "log_rate", "log_rate_batch"]


def n_params(sizes):
    """Number of parameters of a network with layer widths ``sizes`` (incl. skip)."""
    return int(sum(sizes[i + 1] * (sizes[i] + 1) for i in range(len(sizes) - 1)) + 1)


@njit(cache=True, fastmath=False)
def mlp(theta, sizes, u, grad, work):
    """Evaluate f(u) and df/du; write df/dtheta into ``grad`` (len n_params).

    ``work`` must hold at least ``2 * sum(sizes)`` floats.
    Returns (f, dfdu).
    """
    nl = sizes.shape[0] - 1
    # activations a_l stored consecutively in work[0:total]; deltas after that
    total = 0
    for i in range(sizes.shape[0]):
        total += sizes[i]
    work[0] = u
    a_off = 0
    p_off = 0
    for l in range(nl):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        o_off = a_off + n_in
        for i in range(n_out):
            z = theta[p_off + n_out * n_in + i]
            for j in range(n_in):
                z += theta[p_off + i * n_in + j] * work[a_off + j]
            if l < nl - 1:
                z = np.tanh(z)
            work[o_off + i] = z
        a_off = o_off
        p_off += n_out * (n_in + 1)
    w_skip = theta[p_off]
    f = work[a_off] + w_skip * u
    grad[p_off] = u
    # backward: deltas of the pre-activations of layer l+1 live at work[total + offset]
    d_off = total + a_off
    work[d_off] = 1.0
    for l in range(nl - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        p_off -= n_out * (n_in + 1)
        in_off = a_off - n_in
        din_off = d_off - n_in
        for i in range(n_out):
            d = work[d_off + i]
            grad[p_off + n_out * n_in + i] = d
            for j in range(n_in):
                grad[p_off + i * n_in + j] = d * work[in_off + j]
        for j in range(n_in):
            s = 0.0
            for i in range(n_out):
                s += theta[p_off + i * n_in + j] * work[d_off + i]
            if l > 0:
                a = work[in_off + j]
                s *= 1.0 - a * a
            work[din_off + j] = s
        a_off = in_off
        d_off = din_off
    dfdu = work[total] + w_skip
    return f, dfdu


@njit(cache=True)
def log_rate(theta, sizes, V, c, s, delta, grad, grad2, work):
    """Log-rate f(V) with log-linear tails, d f/dV (1/mV); df/dtheta -> ``grad``."""
    u = (V - c) / s
    if u < -1.0:
        f0, _ = mlp(theta, sizes, -1.0, grad, work)
        f1, _ = mlp(theta, sizes, -1.0 + delta, grad2, work)
        slope = (f1 - f0) / delta
        t = (u + 1.0) / delta
        for i in range(grad.shape[0]):
            grad[i] = grad[i] * (1.0 - t) + grad2[i] * t
        return f0 + (u + 1.0) * slope, slope / s
    if u > 1.0:
        f0, _ = mlp(theta, sizes, 1.0, grad, work)
        f1, _ = mlp(theta, sizes, 1.0 - delta, grad2, work)
        slope = (f0 - f1) / delta
        t = (u - 1.0) / delta
        for i in range(grad.shape[0]):
            grad[i] = grad[i] * (1.0 + t) - grad2[i] * t
        return f0 + (u - 1.0) * slope, slope / s
    f, dfdu = mlp(theta, sizes, u, grad, work)
    return f, dfdu / s


@njit(cache=True)
def log_rate_batch(theta, sizes, Vs, c, s, delta, want_grad):
    """Log-rates at many voltages: returns (f (n,), dfdV (n,), grad (n, P) or (0, P))."""
    P = theta.shape[0]
    n = Vs.shape[0]
    f = np.empty(n)
    dfdv = np.empty(n)
    G = np.empty((n if want_grad else 0, P))
    grad = np.empty(P)
    grad2 = np.empty(P)
    work = np.empty(2 * int(sizes.sum()) + 2)
    for k in range(n):
        f[k], dfdv[k] = log_rate(theta, sizes, Vs[k], c, s, delta, grad, grad2, work)
        if want_grad:
            G[k, :] = grad
    return f, dfdv, G
