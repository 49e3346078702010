"""Tests of the template comparison (hhsym.estimate.templates, ``hhsym templates``)."""

import json
import os
import subprocess
import sys

import pytest

from hhsym.errors import InvalidArgumentError
from hhsym.estimate.templates import compare_templates, held_out_score, template

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
AXON = os.path.join(DATA, "pyabf", "File_axon_5.abf")


def test_specs_add_channels_before_the_leak():
    m = template("hh+m+ih")
    assert [c.name for c in m.channels] == ["Na", "K", "M", "Ih", "L"] and m.name == "hh+m+ih"
    assert [c.name for c in template("rs").channels] == ["Na", "Kd", "M", "L"]
    assert template(m) is m


@pytest.mark.parametrize("spec, text", [("xx", "a base among"), ("hh+q", "distinct channels"),
                                        ("hh+m+m", "distinct channels"), ("rs+m", "already in"), ("", "BASE"),
                                        (3, "BASE")])
def test_bad_specs_are_named(spec, text):
    with pytest.raises(InvalidArgumentError, match=text):
        template(spec)


def test_the_held_out_score_is_one_per_term_at_the_tolerance():
    at_tolerance = {"n_spikes_recorded": 10, "spike_count_error": 0.15, "median_subthreshold_rms_mV": 2.0,
                    "median_abs_error": {"first_spike_latency_ms": 3.0, "AP_peak_mV": 5.0}}
    assert held_out_score(at_tolerance) == pytest.approx(4.0)
    silent = dict(at_tolerance, median_abs_error={"first_spike_latency_ms": None, "AP_peak_mV": None})
    assert held_out_score(silent) == pytest.approx(2.0 + 2 * 25.0)


@pytest.mark.slow  # a real fit on a lab file
def test_two_templates_are_fitted_validated_and_ranked(tmp_path):
    res = compare_templates(AXON, "7", "8", ["hh", "rs"], time_limit=8.0)
    assert [r["template"] for r in res.rows] == sorted(["hh", "rs"], key=lambda t: next(
        r["held_out_score"] for r in res.rows if r["template"] == t))
    assert res.best is res.rows[0] and all(r["error"] is None for r in res.rows)
    assert all(r["summary"]["n_sweeps"] == 1 for r in res.rows)
    text = res.table()
    assert "hh" in text and "rs" in text and "held-out" in text
    json.dumps(res.to_dict(), allow_nan=False)
    with pytest.raises(InvalidArgumentError, match="held_out"):
        compare_templates(AXON, "7", "7", ["hh"])
    with pytest.raises(InvalidArgumentError, match="train"):
        compare_templates(AXON, "70", "7", ["hh"])


@pytest.mark.slow  # a real fit on a lab file
def test_cli_templates_writes_its_table(tmp_path):
    out = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, "-m", "hhsym", "templates", AXON, "--train", "7", "--validate", "8",
                           "--templates", "hh", "--time-limit", "5", "--json", str(out)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "best on the held-out sweeps: hh" in proc.stdout
    assert json.loads(out.read_text())["rows"][0]["template"] == "hh"
