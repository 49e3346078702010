r"""Levenberg–Marquardt for residuals in windows that each have their own initial state.

The output-error problem (:class:`hhsym.estimate.losses.trajectory.TrajectoryProblem`)
has a few dozen shared parameters :math:`p` (the rate functions) and one
initial state :math:`y_w` (potential and gates, 1 + n_gates numbers) per
window; window :math:`w`'s residuals depend on :math:`p` and :math:`y_w`
only.  The normal equations are then an "arrow": a dense
:math:`p`-block bordered by block-diagonal state blocks,

.. math::

    \begin{pmatrix} A & B_1 & \cdots \\ B_1^T & C_1 & \\ \vdots & & \ddots \end{pmatrix}
    \begin{pmatrix} \delta p \\ \delta y_1 \\ \vdots \end{pmatrix}
    = -\begin{pmatrix} g \\ g_1 \\ \vdots \end{pmatrix},

solved through the Schur complement
:math:`(A - \sum_w B_w C_w^{-1} B_w^T)\,\delta p = -(g - \sum_w B_w C_w^{-1} g_w)`
and :math:`\delta y_w = -C_w^{-1}(g_w + B_w^T \delta p)`.  The cost per
iteration is linear in the number of windows (the dense solve the generic
:func:`hhsym.estimate.optimise.lm.levenberg_marquardt` would do grows with its
cube: 300 windows of 4 states are a 1,200-column Jacobian).  Damping is
Marquardt's (scaled by the diagonal, floored at ``1e-4`` of its mean), as in
the generic routine, and the accept/reject loop is the generic routine's own
(:func:`hhsym.estimate.optimise.lm.damped_iterations`): only the linear
system (:class:`ArrowSystem`) differs.

With ``geodesic=True`` each step :math:`v = (\delta p, \delta y)` gets the geodesic
acceleration of Transtrum & Sethna (2012), as in the generic routine:
:math:`a` solves the same damped arrow system with the gradient :math:`J^\top r''`,
:math:`r'' \approx (2/h)\,[(r(x + h v) - r(x))/h - J v]` (one extra residual
evaluation, :data:`~hhsym.estimate.optimise.lm.GEODESIC_PROBE`), and the step is
:math:`v + a/2`, refused when :math:`2\|a\| > ` :data:`~hhsym.estimate.optimise.lm.GEODESIC_RATIO`
:math:`\|v\|` (norms scaled by the damping's diagonal).  It pays in the narrow curved
valleys of the maximum-likelihood fits, where plain steps alternate between refused
Gauss–Newton steps and short damped ones.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from hhsym.estimate.optimise.lm import GEODESIC_PROBE, GEODESIC_RATIO, damped_iterations

__all__ = ["levenberg_marquardt_windows", "schur_information", "ArrowSystem"]


def _penalty(D, p, jac):
    """The penalty's rows ``r`` (and Jacobian) at ``p``: ``D @ p`` for a matrix, ``D(p, jac)`` for a callable."""
    if callable(D):
        return D(p, jac)
    r = D @ p
    return (r, D) if jac else r


def _cost(blocks, p, D):
    if blocks is None:
        return np.inf
    c = 0.5 * sum(float(np.sum(R * R)) for R, _, _ in blocks)
    if D is not None:
        pen = _penalty(D, p, False)
        c += 0.5 * float(pen @ pen)
    return c if np.isfinite(c) else np.inf


def _free_columns(blocks, free):
    """Each block's ``Jp`` over the ``free`` parameters: the block itself when every column is free (the
    usual case: no copy), else its selected columns."""
    every = bool(blocks) and free.size == blocks[0][1].shape[2] and np.array_equal(free, np.arange(free.size))
    return [Jp if every else Jp[:, :, free] for _, Jp, _ in blocks]


def _normal_equations(blocks, p, D, free):
    """Arrow blocks: A (f, f), g (f), B (W, f, s), C (W, s, s), gy (W, s) over the free parameters."""
    A = np.zeros((free.size, free.size))
    g = np.zeros(free.size)
    Bs, Cs, gys = [], [], []
    for (R, Jp, JY), P in zip(blocks, _free_columns(blocks, free)):
        # matrix products (BLAS): the same sums as einsum's loops, several times faster on wide Jp
        P2 = P.reshape(R.size, free.size)
        A += P2.T @ P2
        g += P2.T @ R.ravel()
        Bs.append(np.matmul(P.transpose(0, 2, 1), JY))
        Cs.append(np.matmul(JY.transpose(0, 2, 1), JY))
        gys.append(np.einsum("wmk,wm->wk", JY, R))
    if D is not None:
        r, J = _penalty(D, p, True)
        Jf = J[:, free]
        A += Jf.T @ Jf
        g += Jf.T @ r
    return A, g, np.concatenate(Bs), np.concatenate(Cs), np.concatenate(gys)


