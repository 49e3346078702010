"""Tests of hhsym.estimate: kernels vs finite differences, sklearn conventions, bad traces, io, recovery."""

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from sklearn.base import clone

from hhsym.errors import IdentifiabilityWarning, InvalidArgumentError, NotFittedError
from hhsym.estimate import RateEstimator, RateNetwork, load
from hhsym.estimate.losses.charge_balance import ChargeBalance, ShootingProblem
from hhsym.estimate.rates.network_rates import NetworkRates
from hhsym.library import hodgkin_huxley
from hhsym.metrics import steady_state_curves, time_constant_curves


class _Tr:
    def __init__(self, t, V, I):  # noqa: E741
        self.t, self.V, self.I = t, V, I


def _hh_trace(t_stop=40.0, dt=0.025, seed=1, amp=8.0):
    """HH under a smooth random current, integrated tightly with scipy."""
    model = hodgkin_huxley()
    rng = np.random.default_rng(seed)
    knots = np.arange(0, t_stop + 5, 2.0)
    cur = amp + 6.0 * rng.standard_normal(knots.size)
    I_of = lambda t: np.interp(t, knots, cur)  # noqa: E731
    rf = model.rate_functions()
    V0 = -65.0
    y0 = [V0] + [float(rf[f"alpha_{g}"](V0) / (rf[f"alpha_{g}"](V0) + rf[f"beta_{g}"](V0))) for g in "mhn"]

    def rhs(t, y):
        V, m, h, n = y
        I_ion = 120 * m**3 * h * (V - 50) + 36 * n**4 * (V + 77) + 0.3 * (V + 54.387)
        out = [I_of(t) - I_ion]
        for g, x in zip("mhn", (m, h, n)):
            out.append(rf[f"alpha_{g}"](V) * (1 - x) - rf[f"beta_{g}"](V) * x)
        return out

    t = np.arange(0, t_stop + dt / 2, dt)
    sol = solve_ivp(rhs, (0, t[-1]), y0, t_eval=t, rtol=1e-9, atol=1e-9, max_step=0.05)
    return _Tr(t, sol.y[0], I_of(t))


@pytest.fixture(scope="module")
def trace():
    return _hh_trace()


def _problem(trace, hidden=(4, 3), dv_scale=None):
    model = hodgkin_huxley()
    rng = np.random.default_rng(3)
    sizes = np.array((1,) + hidden + (1,))
    theta = np.concatenate([RateNetwork.initial_theta(hidden, rng, np.log(0.5), out_scale=0.3) for _ in range(6)])
    norms = np.tile([-20.0, 60.0, 0.05], (6, 1))
    pr = ShootingProblem(NetworkRates(sizes, norms, tau_min=0.05), model, [(0.025, trace.V, trace.I)], window=0.25,
                         shooting_window=1.0, n_shooting=4, shooting_stride=0.1, dv_scale=dv_scale)
    return pr, theta


def _check_columns(pr, p, columns, stage=1, step=1e-5):
    """Columns of ``pr``'s Jacobian at ``p`` against central differences (relative to each column's size)."""
    _, J = pr.evaluate(p, True, stage)
    for i in columns:
        e = step * max(1.0, abs(p[i]))
        tp, tm = p.copy(), p.copy()
        tp[i] += e
        tm[i] -= e
        fd = (pr.evaluate(tp, False, stage) - pr.evaluate(tm, False, stage)) / (2 * e)
        assert np.max(np.abs(fd - J[:, i])) / (np.max(np.abs(J[:, i])) + 1e-12) < 1e-4
    return J


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("dv_scale", [None, 1.0])
def test_sensitivities_match_finite_differences(trace, stage, dv_scale):
    pr, theta = _problem(trace, dv_scale=dv_scale)
    _check_columns(pr, theta, np.random.default_rng(0).choice(theta.size, 10, replace=False), stage)


