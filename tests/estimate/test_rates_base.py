"""Every rate parametrisation satisfies the contract of hhsym.estimate.rates.base.GateParametrisation."""

import numpy as np
import pytest
import sympy

from hhsym.estimate.losses.charge_balance import ChargeBalance, ShootingProblem
from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.rates.base import GateParametrisation
from hhsym.estimate.rates.curves import GateFamily, SplineFamily, curves_from_rates
from hhsym.estimate.rates.expression_rates import ExpressionRates
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.rates.network import RateNetwork
from hhsym.estimate.rates.network_rates import NetworkRates
from hhsym.library import hodgkin_huxley
from hhsym.symbolic import V as V_SYMBOL

#: Voltage nodes (mV) of the tables: beyond the networks' and splines' normalised range on both sides.
NODES = np.linspace(-95.0, 55.0, 151)
KINDS = ["network", "gate12-signs", "gate33", "spline", "form", "expression"]


def _network():
    hidden = (3,)
    rng = np.random.default_rng(3)
    sizes = np.array((1,) + hidden + (1,))
    theta = np.concatenate([RateNetwork.initial_theta(hidden, rng, np.log(0.5), out_scale=0.3) for _ in range(6)])
    return NetworkRates(sizes, np.tile([-20.0, 62.0, 0.05], (6, 1)), tau_min=0.05), theta


def _make(kind):
    model = hodgkin_huxley()
    if kind == "network":
        return _network()
    if kind == "gate12-signs":
        fam = GateFamily(3, -20.0, 62.0, deg=(1, 2), signs=[1.0, -1.0, 1.0], tau_min=0.01)
        return fam, fam.random_start(np.random.default_rng(1), -70.0, 0.0)
    if kind == "gate33":
        fam = GateFamily(3, -20.0, 62.0, deg=(3, 3), tau_min=0.01)
        return fam, np.random.default_rng(2).normal(0.0, 0.5, fam.n_params)
    if kind == "spline":
        fam = SplineFamily(3, -20.0, 62.0, knots=6, tau_min=0.01)
        V = np.linspace(-80.0, 40.0, 121)
        z, lt = curves_from_rates(model.evaluate_rates(V), [g.name for g in model.gates], 0.01)
        return fam, fam.project(z, lt, V) * 1.01
    if kind == "expression":
        A, k, B, c = (sympy.Symbol(n, real=True) for n in ("am_A", "am_k", "bh_B", "an_c"))
        exprs = {"alpha_m": A * (V_SYMBOL + 40) / (1 - sympy.exp(-(V_SYMBOL + 40) / k)),
                 "beta_m": 4 * sympy.exp(-(V_SYMBOL + 65) / 18), "alpha_h": 0.07 * sympy.exp(-(V_SYMBOL + 65) / 20),
                 "beta_h": 1 / (1 + sympy.exp(-(V_SYMBOL + B) / 10)), "alpha_n": c + 0 * V_SYMBOL,
                 "beta_n": 0.125 * sympy.exp(-(V_SYMBOL + 65) / 80)}
        rates = ExpressionRates("mhn", exprs, {"alpha_m": ["am_A", "am_k"], "beta_h": ["bh_B"], "alpha_n": ["an_c"]})
        return rates, rates.pack([0.1, 10.0, 35.0, 0.02])
    fits = _forms()
    fam = FormFamily(model, fits)
    return fam, fam.pack(fits) * 1.02


_FORMS = {}


def _forms():
    if not _FORMS:
        _FORMS.update(model_forms(hodgkin_huxley(), np.linspace(-76.0, 35.0, 200)))
    return _FORMS


@pytest.fixture(scope="module", params=KINDS)
def case(request):
    return _make(request.param)


def test_shapes_and_layout(case):
    rates, p = case
    assert isinstance(rates, GateParametrisation)
    assert rates.n_gates == 3 and rates.n_params == rates.n_gates * rates.n_per_gate == p.size
    a, b = rates.rates(p, NODES)
    assert a.shape == b.shape == (3, NODES.size) and np.all(a > 0) and np.all(b > 0)
    xi, la, DX, DL = rates.tables(p, NODES, True)
    assert xi.shape == la.shape == (3, NODES.size)
    assert DX.shape == DL.shape == (3, NODES.size, rates.n_per_gate)
    assert xi.flags.c_contiguous and la.flags.c_contiguous
    xi0, la0, DX0, DL0 = rates.tables(p, NODES, False)
    assert DX0.shape == DL0.shape == (3, 0, rates.n_per_gate)
    assert np.array_equal(xi0, xi) and np.array_equal(la0, la)
    assert rates.penalty_rows().shape[1] == rates.n_params


