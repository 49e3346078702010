"""The estimator's shooting loss for closed-form rates (hhsym.estimate.losses.shooting_loss)."""

import numpy as np
import pytest
import sympy

from hhsym.errors import InvalidArgumentError, SimulationError
from hhsym.estimate.checks import as_recordings
from hhsym.estimate.losses.shooting_loss import ShootingLoss
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise
from hhsym.symbolic import V

OPTIONS = {"window": 0.25, "burn_in": 0.0, "shooting_window": 3.0, "n_shooting": 10}


@pytest.fixture(scope="module")
def setup():
    hh = hodgkin_huxley()
    data = as_recordings([simulate(hh, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=5), 60.0, dt=0.025)])
    A, k, kb = (sympy.Symbol(n, real=True) for n in ("am_A", "am_k", "bh_k"))
    model = hh.with_rates({"alpha_m": A * (V + 40) / (1 - sympy.exp(-(V + 40) / k)),
                           "beta_h": 1 / (1 + sympy.exp(-(V + 35) / kb))},
                          params={"am_A": 0.1, "am_k": 10.0, "bh_k": 10.0})
    return model, data


def test_the_true_constants_are_the_minimum(setup):
    model, data = setup
    loss = ShootingLoss(model, data, free=["am_A", "am_k", "bh_k"], **OPTIONS)
    at_truth = loss.cost()
    assert at_truth < 1e-5  # discretisation only (noise-free data)
    for p in ([0.11, 10.0, 10.0], [0.1, 9.5, 10.0], [0.1, 10.0, 10.5]):
        assert loss.cost(p) > 100 * at_truth


def test_the_jacobian_is_exact(setup):
    model, data = setup
    loss = ShootingLoss(model, data, free=["bh_k", "am_A", "am_k"], **OPTIONS)  # any order of the constants
    p = np.array([11.0, 0.12, 9.0])
    r, J = loss.evaluate(p, True)
    assert J.shape == (r.size, 3)
    for i in range(3):
        h = 1e-6 * p[i]
        d = np.zeros(3)
        d[i] = h
        fd = (loss.residuals(p + d) - loss.residuals(p - d)) / (2 * h)
        np.testing.assert_allclose(J[:, i], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


def test_rates_and_their_gradients(setup):
    model, data = setup
    loss = ShootingLoss(model, data, free=["am_A"], **OPTIONS)
    grid = np.linspace(-80.0, 40.0, 13)
    out = loss.rates(grid, [0.2], jac=True)
    r, G = out["alpha_m"]
    np.testing.assert_allclose(r, 2.0 * model.evaluate_rates(grid)["alpha_m"], rtol=1e-12)
    np.testing.assert_allclose(G[:, 0], r / 0.2, rtol=1e-12)  # linear in A
    assert np.all(out["beta_m"][1] == 0)


def test_bad_free_parameters_are_named(setup):
    model, data = setup
    with pytest.raises(InvalidArgumentError, match="nope"):
        ShootingLoss(model, data, free=["nope"], **OPTIONS)
    loss = ShootingLoss(model, data, free=["am_A"], **OPTIONS)
    with pytest.raises(InvalidArgumentError, match="one per free"):
        loss.cost([1.0, 2.0])


def test_absurd_constants_give_a_large_finite_cost(setup):
    """Rates are clipped to [1e-12, 1e6] 1/ms on the tables: never NaN, and far above the minimum."""
    model, data = setup
    loss = ShootingLoss(model, data, free=["am_A"], **OPTIONS)
    for A in (-1e30, 1e30):
        try:
            c = loss.cost([A])
        except SimulationError:  # a window may diverge instead: also a clear answer
            continue
        assert np.isfinite(c) and c > 1e3 * loss.cost([0.1])