def test_network_gradient_and_sympy_agree():
    rng = np.random.default_rng(1)
    net = RateNetwork((5, 4), -20.0, 50.0, RateNetwork.initial_theta((5, 4), rng, out_scale=1.0))
    Vs = np.array([-100.0, -69.0, -20.0, 25.0, 60.0])  # both tails included
    f, dfdV, G = net.log_rate(Vs, grad=True)
    for i in (0, 7, net.n_params - 1):
        th = net.theta.copy()
        net.theta[i] += 1e-6
        fp = net.log_rate(Vs)[0]
        net.theta[:] = th
        np.testing.assert_allclose((fp - f) / 1e-6, G[:, i], atol=1e-5)
    import sympy

    from hhsym.symbolic import V

    expr = sympy.lambdify(V, net.to_sympy(), "numpy")
    np.testing.assert_allclose(expr(Vs), net(Vs), rtol=1e-12)
    # log-linear tails: constant slope of log r beyond the trained range
    lo, hi = net.bounds
    d = np.diff(np.log(net(np.array([lo - 30, lo - 20, lo - 10]))))
    assert abs(d[0] - d[1]) < 1e-9


def test_gate_networks_rates_and_sympy_agree():
    from hhsym.estimate.rates.network import GateNetworks, GateRate

    rng = np.random.default_rng(2)
    g = GateNetworks((5,), -20.0, 50.0, RateNetwork.initial_theta((5,), rng, out_scale=2.0),
                     RateNetwork.initial_theta((5,), rng, out_scale=2.0), tau_min=0.01)
    Vs = np.array([-150.0, -69.0, -20.0, 25.0, 90.0])
    a, b = g.rates(Vs)
    np.testing.assert_allclose(a / (a + b), g.x_inf(Vs), rtol=1e-12)
    np.testing.assert_allclose(1.0 / (a + b), g.tau(Vs), rtol=1e-12)
    assert np.all(a + b <= 1.0 / 0.01 * (1 + 1e-12))  # the floor bounds every rate
    import sympy

    from hhsym.symbolic import V

    for kind, r in (("alpha", a), ("beta", b)):
        rate = GateRate(g, kind)
        np.testing.assert_allclose(sympy.lambdify(V, rate.to_sympy(), "numpy")(Vs), r, rtol=1e-12)
        np.testing.assert_allclose(rate(Vs), r, rtol=1e-12)
    back = GateNetworks.from_state(g.state())
    assert np.array_equal(back.rates(Vs)[0], a)


def test_sklearn_conventions():
    est = RateEstimator(hodgkin_huxley(), hidden=(4,), random_state=3)
    params = est.get_params()
    assert params["hidden"] == (4,) and params["random_state"] == 3
    other = clone(est)
    assert other.get_params()["hidden"] == (4,)
    with pytest.raises(NotFittedError):
        est.predict_rates([-60.0])
    assert not hasattr(est, "model_")


def test_bad_traces(trace):
    est = RateEstimator(hodgkin_huxley(), hidden=(3,), max_iter=(0, 1, 0))
    t, V, I = trace.t, trace.V, trace.I  # noqa: E741
    with pytest.raises(InvalidArgumentError, match="same length"):
        est.fit(_Tr(t, V[:-1], I))
    Vn = V.copy()
    Vn[5] = np.nan
    with pytest.raises(InvalidArgumentError, match="finite"):
        est.fit(_Tr(t, Vn, I))
    tn = t.copy()
    tn[10:] += 0.01
    with pytest.raises(InvalidArgumentError, match="uniform"):
        est.fit(_Tr(tn, V, I))
    with pytest.raises(InvalidArgumentError, match="flat line"):
        est.fit(_Tr(t, np.full_like(V, -65.0), I))
    sub = np.clip(V, None, -60.0)  # no spikes: warning, fit still runs
    with pytest.warns(IdentifiabilityWarning, match="cannot identify"):
        est.fit(_Tr(t, sub, I))
    with pytest.raises(InvalidArgumentError, match="hidden"):
        RateEstimator(hodgkin_huxley(), hidden=(0,)).fit(trace)
    with pytest.raises(InvalidArgumentError, match="spline_knots"):
        RateEstimator(hodgkin_huxley(), spline_knots=(8, 1)).fit(trace)


