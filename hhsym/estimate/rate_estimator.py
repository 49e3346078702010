r"""RateEstimator: learn alpha(V), beta(V) of a conductance model from V(t) and I(t).

Training is adjoint-free shooting (see :mod:`hhsym.estimate.losses.kernels`):

Each gate is a pair of networks (:class:`~hhsym.estimate.rates.network.GateNetworks`):
:math:`x_\infty = \sigma(f_x(V))` and :math:`\tau = \tau_\min + e^{f_\tau(V)}`
with a generic floor ``tau_min`` (ms), so :math:`\alpha = x_\infty/\tau` and
:math:`\beta = (1 - x_\infty)/\tau` are positive, bounded by :math:`1/\tau_\min`,
and a gate cannot escape the fit by becoming instantaneous with ever larger
alpha and beta.

0. *generic start* (:mod:`hhsym.estimate.search.network_start`) — the sign of
   :math:`dx_\infty/dV` of every gate (activating or inactivating) is a discrete
   hypothesis, :math:`2^{n_\mathrm{gates}}` of them.  For each, a steady state
   whose logit is quadratic in V with a log-quadratic time constant per gate
   (the generic two-state shape, able to bend) constrained to that sign pattern
   is searched (``3 * n_starts`` random draws on every trace sampled every
   ~0.05 ms, refined by successive halving).  The best four patterns are lifted
   to a cubic family, restarted gate by gate (one gate's parameters redrawn,
   the others kept) and refitted on all the data; the best three of those are
   refined at the spline stage's first level, and the lowest cost there wins
   (the only step that reliably tells the right roles from role-swapped ones);
   with a ``prior``, the prior's curves are the start instead;
0b. *spline stage* (:mod:`hhsym.estimate.rates.curves`) — the start curves are
   refined as cubic B-splines of V (``spline_knots``, coarse to fine) on
   all the data; the curves are linear in their coefficients, so this is
   far better conditioned than the networks' weights and gets within a few
   per cent of the rates in seconds.  The networks are then fitted to the
   spline curves;
1. *gate-driven stage* — all network weights, gates driven by the measured
   V, residuals on the charge balance over windows of ``window`` ms;
2. *multiple shooting* — the free-running hybrid model from the measured V
   and the stage-1 gates over ``n_shooting`` windows of ``shooting_window``
   ms per trace, added to the stage-1 residuals;
3. *maximum likelihood* (opt-in, ``ml_windows``; :mod:`hhsym.estimate.likelihood`) —
   output error over windows tiling every recording, each window's initial
   state free, continued over ``ml_windows``, with a roughness prior on the
   curves; its Laplace covariance gives ``predict_rates(V, return_std=True)``.
   On noisy recordings (``noise_`` >= 0.05 mV) the charge balance is biased
   by the noise on V, so with this stage on the spline stage's curves are
   first fitted by it too (through a potential-only bridge from the biased
   start: :func:`~hhsym.estimate.search.network_start.spline_likelihood`),
   stages 1 and 2 are skipped, and the networks fitted to those splines are
   only polished here, on the longest window length alone, from the splines'
   fitted initial states there (the splines ran the continuation; rerun from
   the shortest length, the networks' extra freedom drifts into the short
   windows' bias: on the issue's 8 x 1 s at 0.3 mV, 0.48 -> 2.05 max rate
   error).

Each stage is Levenberg–Marquardt with Jacobians from forward sensitivities;
stage 1 adds geodesic acceleration (:func:`hhsym.estimate.optimise.lm.levenberg_marquardt`),
which on the demo's data reaches in 100 iterations the rate errors plain
Levenberg–Marquardt reached in 400.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator

from hhsym.estimate.fitfile import SavedFit
from hhsym.errors import ArgumentTypeError, IdentifiabilityWarning, NotFittedError, SimulationError, invalid
from hhsym.estimate.budget import seconds_left
from hhsym.estimate.checks import NOISE_WARN, as_recordings, membrane_areas, noise_level
from hhsym.estimate.likelihood import ML_WINDOWS, SMOOTHING, fit_stage, gate_rate_covariance, gate_rate_std
from hhsym.estimate.rates.network import TAU_MIN, GateNetworks, GateRate, RateNetwork
from hhsym.estimate.rates.fixed_gates import FixedGates, fixed_indices
from hhsym.estimate.rates.network_rates import NetworkRates
from hhsym.estimate.rates.scalars import ScalarParameters
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.losses.charge_balance import DV_SCALE, ShootingProblem
from hhsym.estimate.search.network_start import (pretrain, prior_curves, role_search, settle_roles, spline_likelihood,
                                                 spline_stage)
from hhsym.estimate.quality import judge_replays
from hhsym.estimate import constraints as C
from hhsym.validate import check_voltages

__all__ = ["RateEstimator"]



class RateEstimator(SavedFit, BaseEstimator):
    """Learn a conductance model's rate functions as neural networks of V.

    Parameters
    ----------
    model : ConductanceModel
        Template: channels, conductances (mS/cm²), reversal potentials (mV),
        C_m (µF/cm²) and gate powers are taken as known; its rate
        expressions are ignored (unless passed again as ``prior``).
    hidden : tuple of int
        Hidden-layer widths of every rate network (the defaults are what
        ``benchmarks/bench_fit.py`` measures; how they were chosen: ``docs/design.md``).
    window : float
        Stage-1 charge-balance window (ms).
    shooting_window : float
        Stage-2 free-running window (ms).
    n_shooting : int
        Stage-2 windows per trace (0 skips stage 2).
    max_iter : tuple of 3 int
        Iteration limits of the generic-family search, stage 1 and stage 2.
    ridge : float
        Ridge penalty on the hidden-layer parameters (per unit of the
        mean-square residual, mV²); on clean data it decides where the
        networks settle along the loss's flat directions (``docs/design.md``).
    n_starts : int
        The generic-family search refines ``3 * n_starts`` random starts per
        role hypothesis, and its gate-wise restarts draw each gate ``n_starts``
        times, at most 8 (with 60 % of ``max_iter[0]`` iterations each).
    tau_min : float
        Floor of every learned time constant (ms); no learned rate exceeds
        ``1 / tau_min``.  Generic (0.01 ms is far below any channel's kinetics
        and below typical sampling steps).
    stretch : float, optional
        If given, the role hypotheses are screened only on the most active
        ``stretch`` ms of each trace (faster on long recordings, but a stretch
        of tonic spiking can rank the roles wrong); default the whole traces
        (samples ~0.05 ms apart), or with ``free`` scalars the most active
        60 ms (the screen holds them at the template's values, and a wrong
        leak biases it least while the cell spikes).
    dv_scale : float or None
        Voltage scale (mV) of the stage-1 window weights
        1/sqrt(1 + (ΔV/v_s)²) (:func:`hhsym.estimate.losses.charge_balance.window_weights`):
        windows count by their relative error, so spikes do not drown the
        sub-threshold dynamics.  ``None``: uniform weights.
    substeps : int, optional
        Stage-1 sub-steps per recorded sample (V by cubic spline, I linear);
        default: sub-steps of at most 0.00625 ms (:mod:`hhsym.estimate.losses.tables`).
    spline_knots : tuple of int
        Knot counts of the spline stage, coarse to fine: the start curves
        (role search or prior) are refined as cubic B-splines of V with that
        many uniform knots over the data's range before the networks are
        fitted to them (:class:`~hhsym.estimate.rates.curves.SplineFamily`);
        ``()`` skips the stage.  With a ``prior`` only the finest level runs.
    prior : ConductanceModel, optional
        If given, networks are first fitted to its rates (1/ms) over the data's
        range instead of being initialised generically.
    burn_in : float
        Time (ms) at the start of each trace left out of the residuals (the
        gates start at steady state at the first sample).
    ml_windows : tuple of float or None
        Window lengths (ms) of stage 3, the maximum-likelihood stage
        (:func:`hhsym.estimate.likelihood.maximum_likelihood`), e.g.
        :data:`~hhsym.estimate.likelihood.ML_WINDOWS`; ``()`` (default) skips it.
        ``None``: ``ML_WINDOWS`` when the recordings carry noise (``noise_`` >=
        0.05 mV), else skipped.  On noisy recordings it also replaces stages 1
        and 2 (module docstring).  Off by default: on the issue's lab-shaped
        data at 0.3 mV it does not yet reach the rates within 5 %
        (``notes/issue16.md``); from a good ``prior`` it gives calibrated bands.
    smoothing : float
        Stage 3's roughness prior: standard deviation of the second
        differences of logit x_inf and log tau on a 1 mV grid (per mV²);
        smaller is smoother.
    time_limit : float, optional
        Soft wall-time budget (s) of the whole fit, counted from the start of
        ``fit``: the role search screens no new pattern after 50 % of it and
        refits no new contender after 60 % and settles none after 70 % (the
        first of each always runs; ``hypotheses_`` lists those searched), the
        spline stage and stage 1 stop at 85 % and stages 2 and 3 at 100 %
        (checked between iterations).
        A fit ended by the budget depends on the machine's speed; one ended
        by ``max_iter`` does not.
    random_state : int, numpy.random.Generator or None
        Seed of the network initialisation; fixes the fit.
    verbose : int
        0 silent, 1 progress lines.
    fixed : sequence of str
        Gates whose rates are kept as the template writes them (any
        expression, e.g. a literature M-current gate) while the others are
        learned; ``()`` (default) learns every gate.  The fixed gates enter
        every stage with their exact rates
        (:class:`~hhsym.estimate.rates.fixed_gates.FixedGates`), except the
        compiled multiple-shooting kernel of stage 2 and :meth:`replay`, which
        run them as networks fitted to the template's curves (the fit of
        those networks is ``fixed_error_``).
    free : sequence of str
        Whole-cell scalars fitted with the networks: ``g_<channel>`` (mS/cm²),
        ``E_<channel>`` (mV), ``C_m`` (µF/cm²), each with optional bounds
        (``"g_L,E_L=-80:-60,C_m"``; :mod:`hhsym.estimate.rates.scalars`).  They
        are fitted with the curves in the spline stage and with the networks
        in stage 1 (the charge balance's exact derivatives,
        :class:`~hhsym.estimate.losses.charge_balance.ChargeBalance`) and in
        stage 3 when it runs (output error, exact forward sensitivities, with
        standard deviations); the role search uses the template's values and
        stage 2 holds them.  Conductances of gated channels are not
        identifiable beside free-form steady states (``g x_inf^p`` is what
        the data fix): free the leak and ``C_m``, or fix the gates.  ``()``
        (default): none.

    Attributes
    ----------
    model_ : ConductanceModel
        The template with every learned rate replaced by its network as a sympy
        expression (simulate it with :func:`hhsym.simulate.simulate`); fixed
        gates keep the template's rates.
    networks_ : dict
        Learned rate name -> :class:`~hhsym.estimate.rates.network.GateRate` (callable
        ``r(V)``, ``to_sympy()``; its pair of networks in ``.gate``).
    gates_ : dict
        Gate name -> :class:`~hhsym.estimate.rates.network.GateNetworks`, every
        gate (a fixed gate's networks are fitted to the template's curves).
    scalars_ : dict
        The fitted ``free`` scalars (mS/cm², mV, µF/cm²); empty without ``free``.
    scalars_std_ : dict
        Their standard deviations (same units) from the stage's Laplace
        covariance (delta method); empty without ``free`` or if it failed.
    template_ : ConductanceModel
        The template with the fitted scalars (``model`` itself without ``free``):
        what ``model_``, :meth:`replay` and :func:`hhsym.distill` build on.
    fixed_ : tuple of str
        The gates kept at the template's rates (``fixed``; :func:`hhsym.distill` leaves them as they are).
    fixed_error_ : float
        Largest relative error (over the supported range) of the fixed gates'
        networks against the template's rates (0 without fixed gates).
    roles_ : dict
        Gate name -> +1 (x_inf rises with V over the data's range — its median
        slope — in the generic start's curves after the spline stage) or -1
        (``None`` with a prior).
    hypotheses_ : list of dict
        Per role hypothesis: ``signs``, ``family_cost`` (the screen's), ``restart_cost`` (cubic family with the
        pattern's signs after the gate-wise restarts, on the screen's data), ``full_cost`` (cubic family on all
        the data) and ``settled_cost`` (first spline level on all the data; the lowest wins), None where not
        reached.
    noise_ : float
        Estimated sample-to-sample noise on the recorded V (mV, the largest
        over the traces; :func:`hhsym.estimate.checks.noise_level`).  From
        0.05 mV on, ``fit`` warns that the rates are not determined.
    v_range_ : tuple of float
        Supported voltage range (mV): the 0.5–99.5 percentiles of the
        recorded V.  Outside the networks' trained range each network's
        output (logit x_inf, log(tau - tau_min)) continues linearly.
    history_ : list of dict
        Cost per iteration and stage, with elapsed times (s).
    fit_time_ : float
        Wall time of ``fit`` (s).
    membrane_area_ : list of dict
        Per lab file trained on, the membrane area that turned its pA into µA/cm²
        (:func:`hhsym.estimate.checks.membrane_areas`); empty for densities.  Saved in the fit
        file; ``hhsym validate`` uses it by default.
    covariance_ : ndarray or None
        Laplace posterior covariance of the networks' weights from stage 3
        (None when it did not run); ``predict_rates(V, return_std=True)`` uses it.
    quality_ : FitQuality
        How well the fitted hybrid model, run freely, reproduces the training
        recordings (output RMS, noise, training spike coincidence Γ, a
        ``verdict`` and its ``reason``; :mod:`hhsym.estimate.quality`).  A
        poor verdict also raises a :class:`~hhsym.errors.PoorFitWarning`.
    """

    def __init__(self, model=None, hidden=(16,), window=0.25, shooting_window=3.0, n_shooting=40,
                 max_iter=(40, 300, 8), ridge=1e-10, n_starts=8, prior=None, burn_in=0.0,
                 time_limit=None, tau_min=TAU_MIN, stretch=None, dv_scale=DV_SCALE,
                 substeps=None, spline_knots=(8, 16), ml_windows=(), smoothing=SMOOTHING, random_state=None,
                 verbose=0, fixed=(), free=()):
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
        self.tau_min = tau_min
        self.stretch = stretch
        self.dv_scale = dv_scale
        self.substeps = substeps
        self.spline_knots = spline_knots
        self.ml_windows = ml_windows
        self.smoothing = smoothing
        self.random_state = random_state
        self.verbose = verbose
        self.fixed = fixed
        self.free = free

    # ------------------------------------------------------------------ fit
    _parameter_constraints = {
        "model": C.model(),
        "hidden": C.integers(1, what="hidden-layer widths"),
        "window": C.real(0.0, strict_low=True, unit="ms"),
        "shooting_window": C.real(0.0, strict_low=True, unit="ms"),
        "n_shooting": C.integer(0),
        "max_iter": C.integers(0, length=3, what="iteration limits (start, stage 1, stage 2)"),
        "ridge": C.real(0.0),
        "n_starts": C.integer(1),
        "prior": C.optional(C.model()),
        "burn_in": C.real(0.0, unit="ms"),
        "time_limit": C.optional(C.real(0.0, strict_low=True, unit="s")),
        "tau_min": C.real(0.0, strict_low=True, unit="ms"),
        "stretch": C.optional(C.real(0.0, strict_low=True, unit="ms")),
        "dv_scale": C.optional(C.real(0.0, strict_low=True, unit="mV")),
        "substeps": C.optional(C.integer(1)),
        "spline_knots": C.integers(2, what="knot counts, coarse to fine (() skips the spline stage)"),
        "ml_windows": C.optional(C.lengths()),
        "smoothing": C.real(0.0, strict_low=True, unit="per mV²"),
        "random_state": C.random_state(),
        "verbose": C.integer(0),
        "fixed": C.names("gate names"),
        "free": C.names("scalar names (g_<channel>, E_<channel>, C_m)"),
    }

    def _check_params(self):
        p = C.validate_params(self)
        C.check_free_and_fixed(self.model, p["free"], p["fixed"], "model")
        if len(p["fixed"]) == len(self.model.gates):
            raise invalid("fixed", list(p["fixed"]), "fewer than all gates (at least one gate to learn)")
        self._fixed = fixed_indices(self.model, p["fixed"])
        self._scalars = ScalarParameters(self.model, p["free"]) if p["free"] else None
        return p["hidden"], p["max_iter"], p["spline_knots"], p["ml_windows"]

    def _wrap(self, rates):
        """``rates`` with the fixed gates on the template's rates (:class:`FixedGates`), or ``rates`` itself."""
        return FixedGates(rates, self.model, self._fixed) if self._fixed else rates

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
        hidden, max_iter, knots, windows = self._check_params()
        data = as_recordings(traces)
        self.membrane_area_ = membrane_areas(traces)
        self.noise_ = max(noise_level(d[1]) for d in data)
        rng = self.random_state if isinstance(self.random_state, np.random.Generator) \
            else np.random.default_rng(self.random_state)
        gate_names = [g.name for g in self.model.gates]
        ng = len(gate_names)
        V_all = np.concatenate([d[1] for d in data])
        lo, hi = float(V_all.min()), float(V_all.max())
        center, scale = 0.5 * (lo + hi), 0.5 * (hi - lo) * 1.02
        tau_min = float(self.tau_min)
        proto = RateNetwork(hidden, center, scale)
        P = proto.n_params
        mask = np.tile(proto.penalised(), 2 * ng).astype(float)
        for j in self._fixed:  # a fixed gate's networks are no parameters of the fit
            mask[2 * j * P:(2 * j + 2) * P] = 0.0
        norms = np.tile([proto.center, proto.scale, proto.delta], (2 * ng, 1))
        opts = dict(window=self.window, burn_in=self.burn_in, tau_min=tau_min,
                    dv_scale=None if self.dv_scale is None else float(self.dv_scale), substeps=self.substeps)
        problem = ShootingProblem(self._wrap(NetworkRates(proto.sizes, norms, tau_min)), self.model, data,
                                  shooting_window=self.shooting_window, n_shooting=int(self.n_shooting),
                                  scalars=self._scalars, **{k: v for k, v in opts.items() if k != "tau_min"})
        history = []
        kw = dict(verbose=self.verbose, history=history)
        theta = np.concatenate([RateNetwork.initial_theta(hidden, rng, log_rate0=v)
                                for _ in range(ng) for v in (0.0, 0.0)])
        self.roles_, self.hypotheses_ = None, []
        grid = np.linspace(lo, hi, 200)
        v_range = tuple(float(v) for v in np.percentile(V_all, [0.5, 99.5]))
        if windows is None:
            windows = ML_WINDOWS if self.noise_ >= NOISE_WARN else ()
        # on noisy recordings with stage 3 on, the charge balance (biased by the noise) only starts
        # the splines, which are then fitted by maximum likelihood; stages 1 and 2 are skipped
        noisy = bool(windows) and self.noise_ >= NOISE_WARN and len(knots) > 0
        curves, q, states = None, None, None
        # with free scalars they are fitted with the splines: stage 1 starts from them (q)
        if self.prior is not None:
            curves = prior_curves(self.prior, gate_names, grid, tau_min)
            # a prior is a start at full resolution: coarser spline levels would only blur it (and on
            # noisy data the charge balance would bias it: the splines go to maximum likelihood directly)
            if not noisy:
                curves, q, _ = spline_stage(self, data, center, scale, grid, curves, knots[-1:], opts, kw, t_start)
        elif max_iter[0] > 0:
            contenders = role_search(self, data, center, scale, grid, gate_names, rng, max_iter, opts, kw, t_start)
            curves, q = settle_roles(self, data, center, scale, grid, contenders, knots, opts, kw, t_start)
        noisy = noisy and curves is not None
        if noisy:
            curves, q, states = spline_likelihood(self, data, center, scale, grid, curves, q, knots[-1], windows,
                                                  v_range, t_start, charge_start=self.prior is None)
        if self._fixed:  # the fixed gates' networks follow the template (stage 2's kernel and replay run them)
            curves = self._template_curves(grid, curves)
        if curves is not None:
            theta = pretrain(hidden, center, scale, grid, curves, theta, converge=noisy)
        # the fitted columns (None: all): the learned gates' networks, then (stage 1 only) the scalars
        weights = problem.rates.free_columns if self._fixed else None
        free = weights
        if self._scalars is not None:
            if weights is None:  # stage 2 must still hold the scalars
                weights = np.arange(theta.size)
            free = np.concatenate([weights, theta.size + np.arange(self._scalars.n_params)])
            theta = np.concatenate([theta, self._scalars.pack() if q is None else q])
            mask = np.concatenate([mask, np.zeros(self._scalars.n_params)])
        stage1 = lambda th, jac: problem.evaluate(th, jac, 1)  # noqa: E731
        try:
            # on the noisy route stage 1 would pull back to the biased minimum: only its cost is evaluated
            theta, cost = levenberg_marquardt(stage1, theta, self.ridge, mask, max_iter=0 if noisy else max_iter[1],
                                              label="stage1", mu0=1e-2, time_limit=self._left(t_start, 0.85),
                                              geodesic=True, free=free, **kw)
        except FloatingPointError:
            raise SimulationError("the initial rate networks give non-finite gate trajectories on "
                                  "these traces; try another random_state or a prior") from None
        if max_iter[2] > 0 and problem.n2 > 0 and not noisy:
            stage2 = lambda th, jac: problem.evaluate(th, jac, 2)  # noqa: E731
            try:
                theta, cost = levenberg_marquardt(stage2, theta, self.ridge, mask, max_iter=max_iter[2],
                                                  label="stage2", mu0=1e-2, time_limit=self._left(t_start, 1.0),
                                                  free=weights, **kw)  # stage 2 holds the scalars
            except FloatingPointError:
                warnings.warn("multiple shooting skipped: the stage-1 model diverges when run freely "
                              "(the rates are not yet good enough); returning the stage-1 fit",
                              IdentifiabilityWarning, stacklevel=2)
        self.covariance_ = None
        self.scalars_, self.scalars_std_ = {}, {}
        if windows:  # after the splines' continuation (noisy route) only its last length
            theta = self._maximum_likelihood(problem.rates, data, theta, v_range, windows[-1:] if noisy else windows,
                                             max_iter, t_start, states)
        if self._scalars is not None:
            n = problem.n_rates
            self.scalars_ = self._scalars.public(theta[n:])
            theta = theta[:n]
        gates = [GateNetworks(hidden, center, scale, theta[2 * j * P:(2 * j + 1) * P],
                              theta[(2 * j + 1) * P:(2 * j + 2) * P], tau_min) for j in range(ng)]
        self._set_fitted(gate_names, gates, v_range, history)
        self.cost_ = float(cost)
        self.quality_ = self._judge(data)
        self.fit_time_ = time.perf_counter() - t_start
        if self.verbose:
            print(f"[hhsym.fit] done: cost {cost:.4e}, supported range [{self.v_range_[0]:.1f}, "
                  f"{self.v_range_[1]:.1f}] mV, {self.fit_time_:.1f} s", flush=True)
        return self

    def _template_curves(self, grid, curves=None):
        """``curves`` with the fixed gates' replaced by the template's (:func:`prior_curves` layout: logit
        x_inf, log(tau - tau_min) per gate on ``grid``); ``curves=None`` gives ``None`` for the learned gates
        (:func:`pretrain` then leaves their networks as they are)."""
        names = [g.name for g in self.model.gates]
        out = [None] * (2 * len(names)) if curves is None else list(curves)
        kept = prior_curves(self.model, [names[j] for j in self._fixed], grid, float(self.tau_min))
        for i, j in enumerate(self._fixed):
            out[2 * j], out[2 * j + 1] = kept[2 * i], kept[2 * i + 1]
        return out

    def _maximum_likelihood(self, rates, data, theta, v_range, windows, max_iter, t_start, states=None):
        """Stage 3 (:func:`hhsym.estimate.likelihood.fit_stage`) from ``theta`` (the weights, then the free
        scalars' coordinates) and optionally the windows' initial ``states`` at its first length:
        returns them fitted; sets ``covariance_`` (the weights' block) and ``scalars_std_``."""
        sc, n = self._scalars, rates.n_params
        p, cov = fit_stage(rates, self.model, data, theta, self.noise_, v_range, windows, float(self.smoothing),
                           max(max_iter[2], 10), self._left(t_start, 1.0), self.verbose, scalars=sc, states=states)
        self.covariance_ = None if cov is None else cov[:n, :n]
        if sc is not None and cov is not None:
            sd = np.abs(sc.chain(p[n:])) * np.sqrt(np.maximum(np.diag(cov)[n:], 0.0))
            self.scalars_std_ = dict(zip(sc.names, (float(v) for v in sd)))
        return p

    def _judge(self, data):
        """The fit's :class:`~hhsym.estimate.quality.FitQuality` on its training recordings (free replays)."""
        return judge_replays(self.replay, data, self.noise_, hint=(
            "Try more data (longer or more traces with spikes), a longer time_limit, another random_state, or "
            "check the template (conductances, reversal potentials, C_m) and the current's units (µA/cm²) "
            "and sign (positive depolarises)."))

    def _left(self, t_start, share):
        """Seconds left of ``share`` of the time budget (None without a budget)."""
        return None if t_start is None else seconds_left(self.time_limit, t_start, share)

    def _set_fitted(self, gate_names, gates, v_range, history):
        scalars = getattr(self, "scalars_", None) or {}
        self.template_ = self.model.with_params(**scalars) if scalars else self.model
        self.gates_ = dict(zip(gate_names, gates))
        fixed = {gate_names[j] for j in getattr(self, "_fixed", ())}
        self.networks_ = {f"{kind}_{g}": GateRate(net, kind) for g, net in self.gates_.items()
                          if g not in fixed for kind in ("alpha", "beta")}
        self.v_range_ = v_range
        self.history_ = history
        self.model_ = self.template_.with_rates({k: n.to_sympy() for k, n in self.networks_.items()},
                                                name=f"{self.model.name} (learned rates)")
        self.fixed_ = tuple(g for g in gate_names if g in fixed)
        self.fixed_error_ = 0.0
        if fixed:
            grid = np.linspace(v_range[0], v_range[1], 201)
            truth = self.model.evaluate_rates(grid)
            self.fixed_error_ = max(float(np.max(np.abs(GateRate(self.gates_[g], kind)(grid)
                                                        / np.maximum(truth[f"{kind}_{g}"], 1e-300) - 1.0)))
                                    for g in fixed for kind in ("alpha", "beta"))

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        if not hasattr(self, "networks_"):
            raise NotFittedError("this RateEstimator is not fitted yet: call fit(traces) first")

    def predict_rates(self, V, return_std=False, return_cov=False):
        """Learned rates at potentials ``V``, optionally with their standard deviations or covariances.

        Parameters
        ----------
        V : array_like
            Membrane potentials (mV).
        return_std : bool
            Also return each rate's posterior standard deviation (1/ms): the
            Laplace covariance of stage 3 (:mod:`hhsym.estimate.likelihood`)
            through the delta method; a 95 % band is ``rate ± 1.96 std``.
            Needs a fit whose stage 3 ran (``ml_windows``).
        return_cov : bool
            Also return, per gate, the posterior covariance of its two rates at
            every potential of ``V`` jointly (the same Laplace covariance; rates
            at nearby potentials, and a gate's alpha and beta, are strongly
            correlated, which the standard deviations alone do not show).  Not
            together with ``return_std``.

        Returns
        -------
        rates : dict
            Rate name (``alpha_m``, ...) -> ndarray of rates (1/ms).
        std : dict, only with ``return_std``
            Rate name -> ndarray of standard deviations (1/ms).
        cov : dict, only with ``return_cov``
            Gate name -> ndarray (2K, 2K) for the K potentials of ``V`` (flattened): the covariance
            (1/ms²) of ``alpha`` at ``V`` followed by ``beta`` at ``V``; zero for the gates kept at the
            template's rates (``fixed``).
        """
        self._check_fitted()
        V = check_voltages(V)
        if not isinstance(return_std, bool) or not isinstance(return_cov, bool):
            raise invalid("return_std, return_cov", (return_std, return_cov), "True or False each",
                          cls=ArgumentTypeError)
        if return_std and return_cov:
            raise invalid("return_cov", return_cov, "False when return_std is True (ask for one of them)")
        rates = {k: net(V) for k, net in self.networks_.items()}
        if len(rates) < 2 * len(self.gates_):  # the fixed gates' rates are the template's
            kept = self.model.evaluate_rates(V)
            rates = {k: rates[k] if k in rates else np.asarray(kept[k], dtype=float)
                     for k in (f"{kind}_{g}" for g in self.gates_ for kind in ("alpha", "beta"))}
        if not (return_std or return_cov):
            return rates
        cov = getattr(self, "covariance_", None)
        if cov is None:
            raise NotFittedError("no rate uncertainty: the maximum-likelihood stage did not run on this fit "
                                 "(fit with ml_windows=(2.5, 5.0, 10.0), or None for noisy recordings)")
        if return_std:
            return rates, gate_rate_std(list(self.gates_.values()), list(self.gates_), cov, V)
        out = gate_rate_covariance(list(self.gates_.values()), list(self.gates_), cov, V)
        for g in getattr(self, "fixed_", ()):  # held at the template's rates: no uncertainty
            out[g] = np.zeros_like(out[g])
        return rates, out

    def replay(self, trace):
        """Run the fitted hybrid model freely under a recording's current.

        Compile-free (:mod:`hhsym.estimate.replay`): the same RK4 scheme as
        ``hhsym.simulate(self.model_, ..., method="rk4")`` on the recording's
        grid, without compiling the networks' expressions.  Fixed gates
        (``fixed``) run as their networks fitted to the template's curves
        (``fixed_error_``), so there the two differ by that much.

        Parameters
        ----------
        trace : Trace
            Recording (ms, mV, µA/cm²) whose current drives the model; V
            starts at its first sample, the gates at their steady state.

        Returns
        -------
        Trace
        """
        self._check_fitted()
        if not self.gates_:
            raise NotFittedError("replay needs per-gate networks (a fit of format hhsym.fit/2)")
        from hhsym.estimate.replay import replay
        return replay(self, trace)

