"""Residuals and Jacobians of the two training stages (Python side of the kernels).

Both losses take a rate parametrisation
(:class:`~hhsym.estimate.rates.base.GateParametrisation`) and the recordings:

* :class:`ChargeBalance` — stage 1 (gates driven by the measured V), for any
  parametrisation: per window ``[t_a, t_b]`` of ``window`` ms, the residual
  ``V(t_b) - V(t_a) - ∫ (I - I_ion(V_meas, x)) / C_m dt`` (mV), evaluated
  from the parametrisation's node tables;
* :class:`ShootingProblem` — stage 1 and, for rate networks
  (:class:`~hhsym.estimate.rates.network_rates.NetworkRates`), stage 2
  (multiple shooting): ``V_model(t) - V_meas(t)`` (mV) on short
  free-running windows starting from the measured V and the stage-1 gates,
  appended (with weight ``shooting_weight``) to the stage-1 residuals.

Residuals are divided by the square root of their count so that the cost is
a mean square and the ridge penalty means the same for any amount of data.

Stage-1 windows are weighted by their voltage change
(:func:`window_weights`), and stage 1 runs on the recording refined in time
with gate quantities tabulated over voltage (:mod:`hhsym.estimate.losses.tables`).
The window layout and the model's kernel arrays are in :mod:`.windows`.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.losses.kernels import shoot_pass
from hhsym.estimate.losses.tables import VoltageTable, gate_pass_table, refine, substeps_for
from hhsym.estimate.losses.threads import parallel_map
from hhsym.estimate.rates.scalars import KIND_C, KIND_G
from hhsym.estimate.losses.windows import (DV_SCALE, JUMP_FACTOR, current_jumps, model_arrays, window_layout,
                                           window_weights)

__all__ = ["ChargeBalance", "ShootingProblem", "model_arrays", "window_layout", "window_weights", "current_jumps",
           "DV_SCALE", "JUMP_FACTOR"]

class ChargeBalance:
    r"""Stage-1 charge balance of a rate parametrisation on a list of uniformly sampled traces.

    Parameters
    ----------
    rates : GateParametrisation
        What maps the parameters to the gates' rates (:mod:`hhsym.estimate.rates.base`).
    model : ConductanceModel
        Template (structure, g in mS/cm², E in mV, C_m in µF/cm², powers).
    data : list of (dt, V, I)
        Sampling step (ms), potential (mV), current (µA/cm²) per trace.
    window : float
        Stage-1 window (ms).
    burn_in : float
        Time (ms) at the start of each trace excluded from the residuals.
    dv_scale : float or None
        Voltage scale (mV) of the charge-window weights (:func:`window_weights`).
    substeps : int, optional
        Stage-1 sub-steps per recorded sample (:func:`hhsym.estimate.losses.tables.refine`);
        default: enough for sub-steps of at most
        :data:`hhsym.estimate.losses.tables.SUBSTEP` ms.
    shooting_window, n_shooting, shooting_stride :
        Stage-2 windows laid out in the traces (ms, per trace, ms); none by
        default (:class:`ShootingProblem` uses them).
    scalars : ScalarParameters, optional
        Whole-cell scalars fitted with the rates (:mod:`hhsym.estimate.rates.scalars`): the parameter
        vector is then the rates' parameters followed by the scalars' internal coordinates.  The charge's
        exact derivatives with respect to them need no extra sensitivities (the gates are driven by the
        measured V):

        .. math::

            \frac{\partial Q}{\partial g_c} = -\frac{\int o_c (V - E_c)\,dt}{C_m}, \qquad
            \frac{\partial Q}{\partial E_c} = \frac{g_c \int o_c\,dt}{C_m}, \qquad
            \frac{\partial Q}{\partial C_m} = -\frac{Q}{C_m},

        :math:`o_c` the channel's open fraction.  The stage-2 residuals (:class:`ShootingProblem`) use the
        scalars' values but carry no derivatives with respect to them (zero columns: hold them fixed there).

    Attributes
    ----------
    table : VoltageTable
        The voltage nodes on which :attr:`rates` is tabulated.
    traces : list of dict
        Per trace: the refined recording, window edges and weights, node lookups.
    """

    def __init__(self, rates, model, data, window=0.25, burn_in=0.0, dv_scale=DV_SCALE, substeps=None,
                 shooting_window=3.0, n_shooting=0, shooting_stride=0.1, scalars=None):
        self.rates = rates
        self.scalars = scalars
        self.n_rates = rates.n_params
        self.n_scalars = 0 if scalars is None else scalars.n_params
        self.arr = model_arrays(model)
        self.ng = len(self.arr["gate_names"])
        if rates.n_gates != self.ng:
            raise ValueError(f"the parametrisation describes {rates.n_gates} gates, the model has {self.ng}")
        self.data = data
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

    @property
    def nodes(self):
        """ndarray: the voltage nodes (mV) of the tables."""
        return self.table.nodes

    def split(self, p):
        """``(rates' parameters, scalars' internal coordinates or None)`` of a parameter vector."""
        p = np.asarray(p, dtype=float)
        if self.scalars is None:
            return p, None
        return p[:self.n_rates], p[self.n_rates:]

    def tables(self, p, jac):
        """Node tables of the parametrisation at ``p`` (the rates' parameters) on this loss's nodes."""
        return self.rates.tables(p, self.table.nodes, jac)

    def electrical(self, q):
        """``(C, ch_g, ch_E)`` (µF/cm², mS/cm², mV): the template's, with the scalars at ``q`` written in."""
        a = self.arr
        if q is None:
            return float(a["C"]), a["ch_g"], a["ch_E"]
        return self.scalars.arrays(q, a)

    def _gates(self, tabs, tr, jac, NP, elec, want_open=False):
        a = self.arr
        nrec = len(tr["rec"])
        Q = np.empty(nrec)
        G = np.empty((nrec if jac else 0, NP))
        X = np.empty((nrec, self.ng))
        S = np.empty((nrec if jac else 0, self.ng, tabs[2].shape[2]))
        O = np.empty((nrec if want_open else 0, 2 * len(a["ch_g"])))
        C, g, E = elec
        ok = gate_pass_table(tr["Vf"], tr["If"], tr["dt"] / tr["M"], C, g, E, a["gate_ch"],
                             a["gate_pow"], tr["idx"], tr["wt"], tr["idx0"], tr["wt0"], *tabs, tr["rec_f"], jac,
                             Q, G, X, S, O)
        return ok, Q, G, X, S, O

    def _scalar_columns(self, q, elec, Q, O):
        """dQ/d(scalar internal coordinate) at the recorded samples, (nrec, n_scalars) (class docstring)."""
        C, g, E = elec
        nch = len(g)
        out = np.empty((len(Q), self.n_scalars))
        for i, (k, c) in enumerate(zip(self.scalars.kind, self.scalars.channel)):
            if k == KIND_C:
                out[:, i] = -Q / C
            elif k == KIND_G:
                out[:, i] = -(O[:, nch + c] - E[c] * O[:, c]) / C
            else:
                out[:, i] = g[c] * O[:, c] / C
        return out * self.scalars.chain(q)[None, :]

    def _shoot(self, tr, thetas, X, S, jac, elec):
        """Stage-2 residuals of one trace (only :class:`ShootingProblem` has them)."""
        raise NotImplementedError("multiple shooting needs a ShootingProblem of rate networks")

    def evaluate_tables(self, tabs, jac=True, thetas=None, q=None):
        """Stage-1 residuals (and Jacobian) from node tables; stage 1 + 2 given the networks.

        Parameters
        ----------
        tabs : tuple
            ``(XI, LA, DX, DL)`` node tables on :attr:`nodes` in the layout of
            :func:`hhsym.estimate.losses.tables.node_tables`, of any
            parametrisation; Jacobian columns follow ``DX``'s last axis, gate by gate.
        jac : bool
            Also return the Jacobian.
        thetas : ndarray (2 ng, P), optional
            The networks behind the tables (:class:`ShootingProblem` only); if
            given, the stage-2 (multiple shooting) residuals are appended.
        q : ndarray, optional
            The scalars' internal coordinates (with ``scalars``); their columns follow the rates'.

        Returns
        -------
        r : ndarray or None
            Scaled residuals (mV / sqrt(count)); ``None`` if non-finite.
        J : ndarray or None, only if ``jac``
        """
        if not all(np.all(np.isfinite(t)) for t in tabs):
            return (None, None) if jac else None
        NP = self.ng * tabs[2].shape[2]
        if self.scalars is not None and q is None:
            raise ValueError("a loss with scalars needs their coordinates q")
        elec = self.electrical(q)
        want_open = jac and q is not None
        rs, Js = [], []
        s1 = 1.0 / np.sqrt(max(self.n1, 1e-12))
        gates = parallel_map(lambda tr: self._gates(tabs, tr, jac, NP, elec, want_open), self.traces)  # side by side
        for tr, (ok, Q, G, X, S, O) in zip(self.traces, gates):
            if not ok:
                return (None, None) if jac else None
            ib = tr["ib"]
            w = s1 * tr["w1"]
            rs.append(w * (tr["dV"] - np.diff(Q[ib])))
            if jac:
                J1 = -w[:, None] * np.diff(G[ib], axis=0)
                if want_open:
                    J1 = np.hstack([J1, -w[:, None] * np.diff(self._scalar_columns(q, elec, Q, O)[ib], axis=0)])
                Js.append(J1)
            if thetas is not None and len(tr["starts"]):
                out = self._shoot(tr, thetas, X, S, jac, elec)
                if out is None:
                    return (None, None) if jac else None
                rs.append(out[0])
                if jac:
                    Js.append(np.hstack([out[1], np.zeros((out[1].shape[0], self.n_scalars))]))
        r = np.concatenate(rs)
        if not np.all(np.isfinite(r)):
            return (None, None) if jac else None
        if jac:
            return r, np.concatenate(Js, axis=0)
        return r

    def evaluate(self, p, jac=True):
        """Stage-1 residuals (mV / sqrt(count); ``None`` if non-finite) and, if ``jac``, the Jacobian at ``p``."""
        pr, q = self.split(p)
        return self.evaluate_tables(self.tables(pr, jac), jac, q=q)

    def residuals(self, p):
        """Scaled stage-1 residuals (mV / sqrt(count)); ``None`` if non-finite."""
        return self.evaluate(p, False)

    def cost(self, p):
        """Half the sum of squared residuals (``inf`` if non-finite)."""
        r = self.residuals(p)
        return np.inf if r is None else 0.5 * float(r @ r)

    def lm_fun(self, smooth=0.0):
        """``fun(p, jac)`` for :func:`~hhsym.estimate.optimise.lm.levenberg_marquardt` (exact Jacobian).

        Parameters
        ----------
        smooth : float
            Weight of the parametrisation's roughness penalty
            (:meth:`~hhsym.estimate.rates.base.GateParametrisation.penalty_rows`),
            appended to the residuals as ``sqrt(smooth) * D p``.
        """
        D = np.sqrt(float(smooth)) * self.rates.penalty_rows() if smooth > 0 else None
        if D is not None and self.n_scalars:
            D = np.hstack([D, np.zeros((D.shape[0], self.n_scalars))])

        def fun(p, jac):
            out = self.evaluate(p, jac)
            if D is None:
                return out
            if not jac:
                return None if out is None else np.concatenate([out, D @ p])
            if out[0] is None:
                return None, None
            return np.concatenate([out[0], D @ p]), np.vstack([out[1], D])
        return fun


class ShootingProblem(ChargeBalance):
    """Stage-1 and stage-2 residuals of rate networks on a list of uniformly sampled traces.

    Parameters
    ----------
    rates : NetworkRates
        The networks' layout, normalisations and tau_min
        (:class:`~hhsym.estimate.rates.network_rates.NetworkRates`); the parameter
        vector ``theta`` is all networks, ``2 * n_gates * P`` values.
    model : ConductanceModel
        Template (structure, g, E, C_m, powers).
    data : list of (dt, V, I)
        Sampling step (ms), potential (mV), current (µA/cm²) per trace.
    window, burn_in, dv_scale, substeps :
        As for :class:`ChargeBalance`.
    shooting_window : float
        Stage-2 window length (ms).
    n_shooting : int
        Stage-2 windows per trace (evenly spaced).
    shooting_stride : float
        Spacing (ms) of stage-2 residuals within a window.
    shooting_weight : float
        Relative weight of the stage-2 cost.
    scalars : ScalarParameters, optional
        As for :class:`ChargeBalance` (stage 2 holds them: no derivatives).
    """

    def __init__(self, rates, model, data, window=0.25, burn_in=0.0, shooting_window=3.0, n_shooting=40,
                 shooting_stride=0.1, shooting_weight=1.0, dv_scale=DV_SCALE, substeps=None, scalars=None):
        super().__init__(rates, model, data, window=window, burn_in=burn_in, dv_scale=dv_scale, substeps=substeps,
                         shooting_window=shooting_window, n_shooting=n_shooting, shooting_stride=shooting_stride,
                         scalars=scalars)
        self.shooting_weight = float(shooting_weight)

    sizes = property(lambda self: self.rates.sizes, doc="int ndarray: network layer widths.")
    norms = property(lambda self: self.rates.norms, doc="ndarray (2 n_gates, 3): per-network normalisations.")
    tau_min = property(lambda self: self.rates.tau_min, doc="float: time-constant floor (ms).")

    def P(self):
        """int: parameters per network."""
        return self.rates.P

    def _shoot(self, tr, thetas, X, S, jac, elec):
        a = self.arr
        C, g, E = elec
        s2 = np.sqrt(self.shooting_weight / max(self.n2, 1))
        nres = tr["Ls"] // tr["stride"]
        R = np.empty((len(tr["starts"]), nres))
        J2 = np.empty((R.size if jac else 0, thetas.size))
        Sk = np.ascontiguousarray(S[tr["is_"]]) if jac else np.empty((len(tr["starts"]), self.ng, 0))
        ok = shoot_pass(tr["V"], tr["I"], tr["dt"], C, g, E, a["gate_ch"],
                        a["gate_pow"], thetas, self.sizes, self.norms, tr["starts"], tr["Ls"],
                        tr["stride"], np.ascontiguousarray(X[tr["is_"]]), Sk, jac, R, J2, self.tau_min)
        if not ok:
            return None
        return s2 * R.ravel(), (s2 * J2 if jac else None)

    def evaluate(self, theta, jac=True, stage=1):
        """Residual vector (and Jacobian) of stage 1 or stage 1 + 2.

        Parameters
        ----------
        theta : ndarray
            Flat parameters of all networks (then, with ``scalars``, the scalars' internal coordinates).
        jac : bool
            Also return the Jacobian.
        stage : {1, 2}

        Returns
        -------
        r : ndarray
            Scaled residuals (mV / sqrt(count)); ``None`` if non-finite.
        J : ndarray, only if ``jac``
        """
        pr, q = self.split(theta)
        thetas = self.rates.thetas(pr)
        tabs = self.rates.tables(thetas, self.table.nodes, jac)
        return self.evaluate_tables(tabs, jac, thetas if stage == 2 else None, q=q)
