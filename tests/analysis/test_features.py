"""hhsym.analysis.features (eFEL) and noise; hhsym.analysis.inspect on the shared recordings."""

import json
from pathlib import Path

import numpy as np
import pytest

from hhsym.io import Recording, read
from hhsym.analysis.features import features, noise, spike_times
from hhsym.analysis.inspect import JSON_KEYS, inspect, summary_text

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "pyabf" / "171116sh_0018.abf").is_file(),
                                reason=f"shared recordings not found in {DATA}")


def spiking_sweeps(peaks=(0.0, -25.0), dt=0.05, T=600.0):
    """Sweeps resting at -70 mV with 1-ms-wide bumps to ``peaks`` mV every 50 ms in a step."""
    t = np.arange(int(round(T / dt))) * dt
    V, I = [], []
    for k, top in enumerate(peaks):
        v = np.full(t.size, -70.0)
        for c in np.arange(150.0, 450.0, 50.0):
            v += (top + 70.0) * np.exp(-0.5 * ((t - c) / 0.3) ** 2)
        i = np.zeros(t.size)
        i[int(100 / dt):int(500 / dt)] = 100.0 * (k + 1)
        V.append(v)
        I.append(i)
    return Recording(t, np.array(V), np.array(I), {"file": "bumps"})


def test_efel_counts_crossings_of_minus_20_mV():
    rec = spiking_sweeps()
    f = features(rec)
    counts = [s["n_spikes"] for s in f["sweeps"]]
    assert counts == [6, 0]                      # bumps to 0 mV cross -20 mV; to -25 mV do not
    s0 = f["sweeps"][0]
    np.testing.assert_allclose(s0["spike_times_ms"], np.arange(150.0, 450.0, 50.0), atol=0.1)
    assert s0["AP_amplitude_mV"] > 60 and 0.5 < s0["AP_half_width_ms"] < 1.0
    assert s0["first_spike_latency_ms"] == pytest.approx(50.0, abs=1.0)
    assert s0["ISI_CV"] == pytest.approx(0.0, abs=1e-6)
    assert f["sweeps"][1]["AP_amplitude_mV"] is None
    assert f["fI"]["I_step_pA"] == [100.0, 200.0] and f["fI"]["rate_hz"][0] == pytest.approx(15.0)
    assert [len(x) for x in spike_times(rec)] == [6, 0]


def test_spike_features_only_from_spikes_in_the_test_step():
    """Spikes before and after the step, and one at its very end, leave latency, peak, half-width sound."""
    rec = spiking_sweeps()
    V = np.array(rec.V)
    for centre in (20.0, 499.8, 540.0):     # 499.8: peaks in the step (to 500 ms), falls after it
        V[0] += 70.0 * np.exp(-0.5 * ((rec.t - centre) / 0.3) ** 2)
    s0 = features(Recording(rec.t, V, rec.I, {"file": "bumps+"}))["sweeps"][0]
    assert s0["n_spikes"] == 9 and s0["n_spikes_step"] == 7
    assert s0["first_spike_latency_ms"] == pytest.approx(50.0, abs=1.0)
    assert 0.5 < s0["AP_half_width_ms"] < 1.0 and s0["AP_peak_mV"] == pytest.approx(0.0, abs=0.5)


def test_noise_white_and_slow():
    rng = np.random.default_rng(0)
    dt, n = 0.1, 50000
    t = np.arange(n) * dt
    white = 0.2 * rng.standard_normal((2, n))
    ar = np.zeros((2, n))                        # slow fluctuation: AR(1), tau 20 ms, SD 0.5 mV
    a = np.exp(-dt / 20.0)
    e = rng.standard_normal((2, n)) * 0.5 * np.sqrt(1 - a * a)
    for k in range(1, n):
        ar[:, k] = a * ar[:, k - 1] + e[:, k]
    quiet = noise(Recording(t, -65 + white, np.zeros((2, n)), {"file": "w"}))
    assert quiet["white_mV"] == pytest.approx(0.2, rel=0.05) and quiet["slow_mV"] < 0.03
    both = noise(Recording(t, -65 + white + ar, np.zeros((2, n)), {"file": "w+s"}))
    assert both["white_mV"] == pytest.approx(0.2, rel=0.1)
    assert both["slow_mV"] == pytest.approx(0.5, rel=0.2)


@needs_data
def test_shared_spike_counts():
    f = features(read(DATA / "pyabf" / "171116sh_0018.abf"))
    assert [s["n_spikes"] for s in f["sweeps"]] == [0] * 6 + [2, 3, 6, 8, 10, 12, 12, 14, 16, 16, 18]
    amps = [s["AP_amplitude_mV"] for s in f["sweeps"] if s["AP_amplitude_mV"] is not None]
    assert 80 < np.median(amps) < 100                      # README: about 92 mV tall
    lat = [s["first_spike_latency_ms"] for s in f["sweeps"][6:]]
    assert lat == sorted(lat, reverse=True)                # faster with more current
    b6 = features(read(DATA / "bluepyefe" / "B6_Ch3_IDRest_*.ibw"))
    assert [s["n_spikes"] for s in b6["sweeps"]] == [26, 50, 68, 82, 89]
    assert np.all(np.diff(b6["fI"]["rate_hz"]) > 0)


@needs_data
@pytest.mark.parametrize("name, white", [("pyabf/171116sh_0018.abf", (0.04, 0.11)),
                                         ("pyabf/File_axon_5.abf", (0.003, 0.02)),
                                         ("bluepyefe/B6_Ch3_IDRest_*.ibw", (0.04, 0.11)),
                                         ("bluepyefe/B8_Ch3_IDRest_*.ibw", (0.04, 0.11))])
def test_shared_noise_in_the_measured_ranges(name, white):
    nz = noise(read(DATA / name))
    assert white[0] < nz["white_mV"] < white[1]
    assert 0.1 < nz["slow_mV"] < 0.9


@needs_data
def test_inspect_json_keys_and_values(tmp_path):
    out = tmp_path / "b8.json"
    ins = inspect(str(DATA / "bluepyefe" / "B8_Ch3_IDRest_*.ibw"), json_path=out)
    summary = json.loads(out.read_text())
    assert summary == json.loads(json.dumps(dict(ins)))
    assert set(summary) == set(JSON_KEYS)
    for key, sub in JSON_KEYS.items():
        if key == "sweeps":
            assert all(tuple(s) == sub for s in summary["sweeps"])
        elif sub is not None:
            assert tuple(summary[key]) == sub
    assert summary["n_sweeps"] == 5 and summary["sampling_rate_hz"] == pytest.approx(4000.0)
    assert [s["index"] for s in summary["sweeps"]] == [145, 146, 147, 148, 149]
    assert [s["n_spikes"] for s in summary["sweeps"]] == [20, 44, 62, 75, 81]
    assert summary["passive"]["sag_ratio"] is None        # no hyperpolarising step
    assert 15 < summary["passive"]["tau_m_ms"] < 25
    assert "sub-threshold step onsets" in summary_text(ins)
