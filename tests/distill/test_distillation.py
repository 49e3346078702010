"""Tests of hhsym.distill.distill: forms, selection, refinement, JSON and LaTeX export."""

import json
import math
import os

import numpy as np
import pytest
import sympy
from sympy.parsing.latex import parse_latex

from hhsym import library
from hhsym.distill import (
    Candidate,
    Distillation,
    RateFit,
    distill,
    distill_files,
    load_model,
    select_candidate,
)
from hhsym.distill.selection import is_family_form
from hhsym.export.document import write_text
from hhsym.estimate.refine import network_loss, parametrise
from hhsym.estimate.losses.shooting_loss import ShootingLoss
from hhsym.errors import (
    ArgumentTypeError,
    HHSymError,
    InvalidArgumentError,
    ModelError,
    NotFittedError,
    UnknownNameError,
)
from hhsym.estimate import RateEstimator
from hhsym.estimate.checks import as_recordings
from hhsym.estimate.rates.network import GateNetworks, GateRate
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise
from hhsym.symbolic import V, parse_expression, safe_expression

pytestmark = pytest.mark.slow  # distillation of real fits, with refinement

# Hodgkin-Huxley: family and constants in the forms backend's parametrisation
# (exponential A e^{V/k}; linoid A x/(1-e^{-x}), sigmoid A/(1+e^{-x}), x = (V-B)/k).
HH = {
    "alpha_m": ("linoid", {"A": 1.0, "B": -40.0, "k": 10.0}),
    "beta_m": ("exponential", {"A": 4.0 * math.exp(-65 / 18), "k": -18.0}),
    "alpha_h": ("exponential", {"A": 0.07 * math.exp(-65 / 20), "k": -20.0}),
    "beta_h": ("sigmoid", {"A": 1.0, "B": -35.0, "k": 10.0}),
    "alpha_n": ("linoid", {"A": 0.1, "B": -55.0, "k": 10.0}),
    "beta_n": ("exponential", {"A": 0.125 * math.exp(-65 / 80), "k": -80.0}),
}
V_RANGE = (-76.0, 35.0)  # mV, what an estimator fitted on spiking HH traces supports


class StubEstimator:
    """Estimator-like object whose 'networks' are known closed forms times a smooth error."""

    def __init__(self, truth, v_range=V_RANGE, error=0.0):
        self.model = truth
        self.truth = truth
        self.v_range_ = v_range
        self.error = error

    def predict_rates(self, V_values):
        V_values = np.asarray(V_values, dtype=float)
        rates = self.truth.evaluate_rates(V_values)
        return {k: r * (1.0 + self.error * np.sin(V_values / 7.0 + i))
                for i, (k, r) in enumerate(rates.items())}


def _max_constant_error(constants):
    return max(abs(constants[k][p] - v) / abs(v) for k, (_, ref) in HH.items() for p, v in ref.items())


@pytest.fixture(scope="module")
def hh():
    return library.hodgkin_huxley()


@pytest.fixture(scope="module")
def exact(hh):
    """Distillation of the exact HH rates (no refinement)."""
    return distill(StubEstimator(hh), backend="forms", refine=False)


@pytest.fixture(scope="module")
def traces(hh):
    return [simulate(hh, OUNoise(mean=7.0 + 3 * k, sigma=6.0, tau=3.0, seed=11 + k), 120.0, dt=0.025)
            for k in range(2)]


