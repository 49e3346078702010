r"""Generic start of a closed-form fit: gate roles and constants by the charge balance of literature forms.

With noise on V the rate networks of :class:`~hhsym.estimate.RateEstimator`
are not determined by the recordings (``benchmarks/bench_identifiability.py``),
so they cannot serve as the start of the output-error fit
(:mod:`hhsym.estimate.losses.output_error`), whose basin is a few tens of per cent
wide.  A closed-form model has 14–15 constants, and its *charge balance*
(the estimator's stage-1 loss: gates driven by the measured V, the membrane
equation checked over windows of ``window`` ms,
:class:`~hhsym.estimate.losses.charge_balance.ChargeBalance`) is cheap (a Levenberg–Marquardt
run takes well under a second on 2 × 300 ms) and has a wide basin: measured
on ``bench_fit``'s data at 0.5 mV, HH's forms started 160 % off all came to
the same optimum.  That optimum is biased by the noise (constants 30–40 %
off, the charge balance is an errors-in-variables loss) but lies inside the
output error's basin, which then removes the bias.

:func:`role_search` runs that fit for every *role pattern* (the sign of
:math:`dx_\infty/dV` of each gate, :math:`2^{n_\mathrm{gates}}` of them),
each gate in the literature's commonest pair of forms for its role
(:data:`ROLE_FORMS`: an activation gate with a linoid opening rate and an
exponential closing rate, as HH's m and n; an inactivation gate with an
exponential opening rate and a sigmoid closing rate, as HH's h), from
``n_starts`` random constants refined by successive halving.  The pattern
of lowest cost wins (:class:`~hhsym.estimate.form_estimator.FormEstimator`
compares close contenders by output error).  The forms are a start: the
output-error form search (:func:`~hhsym.estimate.search.form_search.search_forms`)
may swap a rate for another family, but under noise its short windows tell
forms apart only weakly (README, Limitations), so a cell whose rates lie in
other forms can come back in these.
"""

from __future__ import annotations

import math

import numpy as np

from hhsym.estimate.rates.closed_forms import FAMILIES
from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.rates.formfit import FormFit
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.search.halving import fixed_schedule, successive_halving
from hhsym.estimate.search.roles import role_search as search_roles

__all__ = ["ROLE_FORMS", "random_forms", "role_search"]

#: Forms (opening rate alpha, closing rate beta) each gate starts in, by its role (+1 activating, -1 inactivating).
ROLE_FORMS = {1: ("linoid", "exponential"), -1: ("exponential", "sigmoid")}

#: Successive halving of the random starts: (share of the pool kept, Levenberg–Marquardt iterations) per round.
HALVING = ((1.0, 10), (1 / 3, 30), (0.0, 150))

#: Ranges of the random starts: slope |k| (mV, log-uniform) and rate at the midpoint (1/ms, log-uniform).
SLOPE_LIM, RATE_LIM = (4.0, 30.0), (0.01, 5.0)


def _family_theta(name, rising, Vh, k, r0):
    """Internal parameters of a family with value ``r0`` (1/ms) at ``Vh`` (mV), rising or falling with slope ``k``."""
    s = 1.0 if rising else -1.0
    if name == "exponential":  # A exp(V/k'), k' = s k
        return [math.log(r0) - Vh / (s * k), 1.0 / (s * k)]
    return [math.log(r0), Vh, s * k]  # sigmoid and linoid: A, B, k


