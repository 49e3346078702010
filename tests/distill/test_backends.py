"""Tests of the symbolic-regression backends (hhsym.distill)."""

import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from hhsym.distill import (
    Candidate,
    FormsBackend,
    OperonBackend,
    PySRBackend,
    RateFit,
    candidates_from_equations,
    get_backend,
    pysr_status,
)
from hhsym.distill.base import REL_ERROR_FLOOR, bic, check_samples, pareto_front
from hhsym.estimate.rates.closed_forms import linoid_shape
from hhsym.estimate.rates.formfit import fit_family
from hhsym.distill.parsing import parse_expression
from hhsym.distill.pysr_backend import julia_status, read_hall_of_fame
from hhsym.errors import (
    ArgumentTypeError,
    BackendUnavailableError,
    InvalidArgumentError,
    ModelError,
    UnknownNameError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
V_GRID = np.arange(-75.0, 21.0, 1.0)  # mV, includes the linoid singularities
V_SYM = sympy.Symbol("V", real=True)


def _linoid(A, B, k):
    return lambda V: A * linoid_shape((V - B) / k)


def _exponential(A, k):
    return lambda V: A * np.exp(V / k)


def _sigmoid(A, B, k):
    return lambda V: A / (1.0 + np.exp(-(V - B) / k))


# Hodgkin-Huxley (modern convention): family and the identifiable constants.
HH = {
    # alpha_n = 0.01 (V+55) / (1 - exp(-(V+55)/10)) = 0.1 * x/(1-e^-x), x=(V+55)/10
    "alpha_n": ("linoid", {"A": 0.1, "B": -55.0, "k": 10.0}),
    "beta_n": ("exponential", {"A": 0.125 * math.exp(-65 / 80), "k": -80.0}),
    "alpha_m": ("linoid", {"A": 1.0, "B": -40.0, "k": 10.0}),
    "beta_m": ("exponential", {"A": 4.0 * math.exp(-65 / 18), "k": -18.0}),
    "alpha_h": ("exponential", {"A": 0.07 * math.exp(-65 / 20), "k": -20.0}),
    "beta_h": ("sigmoid", {"A": 1.0, "B": -35.0, "k": 10.0}),
}
MAKERS = {"linoid": _linoid, "exponential": _exponential, "sigmoid": _sigmoid}


def hh_rate(name, V=V_GRID):
    form, p = HH[name]
    return MAKERS[form](**p)(V)


def assert_params(got, want, rtol):
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rtol), (key, got, want)


# ---------------------------------------------------------------- HH rates


@pytest.mark.parametrize("name", sorted(HH))
def test_hh_rate_recovered_noise_free(name):
    fit = FormsBackend().fit_rate(V_GRID, hh_rate(name), name)
    form, params = HH[name]
    assert isinstance(fit, RateFit) and fit.name == name and fit.backend == "forms"
    assert fit.best.form == form
    assert_params(fit.best.params, params, 0.005)
    assert fit.best.max_rel_error < 1e-5
    assert fit.best.expr.free_symbols == {V_SYM}
    # no fallback was needed
    assert not any("operon" in n for n in fit.notes)


@pytest.mark.parametrize("name", sorted(HH))
def test_hh_rate_recovered_with_two_percent_noise(name):
    rng = np.random.default_rng(sorted(HH).index(name))
    r = hh_rate(name) * (1.0 + 0.02 * rng.standard_normal(V_GRID.size))
    fit = FormsBackend(fallback=None).fit_rate(V_GRID, r, name)
    form, params = HH[name]
    assert fit.best.form == form
    assert_params(fit.best.params, params, 0.03)


def test_hh_expressions_read_like_the_literature():
    fit = FormsBackend().fit_rate(V_GRID, hh_rate("alpha_m"), "alpha_m")
    text = str(fit.best.expr)
    assert "(V + 40.0)" in text and "/10.0" in text, text
    want = 0.1 * (V_SYM + 40) / (1 - sympy.exp(-(V_SYM + 40) / 10))
    assert float((fit.best.expr - want).subs(V_SYM, -20.0)) == pytest.approx(0.0, abs=1e-9)
    # the removable singularity at V = B evaluates to its limit A
    assert fit.best(np.array([-40.0]))[0] == pytest.approx(1.0, rel=1e-8)


# ---------------------------------------------------- made-up rate functions

