"""Tests of hhsym.estimate.rates.curves: exact Jacobians, spline basis, projection, recovery in a spline family."""

import numpy as np
import pytest

from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.rates.curves import GateFamily, SplineFamily, curves_from_rates
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise


@pytest.fixture(scope="module")
def data():
    tr = simulate(hodgkin_huxley(), OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 60.0, dt=0.005, dt_out=0.025)
    return [(0.025, tr.V, tr.I)]


def _true_curves(model, V, tau_min):
    return curves_from_rates(model.evaluate_rates(V), [g.name for g in model.gates], tau_min)


def _fd_check(fun, p, h=1e-6):
    r, J = fun(p, True)
    Jfd = np.empty_like(J)
    for i in range(p.size):
        e = np.zeros(p.size)
        e[i] = h * max(1.0, abs(p[i]))
        Jfd[:, i] = (fun(p + e, False) - fun(p - e, False)) / (2 * e[i])
    return J, Jfd


@pytest.mark.parametrize("kind", ["boltzmann-signs", "quadratic-signs", "cubic", "cubic-monotone", "spline"])
def test_jacobian_matches_finite_differences(data, kind):
    model = hodgkin_huxley()
    V = np.linspace(-80.0, 40.0, 121)
    if kind == "spline":
        fam = SplineFamily(3, -20.0, 62.0, knots=6, tau_min=0.01)
        p = fam.project(*_true_curves(model, V, 0.01), V) * 1.01
        fun = ChargeBalance(fam, model, data).lm_fun(smooth=1e-6)
    else:
        deg, signs = {"boltzmann-signs": ((1, 2), [1.0, -1.0, 1.0]), "quadratic-signs": ((2, 2), [1.0, -1.0, 1.0]),
                      "cubic": ((3, 3), None), "cubic-monotone": ((3, 3), [1.0, -1.0, 1.0])}[kind]
        fam = GateFamily(3, -20.0, 62.0, deg=deg, signs=signs, monotone=kind.endswith("monotone"), tau_min=0.01)
        if signs:  # a random start, with some bend of logit x_inf where the family has one
            p = fam.random_start(np.random.default_rng(1), -70.0, 0.0).reshape(fam.ng, -1)
            p[:, 2:fam.n_z] = 0.3
            p = p.ravel()
        else:
            p = np.random.default_rng(2).normal(0.0, 0.5, fam.ng * fam.n_per_gate)
        fun = ChargeBalance(fam, model, data).lm_fun()
    J, Jfd = _fd_check(fun, p)
    assert np.max(np.abs(J - Jfd)) < 1e-6 * max(1.0, np.max(np.abs(J)))


@pytest.mark.parametrize("monotone", [False, True])
def test_lift_to_richer_families_keeps_the_curves(monotone):
    """A signed quadratic family's curves lifted to a cubic one (signed, monotone or free) are the same
    curves, and its sympy form is the same function."""
    import sympy

    from hhsym.symbolic import V as V_SYMBOL

    rng = np.random.default_rng(3)
    signs = np.array([1.0, -1.0, 1.0])
    low = GateFamily(3, -20.0, 62.0, deg=(2, 2), signs=signs, monotone=monotone, tau_min=0.01)
    V = np.linspace(-90.0, 50.0, 57)
    for _ in range(5):
        p = low.random_start(rng, -80.0, 40.0) + 0.3 * rng.standard_normal(low.n_params)
        for rich in (GateFamily(3, -20.0, 62.0, deg=(3, 3), signs=signs, monotone=monotone, tau_min=0.01),
                     GateFamily(3, -20.0, 62.0, deg=(3, 3), tau_min=0.01)):
            for a, b in zip(low.curves(p, V), rich.curves(rich.lift(p, low), V)):
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    alpha = sympy.lambdify(V_SYMBOL, low.to_sympy(p)[1][0])
    np.testing.assert_allclose(alpha(V), low.rates(p, V)[0][1], rtol=1e-10)


