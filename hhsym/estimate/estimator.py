r"""RateEstimator: learn alpha(V), beta(V) of a conductance model from V(t) and I(t).

Training is adjoint-free shooting (see :mod:`hhsym.estimate.kernels`):

0. *generic start* (:mod:`hhsym.estimate.search`) — each gate as a Boltzmann
   steady state with a log-quadratic time constant (the generic two-state
   shape), ``10 * n_starts`` random draws screened on the most active
   stretch of the data, the best ``n_starts`` refined by successive halving,
   the winner refined with cubic polynomials; the networks are then fitted to
   its rates (skipped when a ``prior`` is given: networks fit the prior);
1. *gate-driven stage* — all network weights, gates driven by the measured
   V, residuals on the charge balance over windows of ``window`` ms;
2. *multiple shooting* — the free-running hybrid model from the measured V
   and the stage-1 gates over ``n_shooting`` windows of ``shooting_window``
   ms per trace, added to the stage-1 residuals.

Each stage is Levenberg–Marquardt with Jacobians from forward sensitivities.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator

from hhsym.errors import IdentifiabilityWarning, NotFittedError, SimulationError, TraceFileError, invalid
from hhsym.estimate.checks import as_recordings
from hhsym.estimate.network import RateNetwork
from hhsym.estimate.optimize import levenberg_marquardt
from hhsym.estimate.problem import ShootingProblem
from hhsym.estimate.search import global_search
from hhsym.model import ConductanceModel, check_model

__all__ = ["RateEstimator", "load"]

_FORMAT = "hhsym.fit/1"


def _rate_names(model):
    return [f"{kind}_{g.name}" for g in model.gates for kind in ("alpha", "beta")]


class RateEstimator(BaseEstimator):
    """Learn a conductance model's rate functions as neural networks of V.

    Parameters
    ----------
    model : ConductanceModel
        Template: channels, conductances (mS/cm²), reversal potentials (mV),
        C_m (µF/cm²) and gate powers are taken as known; its rate
        expressions are ignored (unless passed again as ``prior``).
    hidden : tuple of int
        Hidden-layer widths of every rate network.
    window : float
        Stage-1 charge-balance window (ms).
    shooting_window : float
        Stage-2 free-running window (ms).
    n_shooting : int
        Stage-2 windows per trace (0 skips stage 2).
    max_iter : tuple of 3 int
        Iteration limits of the log-linear start, stage 1 and stage 2.
    ridge : float
        Ridge penalty on the hidden-layer parameters (per unit of the
        mean-square residual, mV²).
    n_starts : int
        Starts refined in the generic-family search (``10 * n_starts`` screened).
    prior : ConductanceModel, optional
        If given, networks are first fitted to its rates (1/ms) over the data's
        range instead of being initialised generically.
    burn_in : float
        Time (ms) at the start of each trace left out of the residuals (the
        gates start at steady state at the first sample).
    time_limit : float, optional
        Soft wall-time budget (s) of stages 1 and 2 together.
    random_state : int, numpy.random.Generator or None
        Seed of the network initialisation; fixes the fit.
    verbose : int
        0 silent, 1 progress lines.

    Attributes
    ----------
    model_ : ConductanceModel
        The template with every rate replaced by its network as a sympy
        expression (simulate it with :func:`hhsym.simulate.simulate`).
    networks_ : dict
        Rate name -> :class:`~hhsym.estimate.network.RateNetwork`.
    v_range_ : tuple of float
        Supported voltage range (mV): the 0.5–99.5 percentiles of the
        recorded V.  Outside the networks' trained range each log-rate
        continues linearly (exponential tails).
    history_ : list of dict
        Cost per iteration and stage, with elapsed times (s).
    fit_time_ : float
        Wall time of ``fit`` (s).
    """

    def __init__(self, model=None, hidden=(16, 16), window=0.25, shooting_window=3.0, n_shooting=40,
                 max_iter=(40, 60, 8), ridge=1e-8, n_starts=32, prior=None, burn_in=0.0,
                 time_limit=None, random_state=None, verbose=0):
        self.model = model
        self.hidden = hidden
        self.window = window
        self.shooting_window = shooting_window
        self.n_shooting = n_shooting
        self.max_iter = max_iter
        self.ridge = ridge
        self.n_starts = n_starts
        self.prior = prior
        self.burn_in = burn_in
        self.time_limit = time_limit
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self):
        check_model(self.model)
        hidden = tuple(self.hidden)
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
            raise invalid("hidden", self.hidden, "a tuple of positive integers, e.g. (16, 16)")
        for name in ("window", "shooting_window"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise invalid(name, v, "a positive number of milliseconds")
        if not isinstance(self.ridge, (int, float)) or self.ridge < 0:
            raise invalid("ridge", self.ridge, "a non-negative float")
        it = tuple(self.max_iter)
        if len(it) != 3 or any(int(i) < 0 for i in it):
            raise invalid("max_iter", self.max_iter, "three non-negative integers (start, stage 1, stage 2)")
        if self.prior is not None:
            check_model(self.prior, "prior")
        return hidden, tuple(int(i) for i in it)

    def fit(self, traces):
        """Fit the rate networks to recordings.

        Parameters
        ----------
        traces : Trace, TraceSet or list of Trace
            Uniformly sampled V (mV) and I (µA/cm²); any step dt (ms).

        Returns
        -------
        self
        """
        t_start = time.perf_counter()
        hidden, max_iter = self._check_params()
        data = as_recordings(traces)
        rng = self.random_state if isinstance(self.random_state, np.random.Generator) \
            else np.random.default_rng(self.random_state)
        names = _rate_names(self.model)
        V_all = np.concatenate([d[1] for d in data])
        lo, hi = float(V_all.min()), float(V_all.max())
        center, scale = 0.5 * (lo + hi), 0.5 * (hi - lo) * 1.02
        nets = [RateNetwork(hidden, center, scale,
                            RateNetwork.initial_theta(hidden, rng, log_rate0=np.log(0.5)))
                for _ in names]
        P = nets[0].n_params
        mask = np.concatenate([n.penalised() for n in nets]).astype(float)
        norms = np.array([[n.center, n.scale, n.delta] for n in nets])
        problem = ShootingProblem(self.model, data, nets[0].sizes, norms, window=self.window,
                                  burn_in=self.burn_in, shooting_window=self.shooting_window,
                                  n_shooting=int(self.n_shooting))
        history = []
        theta = np.concatenate([n.theta for n in nets])
        kw = dict(verbose=self.verbose, history=history)
        if self.prior is not None:
            theta = self._pretrain(nets, names, lo, hi, self.prior.evaluate_rates)
        elif max_iter[0] > 0:
            rates, c0 = global_search(problem.arr, data, center, scale, rng, n_starts=10 * int(self.n_starts),
                                      n_refine=max(2, int(self.n_starts)), window=self.window,
                                      max_iter=max_iter[0], verbose=self.verbose, history=history)
            if self.verbose:
                print(f"[hhsym.fit] generic-family start: stage-1 cost {c0:.4g} on the screening stretch",
                      flush=True)

            def target(V, rates=rates):
                a, b = rates(V)
                return {n: (a if n.startswith("alpha") else b)[i // 2] for i, n in enumerate(names)}

            theta = self._pretrain(nets, names, lo, hi, target)
        stage1 = lambda th, jac: problem.evaluate(th, jac, 1)  # noqa: E731
        try:
            theta, cost = levenberg_marquardt(stage1, theta, self.ridge, mask, max_iter=max_iter[1],
                                              label="stage1", mu0=1e-2, time_limit=self.time_limit, **kw)
        except FloatingPointError:
            raise SimulationError("the initial rate networks give non-finite gate trajectories on "
                                  "these traces; try another random_state or a prior") from None
        if max_iter[2] > 0 and problem.n2 > 0:
            left = None if self.time_limit is None else max(self.time_limit - (time.perf_counter() - t_start), 0.0)
            stage2 = lambda th, jac: problem.evaluate(th, jac, 2)  # noqa: E731
            try:
                theta, cost = levenberg_marquardt(stage2, theta, self.ridge, mask, max_iter=max_iter[2],
                                                  label="stage2", mu0=1e-2, time_limit=left, **kw)
            except FloatingPointError:
                warnings.warn("multiple shooting skipped: the stage-1 model diverges when run freely "
                              "(the rates are not yet good enough); returning the stage-1 fit",
                              IdentifiabilityWarning, stacklevel=2)
        self._set_fitted(names, [RateNetwork(hidden, center, scale, theta[i * P:(i + 1) * P])
                                 for i in range(len(names))],
                         tuple(float(v) for v in np.percentile(V_all, [0.5, 99.5])), history)
        self.cost_ = float(cost)
        self.fit_time_ = time.perf_counter() - t_start
        if self.verbose:
            print(f"[hhsym.fit] done: cost {cost:.4e}, supported range [{self.v_range_[0]:.1f}, "
                  f"{self.v_range_[1]:.1f}] mV, {self.fit_time_:.1f} s", flush=True)
        return self

    def _loglinear_start(self, problem, theta, P, n_rates, mask, max_iter, rng, kw):
        free = np.concatenate([[i * P + P - 2, i * P + P - 1] for i in range(n_rates)])
        best, best_cost = theta, np.inf
        for k in range(max(1, int(self.n_starts))):
            th = theta.copy()
            th[free[0::2]] = rng.uniform(np.log(0.05), np.log(5.0), n_rates)
            th[free[1::2]] = rng.normal(0.0, 2.0, n_rates)
            if problem.evaluate(th, False, 1) is None:
                continue
            th, cost = levenberg_marquardt(lambda t, j: problem.evaluate(t, j, 1), th, self.ridge, mask,
                                           max_iter=max_iter, label=f"start{k}", mu0=1.0, free=free, **kw)
            if cost < best_cost:
                best, best_cost = th, cost
        return best

    def _pretrain(self, nets, names, lo, hi, rates):
        grid = np.linspace(lo, hi, 200)
        target = rates(grid)
        out = []
        for net, name in zip(nets, names):
            if name not in target:
                raise invalid("prior", self.prior, f"a model with a rate {name!r} (same gates as model)")
            y = np.log(np.maximum(target[name], 1e-300))

            def fun(th, jac, net=net, y=y):
                net.theta[:] = th
                f, _, G = net.log_rate(grid, grad=True)
                return (f - y, G) if jac else f - y

            th, _ = levenberg_marquardt(fun, net.theta.copy(), 1e-10, net.penalised(), max_iter=200, mu0=1.0)
            out.append(th)
        return np.concatenate(out)

    def _set_fitted(self, names, nets, v_range, history):
        self.networks_ = dict(zip(names, nets))
        self.v_range_ = v_range
        self.history_ = history
        self.model_ = self.model.with_rates({k: n.to_sympy() for k, n in self.networks_.items()},
                                            name=f"{self.model.name} (learned rates)")

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        if not hasattr(self, "networks_"):
            raise NotFittedError("this RateEstimator is not fitted yet: call fit(traces) first")

    def predict_rates(self, V):
        """Learned rates at potentials ``V``.

        Parameters
        ----------
        V : array_like
            Membrane potentials (mV).

        Returns
        -------
        dict
            Rate name (``alpha_m``, ...) -> ndarray of rates (1/ms).
        """
        self._check_fitted()
        return {k: net(V) for k, net in self.networks_.items()}

    def save(self, path):
        """Write the fitted estimator to ``path`` (``.npz``), atomically.

        Parameters
        ----------
        path : str or os.PathLike
        """
        self._check_fitted()
        path = os.fspath(path)
        params = {k: v for k, v in self.get_params().items() if k not in ("model", "prior")}
        params["hidden"] = list(self.hidden)
        params["max_iter"] = list(self.max_iter)
        if not isinstance(params.get("random_state"), (int, type(None))):
            params["random_state"] = None
        meta = {"format": _FORMAT, "model": self.model.to_dict(), "names": list(self.networks_),
                "v_range": list(self.v_range_), "history": self.history_, "params": params,
                "prior": None if self.prior is None else self.prior.to_dict(),
                "cost": getattr(self, "cost_", None), "fit_time": getattr(self, "fit_time_", None)}
        arrays = {"meta": np.array(json.dumps(meta))}
        for k, net in self.networks_.items():
            for field, value in net.state().items():
                arrays[f"{k}.{field}"] = value
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def load(path):
    """Read an estimator written by :meth:`RateEstimator.save` (exact round trip).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` file.

    Returns
    -------
    RateEstimator
        Fitted; ``predict_rates`` gives bit-identical results.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _FORMAT:
                raise TraceFileError(f"{path}: not a hhsym fit file (format {meta.get('format')!r})")
            nets = [RateNetwork.from_state({f: z[f"{k}.{f}"] for f in ("hidden", "norm", "theta")})
                    for k in meta["names"]]
    except (OSError, KeyError, ValueError) as exc:
        if isinstance(exc, TraceFileError):
            raise
        raise TraceFileError(f"cannot read fit file {path!r}: {exc}") from None
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    params["max_iter"] = tuple(params["max_iter"])
    prior = None if meta["prior"] is None else ConductanceModel.from_dict(meta["prior"])
    est = RateEstimator(model=ConductanceModel.from_dict(meta["model"]), prior=prior, **params)
    est._set_fitted(meta["names"], nets, tuple(meta["v_range"]), meta["history"])
    est.cost_ = meta["cost"]
    est.fit_time_ = meta["fit_time"]
    return est


