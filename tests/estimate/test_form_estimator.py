"""Tests of the network-free route to closed forms: charge-balance role search and FormEstimator."""

import json
import math
import warnings

import numpy as np
import pytest

import hhsym
from hhsym.distill import load_model
from hhsym.estimate import FormEstimator
from hhsym.estimate.search.charge_search import ROLE_FORMS, random_forms, role_search
from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.search.form_search import model_start
from hhsym.errors import ArgumentTypeError, InvalidArgumentError, NotFittedError, UnknownNameError
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise

SLOW = pytest.mark.slow  # real FormEstimator fits (minutes)
FITTED = pytest.mark.xdist_group("form_estimator_fitted")  # one worker builds the fit once

NOISE = 0.5  # mV


@pytest.fixture(scope="module")
def hh():
    return hodgkin_huxley()


@pytest.fixture(scope="module")
def noisy(hh):
    """Two 100 ms HH traces under noisy current, sampled at 0.025 ms, 0.5 mV of Gaussian noise on V."""
    return [simulate(hh, OUNoise(mean=7.0 + 3 * k, sigma=6.0, tau=3.0, seed=11 + k), 100.0, dt=0.005,
                     dt_out=0.025).with_noise(NOISE, seed=100 + k) for k in range(2)]


@pytest.fixture(scope="module")
def fitted(hh, noisy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FormEstimator(hh, n_starts=30, search=False, random_state=0).fit(noisy)


def test_random_forms_have_the_declared_roles():
    rng = np.random.default_rng(0)
    V = np.linspace(-80.0, 40.0, 121)
    for _ in range(20):
        fits = random_forms(["a", "b"], (1, -1), (-70.0, 20.0), rng)
        for g, sign in (("a", 1), ("b", -1)):
            alpha, beta = fits[f"alpha_{g}"], fits[f"beta_{g}"]
            assert (alpha.form, beta.form) == ROLE_FORMS[sign]
            x = alpha.evaluate(V) / (alpha.evaluate(V) + beta.evaluate(V))
            # x_inf rises for an activation gate, falls otherwise
            assert np.all(sign * np.diff(x) > -1e-12) and sign * (x[-1] - x[0]) > 0.5


@SLOW
@FITTED
def test_role_search_puts_the_true_roles_among_the_contenders_under_noise(fitted):
    hyps = fitted.hypotheses_  # role_search's result on the noisy traces
    assert len(hyps) == 8
    assert [h.cost for h in hyps] == sorted(h.cost for h in hyps)
    top = [h.label for h in hyps if h.cost <= FormEstimator.ROLE_MARGIN * hyps[0].cost]
    assert "+-+" in top[:FormEstimator.MAX_CONTENDERS]  # m and n activate, h inactivates
    compared = [h for h in hyps if h.output_rms is not None]
    if compared:  # close contenders were settled by the output error, the true roles lowest
        assert min(compared, key=lambda h: h.output_rms).label == "+-+"


def test_role_search_on_one_pattern(hh, noisy):
    data = [(tr.dt, tr.V, tr.I) for tr in noisy]
    (hyp,) = role_search(hh, data, n_starts=6, patterns=[(1, -1, 1)], rng=np.random.default_rng(0))
    assert hyp.label == "+-+" and math.isfinite(hyp.cost) and len(hyp.costs) == 3
    assert {k: f.form for k, f in hyp.fits.items()} == {
        "alpha_m": "linoid", "beta_m": "exponential", "alpha_h": "exponential", "beta_h": "sigmoid",
        "alpha_n": "linoid", "beta_n": "exponential"}


@SLOW
@FITTED
def test_form_estimator_recovers_hh_from_a_generic_start_under_noise(hh, fitted):
    truth = model_forms(hh, np.linspace(*fitted.v_range_, 200))
    assert fitted.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0}
    assert fitted.forms_ == {k: f.form for k, f in truth.items()}
    assert fitted.misfit_ is None and fitted.rms_ < 1.1 * NOISE
    # judged by its windowed output error at the noise level and its spikes, not by one free run's drift
    assert fitted.quality_.ok, fitted.quality_
    assert fitted.quality_.window_rms_mV == fitted.rms_ and fitted.quality_.gamma >= 0.7
    sd = fitted.standard_errors_
    for k, f in fitted.fit_.fits.items():
        p, t = f.params(), truth[k].params()
        for n in t:
            # within 5 of the fit's own Cramér–Rao SDs, and the SDs themselves sensible (2 x 100 ms at 0.5 mV)
            assert abs(p[n] / t[n] - 1.0) < 5 * sd[k][n] + 1e-3, (k, n, p[n], t[n], sd[k][n])
            assert 0 < sd[k][n] < 0.5
    assert set(fitted.timings_) == {"roles", "output_error", "form_search", "uncertainty", "total"}


