r"""The estimator's shooting loss for closed-form rates, with exact Jacobians.

:class:`ShootingLoss` evaluates, for a :class:`~hhsym.model.ConductanceModel`
whose rates are closed-form expressions (possibly with free rate constants),
the same cost the :class:`~hhsym.estimate.RateEstimator` minimises in its
final stage (:mod:`hhsym.estimate.losses.charge_balance`), by the same kernels:

* **stage 1** (gates driven by the measured V): per window
  :math:`[t_a, t_b]` of ``window`` ms the residual
  :math:`V(t_b) - V(t_a) - \int_{t_a}^{t_b} (I - I_\mathrm{ion}(V_\mathrm{meas}, x))/C_m\,dt`
  (mV), gates by the exponential midpoint rule on the sub-stepped recording
  (:func:`hhsym.estimate.losses.tables.gate_pass_table`);
* **stage 2** (multiple shooting): :math:`V_\mathrm{model}(t) - V_\mathrm{meas}(t)`
  (mV) every ``shooting_stride`` ms on ``n_shooting`` free-running windows of
  ``shooting_window`` ms per trace, each started from the measured V and the
  stage-1 gates, classical RK4 on the data grid with the current
  interpolated linearly (:func:`hhsym.estimate.losses.trajectory_kernel.trajectory_pass`).

Residuals are scaled by :math:`1/\sqrt{n_1}` and :math:`\sqrt{w/n_2}` as in
the estimator, and the reported cost is :math:`\tfrac12\lVert r\rVert^2`
(mV²), the estimator's ``cost_`` without its ridge term.

The rates enter both kernels as node tables
(:class:`~hhsym.estimate.rates.expression_rates.ExpressionRates`: each
expression and its exact gradient in the free constants, tabulated over
voltage).  Stage 1 uses the estimator's own table
(:data:`~hhsym.estimate.losses.tables.NODE_SPACING` mV over the recorded
range); stage 2, where the model's V is free, a table :data:`SHOOT_MARGIN` mV
wider on each side and :data:`SHOOT_SPACING` mV fine, so its linear
interpolation (error :math:`\tfrac18 h^2 |r''|`) stays below 1e-6 of a rate.
Any expression a backend returns (forms, Operon, PySR) is supported, with
exact forward sensitivities and nothing compiled per model.
"""

from __future__ import annotations

import numpy as np
import sympy

from hhsym.errors import SimulationError, invalid
from hhsym.estimate.losses.charge_balance import DV_SCALE, ChargeBalance
from hhsym.estimate.losses.tables import VoltageTable
from hhsym.estimate.losses.trajectory_kernel import NO_SCALARS, trajectory_pass
from hhsym.estimate.rates.expression_rates import ExpressionRates
from hhsym.symbolic import safe_expression

__all__ = ["ShootingLoss", "SHOOT_MARGIN", "SHOOT_SPACING"]

#: Stage-2 tables reach this far (mV) beyond the recorded voltage range (beyond it rates are held constant).
SHOOT_MARGIN = 30.0
#: Node spacing (mV) of the stage-2 tables.
SHOOT_SPACING = 0.01


