"""The demo pipeline runs end to end (short settings) and writes its report folder."""

import os
import subprocess
import sys

import pytest

import hhsym
from hhsym.demo import run_demo


DEMO = pytest.mark.xdist_group("demo")  # one worker runs the demo once for both tests


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The main job at its default settings: (its result, its output folder)."""
    out = tmp_path_factory.mktemp("demo")
    return run_demo(str(out), verbose=False), out


@pytest.mark.slow
@DEMO
def test_demo_writes_the_report_folder(demo):
    result, out = demo
    names = set(os.listdir(out))
    for expected in ("report.md", "report.html", "rates.png", "gating.png", "heldout.png", "training_0.png",
                     "model.tex", "model.json", "fit.npz", "recording_0.csv", "metrics.json"):
        assert expected in names, expected
    text = (out / "report.md").read_text()
    assert "Recovered equations" in text and "\\begin{align*}" in text
    assert set(result["timings"]) >= {"simulate", "fit", "distill"}


@pytest.mark.slow
@DEMO
def test_demo_recovers_hodgkin_huxley(demo):
    """The main job at its default settings recovers HH from V and I: a recovery test with real thresholds.

    Measured: networks within 1.7 % where each rate is >= 5 % of its gate's alpha + beta, the
    six closed forms right with every constant within 0.06 %, held-out Γ = 1 (about 100 s).
    """
    import numpy as np

    from hhsym import library
    from hhsym.metrics import rate_errors

    result, out = demo
    truth = library.hodgkin_huxley()
    est = hhsym.load(out / "fit.npz")
    assert est.roles_ == {"m": 1.0, "h": -1.0, "n": 1.0}
    where_it_matters = rate_errors(est, truth, (-75.0, 20.0), min_share=0.05)
    assert max(where_it_matters.values()) < 0.03, where_it_matters
    distilled = hhsym.load_model(out / "model.json")
    errors = rate_errors(distilled, truth, (-75.0, 20.0))
    assert max(errors.values()) < 0.005, errors  # right forms: a wrong one is off by > 5 % somewhere
    assert result["metrics"]["held-out Γ, distilled (closed forms)"] >= 0.98
    assert result["metrics"]["held-out Γ, hybrid (networks)"] >= 0.98
    assert np.isfinite(result["timings"]["fit"])


@pytest.mark.slow  # a real (if short) fit of the shipped cell and its validation
def test_real_demo_writes_fit_validation_and_report(tmp_path):
    from hhsym.demo_real import HELD_OUT, run_real_demo

    out = tmp_path / "real"
    res = run_real_demo(str(out), verbose=False, time_limit=5.0)
    assert (out / "fit.npz").is_file() and (out / "validation.json").is_file()
    assert (out / "report" / "validation.md").is_file()
    assert [s["index"] for s in res["validation"].sweeps] == list(HELD_OUT)
    assert isinstance(hhsym.load(out / "fit.npz"), hhsym.CellEstimator)


def test_real_demo_refuses_noise():
    proc = subprocess.run([sys.executable, "-m", "hhsym", "demo", "--real", "--noise", "0.5"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2 and "--noise" in proc.stderr
