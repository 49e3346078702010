"""Tests of hhsym.stimuli and the numba evaluator hhsym.integrate.stimulus_kernel."""

import json
import math

import numpy as np
import pytest

from hhsym.errors import ArgumentTypeError, HHSymError, InvalidArgumentError, UnknownNameError
from hhsym.stimuli import (
    N_PAR,
    PULSES,
    RAMP,
    SINE,
    STEP,
    TABLE_SORTED,
    TABLE_UNIFORM,
    FromArray,
    OUNoise,
    PulseTrain,
    Ramp,
    Sine,
    Step,
    Stimulus,
    StimulusTable,
    Sum,
    encode_stimuli,
    stimulus_from_dict,
)


def nonuniform_array(seed=0, n=400):
    rng = np.random.default_rng(seed)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.05, 0.5, n - 1))])
    return FromArray(t, rng.normal(size=n))


def all_kinds():
    """One stimulus of every kind, plus sums (all defined on [0, 100])."""
    t_u = np.linspace(0.0, 120.0, 1201)
    base = [
        Step(10.0, 5.0, 50.0),
        Step(-3.0, 0.0, np.inf),
        Ramp(1.0, 3.0, 2.0, 8.0),
        PulseTrain(2.0, 1.0, 3.0, start=0.5, stop=40.0),
        PulseTrain(5.0, 0.3, 0.7),
        Sine(2.0, 100.0, 3.0, 60.0, 0.3, 1.0),
        OUNoise(1.0, 2.0, 5.0, seed=3, stop=70.0, dt=0.1),
        OUNoise(-1.0, 0.5, 1.0, seed=4, start=10.0, dt=0.05),
        FromArray(t_u, np.sin(t_u / 7.0)),
        nonuniform_array(),
    ]
    return base + [sum(base[:8]), base[0] + (base[8] + base[9])]


# --------------------------------------------------------------------------- #
# values
# --------------------------------------------------------------------------- #
def test_step_values_and_right_continuity():
    s = Step(10.0, 5.0, 50.0)
    assert s(4.999) == 0.0
    assert s(5.0) == 10.0
    assert s(20.0) == 10.0
    assert s(49.999) == 10.0
    assert s(50.0) == 0.0
    assert isinstance(s(5.0), float)
    out = s(np.array([[0.0, 5.0], [49.0, 50.0]]))
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[0.0, 10.0], [10.0, 0.0]])
    assert s([5, 6]).tolist() == [10.0, 10.0]


def test_step_holding_current():
    s = Step(-2.0, 0.0, np.inf)
    assert s(0.0) == -2.0 and s(1e9) == -2.0
    np.testing.assert_array_equal(s.breakpoints(100.0), [])


def test_ramp_values():
    r = Ramp(1.0, 3.0, 2.0, 8.0)
    assert r(1.999) == 0.0
    assert r(2.0) == 1.0
    assert r(5.0) == pytest.approx(2.0, abs=1e-15)
    assert r(7.0) == pytest.approx(1.0 + 2.0 * 5.0 / 6.0, abs=1e-15)
    assert r(8.0) == 0.0
    np.testing.assert_array_equal(r.breakpoints(100.0), [2.0, 8.0])


def test_pulse_train_values():
    p = PulseTrain(2.0, 1.0, 3.0, start=0.5, stop=10.0)
    expect = {0.0: 0, 0.5: 2, 1.4: 2, 1.5: 0, 3.4: 0, 3.5: 2, 4.49: 2, 4.5: 0, 9.5: 2, 9.9: 2, 10.0: 0, 12.5: 0}
    for t, v in expect.items():
        assert p(t) == v, t
    np.testing.assert_array_equal(
        p.breakpoints(100.0), [0.5, 1.5, 3.5, 4.5, 6.5, 7.5, 9.5, 10.0]
    )
    np.testing.assert_array_equal(p.breakpoints(4.0), [0.5, 1.5, 3.5])


def test_pulse_train_exact_at_float_onsets():
    # period not representable in binary: onsets k*0.1 must still switch on exactly there
    p = PulseTrain(1.0, 0.05, 0.1, start=0.0)
    b = p.breakpoints(50.0)
    assert b.size == 999
    vals = p(b)
    onsets, offsets = b[1::2], b[0::2]
    # breakpoints alternate offset (0.05), onset (0.1), offset (0.15), ...
    assert np.all(p(onsets) == 1.0)
    assert np.all(p(offsets) == 0.0)
    assert vals.size == b.size
    assert np.all(p(np.nextafter(onsets, -np.inf)) == 0.0)


def test_pulse_train_negative_start():
    p = PulseTrain(1.0, 1.0, 4.0, start=-2.5)
    assert p(0.0) == 0.0  # -2.5 .. -1.5 on, 1.5 .. 2.5 on
    assert p(1.5) == 1.0
    np.testing.assert_array_equal(p.breakpoints(6.0), [1.5, 2.5, 5.5])


