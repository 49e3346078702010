r"""The estimator's shooting loss, for closed-form rate expressions.

:class:`ShootingLoss` evaluates, for a :class:`~hhsym.model.ConductanceModel`
whose rates are closed-form expressions (possibly with free rate constants),
the same cost the :class:`~hhsym.estimate.RateEstimator` minimises in its
final stage (see :mod:`hhsym.estimate.losses.charge_balance`):

* **stage 1** (gates driven by the measured V): per window
  :math:`[t_a, t_b]` of ``window`` ms the residual
  :math:`V(t_b) - V(t_a) - \int_{t_a}^{t_b} (I - I_\mathrm{ion}(V_\mathrm{meas}, x))/C_m\,dt`
  (mV), gates stepped by the exponential midpoint rule (Rush–Larsen with the
  rates at :math:`(V_k + V_{k+1})/2`) from their steady state at the first
  sample, the integral by the trapezoid rule;
* **stage 2** (multiple shooting): :math:`V_\mathrm{model}(t) - V_\mathrm{meas}(t)`
  (mV) every ``shooting_stride`` ms on ``n_shooting`` free-running windows of
  ``shooting_window`` ms per trace, each started from the measured V and the
  stage-1 gates, integrated by classical RK4 on the data grid with the
  current interpolated linearly (here by :func:`hhsym.simulate.simulate`
  with a :class:`~hhsym.stimuli.FromArray` stimulus per window).

Residuals are scaled by :math:`1/\sqrt{n_1}` and
:math:`\sqrt{w/n_2}` as in the estimator, and the reported cost is
:math:`\tfrac12\lVert r\rVert^2` (mV²), i.e. the estimator's ``cost_``
without its ridge term.

Why not the estimator's own kernels: they evaluate rate *networks*
(:mod:`hhsym.estimate.rates.netkernels`) and cannot run a closed-form rate.  Here
each batch of parameter sets is one parallel :func:`~hhsym.simulate.simulate`
call over (parameter sets × windows), compiled once from sympy for the
parametric model (rate constants are model parameters varied per trace), so
any expression a backend returns (forms, Operon, PySR) is supported without
new derivative code; Jacobians are forward finite differences in that one
call (:meth:`ShootingLoss.jacobian`).
"""

from __future__ import annotations

import numpy as np
import sympy
from numba import njit

from hhsym.errors import SimulationError, invalid
from hhsym.estimate.losses.charge_balance import DV_SCALE, window_layout
from hhsym.estimate.losses.tables import refine, substeps_for
from hhsym.simulate import simulate
from hhsym.stimuli import FromArray
from hhsym.symbolic import V, safe_expression

__all__ = ["ShootingLoss"]


