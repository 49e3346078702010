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


T_DECAY = np.linspace(0.0, 2.0, 25)
AMPS = np.array([1.0, -2.0, 0.5, 3.0])


def _decays(p, Y, jac):
    """y_w(t) = Y_w exp(-k t): one shared decay rate k = p[0], one free amplitude per window."""
    e = np.exp(-p[0] * T_DECAY)
    R = Y[:, :1] * e[None, :] - AMPS[:, None] * np.exp(-1.7 * T_DECAY)[None, :]
    if not jac:
        return [(R, None, None)]
    Jp = (-T_DECAY * Y[:, :1] * e[None, :])[:, :, None]
    JY = np.broadcast_to(e[None, :, None], (len(Y), T_DECAY.size, 1)).copy()
    return [(R, Jp, JY)]


@pytest.mark.parametrize("geodesic", [False, True])
def test_windows_fit_a_separable_problem(geodesic):
    p, Y, cost = levenberg_marquardt_windows(_decays, np.array([0.5]), np.ones((4, 1)), free=[0], max_iter=100,
                                             ftol=1e-15, geodesic=geodesic)
    assert p[0] == pytest.approx(1.7, rel=1e-8)
    np.testing.assert_allclose(Y[:, 0], AMPS, rtol=1e-8)
    assert cost < 1e-20


@pytest.mark.parametrize("mu", [1e-3, 0.1, 1.0])
def test_the_geodesic_arrow_step_is_the_dense_geodesic_step(mu):
    """The acceleration solved window by window equals the dense routine's on the same problem, and
    both refuse it alike when it is too large (here at the smallest damping)."""
    p, Y = np.array([0.9]), np.array([[1.5], [-1.0], [0.2], [2.0]])
    blocks = _decays(p, Y, True)
    arrow, growth = ArrowSystem(blocks, p, None, np.arange(1), _decays, Y).step(mu)

    def flat(x, jac):
        out = _decays(x[:1], x[1:].reshape(-1, 1), jac)[0]
        return _dense(*out) if jac else out[0].ravel()

    x = np.concatenate([p, Y.ravel()])
    r, J = flat(x, True)
    dense, dense_growth = DenseSystem(flat, x, r, J, 0.0, np.zeros(x.size), True).step(mu)
    assert growth == dense_growth == (4.0 if mu < 0.01 else None)
    if growth is None:
        plain, _ = ArrowSystem(blocks, p, None, np.arange(1)).step(mu)
        assert not np.allclose(arrow[0], plain[0])  # the acceleration does something here
        np.testing.assert_allclose(np.concatenate([arrow[0], arrow[1].ravel()]), dense, rtol=1e-8, atol=1e-12)


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