MADE_UP = {
    "sigmoid_negative_k": (
        _sigmoid(2.5, -50.0, -7.0), "sigmoid", {"A": 2.5, "B": -50.0, "k": -7.0}
    ),
    "steep_sigmoid": (_sigmoid(3.0, 5.0, 4.0), "sigmoid", {"A": 3.0, "B": 5.0, "k": 4.0}),
    "linoid_negative_k": (_linoid(1.4, -25.0, -5.0), "linoid", {"A": 1.4, "B": -25.0, "k": -5.0}),
    "rising_exponential": (_exponential(0.0758, 15.0), "exponential", {"A": 0.0758, "k": 15.0}),
    "exp_plus_exp": (
        lambda V: 0.3 * np.exp(V / 25.0) + 0.05 * np.exp(-V / 12.0),
        "sum(exponential,exponential)",
        {"A": (0.05, 0.3), "k": (-12.0, 25.0)},
    ),
    "constant_plus_sigmoid": (
        lambda V: 0.05 + _sigmoid(1.5, -30.0, 6.0)(V),
        "sum(constant,sigmoid)",
        {"c1": 0.05, "A2": 1.5, "B2": -30.0, "k2": 6.0},
    ),
}


def assert_made_up(fit, form, params, rtol):
    assert fit.best.form == form
    if isinstance(params.get("A"), tuple):  # sum of two of a kind, in either order
        p = fit.best.params
        pairs = sorted([(p["k1"], p["A1"]), (p["k2"], p["A2"])])
        for (k, A), k_want, A_want in zip(pairs, params["k"], params["A"]):
            assert k == pytest.approx(k_want, rel=rtol)
            assert A == pytest.approx(A_want, rel=rtol)
    else:
        assert_params(fit.best.params, params, rtol)


@pytest.mark.parametrize("name", sorted(MADE_UP))
def test_made_up_rate_recovered_noise_free(name):
    f, form, params = MADE_UP[name]
    V = V_GRID + 0.5  # another grid than the HH tests
    fit = FormsBackend().fit_rate(V, f(V), name)
    assert_made_up(fit, form, params, 0.005)
    assert fit.best.max_rel_error < 1e-5


@pytest.mark.parametrize("name", ["sigmoid_negative_k", "exp_plus_exp", "linoid_negative_k"])
def test_made_up_rate_recovered_with_noise(name):
    f, form, params = MADE_UP[name]
    rng = np.random.default_rng(7)
    r = f(V_GRID) * (1.0 + 0.015 * rng.standard_normal(V_GRID.size))
    fit = FormsBackend(fallback=None).fit_rate(V_GRID, r, name)
    assert_made_up(fit, form, params, 0.05)


def test_wrong_family_is_rejected_by_error_and_bic():
    r = _sigmoid(1.0, -35.0, 10.0)(V_GRID)
    exp_only = fit_family("exponential", V_GRID, r)[0]
    err = np.max(np.abs(exp_only.evaluate(V_GRID) / r - 1))
    assert err > 0.5
    fit = FormsBackend().fit_rate(V_GRID, r)
    by_form = {c.form: c for c in fit.front}
    assert fit.best.form == "sigmoid"
    assert by_form["exponential"].bic > by_form["sigmoid"].bic + 100
    assert by_form["exponential"].max_rel_error > 0.5


def test_exponential_in_disguise_is_rejected():
    fit = FormsBackend().fit_rate(V_GRID, hh_rate("beta_m"))
    notes = " ".join(fit.notes)
    assert "rejected sigmoid" in notes and "midpoint" in notes
    assert {c.form for c in fit.front} <= {"constant", "exponential"}


def test_too_steep_slope_is_rejected():
    r = 0.1 + _sigmoid(1.0, -20.3, 0.2)(V_GRID)
    fit = FormsBackend(fallback=None).fit_rate(V_GRID, r)
    assert "slope" in " ".join(fit.notes)
    for c in fit.front:
        for key, value in c.params.items():
            if key.startswith("k") and c.form != "constant":
                assert abs(value) >= 0.5


def test_fit_is_deterministic():
    rng = np.random.default_rng(3)
    r = hh_rate("alpha_n") * (1 + 0.01 * rng.standard_normal(V_GRID.size))
    a = FormsBackend(fallback=None).fit_rate(V_GRID, r)
    b = FormsBackend(fallback=None).fit_rate(V_GRID, r)
    assert [c.expr for c in a.front] == [c.expr for c in b.front]
    assert a.best.expr == b.best.expr