def random_forms(gate_names, signs, v_lim, rng):
    """Random constants of the role forms (:data:`ROLE_FORMS`), one :class:`~hhsym.estimate.rates.formfit.FormFit` per rate.

    Each gate gets a midpoint uniform over ``v_lim`` (mV), a slope
    log-uniform over :data:`SLOPE_LIM` (mV) and both rates equal at the
    midpoint, log-uniform over :data:`RATE_LIM` (1/ms); its opening rate
    rises with V when the gate activates (``signs[j] = +1``) and falls when
    it inactivates, its closing rate the other way.

    Parameters
    ----------
    gate_names : sequence of str
    signs : sequence of ±1
        Role of each gate.
    v_lim : (float, float)
        Range of the midpoints (mV).
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``alpha_<gate>`` / ``beta_<gate>`` -> FormFit.
    """
    out = {}
    for g, s in zip(gate_names, signs):
        Vh = rng.uniform(*v_lim)
        k = math.exp(rng.uniform(*np.log(SLOPE_LIM)))
        r0 = math.exp(rng.uniform(*np.log(RATE_LIM)))
        fa, fb = ROLE_FORMS[1 if s > 0 else -1]
        out[f"alpha_{g}"] = FormFit([FAMILIES[fa]], _family_theta(fa, s > 0, Vh, k, r0))
        out[f"beta_{g}"] = FormFit([FAMILIES[fb]], _family_theta(fb, s < 0, Vh, k, r0))
    return out


def _fit(fun, p, n_iter):
    """``(cost, params)`` after ``n_iter`` Levenberg–Marquardt iterations from ``p``; None if the run fails."""
    try:
        q, c = levenberg_marquardt(fun, p, 0.0, np.zeros(p.size), max_iter=n_iter, mu0=1e-2)
    except FloatingPointError:
        return None
    return c, q


def role_search(template, data, n_starts=60, window=0.25, v_lim=None, rng=None, patterns=None, time_limit=None,
                verbose=0):
    r"""Charge-balance fits of the role forms for every role pattern, best first (module docstring).

    Parameters
    ----------
    template : ConductanceModel
        Structure, conductances (mS/cm²), reversal potentials (mV), C_m (µF/cm²) and gate powers.
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace (:func:`hhsym.estimate.checks.as_recordings`).
    n_starts : int
        Random starts per pattern (:func:`random_forms`), refined by the
        successive halving (:mod:`~hhsym.estimate.search.halving`) of :data:`HALVING`: all for 10 iterations, the
        best third for 30 more, the best 3 for 150 more.  Measured on
        ``bench_fit``'s made-up model at 0.5 mV (right pattern, seeds 0-3):
        60 starts reached its optimum 4 times of 4 (~23 s), 30 starts 3 of 4
        (25 iterations in the first round instead of 10 did not help).
    window : float
        Charge-balance window (ms).  Measured at 0.5 mV on HH from the true
        constants: 0.25 ms left the optimum 37 % off, 1 ms 43 %, 5 ms 100 %.
    v_lim : (float, float), optional
        Range of the random midpoints (mV); default the 0.5–99.5 percentiles of the recorded V.
    rng : numpy.random.Generator, optional
    patterns : sequence of sequence of ±1, optional
        Patterns to try (default all :math:`2^{n_\mathrm{gates}}`).
    time_limit : float, optional
        Soft budget (s): no new pattern starts after it.
    verbose : int

    Returns
    -------
    list of :class:`~hhsym.estimate.search.roles.RoleHypothesis`
        Lowest cost first.
    """
    rng = np.random.default_rng() if rng is None else rng
    names = [g.name for g in template.gates]
    if v_lim is None:
        v_lim = tuple(float(v) for v in np.percentile(np.concatenate([d[1] for d in data]), [0.5, 99.5]))

    def screen(k, sg):
        starts = [random_forms(names, sg, v_lim, rng) for _ in range(int(n_starts))]
        fam = FormFamily(template, starts[0])  # one family: the forms and slope signs agree
        fun = ChargeBalance(fam, template, data, window=window).lm_fun()
        pool, failed = successive_halving([(math.inf, fam.pack(s)) for s in starts],
                                          lambda p, n_iter, r, kk: _fit(fun, p, n_iter), fixed_schedule(HALVING))
        if failed is not None or not pool:  # every run of a round failed: no fit of this pattern
            return None
        return pool[0][0], fam.fits(pool[0][1]), [c for c, _ in pool]

    hyps = search_roles(names, screen, patterns, time_limit=time_limit, verbose=verbose, tag="hhsym.forms",
                        what="charge-balance cost (mV²)")
    return sorted(hyps, key=lambda h: h.cost)
