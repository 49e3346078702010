r"""Numba kernel of the output-error residuals: the model runs freely, V is compared with the recording.

Gate quantities come from voltage tables (:mod:`hhsym.estimate.losses.tables`):
:math:`x_\infty` and :math:`\lambda = 1/\tau` on uniform nodes, linearly
interpolated at the *simulated* potential, with their parameter gradients on
the same nodes.  Within each window the hybrid model

.. math::

    C\,\dot V = I - I_\mathrm{ion}(V, x), \qquad \dot x_j = \lambda_j(V)\,(x_{\infty,j}(V) - x_j)

runs by classical RK4 on ``M`` sub-steps per sample (the current linear
between samples), from a free initial potential and the gates handed in; the
residuals are :math:`V_\mathrm{model}(t_k) - V_\mathrm{meas}(t_k)` (mV) at
every ``stride``-th sample, the window's start included.  Forward
(tangent-linear) sensitivities give the exact Jacobian of this discrete map
with respect to the table parameters and the initial potential.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hhsym.estimate.losses.kernels import _currents, _rk4_combine, _rk4_stage_state

__all__ = ["trajectory_pass", "NO_SCALARS"]

#: ``sc_kind`` / ``sc_ch`` of :func:`trajectory_pass` without free scalars.
NO_SCALARS = np.zeros(0, dtype=np.int64)


@njit(cache=True, nogil=True)
def _lookup(Vv, v0, h, K):
    u = (Vv - v0) / h
    i = int(np.floor(u))
    if i < 0:
        i = 0
    elif i > K - 2:
        i = K - 2
    return i, u - i


@njit(cache=True, nogil=True)
def _rhs(Vv, x, Iv, C, ch_g, ch_E, gate_ch, gate_pow, v0, h, XI, LA, DX, DL, want, Y, Kt, dy, dIdx,
         sc_kind, sc_ch, opn):
    """Right-hand side ``dy`` and tangent ``Kt = f_y Y + f_theta``.

    Tangent columns: ng * npg gate parameters, then the scalars (``sc_kind``: 0 g, 1 E, 2 C, of
    channel ``sc_ch``; derivatives with respect to the public values), then the initial state.
    """
    ng = x.shape[0]
    npg = DX.shape[2] if want else 0
    K = XI.shape[1]
    I_ion, G_tot = _currents(Vv, x, ch_g, ch_E, gate_ch, gate_pow, dIdx)
    dy[0] = (Iv - I_ion) / C
    m = Y.shape[1]
    if want:
        for p in range(m):
            acc = -G_tot * Y[0, p]
            for j in range(ng):
                acc -= dIdx[j] * Y[1 + j, p]
            Kt[0, p] = acc / C
        nsc = sc_kind.shape[0]
        if nsc > 0:
            for c in range(ch_g.shape[0]):
                opn[c] = 1.0
            for j in range(ng):
                opn[gate_ch[j]] *= x[j] ** gate_pow[j]
            for s in range(nsc):
                c = sc_ch[s]
                col = ng * npg + s
                if sc_kind[s] == 0:
                    Kt[0, col] -= opn[c] * (Vv - ch_E[c]) / C
                elif sc_kind[s] == 1:
                    Kt[0, col] += ch_g[c] * opn[c] / C
                else:
                    Kt[0, col] -= dy[0] / C
    i, w = _lookup(Vv, v0, h, K)
    for j in range(ng):
        xinf = (1.0 - w) * XI[j, i] + w * XI[j, i + 1]
        lam = (1.0 - w) * LA[j, i] + w * LA[j, i + 1]
        dev = xinf - x[j]
        dy[1 + j] = lam * dev
        if want:
            dxV = (XI[j, i + 1] - XI[j, i]) / h
            dlV = (LA[j, i + 1] - LA[j, i]) / h
            dfdV = dlV * dev + lam * dxV
            for p in range(m):
                Kt[1 + j, p] = -lam * Y[1 + j, p] + dfdV * Y[0, p]
            base = j * npg
            for p in range(npg):
                Kt[1 + j, base + p] += dev * ((1.0 - w) * DL[j, i, p] + w * DL[j, i + 1, p]) \
                    + lam * ((1.0 - w) * DX[j, i, p] + w * DX[j, i + 1, p])


@njit(cache=True, nogil=True)
def trajectory_pass(V, I, dt, M, C, ch_g, ch_E, gate_ch, gate_pow, v0, h, XI, LA, DX, DL,
                    starts, L, stride, Y0, S0, want_jac, R, J, JY, sc_kind, sc_ch):
    """Output-error residuals of one trace over free-running windows.

    Parameters
    ----------
    V, I : (n,) measured potential (mV) and injected current (µA/cm²), step ``dt`` (ms).
    M : int
        RK4 sub-steps per sample.
    C, ch_g, ch_E, gate_ch, gate_pow :
        Model structure (:func:`hhsym.estimate.losses.charge_balance.model_arrays`).
    v0, h : float
        First node and node spacing (mV) of the tables.
    XI, LA : (ng, K) x_inf and lambda (1/ms) on the nodes.
    DX, DL : (ng, K, npg) their gradients with respect to each gate's own parameters.
    starts : (nw,) int
        First sample of each window; each runs ``L`` samples.
    stride : int
        A residual every ``stride`` samples (``L // stride + 1`` per window, the start included).
    Y0 : (nw, 1 + ng) initial states: potential (mV) and gates.
    S0 : (nw, ng, npg) d(initial gates) / d(own gate parameters) (zeros for gates that do not depend on them).
    R : (nw, L // stride + 1) out, V_model - V_meas (mV).
    J : (nw * (L // stride + 1), ng * npg + nsc) out, dR/dθ, then dR/d(scalar) (public units).
    JY : (nw * (L // stride + 1), 1 + ng) out, dR/d(initial state of its window).
    sc_kind, sc_ch : (nsc,) int
        Free scalars (:mod:`hhsym.estimate.rates.scalars`): kind (0 g, 1 E, 2 C) and channel.

    Returns
    -------
    bool
        False if a non-finite value appeared.
    """
    ng = gate_ch.shape[0]
    npg = DX.shape[2] if want_jac else 0
    ns = 1 + ng
    nsc = sc_kind.shape[0] if want_jac else 0
    nth = ng * npg + nsc
    m = nth + ns if want_jac else 0
    nres = L // stride + 1
    y = np.empty(ns)
    yt = np.empty(ns)
    ks = np.empty((4, ns))
    Y = np.zeros((ns, m))
    Yt = np.zeros((ns, m))
    Ks = np.zeros((4, ns, m))
    dIdx = np.empty(ng)
    opn = np.empty(ch_g.shape[0])
    sck = sc_kind[:nsc]
    hs = dt / M
    for w in range(starts.shape[0]):
        s0 = starts[w]
        for q in range(ns):
            y[q] = Y0[w, q]
        if want_jac:
            Y[:, :] = 0.0
            for q in range(ns):
                Y[q, nth + q] = 1.0
            for j in range(ng):
                for p in range(npg):
                    Y[1 + j, j * npg + p] = S0[w, j, p]
        r = w * nres
        R[w, 0] = y[0] - V[s0]
        if want_jac:
            for p in range(nth):
                J[r, p] = 0.0
            JY[r, 0] = 1.0
            for q in range(1, ns):
                JY[r, q] = 0.0
        for i in range(L):
            k = s0 + i
            for sub in range(M):
                for st in range(4):
                    c = _rk4_stage_state(y, Y, ks, Ks, st, hs, want_jac, yt, Yt)
                    frac = (sub + c) / M
                    Iv = I[k] + frac * (I[k + 1] - I[k])
                    _rhs(yt[0], yt[1:], Iv, C, ch_g, ch_E, gate_ch, gate_pow, v0, h, XI, LA, DX, DL,
                         want_jac, Yt, Ks[st], ks[st], dIdx, sck, sc_ch, opn)
                _rk4_combine(y, Y, ks, Ks, hs, want_jac)
            if not np.isfinite(y[0]):
                return False
            if (i + 1) % stride == 0:
                ir = (i + 1) // stride
                R[w, ir] = y[0] - V[k + 1]
                if want_jac:
                    for p in range(nth):
                        J[r + ir, p] = Y[0, p]
                    for q in range(ns):
                        JY[r + ir, q] = Y[0, nth + q]
    return True
