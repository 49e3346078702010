r"""Stage 1 on a voltage table: gates driven by the measured V, fast and accurate.

In the gate-driven stage the networks are only ever evaluated at the
*measured* potentials, which do not change between iterations.  So instead of
running every network (and its back-propagation) at every time step, each
gate's steady state :math:`x_\infty`, relaxation rate :math:`\lambda = 1/\tau`
and their parameter gradients are tabulated once per evaluation on a fine,
uniform grid of *nodes* spanning the data's voltage range
(:data:`NODE_SPACING` mV apart) and linearly interpolated at each step with
weights fixed once per trace.  The interpolation error is
:math:`\tfrac18 h^2 \max|f''|`, about :math:`10^{-5}` relative for rates that
change e-fold over a few mV — far below what the data can resolve — and the
Jacobian is the exact derivative of the interpolated map.

The recorded trace is also refined in time (:func:`refine`): ``substeps``
sub-steps per sample, V by a cubic spline through the samples and I linearly
(what a current generator holds between samples).  The exponential midpoint
rule for the gates and the trapezoid rule for the charge are second order:
on the raw sampling grid (0.025 ms) their error through a spike upstroke is
larger than a 5 % change of a rate, and it shrinks sixteenfold in the cost per
halving of the step (measured on HH sampled at 0.025 ms: 1.0e-4, 6.4e-6,
3.9e-7 mV² at the true rates for 1, 2, 4 sub-steps).  With sub-steps the
minimum of the stage-1 loss sits at the true rates, not at rates that absorb
the discretisation error.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.interpolate import CubicSpline

from hhsym.estimate.losses.kernels import _currents, _gate_rates

__all__ = ["NODE_SPACING", "SUBSTEP", "substeps_for", "refine", "VoltageTable", "node_tables", "gate_pass_table", "gate_starts_table"]

#: Spacing (mV) of the voltage nodes on which gate quantities are tabulated.
NODE_SPACING = 0.05
#: Largest stage-1 sub-step (ms): the recorded step is divided until below this.
SUBSTEP = 0.00625


def substeps_for(dt, substep=SUBSTEP):
    """Sub-steps per recorded sample so that each is at most ``substep`` ms.

    Parameters
    ----------
    dt : float
        Sampling step (ms).
    substep : float
        Largest sub-step (ms).

    Returns
    -------
    int
    """
    return max(1, int(math.ceil(dt / substep - 1e-9)))


def refine(V, I, M):
    """A recording on a grid ``M`` times finer.

    Parameters
    ----------
    V, I : ndarray (n,)
        Potential (mV) and current (µA/cm²) on a uniform grid.
    M : int
        Sub-steps per sample.

    Returns
    -------
    Vf, If : ndarray ((n - 1) M + 1,)
        V by a not-a-knot cubic spline through the samples (sample values
        kept exactly), I by linear interpolation.
    """
    if M == 1:
        return V, I
    n = V.shape[0]
    s = np.arange(n, dtype=float)
    sf = np.arange((n - 1) * M + 1, dtype=float) / M
    Vf = CubicSpline(s, V)(sf)
    Vf[::M] = V
    If = np.interp(sf, s, I)
    return np.ascontiguousarray(Vf), np.ascontiguousarray(If)


class VoltageTable:
    """Uniform voltage nodes covering a set of potentials, and lookups into them.

    Parameters
    ----------
    v_lo, v_hi : float
        Range to cover (mV).
    spacing : float
        Node spacing (mV).
    """

    def __init__(self, v_lo, v_hi, spacing=NODE_SPACING):
        self.v0 = float(v_lo) - spacing
        self.h = float(spacing)
        K = int(math.ceil((float(v_hi) + spacing - self.v0) / spacing)) + 1
        self.nodes = self.v0 + self.h * np.arange(K)

    def lookup(self, V):
        """Node index and weight of each potential: ``f(V) ≈ (1 - w) f[i] + w f[i + 1]``.

        Parameters
        ----------
        V : ndarray
            Potentials (mV) inside the table's range.

        Returns
        -------
        idx : int64 ndarray
        wt : float ndarray
        """
        u = (np.asarray(V, dtype=float) - self.v0) / self.h
        idx = np.clip(np.floor(u).astype(np.int64), 0, len(self.nodes) - 2)
        return np.ascontiguousarray(idx), np.ascontiguousarray(u - idx)


@njit(cache=True, nogil=True)
def node_tables(thetas, sizes, norms, nodes, tau_min, want_jac, XI, LA, DX, DL):
    """Tabulate each gate's x_inf, lambda = 1/tau (1/ms) and their parameter gradients.

    Parameters
    ----------
    thetas : (2 ng, P)
        Network parameters: gate ``j``'s logit-x_inf network in row ``2j``, its
        log(tau - tau_min) network in row ``2j + 1``
        (:mod:`hhsym.estimate.losses.kernels`).
    sizes, norms : network layout and per-network ``[center, scale, delta]``.
    nodes : (K,) potentials (mV).
    tau_min : float
        Time-constant floor (ms).
    XI, LA : (ng, K) out.
    DX, DL : (ng, K, 2P) out, d x_inf/dθ_gate and d lambda/dθ_gate (if ``want_jac``);
        the columns are ``[θ_x, θ_tau]``, so ``DX[..., P:]`` and ``DL[..., :P]`` are zero.
    """
    ng = XI.shape[0]
    P = thetas.shape[1]
    g1 = np.empty(P)
    g2 = np.empty(P)
    gt = np.empty(P)
    work = np.empty(2 * int(sizes.sum()) + 2)
    for j in range(ng):
        for i in range(nodes.shape[0]):
            xinf, lam, _, _, cx, cl = _gate_rates(tau_min, thetas[2 * j], thetas[2 * j + 1], sizes,
                                                  norms[2 * j], norms[2 * j + 1], nodes[i], g1, g2, gt, work)
            XI[j, i] = xinf
            LA[j, i] = lam
            if want_jac:
                for p in range(P):
                    DX[j, i, p] = cx * g1[p]
                    DX[j, i, P + p] = 0.0
                    DL[j, i, p] = 0.0
                    DL[j, i, P + p] = cl * g2[p]


@njit(cache=True, nogil=True)
def gate_pass_table(V, I, dt, C, ch_g, ch_E, gate_ch, gate_pow, idx, wt, idx0, wt0, XI, LA, DX, DL, rec_idx,
                    want_jac, Q_rec, G_rec, X_rec, S_rec, O_rec):
    r"""Stage-1 pass over one (refined) trace with tabulated gate quantities.

    Gates by the exponential midpoint rule (Rush–Larsen with the gate
    quantities at the midpoint of step ``k``, interpolated from the node
    tables at ``(idx[k], wt[k])``; second order), the charge
    :math:`Q(t) = \int_0^t (I - I_\mathrm{ion}(V, x))/C_m\,dt` (mV) by the
    trapezoid rule; forward sensitivities are the exact derivatives of this
    discrete map.

    Parameters
    ----------
    V, I : (n,) potential (mV) and current (µA/cm²) on the step ``dt`` (ms).
    C : float
        Capacitance (µF/cm²).
    idx, wt : (n - 1,) node lookups of the step midpoints; ``idx0, wt0`` of V[0].
    XI, LA, DX, DL : node tables from :func:`node_tables`.
    rec_idx : increasing sample indices at which to record.
    Q_rec : (nrec,) out, charge integral (mV).  G_rec : (nrec, ng 2P) out, dQ/dθ.
    X_rec : (nrec, ng) out, gates.  S_rec : (nrec, ng, 2P) out, d gate / d own params.
    O_rec : (nrec, 2 nch) or (0, 2 nch) out, if not empty: per channel ``c`` the integrals
        :math:`\int_0^t o_c\,dt` (ms) and :math:`\int_0^t o_c V\,dt` (mV ms) by the same trapezoid rule,
        :math:`o_c` being the product of the channel's gates raised to their powers (1 for a leak):
        what the charge's derivatives with respect to ``ch_g`` and ``ch_E`` are made of.

    Returns
    -------
    bool
        False if a non-finite value appeared.
    """
    n = V.shape[0]
    ng = gate_ch.shape[0]
    P2 = DX.shape[2] if want_jac else 0
    x = np.empty(ng)
    S = np.zeros((ng, P2))
    H = np.zeros((ng, P2))
    dF0 = np.zeros((ng, P2))
    dIdx = np.empty(ng)
    _gate_start(x, S, XI, DX, idx0, wt0)
    Qsum = 0.0
    F0 = 0.0
    r = 0
    nrec = rec_idx.shape[0]
    nch = ch_g.shape[0]
    want_open = O_rec.shape[0] > 0
    o = np.ones(nch)
    Osum = np.zeros(2 * nch)
    O0 = np.zeros(2 * nch)
    for k in range(n):
        I_ion, _ = _currents(V[k], x, ch_g, ch_E, gate_ch, gate_pow, dIdx)
        F = (I[k] - I_ion) / C
        if k == 0:
            F0 = F
        Qsum += dt * F
        if want_open:
            for c in range(nch):
                o[c] = 1.0
            for j in range(ng):
                o[gate_ch[j]] *= x[j] ** gate_pow[j]
            for c in range(nch):
                Osum[c] += dt * o[c]
                Osum[nch + c] += dt * o[c] * V[k]
                if k == 0:
                    O0[c] = o[c]
                    O0[nch + c] = o[c] * V[k]
        if want_jac:
            for j in range(ng):
                w = -dt * dIdx[j] / C
                for p in range(P2):
                    H[j, p] += w * S[j, p]
                if k == 0:
                    for p in range(P2):
                        dF0[j, p] = -dIdx[j] / C * S[j, p]
        while r < nrec and rec_idx[r] == k:
            Q_rec[r] = Qsum - 0.5 * dt * (F0 + F)
            for j in range(ng):
                X_rec[r, j] = x[j]
            if want_open:
                for c in range(nch):
                    O_rec[r, c] = Osum[c] - 0.5 * dt * (O0[c] + o[c])
                    O_rec[r, nch + c] = Osum[nch + c] - 0.5 * dt * (O0[nch + c] + o[c] * V[k])
            if want_jac:
                for j in range(ng):
                    w = -dIdx[j] / C
                    for p in range(P2):
                        G_rec[r, j * P2 + p] = H[j, p] - 0.5 * dt * (dF0[j, p] + w * S[j, p])
                        S_rec[r, j, p] = S[j, p]
            r += 1
        if k == n - 1:
            break
        if not np.isfinite(Qsum):
            return False
        _gate_step(x, S, XI, LA, DX, DL, idx[k], wt[k], dt, want_jac)
    return True


@njit(cache=True, nogil=True, inline="always")
def _gate_start(x, S, XI, DX, idx0, wt0):
    """Every gate at its steady state at the first sample's node lookup ``(idx0, wt0)``, with ``S``."""
    for j in range(x.shape[0]):
        x[j] = (1.0 - wt0) * XI[j, idx0] + wt0 * XI[j, idx0 + 1]
        for p in range(S.shape[1]):
            S[j, p] = (1.0 - wt0) * DX[j, idx0, p] + wt0 * DX[j, idx0 + 1, p]


