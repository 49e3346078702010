r"""Continuation of the output error over window lengths, for any rate parametrisation.

The output error over long windows carries the information about the rates
(fewer free initial states; :func:`hhsym.estimate.uncertainty.standard_errors`),
but over long windows a model a few per cent off fires at other times than
the recording and the loss has many local minima.  So a fit is continued over
window lengths: the shortest (nearly convex: the model runs ~1 ms from a
fitted state) pulls the parameters close, and each longer one starts from the
parameters and fitted initial states of the one before
(:meth:`~hhsym.estimate.losses.trajectory.TrajectoryProblem.carry_states`, with or
without the gate offsets, whichever fits each window better: the windows' states are
independent given the parameters, so one window's missed spike does not decide for the
others, and a wrong state left in one window would bend the parameters).

:func:`continue_windows` is that loop, shared by the closed forms
(:func:`hhsym.estimate.losses.output_error.fit_output_error`) and the rate
networks' maximum-likelihood stage (:class:`hhsym.estimate.RateEstimator`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from hhsym.estimate.budget import seconds_left
from hhsym.estimate.losses.trajectory import TrajectoryProblem

__all__ = ["WindowRun", "continue_windows", "cost_rms", "noise_estimate", "GROWTH_FLOOR"]

#: Smallest noise (mV) :func:`continue_windows`' ``max_growth`` measures growth from (on noise-free
#: recordings a near-exact fit's residuals are far below it, and their growth means nothing).
GROWTH_FLOOR = 0.05


@dataclass
class WindowRun:
    """The state of a continuation after its last window length (returned by :func:`continue_windows`).

    Attributes
    ----------
    p : ndarray
        Parameters of the rate parametrisation (then the scalars', if any).
    states : ndarray (n_windows, problem.n_free) or None
        Fitted initial state of every window of ``problem`` (potential in mV, gate offsets).
    cost : float
        Half the mean square of ``V_model - V_meas`` (mV²) plus the penalty; ``inf`` if the
        last length failed (non-finite) — ``p`` and ``states`` are then the length before's.
    problem : TrajectoryProblem or None
        The last length's problem.
    windows : tuple of float
        Window lengths (ms) run.
    rms_initial : float
        RMS (mV) of the start over the first length, initial states fitted (``inf`` if that failed).
    stopped : str or None
        Why the continuation ended before its last length (``guard``), else None.
    """

    p: np.ndarray
    states: np.ndarray | None
    cost: float
    problem: TrajectoryProblem | None
    windows: tuple = ()
    rms_initial: float = math.inf
    stopped: str | None = None


def _best_per_window(tp, p, candidates):
    """Row by row, the candidate initial states (each ``(n_windows, n_free)``) whose window fits best at ``p``;
    refitted alone if they mix candidates."""
    if len(candidates) == 1:
        return candidates[0]
    costs = []
    for Y in candidates:
        out = tp.blocks(p, Y, False)
        costs.append(np.full(len(Y), np.inf) if out is None else np.concatenate([np.sum(R * R, axis=1)
                                                                                 for R, _, _ in out]))
    pick = np.argmin(np.vstack(costs), axis=0)
    Y = np.stack(candidates)[pick, np.arange(len(pick))]
    if np.all(pick == pick[0]):
        return Y
    return tp.fit(p, Y, max_iter=10, fit_family=False)[1]


def cost_rms(cost):
    """RMS (mV) of a half-mean-square cost (mV²); ``inf`` if it is not finite.

    Parameters
    ----------
    cost : float
        Half the mean square of ``V_model - V_meas`` (mV²).

    Returns
    -------
    float
    """
    return math.sqrt(2.0 * cost) if math.isfinite(cost) else math.inf


def noise_estimate(cost, problem):
    r"""The noise on V (mV) a fit's residuals imply: their RMS corrected for the free initial states,
    :math:`\sqrt{2 c\, N / (N - n_w n_s)}` for ``N`` residuals and ``n_w`` windows of ``n_s`` free states
    each (the states absorb part of the noise: over 1.25 ms windows at 20 kHz, 4 states per 26 samples).

    Parameters
    ----------
    cost : float
        Half the mean square of the residuals (mV²).
    problem : TrajectoryProblem
        The problem the cost was fitted on.

    Returns
    -------
    float
        ``inf`` if ``cost`` is not finite or the states leave no degrees of freedom.
    """
    n, k = problem.n_residuals, problem.n_windows * problem.n_free
    return cost_rms(cost) * math.sqrt(n / (n - k)) if n > k else math.inf


def continue_windows(rates, template, data, p0, windows, free=None, penalty=None, substeps=None, stride=None,
                     max_iter=100, time_limit=None, guard=None, scalars=None, free_states=True, states=None,
                     geodesic=False, max_rms=None, max_growth=None):
    """Fit ``rates`` by output error, window length after window length.

    Parameters
    ----------
    rates : GateParametrisation
        The parametrisation (:mod:`hhsym.estimate.rates.base`).
    template : ConductanceModel
        Structure, conductances (mS/cm²), reversal potentials (mV), C_m (µF/cm²), powers.
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace.
    p0 : ndarray
        Starting parameters: the rates', then (with ``scalars``) the scalars' internal coordinates.
    windows : sequence of float
        Window lengths (ms), shortest first.
    free : array of int, optional
        Indices of the fitted parameters (default all).
    penalty : callable, optional
        ``penalty(p, jac)`` added to the loss (:meth:`TrajectoryProblem.fit`).
    substeps, stride : int, optional
        As for :class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` (default: any sampling rate).
    max_iter : int
        Levenberg–Marquardt iterations per length (the initial states are first
        fitted alone, up to 30 iterations on the first length, 10 after).
    time_limit : float, optional
        Soft budget (s): each length's fits (the initial states alone, then the parameters with them)
        stop once it is spent (after the iteration under way) and later lengths are skipped.
    guard : callable, optional
        ``guard(p)`` -> a reason (str) why ``p`` is degenerate, or None: a length
        whose fit is degenerate where the length before's was not ends the
        continuation, and the length before's fit is returned with ``stopped``.
    scalars : ScalarParameters, optional
        Whole-cell scalars fitted with the rates (:mod:`hhsym.estimate.rates.scalars`).
    free_states : True or "V"
        Each window's fitted initial state: potential and gate offsets, or the potential only
        (:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem`).
    states : ndarray (n_windows, n_free), optional
        Starting initial states of the first length, e.g. an earlier run's ``states`` over the same
        data and window length (refitted alone for up to 10 iterations, as a carried start is);
        default the recorded potential and the gate-driven pass's gates, fitted alone for up to
        30 iterations.
    geodesic : bool
        Geodesic acceleration on the parameters' fit at each length (:meth:`TrajectoryProblem.fit`).
    max_rms : float, optional
        RMS (mV) of ``V_model - V_meas`` up to which a fit reproduces the recordings (e.g.
        :func:`~hhsym.estimate.losses.output_error.misfit_level`): a length whose fit leaves more where
        the length before's did not ends the continuation, and the length before's fit is returned with
        ``stopped`` (over longer windows a model a little off can fire at other times than the
        recording and be pulled out of its basin: measured on a distillation of bench_noise's made-up
        model at 0.3 mV, 0.29 mV RMS at 1.25 ms and 3.3 mV at 40 ms).
    max_growth : float, optional
        Factor by which a length's :func:`noise_estimate` may exceed the first length's (or
        :data:`GROWTH_FLOOR`, whichever is larger: noise-free recordings): a length beyond it ends
        the continuation, and the length before's fit is returned with ``stopped``.
        A guard for input the recordings miss (a current with content between the samples, or
        a cell's own noise): over long windows some windows then fire elsewhere and bend the
        constants.  Measured on bench_noise's HH (8 x 1 s at 20 kHz, 0.3 mV) with its noisy
        currents on a 0.025 ms grid but recorded every 0.05 ms: the true constants, the initial
        states fitted, reproduce 20 ms windows to 0.32 mV and 40 ms windows to 0.43 mV (0.31 mV
        with the currents on the recording's grid), and the fit over 1.25-40 ms ends 5.2 % off
        from the true constants and from the distillation's start alike; the noise estimate grew
        by 6 % to 20 ms and 40 % to 40 ms.  Not on by default: where to stop was not measured
        from a start other than the truth (from the truth, 10 ms windows look best, yet from
        the distillation's start they left a rate 12 % off: the start, not the data, decided).

    Returns
    -------
    WindowRun
    """
    if max_growth is not None:
        from hhsym.model.parts import _check_number

        _check_number("max_growth", max_growth, minimum=1.0)
    t0 = time.perf_counter()
    start = states
    p, prev, states, cost, rms0 = np.asarray(p0, dtype=float), None, None, math.inf, math.inf
    tp, run, last, first = None, [], None, math.inf  # first: the first length's noise_estimate
    for n, W in enumerate(float(w) for w in np.atleast_1d(windows)):
        if n and seconds_left(time_limit, t0) == 0.0:
            break
        tp = TrajectoryProblem(rates, template, data, window=W, substeps=substeps, stride=stride, scalars=scalars,
                               free_states=free_states)
        try:
            if prev is None:
                _, Y, c0 = tp.fit(p, start, max_iter=30 if start is None else 10, fit_family=False,
                                  time_limit=seconds_left(time_limit, t0))
                rms0 = math.sqrt(2.0 * c0)
            else:  # carried gate offsets or none, whichever fits each window better
                tries = []
                # a potential-only problem carries the potential alone: one candidate
                for carry in (True, False) if min(tp.n_free, prev.n_free) > 1 else (False,):
                    try:
                        tries.append(tp.fit(p, tp.carry_states(prev, states, carry), max_iter=10,
                                            fit_family=False, time_limit=seconds_left(time_limit, t0))[1])
                    except FloatingPointError:
                        continue
                if not tries:
                    raise FloatingPointError("no carried initial state gives finite residuals")
                Y = _best_per_window(tp, p, tries)
            q, Yq, cq = tp.fit(p, Y, free=free, max_iter=max_iter, penalty=penalty, geodesic=geodesic,
                               time_limit=seconds_left(time_limit, t0))
        except FloatingPointError:
            run.append(W)
            return WindowRun(p, states, math.inf, tp, tuple(run), rms0)
        if guard is not None and last is not None:
            why = guard(q)
            if why and not guard(last.p):
                last.stopped = f"at {W:g} ms windows {why}"
                return last
        if max_rms is not None and last is not None:
            rms, before = cost_rms(cq), cost_rms(last.cost)
            if rms > max_rms >= before:
                last.stopped = (f"at {W:g} ms windows the model leaves the recordings ({rms:.3g} mV RMS against "
                                f"{before:.3g} mV at {last.windows[-1]:g} ms; it reproduces them up to "
                                f"{max_rms:.3g} mV)")
                return last
        if max_growth is not None and last is not None:
            grown = noise_estimate(cq, tp) / max(first, GROWTH_FLOOR)
            if grown > max_growth:
                last.stopped = (f"at {W:g} ms windows the residuals imply {grown:.3g} x the noise they imply at "
                                f"{run[0]:g} ms (limit {max_growth:g}): some windows no longer follow the "
                                "recordings")
                return last
        if last is None:
            first = noise_estimate(cq, tp)
        run.append(W)
        p, states, cost, prev = q, Yq, cq, tp
        last = WindowRun(p, states, cost, tp, tuple(run), rms0)
    return WindowRun(p, states, cost, tp, tuple(run), rms0)