# ---------------------------------------------------------------------- forms
def test_sampling_only_where_rates_matter(hh):
    """Network values where a rate is < 5 % of alpha + beta do not steer the choice of form."""
    class Wild(StubEstimator):  # wrong by up to 50x where each rate does not matter
        def predict_rates(self, V_values):
            out = super().predict_rates(V_values)
            for g in ("m", "h", "n"):
                a, b = out[f"alpha_{g}"], out[f"beta_{g}"]
                for k, r in ((f"alpha_{g}", a), (f"beta_{g}", b)):
                    out[k] = np.where(r < 0.01 * (a + b), r * np.exp(-2.0 - 2.0 * np.cos(V_values / 3.0)), r)
            return out

    dist = distill(Wild(hh, error=0.02), backend="forms", refine=False)
    blind = distill(Wild(hh, error=0.02), backend="forms", refine=False, min_share=None)
    assert blind.forms != dist.forms  # sampling everywhere, the wild values do steer the forms
    assert dist.forms == {k: form for k, (form, _) in HH.items()}
    assert _max_constant_error(dist.constants) < 0.10
    with pytest.raises(InvalidArgumentError, match="min_share"):
        distill(StubEstimator(hh), backend="forms", refine=False, min_share=0.7)


def test_form_may_leave_a_collapsed_network_where_the_rate_does_not_matter(hh):
    """A network that collapses (1e-5x) where its rate is negligible does not force the whole-range fallback.

    As the demo's alpha_h does at depolarised potentials: the exponential fitted where
    alpha_h matters is 1e3-1e5x the network there, but still a tiny share of alpha_h + beta_h.
    """
    class Collapsed(StubEstimator):
        def predict_rates(self, V_values):
            out = super().predict_rates(V_values)
            for g in ("m", "h", "n"):
                a, b = out[f"alpha_{g}"], out[f"beta_{g}"]
                for k, r in ((f"alpha_{g}", a), (f"beta_{g}", b)):
                    out[k] = np.where(r < 0.01 * (a + b), r * 1e-5, r)
            return out

    dist = distill(Collapsed(hh, error=0.02), backend="forms", refine=False)
    assert dist.forms == {k: form for k, (form, _) in HH.items()}
    assert _max_constant_error(dist.constants) < 0.10


def test_recovers_six_hh_forms_within_one_percent(exact):
    assert isinstance(exact, Distillation)
    assert exact.forms == {k: form for k, (form, _) in HH.items()}
    assert _max_constant_error(exact.constants) < 0.01
    assert exact.v_range == V_RANGE and exact.refinement is None


def test_simplest_rule_recovers_forms_from_imperfect_networks(hh):
    dist = distill(StubEstimator(hh, error=0.02), backend="forms", refine=False, min_share=None)
    assert dist.forms == {k: form for k, (form, _) in HH.items()}
    assert _max_constant_error(dist.constants) < 0.05
    for r in dist.rates.values():
        assert r.chosen in r.fit.front or r.chosen == r.fit.best
        assert select_candidate(r.fit, "bic") == r.fit.best
        assert 0.015 < r.max_rel_error < 0.05  # deviation from the 2 %-off "network"


def _cand(form, complexity, rms):
    return Candidate(expr=sympy.Float(1.0), complexity=complexity, loss=rms**2, max_rel_error=2 * rms, form=form)


def test_selection_rule_prefers_simple_literature_forms():
    linoid, wrong = _cand("linoid", 15, 0.035), _cand("sigmoid", 12, 0.075)
    gompertz, sum_ = _cand("operon", 10, 0.033), _cand("sum(sigmoid,linoid)", 28, 0.02)
    big_open = _cand("operon", 30, 0.018)
    fit = RateFit("alpha_n", [_cand("exponential", 6, 0.25), gompertz, big_open], big_open, "forms", 0.0)
    # the open forms hide the literature forms from the front: they come as extra candidates
    assert select_candidate(fit, extra=[wrong, linoid, sum_]) is linoid
    assert select_candidate(fit, extra=[wrong, linoid, sum_], tolerance=0.0) is sum_
    assert select_candidate(fit) is gompertz  # no literature form close enough: open forms compete
    assert select_candidate(fit, extra=[linoid], open_margin=0.01) is gompertz
    assert select_candidate(fit, "bic") is big_open
    assert is_family_form("sum(constant,linoid)") and not is_family_form("operon")