@SLOW
@FITTED
def test_form_estimator_exports(fitted, tmp_path):
    path = tmp_path / "forms.json"
    fitted.to_json(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "hhsym.forms/1"
    assert set(doc["rates"]) == set(fitted.forms_)
    assert doc["provenance"]["roles"] == {"m": 1.0, "h": -1.0, "n": 1.0}
    assert load_model(path) == fitted.model_
    block = fitted.latex()
    assert block.startswith("\\begin{align*}") and "\\alpha_{m}" in block
    doc_tex = fitted.latex(standalone=True)
    assert doc_tex.startswith("\\documentclass{article}") and doc_tex.rstrip().endswith("\\end{document}")
    assert "Cram\\'er--Rao" in doc_tex
    for k, e in fitted.sympy().items():
        V = np.linspace(-70.0, 20.0, 7)
        assert np.allclose([float(e.subs(hhsym.V, v)) for v in V], fitted.fit_.fits[k].evaluate(V), rtol=1e-4)  # 6 digits
    assert "linoid" in fitted.summary() and "rms" in fitted.summary()


@pytest.mark.parametrize("param, value, cls", [
    ("n_starts", 0, InvalidArgumentError),
    ("max_iter", 2.5, ArgumentTypeError),
    ("window", -1.0, InvalidArgumentError),
    ("search", "yes", ArgumentTypeError),
    ("uncertainty", 1, ArgumentTypeError),
    ("time_limit", 0, InvalidArgumentError),
    ("roles", {"m": 2}, InvalidArgumentError),
    ("roles", {"m": "opening"}, InvalidArgumentError),
    ("roles", ["m"], ArgumentTypeError),
    ("roles", {"q": 1}, InvalidArgumentError),  # not a gate of the model: named with the gates
    ("start", "template", UnknownNameError),
    ("start", None, ArgumentTypeError),
])
def test_form_estimator_rejects_bad_settings(hh, noisy, param, value, cls):
    with pytest.raises(cls, match=param):
        FormEstimator(hh, **{param: value}).fit(noisy)


def test_form_estimator_needs_a_fit(hh):
    est = FormEstimator(hh)
    for call in (est.sympy, est.latex, est.to_dict, est.summary):
        with pytest.raises(NotFittedError):
            call()
    assert math.isclose(FormEstimator(hh, n_starts=5).get_params()["n_starts"], 5)


def test_known_roles_restrict_the_patterns(hh):
    est = FormEstimator(hh)
    assert est._patterns(None) is None
    from hhsym.estimate.constraints import roles

    assert est._patterns(roles().check({"m": "activating", "h": "-", "n": 1.0})) == [(1, -1, 1)]
    assert sorted(est._patterns({"h": -1})) == sorted([(1, -1, 1), (1, -1, -1), (-1, -1, 1), (-1, -1, -1)])
    with pytest.raises(InvalidArgumentError, match="'q' is not a gate"):
        est._patterns({"q": 1})


def test_cli_roles_are_parsed_and_bad_ones_are_usage_errors(capsys):
    from hhsym.cli.parser import _roles

    assert _roles("m=+,h=-,n=activating") == {"m": 1, "h": -1, "n": 1}
    import argparse

    for bad in ("m", "m=up", "=+", "m=+,"):
        with pytest.raises(argparse.ArgumentTypeError, match="GATE=ROLE"):
            _roles(bad)


def test_model_start_reads_forms_and_roles_off_the_model(hh, noisy):
    roles, start = model_start(hh, (-76.0, 35.0))
    assert roles == {"m": 1, "h": -1, "n": 1} and list(roles) == ["m", "h", "n"]
    assert {k: f.form for k, f in start.items()} == {k: f.form for k, f in model_forms(hh, np.linspace(-76, 35, 200)).items()}
    assert model_start(hh, (-76.0, 35.0), roles={"h": -1})[0] == roles
    # a known role that contradicts the model's, and a rate in no literature form, are named before any fit
    with pytest.raises(InvalidArgumentError, match="invalid roles=.*h is inactivating in"):
        FormEstimator(hh, start="model", roles={"h": "activating"}).fit(noisy)
    odd = hh.with_rates({"alpha_m": "0.1*exp(V/20)*(1 + 0.3*sin(V/5))"})
    with pytest.raises(InvalidArgumentError, match="invalid model=.*alpha_m is not one"):
        FormEstimator(odd, start="model").fit(noisy)


def _documented_attributes():
    """The fitted attributes the class docstring lists (``name_ : type`` lines of its Attributes section)."""
    import re

    doc = FormEstimator.__doc__.split("Attributes\n    ----------\n", 1)[1]
    return re.findall(r"^    (\w+_) :", doc, flags=re.M)


def test_start_from_the_model_sets_and_saves_every_documented_attribute(hh, noisy, tmp_path):
    # a cheap fit (one 100 ms trace, 2 iterations a window length): the attributes, not the accuracy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = FormEstimator(hh, start="model", search=False, max_iter=2).fit(noisy[:1])
    names = _documented_attributes()
    assert {"roles_", "hypotheses_", "start_", "fit_", "model_", "quality_", "standard_errors_"} <= set(names)
    missing = [n for n in names if not hasattr(est, n)]
    assert not missing, missing
    assert est.roles_ == {"m": 1, "h": -1, "n": 1} and est.hypotheses_ == [] and est.trials_ == []
    assert est.search_accepted_ is None and est.forms_ == {k: f.form for k, f in est.start_.items()}
    assert est.model_.name == f"{hh.name} (refitted)" and "refitted" in est.summary()
    assert est.to_dict()["provenance"]["method"].startswith("FormEstimator(start='model')")
    assert "started from the rates of" in est.latex(standalone=True)
    path = tmp_path / "model_start.npz"
    est.save(path)
    back = hhsym.estimate.load(path)
    assert back.start == "model" and back.get_params()["start"] == "model"
    for n in names:
        a, b = getattr(est, n), getattr(back, n)
        if n == "fit_":
            assert (a.forms, a.bic, a.windows, a.stopped) == (b.forms, b.bic, tuple(b.windows), b.stopped)
            assert np.array_equal(a.states, b.states)
        elif n == "start_":
            assert all(np.array_equal(a[k].theta, b[k].theta) for k in a)
        elif n == "quality_":
            assert a.to_dict() == b.to_dict()
        else:
            assert a == b, n
    assert back.summary() == est.summary() and back.latex(standalone=True) == est.latex(standalone=True)
