r"""Output-error fitting of closed-form models.

With measurement noise on V the networks a :class:`~hhsym.estimate.RateEstimator`
learns are not determined by the data: ``benchmarks/bench_identifiability.py``
measured fits of free-form rates that match 0.5 mV-noisy recordings *better*
than the true rates while lying 100–550 % away from them where they matter.
A closed-form model has 14–15 constants instead of hundreds of weights, and
those the data do determine: the Cramér–Rao bound
(:func:`hhsym.estimate.uncertainty.standard_errors`)
on 2 × 300 ms of HH at 0.5 mV is 3.2 % for the worst constant with 30 ms
windows (72 % with 3 ms: short windows throw the information away).

* :func:`fit_output_error` fits all constants by output error
  (:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` over a
  :class:`~hhsym.estimate.rates.form_pairs.FormFamily`: the model runs freely over
  windows from a fitted initial state each, and every ``stride``-th sample of
  V is compared with the recording — the maximum-likelihood loss for Gaussian
  noise on V), with exact Jacobians and the windows' initial states
  eliminated block by block (:mod:`hhsym.estimate.optimise.window_lm`), continued from
  1.25 ms windows to 40 ms.  Measured (``benchmarks/bench_output_error.py``):
  from starts 21–61 % off, every constant within 5 % at 0.5 mV.
* :func:`misfit` says when a fit does not reach the noise level (a start
  outside the basin).  The choice of forms by the recordings
  (:func:`~hhsym.estimate.search.form_search.search_forms`, :func:`~hhsym.estimate.search.form_search.model_start`)
  is in :mod:`hhsym.estimate.search.form_search`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import sympy

from hhsym.estimate.rates.closed_forms import FAMILIES
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.rates.formfit import SUMS, FormFit
from hhsym.estimate.search.continuation import cost_rms

__all__ = ["OutputErrorFit", "fit_output_error", "formfit_from_candidate", "misfit", "misfit_level", "model_forms",
           "WINDOWS"]

#: Families tried for each rate by :func:`search_forms`.
SEARCH_FAMILIES = ("exponential", "sigmoid", "linoid")


def formfit_from_candidate(candidate):
    """The :class:`~hhsym.estimate.rates.formfit.FormFit` of a literature-form candidate, or ``None`` for an open form.

    Parameters
    ----------
    candidate : Candidate
        With ``form`` a family name or ``sum(a,b)`` and ``params`` its public
        constants (A, c in 1/ms; B, k in mV; a sum's suffixed 1 and 2).
    """
    form, pub = candidate.form, dict(candidate.params)
    if form in FAMILIES:
        names, sfx = [form], [""]
    else:
        pair = next((p for p in SUMS if form == f"sum({p[0]},{p[1]})"), None)
        if pair is None:
            return None
        names, sfx = list(pair), ["1", "2"]
    fams, theta = [], []
    for name, x in zip(names, sfx):
        own = {p: pub.get(p + x) for p in FAMILIES[name].names}
        if any(v is None or not math.isfinite(v) for v in own.values()):
            return None
        fams.append(FAMILIES[name])
        theta += FAMILIES[name].internal(own)
    return FormFit(fams, theta)


def model_forms(model, V, tolerance=1e-3, fixed=()):
    """Each rate of a model as the literature form it is (:class:`~hhsym.estimate.rates.formfit.FormFit`).

    Parameters
    ----------
    model : ConductanceModel
        Rates (1/ms) in V (mV).
    V : ndarray
        Voltages (mV) on which each rate is sampled and recognised by the forms backend (no open forms).
    tolerance : float
        Largest relative error of the recognised form on the samples.
    fixed : sequence of str
        Gates whose rates are kept as the model writes them (a parameter-free
        :class:`~hhsym.estimate.rates.closed_forms.Fixed` form each; any expression).

    Returns
    -------
    dict
        Rate name -> FormFit.

    Raises
    ------
    InvalidArgumentError
        If a rate is no literature form (family or sum of two) within ``tolerance`` on ``V``.
    """
    from hhsym.distill.forms import FormsBackend
    from hhsym.errors import invalid

    rates = model.evaluate_rates(V)
    backend = FormsBackend(fallback=None)
    kept = kept_forms(model, fixed)
    out = {}
    for g in model.gates:
        for kind in ("alpha", "beta"):
            k = f"{kind}_{g.name}"
            if k in kept:
                out[k] = kept[k]
                continue
            best = backend.fit_rate(V, np.asarray(rates[k], dtype=float), k).best
            fit = formfit_from_candidate(best) if best is not None else None
            if fit is None or best.max_rel_error > tolerance:
                raise invalid("model", model.name, f"rates in literature forms on [{V[0]:g}, {V[-1]:g}] mV "
                              f"({k} is not one: best form misses by "
                              f"{'-' if best is None else f'{best.max_rel_error:.2%}'})")
            out[k] = fit
    return out


def kept_forms(model, gates):
    """The rates of ``gates`` as the model writes them: rate name -> parameter-free
    :class:`~hhsym.estimate.rates.formfit.FormFit` (:class:`~hhsym.estimate.rates.closed_forms.Fixed`),
    parameter values substituted.

    Parameters
    ----------
    model : ConductanceModel
    gates : sequence of str
        Gate names of ``model``.

    Returns
    -------
    dict
    """
    from hhsym.estimate.rates.closed_forms import Fixed

    values = {sympy.Symbol(k, real=True): sympy.Float(v) for k, v in model.rate_params.items()}
    functions = model.rate_functions()
    keys = [f"{kind}_{g}" for g in gates for kind in ("alpha", "beta")]
    return {k: FormFit([Fixed(model.rates[k].xreplace(values), functions[k])], []) for k in keys}


class OutputErrorFit:
    r"""A closed-form model fitted by output error (returned by :func:`fit_output_error`).

    Attributes
    ----------
    fits : dict
        Rate name -> fitted :class:`~hhsym.estimate.rates.formfit.FormFit`.
    forms : dict
        Rate name -> form (``"linoid"``, ``"sum(exponential,sigmoid)"``, ...).
    cost : float
        Half the mean square of ``V_model - V_meas`` (mV²).
    rms : float
        Root mean square of ``V_model - V_meas`` (mV); about the noise level on V at a good fit.
    n_residuals, n_constants : int
        Samples compared and rate constants fitted.
    bic : float
        :math:`N \ln(2\,\mathrm{cost}) + p \ln N` (``N`` residuals, ``p`` constants).
    states : ndarray
        Fitted initial state of every window of the last length (potential in mV, gate offsets).
    seconds : float
        Wall-clock time of the fit (s).
    windows : tuple of float
        Window lengths (ms) run, the last one the fit's.
    rms_initial : float
        RMS (mV) of the starting constants over the first window length, initial states fitted
        (``inf`` if that fails).
    start : dict
        Rate name -> the :class:`~hhsym.estimate.rates.formfit.FormFit` the fit started from.
    stopped : str or None
        Why the continuation stopped before its last window length (a form
        turned degenerate there; the fit is the previous length's), else None.
    scalars : dict
        Fitted whole-cell scalars (``g_<channel>`` mS/cm², ``E_<channel>`` mV, ``C_m`` µF/cm²),
        empty unless :func:`fit_output_error` was given ``free``; they count in ``n_constants``.
    """

    def __init__(self, fits, cost, n_residuals, n_constants, states, seconds, windows=(), rms_initial=math.inf,
                 start=None):
        self.fits = dict(fits)
        self.forms = {k: f.form for k, f in self.fits.items()}
        self.cost, self.n_residuals, self.n_constants = float(cost), int(n_residuals), int(n_constants)
        self.rms = cost_rms(self.cost)
        self.bic = (self.n_residuals * math.log(max(2.0 * self.cost, 1e-300))
                    + self.n_constants * math.log(self.n_residuals)) if math.isfinite(self.cost) else math.inf
        self.states, self.seconds = states, float(seconds)
        self.windows = tuple(windows)
        self.rms_initial = float(rms_initial)
        self.start = dict(start or {})
        self.stopped = None
        self.scalars = {}

    def model(self, template):
        """``template`` with the fitted rates (and scalars): a :class:`~hhsym.model.ConductanceModel`."""
        out = template.with_rates({k: f.expr() for k, f in self.fits.items()})
        return out.with_params(**self.scalars) if self.scalars else out

    def __repr__(self):
        return f"OutputErrorFit(rms {self.rms:.4g} mV, {self.n_constants} constants, BIC {self.bic:.6g})"


#: Window lengths (ms) of the continuation in :func:`fit_output_error`, each a multiple of the one before.
WINDOWS = (1.25, 2.5, 5.0, 10.0, 20.0, 40.0)


def fit_output_error(template, data, fits, windows=WINDOWS, substeps=None, stride=None, max_iter=100, time_limit=None,
                     v_range=None, free=(), fit_rates=True, max_rms=None, max_growth=None):
    """Fit every constant of a closed-form model to the recordings by output error, short windows to long.

    The output error over long windows carries the information (Cramér–Rao
    bounds of :func:`standard_errors` on 2 × 300 ms of HH at 0.5 mV: up to
    72 % with 3 ms windows, 3.2 % with 30 ms), but over long windows a model
    a few per cent off fires at other times than the recording and the loss
    has many local minima.  So the fit is continued over window lengths
    ``windows``: the shortest (nearly convex: the model runs ~1 ms from a
    fitted state) pulls the constants close, and each longer one starts from
    the constants and fitted initial states of the one before
    (:meth:`~hhsym.estimate.losses.trajectory.TrajectoryProblem.carry_states`;
    with or without the gate offsets, whichever fits better).
    Measured (``benchmarks/bench_output_error.py``): from HH's forms with
    every constant perturbed by ~20 %, at 0.5 mV noise, 1.25 → 40 ms brings
    every constant within 4.4 %; a single 3 ms level left them 14 % off.

    Parameters
    ----------
    template : ConductanceModel
        Structure, conductances (mS/cm²), reversal potentials (mV), C_m (µF/cm²) and powers.
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace (:func:`hhsym.estimate.checks.as_recordings`).
    fits : dict
        Rate name -> :class:`~hhsym.estimate.rates.formfit.FormFit` (forms and starting constants).
    windows : sequence of float
        Window lengths (ms), shortest first; each window has its own fitted initial state.
    substeps, stride : int, optional
        RK4 sub-steps per sample and a residual every ``stride`` samples; by
        default steps of at most 0.025 ms and residuals ~0.05 ms apart, at any
        sampling rate (:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem`).
    max_iter : int
        Levenberg–Marquardt iterations per window length (each stops earlier
        once converged; the initial states are first fitted alone, up to 30
        iterations on the first length, 10 after).  Fewer leave the short
        lengths unconverged and the long ones out of their basin: on 2 ×
        100 ms of HH from a 20 % perturbation, 30 left constants 37 % off,
        100 brought them within 0.05 %.
    time_limit : float, optional
        Soft wall-time budget (s); later window lengths are skipped once it is spent.
    v_range : (float, float), optional
        Voltage range (mV) of the forms' guards (:meth:`FormFit.rejection`):
        when given, a window length that turns a form degenerate that was not
        at the length before (a slope of thousands of mV, a midpoint far
        outside the data) ends the continuation there and the fit of the
        length before is returned, with ``stopped`` saying why.  Measured on
        bench_fit's HH at 0.5 mV: restarted at 1.25 ms from its own 1.25 ms
        fit, the continuation once took beta_h's sigmoid to a slope of 1e4 mV
        (RMS 0.98 mV) where the first pass had stayed regular.
    free : str, sequence of str or dict
        Whole-cell scalars fitted with the constants, started from the template's values
        (``g_<channel>``, ``E_<channel>``, ``C_m``), with optional bounds (``"E_Na=30:70"``,
        ``{"E_Na": (30, 70)}``; :class:`~hhsym.estimate.rates.scalars.ScalarParameters`).
    fit_rates : bool
        False keeps the rate constants at ``fits`` and fits only ``free`` (and the initial
        states): the fixed-kinetics fit of a template's scalars.
    max_rms : float, optional
        RMS (mV) up to which a fit reproduces the recordings (:func:`misfit_level`): a window length
        whose fit leaves more where the length before's did not ends the continuation there, with
        ``stopped`` saying why (:func:`~hhsym.estimate.search.continuation.continue_windows`).
    max_growth : float, optional
        Factor by which the noise the residuals imply may grow from the first window length: a
        length beyond it ends the continuation there, with ``stopped`` saying why
        (:func:`~hhsym.estimate.search.continuation.continue_windows`).

    Returns
    -------
    OutputErrorFit
        At the last window length run; ``cost`` is ``inf`` if the model
        fails (non-finite) on the recordings.
    """
    from hhsym.estimate.search.continuation import continue_windows

    t0 = time.perf_counter()
    from hhsym.estimate.rates.scalars import ScalarParameters

    fam = FormFamily(template, fits)
    sc = ScalarParameters(template, free) if len(free) else None
    nr = fam.n_params
    V = None if v_range is None else np.linspace(float(v_range[0]), float(v_range[1]), 200)
    guard = None if V is None else (lambda p: _guarded(fam.fits(p[:nr]), V))
    p0 = fam.pack(fits) if sc is None else np.concatenate([fam.pack(fits), sc.pack()])
    rate_cols = fam.used if fit_rates else np.zeros(0, dtype=np.int64)
    used = rate_cols if sc is None else np.concatenate([rate_cols, nr + np.arange(sc.n_params)])
    bound = _rate_bound(fam, data, p0, substeps)
    run = continue_windows(fam, template, data, p0, windows, free=used, substeps=substeps,
                           stride=stride, max_iter=max_iter, time_limit=time_limit, guard=guard, scalars=sc,
                           penalty=bound, max_rms=max_rms, max_growth=max_growth)
    n_constants = (fam.n_constants if fit_rates else 0) + (0 if sc is None else sc.n_params)
    out = OutputErrorFit(fam.fits(run.p[:nr]), run.cost, run.problem.n_residuals, n_constants, run.states,
                         time.perf_counter() - t0, run.windows, run.rms_initial, start=fits)
    out.stopped = run.stopped
    if sc is not None:
        out.scalars = sc.public(run.p[nr:])
    return out


def _rate_bound(fam, data, p0, substeps):
    """The rate-bound penalty (:func:`~hhsym.estimate.losses.rate_bound.rate_bound_penalty`) over the recorded
    range if the start has a gate faster than the free-running model's rate cap there, else None (the fit is
    then what it was without it)."""
    from hhsym.estimate.losses.rate_bound import rate_bound_penalty
    from hhsym.estimate.losses.trajectory import rate_cap_for

    allV = np.concatenate([np.asarray(d[1], dtype=float) for d in data])
    V = np.linspace(*np.percentile(allV, [0.5, 99.5]), 60)
    cap = rate_cap_for(data, substeps)
    n = len(p0)
    pen = rate_bound_penalty(fam, V, cap, n)
    return pen if np.any(pen(p0, False) > 0.0) else None


def _guarded(fits, V):
    """Why one of the forms ``fits`` (rate name -> FormFit) is degenerate on the voltages ``V`` (mV), or ``None``."""
    lo, hi = float(V.min()), float(V.max())
    for k, f in fits.items():
        why = f.rejection(V, lo, hi)
        if why:
            return f"{k}: {why}"
    return None


#: A fit whose RMS exceeds ``MISFIT_FACTOR`` x the noise on V plus ``MISFIT_FLOOR`` (mV) is a misfit.
MISFIT_FACTOR, MISFIT_FLOOR = 1.5, 0.05


def misfit_level(data):
    """RMS (mV) of ``V_model - V_meas`` up to which a fit explains the recordings: ``MISFIT_FACTOR`` x
    their noise on V (:func:`hhsym.estimate.checks.noise_level`, the largest over ``data``) + ``MISFIT_FLOOR``.

    Parameters
    ----------
    data : list of (dt, V, I)
        The recordings (V in mV).

    Returns
    -------
    float
    """
    from hhsym.estimate.checks import noise_level

    return MISFIT_FACTOR * max(noise_level(d[1]) for d in data) + MISFIT_FLOOR


def misfit(fit, data):
    """Why ``fit`` does not explain the recordings to their noise level, or ``None``.

    Parameters
    ----------
    fit : OutputErrorFit
    data : list of (dt, V, I)
        The recordings (V in mV); their noise is estimated by
        :func:`hhsym.estimate.checks.noise_level`.

    Returns
    -------
    str or None
    """
    from hhsym.estimate.checks import noise_level

    if fit.rms <= misfit_level(data):
        return None
    noise = max(noise_level(d[1]) for d in data)
    return (f"the output-error fit leaves {fit.rms:.3g} mV RMS between model and recording, against "
            f"~{noise:.2g} mV of noise on V: the start was not in the right basin (or the forms are wrong), "
            "and the constants are not to be trusted")