def test_expressions_model_and_sympy(hh, exact):
    exprs = exact.expressions
    assert list(exprs) == list(hh.rates) and exact.sympy() == exprs
    assert all(e.free_symbols == {V} for e in exprs.values())
    grid = np.arange(-76.0, 35.0, 0.7)
    model_rates = exact.model.evaluate_rates(grid)
    for k, e in exprs.items():  # the same functions (the model holds them evaluated)
        np.testing.assert_allclose(sympy.lambdify(V, safe_expression(e))(grid), model_rates[k], rtol=1e-14)
    assert {k: len(f) for k, f in exact.fronts.items()} == {k: len(r.fit.front) for k, r in exact.rates.items()}
    got, ref = model_rates, hh.evaluate_rates(grid)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=2e-5)
    assert exact.model.params == hh.params and exact.model.states == hh.states
    assert "distilled" in exact.model.name and "distilled" in exact.summary()


def test_samples_only_the_supported_range(hh):
    seen = []

    class Recording(StubEstimator):
        def predict_rates(self, V_values):
            seen.append(np.array(V_values))
            return super().predict_rates(V_values)

    distill(Recording(hh, v_range=(-70.3, 10.2)), backend="forms", refine=False, v_step=1.0)
    assert seen[0].min() == -70.3 and seen[0].max() <= 10.2 and np.allclose(np.diff(seen[0]), 1.0)


# ---------------------------------------------------------------------- export
def test_json_round_trip_is_exact(exact, tmp_path):
    path = tmp_path / "model.json"
    exact.to_json(path)
    assert sorted(os.listdir(tmp_path)) == ["model.json"]  # no temporary file left behind
    again = load_model(path)
    assert again == exact.model
    assert again.rates == exact.model.rates and again.params == exact.model.params
    assert again.structure_key() == exact.model.structure_key()
    data = json.loads(path.read_text())
    assert data["format"] == "hhsym.distillation/1"
    prov = data["provenance"]
    assert prov["v_range_mV"] == list(V_RANGE) and prov["backend"] == "forms"
    assert {"hhsym_version", "timings_s", "selection", "created"} <= set(prov)
    grid = np.array([-70.0, -40.0, -12.5, 20.0])
    for k, rate in data["rates"].items():  # sympy-parsable text gives the same function
        f = sympy.lambdify(V, safe_expression(parse_expression(rate["expression"])))
        with np.errstate(all="ignore"):  # numpy evaluates both branches of the 0/0 guard
            values = f(grid)
        np.testing.assert_allclose(values, exact.model.evaluate_rates(grid)[k], rtol=1e-12)
        assert rate["front"] and rate["form"] == HH[k][0]
    assert load_model(tmp_path / "model.json") == load_model(str(path))  # str and PathLike


def _normalise(expr):
    return expr.xreplace({s: sympy.Symbol(str(s).replace("{", "").replace("}", "").replace("*", ""))
                          for s in expr.free_symbols})


def test_latex_parses_as_the_rates(hh, exact):
    block = exact.latex()
    assert block.startswith("\\begin{align*}") and block.split("\\alpha_{m} &=")[0] in exact.model.latex()
    assert "e^{- \\frac{V + 40.0}{10.0}}" in block  # the literature's layout
    grid = np.array([-75.2, -52.1, -12.7, 25.9])
    ref = hh.evaluate_rates(grid)
    found = 0
    for line in block.split("\\\\\n"):
        lhs, _, rhs = line.partition("&=")
        key = lhs.strip().replace("\\", "").replace("{", "").replace("}", "")
        if key in ref:
            parsed = _normalise(parse_latex(rhs.strip()))
            f = sympy.lambdify(sympy.Symbol("V"), parsed.subs(sympy.Symbol("e"), sympy.E))
            np.testing.assert_allclose([float(f(v)) for v in grid], ref[key], rtol=2e-5)
            found += 1
    assert found == 6


