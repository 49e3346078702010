r"""Levenberg–Marquardt on the normal equations, with a ridge penalty.

Minimises :math:`\tfrac12\lVert r(\theta)\rVert^2 + \tfrac12\lambda\lVert M\theta\rVert^2`
(:math:`M` masks the penalised parameters).  Each iteration forms
:math:`A = J^\top J + \lambda M` once (one BLAS call) and tries damped steps
:math:`(A + \mu\,\mathrm{diag}(A))\,\delta = -g` by Cholesky until the cost
drops.  With a few thousand parameters this is much cheaper than a QR or SVD
of :math:`J` per iteration, which is what ``scipy.optimize.least_squares``
would do.  The accept/reject loop (:func:`damped_iterations`) is shared with
the per-window solver of :mod:`hhsym.estimate.optimise.window_lm`; only the
linear system differs (:class:`DenseSystem` here).

The normal matrices are small (a few hundred rows): a multithreaded BLAS
only adds synchronisation there (on a busy 2-core machine a 156 x 156
Cholesky took 0.2 s with two OpenBLAS threads against 0.3 ms with one), so
the optimiser runs with BLAS limited to one thread (``threadpoolctl``, a
scikit-learn dependency) and restores the setting on return.
"""

from __future__ import annotations

import contextlib
import functools
import time

import numpy as np
import scipy.linalg

from hhsym.estimate.budget import seconds_left
from hhsym.progress import progress_bar

__all__ = ["levenberg_marquardt", "damped_iterations", "DenseSystem"]


