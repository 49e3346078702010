"""hhsym.analysis.passive: a simulated passive cell with known R, tau, C, and the shared recordings."""

from pathlib import Path

import numpy as np
import pytest

from hhsym.io import Recording, read
from hhsym.analysis.passive import passive_properties

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "pyabf" / "171116sh_0018.abf").is_file(),
                                reason=f"shared recordings not found in {DATA}")


def passive_cell(R=200.0, tau=20.0, steps=(-100.0, -75.0, -50.0, -25.0), E=-70.0, dt=0.1, T=1000.0,
                 on=200.0, off=700.0, sigma=0.2, seed=0, hold=0.0, R_bridge=0.0):
    """Exact RC responses (R MΩ, tau ms, so C = tau/R nF) to current steps (pA), with noise (mV).

    The current switches half a sample before the first sample at the new level; a series
    resistance adds ``R_bridge * (I - hold)`` instantaneously.
    """
    t = np.arange(int(round(T / dt))) * dt
    k0, k1 = int(round(on / dt)), int(round(off / dt))
    rng = np.random.default_rng(seed)
    V, I = [], []
    for a in steps:
        i = np.full(t.size, hold)
        i[k0:k1] += a
        v = np.full(t.size, E + R * hold * 1e-3)
        for ts, amp in ((t[k0] - dt / 2, a), (t[k1] - dt / 2, -a)):
            x = np.clip(t - ts, 0.0, None)
            v += 1e-3 * R * amp * (1 - np.exp(-x / tau)) * (t > ts)
        v += 1e-3 * R_bridge * (i - hold)
        V.append(v + sigma * rng.standard_normal(t.size))
        I.append(i)
    return Recording(t, np.array(V), np.array(I), {"file": "simulated passive cell"})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_passive_cell_hyperpolarising_steps_within_3_percent(seed):
    p = passive_properties(passive_cell(seed=seed))
    assert p.method == "hyperpolarising steps" and p.n_onsets == 4
    for value, true in ((p.R_in_steady_MOhm, 200.0), (p.R_in_peak_MOhm, 200.0), (p.tau_m_ms, 20.0),
                        (p.C_pF, 100.0)):
        assert value == pytest.approx(true, rel=0.03)
    assert p.sag_ratio == pytest.approx(0.0, abs=0.02)
    assert p.V_rest_mV == pytest.approx(-70.0, abs=0.05)
    assert p.fit_r2_min > 0.9 and p.fit_rmse_mV == pytest.approx(0.2, rel=0.1)
    assert np.isfinite(p.tau_m_sd_ms) and p.tau_m_sd_ms < 2.0  # the spread is reported
    assert p.alignment_lag_samples == 0


def test_bridge_jump_and_holding_current_measured_and_compensated():
    rec = passive_cell(R_bridge=15.0, hold=-20.0, sigma=0.2, seed=3)
    p = passive_properties(rec)
    assert p.R_bridge_MOhm == pytest.approx(15.0, abs=2.0)
    assert p.holding_pA == pytest.approx(-20.0)
    assert p.R_in_steady_MOhm == pytest.approx(200.0, rel=0.03)
    assert p.V_rest_mV == pytest.approx(-74.0, abs=0.05)          # at the holding current
    assert p.V_rest_zero_mV == pytest.approx(-70.0, abs=0.2)      # extrapolated to 0 pA
    raw = passive_properties(rec, compensate_bridge=False)
    assert raw.R_in_steady_MOhm == pytest.approx(215.0, rel=0.03) and not raw.bridge_compensated
    assert raw.tau_m_ms == pytest.approx(20.0, rel=0.03) and raw.C_pF == pytest.approx(100.0, rel=0.03)
    clean = passive_properties(rec.compensate_bridge(p.R_bridge_MOhm))
    assert abs(clean.R_bridge_MOhm) < 2.0


def test_subthreshold_onsets_when_no_hyperpolarising_step():
    p = passive_properties(passive_cell(steps=(20.0, 40.0, 60.0), seed=4))
    assert p.method == "sub-threshold step onsets" and p.n_onsets == 3
    assert p.R_in_steady_MOhm == pytest.approx(200.0, rel=0.03)
    assert p.tau_m_ms == pytest.approx(20.0, rel=0.03) and p.C_pF == pytest.approx(100.0, rel=0.03)
    assert np.isnan(p.sag_ratio)
    assert p.to_dict()["sag_ratio"] is None


def test_alignment_lag_of_a_delayed_current():
    rec = passive_cell(R_bridge=30.0, sigma=0.05, seed=5)
    assert passive_properties(rec).alignment_lag_samples == 0
    late = rec.shift_current(1)             # I recorded one sample late: V leads I by one
    p = passive_properties(late)
    assert p.alignment_lag_samples == 1 and p.alignment_snr > 5
    assert p.tau_m_ms == pytest.approx(20.0, rel=0.03)
    assert passive_properties(late.shift_current(-1)).alignment_lag_samples == 0


def test_no_steps_gives_nan_not_a_number_from_nothing():
    t = np.arange(2000) * 0.1
    rec = Recording(t, np.full((1, 2000), -65.0) + 0.1 * np.sin(t), np.zeros((1, 2000)), {"file": "flat"})
    p = passive_properties(rec)
    assert p.method == "none" and np.isnan(p.tau_m_ms) and np.isnan(p.C_pF)
    assert p.V_rest_mV == pytest.approx(-65.0, abs=0.01)
    with pytest.raises(Exception, match="area"):
        rec.to_traces()


def test_estimated_area_from_the_passive_fit():
    ts = passive_cell(seed=6).to_traces(specific_capacitance=0.9)
    a = ts.meta["membrane_area"]
    assert a["source"] == "estimated" and a["capacitance_pF"] == pytest.approx(100.0, rel=0.03)
    assert a["area_cm2"] == pytest.approx(100e-6 / 0.9, rel=0.03)


@needs_data
def test_shared_abf_with_sag_and_bridge():
    p = passive_properties(read(DATA / "pyabf" / "171116sh_0018.abf"))
    assert p.method == "hyperpolarising steps" and p.n_onsets == 21
    assert p.alignment_lag_samples == -1                  # V moves one sample after the command
    assert 10.0 < p.R_bridge_MOhm < 16.0                  # the issue: 13.3 MΩ instantaneous jump
    assert 0.15 < p.sag_ratio < 0.35                      # Ih sag 2.9-4.3 mV on ~13 mV
    assert 160.0 < p.C_pF < 300.0 and 25.0 < p.tau_m_ms < 45.0
    assert p.R_in_peak_MOhm > p.R_in_steady_MOhm
    assert p.V_rest_mV == pytest.approx(-62.0, abs=1.0)


@needs_data
@pytest.mark.parametrize("cell, hold", [("B6", -12.5), ("B8", -51.7)])
def test_shared_igor_cells_from_step_onsets(cell, hold):
    p = passive_properties(read(DATA / "bluepyefe" / f"{cell}_Ch3_IDRest_*.ibw"))
    assert p.method == "sub-threshold step onsets"
    assert p.alignment_lag_samples == 1                   # the issue: V leads I by one sample
    assert p.holding_pA == pytest.approx(hold, abs=1.0)
    assert 15.0 < p.tau_m_ms < 25.0 and 200.0 < p.R_in_steady_MOhm < 260.0 and 60.0 < p.C_pF < 95.0
    assert p.V_rest_mV == pytest.approx(-70.0, abs=1.5)