def test_standalone_latex_is_a_document(exact, tmp_path):
    doc = exact.latex(standalone=True)
    assert doc.startswith("\\documentclass{article}") and doc.rstrip().endswith("\\end{document}")
    assert "\\usepackage{amsmath}" in doc and exact.latex() in doc
    assert doc.count("{") == doc.count("}") and doc.count("\\begin{") == doc.count("\\end{")
    write_text(doc, tmp_path / "m.tex")
    assert (tmp_path / "m.tex").read_text() == doc
    with pytest.raises(ArgumentTypeError):
        exact.latex(standalone="yes")


# ---------------------------------------------------------------------- loss and refinement
def test_shooting_loss_equals_the_estimators(hh):
    """The closed-form loss reproduces the estimator's own cost on the same rates."""
    data = as_recordings([simulate(hh, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=5), 60.0, dt=0.025)])
    lo, hi = -80.0, 40.0
    c, s = 0.5 * (lo + hi), 0.5 * (hi - lo)
    grid = np.linspace(lo, hi, 50)
    rates = hh.evaluate_rates(grid)
    u = (grid - c) / s

    def line(y):  # a network without hidden layers: f = (w + w_skip) u + b
        return np.array([*np.polyfit(u, y, 1), 0.0])

    class Fitted:  # per gate, linear logit x_inf and log(tau - tau_min): Boltzmann x_inf, log-linear tau
        def __init__(self, tau_min=0.01):
            self.model = hh
            self.gates_ = {}
            for g in "mhn":
                a, b = rates[f"alpha_{g}"], rates[f"beta_{g}"]
                self.gates_[g] = GateNetworks((), c, s, line(np.log(a / b)), line(np.log(1.0 / (a + b) - tau_min)),
                                              tau_min=tau_min)

    options = {"window": 0.25, "burn_in": 0.0, "shooting_window": 3.0, "n_shooting": 10}
    fitted = Fitted()
    theirs = network_loss(fitted, data, options)
    learned = hh.with_rates({f"{k}_{g}": GateRate(net, k).to_sympy()
                             for g, net in fitted.gates_.items() for k in ("alpha", "beta")})
    ours = ShootingLoss(learned, data, **options).cost()
    # the estimator tabulates its stage-1 rates on 0.05 mV nodes (hhsym.estimate.losses.tables): ~1e-6 apart
    assert theirs > 1.0 and ours == pytest.approx(theirs, rel=1e-5)


def test_refinement_lowers_the_loss_and_fixes_constants(hh, traces):
    stub = StubEstimator(hh, error=0.03)
    dist = distill(stub, backend="forms", traces=traces, refine=True, max_iter=20)
    ref = dist.refinement
    assert ref["accepted"] and ref["loss_refined"] <= ref["loss_distilled"]
    assert ref["loss_refined"] < 0.2 * ref["loss_distilled"]
    assert ref["loss_network"] is None  # the stub has no networks nor model_
    before = {k: r.chosen.params for k, r in dist.rates.items()}
    assert _max_constant_error(dist.constants) < 0.5 * _max_constant_error(before)
    # the reported loss is the loss of the returned model (its parametric twin, same numbers)
    data = as_recordings(traces)
    assert ShootingLoss(dist.parametric_model, data, **ref["options"]).cost() == pytest.approx(
        ref["loss_refined"], rel=1e-12)
    grid = np.linspace(-80, 40, 61)
    a, b = dist.model.evaluate_rates(grid), dist.parametric_model.evaluate_rates(grid)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9)  # ulp-level cancellation near the 0/0 point
    # a tight trust band keeps every rate as close to the network as the unrefined form was
    banded = distill(stub, backend="forms", traces=traces, max_iter=8, trust=1e-3)
    assert banded.refinement["trust"] == 1e-3 and banded.refinement["accepted"]
    unrefined = distill(stub, backend="forms", refine=False)
    for k, r in banded.rates.items():
        assert r.max_rel_error <= unrefined.rates[k].max_rel_error * 1.01 + 1e-3
    # max_iter=0: losses only, nothing changes
    still = distill(stub, backend="forms", traces=traces, max_iter=0)
    assert still.refinement["loss_refined"] == still.refinement["loss_distilled"]
    assert still.refinement["loss_distilled"] == pytest.approx(ref["loss_distilled"], rel=1e-12)