@njit(cache=True, nogil=True, inline="always")
def _gate_step(x, S, XI, LA, DX, DL, i, w1, dt, want_jac):
    """One exponential-midpoint step of every gate (and its sensitivities ``S``) at node lookup ``(i, w1)``."""
    w0 = 1.0 - w1
    for j in range(x.shape[0]):
        xinf = w0 * XI[j, i] + w1 * XI[j, i + 1]
        lam = w0 * LA[j, i] + w1 * LA[j, i + 1]
        E = np.exp(-lam * dt)
        dev = x[j] - xinf
        if want_jac:
            a = 1.0 - E
            b = -dev * dt * E
            for p in range(S.shape[1]):
                S[j, p] = E * S[j, p] + a * (w0 * DX[j, i, p] + w1 * DX[j, i + 1, p]) \
                    + b * (w0 * DL[j, i, p] + w1 * DL[j, i + 1, p])
        x[j] = xinf + dev * E


@njit(cache=True, nogil=True)
def gate_starts_table(n_gates, dt, idx, wt, idx0, wt0, XI, LA, DX, DL, rec_idx, want_jac, X_rec, S_rec):
    """The gates of :func:`gate_pass_table` (same steps, same values), without the charge, recorded at ``rec_idx``.

    What the output error needs at its window starts: a gate pass costs no
    ionic currents and no charge sensitivities here.

    Parameters
    ----------
    n_gates : int
    dt : float
        Step (ms) of the refined trace.
    idx, wt, idx0, wt0, XI, LA, DX, DL, rec_idx, want_jac :
        As in :func:`gate_pass_table`.
    X_rec : (nrec, ng) out, gates.  S_rec : (nrec, ng, 2P) out, d gate / d own params.

    Returns
    -------
    bool
        False if a non-finite value appeared.
    """
    ng = n_gates
    P2 = DX.shape[2] if want_jac else 0
    x = np.empty(ng)
    S = np.zeros((ng, P2))
    _gate_start(x, S, XI, DX, idx0, wt0)
    r = 0
    nrec = rec_idx.shape[0]
    k = 0
    while r < nrec:
        while k < rec_idx[r]:
            _gate_step(x, S, XI, LA, DX, DL, idx[k], wt[k], dt, want_jac)
            k += 1
        for j in range(ng):
            if not np.isfinite(x[j]):
                return False
            X_rec[r, j] = x[j]
        if want_jac:
            for j in range(ng):
                for p in range(P2):
                    S_rec[r, j, p] = S[j, p]
        r += 1
    return True
