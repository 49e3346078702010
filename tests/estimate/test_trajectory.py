"""Tests of the output-error loss's guards against fast gates (hhsym.estimate.losses.trajectory): the rate cap
of the free-running model and the rate-bound penalty."""

import numpy as np
import pytest

from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.losses.rate_bound import rate_bound_penalty
from hhsym.estimate.losses.trajectory import STABLE_STEP, TrajectoryProblem, rate_cap_for
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise

GRID = np.linspace(-76.0, 35.0, 200)


@pytest.fixture(scope="module")
def setting():
    hh = hodgkin_huxley()
    trs = [simulate(hh, OUNoise(mean=9.0, sigma=6.0, tau=3.0, seed=3), 40.0, dt=0.005, dt_out=0.25)]  # 4 kHz
    data = [(tr.dt, tr.V, tr.I) for tr in trs]
    return hh, data, model_forms(hh, GRID)


def _fast_n(truth, factor):
    """HH's forms with n's two rates both multiplied by ``factor`` (its steady state unchanged)."""
    from hhsym.estimate.rates.formfit import FormFit

    out = dict(truth)
    for k in ("alpha_n", "beta_n"):
        f = truth[k]
        theta = f.theta.copy()
        theta[0] += np.log(factor)  # the amplitude's internal coordinate is its log
        out[k] = FormFit(f.families, theta)
        assert np.allclose(out[k].evaluate(GRID), factor * f.evaluate(GRID), rtol=1e-9)
    return out


def test_the_cap_follows_the_sub_step(setting):
    hh, data, truth = setting
    tp = TrajectoryProblem(FormFamily(hh, truth), hh, data, window=5.0)
    assert tp.rate_cap == pytest.approx(STABLE_STEP / 0.025) == rate_cap_for(data)
    assert TrajectoryProblem(FormFamily(hh, truth), hh, data, window=5.0, substeps=20).rate_cap == \
        pytest.approx(STABLE_STEP / 0.0125)


def test_a_gate_faster_than_rk4_can_follow_runs_at_the_cap(setting):
    """n's rates x 1e4 (tau ~ 1e-4 ms): the free run diverges without the cap, and with it stays
    within the noise of HH's own run (n at the cap is practically at its steady state)."""
    hh, data, truth = setting
    fast = _fast_n(truth, 1e4)
    fam = FormFamily(hh, fast)
    tp = TrajectoryProblem(fam, hh, data, window=5.0)
    q = np.concatenate([fam.pack(fast), tp.initial_states()])
    r = tp.evaluate(q, False)
    assert r is not None and np.all(np.isfinite(r))
    tp.rate_cap = np.inf  # the guard off: RK4 at 0.025 ms with lambda ~ 1e3 /ms
    assert tp.evaluate(q, False) is None
    # at HH's own rates the cap is never reached: residuals as without it
    fam0 = FormFamily(hh, truth)
    tp0 = TrajectoryProblem(fam0, hh, data, window=5.0)
    q0 = np.concatenate([fam0.pack(truth), tp0.initial_states()])
    r0 = tp0.evaluate(q0, False)
    tp0.rate_cap = np.inf
    np.testing.assert_array_equal(r0, tp0.evaluate(q0, False))


def test_rate_bound_penalty_is_zero_below_the_cap_and_exact_above(setting):
    hh, data, truth = setting
    V = np.linspace(-75.0, 30.0, 40)
    fam = FormFamily(hh, truth)
    pen = rate_bound_penalty(fam, V, 100.0, fam.n_params + 2)
    p = np.concatenate([fam.pack(truth), [0.0, 0.0]])
    assert not np.any(pen(p, False))
    fast = _fast_n(truth, 1e4)
    p = np.concatenate([fam.pack(fast), [0.0, 0.0]])
    r, J = pen(p, True)
    assert r.max() > 1.0 and J.shape == (r.size, fam.n_params + 2) and not np.any(J[:, -2:])
    for i in np.flatnonzero(fam.used):
        e = np.zeros(p.size)
        e[i] = 1e-6
        fd = (pen(p + e, False) - pen(p - e, False)) / 2e-6
        np.testing.assert_allclose(J[:, i], fd, atol=1e-5 * max(1.0, np.abs(fd).max()))


