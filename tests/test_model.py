"""Symbolic models: structure, parameters, rates, singular limits, LaTeX, round trips."""

import math

import numpy as np
import pytest
import sympy
from sympy.parsing.latex import parse_latex

import hhsym.library as library
from hhsym.errors import HHSymError, ModelError, UnknownNameError
from hhsym.model import Channel, ConductanceModel, Gate
from hhsym.symbolic import V, parse_expression, removable_singularities


def test_hh_structure(hh):
    assert hh.states == ("V", "m", "h", "n")
    assert hh.params == {"C_m": 1.0, "g_Na": 120.0, "E_Na": 50.0, "g_K": 36.0, "E_K": -77.0,
                         "g_L": 0.3, "E_L": -54.387}
    assert set(hh.rates) == {"alpha_m", "beta_m", "alpha_h", "beta_h", "alpha_n", "beta_n"}
    assert all(V in e.free_symbols for e in hh.rates.values())
    assert [g.power for g in hh.gates] == [3, 1, 4]
    assert "Hodgkin" in hh.citation


def test_rates_match_published_formulas(hh):
    v = np.linspace(-90, 40, 131) + 0.37  # avoid the singular points
    r = hh.evaluate_rates(v)
    np.testing.assert_allclose(r["alpha_n"], 0.01 * (v + 55) / (1 - np.exp(-(v + 55) / 10)), rtol=1e-13)
    np.testing.assert_allclose(r["beta_n"], 0.125 * np.exp(-(v + 65) / 80), rtol=1e-13)
    np.testing.assert_allclose(r["alpha_m"], 0.1 * (v + 40) / (1 - np.exp(-(v + 40) / 10)), rtol=1e-13)
    np.testing.assert_allclose(r["beta_m"], 4 * np.exp(-(v + 65) / 18), rtol=1e-13)
    np.testing.assert_allclose(r["alpha_h"], 0.07 * np.exp(-(v + 65) / 20), rtol=1e-13)
    np.testing.assert_allclose(r["beta_h"], 1 / (1 + np.exp(-(v + 35) / 10)), rtol=1e-13)


def test_exact_limits_at_singular_voltages(hh):
    r = hh.evaluate_rates([-55.0, -40.0])
    assert r["alpha_n"][0] == pytest.approx(0.1, rel=1e-15)   # 0.01 * 10
    assert r["alpha_m"][1] == pytest.approx(1.0, rel=1e-15)   # 0.1 * 10
    # continuity around the guarded window: no jump at its edges, ~1e-12 relative
    for v0, key, lim in ((-55.0, "alpha_n", 0.1), (-40.0, "alpha_m", 1.0)):
        v = v0 + np.array([-2e-3, -1.0001e-3, -0.9999e-3, -1e-6, 0.0, 1e-6, 0.9999e-3, 1.0001e-3, 2e-3])
        with np.errstate(invalid="ignore"):
            exact = lim * (v - v0) / 10 / -np.expm1(-(v - v0) / 10)
        exact[v == v0] = lim
        np.testing.assert_allclose(hh.evaluate_rates(v)[key], exact, rtol=1e-11)