def test_sine_values():
    s = Sine(2.0, 100.0, start=3.0, stop=60.0, phase=0.3, offset=1.0)
    assert s(2.9) == 0.0
    for t in (3.0, 7.25, 59.9):
        assert s(t) == pytest.approx(1.0 + 2.0 * math.sin(2 * math.pi * 100.0 * t / 1000 + 0.3), abs=1e-13)
    assert s(60.0) == 0.0
    # 100 Hz -> period 10 ms
    assert Sine(1.0, 100.0)(2.5) == pytest.approx(1.0)
    assert Sine(1.0, 100.0)(10.0) == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_array_equal(s.breakpoints(100.0), [3.0, 60.0])
    np.testing.assert_array_equal(Sine(1.0, 10.0).breakpoints(100.0), [])


def test_sum_and_add():
    a, b, c = Step(1.0, 0.0, 10.0), Ramp(0.0, 1.0, 5.0, 15.0), Sine(1.0, 50.0)
    s = a + b
    assert isinstance(s, Sum)
    t = np.linspace(0, 20, 201)
    np.testing.assert_array_equal(s(t), a(t) + b(t))
    total = sum([a, b, c])
    assert isinstance(total, Sum) and len(total.terms) == 3
    nested = (a + b) + (c + a)
    assert len(nested.terms) == 4 and all(not isinstance(x, Sum) for x in nested.terms)
    assert 0 + a is a and a + 0 is a
    assert np.float64(0.0) + a is a
    np.testing.assert_array_equal(total.breakpoints(30.0), [5.0, 10.0, 15.0])
    assert Sum()(3.0) == 0.0
    assert Sum().breakpoints(10.0).size == 0


@pytest.mark.parametrize("stim", all_kinds(), ids=lambda s: type(s).__name__)
def test_right_continuity_at_breakpoints(stim):
    b = stim.breakpoints(100.0)
    assert np.all(np.diff(b) > 0) and np.all((b > 0) & (b < 100.0))
    b = b[b <= stim.end_time]
    if isinstance(stim, Sum):
        # jumps of different terms a few ulp apart are merged into the first:
        # look just past the merge window
        at = stim(b + 2e-11 * np.maximum(1.0, b))
    else:
        at = stim(b)
    if b.size:
        after = stim(b + 1e-9)
        np.testing.assert_allclose(at, after, atol=1e-6)


def test_breakpoints_filtered_and_validated():
    s = Step(1.0, 5.0, 50.0)
    np.testing.assert_array_equal(s.breakpoints(50.0), [5.0])
    np.testing.assert_array_equal(s.breakpoints(5.0), [])
    assert Step(1.0, 0.0, 10.0).breakpoints(100.0).tolist() == [10.0]
    assert s.breakpoints(100.0).dtype == np.float64
    with pytest.raises(InvalidArgumentError, match="t_stop"):
        s.breakpoints(0.0)
    with pytest.raises(InvalidArgumentError, match="t_stop"):
        s.breakpoints(np.inf)


def test_breakpoints_a_few_ulp_apart_are_merged():
    a = PulseTrain(5.0, 0.3, 0.7)  # offsets k*0.7 + 0.3, e.g. 4.499999999999999
    b = PulseTrain(2.0, 1.0, 3.0, start=0.5)  # offset 1.5 + 3 = 4.5
    assert 6 * 0.7 + 0.3 != 4.5
    bp = (a + b).breakpoints(100.0)
    assert np.min(np.diff(bp)) > 1e-11
    assert np.sum(np.abs(bp - 4.5) < 1e-12) == 1
    raw = np.concatenate([a.breakpoints(100.0), b.breakpoints(100.0)])
    # every raw jump is within the tolerance of a kept breakpoint
    assert np.max(np.min(np.abs(raw[:, None] - bp[None, :]), axis=1)) <= 1e-11 * 100
    # jumps within the tolerance of 0 or t_stop are dropped
    assert Step(1.0, 1e-13, 10.0).breakpoints(20.0).tolist() == [10.0]
    assert Step(1.0, 1.0, 10.0 - 1e-14).breakpoints(10.0).tolist() == [1.0]


def test_end_time():
    fa = nonuniform_array()
    assert Step(1.0, 0.0, 5.0).end_time == np.inf
    assert OUNoise(0, 1, 1, seed=0).end_time == np.inf
    assert fa.end_time == fa.t[-1]
    assert (Step(1.0, 0.0, 5.0) + fa).end_time == fa.t[-1]


def test_repr():
    assert repr(Step(10.0, 5.0, 50.0)) == "Step(amplitude=10.0, start=5.0, stop=50.0)"
    assert "PulseTrain(amplitude=2.0, width=1.0, period=3.0" in repr(PulseTrain(2.0, 1.0, 3.0))
    assert repr(Step(1, 0, 1) + Sine(1, 2)).startswith("Sum(Step(")
    r = repr(FromArray([0.0, 1.0, 2.0], [0.0, 1.0, 0.0]))
    assert "n=3" in r and "uniform dt=1.0" in r and "np.float64" not in r
    assert "seed=7" in repr(OUNoise(0.0, 1.0, 2.0, seed=7))