def test_the_dense_jacobian_refuses_a_size_that_would_not_fit_in_memory(setting, monkeypatch):
    import hhsym.estimate.losses.trajectory as trajectory
    from hhsym.errors import InvalidArgumentError

    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    tp = TrajectoryProblem(fam, hh, data, window=5.0)
    q = np.concatenate([fam.pack(truth), tp.initial_states()])
    assert tp.evaluate(q)[1].shape == (tp.n_residuals, q.size)
    monkeypatch.setattr(trajectory, "DENSE_LIMIT", tp.n_residuals * q.size - 1)
    with pytest.raises(InvalidArgumentError, match="per-window blocks"):
        tp.evaluate(q)
    assert tp.evaluate(q, False) is not None  # residuals alone are linear in the data


def test_potential_only_states_are_the_free_states_with_zero_offsets_and_exact_jacobian(setting):
    """``free_states="V"``: one fitted entry per window (the potential), the gates at the gate-driven
    pass's values; residuals equal those of all-free states with zero gate offsets, and the Jacobian
    (rates and potentials) agrees with central differences."""
    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    full = TrajectoryProblem(fam, hh, data, window=2.5)
    pinned = TrajectoryProblem(fam, hh, data, window=2.5, free_states="V")
    assert pinned.n_free == 1 and full.n_free == 4
    Y = pinned.initial_states().reshape(-1, 1) + np.linspace(-0.5, 0.5, pinned.n_windows)[:, None]
    Yf = np.hstack([Y, np.zeros((full.n_windows, 3))])
    p = fam.pack(truth)
    np.testing.assert_array_equal(pinned.evaluate(np.concatenate([p, Y.ravel()]), False),
                                  full.evaluate(np.concatenate([p, Yf.ravel()]), False))
    q = np.concatenate([p, Y.ravel()])
    r, J = pinned.evaluate(q, True)
    assert J.shape == (r.size, p.size + pinned.n_windows)
    rng = np.random.default_rng(0)
    for k in np.concatenate([rng.choice(p.size, 4, replace=False), p.size + rng.choice(pinned.n_windows, 3)]):
        h = 1e-7 * max(1.0, abs(q[k]))
        qp, qm = q.copy(), q.copy()
        qp[k] += h
        qm[k] -= h
        fd = (pinned.evaluate(qp, False) - pinned.evaluate(qm, False)) / (2 * h)
        assert np.abs(J[:, k] - fd).max() <= 1e-3 * np.abs(J[:, k]).max()  # measured <= 3.2e-5
    # a potential-only problem carries another's potentials (never gate offsets it does not have)
    carried = pinned.carry_states(full, Yf + 1.0, offsets=True)
    assert carried.shape == (pinned.n_windows, 1)
    np.testing.assert_allclose(carried[:, 0], Y[:, 0] + 1.0)
    with pytest.raises(ValueError, match="free_states"):
        TrajectoryProblem(fam, hh, data, window=2.5, free_states="gates")


@pytest.mark.parametrize("free_states", [True, "V"])
def test_states_only_blocks_equal_the_full_ones_without_parameter_columns(setting, free_states):
    """``blocks(..., family=False)`` (what a fit of the initial states alone uses): the same residuals and
    initial-state derivatives as the full pass, no parameter columns — also with free scalars."""
    from hhsym.estimate.rates.scalars import ScalarParameters

    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    sc = ScalarParameters(hh, "g_Na, E_K, C_m")
    for scalars, p in ((None, fam.pack(truth)), (sc, np.concatenate([fam.pack(truth), sc.pack()]))):
        tp = TrajectoryProblem(fam, hh, data, window=2.5, free_states=free_states, scalars=scalars)
        Y = tp.initial_states().reshape(-1, tp.n_free) + 0.3
        full, states = tp.blocks(p, Y, True), tp.blocks(p, Y, True, family=False)
        for (R, Jp, JY), (Rs, Js, JYs) in zip(full, states):
            np.testing.assert_array_equal(Rs, R)
            np.testing.assert_array_equal(JYs, JY)
            assert Jp.shape[2] == p.size and Js.shape == Jp.shape[:2] + (0,)
        q, Yq, cost = tp.fit(p, Y, max_iter=3, fit_family=False)
        np.testing.assert_array_equal(q, p)
        assert cost < tp.fit(p, Y, max_iter=0, fit_family=False)[2]
