"""Tests of the output error's continuation over window lengths (hhsym.estimate.search.continuation): the
carried initial states chosen window by window, and a continuation started from a run's own states."""

import numpy as np
import pytest

from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.search.continuation import _best_per_window, continue_windows, noise_estimate
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise

GRID = np.linspace(-76.0, 35.0, 200)


@pytest.fixture(scope="module")
def setting():
    hh = hodgkin_huxley()
    tr = simulate(hh, OUNoise(mean=9.0, sigma=6.0, tau=3.0, seed=3), 60.0, dt=0.005, dt_out=0.05)
    tr = tr.with_noise(0.2, seed=1)
    fam = FormFamily(hh, model_forms(hh, GRID))
    return hh, [(tr.dt, tr.V, tr.I)], fam, fam.pack(model_forms(hh, GRID))


def _window_costs(tp, p, Y):
    return np.concatenate([np.sum(R * R, axis=1) for R, _, _ in tp.blocks(p, Y, False)])


def test_carried_states_are_chosen_window_by_window(setting):
    """Of two candidate state sets, each window keeps the one that fits it better: the mix fits every
    window at least as well as either candidate (then refitted, better still)."""
    hh, data, fam, p = setting
    tp = TrajectoryProblem(fam, hh, data, window=5.0)
    good = tp.fit(p, None, max_iter=20, fit_family=False)[1]
    bad = good.copy()
    bad[:, 0] += 8.0  # 8 mV off: a worse start in every window
    a, b = good.copy(), bad.copy()
    half = np.arange(len(good)) % 2 == 1
    a[half], b[half] = bad[half], good[half]  # each candidate is right in half the windows
    mixed = _best_per_window(tp, p, [a, b])
    ca, cb, cm = (_window_costs(tp, p, Y) for Y in (a, b, mixed))
    assert np.all(cm <= np.minimum(ca, cb) * (1 + 1e-9))
    assert cm.sum() <= 1.001 * _window_costs(tp, p, good).sum()
    assert cm.sum() < 0.5 * min(ca.sum(), cb.sum())
    np.testing.assert_array_equal(_best_per_window(tp, p, [good]), good)  # one candidate: as it is


def test_a_continuation_starts_from_a_runs_own_states(setting):
    """``states=``: the first length starts from a run's fitted states over the same length, and so starts
    (and ends) at that run's cost, without refitting from the recorded potential."""
    hh, data, fam, p = setting
    run = continue_windows(fam, hh, data, p, (2.5, 5.0), max_iter=5)
    again = continue_windows(fam, hh, data, run.p, (5.0,), max_iter=0, states=run.states)
    assert again.cost <= run.cost * (1 + 1e-9)
    assert again.states.shape == run.states.shape


def test_a_length_that_leaves_the_recordings_ends_the_continuation(setting):
    """``max_rms``: when a longer window length's fit leaves more RMS than the recordings allow and the
    length before's did not, the continuation returns the length before's fit and says why; a limit every
    length meets changes nothing."""
    hh, data, fam, p = setting
    off = p * (1.0 + 0.04 * np.cos(np.arange(p.size)))  # every constant a few per cent off, not refitted
    short = continue_windows(fam, hh, data, off, (1.25,), max_iter=0)
    long = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0)
    r_short, r_long = np.sqrt(2 * short.cost), np.sqrt(2 * long.cost)
    assert r_long > 1.2 * r_short  # the model a little off drifts away over longer windows
    limit = np.sqrt(r_short * r_long)
    stopped = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0, max_rms=limit)
    assert stopped.windows == (1.25,) and stopped.cost == short.cost
    assert "at 10 ms windows the model leaves the recordings" in stopped.stopped
    loose = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0, max_rms=2 * r_long)
    assert loose.windows == (1.25, 10.0) and loose.cost == long.cost and loose.stopped is None


def test_the_noise_estimate_counts_the_free_states(setting):
    """``noise_estimate``: at the true constants the residuals' RMS over 1.25 ms windows is below the noise
    (each window's 4 free states absorb part of it); corrected for them it is the noise added (0.2 mV)."""
    hh, data, fam, p = setting
    run = continue_windows(fam, hh, data, p, (1.25,), max_iter=0)
    rms = np.sqrt(2 * run.cost)
    assert rms < 0.19
    assert noise_estimate(run.cost, run.problem) == pytest.approx(0.2, rel=0.05)
    assert noise_estimate(np.inf, run.problem) == np.inf


def test_a_length_where_the_residuals_grow_ends_the_continuation(setting):
    """``max_growth``: a length whose residuals imply more noise than the first length's by more than the
    factor ends the continuation with the length before's fit; a factor every length meets changes nothing."""
    hh, data, fam, p = setting
    off = p * (1.0 + 0.04 * np.cos(np.arange(p.size)))
    short = continue_windows(fam, hh, data, off, (1.25,), max_iter=0)
    long = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0)
    growth = noise_estimate(long.cost, long.problem) / noise_estimate(short.cost, short.problem)
    assert growth > 1.2
    stopped = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0, max_growth=np.sqrt(growth))
    assert stopped.windows == (1.25,) and stopped.cost == short.cost
    assert "at 10 ms windows the residuals imply" in stopped.stopped
    loose = continue_windows(fam, hh, data, off, (1.25, 10.0), max_iter=0, max_growth=1.01 * growth)
    assert loose.windows == (1.25, 10.0) and loose.cost == long.cost and loose.stopped is None


@pytest.mark.parametrize("bad", [0.5, float("nan"), float("inf"), "1.1", True])
def test_max_growth_must_be_a_factor_of_at_least_one(setting, bad):
    """A ``max_growth`` that is not a finite factor >= 1 is refused, naming the argument; a numpy float is
    a factor like any other."""
    from hhsym.errors import HHSymError

    hh, data, fam, p = setting
    with pytest.raises(HHSymError, match="max_growth"):
        continue_windows(fam, hh, data, p, (1.25,), max_iter=0, max_growth=bad)
    assert continue_windows(fam, hh, data, p, (1.25,), max_iter=0, max_growth=np.float64(1.1)).stopped is None