# --------------------------------------------------------------------------- #
# OU noise
# --------------------------------------------------------------------------- #
def test_ou_reproducible_and_seed_dependent():
    t = np.linspace(0.0, 50.0, 777)
    a = OUNoise(0.5, 2.0, 3.0, seed=11)(t)
    b = OUNoise(0.5, 2.0, 3.0, seed=11)(t)
    c = OUNoise(0.5, 2.0, 3.0, seed=12)(t)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def _ou_reference(mean, sigma, tau, seed, dt, sizes):
    """The OU samples drawn and updated one by one in Python (the pre-vectorised generator).

    ``sizes``: the successive cache sizes requested; the realisation grows by
    ``max(n - have, have)`` samples per request, as OUNoise's cache does.
    """
    rng = np.random.default_rng(seed)
    a = math.exp(-dt / tau)
    b = sigma * math.sqrt(-math.expm1(-2.0 * dt / tau))
    dev = []
    for n in sizes:
        have = len(dev)
        if have >= n:
            continue
        for zk in rng.standard_normal(max(n - have, have)).tolist():
            dev.append(sigma * zk if not dev else a * dev[-1] + b * zk)
    return mean + np.array(dev)


@pytest.mark.parametrize("seed", [0, 1, 7, 123456789])
def test_ou_samples_bit_identical_to_the_python_loop(seed):
    """The vectorised draw + compiled recurrence gives exactly the sample-by-sample values."""
    ou = OUNoise(0.7, 3.0, 2.5, seed=seed, dt=0.025)
    _, first = ou.samples(10.0)          # 402 samples
    _, grown = ou.samples(1000.0)        # grows the cache twice
    ref = _ou_reference(0.7, 3.0, 2.5, seed, 0.025, [402, 40002])
    np.testing.assert_array_equal(first, ref[:402])
    np.testing.assert_array_equal(grown, ref[:grown.size])
    # a fresh object asked for the long grid at once draws a different partition of the
    # same rng stream, but the same values
    _, direct = OUNoise(0.7, 3.0, 2.5, seed=seed, dt=0.025).samples(1000.0)
    np.testing.assert_array_equal(direct, grown)


def test_ou_prefix_property():
    t = np.linspace(0.0, 20.0, 501)
    short = OUNoise(0.0, 1.0, 2.0, seed=5, dt=0.1)
    v_short = short(t)
    long = OUNoise(0.0, 1.0, 2.0, seed=5, dt=0.1)
    long(5000.0)  # generate far beyond first
    np.testing.assert_array_equal(long(t), v_short)
    # growing the cache of an existing object does not change earlier values
    short(3000.0)
    np.testing.assert_array_equal(short(t), v_short)
    # and encodings for different t_stop share their prefix
    d_short = OUNoise(0.0, 1.0, 2.0, seed=5, dt=0.1).encode(20.0)[0].data
    d_long = OUNoise(0.0, 1.0, 2.0, seed=5, dt=0.1).encode(2000.0)[0].data
    np.testing.assert_array_equal(d_long[: d_short.size], d_short)
    _, grid = OUNoise(0.0, 1.0, 2.0, seed=5, dt=0.1).samples(20.0)
    np.testing.assert_array_equal(grid, d_short)


def test_ou_exact_update_from_seeded_generator():
    mean, sigma, tau, dt = 0.5, 2.0, 3.0, 0.2
    _, x = OUNoise(mean, sigma, tau, seed=9, dt=dt).samples(10.0)
    z = np.random.default_rng(9).standard_normal(x.size)
    a = math.exp(-dt / tau)
    b = sigma * math.sqrt(1.0 - a * a)
    expect = np.empty(x.size)
    expect[0] = mean + sigma * z[0]
    for k in range(1, x.size):
        expect[k] = mean + a * (expect[k - 1] - mean) + b * z[k]
    np.testing.assert_allclose(x, expect, rtol=0, atol=1e-13)


def test_ou_interpolates_grid_and_window():
    s = OUNoise(1.0, 2.0, 5.0, seed=3, start=10.0, stop=30.0, dt=0.5)
    tg, xg = s.samples(30.0)
    assert tg[0] == 10.0 and tg[-1] >= 30.0
    inside = tg < 30.0
    np.testing.assert_array_equal(s(tg[inside]), xg[inside])
    mid = 0.5 * (tg[3] + tg[4])
    assert s(mid) == pytest.approx(0.5 * (xg[3] + xg[4]), abs=1e-14)
    assert s(9.99) == 0.0 and s(30.0) == 0.0 and s(10.0) == xg[0]


def test_ou_zero_sigma_is_mean():
    s = OUNoise(3.5, 0.0, 5.0, seed=1)
    np.testing.assert_array_equal(s(np.linspace(0, 10, 11)), 3.5)


