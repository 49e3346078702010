"""Rates as sympy expressions with free constants (hhsym.estimate.rates.expression_rates)."""

import numpy as np
import pytest
import sympy

from hhsym.errors import InvalidArgumentError
from hhsym.estimate.rates.expression_rates import ExpressionRates
from hhsym.symbolic import V


def _hh_like():
    A, k, B, c = (sympy.Symbol(n, real=True) for n in ("am_A", "am_k", "bh_B", "an_c"))
    exprs = {
        "alpha_m": A * (V + 40) / (1 - sympy.exp(-(V + 40) / k)),  # a linoid: 0/0 at V = -40
        "beta_m": 4 * sympy.exp(-(V + 65) / 18),
        "alpha_h": 0.07 * sympy.exp(-(V + 65) / 20),
        "beta_h": 1 / (1 + sympy.exp(-(V + B) / 10)),
        "alpha_n": c + 0 * V,
        "beta_n": 0.125 * sympy.exp(-(V + 65) / 80),
    }
    constants = {"alpha_m": ["am_A", "am_k"], "beta_h": ["bh_B"], "alpha_n": ["an_c"]}
    return ExpressionRates("mhn", exprs, constants), np.array([0.1, 10.0, 35.0, 0.02])


def test_layout_round_trips():
    rates, flat = _hh_like()
    assert rates.names == ["am_A", "am_k", "bh_B", "an_c"]
    assert rates.n_per_gate == 2
    p = rates.pack(flat)
    assert p.shape == (6,) and np.array_equal(rates.unpack(p), flat)


def test_tables_are_the_rates_and_their_exact_gradient():
    rates, flat = _hh_like()
    p = rates.pack(flat)
    nodes = np.linspace(-90.0, 50.0, 2801)  # holds V = -40 exactly: the linoid's removable singularity
    XI, LA, DX, DL = rates.tables(p, nodes, True)
    a, b = rates.rates(p, nodes)
    assert np.all(np.isfinite(XI)) and np.all(np.isfinite(DX))
    np.testing.assert_allclose(XI, a / (a + b), rtol=1e-14)
    np.testing.assert_allclose(LA, a + b, rtol=1e-14)
    for i in rates.used:
        h = 1e-6 * max(abs(p[i]), 1.0)
        up, dn = p.copy(), p.copy()
        up[i] += h
        dn[i] -= h
        Xu, Lu, _, _ = rates.tables(up, nodes, False)
        Xd, Ld, _, _ = rates.tables(dn, nodes, False)
        g, q = divmod(int(i), rates.n_per_gate)
        np.testing.assert_allclose(DX[g, :, q], (Xu - Xd)[g] / (2 * h), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(DL[g, :, q], (Lu - Ld)[g] / (2 * h), rtol=1e-5, atol=1e-9)
    unused = np.setdiff1d(np.arange(p.size), rates.used)
    for i in unused:
        g, q = divmod(int(i), rates.n_per_gate)
        assert np.all(DX[g, :, q] == 0) and np.all(DL[g, :, q] == 0)


def test_a_missing_rate_is_named():
    with pytest.raises(InvalidArgumentError, match="beta_m"):
        ExpressionRates("m", {"alpha_m": V}, {})