def test_monotone_family_keeps_every_steady_state_monotone_and_starts_as_boltzmann():
    """Monotone over the range whatever the parameters; a random start is the same Boltzmann curve as
    the signed family's (the Bernstein weights equal)."""
    signs = np.array([1.0, -1.0, 1.0])
    V = np.linspace(-20.0 - 62.0, -20.0 + 62.0, 301)
    for d in (2, 3, 4):
        mono = GateFamily(3, -20.0, 62.0, deg=(d, 2), signs=signs, monotone=True, tau_min=0.01)
        plain = GateFamily(3, -20.0, 62.0, deg=(d, 2), signs=signs, tau_min=0.01)
        pm, pp = (f.random_start(np.random.default_rng(7), -80.0, 40.0) for f in (mono, plain))
        np.testing.assert_allclose(mono.curves(pm, V)[0], plain.curves(pp, V)[0], atol=1e-12)
        rng = np.random.default_rng(d)
        for _ in range(100):
            z = mono.curves(pm + 2.0 * rng.standard_normal(mono.n_params), V)[0]
            assert np.all(signs[:, None] * np.diff(z, axis=1) >= 0)
    with pytest.raises(ValueError, match="monotone family needs signs"):
        GateFamily(3, -20.0, 62.0, deg=(2, 2), monotone=True)


def test_spline_basis_partition_of_unity_and_linear_tails(data):
    fam = SplineFamily(3, -20.0, 60.0, knots=9)
    inside = np.linspace(-80.0, 40.0, 301)
    B, Bt = fam.basis(inside)
    assert B.shape == (301, 11) and np.array_equal(B, Bt)
    assert np.allclose(B.sum(axis=1), 1.0, atol=1e-13)  # constants are exact
    # beyond the range, every curve continues along its end tangent: second differences vanish
    c = np.random.default_rng(0).normal(size=11)
    for side in (np.linspace(-140.0, -80.0, 7), np.linspace(40.0, 100.0, 7)):
        y = fam.basis(side)[0] @ c
        assert np.allclose(np.diff(y, 2), 0.0, atol=1e-10)
    # continuous, with a continuous slope, at the ends of the range
    for v in (-80.0, 40.0):
        y = fam.basis(np.array([v - 1e-6, v, v + 1e-6]))[0] @ c
        assert abs(y[2] - 2 * y[1] + y[0]) < 1e-9 and abs(y[2] - y[0]) < 1e-3


def test_project_reproduces_smooth_curves(data):
    model = hodgkin_huxley()
    fam = SplineFamily(3, -20.0, 60.0, knots=24, tau_min=0.01)
    V = np.linspace(-80.0, 40.0, 400)
    z, lt = _true_curves(model, V, 0.01)
    zf, ltf = fam.curves(fam.project(z, lt, V), V)
    assert np.max(np.abs(zf - z)) < 2e-3 and np.max(np.abs(ltf - lt)) < 2e-3


def test_spline_family_recovers_hh_rates_from_a_distorted_start():
    """Curves 30 % off in tau and shifted in x_inf are pulled back to HH's (150 ms of data)."""
    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 150.0, dt=0.005, dt_out=0.025)
    data = [(0.025, tr.V, tr.I)]
    fam = SplineFamily(3, -20.0, 60.0, knots=10, tau_min=0.01)
    loss = ChargeBalance(fam, model, data)
    V = np.linspace(-80.0, 40.0, 400)
    z, lt = _true_curves(model, V, 0.01)
    start = fam.project(z + 0.3, lt + np.log(1.3), V)
    from hhsym.estimate.optimise.lm import levenberg_marquardt

    p, cost = levenberg_marquardt(loss.lm_fun(1e-12), start, 0.0, np.zeros(start.size), max_iter=60, mu0=1e-2,
                                  geodesic=True)
    assert cost < 1e-3 * loss.cost(start)
    grid = np.linspace(-65.0, 10.0, 76)
    truth = model.evaluate_rates(grid)

    def errors(q):
        a, b = fam.rates(q, grid)
        x_err, tau_err = [], []
        for j, g in enumerate("mhn"):
            ta, tb = truth[f"alpha_{g}"], truth[f"beta_{g}"]
            x_err.append(np.max(np.abs(a[j] / (a[j] + b[j]) - ta / (ta + tb))))
            tau_err.append(np.max(np.abs((ta + tb) / (a[j] + b[j]) - 1.0)))
        return max(x_err), max(tau_err)

    (x0, t0), (x1, t1) = errors(start), errors(p)
    print("x_inf abs err", x0, "->", x1, "; tau rel err", t0, "->", t1)
    assert x0 > 0.05 and t0 > 0.2
    assert x1 < 0.04 and t1 < 0.03  # measured: 0.028 (h, depolarised), 0.019