def schur_information(blocks, p, free):
    """Gauss–Newton information of the free shared parameters with every window's state profiled out.

    ``A - sum_w B_w C_w^{-1} B_w^T`` (:func:`_normal_equations` layout) for the residual ``blocks``
    of ``fun(p, Y, True)``; its inverse times the residuals' variance is the Cramér–Rao covariance.
    """
    A, _, B, C, _ = _normal_equations(blocks, p, None, np.asarray(free, dtype=np.int64))
    return A - _sum_products(B, np.linalg.inv(C) @ np.transpose(B, (0, 2, 1)))


def _sum_products(B, E):
    """``sum_w B[w] @ E[w]`` for ``B (W, f, s)``, ``E (W, s, f)``, as one matrix product."""
    W, f, s = B.shape
    return np.transpose(B, (1, 0, 2)).reshape(f, W * s) @ E.reshape(W * s, -1)


def _step(A, g, B, C, gy, dA, dC, mu):
    """The damped step ``(dp, dY)``, or ``None`` if a damped block is not positive definite."""
    Cm = C.copy()
    idx = np.arange(C.shape[1])
    Cm[:, idx, idx] += mu * dC
    try:
        Cinv = np.linalg.inv(Cm)
    except np.linalg.LinAlgError:
        return None
    CiBt = Cinv @ np.transpose(B, (0, 2, 1))  # (W, s, f)
    Cig = np.einsum("wkl,wl->wk", Cinv, gy)
    if A.size:
        S = A.copy()
        S[np.diag_indices_from(S)] += mu * dA
        S -= _sum_products(B, CiBt)
        rhs = g - np.einsum("wik,wk->i", B, Cig)
        try:
            c, low = scipy.linalg.cho_factor(S, check_finite=False)
            dp = -scipy.linalg.cho_solve((c, low), rhs, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            return None
    else:
        dp = np.zeros(0)
    dY = -(Cig + np.einsum("wkf,f->wk", CiBt, dp))
    if not (np.all(np.isfinite(dp)) and np.all(np.isfinite(dY))):
        return None
    return dp, dY


class ArrowSystem:
    """The damped arrow-shaped normal equations at one point ``(p, Y)`` (module docstring).

    Parameters
    ----------
    blocks : list
        ``fun(p, Y, True)`` at the point.
    p : ndarray
        Shared parameters.
    penalty : ndarray, callable or None
        Rows ``D`` of the quadratic penalty on ``p``, or ``penalty(p, jac)`` (see
        :func:`levenberg_marquardt_windows`).
    free : ndarray of int
        Indices of the fitted shared parameters.
    fun : callable, optional
        The residual function ``fun(p, Y, jac)`` at ``Y``: given, each step gets the geodesic
        acceleration (module docstring).
    Y : ndarray (n_windows, s), optional
        The initial states at the point (with ``fun``).
    """

    def __init__(self, blocks, p, penalty, free, fun=None, Y=None):
        self.A, self.g, self.B, self.C, self.gy = _normal_equations(blocks, p, penalty, free)
        dA, dC = np.diag(self.A).copy(), np.einsum("wkk->wk", self.C).copy()
        floor = 1e-4 * max((dA.sum() + dC.sum()) / max(dA.size + dC.size, 1), 1e-300)
        self.dA, self.dC = np.maximum(dA, floor), np.maximum(dC, floor)
        self.fun, self.blocks, self.p, self.Y, self.penalty, self.free = fun, blocks, p, Y, penalty, free
        self._P = None  # the blocks' free parameter columns, made by the first acceleration

    def step(self, mu):
        """``((dp, dY), None)``, or ``(None, growth)`` when a damped block is not positive definite
        (growth 10) or the geodesic acceleration is too large or not finite (growth 4)."""
        step = _step(self.A, self.g, self.B, self.C, self.gy, self.dA, self.dC, mu)
        if step is None:
            return None, 10.0
        if self.fun is None:
            return step, None
        acc = self._acceleration(step, mu)
        if acc is None:
            return None, 4.0
        return (step[0] + 0.5 * acc[0], step[1] + 0.5 * acc[1]), None

    def _acceleration(self, step, mu):
        """The geodesic acceleration ``(ap, aY)`` for the velocity ``step`` (None: too large or not finite)."""
        h, (dp, dY) = GEODESIC_PROBE, step
        p_h = self.p.copy()
        p_h[self.free] += h * dp
        probe = self.fun(p_h, self.Y + h * dY, False)
        if probe is None:
            return None
        g = np.zeros(self.free.size)
        gy, row = [], 0
        if self._P is None:
            self._P = _free_columns(self.blocks, self.free)
        for (R, _, JY), P, (R_h, _, _) in zip(self.blocks, self._P, probe):
            nw = R.shape[0]
            rpp = (2.0 / h) * ((R_h - R) / h - P @ dp - np.einsum("wmk,wk->wm", JY, dY[row:row + nw]))
            g += P.reshape(R.size, -1).T @ rpp.ravel()
            gy.append(np.einsum("wmk,wm->wk", JY, rpp))
            row += nw
        if self.penalty is not None:
            r, J = _penalty(self.penalty, self.p, True)
            Jf = J[:, self.free]
            r_h = _penalty(self.penalty, p_h, False)
            g += Jf.T @ ((2.0 / h) * ((r_h - r) / h - Jf @ dp))
        acc = _step(self.A, g, self.B, self.C, np.concatenate(gy), self.dA, self.dC, mu)
        if acc is None:
            return None
        size = np.sqrt(np.sum(self.dA * acc[0] ** 2) + np.sum(self.dC * acc[1] ** 2))
        speed = np.sqrt(np.sum(self.dA * dp ** 2) + np.sum(self.dC * dY ** 2))
        return acc if np.isfinite(size) and 2.0 * size <= GEODESIC_RATIO * speed else None


def levenberg_marquardt_windows(fun, p0, Y0, free, penalty=None, max_iter=50, ftol=1e-6, mu0=1e-2,
                                time_limit=None, geodesic=False):
    """Minimise ``0.5 |r(p, Y)|² + 0.5 |D p|²`` (or ``+ 0.5 |r_D(p)|²``) with per-window initial states ``Y``.

    Parameters
    ----------
    fun : callable
        ``fun(p, Y, jac)`` -> list of ``(R (nw, m), Jp (nw, m, len(p)), JY (nw, m, s))``
        per group of windows (``Jp``, ``JY`` only if ``jac``), the windows of
        all groups in the order of the rows of ``Y``; ``None`` when a value
        is non-finite (the trial step is rejected).
    p0 : ndarray
        Starting shared parameters.
    Y0 : ndarray (n_windows, s)
        Starting initial states.
    free : array of int
        Indices of the shared parameters to fit (the others stay fixed; the
        states are always fitted).
    penalty : ndarray (k, len(p)) or callable, optional
        Rows ``D`` of a quadratic penalty ``|D p|²`` on ``p``, or a
        nonlinear one ``|r(p)|²`` as ``penalty(p, jac)`` -> ``r`` or ``(r, dr/dp)``
        (e.g. :meth:`~hhsym.estimate.rates.base.GateParametrisation.roughness`).
    max_iter : int
        Maximum accepted steps.
    ftol : float
        Stop when the relative cost decrease of an accepted step is below this twice in a row.
    mu0 : float
        Initial relative damping.
    time_limit : float, optional
        Stop after this many seconds (checked between iterations).
    geodesic : bool
        Add the geodesic acceleration to each step (module docstring); one more residual
        evaluation per trial step.

    Returns
    -------
    p : ndarray
    Y : ndarray
    cost : float

    Raises
    ------
    FloatingPointError
        If the starting point gives non-finite residuals.
    """
    t0 = time.perf_counter()
    p, Y = np.array(p0, dtype=float), np.array(Y0, dtype=float)
    free = np.asarray(free, dtype=np.int64)
    blocks = fun(p, Y, True)
    cost = _cost(blocks, p, penalty)
    if not np.isfinite(cost):
        raise FloatingPointError("the initial parameters give non-finite residuals")

    def advance(x, step):
        pt = x[0].copy()
        pt[free] += step[0]
        return pt, x[1] + step[1]

    def system(blocks, x):
        return ArrowSystem(blocks, x[0], penalty, free, *((fun, x[1]) if geodesic else ()))

    def linearise(x):
        blocks = fun(x[0], x[1], True)
        return None if blocks is None else system(blocks, x)

    (p, Y), cost = damped_iterations((p, Y), cost, system(blocks, (p, Y)), linearise,
                                     lambda x: _cost(fun(x[0], x[1], False), x[0], penalty), advance=advance,
                                     mu=mu0, max_iter=max_iter, ftol=ftol, time_limit=time_limit, t_start=t0)
    return p, Y, cost