def test_parametrise_rebuilds_each_chosen_expression(exact):
    for k, r in exact.rates.items():
        p = parametrise(k, r.chosen)
        expr, constants = p.build(p.values)
        assert str(expr) == str(r.chosen.expr)
        assert constants == pytest.approx(r.chosen.params, rel=1e-5)
        assert expr.free_symbols == {V} and len(p.names) == len(HH[k][1])


# ---------------------------------------------------------------------- errors
def test_bad_arguments(hh, traces):
    stub = StubEstimator(hh)
    with pytest.raises(UnknownNameError, match="backend"):
        distill(stub, backend="gplearn", refine=False)
    with pytest.raises(ArgumentTypeError, match="backend"):
        distill(stub, backend=3, refine=False)
    with pytest.raises(NotFittedError, match="fit"):
        distill(RateEstimator(hh), refine=False)
    with pytest.raises(ArgumentTypeError, match="estimator"):
        distill(object(), refine=False)
    with pytest.raises(InvalidArgumentError, match="traces"):
        distill(stub, backend="forms")  # refine=True needs the recordings
    with pytest.raises(InvalidArgumentError, match="v_step"):
        distill(stub, refine=False, v_step=0.0)
    with pytest.raises(InvalidArgumentError, match="v_step"):
        distill(stub, refine=False, v_step=50.0)
    with pytest.raises(UnknownNameError, match="select"):
        distill(stub, refine=False, select="aic")
    with pytest.raises(ArgumentTypeError, match="refine"):
        distill(stub, refine="yes")
    with pytest.raises(InvalidArgumentError, match="v_range_"):
        distill(StubEstimator(hh, v_range=(10.0, -10.0)), refine=False)
    with pytest.raises(HHSymError):
        distill(stub, backend="forms", traces=["not a trace"])


def test_load_model_errors(tmp_path, hh):
    with pytest.raises(InvalidArgumentError, match="path"):
        load_model(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="bad.json"):
        load_model(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ModelError):
        load_model(other)
    plain = tmp_path / "plain.json"  # a bare ConductanceModel.to_dict is accepted too
    plain.write_text(json.dumps(hh.to_dict()))
    assert load_model(plain) == hh
    with pytest.raises(InvalidArgumentError, match="path"):
        write_text("x", tmp_path / "no" / "dir" / "f.tex")


def test_distill_files_from_a_saved_fit(hh, traces, tmp_path):
    """The function behind `hhsym distill FIT.npz --json ... --latex ...`."""
    est = RateEstimator(hh, hidden=(), max_iter=(0, 3, 0), n_shooting=0, random_state=0)
    est.fit(traces)
    est.save(tmp_path / "fit.npz")
    trace_file = tmp_path / "t0.npz"
    traces[0].save(trace_file)
    dist = distill_files(tmp_path / "fit.npz", json_path=tmp_path / "m.json", latex_path=tmp_path / "m.tex",
                         backend="forms", traces=[trace_file], max_iter=0)
    assert dist.refinement is not None and dist.refinement["n_traces"] == 1
    assert dist.refinement["loss_network"] is not None  # the estimator's own cost of its networks
    assert load_model(tmp_path / "m.json") == dist.model
    assert (tmp_path / "m.tex").read_text().startswith("\\documentclass")
    assert dist.v_range == pytest.approx(est.v_range_)
    plain = distill_files(tmp_path / "fit.npz", backend="forms")  # no traces: no refinement
    assert plain.refinement is None


def test_top_level_distill_is_callable_and_still_the_package():
    import hhsym

    assert callable(hhsym.distill)
    assert hhsym.distill.get_backend("forms").__class__.__name__ == "FormsBackend"
    assert hhsym.load_model is hhsym.distill.load_model

