"""The demo pipeline runs end to end (short settings) and writes its report folder."""

import os

import pytest

from hhsym.demo import run_demo


@pytest.mark.slow
def test_demo_writes_the_report_folder(tmp_path):
    result = run_demo(str(tmp_path), verbose=False, t_stop=60.0, fit_budget=5.0, distill_budget=3.0)
    names = set(os.listdir(tmp_path))
    for expected in ("report.md", "report.html", "rates.png", "gating.png", "heldout.png", "training_0.png",
                     "model.tex", "model.json", "fit.npz", "recording_0.csv", "metrics.json"):
        assert expected in names, expected
    text = (tmp_path / "report.md").read_text()
    assert "Recovered equations" in text and "\\begin{align*}" in text
    assert set(result["timings"]) >= {"simulate", "fit", "distill"}