def test_ou_statistics():
    mean, sigma, tau, dt = 1.5, 2.0, 5.0, 0.1
    T = 100_000.0
    s = OUNoise(mean, sigma, tau, seed=2024, dt=dt)
    _, x = s.samples(T)
    # standard error of the mean ~ sigma*sqrt(2 tau / T) = 0.02
    assert abs(x.mean() - mean) < 0.08
    assert abs(x.std() - sigma) / sigma < 0.03
    y = x - x.mean()
    lag = int(round(tau / dt))
    acf = np.dot(y[:-lag], y[lag:]) / np.dot(y, y)
    assert abs(acf - math.exp(-1.0)) < 0.03
    a1 = np.dot(y[:-1], y[1:]) / np.dot(y, y)
    assert -dt / math.log(a1) == pytest.approx(tau, rel=0.05)
    # started from the stationary distribution: first samples over many seeds
    first = np.array([OUNoise(mean, sigma, tau, seed=k).samples(0.1)[1][0] for k in range(2000)])
    assert abs(first.mean() - mean) < 0.15
    assert abs(first.std() - sigma) / sigma < 0.06


# --------------------------------------------------------------------------- #
# FromArray
# --------------------------------------------------------------------------- #
def test_from_array_uniform_lookup():
    t = np.linspace(0.0, 10.0, 101)
    fa = FromArray(t, 2.0 * t + 1.0)
    assert fa.is_uniform
    tq = np.random.default_rng(0).uniform(0, 10, 500)
    np.testing.assert_allclose(fa(tq), 2.0 * tq + 1.0, rtol=1e-13, atol=1e-12)
    assert fa(0.0) == 1.0 and fa(10.0) == pytest.approx(21.0, abs=1e-12)
    np.testing.assert_allclose(fa(t), 2.0 * t + 1.0, atol=1e-12)
    # uniform within the tolerance: jitter of 1e-12 relative to dt
    jitter = t + 1e-13 * np.sin(np.arange(101))
    assert FromArray(jitter, t).is_uniform


def test_from_array_sorted_lookup():
    t = np.array([0.0, 1.0, 1.5, 4.0, 4.1])
    fa = FromArray(t, [0.0, 2.0, -1.0, 4.0, 0.0])
    assert not fa.is_uniform
    assert fa(0.5) == 1.0
    assert fa(1.0) == 2.0
    assert fa(1.25) == 0.5
    assert fa(2.75) == 1.5
    assert fa(4.1) == 0.0
    tq = np.random.default_rng(1).uniform(0, 4.1, 300)
    np.testing.assert_allclose(fa(tq), np.interp(tq, t, fa.I), atol=1e-13)
    assert fa.breakpoints(10.0).tolist() == [4.1]


def test_from_array_outside_raises():
    fa = FromArray([1.0, 2.0, 3.0], [0.0, 1.0, 0.0])
    with pytest.raises(InvalidArgumentError, match=r"t=0\.5.*\[1\.0, 3\.0\]"):
        fa(np.array([1.5, 0.5]))
    with pytest.raises(InvalidArgumentError, match="t=3.01"):
        fa(3.01)