def test_noise_is_estimated_and_warned_about(trace):
    from hhsym.estimate.checks import NOISE_WARN, noise_level

    assert noise_level(trace.V) < 0.01  # scipy-integrated, sampled at 0.025 ms
    rng = np.random.default_rng(0)
    for sigma in (0.05, 0.5):
        assert noise_level(trace.V + rng.normal(0.0, sigma, trace.V.size)) == pytest.approx(sigma, rel=0.15)
    est = RateEstimator(hodgkin_huxley(), hidden=(3,), max_iter=(0, 1, 0), spline_knots=())
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        est.fit(trace)  # clean: no warning
    assert est.noise_ < NOISE_WARN
    noisy = _Tr(trace.t, trace.V + rng.normal(0.0, 0.5, trace.V.size), trace.I)
    with pytest.warns(IdentifiabilityWarning, match="partly determined.*return_std=True"):
        est.fit(noisy)
    assert est.noise_ == pytest.approx(0.5, rel=0.15)


def test_save_load_round_trip(trace, tmp_path):
    est = RateEstimator(hodgkin_huxley(), hidden=(4,), max_iter=(2, 2, 1), n_starts=1, n_shooting=3,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(trace)
    path = tmp_path / "fit.npz"
    est.save(path)
    back = load(path)
    grid = np.linspace(-120, 80, 301)
    a, b = est.predict_rates(grid), back.predict_rates(grid)
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert back.v_range_ == est.v_range_
    assert back.get_params()["hidden"] == (4,)
    assert set(back.model_.rates) == set(est.model_.rates)
    assert len(est.history_) > 0
    assert back.roles_ == est.roles_ and set(back.gates_) == {"m", "h", "n"}


@pytest.mark.slow
def test_replay_matches_simulate_of_model_(trace):
    """The compile-free replay of the hybrid model is simulate(model_, rk4) on the recording's grid."""
    from hhsym.simulate import simulate
    from hhsym.stimuli import FromArray
    from hhsym.io.trace import Trace

    model = hodgkin_huxley()
    est = RateEstimator(model, hidden=(3,), prior=model, max_iter=(0, 2, 0), random_state=0)
    est.fit(trace)
    rec = Trace(np.asarray(trace.t), np.asarray(trace.V), np.asarray(trace.I))
    ours = est.replay(rec)
    ref = simulate(est.model_, FromArray(rec.t - rec.t[0], rec.I), float(rec.t[-1] - rec.t[0]), dt=rec.dt,
                   method="rk4", y0={"V": float(rec.V[0])})
    assert np.sum((ref.V[:-1] < 0) & (ref.V[1:] >= 0)) >= 1  # spikes: a demanding comparison
    np.testing.assert_allclose(ours.V, ref.V, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ours.t, rec.t)


def test_fit_is_reproducible(trace):
    kw = dict(hidden=(3,), max_iter=(3, 3, 0), n_starts=1, random_state=7)
    a = RateEstimator(hodgkin_huxley(), **kw).fit(trace).predict_rates([-60.0, 0.0])
    b = RateEstimator(hodgkin_huxley(), **kw).fit(trace).predict_rates([-60.0, 0.0])
    for k in a:
        assert np.array_equal(a[k], b[k])


def test_recovery_from_perturbed_prior():
    """HH, ~100 ms of noisy current with spikes: rates 10 % off are pulled back."""

    model = hodgkin_huxley()
    tr = _hh_trace(t_stop=100.0, dt=0.025, seed=4)
    assert np.sum((tr.V[:-1] < 0) & (tr.V[1:] >= 0)) >= 3
    prior = model.with_rates({k: 1.1 * e for k, e in model.rates.items()})
    est = RateEstimator(model, hidden=(8,), prior=prior, max_iter=(0, 30, 0), ridge=1e-10, random_state=0)
    est.fit(tr)
    grid = np.arange(-65.0, 10.5, 1.0)
    xs_fit, xs_true = steady_state_curves(est, grid), steady_state_curves(model, grid)
    tau_fit, tau_true = time_constant_curves(est, grid), time_constant_curves(model, grid)
    x_err = {g: np.max(np.abs(xs_fit[g] - xs_true[g])) for g in xs_true}
    tau_err = {g: np.max(np.abs(tau_fit[g] / tau_true[g] - 1)) for g in tau_true}
    print("x_inf abs err", x_err, "tau rel err", tau_err, "cost", est.cost_)
    assert est.cost_ < 1e-3
    assert max(x_err.values()) < 0.01
    assert max(tau_err.values()) < 0.03


def test_family_search_is_reproducible_and_physical(trace):
    from hhsym.estimate.search.network_start import family_search

    data = [(0.025, trace.V, trace.I)]
    out = []
    for _ in range(2):
        fam, p, cost = family_search(hodgkin_huxley(), data, -20.0, 60.0, np.random.default_rng(5),
                                     signs=[1.0, -1.0, 1.0], n_starts=12, n_refine=4, max_iter=8, tau_min=0.01)
        a, b = fam.rates(p, np.linspace(-80, 40, 13))
        assert np.all(a > 0) and np.all(b > 0) and np.isfinite(cost)
        assert cost == pytest.approx(ChargeBalance(fam, hodgkin_huxley(), data).cost(p), rel=1e-12)
        out.append((a, b, cost))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][2] == out[1][2]
    slopes = np.diff(fam.curves(p, [-20.01, -19.99])[0], axis=1).ravel()
    assert np.all(np.sign(slopes) == [1.0, -1.0, 1.0])  # a hard constraint at the centre of the range


