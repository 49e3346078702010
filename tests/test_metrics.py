"""Tests of hhsym.metrics with hand-checked values."""

import numpy as np
import pytest

from hhsym.errors import InvalidArgumentError
from hhsym.library import hodgkin_huxley
from hhsym.metrics import (coincidence_factor, rate_errors, spike_times, steady_state_curves,
                           time_constant_curves)


def test_rate_errors_hand_values():
    m = hodgkin_huxley()
    assert rate_errors(m, m)["alpha_m"] == 0.0
    scaled = m.with_rates({"beta_n": 1.05 * m.rates["beta_n"]})
    err = rate_errors(scaled, m, (-75, 20))
    assert err["beta_n"] == pytest.approx(0.05, rel=1e-9)
    assert err["alpha_m"] == 0.0
    with pytest.raises(InvalidArgumentError):
        rate_errors(m, m, (20, -75))


def test_curves_at_rest():
    m = hodgkin_huxley()
    xs = steady_state_curves(m, [-65.0])
    tau = time_constant_curves(m, [-65.0])
    a, b = 0.1 / (np.e - 1.0), 0.125  # alpha_n(-65) = 0.01*(-10)/(1 - e)
    assert xs["n"][0] == pytest.approx(a / (a + b), rel=1e-12)
    assert tau["n"][0] == pytest.approx(1 / (a + b), rel=1e-12)


def test_spike_times_interpolated():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    v = np.array([-10.0, 10.0, 20.0, -5.0, 15.0])
    np.testing.assert_allclose(spike_times(t, v), [0.5, 3.25])
    assert spike_times(t, -np.abs(v)).size == 0


def test_coincidence_factor_values():
    a = np.array([10.0, 50.0, 90.0])
    assert coincidence_factor(a, a, 2.0, 100.0) == pytest.approx(1.0)
    # one of three matched: N_coinc = 1, expected 2*0.03*2*3 = 0.36, norm 1 - 0.12
    g = coincidence_factor(a, [11.0, 30.0, 70.0], 2.0, 100.0)
    assert g == pytest.approx((1 - 0.36) / 3.0 / 0.88)
    assert coincidence_factor([], [], 2.0, 100.0) == 1.0
    assert coincidence_factor(a, [], 2.0, 100.0) == 0.0
    with pytest.raises(InvalidArgumentError):
        coincidence_factor(a, a, 2.0, None)


def test_rate_errors_where_rates_matter():
    from hhsym.library import hodgkin_huxley
    from hhsym.metrics import rate_errors

    hh = hodgkin_huxley()
    off = hh.with_rates({k: (1.2 if k == "alpha_h" else 1.0) * e for k, e in hh.rates.items()})
    full = rate_errors(off, hh, (-75.0, 20.0))
    share = rate_errors(off, hh, (-75.0, 20.0), min_share=0.05)
    assert abs(full["alpha_h"] - 0.2) < 1e-9 and abs(share["alpha_h"] - 0.2) < 1e-9
    assert share["beta_m"] < 1e-12
    with pytest.raises(ValueError, match="min_share"):
        rate_errors(off, hh, min_share=2.0)


def test_band_coverage_counts_the_truth_inside_the_bands():
    """band_coverage on rates given with their standard deviations: exact rates are covered, rates 10 %
    off with 1 % bands are not, and bands of 10 % / 1.96 cover exactly at the edge."""
    from hhsym.library import hodgkin_huxley
    from hhsym.metrics import band_coverage

    hh = hodgkin_huxley()

    class Banded:  # rates with standard deviations, as a fitted RateEstimator gives them
        def __init__(self, factor, rel_sd):
            self.factor, self.rel_sd = factor, rel_sd

        def predict_rates(self, V, return_std=False):
            r = {k: self.factor * v for k, v in hh.evaluate_rates(V).items()}
            return (r, {k: self.rel_sd * v for k, v in r.items()}) if return_std else r

    assert band_coverage(Banded(1.0, 1e-9), hh) == 1.0
    assert band_coverage(Banded(1.1, 0.01), hh) == 0.0
    assert band_coverage(Banded(1.1, 0.1), hh) == 1.0