def test_from_array_copies_input():
    t = np.array([0.0, 1.0, 2.0])
    I = np.array([0.0, 1.0, 0.0])
    fa = FromArray(t, I)
    I[1] = 99.0
    assert fa(1.0) == 1.0


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
ERRORS = [
    (lambda: Step("1", 0, 1), ArgumentTypeError, "amplitude"),
    (lambda: Step(True, 0, 1), ArgumentTypeError, "amplitude"),
    (lambda: Step(np.nan, 0, 1), InvalidArgumentError, "amplitude"),
    (lambda: Step(np.inf, 0, 1), InvalidArgumentError, "amplitude"),
    (lambda: Step(1, np.inf, 1), InvalidArgumentError, "start"),
    (lambda: Step(1, 5, 5), InvalidArgumentError, "stop"),
    (lambda: Step(1, 5, 2), InvalidArgumentError, "stop"),
    (lambda: Step(1, 5, np.nan), InvalidArgumentError, "stop"),
    (lambda: Ramp(1, 2, 0, np.inf), InvalidArgumentError, "stop"),
    (lambda: Ramp(1, None, 0, 1), ArgumentTypeError, "amplitude_stop"),
    (lambda: Ramp(np.nan, 1, 0, 1), InvalidArgumentError, "amplitude_start"),
    (lambda: PulseTrain(1, 0, 2), InvalidArgumentError, "width"),
    (lambda: PulseTrain(1, -1, 2), InvalidArgumentError, "width"),
    (lambda: PulseTrain(1, 2, 2), InvalidArgumentError, "period"),
    (lambda: PulseTrain(1, 1, np.inf), InvalidArgumentError, "period"),
    (lambda: PulseTrain(1, 1, 2, start=3, stop=1), InvalidArgumentError, "stop"),
    (lambda: Sine(1, -5), InvalidArgumentError, "frequency"),
    (lambda: Sine(1, 5, phase=np.nan), InvalidArgumentError, "phase"),
    (lambda: Sine(1, 5, offset="0"), ArgumentTypeError, "offset"),
    (lambda: OUNoise(0, 1, 0, seed=1), InvalidArgumentError, "tau"),
    (lambda: OUNoise(0, -1, 1, seed=1), InvalidArgumentError, "sigma"),
    (lambda: OUNoise(0, 1, 1, seed=1.5), ArgumentTypeError, "seed"),
    (lambda: OUNoise(0, 1, 1, seed=-1), InvalidArgumentError, "seed"),
    (lambda: OUNoise(0, 1, 1, seed=None), ArgumentTypeError, "seed"),
    (lambda: OUNoise(0, 1, 1, seed=1, dt=0), InvalidArgumentError, "dt"),
    (lambda: OUNoise(np.nan, 1, 1, seed=1), InvalidArgumentError, "mean"),
    (lambda: FromArray([0, 1, np.nan], [0, 1, 2]), InvalidArgumentError, r"t\[2\] is nan"),
    (lambda: FromArray([0, 1, 2], [0, np.inf, 2]), InvalidArgumentError, r"I\[1\] is inf"),
    (lambda: FromArray([0, 1, 1, 2], [0, 1, 2, 3]), InvalidArgumentError, r"t\[2\]=1\.0"),
    (lambda: FromArray([0, 2, 1], [0, 1, 2]), InvalidArgumentError, r"t\[2\]"),
    (lambda: FromArray([0, 1, 2], [0, 1]), InvalidArgumentError, "I="),
    (lambda: FromArray([0.0], [1.0]), InvalidArgumentError, "at least 2"),
    (lambda: FromArray([[0, 1], [2, 3]], [0, 1]), InvalidArgumentError, "shape"),
    (lambda: FromArray(["a", "b"], [0, 1]), ArgumentTypeError, "t="),
    (lambda: Step(1, 0, 1)(np.nan), InvalidArgumentError, "t="),
    (lambda: Step(1, 0, 1)([0.0, np.inf]), InvalidArgumentError, "element 1"),
    (lambda: Step(1, 0, 1)("3"), ArgumentTypeError, "t="),
    (lambda: Step(1, 0, 1) + 3.0, ArgumentTypeError, "other"),
    (lambda: "x" + Step(1, 0, 1), ArgumentTypeError, "other"),
    (lambda: Sum(Step(1, 0, 1), 2), ArgumentTypeError, r"terms\[1\]"),
    (lambda: Step(1, 0, 1).encode(-1), InvalidArgumentError, "t_stop"),
    (lambda: encode_stimuli([Step(1, 0, 1), "x"], 10), ArgumentTypeError, r"stimuli\[1\]"),
    (lambda: encode_stimuli(5, 10), ArgumentTypeError, "stimuli"),
    (lambda: stimulus_from_dict({"type": "Square"}), UnknownNameError, "type"),
    (lambda: stimulus_from_dict([1]), ArgumentTypeError, "d="),
    (lambda: stimulus_from_dict({"type": "Step", "amplitude": 1}), InvalidArgumentError, "Step"),
    (lambda: stimulus_from_dict({"type": "Step", "amplitude": 1, "start": 0, "stop": -1}), InvalidArgumentError, "stop"),
]


@pytest.mark.parametrize("make, cls, text", ERRORS)
def test_error_paths(make, cls, text):
    with pytest.raises(cls, match=text) as info:
        make()
    assert isinstance(info.value, HHSymError)


def test_error_message_shows_value_and_accepted():
    with pytest.raises(InvalidArgumentError) as info:
        PulseTrain(1.0, 2.0, 1.5)
    msg = str(info.value)
    assert "period=1.5" in msg and "greater than width" in msg and "width=2.0" in msg


# --------------------------------------------------------------------------- #
# dict round trip
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("stim", all_kinds(), ids=lambda s: type(s).__name__)
def test_dict_round_trip(stim):
    d = stim.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = stimulus_from_dict(json.loads(text))
    assert type(back) is type(stim)
    assert back.to_dict() == d
    t = np.linspace(0.0, min(100.0, stim.end_time), 2001)
    np.testing.assert_array_equal(back(t), stim(t))


# --------------------------------------------------------------------------- #
# kernel encoding and numba evaluator
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def kernel():
    from hhsym.integrate import stimulus_kernel

    return stimulus_kernel


def test_encode_layout():
    stims = all_kinds()
    tab = encode_stimuli(stims + [None], 100.0)
    assert isinstance(tab, StimulusTable)
    n = len(stims) + 1
    assert tab.ptr.dtype == np.int64 and tab.ptr.shape == (n + 1,)
    assert tab.kind.dtype == np.int64 and tab.par.shape == (tab.kind.size, N_PAR)
    assert tab.par.dtype == np.float64 and tab.data.dtype == np.float64
    assert tab.bp_ptr.shape == (n + 1,) and tab.ptr[-2] == tab.ptr[-1]
    assert tab.kind[: 10].tolist() == [STEP, STEP, RAMP, PULSES, PULSES, SINE,
                                       TABLE_UNIFORM, TABLE_UNIFORM, TABLE_UNIFORM, TABLE_SORTED]
    for i, s in enumerate(stims):
        np.testing.assert_array_equal(tab.bp[tab.bp_ptr[i]:tab.bp_ptr[i + 1]], s.breakpoints(100.0))
    single = encode_stimuli(Step(1.0, 0.0, 1.0), 10.0)
    assert single.ptr.tolist() == [0, 1]
    empty = encode_stimuli([], 10.0)
    assert empty.ptr.tolist() == [0] and empty.par.shape == (0, N_PAR)


