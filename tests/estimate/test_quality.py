"""Tests of the fits' self-judgement (hhsym.estimate.quality) on hand-made traces."""

import numpy as np
import pytest

from hhsym.errors import PoorFitWarning, TraceFileError
from hhsym.estimate.quality import FitQuality, judge_fit


def _spiking(t, times, width=1.0):
    """-65 mV rest with 100 mV spikes (Gaussian, ``width`` ms) at ``times`` (ms)."""
    V = np.full_like(t, -65.0)
    for s in times:
        V += 100.0 * np.exp(-0.5 * ((t - s) / (0.3 * width)) ** 2)
    return V


T = np.arange(0.0, 200.0, 0.025)
SPIKES = np.arange(10.0, 200.0, 12.0)
RECORDED = _spiking(T, SPIKES)


def test_an_exact_run_is_good():
    q = judge_fit([(T, RECORDED)], [RECORDED.copy()], noise=0.5, warn=False)
    assert q.ok and q.rms_mV == 0.0 and q.gamma == pytest.approx(1.0) and q.n_spikes == (16, 16)


def test_no_spikes_in_the_model_is_poor_and_warned():
    with pytest.warns(PoorFitWarning, match="reproduces the training spikes poorly"):
        q = judge_fit([(T, RECORDED)], [np.full_like(T, -65.0)], noise=0.5, hint="try X")
    assert q.verdict == "poor" and q.n_spikes == (16, 0) and q.reason.endswith("try X")


def test_a_diverging_run_is_poor():
    q = judge_fit([(T, RECORDED)], [None], noise=0.5, warn=False)
    assert q.verdict == "poor" and q.rms_mV == float("inf") and "diverges" in q.reason


def test_spike_timing_drift_is_poor_alone_but_good_with_a_windowed_fit_at_the_noise_level():
    """Every spike 1 ms late: Γ stays 1 (±2 ms) but the free-run RMS is far above 0.35 x the spread."""
    drifted = _spiking(T, SPIKES + 1.0)
    alone = judge_fit([(T, RECORDED)], [drifted], noise=0.5, warn=False)
    assert alone.gamma == pytest.approx(1.0) and alone.rms_mV > 0.35 * alone.scale_mV
    assert alone.verdict == "poor"
    at_noise = judge_fit([(T, RECORDED)], [drifted], noise=0.5, warn=False, window_rms=0.52)
    assert at_noise.ok and "drift" in at_noise.reason and at_noise.window_rms_mV == 0.52
    # a windowed fit well above the noise does not excuse the drift
    assert judge_fit([(T, RECORDED)], [drifted], noise=0.5, warn=False, window_rms=3.0).verdict == "poor"
    # nor does a windowed fit at the noise level excuse lost spikes
    lost = judge_fit([(T, RECORDED)], [np.full_like(T, -65.0)], noise=0.5, warn=False, window_rms=0.5)
    assert lost.verdict == "poor"


def test_quality_round_trips_through_its_dict():
    for window in (None, 0.52):
        q = judge_fit([(T, RECORDED)], [_spiking(T, SPIKES + 1.0)], noise=0.5, warn=False, window_rms=window)
        assert FitQuality.from_dict(q.to_dict()) == q
    old = judge_fit([(T, RECORDED)], [RECORDED], noise=0.5, warn=False).to_dict()
    del old["window_rms_mV"]  # records written before the field existed
    assert FitQuality.from_dict(old).window_rms_mV is None
    with pytest.raises(TraceFileError, match="malformed fit quality"):
        FitQuality.from_dict({**old, "extra": 1})