def test_gate_restarts_put_a_scrambled_gate_back(trace):
    """From a fit with one gate's parameters scrambled, redrawing gates one at a time gets back to the
    fit's basin (within 5 % of its cost); the result is never worse than the incumbent and is
    reproducible."""
    from hhsym.estimate.search.network_start import family_search, gate_restarts

    model, data, signs = hodgkin_huxley(), [(0.025, trace.V, trace.I)], [1.0, -1.0, 1.0]
    fam, p, cost = family_search(model, data, -20.0, 60.0, np.random.default_rng(5), signs=signs, n_starts=12,
                                 n_refine=6, max_iter=40, tau_min=0.01)
    loss = ChargeBalance(fam, model, data)
    bad = p.reshape(3, -1).copy()
    bad[1] = fam.random_start(np.random.default_rng(0), 60.0, 80.0).reshape(3, -1)[1]  # h: half-activation at +70 mV
    bad = bad.ravel()
    c_bad = loss.cost(bad)
    assert c_bad > 2 * cost
    out = [gate_restarts(loss, fam, bad, c_bad, np.random.default_rng(1), (-80.0, 40.0)) for _ in range(2)]
    (q, c), (q2, c2) = out
    assert np.array_equal(q, q2) and c == c2
    assert c <= c_bad and c < 1.05 * cost
    assert c == pytest.approx(loss.cost(q), rel=1e-12)
    # an incumbent no draw improves comes back unchanged
    q3, c3 = gate_restarts(loss, fam, q, c, np.random.default_rng(2), (-80.0, 40.0), n_draws=1, max_iter=1)
    assert c3 <= c and (c3 < c or np.array_equal(q3, q))