def test_candidates_and_front_contract():
    fit = FormsBackend().fit_rate(V_GRID, hh_rate("beta_h"), "beta_h")
    assert fit.best in fit.front
    complexities = [c.complexity for c in fit.front]
    losses = [c.loss for c in fit.front]
    assert complexities == sorted(complexities)
    assert all(l1 > l2 for l1, l2 in zip(losses, losses[1:]))  # non-dominated
    assert fit.seconds > 0
    for c in fit.front:
        assert isinstance(c, Candidate)
        assert isinstance(c.complexity, int) and c.complexity >= 1
        assert c.loss >= 0 and c.max_rel_error >= 0 and c.backend == "forms"
        assert all(isinstance(v, float) for v in c.params.values())
        r_hat = c(V_GRID)
        rel = np.abs(r_hat / hh_rate("beta_h") - 1)
        assert np.max(rel) == pytest.approx(c.max_rel_error, rel=1e-6, abs=1e-12)


def test_bic_formula_and_floor():
    n = 50
    assert bic(np.zeros(n), 3) == pytest.approx(n * math.log(REL_ERROR_FLOOR**2) + 3 * math.log(n))
    e = np.full(n, 0.1)
    assert bic(e, 2) == pytest.approx(n * math.log(0.01) + 2 * math.log(n))
    assert bic(np.array([np.inf] + [0.0] * 9), 1) == math.inf


def test_pareto_front_helper():
    mk = lambda c, loss: Candidate(sympy.Float(1), c, loss, 0.0, "constant")  # noqa: E731
    front = pareto_front([mk(3, 0.5), mk(1, 1.0), mk(3, 0.1), mk(5, 0.2), mk(7, 0.01)])
    assert [(c.complexity, c.loss) for c in front] == [(1, 1.0), (3, 0.1), (7, 0.01)]


# ---------------------------------------------------------- input checking


@pytest.mark.parametrize(
    "V, r, cls, words",
    [
        (np.zeros((10, 2)), np.ones(10), InvalidArgumentError, ["V", "1-D"]),
        (V_GRID, np.ones(20), InvalidArgumentError, ["r", "as many"]),
        (np.arange(5.0), np.ones(5), InvalidArgumentError, ["V", "at least 10"]),
        (V_GRID, np.where(V_GRID > 0, np.nan, 1.0), InvalidArgumentError, ["r", "finite"]),
        (V_GRID, np.where(V_GRID > 0, -1.0, 1.0), InvalidArgumentError, ["r", "positive"]),
        (V_GRID, np.where(V_GRID > 0, 0.0, 1.0), InvalidArgumentError, ["r", "positive"]),
        (["a"] * 12, np.ones(12), ArgumentTypeError, ["V", "array"]),
        (np.zeros(12), np.ones(12), InvalidArgumentError, ["V", "distinct"]),
    ],
)
def test_invalid_samples_are_named(V, r, cls, words):
    with pytest.raises(cls) as info:
        FormsBackend().fit_rate(V, r)
    for w in words:
        assert w in str(info.value)


def test_invalid_name_and_options():
    with pytest.raises(ArgumentTypeError, match="name"):
        FormsBackend().fit_rate(V_GRID, hh_rate("beta_h"), name=3)
    with pytest.raises(UnknownNameError, match="fallback"):
        FormsBackend(fallback="pysr").fit_rate(V_GRID, hh_rate("beta_h"))
    with pytest.raises(InvalidArgumentError, match="fallback_threshold"):
        FormsBackend(fallback_threshold=-1).fit_rate(V_GRID, hh_rate("beta_h"))
    with pytest.raises(UnknownNameError, match="family"):
        fit_family("gaussian", V_GRID, hh_rate("beta_h"))


def test_check_samples_sorts_by_voltage():
    V, r = check_samples(V_GRID[::-1], hh_rate("beta_h")[::-1])
    assert np.all(np.diff(V) > 0)
    assert np.allclose(r, hh_rate("beta_h"))


# ------------------------------------------------------- open forms: operon


def test_parse_expression_operon_and_julia_syntax():
    e = parse_expression("((-0.220274) + (0.222329 * exp(((-0.045475) * X1))))", variables=("X1",))
    want = -0.220274 + 0.222329 * sympy.exp(-0.045475 * V_SYM)
    assert float((e - want).subs(V_SYM, 3.0)) == pytest.approx(0.0, abs=1e-12)
    e = parse_expression("(exp(x0 * -5.5f-2) * 1.0e-1) ^ 2")
    assert e.free_symbols == {V_SYM}
    assert float(e.subs(V_SYM, 0.0)) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "text",
    ["__import__('os').system('true')", "gamma(V)", "V + y", "exp(V", "lambda: 1", "V;1", ""],
)
def test_parse_expression_refuses_anything_else(text):
    with pytest.raises(ModelError):
        parse_expression(text)