class ShootingLoss:
    """The estimator's stage-1 + multiple-shooting cost for a closed-form model.

    Parameters
    ----------
    model : ConductanceModel
        Structure (C_m in µF/cm², g in mS/cm², E in mV, gate powers) and rate
        expressions (1/ms) in V (mV).
    data : list of (float, ndarray, ndarray)
        Sampling step (ms), measured V (mV) and injected I (µA/cm²) per
        trace, as returned by :func:`hhsym.estimate.checks.as_recordings`.
    free : sequence of str
        Rate parameters of ``model`` that are the loss's parameters (in this
        order); the others keep the model's values.
    window, burn_in, shooting_window, shooting_stride : float
        Stage-1 window, excluded start of each trace, stage-2 window and
        spacing of stage-2 residuals (ms); defaults as in the estimator.
    n_shooting : int
        Stage-2 windows per trace (0: stage 1 only).
    shooting_weight : float
        Relative weight of the stage-2 cost.
    dv_scale : float or None
        Voltage scale (mV) of the stage-1 window weights, as the estimator's
        option of that name (:func:`hhsym.estimate.losses.charge_balance.window_weights`).
    substeps : int, optional
        Stage-1 sub-steps per sample (:func:`hhsym.estimate.losses.tables.refine`);
        default as in the estimator.
    """

    def __init__(self, model, data, free=(), window=0.25, burn_in=0.0, shooting_window=3.0,
                 n_shooting=40, shooting_stride=0.1, shooting_weight=1.0, dv_scale=DV_SCALE, substeps=None):
        self.model = model
        self.free = tuple(free)
        missing = [p for p in self.free if p not in model.rate_params]
        if missing:
            raise invalid("free", missing, f"rate parameters of the model ({', '.join(model.rate_params)})")
        fixed = {sympy.Symbol(k, real=True): v for k, v in model.rate_params.items() if k not in self.free}
        exprs, constants = {}, {}
        names = set(self.free)
        for g in model.gates:
            for kind in ("alpha", "beta"):
                key = f"{kind}_{g.name}"
                expr = safe_expression(model.rates[key]).xreplace(fixed)
                exprs[key] = expr
                constants[key] = sorted((s.name for s in expr.free_symbols if s.name in names),
                                        key=self.free.index)
        owned = [c for k in exprs for c in constants[k]]
        shared = sorted({c for c in owned if owned.count(c) > 1})
        if shared:
            raise invalid("free", shared, "constants that each appear in one rate only")
        self.rates_ = ExpressionRates([g.name for g in model.gates], exprs, constants)
        order = [self.rates_.names.index(c) for c in self.free if c in self.rates_.names]
        unused = [c for c in self.free if c not in self.rates_.names]
        if unused:
            raise invalid("free", unused, "rate parameters that appear in the model's rate expressions")
        self._order = np.array(order, dtype=np.int64)  # self.free[i] is rates_.names[order[i]]
        self.shooting_weight = float(shooting_weight)
        self.problem = ChargeBalance(self.rates_, model, data, window=window, burn_in=burn_in, dv_scale=dv_scale,
                                     substeps=substeps, shooting_window=shooting_window, n_shooting=n_shooting,
                                     shooting_stride=shooting_stride)
        nodes = self.problem.table.nodes
        self.shoot_table = VoltageTable(float(nodes[0]) - SHOOT_MARGIN, float(nodes[-1]) + SHOOT_MARGIN,
                                        spacing=SHOOT_SPACING)

    # ------------------------------------------------------------------ parameters
    def _layout(self, p):
        """Gate-layout parameters of ``rates_`` from values of :attr:`free` (default: the model's)."""
        if p is None:
            p = [self.model.rate_params[k] for k in self.free]
        p = np.asarray(p, dtype=float).ravel()
        if p.size != len(self.free):
            raise invalid("p", p.size, f"{len(self.free)} values, one per free rate parameter")
        flat = np.empty(len(self.free))
        flat[self._order] = p
        return self.rates_.pack(flat)

    def _columns(self):
        """Columns of the gate layout, in the order of :attr:`free`."""
        return self.rates_.used[self._order]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, p=None, jac=False):
        """Scaled residuals (and their exact Jacobian in the free parameters, in their order).

        Parameters
        ----------
        p : array_like (len(free),), optional
            Values of the free rate parameters (default: the model's).
        jac : bool

        Returns
        -------
        r : ndarray
            Stage-1 residuals times :math:`\\sqrt{1/n_1}`, then stage-2
            residuals times :math:`\\sqrt{w/n_2}` (mV).
        J : ndarray (len(r), len(free)), only if ``jac``

        Raises
        ------
        SimulationError
            If a rate is not finite on the data or a window diverges.
        """
        q = self._layout(p)
        pr = self.problem
        rates = self.rates_
        tabs = rates.tables(q, pr.table.nodes, jac)
        wide = rates.tables(q, self.shoot_table.nodes, jac)
        npg = rates.n_per_gate
        NP = rates.ng * npg
        s1 = 1.0 / np.sqrt(max(pr.n1, 1e-12))
        s2 = np.sqrt(self.shooting_weight / max(pr.n2, 1))
        a = pr.arr
        rs, Js = [], []
        shots, shot_J = [], []
        for tr in pr.traces:
            ok, Q, G, X, S, _ = pr._gates(tabs, tr, jac, NP, pr.electrical(None))
            if not ok:
                raise SimulationError("the rates are not finite on the measured voltages")
            w = s1 * tr["w1"]
            rs.append(w * (tr["dV"] - np.diff(Q[tr["ib"]])))
            if jac:
                Js.append(-w[:, None] * np.diff(G[tr["ib"]], axis=0))
            nw = len(tr["starts"])
            if nw == 0:
                continue
            Ls, stride = tr["Ls"], tr["stride"]
            nres = Ls // stride + 1
            R = np.empty((nw, nres))
            J2 = np.empty((R.size if jac else 0, NP))
            JY = np.empty((R.size if jac else 0, 1 + rates.ng))
            y0 = np.column_stack([tr["V"][tr["starts"]], X[tr["is_"]]])
            S0 = np.ascontiguousarray(S[tr["is_"]]) if jac else np.zeros((nw, rates.ng, 0))
            ok = trajectory_pass(tr["V"], tr["I"], tr["dt"], 1, a["C"], a["ch_g"], a["ch_E"], a["gate_ch"],
                                 a["gate_pow"], self.shoot_table.v0, self.shoot_table.h, *wide, tr["starts"], Ls,
                                 stride, np.ascontiguousarray(y0), S0, jac, R, J2, JY, NO_SCALARS, NO_SCALARS)
            if not ok:
                raise SimulationError("a shooting window diverges")
            shots.append(s2 * R[:, 1:].ravel())  # column 0 is the window's start: zero by construction
            if jac:
                shot_J.append(s2 * J2.reshape(nw, nres, NP)[:, 1:].reshape(-1, NP))
        r = np.concatenate(rs + shots)
        if not np.all(np.isfinite(r)):
            raise SimulationError("non-finite shooting residuals")
        if not jac:
            return r
        J = np.concatenate(Js + shot_J, axis=0)[:, self._columns()]
        if not np.all(np.isfinite(J)):
            raise SimulationError("non-finite shooting Jacobian")
        return r, J

    def residuals(self, p=None):
        """Scaled residuals at ``p`` (:meth:`evaluate` without the Jacobian)."""
        return self.evaluate(p, False)

    def cost(self, p=None):
        """:math:`\\tfrac12\\lVert r\\rVert^2` (mV²) at ``p`` (default: the model's values)."""
        r = self.evaluate(p, False)
        return 0.5 * float(r @ r)

    def rates(self, V_values, p=None, jac=False):
        """Rates (1/ms) at ``V_values`` (mV), and their gradients in the free parameters if ``jac``.

        Returns
        -------
        dict
            Rate name -> ndarray (len(V)) or, with ``jac``, ``(values, gradient (len(V), len(free)))``.
        """
        q = self._layout(p)
        cols = {c: i for i, c in enumerate(self.free)}
        out = {}
        for k in self.rates_.rate_names:
            r, G = self.rates_.rate(k, q, V_values, jac)
            if not jac:
                out[k] = r
                continue
            full = np.zeros((r.size, len(self.free)))
            for i, c in enumerate(self.rates_.constants(k)):
                full[:, cols[c]] = G[:, i]
            out[k] = (r, full)
        return out