@pytest.mark.slow
def test_generic_start_finds_the_roles_on_lab_shaped_sweeps():
    """HH on two 300-ms sweeps at 20 kHz shaped like a lab's (a noisy current; rest, then two current
    steps), the data on which the role-swapped pattern (m inactivating, h activating) used to win
    (notes/issue16.md).  The screen must bring the right pattern among the best three and the spline
    level must pick it: refined as splines it reaches the true rates' charge-balance floor
    (2.0e-4 mV² at 8 knots), the other contenders stay above (measured 4.5x and more).
    """
    from hhsym.metrics import rate_errors
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise, Step

    model = hodgkin_huxley()
    stims = [OUNoise(mean=5.0, sigma=6.0, tau=3.0, seed=11), Step(3.5, 30.0, 150.0) + Step(7.5, 150.0, 270.0)]
    train = list(simulate(model, stims, 300.0, dt=0.01, dt_out=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the start alone (no stage 1) is judged poor
        est = RateEstimator(model, max_iter=(40, 0, 0), random_state=0).fit(train)
    assert est.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0}
    settled = sorted(h["settled_cost"] for h in est.hypotheses_ if h["settled_cost"] is not None)
    assert len(settled) == 3 and settled[0] < 2.5e-4 and settled[1] > 3 * settled[0]
    # the networks pretrained on the spline curves: the start of stage 1, within tens of per cent
    assert max(rate_errors(est, model, (-70.0, 20.0), min_share=0.05).values()) < 0.8


@pytest.mark.slow
def test_recovery_from_generic_start():
    """HH, 200 ms of noisy current with spikes, no prior: roles, steady states and rates recovered.

    The role search, the spline stage and 60 network iterations: the rates
    land within 15 % of the truth wherever they are >= 5 % of their gate's
    alpha + beta, x_inf within 0.02.  Measured: beta_m 0.115 at worst (its
    hyperpolarised end; 0.105 after 100 iterations), the other rates within
    2.5 %; with the earlier screen (Boltzmann, most active 60 ms) 0.077.
    """
    from hhsym.metrics import rate_errors
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 200.0, dt=0.005, dt_out=0.025)
    est = RateEstimator(model, hidden=(6,), max_iter=(24, 60, 0), n_starts=12, random_state=0)
    est.fit(tr)
    err = rate_errors(est, model, (-60.0, 10.0), min_share=0.05)
    grid = np.arange(-65.0, 10.5, 1.0)
    xs_fit, xs_true = steady_state_curves(est, grid), steady_state_curves(model, grid)
    x_err = max(float(np.max(np.abs(xs_fit[g] - xs_true[g]))) for g in xs_true)
    print("generic start: cost", est.cost_, "roles", est.roles_, "x_inf err", x_err, "errors", err)
    assert est.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0}  # activating m, n; inactivating h
    settled = [h for h in est.hypotheses_ if h["settled_cost"] is not None]
    assert len(settled) >= 2  # contenders were compared on all the data
    assert x_err < 0.02
    assert max(err.values()) < 0.15
    assert [h["stage"] for h in est.history_ if h["iter"] == 0][-3:] == ["spline8", "spline16", "stage1"]
    rates = est.predict_rates(np.linspace(-120, 80, 201))
    assert all(np.all(np.isfinite(r) & (r > 0) & (r <= 1 / est.tau_min)) for r in rates.values())


# ---------------------------------------------------------------------- fixed gates beside networks
def test_fixed_gates_tables_and_sensitivities(trace):
    """A fixed gate's tables are the template's rates with zero derivatives; the others' are unchanged."""
    from hhsym.estimate.rates.expression_rates import rate_tables
    from hhsym.estimate.rates.fixed_gates import FixedGates

    pr, theta = _problem(trace)
    model = hodgkin_huxley()
    wrapped = FixedGates(pr.rates, model, (2,))  # n
    nodes = np.linspace(-90.0, 50.0, 57)
    XI, LA, DX, DL = wrapped.tables(theta, nodes, True)
    XI0, LA0, DX0, DL0 = pr.rates.tables(theta, nodes, True)
    r = model.evaluate_rates(nodes)
    x, lam, _, _ = rate_tables(r["alpha_n"], r["beta_n"])
    np.testing.assert_array_equal(XI[2], x)
    np.testing.assert_array_equal(LA[2], lam)
    assert not DX[2].any() and not DL[2].any()
    np.testing.assert_array_equal(XI[:2], XI0[:2])
    np.testing.assert_array_equal(DL[:2], DL0[:2])
    npg = wrapped.n_per_gate
    assert np.array_equal(wrapped.free_columns, np.arange(2 * npg))
    # the stage-1 loss over the wrapper: exact sensitivities, none on the fixed gate's columns
    prob = ShootingProblem(wrapped, model, [(0.025, trace.V, trace.I)], window=0.25, shooting_window=1.0,
                           n_shooting=4, shooting_stride=0.1)
    J = _check_columns(prob, theta, np.random.default_rng(0).choice(2 * npg, 6, replace=False))
    assert not J[:, 2 * npg:].any()
    a, b = wrapped.rates(theta, nodes)
    np.testing.assert_array_equal(a[2], r["alpha_n"])
    assert str(wrapped.to_sympy(theta)[2][1]) == str(model.rates["beta_n"])