@pytest.mark.slow
def test_operon_fallback_when_no_form_fits():
    # a bell-shaped rate: no literature form (nor sum of two) explains it
    r = 0.05 + np.exp(-(((V_GRID + 30.0) / 15.0) ** 2))
    fit = FormsBackend().fit_rate(V_GRID, r, "bell")
    assert any("operon fallback" in n for n in fit.notes)
    forms = {c.form for c in fit.front}
    assert "operon" in forms
    assert fit.best.form == "operon"
    assert fit.best.max_rel_error < 0.05
    assert fit.best.expr.free_symbols == {V_SYM}
    assert np.allclose(fit.best(V_GRID), r, rtol=0.05)


def test_operon_backend_is_seeded_and_bounded():
    small = dict(population_size=60, generations=8, max_evaluations=5000, targets=("log",))
    r = hh_rate("beta_m")
    a = OperonBackend(random_state=3, **small).fit_rate(V_GRID, r)
    b = OperonBackend(random_state=3, **small).fit_rate(V_GRID, r)
    assert [str(c.expr) for c in a.front] == [str(c.expr) for c in b.front]
    assert all(c.form == "operon" and c.backend == "operon" for c in a.front)
    # exp(a + b V) is within reach of even a tiny search of log r
    assert a.best.max_rel_error < 1e-3
    with pytest.raises(InvalidArgumentError, match="targets"):
        OperonBackend(targets=("sqrt",)).fit_rate(V_GRID, r)


# ---------------------------------------------------------------- PySR


def test_hall_of_fame_fixture_is_read_in_pysr_format():
    rows = read_hall_of_fame(FIXTURES / "pysr_hall_of_fame.csv")
    assert [r["complexity"] for r in rows] == [1, 5, 6, 8]
    assert rows[2]["equation"] == "(exp(V * -0.055555556) * 0.10808722)"


def test_candidates_from_hall_of_fame_with_samples():
    r = hh_rate("beta_m")
    cands = candidates_from_equations(FIXTURES / "pysr_hall_of_fame.csv", V_GRID, r)
    assert all(c.form == "pysr" and c.backend == "pysr" for c in cands)
    # the last two rows agree to six digits: kept once
    assert len(cands) == 3
    best = min(cands, key=lambda c: c.bic)
    assert best.max_rel_error < 1e-5
    assert best.expr.free_symbols == {V_SYM}
    assert float(best.expr.subs(V_SYM, -65.0)) == pytest.approx(4.0, rel=1e-5)
    assert cands[0].expr == sympy.Float(0.0689076)


def test_candidates_from_hall_of_fame_without_samples():
    cands = candidates_from_equations(str(FIXTURES / "pysr_hall_of_fame.csv"))
    assert [c.loss for c in cands] == [0.62850805, 0.29342306, 6.7973609e-16]
    assert all(c.max_rel_error is None for c in cands)


def test_candidates_from_equations_dataframe():
    pd = pytest.importorskip("pandas")
    plain_V = sympy.Symbol("V")  # PySR's own symbol, without assumptions
    table = pd.DataFrame({
        "complexity": [1, 6],
        "loss": [0.6, 1e-15],
        "score": [0.0, 3.0],
        "equation": ["0.0689", "(exp(V * -0.055555556) * 0.10808722)"],
        "sympy_format": [sympy.Float(0.0689), 0.10808722 * sympy.exp(-0.055555556 * plain_V)],
    })
    cands = candidates_from_equations(table, V_GRID, hh_rate("beta_m"))
    assert cands[1].expr.free_symbols == {V_SYM}
    assert cands[1].max_rel_error < 1e-5
    # capitalised columns, no sympy_format, PySR's default variable name
    table = pd.DataFrame({"Complexity": [6], "Loss": [1e-15],
                          "Equation": ["(exp(x0 * -0.055555556) * 0.10808722)"]})
    (c,) = candidates_from_equations(table, V_GRID, hh_rate("beta_m"))
    assert c.max_rel_error < 1e-5


