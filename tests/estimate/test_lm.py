"""Levenberg–Marquardt (hhsym.estimate.optimise.lm)."""

import numpy as np
import pytest

from hhsym.estimate.optimise.lm import levenberg_marquardt


def _rosenbrock(theta, jac):
    """Residuals of the Rosenbrock valley, r = (10 (y - x^2), 1 - x): a long curved valley, minimum (1, 1)."""
    x, y = theta
    r = np.array([10.0 * (y - x * x), 1.0 - x])
    if not jac:
        return r
    return r, np.array([[-20.0 * x, 10.0], [-1.0, 0.0]])


def test_levenberg_marquardt_finds_the_minimum_with_and_without_geodesic_acceleration():
    """(The acceleration pays on the estimator's sloppy stage 1 — 4x fewer iterations there, see
    the estimator's docstring — not on small problems like these; both variants must be exact.)"""
    for geodesic in (False, True):
        theta, cost = levenberg_marquardt(_rosenbrock, np.array([-1.2, 1.0]), 0.0, np.zeros(2), max_iter=500,
                                          ftol=1e-14, mu0=1e-3, geodesic=geodesic)
        assert theta == pytest.approx([1.0, 1.0], abs=1e-6)
        assert cost < 1e-12


def test_geodesic_acceleration_on_a_nonlinear_curve_fit():
    """Exponential decay fit from a poor start: both reach the exact parameters."""
    t = np.linspace(0.0, 5.0, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.4 * np.exp(-0.2 * t)

    def fun(p, jac):
        a, k, b, q = p
        e1, e2 = np.exp(-k * t), np.exp(-q * t)
        r = a * e1 + b * e2 - y
        if not jac:
            return r
        return r, np.stack([e1, -a * t * e1, e2, -b * t * e2], axis=1)

    for geodesic in (False, True):
        p, cost = levenberg_marquardt(fun, np.array([1.0, 3.0, 1.0, 0.05]), 0.0, np.zeros(4), max_iter=300,
                                      ftol=1e-15, geodesic=geodesic)
        assert cost < 1e-18
        order = np.argsort(-p[[1, 3]])  # the two terms may come out in either order
        fast, slow = [p[[0, 1]], p[[2, 3]]][order[0]], [p[[0, 1]], p[[2, 3]]][order[1]]
        assert fast == pytest.approx([2.5, 1.3], rel=1e-6)
        assert slow == pytest.approx([0.4, 0.2], rel=1e-6)