def test_fixed_gate_is_kept_while_the_others_are_learned(tmp_path):
    """HH with n fixed at its literature rates: m and h learned from the generic start, n exact everywhere.

    Measured (seeds 0-2, 200 ms): m and h within 0.5-15 % where they matter (the worst is beta_m near
    -10 mV, where it is 5 % of alpha_m + beta_m); the fixed gate's networks (stage 2, replay) within 2e-4.
    """
    from hhsym.metrics import rate_errors
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 200.0, dt=0.005, dt_out=0.025)
    est = RateEstimator(model, hidden=(6,), max_iter=(24, 60, 2), n_starts=12, random_state=0, fixed="n",
                        ml_windows=(2.5,))
    est.fit(tr)
    assert est.fixed_ == ("n",)
    assert set(est.networks_) == {"alpha_m", "beta_m", "alpha_h", "beta_h"}
    assert est.model_.rates["alpha_n"] == model.rates["alpha_n"]
    assert est.model_.rates["beta_n"] == model.rates["beta_n"]
    assert len(est.hypotheses_) == 4 and all(h["signs"]["n"] == 1.0 for h in est.hypotheses_)
    assert est.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0}
    assert est.fixed_error_ < 1e-3
    grid = np.linspace(-80.0, 40.0, 61)
    rates, std = est.predict_rates(grid, return_std=True)
    truth = model.evaluate_rates(grid)
    np.testing.assert_array_equal(rates["alpha_n"], truth["alpha_n"])
    assert not std["alpha_n"].any() and not std["beta_n"].any() and std["alpha_m"].max() > 0
    err = rate_errors(est, model, (-60.0, 10.0), min_share=0.05)
    print("fixed n:", err, "fixed_error_", est.fixed_error_, est.quality_)
    assert err["alpha_n"] == 0.0 and max(err.values()) < 0.2
    assert est.quality_.verdict == "good"
    path = tmp_path / "fit.npz"
    est.save(path)
    back = load(path)
    assert back.fixed_ == ("n",) and set(back.networks_) == set(est.networks_)
    assert back.model_.rates["beta_n"] == model.rates["beta_n"]
    b = back.predict_rates(grid)
    for k in rates:
        assert np.array_equal(rates[k], b[k])
    from hhsym import distill

    d = distill(back, backend="forms", traces=tr)  # the fixed gate is not distilled: it stays the template's
    assert list(d.rates) == ["alpha_m", "beta_m", "alpha_h", "beta_h"]
    assert d.model.rates["alpha_n"] == model.rates["alpha_n"]


def test_fixed_gates_bad_input(trace):
    with pytest.raises(InvalidArgumentError, match="fixed.*gate names of"):
        RateEstimator(hodgkin_huxley(), fixed=("q",)).fit(trace)
    with pytest.raises(InvalidArgumentError, match="fewer than all gates"):
        RateEstimator(hodgkin_huxley(), fixed="m,h,n").fit(trace)