def test_kernel_kind_codes_match(kernel):
    import hhsym.stimuli as st

    for name in ("STEP", "RAMP", "PULSES", "SINE", "TABLE_UNIFORM", "TABLE_SORTED"):
        assert getattr(kernel, name) == getattr(st, name), name
    codes = [STEP, RAMP, PULSES, SINE, TABLE_UNIFORM, TABLE_SORTED]
    assert sorted(set(codes)) == codes


def test_kernel_matches_python(kernel):
    stims = all_kinds()
    tab = encode_stimuli(stims, 100.0)
    rng = np.random.default_rng(42)
    t = np.concatenate([rng.uniform(0.0, 100.0, 3000), np.linspace(0, 100, 1001)])
    for i, s in enumerate(stims):
        tt = t[t <= s.end_time]
        tt = np.concatenate([tt, s.breakpoints(100.0)])  # exactly at the jumps too
        tt = tt[tt <= s.end_time]
        py = s(tt)
        nb = np.array([kernel.stim_at(i, x, tab.ptr, tab.kind, tab.par, tab.data) for x in tt])
        np.testing.assert_allclose(nb, py, rtol=0, atol=1e-12, err_msg=repr(s))


def test_kernel_table_holds_zero_outside(kernel):
    fa = FromArray([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
    fs = FromArray([10.0, 10.5, 12.0], [1.0, 2.0, 3.0])
    tab = encode_stimuli([fa, fs], 20.0)
    for i in (0, 1):
        args = (tab.ptr, tab.kind, tab.par, tab.data)
        assert kernel.stim_at(i, 9.99, *args) == 0.0
        assert kernel.stim_at(i, 10.0, *args) == 1.0
        assert kernel.stim_at(i, 12.0, *args) == 3.0
        assert kernel.stim_at(i, 12.01, *args) == 0.0


def test_stim_in_one_sided_at_step_edges(kernel):
    s = Step(10.0, 5.0, 50.0) + PulseTrain(1.0, 0.5, 2.0, start=20.0)
    tab = encode_stimuli([s], 100.0)
    args = (tab.ptr, tab.kind, tab.par, tab.data)
    # at the step onset: from the step that starts there, the value after the jump
    assert kernel.stim_in(0, 5.0, 5.0, 5.1, *args) == 10.0
    # from the step that ends there, the value before it
    assert kernel.stim_in(0, 5.0, 4.9, 5.0, *args) == 0.0
    assert kernel.stim_in(0, 50.0, 49.9, 50.0, *args) == 10.0  # step on, pulse off
    assert kernel.stim_in(0, 50.0, 50.0, 50.1, *args) == 1.0
    assert kernel.stim_in(0, 20.5, 20.4, 20.5, *args) == 11.0
    assert kernel.stim_in(0, 20.5, 20.5, 20.6, *args) == 10.0
    # interior points are unchanged
    assert kernel.stim_in(0, 30.0, 29.0, 31.0, *args) == kernel.stim_at(0, 30.0, *args)
    # and stim_at itself is right-continuous
    assert kernel.stim_at(0, 5.0, *args) == 10.0


def test_next_breakpoint(kernel):
    tab = encode_stimuli([Step(1.0, 5.0, 50.0), None], 100.0)
    assert kernel.next_breakpoint(0, 0.0, tab.bp_ptr, tab.bp) == 5.0
    assert kernel.next_breakpoint(0, 5.0, tab.bp_ptr, tab.bp) == 50.0
    assert kernel.next_breakpoint(0, 50.0, tab.bp_ptr, tab.bp) == np.inf
    assert kernel.next_breakpoint(1, 0.0, tab.bp_ptr, tab.bp) == np.inf


def test_stimulus_is_abstract():
    with pytest.raises(TypeError):
        Stimulus()


# --------------------------------------------------------------------------- #
# fast paths used by simulate(): _sample_into, breakpoints, shared encodings
# --------------------------------------------------------------------------- #
def _grids():
    """Sorted sample grids in [0, 100] ms: uniform (breakpoints on samples), non-uniform."""
    rng = np.random.default_rng(7)
    return [np.arange(10001) * 0.01, np.arange(4001) * 0.025, np.arange(301) * (1 / 3),
            np.sort(rng.uniform(0.0, 100.0, 3000)), np.array([5.0, 50.0])]


class _ShiftedStep(Step):
    """A subclass that changes the values: Step's fast sampling must not be used."""

    def _evaluate(self, t):
        return super()._evaluate(t) + 1.0


@pytest.mark.parametrize("stim", all_kinds() + [
    Step(2.5, -10.0, 0.0), Step(-0.0, 0.0, 100.0), Step(7.0, 200.0, np.inf),
    Step(1.0, 0.01 * 3, 0.01 * 7), _ShiftedStep(1.0, 5.0, 50.0)])
def test_sample_into_equals_call_bit_for_bit(stim):
    for t in _grids():
        out = np.full(t.size, np.nan)
        finite = stim._sample_into(t, out)
        ref = stim(t)
        assert finite is True
        np.testing.assert_array_equal(out, ref)
        assert np.array_equal(np.signbit(out), np.signbit(ref))


def test_sample_into_reports_non_finite_values():
    class Bad(Step):
        def _evaluate(self, t):
            out = super()._evaluate(t)
            out[1] = np.nan
            return out

    out = np.empty(11)
    assert Bad(1.0, 0.0, 1.0)._sample_into(np.arange(11.0), out) is False
    assert Step(1.0, 0.0, 1.0)._sample_into(np.arange(11.0), out) is True


def _reference_breakpoints(b, t_stop):
    """The numpy formulation of Stimulus.breakpoints before its plain-Python rewrite."""
    b = np.unique(np.asarray(b, dtype=np.float64).ravel())
    b = b[(b > 1e-11) & (b < t_stop - 1e-11 * max(1.0, t_stop))]
    if b.size < 2:
        return b
    keep = [float(b[0])]
    for x in b[1:].tolist():
        if x - keep[-1] > 1e-11 * max(1.0, abs(x)):
            keep.append(x)
    return np.array(keep, dtype=np.float64)


def test_breakpoints_match_the_numpy_formulation():
    class Raw(Step):
        def __init__(self, b):
            super().__init__(1.0, 0.0, 1.0)
            self.b = b

        def _breakpoints(self, t_stop):
            return self.b

    rng = np.random.default_rng(3)
    for k in range(200):
        b = rng.choice([0.0, -0.0, 1e-12, 5.0, 5.0 + 1e-11, 5.0 + 3e-11, 100.0, 100.0 - 1e-10,
                        np.inf, -np.inf, np.nan, -3.0], size=rng.integers(0, 12))
        b = np.concatenate([b, rng.uniform(-10.0, 120.0, rng.integers(0, 30))])
        got = Raw(b.reshape(-1, 1) if k % 2 else b).breakpoints(100.0)
        ref = _reference_breakpoints(b, 100.0)
        assert got.dtype == np.float64 and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_encode_shares_a_repeated_stimulus(kernel):
    ou = OUNoise(1.0, 2.0, 5.0, seed=3, dt=0.1)
    other = FromArray(np.linspace(0.0, 120.0, 1201), np.linspace(0.0, 1.0, 1201))
    stims = [ou, Step(1.0, 5.0, 50.0) + ou, ou, other, ou]
    tab = encode_stimuli(stims, 100.0)
    # ou's table is stored once, the sum's copy of it once more, other's once
    assert tab.data.size == 2 * ou.encode(100.0)[0].data.size + other.encode(100.0)[0].data.size
    separate = [encode_stimuli([s], 100.0) for s in stims]
    tt = np.linspace(0.0, 100.0, 777)
    for i, s in enumerate(stims):
        sep = separate[i]
        np.testing.assert_array_equal(tab.kind[tab.ptr[i]:tab.ptr[i + 1]], sep.kind)
        np.testing.assert_array_equal(tab.bp[tab.bp_ptr[i]:tab.bp_ptr[i + 1]], sep.bp)
        shared = [kernel.stim_at(i, x, tab.ptr, tab.kind, tab.par, tab.data) for x in tt]
        alone = [kernel.stim_at(0, x, sep.ptr, sep.kind, sep.par, sep.data) for x in tt]
        np.testing.assert_array_equal(shared, alone)


def _block_of_every_class():
    """Stimuli of every stage_currents class in one block: uniform tables on a shared grid and on
    others (so the block's grid coordinates are recomputed), constant ones, general sums."""
    t_u = np.linspace(0.0, 120.0, 1201)
    return [OUNoise(8.0, 4.0, 3.0, seed=k) for k in range(3)] + [
        OUNoise(1.0, 2.0, 5.0, seed=3, stop=70.0, dt=0.1),
        OUNoise(8.0, 4.0, 3.0, seed=5),
        FromArray(t_u, np.sin(t_u / 7.0)),
        OUNoise(-1.0, 0.5, 1.0, seed=4, start=10.0, dt=0.05),
        Step(10.0, 5.0, 50.0),
        OUNoise(8.0, 4.0, 3.0, seed=6) + Step(2.0, 10.0, 20.0),
        Sine(2.0, 100.0, 3.0, 60.0, 0.3, 1.0),
        OUNoise(8.0, 4.0, 3.0, seed=7, start=20.0, stop=20.0 + 1e-3 * 7),
    ]


def test_stimulus_classes(kernel):
    stims = _block_of_every_class()
    tab = encode_stimuli(stims, 100.0)
    got = [kernel.stimulus_class(i, tab.ptr, tab.kind) for i in range(len(stims))]
    U, C, G = kernel.UNIFORM, kernel.CONSTANT, kernel.GENERAL
    assert got == [U, U, U, U, U, U, U, C, G, G, U]
    assert encode_stimuli([None], 1.0).ptr.tolist() == [0, 0]
    assert kernel.stimulus_class(0, encode_stimuli([None], 1.0).ptr, np.empty(0, np.int64)) == C


def _one_grid_block():
    """OU tables on one grid and window: the block keeps each table's current segment."""
    return [OUNoise(8.0, 4.0, 3.0, seed=k, start=2.0, stop=61.3) for k in range(9)]


@pytest.mark.parametrize("n_stages", [1, 3])
@pytest.mark.parametrize("block", [_block_of_every_class, _one_grid_block])
def test_uniform_tables_take_the_values_of_the_general_path(kernel, n_stages, block):
    """Uniform tables looked up directly (and, on one grid, from each table's kept segment) give
    the stage values of the component-by-component path they took before, bit for bit, over steps
    that cross table points, windows and breakpoints; and those are stim_in's to rounding.  (The
    stand-alone stim_in can differ from the inlined evaluation in the last bit: LLVM compiles the
    two call sites differently.)"""
    stims = block()
    tab = encode_stimuli(stims, 100.0)
    nb = len(stims)
    how = np.array([kernel.stimulus_class(i, tab.ptr, tab.kind) for i in range(nb)], dtype=np.int64)
    general = np.where(how == kernel.CONSTANT, kernel.CONSTANT, kernel.GENERAL)
    shared = kernel.shared_table_grid(0, nb, tab.ptr, tab.kind, tab.par)
    assert shared == (block is _one_grid_block)
    state = {}
    for name in ("new", "old"):
        seg = np.zeros((3, nb))
        seg[0], seg[1] = np.inf, -np.inf
        tstate = np.array([1.0 if shared and name == "new" else 0.0, -1.0])
        state[name] = (seg, np.array([np.inf, -np.inf]), np.zeros((2, nb)), tstate, np.full((3, nb), np.nan))
    args = (tab.ptr, tab.kind, tab.par, tab.data)
    for dt in (0.01, 0.025, 0.07):
        for n in range(int(round(99.0 / dt))):
            t, t1 = n * dt, (n + 1) * dt
            for name, classes in (("new", how), ("old", general)):
                seg, span, cache, tstate, I3 = state[name]
                kernel.stage_currents(0, t, t1, n_stages, *args, tab.bp_ptr, tab.bp, classes, seg, span, cache,
                                      tstate, I3)
            new, old = state["new"][4][:n_stages], state["old"][4][:n_stages]
            assert new.tobytes() == old.tobytes(), (dt, n)
            if n % 97 == 0:
                want = [[kernel.stim_in(j, x, t, t1, *args) for j in range(nb)]
                        for x in (t, 0.5 * (t + t1), t1)][:n_stages]
                np.testing.assert_allclose(new, want, rtol=1e-13, atol=1e-300)  # the last bits (see the docstring)


def test_a_block_is_on_one_table_grid_only_when_all_its_tables_share_it(kernel):
    base = dict(mean=8.0, sigma=4.0, tau=3.0)
    one = [OUNoise(**base, seed=k) for k in range(4)]
    for other in (OUNoise(**base, seed=9, dt=0.03), OUNoise(**base, seed=9, start=1.0),
                  OUNoise(**base, seed=9, stop=50.0), OUNoise(**base, seed=9) + Step(1.0, 2.0, 3.0),
                  Step(1.0, 2.0, 3.0)):
        tab = encode_stimuli(one + [other], 100.0)
        assert kernel.shared_table_grid(0, 4, tab.ptr, tab.kind, tab.par)
        assert not kernel.shared_table_grid(0, 5, tab.ptr, tab.kind, tab.par)
    tab = encode_stimuli(one, 100.0)
    assert not kernel.shared_table_grid(0, 0, tab.ptr, tab.kind, tab.par)
    short = encode_stimuli(one, 50.0)  # tables of another length
    both = encode_stimuli([OUNoise(**base, seed=1), OUNoise(**base, seed=2)], 100.0)
    assert kernel.shared_table_grid(0, 2, both.ptr, both.kind, both.par)
    assert short.par[0, 1] != tab.par[0, 1]


def test_sample_uniform_without_a_table_gives_nan_inside_only():
    from hhsym.integrate.noise import sample_uniform

    out = np.full(4, 7.0)
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert sample_uniform(t, np.empty(0), 0.0, 0.1, 5.0, 9.0, out) is True
    assert out.tolist() == [0.0] * 4
    assert sample_uniform(t, np.ones(1), 0.0, 0.1, 1.0, 2.0, out) is False
    assert out[0] == 0.0 and np.isnan(out[1]) and out[2:].tolist() == [0.0, 0.0]
