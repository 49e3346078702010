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
2. *forms* (optional, :func:`hhsym.estimate.losses.output_error.search_forms`):
   every swap of one rate's family, compared by the BIC of the output error
   over 1.25 ms windows; the pick is continued to 40 ms windows and kept only
   if its BIC there beats the role forms' (under noise the short windows
   barely tell forms apart: measured, a wrong beta_h won there by 0.3 %);
3. *constants* (:func:`hhsym.estimate.losses.output_error.fit_output_error`): the
   output error (the model runs freely from a fitted state per window, the
   maximum-likelihood loss under noise on V), continued from 1.25 ms windows
   to 40 ms.

Measured (``benchmarks/bench_forms.py``) on bench_fit's data: see the README.
"""

from __future__ import annotations

import datetime
import itertools
import math
import time
import warnings

import numpy as np
import sympy
from sklearn.base import BaseEstimator

from hhsym.estimate.search.charge_search import role_search
from hhsym.estimate.losses.output_error import WINDOWS, fit_output_error, misfit
from hhsym.estimate.search.form_search import search_forms
from hhsym.errors import (ArgumentTypeError, IdentifiabilityWarning, NotFittedError, SimulationError, invalid)
from hhsym.estimate.checks import as_recordings, noise_level
from hhsym.estimate.quality import judge_model
from hhsym.estimate import constraints as C

__all__ = ["FormEstimator"]


class FormEstimator(BaseEstimator):
    """Fit literature-form rate functions of a conductance model to recordings (module docstring).

    Parameters
    ----------
    model : ConductanceModel
        Template: channels, conductances (mS/cm²), reversal potentials (mV),
        C_m (µF/cm²) and gate powers are known; its rate expressions are ignored.
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
    search : bool
        Search each rate's form by the output error's BIC (every single-rate
        swap among exponential, sigmoid and linoid; ~10 s a trial on
        2 × 300 ms).  ``False`` keeps the role forms
        (:data:`~hhsym.estimate.search.charge_search.ROLE_FORMS`).
    max_iter : int
        Levenberg–Marquardt iterations per window length of the output-error fit.
    uncertainty : bool
        Compute the Cramér–Rao standard deviations of the constants at the
        fit and the estimated noise (:attr:`standard_errors_`, over the
        fit's longest windows, from its fitted initial states).
    time_limit : float, optional
        Soft budget (s) of the role search and of the form search each.
    random_state : int, numpy.random.Generator or None
        Seed of the random starts; fixes the fit.
    verbose : int
        0 silent, 1 progress lines.

    Attributes
    ----------
    roles_ : dict
        Gate name -> +1 (activating) or -1 (inactivating), the chosen pattern.
    hypotheses_ : list of RoleHypothesis
        Every pattern's best charge-balance fit, lowest cost first; the
        close contenders also carry ``output_rms`` (mV, the output error
        they reached over the longest windows), the others ``None``.
    start_ : dict
        Rate name -> :class:`~hhsym.estimate.rates.formfit.FormFit`: the winning pattern's charge-balance fit
        (where the output-error fits and the form search start).
    search_accepted_ : bool or None
        Whether the form search swapped a form and its pick beat the role forms over the longest windows
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
        The template with the fitted rates (constants to six significant digits); simulatable.
    rms_ : float
        RMS of V_model - V_meas (mV) over the longest windows; about ``noise_`` at a good fit.
    misfit_ : str or None
        Why the fit does not reach the noise level (:func:`~hhsym.estimate.losses.output_error.misfit`), or None.
    noise_ : float
        Estimated noise on V (mV, :func:`hhsym.estimate.checks.noise_level`, largest over the traces).
    v_range_ : tuple of float
        0.5–99.5 percentiles of the recorded V (mV): where forms are compared and guarded.
    timings_ : dict
        Wall times (s): ``roles`` (charge-balance search), ``output_error`` (the contenders' fits),
        ``form_search``, ``uncertainty``, ``total``.
    fit_time_ : float
        Wall time of ``fit`` (s).
    """

    def __init__(self, model=None, n_starts=60, window=0.25, roles=None, search=True, max_iter=100,
                 uncertainty=True, time_limit=None, random_state=None, verbose=0):
        self.model = model
        self.n_starts = n_starts
        self.window = window
        self.roles = roles
        self.search = search
        self.max_iter = max_iter
        self.uncertainty = uncertainty
        self.time_limit = time_limit
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {
        "model": C.model(),
        "n_starts": C.integer(1),
        "window": C.real(0.0, strict_low=True, unit="ms"),
        "roles": C.roles(),
        "search": C.boolean(),
        "max_iter": C.integer(1),
        "uncertainty": C.boolean(),
        "time_limit": C.optional(C.real(0.0, strict_low=True, unit="s")),
        "random_state": C.random_state(),
        "verbose": C.integer(0),
    }

    def _check_params(self):
        return C.validate_params(self)

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
        SimulationError
            If no role pattern gives a finite model on the recordings, or the final model fails on them.

        Warns
        -----
        IdentifiabilityWarning
            When the fit does not reach the recordings' noise level (:attr:`misfit_`).
        """
        t0 = time.perf_counter()
        params = self._check_params()
        patterns = self._patterns(params["roles"])
        with warnings.catch_warnings():  # that warning is about free-form rates; closed forms are what is fitted here
            warnings.filterwarnings("ignore", message=".*sample-to-sample noise", category=IdentifiabilityWarning)
            data = as_recordings(traces)
        rng = self.random_state if isinstance(self.random_state, np.random.Generator) \
            else np.random.default_rng(self.random_state)
        self.noise_ = max(noise_level(d[1]) for d in data)
        allV = np.concatenate([d[1] for d in data])
        self.v_range_ = tuple(float(v) for v in np.percentile(allV, [0.5, 99.5]))
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
        best, confirmed = self._confirm_roles(data)
        t1 = time.perf_counter()
        self.roles_, self.start_ = dict(best.signs), dict(best.fits)
        self.trials_, self.search_accepted_ = [], None
        final = confirmed
        if self.search:
            V = np.linspace(*self.v_range_, 200)
            references = {k: f.evaluate(V) for k, f in self.start_.items()}
            pick, self.trials_ = search_forms(self.model, data, self.start_, self.v_range_,
                                              max_iter=int(self.max_iter), references=references,
                                              time_limit=self.time_limit, verbose=self.verbose)
            self.search_accepted_ = False
            if any(t["accepted"] for t in self.trials_[1:]):
                # the search compares forms over 1.25 ms windows, which barely tell them apart under noise:
                # its pick is kept only if it also wins over the longest windows
                searched = fit_output_error(self.model, data, pick.start or pick.fits, max_iter=int(self.max_iter),
                                            v_range=self.v_range_)
                self.search_accepted_ = bool(searched.bic < confirmed.bic)
                if self.search_accepted_:
                    final = searched
                if self.verbose:
                    print(f"[hhsym.forms] searched forms {'kept' if self.search_accepted_ else 'not kept'}: "
                          f"BIC {searched.bic:.6g} over the longest windows against {confirmed.bic:.6g} with "
                          "the role forms", flush=True)
        if not math.isfinite(final.cost):
            budget = ""
            if self.time_limit is not None and time.perf_counter() - t0 >= 0.9 * self.time_limit:
                budget = (f"; the time budget (time_limit={self.time_limit:g} s) ran out during the fit, "
                          "which may be the cause: raise it")
            raise SimulationError("the fitted closed-form model fails (non-finite) on the recordings" + budget)
        t2 = time.perf_counter()
        self._set_fitted(final, self.roles_, self.hypotheses_, self.trials_, self.search_accepted_,
                         misfit(final, data), None, None)
        self.standard_errors_ = None
        if self.uncertainty:
            from hhsym.estimate.uncertainty import standard_errors

            try:
                self.standard_errors_ = standard_errors(self.model, data, final.fits, max(self.noise_, 1e-3),
                                                        window=final.windows[-1], states=final.states)
            except (FloatingPointError, np.linalg.LinAlgError):
                self.standard_errors_ = None
        t3 = time.perf_counter()
        self.timings_ = {"roles": t_roles - t0, "output_error": t1 - t_roles, "form_search": t2 - t1,
                         "uncertainty": t3 - t2, "total": t3 - t0}
        self.fit_time_ = t3 - t0
        if self.misfit_:
            warnings.warn(self.misfit_, IdentifiabilityWarning, stacklevel=2)
        self.quality_ = judge_model(self.model_, data, self.noise_, window_rms=self.rms_, hint=(
            "Try more data, a longer time_limit, another random_state, or check the template "
            "(conductances, reversal potentials, C_m) and the current's units (µA/cm²) and sign."))
        if self.verbose:
            print(f"[hhsym.forms] done: rms {self.rms_:.4g} mV (noise ~{self.noise_:.2g} mV), "
                  f"{self.fit_time_:.1f} s", flush=True)
        return self

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

    def _confirm_roles(self, data):
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
            fit = fit_output_error(self.model, data, h.fits, max_iter=int(self.max_iter), v_range=self.v_range_)
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
        self.model_ = self.model.with_rates({k: f.expr() for k, f in final.fits.items()},
                                            name=f"{self.model.name} (closed forms)")
        self.standard_errors_ = standard_errors
        if timings is not None:
            self.timings_ = dict(timings)

    def save(self, path):
        """Write the fitted estimator to ``path`` (``.npz``), atomically; :func:`hhsym.load` reads it back.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` file name (its folder must exist).
        """
        from hhsym.estimate.fitfile import save

        save(self, path)

    # ------------------------------------------------------------------ exports
    def _check_fitted(self):
        if not hasattr(self, "fit_"):
            raise NotFittedError("this FormEstimator is not fitted yet: call fit(traces) first")

    def sympy(self):
        """dict: rate name -> sympy expression in V (mV), 1/ms, written in the families' layout."""
        self._check_fitted()
        return {k: f.expr() for k, f in self.fit_.fits.items()}

    def latex(self, standalone=False):
        """The fitted system in LaTeX.

        Parameters
        ----------
        standalone : bool
            ``False``: an ``align*`` block to paste (membrane and gate
            equations, each rate, parameter values); ``True``: a complete
            ``article`` document adding a table of forms and constants with
            their standard deviations, and how they were fitted.

        Returns
        -------
        str
        """
        from hhsym.export.document import forms_latex

        self._check_fitted()
        if not isinstance(standalone, bool):
            raise invalid("standalone", standalone, "True or False", cls=ArgumentTypeError)
        return forms_latex(self, standalone)

    def to_dict(self):
        """JSON-safe description: the model (``hhsym.model/1``), each rate's form, constants and
        standard deviations, and provenance (fit settings, RMS, noise, role costs, timings)."""
        import hhsym
        from hhsym.export.document import FORMS_FORMAT, _clean

        self._check_fitted()
        sd = self.standard_errors_ or {}
        rates = {k: {"form": f.form, "expression": str(f.expr()), "latex": sympy.latex(f.expr()),
                     "constants": f.params(), "relative_sd": sd.get(k)} for k, f in self.fit_.fits.items()}
        provenance = {
            "hhsym_version": getattr(hhsym, "__version__", "unknown"),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
            "method": "FormEstimator: charge-balance role search, output-error form search and fit",
            "settings": {k: v for k, v in self.get_params().items() if k not in ("model", "random_state")},
            "windows_ms": list(self.fit_.windows or WINDOWS), "rms_mV": self.rms_, "noise_mV": self.noise_,
            "misfit": self.misfit_, "continuation_stopped": self.fit_.stopped,
            "v_range_mV": list(self.v_range_), "roles": self.roles_,
            "role_costs_mV2": {h.label: h.cost for h in self.hypotheses_},
            "role_output_rms_mV": {h.label: h.output_rms for h in self.hypotheses_ if h.output_rms is not None},
            "form_trials": self.trials_, "form_search_kept": self.search_accepted_, "timings_s": self.timings_,
        }
        return _clean({"format": FORMS_FORMAT, "model": self.model_.to_dict(), "rates": rates,
                       "provenance": provenance})

    def to_json(self, path):
        """Write :meth:`to_dict` to ``path`` atomically; :func:`hhsym.distill.load_model` reads the model back.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from hhsym.export.document import write_json

        write_json(self.to_dict(), path)

    def summary(self):
        """str: roles, one line per rate (form, expression, relative SDs) and the fit's RMS against the noise."""
        self._check_fitted()
        sd = self.standard_errors_ or {}
        lines = [f"{self.model.name}: closed forms fitted to the recordings (roles "
                 + ", ".join(f"{g} {'activating' if s > 0 else 'inactivating'}" for g, s in self.roles_.items())
                 + ")"]
        for k, f in self.fit_.fits.items():
            err = ", ".join(f"{n} ±{v:.1%}" for n, v in (sd.get(k) or {}).items())
            lines.append(f"  {k:10s} {f.form:12s} {f.expr()}" + (f"   ({err})" if err else ""))
        lines.append(f"  output error: rms {self.rms_:.4g} mV against ~{self.noise_:.2g} mV of noise on V"
                     + (f" — {self.misfit_}" if self.misfit_ else ""))
        lines.append(f"  time: {self.fit_time_:.1f} s")
        return "\n".join(lines)
