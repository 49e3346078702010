r"""Gate-role hypotheses: one search over the sign patterns of :math:`dx_\infty/dV`, for every parametrisation.

A fit that starts from nothing must first decide each gate's *role*: whether
it activates (:math:`dx_\infty/dV > 0`, as HH's m and n) or inactivates (as
HH's h).  The charge balance separates the right basin only weakly from ones
where gates swap roles, so the role of every gate is a discrete hypothesis
and each of the :math:`2^{n_\mathrm{gates}}` *sign patterns* gets its own
constrained search.

:func:`role_search` is that loop, shared by both estimators; what a pattern's
search fits is the caller's ``screen``:

* :class:`~hhsym.estimate.RateEstimator`: a multi-start search of a
  polynomial gate family with the pattern's slope signs on every trace
  sampled every ~0.05 ms
  (:func:`hhsym.estimate.search.network_start.family_search`), the best
  contenders then refitted on all the data and settled by the spline stage;
* :class:`~hhsym.estimate.FormEstimator`: the charge-balance fit of the
  literature's role forms from random constants
  (:func:`hhsym.estimate.search.charge_search.role_search`), close contenders
  then compared by output error.

Both refine their random starts by one successive halving
(:mod:`hhsym.estimate.search.halving`).
"""

from __future__ import annotations

import math
import time
from itertools import product

import numpy as np

from hhsym.estimate.budget import seconds_left

__all__ = ["RoleHypothesis", "pattern_label", "role_search", "sign_patterns"]


def pattern_label(signs):
    """A sign pattern (iterable of ±1, gates in the model's order) as ``+-+``."""
    return "".join("+" if v > 0 else "-" for v in signs)


def sign_patterns(n_gates):
    """Every sign pattern of ``n_gates`` gates, ``(+1, ..., +1)`` first, ``(-1, ..., -1)`` last (tuples of int)."""
    return list(product((1, -1), repeat=int(n_gates)))


class RoleHypothesis:
    """The best fit of one role pattern (returned by :func:`role_search`).

    Attributes
    ----------
    signs : dict
        Gate name -> +1.0 (activating) or -1.0 (inactivating).
    cost : float
        The screen's cost of ``fits`` (a charge-balance cost, mV²; ``inf``
        if no start stayed finite).
    fits : object or None
        The pattern's best parameters as the screen returns them
        (closed forms: rate name -> :class:`~hhsym.estimate.rates.formfit.FormFit`;
        the Boltzmann family: its parameter vector); None if none is finite.
    costs : list of float
        Final costs of the starts that reached the last round.
    seconds : float
        Time the pattern's search took (s).
    output_rms : float or None
        RMS (mV) of the output error this pattern reached when compared with
        close contenders (:class:`~hhsym.estimate.form_estimator.FormEstimator`), else None.
    """

    def __init__(self, signs, cost, fits, costs, seconds):
        self.signs, self.cost, self.fits = dict(signs), float(cost), fits
        self.costs, self.seconds = [float(c) for c in costs], float(seconds)
        self.output_rms = None

    @property
    def label(self):
        """str: the pattern as ``+-+`` (gates in the model's order)."""
        return pattern_label(self.signs.values())

    def __repr__(self):
        return f"RoleHypothesis({self.label}: cost {self.cost:.4g} mV², {self.seconds:.1f} s)"


def role_search(gate_names, screen, patterns=None, time_limit=None, verbose=0, tag="hhsym", what="cost"):
    """Search every role pattern with ``screen``; one :class:`RoleHypothesis` per pattern searched.

    Parameters
    ----------
    gate_names : sequence of str
        Gates, in the model's order.
    screen : callable
        ``screen(k, signs) -> (cost, fits, costs)`` or None: the search of
        pattern number ``k`` (``signs``: ndarray of ±1.0 per gate).  None, or
        a :class:`FloatingPointError` raised, means that no start of the
        pattern stayed finite: the hypothesis gets cost ``inf`` and the
        search goes on.
    patterns : sequence of sequence of ±1, optional
        Patterns to search, in this order (default :func:`sign_patterns`).
    time_limit : float, optional
        Soft budget (s): no new pattern starts after it (the first always runs).
    verbose : int
        1: one line per pattern.
    tag, what : str
        Prefix of those lines and the name of the cost they show.

    Returns
    -------
    list of RoleHypothesis
        In the order of ``patterns`` (sort by ``cost`` for the best first).
    """
    names = list(gate_names)
    patterns = sign_patterns(len(names)) if patterns is None else list(patterns)
    t0 = time.perf_counter()
    out = []
    for k, sg in enumerate(patterns):
        if out and seconds_left(time_limit, t0) == 0.0:
            break
        t1 = time.perf_counter()
        signs = np.array([float(v) for v in sg])
        try:
            found = screen(k, signs)
        except FloatingPointError:
            found = None
        cost, fits, costs = (math.inf, None, []) if found is None else found
        hyp = RoleHypothesis(dict(zip(names, signs.tolist())), cost, fits, costs, time.perf_counter() - t1)
        out.append(hyp)
        if verbose:
            print(f"[{tag}] role hypothesis {hyp.label} ({k + 1}/{len(patterns)}): {what} {hyp.cost:.4g} "
                  f"({hyp.seconds:.1f} s)", flush=True)
    return out