def test_rates_by_name_at_parameters(case):
    """``at(p, names)`` gives ``rates(p, V)`` by name, as hhsym.metrics takes a fitted model."""
    rates, p = case
    got = rates.at(p, ["m", "h", "n"]).predict_rates(NODES)
    a, b = rates.rates(p, NODES)
    for j, g in enumerate("mhn"):
        np.testing.assert_array_equal(got[f"alpha_{g}"], a[j])
        np.testing.assert_array_equal(got[f"beta_{g}"], b[j])
    with pytest.raises(ValueError, match="names"):
        rates.at(p, ["m", "h"])


def test_rates_agree_with_tables(case):
    """x_inf = alpha / (alpha + beta) and lambda = alpha + beta (1/ms) on the nodes."""
    rates, p = case
    a, b = rates.rates(p, NODES)
    xi, la, _, _ = rates.tables(p, NODES, False)
    np.testing.assert_allclose(xi, a / (a + b), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(la, a + b, rtol=1e-12)


def test_table_jacobian_matches_central_differences(case):
    rates, p = case
    xi, la, DX, DL = rates.tables(p, NODES, True)
    npg = rates.n_per_gate
    for i in range(p.size):
        e = np.zeros(p.size)
        e[i] = 1e-6 * max(1.0, abs(p[i]))
        xp, lp, _, _ = rates.tables(p + e, NODES, False)
        xm, lm, _, _ = rates.tables(p - e, NODES, False)
        g, q = divmod(i, npg)
        fdx, fdl = (xp - xm) / (2 * e[i]), (lp - lm) / (2 * e[i])
        np.testing.assert_allclose(DX[g, :, q], fdx[g], rtol=1e-5, atol=1e-8 * max(1.0, np.abs(DX).max()))
        np.testing.assert_allclose(DL[g, :, q], fdl[g], rtol=1e-5, atol=1e-8 * max(1.0, np.abs(DL).max()))
        others = np.arange(3) != g  # a gate's tables depend on its own parameters only
        assert np.all(fdx[others] == 0) and np.all(fdl[others] == 0)


def test_sympy_and_public_where_defined(case):
    rates, p = case
    try:
        exprs = rates.to_sympy(p)
    except NotImplementedError:
        assert isinstance(rates, SplineFamily)
    else:
        V = np.array([-70.0, -40.0, -10.0, 20.0])
        a, b = rates.rates(p, V)
        assert len(exprs) == rates.n_gates
        for j, (ea, eb) in enumerate(exprs):
            fa, fb = (sympy.lambdify(V_SYMBOL, e, "numpy") for e in (ea, eb))
            rtol = 1e-5 if isinstance(rates, FormFamily) else 1e-10  # forms' expressions: six digits
            np.testing.assert_allclose(np.broadcast_to(fa(V), V.shape), a[j], rtol=rtol)
            np.testing.assert_allclose(np.broadcast_to(fb(V), V.shape), b[j], rtol=rtol)
    try:
        pub = rates.public(p)
    except NotImplementedError:
        assert not isinstance(rates, (FormFamily, ExpressionRates))
    else:
        assert isinstance(rates, (FormFamily, ExpressionRates)) and set(pub) == set(_forms())


def test_losses_take_any_parametrisation():
    """The stage-1 loss of the networks is the same through ChargeBalance and ShootingProblem (bit for bit)."""
    from hhsym.simulate import simulate
    from hhsym.stimuli import OUNoise

    model = hodgkin_huxley()
    tr = simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 20.0, dt=0.005, dt_out=0.025)
    data = [(0.025, tr.V, tr.I)]
    rates, theta = _network()
    sp = ShootingProblem(rates, model, data, n_shooting=0)
    cb = ChargeBalance(rates, model, data)
    r1, J1 = sp.evaluate(theta, True, 1)
    r2, J2 = cb.evaluate(theta, True)
    assert np.array_equal(r1, r2) and np.array_equal(J1, J2)
    assert cb.cost(theta) == 0.5 * float(r1 @ r1)
    with pytest.raises(ValueError, match="gates"):
        ChargeBalance(GateFamily(2, -20.0, 62.0), model, data)
