r"""Numba kernels for training rate networks (arrays and floats in, arrays out).

The conductance-model structure is passed as arrays, so one compiled kernel
serves every model: channel conductances ``ch_g`` (mS/cm²) and reversal
potentials ``ch_E`` (mV), and per gate its channel index ``gate_ch`` and power
``gate_pow``.  Gate ``j`` owns two networks, parameter rows ``thetas[2j]``
(output :math:`f_x`) and ``thetas[2j+1]`` (output :math:`f_\tau`); the global
parameter vector is ``thetas.ravel()``, so gate ``j`` owns columns
``[2jP, 2jP + 2P)``.  They define the gate as
(:class:`~hhsym.estimate.rates.network.GateNetworks`)

.. math::

    x_\infty = \sigma(f_x), \qquad \tau = \tau_\min + e^{f_\tau}\ \mathrm{(ms)},

so :math:`\alpha = x_\infty/\tau`, :math:`\beta = (1 - x_\infty)/\tau` and no
rate exceeds :math:`1/\tau_\min`.  :func:`_gate_rates` returns
:math:`x_\infty`, :math:`\lambda = 1/\tau = \alpha + \beta`, their V
derivatives and the coefficients of :math:`\partial f_x/\partial\theta` and
:math:`\partial f_\tau/\partial\theta` in their parameter derivatives.

Both stages use forward (tangent-linear) sensitivities, i.e. the exact
derivatives of the *discrete* maps they implement:

* stage 1 (gates driven by the measured V) runs on voltage tables:
  :func:`hhsym.estimate.losses.tables.gate_pass_table`, built on :func:`_gate_rates`
  and :func:`_currents` here;
* :func:`shoot_pass` (stage 2): the full hybrid model (V free) from given
  initial states over short windows, classical RK4 on the data grid with
  the current linearly interpolated at half steps.  Returns V_model − V_meas
  (mV) and its Jacobian.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hhsym.estimate.rates.netkernels import log_rate

__all__ = ["shoot_pass"]


#: Largest network output used in an exponential (overflow guard).
_FMAX = 60.0


@njit(cache=True)
def _gate_rates(tau_min, thx, tht, sizes, nx, nt, Vv, gx, gt, gtmp, work):
    """Steady state and relaxation rate of one gate at ``Vv`` (mV).

    ``thx``, ``tht`` are the parameters of the logit-x_inf and
    log(tau - tau_min) networks, ``nx``, ``nt`` their ``[center, scale, delta]``;
    ``tau_min`` is the time-constant floor (ms).  Writes df_x/dθ_x -> ``gx``,
    df_tau/dθ_tau -> ``gt`` (``gtmp``, ``work``: scratch).

    Returns
    -------
    xinf, lam, dxinf_dV, dlam_dV, cx, cl
        ``lam = 1/tau`` (1/ms), the V derivatives in 1/mV and 1/(ms mV);
        dxinf/dθ_x = cx gx, dlam/dθ_tau = cl gt (x_inf does not depend on
        θ_tau, nor lam on θ_x).
    """
    fx, dfx = log_rate(thx, sizes, Vv, nx[0], nx[1], nx[2], gx, gtmp, work)
    ft, dft = log_rate(tht, sizes, Vv, nt[0], nt[1], nt[2], gt, gtmp, work)
    if fx >= 0.0:
        e = np.exp(-fx)
        xinf = 1.0 / (1.0 + e)
    else:
        e = np.exp(fx)
        xinf = e / (1.0 + e)
    q = xinf * (1.0 - xinf)
    et = np.exp(min(ft, _FMAX))
    lam = 1.0 / (tau_min + et)
    cl = -lam * lam * et
    return xinf, lam, q * dfx, cl * dft, q, cl


@njit(cache=True)
def _currents(Vv, x, ch_g, ch_E, gate_ch, gate_pow, dIdx):
    """Ionic current (µA/cm²), total conductance (mS/cm²); dI/dx_j -> dIdx."""
    nch = ch_g.shape[0]
    ng = x.shape[0]
    I_ion = 0.0
    G_tot = 0.0
    for c in range(nch):
        cond = ch_g[c]
        for j in range(ng):
            if gate_ch[j] == c:
                cond *= x[j] ** gate_pow[j]
        I_ion += cond * (Vv - ch_E[c])
        G_tot += cond
    for j in range(ng):
        c = gate_ch[j]
        d = ch_g[c] * gate_pow[j] * x[j] ** (gate_pow[j] - 1)
        for i in range(ng):
            if i != j and gate_ch[i] == c:
                d *= x[i] ** gate_pow[i]
        dIdx[j] = d * (Vv - ch_E[c])
    return I_ion, G_tot


@njit(cache=True)
def _rhs(Vv, x, Iv, C, ch_g, ch_E, gate_ch, gate_pow, thetas, sizes, norms, want,
         Y, K, dy, dIdx, gr, g2, work, tau_min):
    """Hybrid-model right-hand side dy and tangent K = f_y Y + f_theta."""
    ng = x.shape[0]
    P = thetas.shape[1]
    I_ion, G_tot = _currents(Vv, x, ch_g, ch_E, gate_ch, gate_pow, dIdx)
    dy[0] = (Iv - I_ion) / C
    if want:
        for p in range(Y.shape[1]):
            acc = -G_tot * Y[0, p]
            for j in range(ng):
                acc -= dIdx[j] * Y[1 + j, p]
            K[0, p] = acc / C
    for j in range(ng):
        ia = 2 * j
        ib = 2 * j + 1
        xinf, lam, dxV, dlV, cx, cl = _gate_rates(tau_min, thetas[ia], thetas[ib], sizes,
                                                  norms[ia], norms[ib], Vv, gr[ia], gr[ib], g2, work)
        xj = x[j]
        dev = xinf - xj
        dy[1 + j] = lam * dev
        if want:
            dxdV = dlV * dev + lam * dxV
            for p in range(Y.shape[1]):
                K[1 + j, p] = -lam * Y[1 + j, p] + dxdV * Y[0, p]
            w1 = lam * cx
            w2 = cl * dev
            base = ia * P
            for p in range(P):
                K[1 + j, base + p] += w1 * gr[ia, p]
                K[1 + j, base + P + p] += w2 * gr[ib, p]


@njit(cache=True, nogil=True)
def _rk4_stage_state(y, Y, ks, Ks, st, h, want, yt, Yt):
    """Input of RK4 stage ``st`` (0-3) with step ``h``: ``yt = y + h c_st k_{st-1}``, and its tangent."""
    c = 0.5 if st == 1 or st == 2 else (1.0 if st == 3 else 0.0)
    for q in range(y.shape[0]):
        yt[q] = y[q] + (h * c * ks[st - 1, q] if st > 0 else 0.0)
    if want:
        if st == 0:
            Yt[:, :] = Y
        else:
            for q in range(Y.shape[0]):
                for p in range(Y.shape[1]):
                    Yt[q, p] = Y[q, p] + h * c * Ks[st - 1, q, p]
    return c


@njit(cache=True, nogil=True)
def _rk4_combine(y, Y, ks, Ks, h, want):
    """Classical RK4 update of the state ``y`` and its tangent ``Y`` from the four stages."""
    for q in range(y.shape[0]):
        y[q] += h / 6.0 * (ks[0, q] + 2.0 * ks[1, q] + 2.0 * ks[2, q] + ks[3, q])
    if want:
        for q in range(Y.shape[0]):
            for p in range(Y.shape[1]):
                Y[q, p] += h / 6.0 * (Ks[0, q, p] + 2.0 * Ks[1, q, p] + 2.0 * Ks[2, q, p] + Ks[3, q, p])


@njit(cache=True)
def shoot_pass(V, I, dt, C, ch_g, ch_E, gate_ch, gate_pow, thetas, sizes, norms,
               starts, L, stride, X0, S0, want_jac, R, J, tau_min):
    """Stage-2 multiple shooting over windows of one trace.

    Parameters
    ----------
    V, I : ndarray (n,)
        Measured potential (mV) and current (µA/cm²).
    starts : int array (nw,)
        Window start samples; each window runs ``L`` steps of ``dt`` (ms).
    stride : int
        A residual every ``stride`` steps; ``L // stride`` per window.
    X0 : (nw, ng) gate states at the starts; S0 : (nw, ng, 2P) their
        sensitivities to their own gate's parameters.
    tau_min : float
        Time-constant floor (ms) of the gates (module docstring).
    R : (nw, L // stride) out: V_model − V_meas (mV).
    J : (nw * (L // stride), 2 ng P) out: dR/dθ (if ``want_jac``).

    Returns
    -------
    bool
        False if a non-finite value appeared.
    """
    ng = gate_ch.shape[0]
    P = thetas.shape[1]
    NP = 2 * ng * P
    ns = 1 + ng
    nres = L // stride
    m = NP if want_jac else 0
    Y = np.zeros((ns, m))
    Yt = np.zeros((ns, m))
    Ks = np.zeros((4, ns, m))
    y = np.empty(ns)
    yt = np.empty(ns)
    ks = np.empty((4, ns))
    dIdx = np.empty(ng)
    gr = np.empty((2 * ng, P))
    g2 = np.empty(P)
    work = np.empty(2 * int(sizes.sum()) + 2)
    ok = True
    for w in range(starts.shape[0]):
        s0 = starts[w]
        y[0] = V[s0]
        for j in range(ng):
            y[1 + j] = X0[w, j]
        if want_jac:
            Y[:, :] = 0.0
            for j in range(ng):
                for p in range(2 * P):
                    Y[1 + j, 2 * j * P + p] = S0[w, j, p]
        for i in range(L):
            k = s0 + i
            for st in range(4):
                c = _rk4_stage_state(y, Y, ks, Ks, st, dt, want_jac, yt, Yt)
                Iv = I[k] + c * (I[k + 1] - I[k])
                _rhs(yt[0], yt[1:], Iv, C, ch_g, ch_E, gate_ch, gate_pow, thetas, sizes, norms,
                     want_jac, Yt, Ks[st], ks[st], dIdx, gr, g2, work, tau_min)
            _rk4_combine(y, Y, ks, Ks, dt, want_jac)
            if (i + 1) % stride == 0:
                ir = (i + 1) // stride - 1
                if ir < nres:
                    R[w, ir] = y[0] - V[k + 1]
                    if want_jac:
                        for p in range(m):
                            J[w * nres + ir, p] = Y[0, p]
            if not np.isfinite(y[0]):
                ok = False
                return ok
    return ok