def test_exact_limits_in_compiled_kernels(hh):
    """The generated numba code evaluates the same limits (via rhs at V = -55 and -40 mV)."""
    from hhsym.codegen import compile_model

    k = compile_model(hh, "rk4")
    P = np.array([list(hh.params.values())] * 2).T.copy()
    Y = np.array([[-55.0, -40.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # m = h = n = 0: d_x = alpha_x
    D = np.empty_like(Y)
    k.rhs_block(Y, np.zeros(2), P, D)
    assert D[3, 0] == pytest.approx(0.1, rel=1e-14)
    assert D[1, 1] == pytest.approx(1.0, rel=1e-14)
    assert np.all(np.isfinite(D))


def test_symbolic_singularities_with_parameters():
    B = sympy.Symbol("B", real=True)
    expr = parse_expression("A*(V - B)/(1 - exp(-(V - B)/k))", allowed=("A", "B", "k"))
    (root, poly), = removable_singularities(expr)
    assert sympy.simplify(root - B) == 0
    assert sympy.simplify(poly.subs(V, B) - sympy.Symbol("A", real=True) * sympy.Symbol("k", real=True)) == 0


def test_with_params_and_overrides(hh):
    m2 = hh.with_params(g_Na=100.0, E_K=-80.0)
    assert m2.params["g_Na"] == 100.0 and m2.params["E_K"] == -80.0
    assert hh.params["g_Na"] == 120.0  # immutable
    assert m2.rates == hh.rates
    assert library.hodgkin_huxley(C_m=0.1, E_Na=55.0).params["C_m"] == 0.1
    with pytest.raises(UnknownNameError, match="g_XX"):
        hh.with_params(g_XX=1.0)
    with pytest.raises(UnknownNameError, match="gNa"):
        library.hodgkin_huxley(gNa=1.0)
    with pytest.raises(HHSymError, match="C_m"):
        hh.with_params(C_m=-1.0)
    with pytest.raises(HHSymError, match="g_K"):
        hh.with_params(g_K=float("nan"))


def test_with_rates(hh):
    m2 = hh.with_rates({"beta_m": "A*exp(-V/s)"}, params={"A": 0.1, "s": 18.0})
    assert m2.rate_params == {"A": 0.1, "s": 18.0}
    assert m2.evaluate_rates([-20.0])["beta_m"][0] == pytest.approx(0.1 * math.exp(20 / 18))
    with pytest.raises(UnknownNameError, match="gamma_m"):
        hh.with_rates({"gamma_m": "1"})
    with pytest.raises(ModelError, match="unknown name"):
        hh.with_rates({"beta_m": "A*exp(-V/s)"})


def test_expression_errors_show_text_and_position():
    with pytest.raises(ModelError) as info:
        Gate("m", "0.1*(V + 40))", "1")
        ConductanceModel([Channel("Na", 1, 50, [Gate("m", "0.1*(V + 40))", "1")])])
    text = str(info.value)
    assert "0.1*(V + 40))" in text and "alpha_m" in text


def test_model_validation():
    with pytest.raises(ModelError, match="unique"):
        ConductanceModel([Channel("K", 1, -80, [Gate("n", "1", "1")]), Channel("A", 1, -80, [Gate("n", "1", "1")])])
    with pytest.raises(ModelError, match="power"):
        Gate("n", "1", "1", power=0)
    with pytest.raises(ModelError, match="gate name"):
        Gate("1n", "1", "1")
    with pytest.raises(HHSymError, match="g_K"):
        Channel("K", -1.0, -80.0)


def _normalise(expr):
    """Map parse_latex's symbol names (g_{N*a}) to hhsym's (g_Na)."""
    return expr.xreplace({s: sympy.Symbol(str(s).replace("{", "").replace("}", "").replace("*", ""))
                          for s in expr.free_symbols})


def test_latex_parses_as_the_system(hh):
    lines = hh.latex(environment="lines")
    assert len(lines) == 1 + 3 + 6
    names = {s: sympy.Symbol(s) for s in ("I", "V", "m", "h", "n", "g_Na", "E_Na", "g_K", "E_K", "g_L", "E_L")}
    membrane = _normalise(parse_latex(lines[0][1]))
    expected = (names["I"] - names["g_Na"] * names["m"] ** 3 * names["h"] * (names["V"] - names["E_Na"])
                - names["g_K"] * names["n"] ** 4 * (names["V"] - names["E_K"])
                - names["g_L"] * (names["V"] - names["E_L"]))
    assert sympy.simplify(membrane - expected) == 0
    gate = _normalise(parse_latex(lines[1][1]))
    a, b, m = sympy.Symbol("alpha_m"), sympy.Symbol("beta_m"), names["m"]
    assert sympy.simplify(gate - (a * (1 - m) - b * m)) == 0
    v = np.array([-80.3, -52.1, -12.7, 25.9])
    values = hh.evaluate_rates(v)
    for lhs, rhs in lines[4:]:
        key = lhs.replace("\\", "").replace("{", "").replace("}", "")
        parsed = _normalise(parse_latex(rhs))
        f = sympy.lambdify(sympy.Symbol("V"), parsed.subs(sympy.Symbol("e"), sympy.E))
        np.testing.assert_allclose([float(f(x)) for x in v], values[key], rtol=1e-12)
    block = hh.latex()
    assert block.startswith("\\begin{align*}") and "g_{Na} = 120" in block


def test_dict_round_trip_is_exact(hh):
    ka = Channel("A", 2.0, -80.0, [Gate("a", "p1*exp(V/p2)", "0.3", 3)])
    model = ConductanceModel([*hh.channels, ka], C_m=0.9, params={"p1": 0.02, "p2": 15.0}, name="x")
    again = ConductanceModel.from_dict(model.to_dict())
    assert again == model
    assert again.rates == model.rates and again.params == model.params
    assert again.structure_key() == model.structure_key()


def test_singularity_fallback_when_sympy_cannot_expand(monkeypatch):
    """If sympy's series fails, a linear bridge across the window still gives the limit (~1e-7)."""
    import hhsym.symbolic as symbolic

    def refuse(*args, **kwargs):
        raise NotImplementedError

    monkeypatch.setattr(symbolic, "_taylor", refuse)
    expr = parse_expression("0.03*(V + 37.1)/(1 - exp(-(V + 37.1)/7.3)) + 0.2/(1 + exp(-(V + 70)/1.1))")
    symbolic.removable_singularities.cache_clear()
    symbolic.safe_expression.cache_clear()
    f = sympy.lambdify(V, symbolic.safe_expression(expr), "numpy")
    exact = 0.03 * 7.3 + 0.2 / (1 + math.exp(-(-37.1 + 70) / 1.1))
    assert float(f(np.array(-37.1))) == pytest.approx(exact, rel=1e-6)
    symbolic.removable_singularities.cache_clear()
    symbolic.safe_expression.cache_clear()


def test_singularity_found_numerically_when_sympy_simplify_fails(monkeypatch):
    """sympy's ``simplify`` can raise on its own NaN comparisons ("Invalid NaN comparison", seen while a
    distillation differentiated a fitted form by its constants): a parametric root's 0/0 is then decided
    at random parameter values, and a pole is still a pole."""
    import hhsym.symbolic as symbolic

    def refuse(*args, **kwargs):
        raise TypeError("Invalid NaN comparison")

    a, b, c = sympy.symbols("a b c", positive=True)
    linoid = a * (V + b) / (1 - sympy.exp(-(V + b) / c))
    pole = a / (V + b) + a
    symbolic.removable_singularities.cache_clear()
    monkeypatch.setattr(sympy, "simplify", refuse)
    try:
        (root, poly), = symbolic.removable_singularities(linoid)
        assert sympy.simplify is refuse and root == -b
        values = {a: 0.1, b: 40.0, c: 10.0}
        assert float(poly.subs(values).subs(V, -40.0)) == pytest.approx(1.0, rel=1e-6)  # a * c (a bridge, ~1e-7)
        assert symbolic.removable_singularities(pole) == ()
    finally:
        symbolic.removable_singularities.cache_clear()


@pytest.mark.parametrize("text, root", [
    ("0.1*(V + 40)/(1 - exp(-(V + 40)/10))", -40),
    ("0.100707*(V + 40.0765)/(1 - exp(-(V + 40.0765)/9.93909))", -40.0765),
    ("(V + 1)**2/(1 - exp(-(V + 1)))", -1),
    ("(V + 1)**2/(1 - exp(-(V + 1)))**2", -1),  # double zero of the denominator: sympy.series path
])
def test_taylor_quotient_matches_sympy_series(text, root):
    """The quotient-of-series Taylor polynomial equals sympy's series (it replaces it for speed)."""
    from hhsym.symbolic import _taylor

    expr = parse_expression(text)
    root = sympy.Float(root) if isinstance(root, float) else sympy.Integer(root)
    fast = _taylor(expr, root)
    slow = sympy.expand(sympy.series(expr, V, root, 4).removeO())
    for dv in (-0.5, 0.0, 0.25):
        at = root + sympy.Float(dv)
        assert float(fast.subs(V, at)) == pytest.approx(float(slow.subs(V, at)), rel=1e-12, abs=1e-15)


def test_taylor_quotient_with_parameters_and_where_sympy_series_fails():
    """Symbolic singular points, and a sum sympy.series cannot expand, get their exact limits."""
    from hhsym.symbolic import _taylor

    a, b = sympy.symbols("a_x b_x", real=True)
    expr = a * (V + b) / (1 - sympy.exp(-(V + b) / 10))
    poly = _taylor(expr, -b)
    assert sympy.simplify(poly.subs(V, -b) - 10 * a) == 0
    assert sympy.simplify(sympy.diff(poly, V).subs(V, -b) - a / 2) == 0  # d/dV of a*u/(1-e^(-u/10)) at 0
    expr = parse_expression("0.03*(V + 37.1)/(1 - exp(-(V + 37.1)/7.3)) + 0.2/(1 + exp(-(V + 70)/1.1))")
    poly = _taylor(expr, sympy.Float(-37.1))
    exact = 0.03 * 7.3 + 0.2 / (1 + math.exp(-(-37.1 + 70) / 1.1))
    assert float(poly.subs(V, -37.1)) == pytest.approx(exact, rel=1e-12)
    near = -37.1 + 0.3
    assert float(poly.subs(V, near)) == pytest.approx(float(expr.subs(V, near)), rel=1e-8)


def test_structure_key_is_computed_once_and_tracks_the_rates(hh):
    model = hh.with_params(g_K=30.0)
    assert "_structure_key" not in model.__dict__
    key = model.structure_key()
    assert model.__dict__["_structure_key"] == key == model._compute_structure_key()
    assert model.structure_key() is key
    assert key == hh.structure_key()  # parameter values do not enter
    other = hh.with_rates({"alpha_n": "0.02*exp(-(V + 65)/80)"})
    assert other.structure_key() != key
