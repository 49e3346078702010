"""Shared fixtures: the HH model, a scipy reference integrator."""

import math
import os

import numpy as np
import pytest
from scipy.integrate import solve_ivp

os.environ.setdefault("MPLBACKEND", "Agg")

import hhsym.library as library  # noqa: E402


def pytest_configure(config):
    """Under pytest-xdist, share the cores between the workers: each worker's numba kernels (and hhsym's
    thread pool, sized by :func:`numba.get_num_threads`) get ``cores // workers`` threads, so two workers on
    two cores do not run four threads (measured: tests/estimate -m "not slow" 78 s -> 65 s). The limit
    NUMBA_NUM_THREADS is untouched: tests that compare thread counts still set 2 themselves. (The setting is
    numba's, per thread: it holds for the tests' own thread, from which hhsym's kernels and pool start.)"""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        import numba

        numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, (os.cpu_count() or 1) // workers)))


#: Modules whose tests take minutes each (README walk-throughs, the demo, a FormEstimator fixture, examples):
#: run first, so that two xdist workers do not end the run with one long test on one core.
LONG_FIRST = ("test_readme.py", "test_demo.py", "test_form_estimator.py", "test_examples.py")


def pytest_collection_modifyitems(config, items):
    """Move the tests of :data:`LONG_FIRST` to the front (stable: each module's order is kept)."""
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)


@pytest.fixture(scope="session")
def hh():
    return library.hodgkin_huxley()


def hh_rhs_by_hand(I_of_t, p):
    """HH right-hand side written by hand (independent of hhsym's code generation)."""

    def vtrap(x, y):
        return y * (1 + x / y / 2) if abs(x / y) < 1e-7 else x / (1 - math.exp(-x / y))

    def f(t, y):
        V, m, h, n = y
        am = 0.1 * vtrap(V + 40, 10)
        bm = 4 * math.exp(-(V + 65) / 18)
        ah = 0.07 * math.exp(-(V + 65) / 20)
        bh = 1 / (1 + math.exp(-(V + 35) / 10))
        an = 0.01 * vtrap(V + 55, 10)
        bn = 0.125 * math.exp(-(V + 65) / 80)
        I_ion = (p["g_Na"] * m**3 * h * (V - p["E_Na"]) + p["g_K"] * n**4 * (V - p["E_K"])
                 + p["g_L"] * (V - p["E_L"]))
        return [(I_of_t(t) - I_ion) / p["C_m"], am * (1 - m) - bm * m, ah * (1 - h) - bh * h,
                an * (1 - n) - bn * n]

    return f


def scipy_reference(model, stimulus, y0, t_samples, rtol=1e-10, atol=1e-12):
    """DOP853 solution of HH, integrated piecewise between the stimulus' breakpoints."""
    p = model.params
    t_stop = float(t_samples[-1])
    edges = [0.0, *[b for b in stimulus.breakpoints(t_stop) if 0 < b < t_stop], t_stop]
    y = np.array(y0, dtype=float)
    out = np.empty((len(y0), len(t_samples)))
    for a, b in zip(edges[:-1], edges[1:]):
        # evaluate the stimulus strictly inside the segment (one-sided limits)
        eps = 1e-9 * (b - a)
        f = hh_rhs_by_hand(lambda t, a=a, b=b: float(stimulus(min(max(t, a + eps), b - eps))), p)
        sol = solve_ivp(f, (a, b), y, method="DOP853", rtol=rtol, atol=atol, dense_output=True)
        assert sol.success
        mask = (t_samples >= a) & (t_samples <= b)
        out[:, mask] = sol.sol(t_samples[mask])
        y = sol.y[:, -1]
    return out