def test_candidates_from_equations_rejects_bad_tables(tmp_path):
    bad = tmp_path / "hof.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InvalidArgumentError, match="Complexity,Loss,Equation"):
        candidates_from_equations(bad)
    with pytest.raises(ArgumentTypeError, match="table"):
        candidates_from_equations(42)
    with pytest.raises(ModelError, match="the function 'gamma' is not accepted"):
        candidates_from_equations([{"complexity": 3, "loss": 0.1, "equation": "gamma(x0)"}])


@pytest.fixture
def no_julia(monkeypatch, tmp_path):
    """An environment where no Julia can be found."""
    for var in ("PYTHON_JULIAPKG_EXE", "PYTHON_JULIAPKG_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JULIA_DEPOT_PATH", str(tmp_path / "depot"))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "project"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


def test_julia_status_without_and_with_julia(no_julia, monkeypatch, tmp_path):
    assert julia_status() is None
    fake = tmp_path / "bin" / "julia"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho julia version 1.11.0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert julia_status() == str(fake)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake))
    assert julia_status() == str(fake)


def test_pysr_backend_fails_fast_without_julia(no_julia):
    had_pysr = "pysr" in sys.modules
    with pytest.raises(BackendUnavailableError) as info:
        PySRBackend().fit_rate(V_GRID, hh_rate("beta_m"))
    msg = str(info.value)
    assert "Julia" in msg and "pip install hhsym[pysr]" in msg and "PYTHON_JULIAPKG_EXE" in msg
    assert ("pysr" in sys.modules) == had_pysr  # nothing was imported


def test_pysr_options_follow_the_documented_settings():
    opts = PySRBackend(random_state=5).regressor_options()
    assert opts["binary_operators"] == ["+", "-", "*", "/"]
    assert opts["unary_operators"] == ["exp"]
    assert opts["nested_constraints"] == {"exp": {"exp": 0}}
    assert opts["deterministic"] is True and opts["parallelism"] == "serial"
    assert opts["random_state"] == 5 and opts["maxsize"] == 20
    with pytest.raises(InvalidArgumentError, match="niterations"):
        PySRBackend(niterations=0).regressor_options()


PYSR_OK, PYSR_WHY = pysr_status()


@pytest.mark.skipif(not PYSR_OK, reason=f"PySR cannot run here: {PYSR_WHY}")
def test_pysr_integration_on_beta_m():  # pragma: no cover - needs Julia
    fit = PySRBackend(niterations=30, random_state=0).fit_rate(V_GRID, hh_rate("beta_m"), "beta_m")
    assert fit.backend == "pysr"
    assert all(c.form == "pysr" for c in fit.front)
    assert fit.best.max_rel_error < 0.01
    assert fit.best.expr.has(sympy.exp)


# ------------------------------------------------------------- registry


def test_get_backend_names():
    assert isinstance(get_backend(), FormsBackend)
    assert isinstance(get_backend("forms", fallback=None), FormsBackend)
    assert isinstance(get_backend("operon"), OperonBackend)
    assert isinstance(get_backend("pysr"), PySRBackend)  # constructing never needs Julia
    with pytest.raises(UnknownNameError) as info:
        get_backend("eureqa")
    for name in ("forms", "operon", "pysr", "auto"):
        assert name in str(info.value)
    with pytest.raises(ArgumentTypeError, match="options"):
        get_backend("forms", colour="red")


def test_auto_backend_uses_forms_without_julia(no_julia):
    auto = get_backend("auto")
    chosen = auto.resolve()
    assert isinstance(chosen, FormsBackend) and chosen.fallback == "operon"
    fit = auto.fit_rate(V_GRID, hh_rate("beta_h"), "beta_h")
    assert fit.backend == "forms" and fit.best.form == "sigmoid"


@pytest.mark.slow
def test_importing_distill_does_not_import_pysr():
    code = "import hhsym.distill, sys; print('pysr' in sys.modules, 'juliacall' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True).stdout.split()
    assert out == ["False", "False"]


def test_distilled_linoid_works_with_the_model_singularity_guard():
    symbolic = pytest.importorskip("hhsym.symbolic")
    fit = FormsBackend().fit_rate(V_GRID, hh_rate("alpha_n"), "alpha_n")
    assert fit.best.expr.free_symbols == {symbolic.V}
    guarded = sympy.lambdify(symbolic.V, symbolic.safe_expression(fit.best.expr), "numpy")
    with np.errstate(invalid="ignore"):  # numpy's select evaluates both branches
        assert float(guarded(np.float64(-55.0))) == pytest.approx(0.1, rel=1e-6)