def test_bad_knots_rejected(data):
    with pytest.raises(ValueError, match="knots"):
        SplineFamily(3, -20.0, 60.0, knots=1)


def test_trajectory_problem_jacobian_and_truth(data):
    """Output-error residuals: exact Jacobian (vs finite differences), and at the true rates (free
    initial states at the recorded V) they are the RK4 error only."""
    from hhsym.estimate.losses.trajectory import TrajectoryProblem

    model = hodgkin_huxley()
    V = np.linspace(-80.0, 40.0, 400)
    fam = SplineFamily(3, -20.0, 62.0, knots=24, tau_min=0.01)
    pt = fam.project(*_true_curves(model, V, 0.01), V)
    tp = TrajectoryProblem(fam, model, data, window=2.0, substeps=2, stride=1)
    assert tp.n_windows == len(range(0, len(data[0][1]) - 1 - 80, 80))
    q = np.concatenate([pt, tp.initial_states()])
    r = tp.evaluate(q, False)
    assert r.size == tp.n_residuals and np.sqrt(np.mean(r ** 2) * r.size) < 2e-3  # mV, rms
    q = q + np.random.default_rng(0).normal(0.0, 1e-3, q.size)
    # small steps: the tables are piecewise linear in V, so a larger step crosses their kinks
    J, Jfd = _fd_check(tp.lm_fun(1e-6), q, h=1e-7)
    assert np.max(np.abs(J - Jfd)) < 5e-6 * max(1.0, np.max(np.abs(J)))


def test_trajectory_fixed_states_and_stride_agree_with_free_states(data):
    from hhsym.estimate.losses.trajectory import TrajectoryProblem

    model = hodgkin_huxley()
    V = np.linspace(-80.0, 40.0, 400)
    fam = SplineFamily(3, -20.0, 62.0, knots=12, tau_min=0.01)
    p = fam.project(*_true_curves(model, V, 0.01), V)
    free = TrajectoryProblem(fam, model, data, window=2.0, substeps=2, stride=1)
    fixed = TrajectoryProblem(fam, model, data, window=2.0, substeps=2, stride=1, free_states=False)
    strided = TrajectoryProblem(fam, model, data, window=2.0, substeps=2, stride=4, free_states=False)
    r_free, J_free = free.evaluate(np.concatenate([p, free.initial_states()]))
    r_fixed, J_fixed = fixed.evaluate(p)
    assert fixed.initial_states().size == 0 and J_fixed.shape == (r_fixed.size, p.size)
    assert np.allclose(r_free, r_fixed, rtol=0, atol=1e-15)
    assert np.allclose(J_free[:, :p.size], J_fixed, rtol=0, atol=1e-12)
    r_s = strided.evaluate(p, False) * np.sqrt(strided.n_residuals)
    every = (r_fixed * np.sqrt(fixed.n_residuals)).reshape(fixed.n_windows, -1)
    assert np.allclose(r_s.reshape(strided.n_windows, -1), every[:, ::4], rtol=1e-12, atol=1e-15)
