"""Tests of the spiking stage (hhsym.estimate.spiking): the free-run score and its search."""

import numpy as np
import pytest

from hhsym.errors import InvalidArgumentError
from hhsym.estimate.spiking import (SpikingFit, fit_spiking, kinetic_template, search_box,
                                    sweep_errors)
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import Step


@pytest.fixture(scope="module")
def hh():
    return hodgkin_huxley()


def _sweeps(model, amps=(4.0, 10.0, 20.0), dt=0.1):
    out = []
    for amp in amps:
        tr = simulate(model, Step(amp, 20.0, 180.0), 200.0, dt=0.025, dt_out=dt)
        out.append((dt, np.asarray(tr.V), np.asarray(tr.I)))
    return out


def test_the_kinetic_template_scales_and_shifts_every_rate(hh):
    m = kinetic_template(hh)
    assert {k: m.params[k] for k in ("phi_Na", "dV_Na", "phi_K", "dV_K")} == \
        {"phi_Na": 1.0, "dV_Na": 0.0, "phi_K": 1.0, "dV_K": 0.0}
    V = np.linspace(-90.0, 40.0, 27)
    np.testing.assert_allclose(m.evaluate_rates(V)["alpha_m"], hh.evaluate_rates(V)["alpha_m"], rtol=1e-12)
    moved = m.with_params(phi_Na=2.0, dV_Na=5.0)
    np.testing.assert_allclose(moved.evaluate_rates(V)["beta_h"], 2.0 * hh.evaluate_rates(V - 5.0)["beta_h"],
                               rtol=1e-12)
    np.testing.assert_allclose(moved.evaluate_rates(V)["alpha_n"], hh.evaluate_rates(V)["alpha_n"], rtol=1e-12)
    assert [k for k in kinetic_template(hh, ["K"]).params if k.startswith("phi_")] == ["phi_K"]
    again = kinetic_template(moved)  # already scaled and shifted: kept as it is, not wrapped twice
    np.testing.assert_allclose(again.evaluate_rates(V)["beta_h"], moved.evaluate_rates(V)["beta_h"], rtol=1e-12)
    assert again.params == moved.params
    with pytest.raises(InvalidArgumentError, match="channels"):
        kinetic_template(hh, ["L"])


def test_the_score_is_zero_on_the_recording_and_names_each_miss(hh):
    (dt, V, I), = _sweeps(hh, amps=(10.0,))
    t = dt * np.arange(V.size)
    same = sweep_errors(t, V, V)
    assert set(same) == {"count", "latency", "peak", "half_width", "gamma", "trough", "rms"}
    assert all(abs(v) < 1e-12 for v in same.values())
    late = np.interp(t - 1.5, t, V)  # every spike 1.5 ms late
    e = sweep_errors(t, V, late)
    assert e["count"] == 0 and e["latency"] == pytest.approx(0.5, abs=0.02)
    assert abs(e["peak"]) < 0.05 and abs(e["half_width"]) < 0.05 and e["gamma"] == pytest.approx(0.0, abs=1e-9)
    flat = np.full_like(V, V[0])
    e = sweep_errors(t, V, flat)  # no spike at all: only the count and the RMS speak
    n_rec = len(np.flatnonzero((V[:-1] < -20.0) & (V[1:] >= -20.0)))
    assert e["count"] == pytest.approx(-n_rec / (0.15 * max(n_rec, 5)))
    assert set(e) == {"count", "rms"} and e["count"] ** 2 > 40  # 5 spikes missed of 5


def test_the_search_finds_known_scalars_and_kinetics(hh):
    truth = kinetic_template(hh).with_params(g_Na=100.0, g_K=45.0, phi_Na=1.3, dV_K=-3.0)
    data = _sweeps(truth)
    fit = fit_spiking(kinetic_template(hh), data, "g_Na,g_K,phi_Na,dV_K", generations=80)
    assert isinstance(fit, SpikingFit)
    assert fit.start_score_ > 10 and fit.score_ < 0.05
    assert fit.params_["g_Na"] == pytest.approx(100.0, rel=0.1)
    assert fit.params_["phi_Na"] == pytest.approx(1.3, rel=0.1)
    assert fit.params_["dV_K"] == pytest.approx(-3.0, abs=1.5)
    assert fit.model_.params["g_K"] == pytest.approx(fit.params_["g_K"])
    assert all(e["count"] == 0 for e in fit.errors_)


@pytest.mark.parametrize("free, text", [("g_X", "names among"), ("g_Na=200:300", "box around the start"),
                                        ("C_m=0:3", "lo > 0"), ((), "one or more")])
def test_bad_search_boxes_are_named(hh, free, text):
    with pytest.raises(InvalidArgumentError, match=text):
        search_box(kinetic_template(hh), free)


def test_the_box_is_in_log_coordinates_for_positive_parameters(hh):
    names, x0, lo, hi, log = search_box(kinetic_template(hh), "g_Na,E_K,phi_K,dV_Na,C_m=0.5:4")
    assert names == ("g_Na", "E_K", "phi_K", "dV_Na", "C_m") and list(log) == [True, False, True, False, True]
    np.testing.assert_allclose(np.exp([lo[0], hi[0]]), [120.0 / 5, 120.0 * 5])
    np.testing.assert_allclose([lo[1], hi[1]], [-97.0, -57.0])
    np.testing.assert_allclose(np.exp([lo[4], hi[4]]), [0.5, 4.0])


def test_bad_settings_are_named(hh):
    data = _sweeps(hh, amps=(10.0,))
    with pytest.raises(InvalidArgumentError, match="generations"):
        fit_spiking(kinetic_template(hh), data, "g_Na", generations=0)
    with pytest.raises(InvalidArgumentError, match="time_limit"):
        fit_spiking(kinetic_template(hh), data, "g_Na", time_limit=-1.0)


def test_the_bridge_error_and_offset_of_a_recording_are_found(hh):
    """A recording whose V carries 12 MΩ of uncompensated series resistance and a 3 mV offset
    (hhsym.estimate.observation): the search finds both, with g_Na, from the spikes and the step edges."""
    from hhsym.estimate.observation import recorded_potential

    area = 1e-4  # cm² (100 pF at 1 µF/cm²): 10 µA/cm² is 1 nA, 12 mV through 12 MΩ
    clean = _sweeps(hh.with_params(g_Na=100.0), amps=(-3.0, 4.0, 10.0))
    data = [(dt, recorded_potential(V, I * 1e6 * area, 3.0, 12.0), I) for dt, V, I in clean]
    fit = fit_spiking(hh, data, "g_Na,V_offset,R_bridge", generations=60,
                      currents_pA=[I * 1e6 * area for _, _, I in data])
    assert fit.params_["R_bridge"] == pytest.approx(12.0, abs=0.6)
    assert fit.params_["V_offset"] == pytest.approx(3.0, abs=0.3)
    assert fit.params_["g_Na"] == pytest.approx(100.0, rel=0.05)
    assert "R_bridge" not in fit.model_.params and fit.score_ < 0.05
    with pytest.raises(InvalidArgumentError, match="R_bridge"):  # densities have no bridge
        fit_spiking(hh, data, "g_Na,R_bridge", generations=2)