@njit(cache=True)
def _gate_recursion(x0, xinf, decay, X):
    """Exponential-midpoint gate update ``x <- xinf + (x - xinf) * decay``.

    x0 : (S, G) initial gates; xinf, decay : (S, G, n - 1); X : (S, G, n) out.
    """
    S, G, n1 = xinf.shape
    for s in range(S):
        for g in range(G):
            x = x0[s, g]
            X[s, g, 0] = x
            for k in range(n1):
                x = xinf[s, g, k] + (x - xinf[s, g, k]) * decay[s, g, k]
                X[s, g, k + 1] = x


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
        Rate parameters of ``model`` varied by :meth:`residuals` (columns of
        its parameter matrix, in this order).
    window, burn_in, shooting_window, shooting_stride : float
        Stage-1 window, excluded start of each trace, stage-2 window and
        spacing of stage-2 residuals (ms); defaults as in the estimator.
    n_shooting : int
        Stage-2 windows per trace (0: stage 1 only).
    shooting_weight : float
        Relative weight of the stage-2 cost.
    charge_weight : float
        Relative weight of the stage-1 cost (1 as in the estimator; 0 leaves
        multiple shooting alone).
    dv_scale : float or None
        Voltage scale (mV) of the stage-1 window weights, as the estimator's
        option of that name (:func:`hhsym.estimate.losses.charge_balance.window_weights`).
    substeps : int, optional
        Stage-1 sub-steps per sample (:func:`hhsym.estimate.losses.tables.refine`);
        default as in the estimator.
    """

    def __init__(self, model, data, free=(), window=0.25, burn_in=0.0, shooting_window=3.0,
                 n_shooting=40, shooting_stride=0.1, shooting_weight=1.0, charge_weight=1.0,
                 dv_scale=DV_SCALE, substeps=None):
        self.model = model
        self.free = tuple(free)
        missing = [p for p in self.free if p not in model.rate_params]
        if missing:
            raise invalid("free", missing, f"rate parameters of the model ({', '.join(model.rate_params)})")
        self.data = data
        fixed = {sympy.Symbol(k, real=True): v for k, v in model.rate_params.items() if k not in self.free}
        syms = [sympy.Symbol(k, real=True) for k in self.free]
        rates = model.rates
        self._rate_fns = {}
        for g in model.gates:
            for kind in ("alpha", "beta"):
                key = f"{kind}_{g.name}"
                expr = safe_expression(rates[key]).xreplace(fixed)
                self._rate_fns[key] = sympy.lambdify([V, *syms], expr, modules="numpy")
        self._structure()
        self.weight = float(shooting_weight)
        self.charge_weight = float(charge_weight)
        self.traces = []
        for dt, Vm, I in data:
            bounds, starts, Ls, stride, w1 = window_layout(Vm, dt, window, burn_in, shooting_window,
                                                           shooting_stride, n_shooting, dv_scale, I=I)
            M = substeps_for(dt) if substeps is None else int(substeps)
            Vf, If = refine(Vm, I, M)
            nres = Ls // stride
            t_win = dt * np.arange(Ls + 1)
            stims = [FromArray(t_win, I[s:s + Ls + 1]) for s in starts]
            target = np.array([Vm[s + stride * np.arange(1, nres + 1)] for s in starts]).reshape(len(starts), nres)
            self.traces.append(dict(dt=dt, V=Vm, I=I, M=M, Vf=Vf, If=If, bounds=bounds, starts=starts, Ls=Ls, stride=stride, w1=w1,
                                    nres=nres, stims=stims, target=target, dV=np.diff(Vm[bounds])))
        self.n1 = sum(float(np.sum(tr["w1"] ** 2)) for tr in self.traces)
        self.n2 = sum(len(tr["starts"]) * tr["nres"] for tr in self.traces)

    def _structure(self):
        m = self.model
        self.C = float(m.params["C_m"])
        self.gates = [g.name for g in m.gates]
        self.channels = [(ch.g, ch.E, [(self.gates.index(g.name), g.power) for g in ch.gates])
                         for ch in m.channels]

    # ------------------------------------------------------------------ pieces
    def _rates(self, key, Vv, P):
        """Rate ``key`` (1/ms) at V (mV, any shape) for each parameter set: (S, *V.shape)."""
        S = P.shape[0]
        cols = [P[:, i].reshape((S,) + (1,) * Vv.ndim) for i in range(P.shape[1])]
        with np.errstate(all="ignore"):
            out = np.asarray(self._rate_fns[key](Vv[None, ...], *cols), dtype=float)
        return np.broadcast_to(out, (S,) + Vv.shape)

    def gate_pass(self, tr, P):
        """Stage-1 gates (S, G, n) and charge residuals (S, n_windows) of one trace."""
        Vm, I, dt, M = tr["Vf"], tr["If"], tr["dt"] / tr["M"], tr["M"]
        S, G, n = P.shape[0], len(self.gates), Vm.shape[0]
        mid = 0.5 * (Vm[1:] + Vm[:-1])
        v0 = Vm[:1]
        xinf = np.empty((S, G, n - 1))
        decay = np.empty((S, G, n - 1))
        x0 = np.empty((S, G))
        with np.errstate(all="ignore"):  # checked for finiteness just below
            for j, g in enumerate(self.gates):
                a, b = self._rates(f"alpha_{g}", mid, P), self._rates(f"beta_{g}", mid, P)
                lam = a + b
                xinf[:, j] = a / lam
                decay[:, j] = np.exp(-lam * dt)
                a0, b0 = self._rates(f"alpha_{g}", v0, P), self._rates(f"beta_{g}", v0, P)
                x0[:, j] = (a0 / (a0 + b0))[:, 0]
        if not (np.all(np.isfinite(xinf)) and np.all(np.isfinite(decay)) and np.all(np.isfinite(x0))):
            raise SimulationError("the rates are not finite on the measured voltages")
        X = np.empty((S, G, n))
        _gate_recursion(np.ascontiguousarray(x0), np.ascontiguousarray(xinf), np.ascontiguousarray(decay), X)
        I_ion = np.zeros((S, n))
        with np.errstate(all="ignore"):  # non-finite values are rejected by residuals()
            for g_max, E, gates in self.channels:
                cond = np.full((S, n), g_max)
                for j, power in gates:
                    cond = cond * X[:, j] ** power
                I_ion += cond * (Vm - E)
            F = (I - I_ion) / self.C
            Q = np.concatenate([np.zeros((S, 1)), np.cumsum(0.5 * dt * (F[:, 1:] + F[:, :-1]), axis=1)], axis=1)
            b = tr["bounds"] * M
            r1 = tr["dV"][None, :] - np.diff(Q[:, b], axis=1)
        return X[:, :, ::M], r1

    def shoot(self, tr, P, X):
        """Stage-2 residuals (S, n_windows * n_res) of one trace, one simulate call."""
        S, starts = P.shape[0], tr["starts"]
        nw = len(starts)
        if nw == 0:
            return np.zeros((S, 0))
        y0 = {"V": np.tile(tr["V"][starts], S)}
        for j, g in enumerate(self.gates):
            y0[g] = np.clip(X[:, j, starts].ravel(), 0.0, 1.0)
        params = {name: np.repeat(P[:, i], nw) for i, name in enumerate(self.free)}
        dt, stride = tr["dt"], tr["stride"]
        out = simulate(self.model, tr["stims"] * S, t_stop=tr["Ls"] * dt, dt=dt, method="rk4",
                       y0=y0, params=params or None, dt_out=stride * dt)
        Vsim = np.atleast_2d(out.V)[:, 1:tr["nres"] + 1]
        with np.errstate(all="ignore"):
            return (Vsim.reshape(S, nw, -1) - tr["target"][None]).reshape(S, -1)

    # ------------------------------------------------------------------ public
    def residuals(self, P=None):
        """Scaled residuals for a batch of parameter sets.

        Parameters
        ----------
        P : array_like, shape (S, len(free)), optional
            Values of the free rate parameters, one row per set (default: the
            model's own values, one set).

        Returns
        -------
        ndarray, shape (S, n_residuals)
            Stage-1 residuals times :math:`\\sqrt{w_1/n_1}`, then stage-2
            residuals times :math:`\\sqrt{w/n_2}` (mV).

        Raises
        ------
        SimulationError
            If a rate is not finite on the data or a window diverges.
        """
        if P is None:
            P = np.array([[self.model.rate_params[k] for k in self.free]])
        P = np.atleast_2d(np.asarray(P, dtype=float))
        s1 = np.sqrt(self.charge_weight / max(self.n1, 1))
        s2 = np.sqrt(self.weight / max(self.n2, 1))
        parts1, parts2 = [], []
        for tr in self.traces:
            X, r1 = self.gate_pass(tr, P)
            parts1.append(s1 * tr["w1"] * r1)
            parts2.append(s2 * self.shoot(tr, P, X))
        r = np.concatenate(parts1 + parts2, axis=1)
        if not np.all(np.isfinite(r)):
            raise SimulationError("non-finite shooting residuals")
        return r

    def cost(self, P=None):
        """:math:`\\tfrac12\\lVert r\\rVert^2` (mV²) for one parameter set (default: the model's)."""
        r = self.residuals(None if P is None else np.atleast_2d(P))[0]
        return 0.5 * float(r @ r)

    def rates(self, V_values, P):
        """Rates at ``V_values`` (mV) for parameter sets ``P`` (S, len(free)).

        Returns
        -------
        dict
            Rate name -> ndarray (S, len(V_values)) in 1/ms.
        """
        Vv = np.asarray(V_values, dtype=float)
        P = np.atleast_2d(np.asarray(P, dtype=float))
        return {k: np.array(self._rates(k, Vv, P)) for k in self._rate_fns}

    def jacobian(self, p, scale, h=1e-7, extra=None):
        """Residuals and forward-difference Jacobian in one batched evaluation.

        Parameters
        ----------
        p : ndarray, shape (n,)
            Free parameter values.
        scale : ndarray, shape (n,)
            Step scale per parameter: parameter i moves by ``h * scale[i]``.
        h : float
            Relative step.
        extra : callable, optional
            ``extra(P) -> (S, m)`` further residuals appended to each set's.

        Returns
        -------
        r : ndarray (m,)
        J : ndarray (m, n)
            dr/dp (per unit of each parameter).
        """
        n = p.size
        steps = h * scale
        P = np.tile(p, (n + 1, 1))
        P[1:] += np.diag(steps)
        R = self.residuals(P)
        if extra is not None:
            R = np.concatenate([R, extra(P)], axis=1)
        with np.errstate(all="ignore"):
            return R[0], ((R[1:] - R[0]) / steps[:, None]).T
