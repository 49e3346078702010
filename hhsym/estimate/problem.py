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

Each gate's two networks are read in one of two parametrisations (see
:mod:`hhsym.estimate.kernels`): ``"gate"`` (logit x_inf and
log(tau - tau_min), what :class:`~hhsym.estimate.RateEstimator` trains) or
``"log_rate"`` (log alpha and log beta, one :class:`~hhsym.estimate.RateNetwork`
per rate; the default, kept for callers that hold such networks).

Optionally (``spike_weight`` < 1) stage-1 windows in which V reaches above
``spike_threshold`` are down-weighted: residuals there are dominated by the
fast Na/K currents of the upstroke and, with the data's finite step, can
swamp the sub-threshold windows that carry most of the information about the
slow gates and the threshold.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.kernels import gate_pass, shoot_pass

__all__ = ["ShootingProblem", "model_arrays"]


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


def window_layout(V, dt, window, burn_in, shooting_window, shooting_stride, n_shooting, spike_weight,
                  spike_threshold):
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
    spike_weight, spike_threshold : float
        Weight of charge windows whose V exceeds ``spike_threshold`` (mV).

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
    w1 = np.ones(max(len(bounds) - 1, 0))
    if spike_weight != 1.0 and len(bounds) > 1:
        vmax = np.maximum.reduceat(V[b0:bounds[-1] + 1], bounds[:-1] - b0)
        w1[vmax > spike_threshold] = float(spike_weight)
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
        Per-network ``[center, scale, delta]``.
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
    parametrisation : {"log_rate", "gate"}
        How each gate's two networks define its rates (module docstring).
    tau_min : float
        Time-constant floor (ms) of the ``"gate"`` parametrisation.
    spike_weight : float
        Weight (0–1] of the stage-1 windows in which V exceeds ``spike_threshold``.
    spike_threshold : float
        Potential (mV) above which a window counts as part of a spike.
    """

    def __init__(self, model, data, sizes, norms, window=0.25, burn_in=0.0, shooting_window=3.0,
                 n_shooting=40, shooting_stride=0.1, shooting_weight=1.0, parametrisation="log_rate",
                 tau_min=0.01, spike_weight=1.0, spike_threshold=-30.0):
        if parametrisation not in ("log_rate", "gate"):
            raise ValueError(f"parametrisation must be 'log_rate' or 'gate', got {parametrisation!r}")
        self.mode = 0 if parametrisation == "log_rate" else 1
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
                                                           shooting_stride, n_shooting, spike_weight,
                                                           spike_threshold)
            rec = np.unique(np.concatenate([bounds, starts]))
            self.traces.append(dict(dt=dt, V=V, I=I, bounds=bounds, starts=starts, rec=rec,
                                    ib=np.searchsorted(rec, bounds), is_=np.searchsorted(rec, starts),
                                    Ls=Ls, stride=stride, dV=np.diff(V[bounds]), w1=w1))
        self.n1 = sum(float(np.sum(tr["w1"] ** 2)) for tr in self.traces)
        self.n2 = sum(len(tr["starts"]) * (tr["Ls"] // tr["stride"]) for tr in self.traces)

    def P(self):
        """int: parameters per network."""
        from hhsym.estimate.netkernels import n_params
        return n_params(self.sizes)

    def _gates(self, thetas, tr, jac, states):
        a = self.arr
        nrec = len(tr["rec"])
        P = thetas.shape[1]
        NP = thetas.size
        Q = np.empty(nrec)
        G = np.empty((nrec if jac else 0, NP))
        X = np.empty((nrec, self.ng))
        S = np.empty((nrec if jac else 0, self.ng, 2 * P))
        ok = gate_pass(tr["V"], tr["I"], tr["dt"], a["C"], a["ch_g"], a["ch_E"], a["gate_ch"], a["gate_pow"],
                       thetas, self.sizes, self.norms, tr["rec"], jac, Q, G, X, S, self.mode, self.tau_min)
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
        rs, Js = [], []
        s1 = 1.0 / np.sqrt(max(self.n1, 1))
        s2 = np.sqrt(self.shooting_weight / max(self.n2, 1))
        a = self.arr
        for tr in self.traces:
            ok, Q, G, X, S = self._gates(thetas, tr, jac, stage == 2)
            if not ok:
                return (None, None) if jac else None
            ib = tr["ib"]
            w = s1 * tr["w1"]
            rs.append(w * (tr["dV"] - np.diff(Q[ib])))
            if jac:
                Js.append(-w[:, None] * np.diff(G[ib], axis=0))
            if stage == 2 and len(tr["starts"]):
                nres = tr["Ls"] // tr["stride"]
                R = np.empty((len(tr["starts"]), nres))
                J2 = np.empty((R.size if jac else 0, thetas.size))
                Sk = np.ascontiguousarray(S[tr["is_"]]) if jac else np.empty((len(tr["starts"]), self.ng, 0))
                ok = shoot_pass(tr["V"], tr["I"], tr["dt"], a["C"], a["ch_g"], a["ch_E"], a["gate_ch"],
                                a["gate_pow"], thetas, self.sizes, self.norms, tr["starts"], tr["Ls"],
                                tr["stride"], np.ascontiguousarray(X[tr["is_"]]), Sk, jac, R, J2,
                                self.mode, self.tau_min)
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