@pytest.mark.slow
def test_literature_m_gate_kept_while_na_and_kd_are_learned():
    """Pospischil's RS cell, 300 ms: Na and Kd learned as networks beside the literature M gate.

    Measured: roles right, output RMS 0.085 mV, Na and Kd rates within 16 % where they matter (17 s).
    Learning the M gate too from the same 300 ms fails (its p gate's role comes out wrong, output RMS 25 mV):
    a slow gate the data cannot determine is what ``fixed`` is for.
    """
    from hhsym.library import get_model
    from hhsym.metrics import rate_errors
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = get_model("pospischil_rs")
    tr = simulate(model, OUNoise(mean=4.0, sigma=3.0, tau=3.0, seed=4), 300.0, dt=0.005, dt_out=0.025)
    est = RateEstimator(model, hidden=(6,), max_iter=(24, 60, 4), n_starts=12, random_state=0, fixed="p").fit(tr)
    err = rate_errors(est, model, (-70.0, 10.0), min_share=0.05)
    print("RS with the M gate fixed:", err, est.quality_)
    assert est.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0, "p": 1.0}
    assert est.quality_.verdict == "good" and est.quality_.rms_mV < 0.3
    assert err["alpha_p"] == 0.0 and max(err.values()) < 0.25


# ---------------------------------------------------------------------- whole-cell scalars with the networks
def test_charge_balance_scalar_derivatives_are_exact(trace):
    """dQ/dg, dQ/dE, dQ/dC of the charge balance (from the open-fraction integrals) against central differences."""
    from hhsym.estimate.rates.scalars import ScalarParameters

    pr0, theta = _problem(trace)
    model = hodgkin_huxley()
    sc = ScalarParameters(model, "g_Na,g_K,g_L,E_L,E_K,C_m,E_Na=30:70")
    pr = ShootingProblem(pr0.rates, model, [(0.025, trace.V, trace.I)], window=0.25, shooting_window=1.0,
                         n_shooting=4, shooting_stride=0.1, dv_scale=None, scalars=sc)
    p = np.concatenate([theta, sc.pack()])
    r = pr.evaluate(p, False, 1)
    _check_columns(pr, p, list(range(theta.size, p.size)) + [0, 7], step=1e-6)
    r2, J2 = pr.evaluate(p, True, 2)  # stage 2 uses the scalars' values and holds them (zero columns)
    assert J2.shape[1] == p.size and not J2[r.size:, theta.size:].any()
    # at the template's values the loss is the loss without scalars
    np.testing.assert_allclose(pr.evaluate(p, False, 2), pr0.evaluate(theta, False, 2), rtol=1e-12, atol=1e-14)


def _wrong_passive(model):
    return model.with_params(g_L=0.399, E_L=-57.1, C_m=1.1)  # +33 %, +2.7 mV, +10 %


def test_passive_scalars_come_back_with_the_networks(tmp_path):
    """HH from a template with g_L, E_L and C_m wrong, generic start: the scalars and the rates come back.

    Measured (stage 1, 11 s): g_L 0.2 %, E_L 0.09 %, C_m 0.004 %, rates within 1.7 %, output RMS 0.03 mV.
    Without fitting them the template's errors go into the networks.  (g_Na and g_K are not identifiable
    beside free-form steady states: g x_inf^p is what the data fix.)
    """
    from hhsym.metrics import rate_errors
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 200.0, dt=0.005, dt_out=0.025)
    est = RateEstimator(_wrong_passive(model), hidden=(6,), max_iter=(24, 60, 4), n_starts=12, random_state=0,
                        free="g_L,E_L,C_m").fit(tr)
    rel = {k: est.scalars_[k] / model.params[k] - 1.0 for k in est.scalars_}
    err = rate_errors(est, model, (-60.0, 10.0), min_share=0.05)
    print("passive scalars:", rel, err, est.quality_)
    assert max(abs(v) for v in rel.values()) < 0.02
    assert max(err.values()) < 0.05
    assert est.quality_.verdict == "good"
    assert est.template_.params["C_m"] == est.scalars_["C_m"] == est.model_.params["C_m"]
    path = tmp_path / "fit.npz"
    est.save(path)
    back = load(path)
    assert back.scalars_ == est.scalars_ and back.model_.params["g_L"] == est.model_.params["g_L"]
    tr0 = back.replay(tr)
    np.testing.assert_array_equal(tr0.V, est.replay(tr).V)


