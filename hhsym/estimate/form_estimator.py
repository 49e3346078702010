r"""FormEstimator: closed-form rates straight from V(t) and I(t), without networks — the route for noisy recordings.

:class:`~hhsym.estimate.RateEstimator` + :func:`~hhsym.distill.distill` is
the route for clean recordings: free-form networks first, forms read off
them.  With noise on V the networks are not determined by the data
(``benchmarks/bench_identifiability.py``: at 0.5 mV, rates 100–550 % off fit
the recordings better than the truth), and the forms read off them are
wrong.  A closed-form model has 14–15 constants, which the recordings do
determine (Cramér–Rao: 3.2 % at 0.5 mV on 2 × 300 ms of HH with 30 ms
windows).  :class:`FormEstimator` fits them directly:

1. *roles and a start* (:func:`hhsym.estimate.search.charge_search.role_search`):
   every gate-role pattern, each gate in the literature's commonest pair of
   forms for its role, constants from random starts fitted to the charge
   balance (cheap, wide basin, biased by the noise by some tens of per cent);
   patterns within ``ROLE_MARGIN`` of the lowest cost are fitted by output
   error (step 3) and the lowest BIC wins;
2. *forms* (optional, :func:`hhsym.estimate.search.form_search.search_forms`):
   every swap of one rate's family, compared by the BIC of the output error
   over 1.25 ms windows; the pick is continued to 40 ms windows and kept only
   if its BIC there beats the role forms' (under noise the short windows
   barely tell forms apart: measured, a wrong beta_h won there by 0.3 %);
3. *constants* (:func:`hhsym.estimate.losses.output_error.fit_output_error`): the
   output error (the model runs freely from a fitted state per window, the
   maximum-likelihood loss under noise on V), continued from 1.25 ms windows
   to 40 ms.

With ``start="model"`` step 1 is replaced by the template itself: a
literature model of a related cell (or a distilled one) whose rates are
literature forms starts the fit as it is
(:func:`hhsym.estimate.search.form_search.model_start`), its gates' roles
read off its steady states; steps 2 and 3 run as above.

Measured (``benchmarks/bench_forms.py``) on bench_fit's data: see the README.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator

from hhsym.estimate.fitfile import SavedFit
from hhsym.estimate.form_exports import FormExports
from hhsym.estimate.search.charge_search import role_search
from hhsym.estimate.losses.output_error import fit_output_error, misfit
from hhsym.estimate.search.form_search import model_start, search_forms
from hhsym.errors import IdentifiabilityWarning, SimulationError, invalid
from hhsym.estimate.checks import as_recordings, membrane_areas, noise_level
from hhsym.estimate.quality import judge_model
from hhsym.estimate import constraints as C

__all__ = ["FormEstimator"]


class FormEstimator(FormExports, SavedFit, BaseEstimator):
    r"""Fit literature-form rate functions of a conductance model to recordings (module docstring).

    Parameters
    ----------
    model : ConductanceModel
        Template: channels, conductances (mS/cm²), reversal potentials (mV),
        C_m (µF/cm²) and gate powers are known and kept (but for ``free``); its
        rate expressions are ignored, unless ``start="model"``.
    start : {"roles", "model"}
        Where the fit starts.  ``"roles"``: a charge-balance search over the
        gate-role patterns, each gate in its role's commonest literature
        forms (no model of the rates needed).  ``"model"``: the template's
        own rates, each recognised as the literature form it is on the
        recorded range (exponential, sigmoid, linoid, constant or a sum of
        two, to 0.1 %), the roles read off its steady states; no role search
        (``n_starts`` and ``window`` are unused).  For a literature model of a
        related cell: 1–2 min on 2 × 300 ms without ``search``.
    n_starts : int
        Random starts per gate-role pattern of the charge-balance search
        (:func:`~hhsym.estimate.search.charge_search.role_search`; 60 reached the
        optimum 4 times of 4 where 30 did 3 of 4).
    window : float
        Charge-balance window (ms) of that search.
    roles : dict, optional
        Gate name -> known role, ``+1`` / ``"activating"`` (opens on
        depolarisation) or ``-1`` / ``"inactivating"``; the role search tries
        only the patterns that agree (one pattern when every gate is given,
        instead of :math:`2^{n_\mathrm{gates}}`).  Default: search them all.
        With ``start="model"`` each given role must agree with the model's.
    search : bool
        Search each rate's form by the output error's BIC (every single-rate
        swap among exponential, sigmoid and linoid; ~10 s a trial on
        2 × 300 ms).  ``False`` keeps the starting forms (the role forms,
        :data:`~hhsym.estimate.search.charge_search.ROLE_FORMS`, or the model's).
    max_iter : int
        Levenberg–Marquardt iterations per window length of the output-error fit.
    uncertainty : bool
        Compute the Cramér–Rao standard deviations of the constants at the
        fit and the estimated noise (:attr:`standard_errors_`, over the
        fit's longest windows, from its fitted initial states).
    time_limit : float, optional
        Soft budget (s) of the role search and of the form search each.
    random_state : int, numpy.random.Generator or None
        Seed of the role search's random starts; fixes the fit.
    verbose : int
        0 silent, 1 progress lines.
    free : sequence of str
        Whole-cell scalars fitted with the rate constants by output error, started
        from the template's values: ``g_<channel>`` (mS/cm²), ``E_<channel>`` (mV),
        ``C_m`` (µF/cm²) (:mod:`hhsym.estimate.rates.scalars`; freeing ``C_m`` and the
        conductances absorbs an error in the membrane area that turned pA into
        µA/cm²), each with optional bounds ``"E_Na=30:70"`` (by default a reversal
        potential stays within 30 mV of the template's value, the others positive).  The role search and the form search's trials keep them at the
        template's and the last fit's values.  Default: none.
    fixed : sequence of str
        Gates whose rates are kept as the template writes them, any expression
        (e.g. a literature M-current gate while Na and K are fitted); needs
        ``start="model"``.  Default: none.

    Attributes
    ----------
    roles_ : dict
        Gate name -> +1 (activating) or -1 (inactivating): the chosen pattern, or the model's.
    hypotheses_ : list of RoleHypothesis
        Every pattern's best charge-balance fit, lowest cost first; the
        close contenders also carry ``output_rms`` (mV, the output error
        they reached over the longest windows), the others ``None``.
        Empty with ``start="model"`` (no patterns were tried).
    start_ : dict
        Rate name -> :class:`~hhsym.estimate.rates.formfit.FormFit` where the output-error fits and the form
        search start: the winning pattern's charge-balance fit, or the model's own rates.
    search_accepted_ : bool or None
        Whether the form search swapped a form and its pick beat the starting forms over the longest windows
        (None without ``search``).
    fit_ : OutputErrorFit
        The final fit (``rms`` in mV over the longest windows, ``bic``, ``seconds``).
    trials_ : list of dict
        The form search's trial models (empty without ``search``).
    forms_ : dict
        Rate name -> form (``"linoid"``, ``"exponential"``, ...).
    constants_ : dict
        Rate name -> public constants (A in 1/ms; B, k in mV; exponentials ``A e^{V/k}``).
    standard_errors_ : dict or None
        Rate name -> {constant: relative standard deviation} at the fit and
        ``noise_`` (:func:`hhsym.estimate.uncertainty.standard_errors`).
    model_ : ConductanceModel
        The template with the fitted rates (constants to six significant digits); simulatable.  Named
        ``"<template> (closed forms)"``, or ``"<template> (refitted)"`` with ``start="model"``.
    scalars_ : dict
        The fitted ``free`` scalars (mS/cm², mV, µF/cm²); empty without ``free``.
    rms_ : float
        RMS of V_model - V_meas (mV) over the longest windows; about ``noise_`` at a good fit.
    misfit_ : str or None
        Why the fit does not reach the noise level (:func:`~hhsym.estimate.losses.output_error.misfit`), or None.
    noise_ : float
        Estimated noise on V (mV, :func:`hhsym.estimate.checks.noise_level`, largest over the traces).
    v_range_ : tuple of float
        0.5–99.5 percentiles of the recorded V (mV): where forms are compared and guarded.
    quality_ : FitQuality
        Verdict on the fit (:func:`hhsym.estimate.quality.judge_model`: the windowed output error against the
        noise, training spike coincidence); ``quality_.ok`` is False for a fit that does not reproduce its data.
    timings_ : dict
        Wall times (s): ``roles`` (charge-balance search; with ``start="model"`` recognising the model's
        forms), ``output_error`` (the contenders' fits, or the model's), ``form_search``, ``uncertainty``,
        ``total``.
    fit_time_ : float
        Wall time of ``fit`` (s).
    membrane_area_ : list of dict
        Per lab file trained on, the membrane area that turned its pA into µA/cm²
        (:func:`hhsym.estimate.checks.membrane_areas`); empty for densities.  Saved in the fit
        file; ``hhsym validate`` uses it by default.
    """

    def __init__(self, model=None, start="roles", n_starts=60, window=0.25, roles=None, search=True, max_iter=100,
                 uncertainty=True, time_limit=None, random_state=None, verbose=0, free=(), fixed=()):
        self.model = model
        self.start = start
        self.n_starts = n_starts
        self.window = window
        self.roles = roles
        self.search = search
        self.max_iter = max_iter
        self.uncertainty = uncertainty
        self.time_limit = time_limit
        self.random_state = random_state
        self.verbose = verbose
        self.free = free
        self.fixed = fixed

    _parameter_constraints = {
        "model": C.model(),
        "start": C.choice("roles", "model"),
        "n_starts": C.integer(1),
        "window": C.real(0.0, strict_low=True, unit="ms"),
        "roles": C.roles(),
        "search": C.boolean(),
        "max_iter": C.integer(1),
        "uncertainty": C.boolean(),
        "time_limit": C.optional(C.real(0.0, strict_low=True, unit="s")),
        "random_state": C.random_state(),
        "verbose": C.integer(0),
        "free": C.names("scalar names (g_<channel>, E_<channel>, C_m)"),
        "fixed": C.names("gate names"),
    }

    def _check_params(self):
        params = C.validate_params(self)
        C.check_free_and_fixed(self.model, params["free"], params["fixed"], params["start"])
        return params

    def fit(self, traces):
        """Fit forms and constants to recordings.

        Parameters
        ----------
        traces : Trace, TraceSet or list of Trace
            Uniformly sampled V (mV) and injected current I (µA/cm²); any step dt (ms).

        Returns
        -------
        self

        Raises
        ------
        InvalidArgumentError
            With ``start="model"``: naming ``model`` if one of its rates is no literature form on the
            recorded range, ``roles`` if a given role contradicts the model's.
        SimulationError
            If no role pattern gives a finite model on the recordings, or the final model fails on them.

        Warns
        -----
        IdentifiabilityWarning
            When the fit does not reach the recordings' noise level (:attr:`misfit_`).
        """
        t0 = time.perf_counter()
        params = self._check_params()
        free = params["free"]
        patterns = self._patterns(params["roles"])
        data = as_recordings(traces, noise_warning=False)  # that warning is about free-form rates
        self.membrane_area_ = membrane_areas(traces)
        rng = self.random_state if isinstance(self.random_state, np.random.Generator) \
            else np.random.default_rng(self.random_state)
        self.noise_ = max(noise_level(d[1]) for d in data)
        allV = np.concatenate([d[1] for d in data])
        self.v_range_ = tuple(float(v) for v in np.percentile(allV, [0.5, 99.5]))
        if params["start"] == "model":
            self.roles_, self.start_ = model_start(self.model, self.v_range_, params["roles"], params["fixed"])
            self.hypotheses_ = []
            t_roles = time.perf_counter()
            confirmed = fit_output_error(self.model, data, self.start_, max_iter=int(self.max_iter),
                                         v_range=self.v_range_, free=free)
            if self.verbose:
                print(f"[hhsym.forms] the model's own forms: output error {confirmed} ({confirmed.seconds:.1f} s)"
                      + (f", stopped {confirmed.stopped}" if confirmed.stopped else ""), flush=True)
        else:
            t_roles, confirmed = self._search_roles(data, patterns, rng, t0, free)
        t1 = time.perf_counter()
        self.trials_, self.search_accepted_ = [], None
        final = confirmed
        if self.search:
            V = np.linspace(*self.v_range_, 200)
            references = {k: f.evaluate(V) for k, f in self.start_.items()}
            searched_in = self.model.with_params(**confirmed.scalars) if confirmed.scalars else self.model
            pick, self.trials_ = search_forms(searched_in, data, self.start_, self.v_range_,
                                              max_iter=int(self.max_iter), references=references,
                                              time_limit=self.time_limit, verbose=self.verbose)
            self.search_accepted_ = False
            if any(t["accepted"] for t in self.trials_[1:]):
                # the search compares forms over 1.25 ms windows, which barely tell them apart under noise:
                # its pick is kept only if it also wins over the longest windows
                searched = fit_output_error(searched_in, data, pick.start or pick.fits, max_iter=int(self.max_iter),
                                            v_range=self.v_range_, free=free)
                self.search_accepted_ = bool(searched.bic < confirmed.bic)  # False if both fail: inf < inf
                if self.search_accepted_:
                    final = searched
                if self.verbose:
                    print(f"[hhsym.forms] searched forms {'kept' if self.search_accepted_ else 'not kept'}: "
                          f"BIC {searched.bic:.6g} over the longest windows against {confirmed.bic:.6g} with "
                          "the starting forms", flush=True)
        if not math.isfinite(final.cost):
            budget = ""
            if self.time_limit is not None and time.perf_counter() - t0 >= 0.9 * self.time_limit:
                budget = (f"; the time budget (time_limit={self.time_limit:g} s) ran out during the fit, "
                          "which may be the cause: raise it")
            start = (f"; start='model' starts from {self.model.name}'s own rates: is it a model of this kind of "
                     "cell, in these units? start='roles' needs no model of the rates") \
                if params["start"] == "model" else ""
            raise SimulationError("the fitted closed-form model fails (non-finite) on the recordings" + start
                                  + budget)
        t2 = time.perf_counter()
        self._set_fitted(final, self.roles_, self.hypotheses_, self.trials_, self.search_accepted_,
                         misfit(final, data), None, None)
        self.standard_errors_ = None
        if self.uncertainty:
            from hhsym.estimate.uncertainty import standard_errors

            try:
                self.standard_errors_ = standard_errors(final.model(self.model), data, final.fits, max(self.noise_, 1e-3),
                                                        window=final.windows[-1], states=final.states)
            except (FloatingPointError, np.linalg.LinAlgError):
                self.standard_errors_ = None
        t3 = time.perf_counter()
        self.timings_ = {"roles": t_roles - t0, "output_error": t1 - t_roles, "form_search": t2 - t1,
                         "uncertainty": t3 - t2, "total": t3 - t0}
        self.fit_time_ = t3 - t0
        if self.misfit_:
            warnings.warn(self.misfit_, IdentifiabilityWarning, stacklevel=2)
        self.quality_ = judge_model(self.model_, data, self.noise_, window_rms=self.rms_, hint=self._hint())
        if self.verbose:
            print(f"[hhsym.forms] done: rms {self.rms_:.4g} mV (noise ~{self.noise_:.2g} mV), "
                  f"{self.fit_time_:.1f} s", flush=True)
        return self

    def _hint(self):
        """What to try when the fit is poor (:attr:`quality_`)."""
        tries = ("search=True, start='roles' (the model's rates may be too far from the cell's)"
                 if self.start == "model" else "a longer time_limit, another random_state")
        return (f"Try more data, {tries}, or check the template (conductances, reversal potentials, C_m) "
                "and the current's units (µA/cm²) and sign.")

    def _search_roles(self, data, patterns, rng, t0, free=()):
        """Step 1 of the module docstring (the role search and its confirmation): sets ``hypotheses_``, ``roles_``, ``start_``.

        Returns
        -------
        t_roles : float
            ``time.perf_counter()`` at the end of the charge-balance search.
        confirmed : OutputErrorFit
            The winning pattern's output-error fit.
        """
        self.hypotheses_ = role_search(self.model, data, n_starts=self.n_starts, window=float(self.window),
                                       v_lim=self.v_range_, rng=rng, patterns=patterns, time_limit=self.time_limit,
                                       verbose=self.verbose)
        t_roles = time.perf_counter()
        if self.hypotheses_[0].fits is None:
            if self.time_limit is not None and t_roles - t0 >= 0.9 * self.time_limit:
                raise SimulationError(f"the time budget (time_limit={self.time_limit:g} s) ran out after "
                                      f"{t_roles - t0:.1f} s, before any gate-role pattern was fitted: "
                                      "raise time_limit (or drop it)")
            raise SimulationError("no gate-role pattern gives a finite model on these traces; check the "
                                  "template's conductances, reversal potentials and C_m, and the current's "
                                  "units (µA/cm²) and sign")
        best, confirmed = self._confirm_roles(data, free)
        self.roles_, self.start_ = dict(best.signs), dict(best.fits)
        return t_roles, confirmed

    def _patterns(self, roles):
        """The role patterns (tuples of ±1 in gate order) that agree with the known ``roles``; None: all."""
        if not roles:
            return None
        names = [g.name for g in self.model.gates]
        unknown = sorted(set(roles) - set(names))
        if unknown:
            verb = "is not a gate" if len(unknown) == 1 else "are not gates"
            raise invalid("roles", roles, f"gate names of the model ({', '.join(names)})",
                          hint=f"{', '.join(map(repr, unknown))} {verb}")
        choices = [(roles[n],) if n in roles else (1, -1) for n in names]
        return list(itertools.product(*choices))

    #: Role patterns whose charge-balance cost is within this factor of the best are compared by output error.
    ROLE_MARGIN = 1.15
    #: At most this many patterns are compared by output error.
    MAX_CONTENDERS = 3

    def _confirm_roles(self, data, free=()):
        """The winning role pattern and its output-error fit (over all of :data:`WINDOWS`, guarded).

        The charge balance ranks the patterns by a small margin under noise (measured on 2 x 100 ms of HH at
        0.5 mV: the right pattern 0.208 mV², HH with h as an activation gate 0.213), so every pattern within
        ``ROLE_MARGIN`` of the lowest cost (at most ``MAX_CONTENDERS``) is fitted by output error and the
        lowest BIC wins.  Each contender's ``output_rms`` (mV) is set.
        """
        hyps = [h for h in self.hypotheses_ if h.fits is not None]
        contenders = [h for h in hyps if h.cost <= self.ROLE_MARGIN * hyps[0].cost][:self.MAX_CONTENDERS]
        fits = {}
        for h in contenders:
            fit = fit_output_error(self.model, data, h.fits, max_iter=int(self.max_iter), v_range=self.v_range_,
                                   free=free)
            h.output_rms, fits[h.label] = fit.rms, fit
            if self.verbose:
                print(f"[hhsym.forms] roles {h.label}: output error {fit} ({fit.seconds:.1f} s)"
                      + (f", stopped {fit.stopped}" if fit.stopped else ""), flush=True)
        best = min(contenders, key=lambda h: fits[h.label].bic)
        return best, fits[best.label]

    def _set_fitted(self, final, roles, hypotheses, trials, search_accepted, misfit_text, standard_errors,
                    timings):
        """Set the fitted attributes from an :class:`OutputErrorFit` (in ``fit`` and by :func:`hhsym.load`)."""
        self.roles_, self.hypotheses_, self.trials_ = dict(roles), list(hypotheses), list(trials)
        self.search_accepted_ = search_accepted
        self.fit_ = final
        self.forms_ = dict(final.forms)
        self.constants_ = {k: f.params() for k, f in final.fits.items()}
        self.rms_ = final.rms
        self.misfit_ = misfit_text
        suffix = "refitted" if self.start == "model" else "closed forms"
        self.scalars_ = dict(final.scalars)
        self.model_ = self.model.with_rates({k: f.expr() for k, f in final.fits.items()},
                                            name=f"{self.model.name} ({suffix})")
        if self.scalars_:
            self.model_ = self.model_.with_params(**self.scalars_)
        self.standard_errors_ = standard_errors
        if timings is not None:
            self.timings_ = dict(timings)

