"""The Julia-free default backend: fit the literature's rate forms.

For samples :math:`(V_k, r_k)` the backend fits, by nonlinear least squares on
relative residuals :math:`(\\hat r(V_k) - r_k)/r_k` (``scipy.optimize.least_squares``
from deterministic, data-derived starts):

* each family of :mod:`hhsym.estimate.rates.closed_forms` (constant, exponential,
  sigmoid and linoid, the last two with both signs of the slope k);
* sums of two families: every unordered pair of {exponential, sigmoid,
  linoid} and ``constant +`` each of them (nine sums), started from fits of
  each term to one side of the voltage range.

Degenerate fits are rejected: slopes outside ``0.5 <= |k| <= 200`` mV, a
midpoint B more than ``max(3|k|, 20 mV)`` outside the data (a simpler form in
disguise), sums where one term contributes less than 1 % of the rate
everywhere, and sums whose two terms keep a near-constant ratio over the data
(they act as one term). Among the accepted fits the lowest BIC
(:func:`hhsym.distill.base.bic`) wins; sums are skipped when a single form
already fits to the BIC's noise floor, since they cannot win then. When even
the best form misses some sample by more than ``fallback_threshold``, the
open-form ``operon`` backend is run and its candidates compete on the same BIC.

The fallback test uses the *largest* relative error, which suits samples of
a learned (smooth) rate function; for noisy samples (measurement noise of a
few %), raise ``fallback_threshold`` or set ``fallback=None``.
"""

from __future__ import annotations

import math
import warnings

from hhsym.distill.base import REL_ERROR_FLOOR, Backend, candidate_from_expr, round_sig
from hhsym.estimate.rates.closed_forms import FAMILIES
from hhsym.estimate.rates.formfit import SUMS, SideFits, fit_family, fit_sum, sse
from hhsym.errors import ArgumentTypeError, BackendUnavailableError, UnknownNameError, invalid

__all__ = ["FormsBackend"]


class FormsBackend(Backend):
    """Fit the literature's rate forms; Julia-free (the default backend).

    Parameters
    ----------
    sums : bool, optional
        Also try sums of two families (default True).
    fallback : {"operon", None}, optional
        Open-form backend run when no form explains the data (default
        ``"operon"``; ``None`` disables it).
    fallback_threshold : float, optional
        Largest relative error (dimensionless, default 0.05 = 5 %) the best
        form may leave on some sample before the fallback runs.
    n_starts : int, optional
        Optimiser starts kept per family and slope sign (default 3).

    Notes
    -----
    Candidates are returned for every accepted fit (one per family or sum,
    its lowest-error local optimum); ``best`` minimises the BIC.
    """

    name = "forms"

    def __init__(self, sums=True, fallback="operon", fallback_threshold=0.05, n_starts=3):
        self.sums = sums
        self.fallback = fallback
        self.fallback_threshold = fallback_threshold
        self.n_starts = n_starts

    def __repr__(self):
        return (
            f"FormsBackend(sums={self.sums!r}, fallback={self.fallback!r}, "
            f"fallback_threshold={self.fallback_threshold!r}, n_starts={self.n_starts!r})"
        )

    def _check_params(self):
        if not isinstance(self.sums, bool):
            raise invalid("sums", self.sums, "True or False", cls=ArgumentTypeError)
        if self.fallback not in ("operon", None):
            raise invalid("fallback", self.fallback, "'operon' or None", cls=UnknownNameError)
        t = self.fallback_threshold
        if not isinstance(t, (int, float)) or not (0 < t < math.inf):
            raise invalid("fallback_threshold", t, "a positive finite float (relative error)")
        if not isinstance(self.n_starts, int) or self.n_starts < 1:
            raise invalid("n_starts", self.n_starts, "a positive int")

    def fit_forms(self, V, r):
        """All accepted form fits as ``(FormFit, candidate)`` pairs, plus rejections.

        Parameters
        ----------
        V, r : ndarray
            Checked voltages (mV) and rates (1/ms).

        Returns
        -------
        accepted : list of (FormFit, Candidate)
            One per family or sum that has an acceptable optimum.
        notes : list of str
            Why the other forms were rejected, and whether sums were skipped.
        """
        V_min, V_max = float(V.min()), float(V.max())
        accepted, notes = [], []

        def consider(fits, form):
            reasons = []
            for fit in fits:  # best first: keep the best acceptable optimum
                why = fit.rejection(V, V_min, V_max)
                if why:
                    reasons.append(why)
                    continue
                cand = candidate_from_expr(
                    fit.expr(), V, r, form=fit.form, params=_rounded(fit.params()),
                    backend=self.name, n_params=len(fit.theta),
                )
                if cand is not None:
                    accepted.append((fit, cand))
                    return
            notes.append(f"rejected {form}: {reasons[0] if reasons else 'the optimiser failed'}")

        for fam in FAMILIES.values():
            consider(fit_family(fam, V, r, n_starts=self.n_starts), fam.name)
        # a sum cannot beat (in BIC) a single form that already fits to the floor
        best_loss = min((c.loss for _, c in accepted), default=math.inf)
        if self.sums and best_loss <= REL_ERROR_FLOOR**2:
            notes.append("sums not tried: a single form fits to the BIC's error floor")
        elif self.sums:
            sides = SideFits(V, r)
            for a, b in SUMS:
                fa, fb = FAMILIES[a], FAMILIES[b]
                fits = sorted(fit_sum(fa, fb, V, r, sides), key=lambda f: sse(f, V, r))
                consider(fits, f"sum({a},{b})")
        return accepted, notes

    def _fit(self, V, r, name):
        self._check_params()
        accepted, notes = self.fit_forms(V, r)
        candidates = [c for _, c in accepted]
        best = min(candidates, key=lambda c: c.bic, default=None)
        if self.fallback and (best is None or best.max_rel_error > self.fallback_threshold):
            from hhsym.distill.operon import OperonBackend

            err = "no form" if best is None else f"best form misses by {best.max_rel_error:.1%}"
            notes.append(f"{err} > {self.fallback_threshold:.1%}: ran the operon fallback")
            try:
                extra, extra_notes = OperonBackend()._fit(V, r, name)
            except BackendUnavailableError as exc:  # pragma: no cover - a dependency
                warnings.warn(f"operon fallback unavailable: {exc}", stacklevel=3)
                notes.append(f"operon fallback unavailable: {exc}")
            else:
                candidates += extra
                notes += extra_notes
        return candidates, notes


def _rounded(params):
    return {k: round_sig(v) for k, v in params.items()}
