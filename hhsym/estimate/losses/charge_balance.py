"""Residuals and Jacobians of the two training stages (Python side of the kernels).

A :class:`ShootingProblem` holds validated traces and the template model's
structure as arrays and evaluates, for a flat parameter vector ``theta``
(all rate networks, ``2 * n_gates * P`` values):

* stage 1 (gates driven by the measured V): per window ``[t_a, t_b]`` of
  ``window`` ms, the residual
  ``V(t_b) - V(t_a) - ∫ (I - I_ion(V_meas, x)) / C_m dt`` (mV);
* stage 2 (multiple shooting): ``V_model(t) - V_meas(t)`` (mV) on short
  free-running windows starting from the measured V and the stage-1 gates,
  appended (with weight ``shooting_weight``) to the stage-1 residuals.

Residuals are divided by the square root of their count so that the cost is
a mean square and the ridge penalty means the same for any amount of data.

Each gate is two networks, its steady state and time constant
(logit x_inf and log(tau - tau_min), as in
:class:`~hhsym.estimate.rates.network.GateNetworks`; see
:mod:`hhsym.estimate.losses.kernels`).

Stage-1 windows are weighted by their voltage change
(:func:`window_weights`), and stage 1 runs on the recording refined in time
with gate quantities tabulated over voltage (:mod:`hhsym.estimate.losses.tables`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hhsym.estimate.losses.kernels import shoot_pass
from hhsym.estimate.losses.tables import VoltageTable, gate_pass_table, node_tables, refine, substeps_for

__all__ = ["ShootingProblem", "model_arrays", "window_layout", "window_weights", "current_jumps", "DV_SCALE"]


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


#: Threads running the stage-1 passes of different traces (the kernels release the GIL).
_POOL = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="hhsym-stage1")

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


class ShootingProblem:
    """Stage-1 and stage-2 residuals for a list of uniformly sampled traces.

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, g, E, C_m, powers).
    data : list of (dt, V, I)
        Sampling step (ms), potential (mV), current (µA/cm²) per trace.
    sizes : int ndarray
        Network layer widths ``[1, ..., 1]``.
    norms : ndarray (2 n_gates, 3)
        Per-network ``[center, scale, delta]`` (rows as in ``theta``: gate
        ``j``'s logit-x_inf network, then its log(tau - tau_min) network).
    window : float
        Stage-1 window (ms).
    burn_in : float
        Time (ms) at the start of each trace excluded from the residuals.
    shooting_window : float
        Stage-2 window length (ms).
    n_shooting : int
        Stage-2 windows per trace (evenly spaced).
    shooting_stride : float
        Spacing (ms) of stage-2 residuals within a window.
    shooting_weight : float
        Relative weight of the stage-2 cost.
    tau_min : float
        Time-constant floor (ms) of every gate: tau = tau_min + exp(f_tau).
    dv_scale : float or None
        Voltage scale (mV) of the charge-window weights (:func:`window_weights`).
    substeps : int, optional
        Stage-1 sub-steps per recorded sample (:func:`hhsym.estimate.losses.tables.refine`);
        default: enough for sub-steps of at most
        :data:`hhsym.estimate.losses.tables.SUBSTEP` ms.
    """

    def __init__(self, model, data, sizes, norms, window=0.25, burn_in=0.0, shooting_window=3.0,
                 n_shooting=40, shooting_stride=0.1, shooting_weight=1.0, tau_min=0.01, dv_scale=DV_SCALE,
                 substeps=None):
        self.tau_min = float(tau_min)
        self.arr = model_arrays(model)
        self.ng = len(self.arr["gate_names"])
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.norms = np.ascontiguousarray(norms, dtype=float)
        self.data = data
        self.shooting_weight = float(shooting_weight)
        self.traces = []
        for dt, V, I in data:
            bounds, starts, Ls, stride, w1 = window_layout(V, dt, window, burn_in, shooting_window,
                                                           shooting_stride, n_shooting, dv_scale, I=I)
            rec = np.unique(np.concatenate([bounds, starts]))
            M = substeps_for(dt) if substeps is None else int(substeps)
            Vf, If = refine(V, I, M)
            self.traces.append(dict(dt=dt, V=V, I=I, bounds=bounds, starts=starts, rec=rec, M=M, Vf=Vf, If=If,
                                    ib=np.searchsorted(rec, bounds), is_=np.searchsorted(rec, starts),
                                    Ls=Ls, stride=stride, dV=np.diff(V[bounds]), w1=w1))
        lo = min(float(tr["Vf"].min()) for tr in self.traces)
        hi = max(float(tr["Vf"].max()) for tr in self.traces)
        self.table = VoltageTable(lo, hi)
        for tr in self.traces:
            Vf = tr["Vf"]
            tr["idx"], tr["wt"] = self.table.lookup(0.5 * (Vf[1:] + Vf[:-1]))
            i0, w0 = self.table.lookup(Vf[:1])
            tr["idx0"], tr["wt0"] = int(i0[0]), float(w0[0])
            tr["rec_f"] = np.ascontiguousarray(tr["rec"] * tr["M"])
        self.n1 = sum(float(np.sum(tr["w1"] ** 2)) for tr in self.traces)
        self.n2 = sum(len(tr["starts"]) * (tr["Ls"] // tr["stride"]) for tr in self.traces)

    def P(self):
        """int: parameters per network."""
        from hhsym.estimate.rates.netkernels import n_params
        return n_params(self.sizes)

    def tables(self, thetas, jac):
        """Node tables of every gate (:func:`hhsym.estimate.losses.tables.node_tables`)."""
        K = len(self.table.nodes)
        P2 = 2 * thetas.shape[1]
        XI = np.empty((self.ng, K))
        LA = np.empty((self.ng, K))
        DX = np.empty((self.ng, K if jac else 0, P2))
        DL = np.empty((self.ng, K if jac else 0, P2))
        node_tables(thetas, self.sizes, self.norms, self.table.nodes, self.tau_min, jac, XI, LA, DX, DL)
        return XI, LA, DX, DL

    def _gates(self, tabs, tr, jac, NP):
        a = self.arr
        nrec = len(tr["rec"])
        Q = np.empty(nrec)
        G = np.empty((nrec if jac else 0, NP))
        X = np.empty((nrec, self.ng))
        S = np.empty((nrec if jac else 0, self.ng, tabs[2].shape[2]))
        ok = gate_pass_table(tr["Vf"], tr["If"], tr["dt"] / tr["M"], a["C"], a["ch_g"], a["ch_E"], a["gate_ch"],
                             a["gate_pow"], tr["idx"], tr["wt"], tr["idx0"], tr["wt0"], *tabs, tr["rec_f"], jac,
                             Q, G, X, S)
        return ok, Q, G, X, S

    def evaluate(self, theta, jac=True, stage=1):
        """Residual vector (and Jacobian) of stage 1 or stage 1 + 2.

        Parameters
        ----------
        theta : ndarray
            Flat parameters of all networks.
        jac : bool
            Also return the Jacobian.
        stage : {1, 2}

        Returns
        -------
        r : ndarray
            Scaled residuals (mV / sqrt(count)); ``None`` if non-finite.
        J : ndarray, only if ``jac``
        """
        thetas = np.ascontiguousarray(theta.reshape(2 * self.ng, -1))
        tabs = self.tables(thetas, jac)
        return self.evaluate_tables(tabs, jac, thetas if stage == 2 else None)

    def evaluate_tables(self, tabs, jac=True, thetas=None):
        """Stage-1 residuals (and Jacobian) from node tables; stage 1 + 2 given the networks.

        Parameters
        ----------
        tabs : tuple
            ``(XI, LA, DX, DL)`` node tables in the layout of
            :func:`hhsym.estimate.losses.tables.node_tables`, of the networks
            (:meth:`tables`) or of any other description of the gates (e.g. the
            curve families of :mod:`hhsym.estimate.rates.curves`); Jacobian
            columns follow ``DX``'s last axis, gate by gate.
        jac : bool
            Also return the Jacobian.
        thetas : ndarray (2 ng, P), optional
            The networks behind the tables; if given, the stage-2 (multiple
            shooting) residuals are appended.

        Returns
        -------
        r : ndarray or None
        J : ndarray or None, only if ``jac``
        """
        if not all(np.all(np.isfinite(t)) for t in tabs):
            return (None, None) if jac else None
        NP = self.ng * tabs[2].shape[2]
        rs, Js = [], []
        s1 = 1.0 / np.sqrt(max(self.n1, 1e-12))
        s2 = np.sqrt(self.shooting_weight / max(self.n2, 1))
        a = self.arr
        gates = _POOL.map(lambda tr: self._gates(tabs, tr, jac, NP), self.traces)
        for tr, (ok, Q, G, X, S) in zip(self.traces, gates):
            if not ok:
                return (None, None) if jac else None
            ib = tr["ib"]
            w = s1 * tr["w1"]
            rs.append(w * (tr["dV"] - np.diff(Q[ib])))
            if jac:
                Js.append(-w[:, None] * np.diff(G[ib], axis=0))
            if thetas is not None and len(tr["starts"]):
                nres = tr["Ls"] // tr["stride"]
                R = np.empty((len(tr["starts"]), nres))
                J2 = np.empty((R.size if jac else 0, thetas.size))
                Sk = np.ascontiguousarray(S[tr["is_"]]) if jac else np.empty((len(tr["starts"]), self.ng, 0))
                ok = shoot_pass(tr["V"], tr["I"], tr["dt"], a["C"], a["ch_g"], a["ch_E"], a["gate_ch"],
                                a["gate_pow"], thetas, self.sizes, self.norms, tr["starts"], tr["Ls"],
                                tr["stride"], np.ascontiguousarray(X[tr["is_"]]), Sk, jac, R, J2, self.tau_min)
                if not ok:
                    return (None, None) if jac else None
                rs.append(s2 * R.ravel())
                if jac:
                    Js.append(s2 * J2)
        r = np.concatenate(rs)
        if not np.all(np.isfinite(r)):
            return (None, None) if jac else None
        if jac:
            return r, np.concatenate(Js, axis=0)
        return r
