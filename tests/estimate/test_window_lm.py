"""Per-window Levenberg–Marquardt (hhsym.estimate.optimise.window_lm) over the shared loop."""

import numpy as np
import pytest

from hhsym.estimate.optimise.lm import DenseSystem, damped_iterations
from hhsym.estimate.optimise.window_lm import ArrowSystem, levenberg_marquardt_windows, schur_information


def _arrow(rng, nw=5, m=7, P=3, s=2):
    R = rng.normal(size=(nw, m))
    Jp = rng.normal(size=(nw, m, P))
    JY = rng.normal(size=(nw, m, s))
    return R, Jp, JY


def _dense(R, Jp, JY):
    """The same problem as one dense Jacobian: columns p, then each window's state."""
    nw, m, P = Jp.shape
    s = JY.shape[2]
    J = np.zeros((nw * m, P + nw * s))
    for w in range(nw):
        J[w * m:(w + 1) * m, :P] = Jp[w]
        J[w * m:(w + 1) * m, P + w * s:P + (w + 1) * s] = JY[w]
    return R.ravel(), J


@pytest.mark.parametrize("mu", [1e-6, 1e-2, 3.0])
def test_the_schur_step_is_the_dense_step(mu):
    """Eliminating every window's state block by block gives the dense damped step to rounding."""
    R, Jp, JY = _arrow(np.random.default_rng(0))
    P = Jp.shape[2]
    arrow = ArrowSystem([(R, Jp, JY)], np.zeros(P), None, np.arange(P))
    (dp, dY), growth = arrow.step(mu)
    assert growth is None
    r, J = _dense(R, Jp, JY)
    dense, growth = DenseSystem(None, np.zeros(J.shape[1]), r, J, 0.0, np.zeros(J.shape[1]), False).step(mu)
    assert growth is None
    np.testing.assert_allclose(np.concatenate([dp, dY.ravel()]), dense, rtol=1e-9, atol=1e-12)


def test_schur_information_is_the_profiled_dense_information():
    R, Jp, JY = _arrow(np.random.default_rng(1))
    P = Jp.shape[2]
    r, J = _dense(R, Jp, JY)
    cov = np.linalg.inv(J.T @ J)[:P, :P]  # marginal covariance of p = inverse of the Schur complement
    np.testing.assert_allclose(schur_information([(R, Jp, JY)], np.zeros(P), np.arange(P)), np.linalg.inv(cov),
                               rtol=1e-9)


def test_windows_fit_a_separable_problem():
    """y_w(t) = Y_w exp(-k t): one shared decay rate, one free amplitude per window."""
    t = np.linspace(0.0, 2.0, 25)
    amps = np.array([1.0, -2.0, 0.5, 3.0])
    data = amps[:, None] * np.exp(-1.7 * t)[None, :]

    def fun(p, Y, jac):
        e = np.exp(-p[0] * t)
        R = Y[:, :1] * e[None, :] - data
        if not jac:
            return [(R, None, None)]
        Jp = (-t * Y[:, :1] * e[None, :])[:, :, None]
        JY = np.broadcast_to(e[None, :, None], (len(Y), t.size, 1)).copy()
        return [(R, Jp, JY)]

    p, Y, cost = levenberg_marquardt_windows(fun, np.array([0.5]), np.ones((4, 1)), free=[0], max_iter=100,
                                             ftol=1e-15)
    assert p[0] == pytest.approx(1.7, rel=1e-8)
    np.testing.assert_allclose(Y[:, 0], amps, rtol=1e-8)
    assert cost < 1e-20


def test_damped_iterations_refuses_and_stops():
    """A system whose every step is refused: the loop grows the damping and stops after MAX_TRIALS."""
    seen = []

    class Refuses:
        def step(self, mu):
            seen.append(mu)
            return None, 10.0

    x, cost = damped_iterations(np.zeros(2), 1.0, Refuses(), lambda x: Refuses(), lambda x: 0.0, mu=1.0)
    assert cost == 1.0 and np.all(x == 0)
    np.testing.assert_allclose(seen, 10.0 ** np.arange(12))


def test_initial_non_finite_residuals_raise():
    def fun(p, Y, jac):
        return None

    with pytest.raises(FloatingPointError):
        levenberg_marquardt_windows(fun, np.zeros(1), np.zeros((2, 1)), free=[0])