def _cost(r, theta, ridge, mask):
    if r is None:
        return np.inf
    return 0.5 * float(r @ r) + 0.5 * ridge * float(np.sum((theta * mask) ** 2))


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def single_blas_thread(func):
    """Decorator: run ``func`` with BLAS limited to one thread (see module docstring)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _one_blas_thread():
            return func(*args, **kwargs)
    return wrapper


#: Largest ratio ||acceleration|| / ||velocity|| (scaled norms) of an accepted geodesic step.
GEODESIC_RATIO = 0.75
#: Relative probe length of the finite-difference second directional derivative.
GEODESIC_PROBE = 0.1


def _acceleration(fun, theta, r, J, v, c, low, d):
    """Geodesic acceleration for the velocity ``v`` (None: too large or not finite)."""
    h = GEODESIC_PROBE
    r_h = fun(theta + h * v, False)
    if r_h is None:
        return None
    rpp = (2.0 / h) * ((r_h - r) / h - J @ v)
    acc = -scipy.linalg.cho_solve((c, low), J.T @ rpp, check_finite=False)
    sd = np.sqrt(d)
    if not np.all(np.isfinite(acc)) or 2.0 * np.linalg.norm(sd * acc) > GEODESIC_RATIO * np.linalg.norm(sd * v):
        return None
    return acc


@single_blas_thread
def levenberg_marquardt(fun, theta0, ridge, mask, max_iter=50, ftol=1e-6, verbose=0, label="",
                        history=None, mu0=1e-3, time_limit=None, free=None, geodesic=False):
    """Minimise a ridge-penalised least-squares cost.

    Parameters
    ----------
    fun : callable
        ``fun(theta, jac)`` -> ``(r, J)`` if ``jac`` else ``r``; ``r`` may be
        ``None`` to signal a non-finite evaluation (the step is rejected).
    theta0 : ndarray
        Initial parameters.
    ridge : float
        Penalty weight λ.
    mask : ndarray of bool or float
        Which parameters are penalised.
    max_iter : int
        Maximum number of accepted steps.
    ftol : float
        Stop when the relative cost decrease of an accepted step is below this
        twice in a row.
    verbose : int
        0 silent; 1 a progress bar (:func:`hhsym.progress.progress_bar`); 2 one line per iteration.
    label : str
        Prefix of progress lines and of history entries.
    history : list, optional
        Receives dicts ``{"stage", "iter", "cost", "rms", "mu", "time"}``.
    mu0 : float
        Initial relative damping.
    time_limit : float, optional
        Stop after this many seconds (checked between iterations).
    free : ndarray of int, optional
        Indices of the parameters to optimise (the others stay fixed).
    geodesic : bool
        Add the geodesic acceleration of Transtrum & Sethna (2012,
        arXiv:1201.5885) to each step: the residuals' second directional
        derivative along the step, by one extra evaluation, corrects the
        step for the curvature of the valley it follows; a step whose
        correction exceeds ``GEODESIC_RATIO`` of it is rejected as too long.

    Returns
    -------
    theta : ndarray
    cost : float
    """
    t_start = time.perf_counter()
    full = np.array(theta0, dtype=float)
    mask = np.asarray(mask, dtype=float)
    if free is not None:
        free = np.asarray(free)
        inner, base = fun, full

        def fun(sub, jac):
            x = base.copy()
            x[free] = sub
            out = inner(x, jac)
            if jac:
                return (None, None) if out[0] is None else (out[0], out[1][:, free])
            return out

        theta = full[free].copy()
        mask = mask[free]
    else:
        theta = full
    r, J = fun(theta, True)
    if r is None:
        raise FloatingPointError("the initial parameters give non-finite residuals")
    cost = _cost(r, theta, ridge, mask)
    mu = mu0

    bar = progress_bar(max_iter, label or "least squares", verbose)

    def log(it, cost, mu):
        entry = {"stage": label, "iter": it, "cost": cost, "rms": float(np.sqrt(2 * cost)),
                 "mu": mu, "time": time.perf_counter() - t_start}
        if history is not None:
            history.append(entry)
        if verbose >= 2:
            print(f"[hhsym.fit] {label:8s} iter {it:3d}  cost {cost:.6e}  mu {mu:.1e}  "
                  f"t {entry['time']:.1f}s", flush=True)
        elif it:
            bar.update(1)
            bar.set_postfix_str(f"cost {cost:.3e}", refresh=False)

    def linearise(x):
        r, J = fun(x, True)
        return None if r is None else DenseSystem(fun, x, r, J, ridge, mask, geodesic)

    try:
        theta, cost = damped_iterations(theta, cost, DenseSystem(fun, theta, r, J, ridge, mask, geodesic),
                                        linearise, lambda x: _cost(fun(x, False), x, ridge, mask), mu=mu,
                                        max_iter=max_iter, ftol=ftol, time_limit=time_limit, t_start=t_start,
                                        log=log)
    finally:
        bar.close()
    if free is not None:
        full = full.copy()
        full[free] = theta
        return full, cost
    return theta, cost


class DenseSystem:
    r"""The damped normal equations of a dense Jacobian, at one point.

    :math:`A = J^\top J + \lambda M` and :math:`g = J^\top r + \lambda M\theta`;
    :meth:`step` solves :math:`(A + \mu D)\,\delta = -g` by Cholesky, with
    :math:`D = \operatorname{diag}(A)` floored at ``1e-4`` of its mean
    (Marquardt's scaling), and adds the geodesic acceleration when asked.

    Parameters
    ----------
    fun : callable
        The residual function (for the acceleration's extra evaluation).
    theta, r, J : ndarray
        Point, residuals and Jacobian there.
    ridge : float
        Penalty weight λ.
    mask : ndarray
        Penalised parameters (1) and the others (0).
    geodesic : bool
        Add the geodesic acceleration to each step.
    """

    def __init__(self, fun, theta, r, J, ridge, mask, geodesic):
        self.fun, self.theta, self.r, self.J, self.geodesic = fun, theta, r, J, geodesic
        A = J.T @ J
        A[np.diag_indices_from(A)] += ridge * mask
        self.A = A
        self.g = J.T @ r + ridge * mask * theta
        d = np.diag(A).copy()
        self.d = np.maximum(d, 1e-4 * max(d.mean(), 1e-300))

    def step(self, mu):
        """``(step, None)``, or ``(None, growth)`` when the step is refused (μ is then multiplied by ``growth``)."""
        M = self.A.copy()
        M[np.diag_indices_from(M)] += mu * self.d
        try:
            c, low = scipy.linalg.cho_factor(M, check_finite=False)
            step = -scipy.linalg.cho_solve((c, low), self.g, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return None, 10.0
        if self.geodesic:
            acc = _acceleration(self.fun, self.theta, self.r, self.J, step, c, low, self.d)
            if acc is None:
                return None, 4.0
            step = step + 0.5 * acc
        return step, None


#: Damped steps tried per iteration before the optimiser stops.
MAX_TRIALS = 12


def damped_iterations(x, cost, system, linearise, trial_cost, advance=None, mu=1e-3, max_iter=50, ftol=1e-6,
                      time_limit=None, t_start=None, log=None):
    """The Levenberg–Marquardt accept/reject loop, shared by every least-squares fit to recordings.

    Each iteration asks the linearisation at the current point for damped
    steps (``system.step(mu)``) until one lowers the cost, at most
    :data:`MAX_TRIALS` times: a refused step (a factorisation that failed, a
    too-curved geodesic step) multiplies μ by the growth it returns, a step
    that does not lower the cost multiplies it by 4, an accepted one divides
    it by 3 (floor ``1e-9``).  The loop stops after ``max_iter`` accepted
    steps, when no trial step is accepted, when the relative cost decrease
    stays below ``ftol`` twice in a row, or after ``time_limit`` seconds.
    The dense solver (:class:`DenseSystem`) and the per-window Schur
    complement (:class:`hhsym.estimate.optimise.window_lm.ArrowSystem`) are
    two linearisations under this one loop.

    Parameters
    ----------
    x : object
        Starting point (what ``advance`` and ``trial_cost`` take).
    cost : float
        Cost at ``x``.
    system : object
        Linearisation at ``x``: ``system.step(mu)`` -> ``(step, None)`` or ``(None, growth)``.
    linearise : callable
        ``linearise(x)`` -> the linearisation at an accepted point (``None``
        when it is not finite there: the loop stops at that point).
    trial_cost : callable
        ``trial_cost(x)`` -> cost (``inf`` when not finite).
    advance : callable, optional
        ``advance(x, step)`` -> the trial point; default ``x + step``.
    mu : float
        Initial relative damping.
    max_iter : int
        Maximum accepted steps.
    ftol : float
        Relative-decrease tolerance.
    time_limit : float, optional
        Seconds after ``t_start`` (checked between iterations).
    t_start : float, optional
        ``time.perf_counter()`` at the start of the fit (default: now).
    log : callable, optional
        ``log(iteration, cost, mu)``, at the start and after each iteration.

    Returns
    -------
    x : object
    cost : float
    """
    t_start = time.perf_counter() if t_start is None else t_start
    small = 0
    if log is not None:
        log(0, cost, mu)
    for it in range(1, max_iter + 1):
        accepted = False
        for _ in range(MAX_TRIALS):
            step, growth = system.step(mu)
            if step is None:
                mu *= growth
                continue
            trial = x + step if advance is None else advance(x, step)
            c_new = trial_cost(trial)
            if c_new < cost:
                rel = (cost - c_new) / max(cost, 1e-300)
                x, cost = trial, c_new
                mu = max(mu / 3.0, 1e-9)
                accepted = True
                break
            mu *= 4.0
        if log is not None:
            log(it, cost, mu)
        if not accepted:
            break
        small = small + 1 if rel < ftol else 0
        if small >= 2 or seconds_left(time_limit, t_start) == 0.0:
            break
        system = linearise(x)
        if system is None:  # the Jacobian is not finite at the accepted point
            break
    return x, cost
