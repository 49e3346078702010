"""The fit's losses give the same numbers on one thread and on several (hhsym.estimate.losses.threads):
traces and chunks of windows run side by side, each writing its own rows."""

import numba
import numpy as np
import pytest

from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.losses.threads import chunks, parallel_map
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise


@pytest.fixture(scope="module")
def setting():
    hh = hodgkin_huxley()
    data = []
    for seed, T in ((1, 60.0), (2, 35.0), (3, 80.0)):  # traces of different lengths
        tr = simulate(hh, OUNoise(mean=8.0, sigma=5.0, tau=3.0, seed=seed), T, dt=0.01, dt_out=0.05)
        data.append((tr.dt, tr.V, tr.I))
    truth = model_forms(hh, np.linspace(-76.0, 35.0, 200))
    return hh, data, truth


def _on_threads(n, fn):
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(old)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba to allow 2 threads")
def test_output_error_blocks_are_identical_on_one_and_two_threads(setting):
    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    tp = TrajectoryProblem(fam, hh, data, window=2.0)
    p = fam.pack(truth)
    rng = np.random.default_rng(0)
    Y0 = tp.initial_states().reshape(-1, tp.ns) + rng.normal(0, 0.3, (tp.n_windows, tp.ns)) * [1, .01, .01, .01]
    one = _on_threads(1, lambda: tp.blocks(p, Y0, True))
    two = _on_threads(2, lambda: tp.blocks(p, Y0, True))
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    # and without the Jacobian
    r1 = _on_threads(1, lambda: tp.blocks(p, Y0, False))
    r2 = _on_threads(2, lambda: tp.blocks(p, Y0, False))
    for a, b, c in zip(r1, r2, one):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[0], c[0])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba to allow 2 threads")
def test_charge_balance_is_identical_on_one_and_two_threads(setting):
    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    cb = ChargeBalance(fam, hh, data)
    tabs = cb.tables(fam.pack(truth), True)
    r1, J1 = _on_threads(1, lambda: cb.evaluate_tables(tabs, True))
    r2, J2 = _on_threads(2, lambda: cb.evaluate_tables(tabs, True))
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(J1, J2)


def test_gate_starts_match_the_charge_balance_pass(setting):
    """The output error's gates-only pass gives the gate pass's own gates and sensitivities."""
    hh, data, truth = setting
    fam = FormFamily(hh, truth)
    tp = TrajectoryProblem(fam, hh, data, window=2.0)
    pr = tp.balance
    tabs = pr.tables(fam.pack(truth), True)
    tr, w = pr.traces[0], tp.windows[0]
    ok, X, S = tp._gate_starts(tabs, tr, w, True)
    local = dict(tr, rec=w["starts"], rec_f=w["rec_f"])
    ok2, _, _, X2, S2, _ = pr._gates(tabs, local, True, pr.ng * tabs[2].shape[2], pr.electrical(None))
    assert ok and ok2
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(S, S2)


def test_chunks_tile_the_windows_in_order():
    for n, total in ((1, 1), (7, 7), (50, 50), (10, 400), (400, 410), (0, 5)):
        c = chunks(n, total)
        flat = [i for a, b in c for i in range(a, b)]
        assert flat == list(range(n))
        assert all(b > a for a, b in c)


def test_parallel_map_keeps_order_and_raises():
    assert parallel_map(lambda x: x * x, range(20)) == [x * x for x in range(20)]

    def boom(x):
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        parallel_map(boom, range(6))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba to allow 2 threads")
def test_network_tables_are_identical_on_one_and_two_threads():
    """Each gate's node tables on its own thread: the same bits as one thread."""
    from hhsym.estimate.rates.network import RateNetwork
    from hhsym.estimate.rates.network_rates import NetworkRates

    proto = RateNetwork((16,), -20.0, 60.0)
    norms = np.tile([proto.center, proto.scale, proto.delta], (6, 1))
    rng = np.random.default_rng(0)
    theta = np.concatenate([RateNetwork.initial_theta((16,), rng, log_rate0=0.0) for _ in range(6)])
    rates = NetworkRates(proto.sizes, norms, 0.01)
    nodes = np.linspace(-100.0, 60.0, 321)
    for jac in (True, False):
        one, two = (_on_threads(n, lambda: rates.tables(theta, nodes, jac)) for n in (1, 2))
        assert all(np.array_equal(a, b) for a, b in zip(one, two))