@pytest.mark.slow
def test_passive_scalars_have_calibrated_errors():
    """With the maximum-likelihood stage the scalars get standard deviations; the truth is within 2 sd.

    Measured: g_L 0.2996 ± 0.0023 (truth 0.3), E_L -54.354 ± 0.18 (-54.387), C_m 1.00009 ± 0.00025.
    """
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 200.0, dt=0.005, dt_out=0.025)
    est = RateEstimator(_wrong_passive(model), hidden=(6,), max_iter=(24, 60, 4), n_starts=12, random_state=0,
                        free="g_L,E_L,C_m", ml_windows=(2.5, 5.0, 10.0)).fit(tr)
    z = {k: (est.scalars_[k] - model.params[k]) / est.scalars_std_[k] for k in est.scalars_}
    print("scalars", est.scalars_, "sd", est.scalars_std_, "z", z)
    assert set(z) == {"g_L", "E_L", "C_m"} and max(abs(v) for v in z.values()) < 2.0


def test_time_limit_bounds_the_role_search(trace):
    """With a budget spent at once only the first role pattern is screened and the fit still ends normally."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateEstimator(hodgkin_huxley(), hidden=(3,), max_iter=(6, 3, 1), n_starts=1, time_limit=1e-3,
                            random_state=0).fit(trace)
    assert len(est.hypotheses_) == 1 and est.hypotheses_[0]["signs"] == {"m": 1.0, "h": 1.0, "n": 1.0}
    assert np.isfinite(est.cost_) and est.roles_ is not None


def test_fit_file_with_foreign_scalars_is_refused(trace, tmp_path):
    import json

    from hhsym.errors import TraceFileError

    est = RateEstimator(hodgkin_huxley(), hidden=(3,), max_iter=(0, 2, 0), prior=hodgkin_huxley(), free="C_m",
                        random_state=0).fit(trace)
    path = tmp_path / "fit.npz"
    est.save(path)
    assert load(path).scalars_ == est.scalars_
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["scalars"] = {"g_X": 1.0}
    arrays["meta"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(TraceFileError, match="not parameters of its model"):
        load(bad)


def test_converged_pretraining_takes_over_the_curves_where_a_short_one_rings():
    """The noisy route hands its maximum-likelihood splines to the networks, and only a short local
    refinement follows: ``pretrain(converge=True)`` must reproduce the curves, even beside a spline's
    wild tail beyond the spikes' peaks (m's logit rising to 16), where 100 plain iterations ring
    (0.28 off in logit x_inf below 30 mV, enough to shift spikes)."""
    from hhsym.estimate.rates.network import TAU_MIN
    from hhsym.estimate.search.network_start import pretrain, prior_curves

    lo, hi = -81.0, 43.0
    center, scale = 0.5 * (lo + hi), 0.5 * (hi - lo) * 1.02
    grid = np.linspace(lo, hi, 200)
    curves = prior_curves(hodgkin_huxley(), ["m", "h", "n"], grid, TAU_MIN)
    curves[0] = curves[0] + np.where(grid > 40.0, 3.0 * (grid - 40.0), 0.0)
    theta0 = np.concatenate([RateNetwork.initial_theta((16,), np.random.default_rng(0)) for _ in curves])
    P = theta0.size // len(curves)

    def worst(theta):
        return max(float(np.max(np.abs(RateNetwork((16,), center, scale, theta[i * P:(i + 1) * P]).log_rate(grid)[0]
                                       - y)[grid < 30.0])) for i, y in enumerate(curves))

    assert worst(pretrain((16,), center, scale, grid, curves, theta0, converge=True)) < 0.005
    assert worst(pretrain((16,), center, scale, grid, curves, theta0)) > 0.1
    # a None curve keeps its network as it is
    kept = pretrain((16,), center, scale, grid, [None] + curves[1:], theta0)
    np.testing.assert_array_equal(kept[:P], theta0[:P])
