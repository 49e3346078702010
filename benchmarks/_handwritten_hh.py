"""Hand-written numba Hodgkin–Huxley kernels: the yardstick for hhsym's generated code.

Two variants, both classical RK4 at a fixed step, neurons in parallel
(``numba.prange``), V recorded at every step into ``VOUT`` (n, n_steps + 1):

``hh_rk4_scalar``
    the natural way an expert writes it: one neuron per loop iteration, its
    four states in local variables, ``math.exp``, the HH 1952 rates written
    out by hand (modern convention, rest near -65 mV, the linoid rates guarded
    at their removable singularities).  LLVM cannot vectorise ``math.exp``
    (no SVML in PyPI's llvmlite), so this runs one neuron per SIMD lane-set.
``hh_rk4_block``
    structure-of-arrays blocks of ``BLOCK`` neurons, states in small local
    arrays, ``hhsym.integrate.vmath.vexp`` (plain arithmetic, vectorisable),
    so the inner loop over the neurons of a block becomes SIMD code;
    ``hh_rk4_block_fma`` is the same compiled with fused multiply-adds, as
    hhsym's generated kernels are.

Stimulus: a step of ``amp[i]`` µA/cm² on ``[t_on, t_off)`` ms for neuron i,
seen from inside each step like hhsym's kernels (right limit at the step's
start, the midpoint, left limit at its end), so edges on the grid cost no accuracy.
Units: mV, ms, µA/cm², mS/cm², µF/cm².  No failure detection (hhsym's kernels
check V and the gates at every sample; these do not).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hhsym.integrate.vmath import vexp

__all__ = ["hh_rk4_scalar", "hh_rk4_block", "hh_rk4_block_fma", "resting_state", "BLOCK"]

C_M = 1.0
G_NA, G_K, G_L = 120.0, 36.0, 0.3
E_NA, E_K, E_L = 50.0, -77.0, -54.387

#: Neurons per block in :func:`hh_rk4_block` (8 doubles = one AVX-512 register, two AVX2 ones).
BLOCK = 16


@numba.njit(inline="always", cache=True)
def _derivs(V, m, h, n, I):
    """dV/dt, dm/dt, dh/dt, dn/dt of HH 1952 (math.exp)."""
    u = V + 40.0
    if abs(u) < 1e-6:
        a_m = 1.0 + 0.05 * u
    else:
        a_m = 0.1 * u / (1.0 - math.exp(-u / 10.0))
    b_m = 4.0 * math.exp(-(V + 65.0) / 18.0)
    a_h = 0.07 * math.exp(-(V + 65.0) / 20.0)
    b_h = 1.0 / (1.0 + math.exp(-(V + 35.0) / 10.0))
    w = V + 55.0
    if abs(w) < 1e-6:
        a_n = 0.1 + 0.005 * w
    else:
        a_n = 0.01 * w / (1.0 - math.exp(-w / 10.0))
    b_n = 0.125 * math.exp(-(V + 65.0) / 80.0)
    m3 = m * m * m
    n2 = n * n
    i_ion = G_NA * m3 * h * (V - E_NA) + G_K * n2 * n2 * (V - E_K) + G_L * (V - E_L)
    dV = (I - i_ion) / C_M
    dm = a_m * (1.0 - m) - b_m * m
    dh = a_h * (1.0 - h) - b_h * h
    dn = a_n * (1.0 - n) - b_n * n
    return dV, dm, dh, dn


@numba.njit(parallel=True, cache=True)
def hh_rk4_scalar(V0, m0, h0, n0, amp, t_on, t_off, dt, n_steps, VOUT):
    """RK4, one neuron per ``prange`` iteration, ``math.exp``.  Arrays of length n; VOUT (n, n_steps + 1)."""
    N = V0.shape[0]
    for i in numba.prange(N):
        V = V0[i]
        m = m0[i]
        h = h0[i]
        n = n0[i]
        a = amp[i]
        VOUT[i, 0] = V
        for k in range(n_steps):
            t = k * dt
            tm = t + 0.5 * dt
            t1 = (k + 1) * dt
            I0 = a if (t >= t_on and t < t_off) else 0.0
            Im = a if (tm >= t_on and tm < t_off) else 0.0
            I1 = a if (t1 > t_on and t1 <= t_off) else 0.0  # left limit at the step's end
            k1V, k1m, k1h, k1n = _derivs(V, m, h, n, I0)
            k2V, k2m, k2h, k2n = _derivs(V + 0.5 * dt * k1V, m + 0.5 * dt * k1m,
                                         h + 0.5 * dt * k1h, n + 0.5 * dt * k1n, Im)
            k3V, k3m, k3h, k3n = _derivs(V + 0.5 * dt * k2V, m + 0.5 * dt * k2m,
                                         h + 0.5 * dt * k2h, n + 0.5 * dt * k2n, Im)
            k4V, k4m, k4h, k4n = _derivs(V + dt * k3V, m + dt * k3m, h + dt * k3h, n + dt * k3n, I1)
            s = dt / 6.0
            V += s * (k1V + 2.0 * (k2V + k3V) + k4V)
            m += s * (k1m + 2.0 * (k2m + k3m) + k4m)
            h += s * (k1h + 2.0 * (k2h + k3h) + k4h)
            n += s * (k1n + 2.0 * (k2n + k3n) + k4n)
            VOUT[i, k + 1] = V


@numba.njit(inline="always", cache=True)
def _vderivs(V, m, h, n, I):
    """As :func:`_derivs` with the vectorisable ``vexp``."""
    u = V + 40.0
    if abs(u) < 1e-6:
        a_m = 1.0 + 0.05 * u
    else:
        a_m = 0.1 * u / (1.0 - vexp(-0.1 * u))
    b_m = 4.0 * vexp(-(V + 65.0) * (1.0 / 18.0))
    a_h = 0.07 * vexp(-(V + 65.0) * 0.05)
    b_h = 1.0 / (1.0 + vexp(-(V + 35.0) * 0.1))
    w = V + 55.0
    if abs(w) < 1e-6:
        a_n = 0.1 + 0.005 * w
    else:
        a_n = 0.01 * w / (1.0 - vexp(-0.1 * w))
    b_n = 0.125 * vexp(-(V + 65.0) * 0.0125)
    m3 = m * m * m
    n2 = n * n
    i_ion = G_NA * m3 * h * (V - E_NA) + G_K * n2 * n2 * (V - E_K) + G_L * (V - E_L)
    dV = (I - i_ion) / C_M
    dm = a_m * (1.0 - m) - b_m * m
    dh = a_h * (1.0 - h) - b_h * h
    dn = a_n * (1.0 - n) - b_n * n
    return dV, dm, dh, dn


@numba.njit(parallel=True, cache=True)
def hh_rk4_block(V0, m0, h0, n0, amp, t_on, t_off, dt, n_steps, VOUT):
    """RK4 over structure-of-arrays blocks of BLOCK neurons, ``vexp``; same arguments as hh_rk4_scalar."""
    N = V0.shape[0]
    n_blocks = (N + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        j0 = b * BLOCK
        nb = min(N, j0 + BLOCK) - j0
        # y[0:4] the states, y[4:8] the stage point, y[8:12] the RK4 accumulator
        y = np.zeros((12, BLOCK))
        a = np.zeros(BLOCK)
        for j in range(nb):
            y[0, j] = V0[j0 + j]
            y[1, j] = m0[j0 + j]
            y[2, j] = h0[j0 + j]
            y[3, j] = n0[j0 + j]
            a[j] = amp[j0 + j]
            VOUT[j0 + j, 0] = y[0, j]
        for j in range(nb, BLOCK):  # padding lanes: a quiet neuron at rest
            y[0, j] = -65.0
            y[1, j] = 0.05
            y[2, j] = 0.6
            y[3, j] = 0.3
        s = dt / 6.0
        for k in range(n_steps):
            t = k * dt
            tm = t + 0.5 * dt
            t1 = (k + 1) * dt
            on0 = 1.0 if (t >= t_on and t < t_off) else 0.0
            onm = 1.0 if (tm >= t_on and tm < t_off) else 0.0
            on1 = 1.0 if (t1 > t_on and t1 <= t_off) else 0.0
            for j in range(BLOCK):
                V = y[0, j]
                m = y[1, j]
                h = y[2, j]
                n = y[3, j]
                dV, dm, dh, dn = _vderivs(V, m, h, n, on0 * a[j])
                y[8, j] = dV
                y[9, j] = dm
                y[10, j] = dh
                y[11, j] = dn
                dV, dm, dh, dn = _vderivs(V + 0.5 * dt * dV, m + 0.5 * dt * dm,
                                          h + 0.5 * dt * dh, n + 0.5 * dt * dn, onm * a[j])
                y[8, j] += 2.0 * dV
                y[9, j] += 2.0 * dm
                y[10, j] += 2.0 * dh
                y[11, j] += 2.0 * dn
                dV, dm, dh, dn = _vderivs(V + 0.5 * dt * dV, m + 0.5 * dt * dm,
                                          h + 0.5 * dt * dh, n + 0.5 * dt * dn, onm * a[j])
                y[8, j] += 2.0 * dV
                y[9, j] += 2.0 * dm
                y[10, j] += 2.0 * dh
                y[11, j] += 2.0 * dn
                dV, dm, dh, dn = _vderivs(V + dt * dV, m + dt * dm, h + dt * dh, n + dt * dn, on1 * a[j])
                y[0, j] = V + s * (y[8, j] + dV)
                y[1, j] = m + s * (y[9, j] + dm)
                y[2, j] = h + s * (y[10, j] + dh)
                y[3, j] = n + s * (y[11, j] + dn)
            for j in range(nb):
                VOUT[j0 + j, k + 1] = y[0, j]


#: :func:`hh_rk4_block` compiled with fused multiply-adds allowed (``fastmath={"contract"}``), the
#: flag hhsym's generated kernels use; not cached on disk (numba's cache index would not tell the
#: two builds of one function apart), so it compiles in every process.
hh_rk4_block_fma = numba.njit(parallel=True, fastmath={"contract"})(hh_rk4_block.py_func)


def resting_state(V=-65.0):
    """Gates at their steady state for voltage V (mV): (m, h, n)."""
    u, w = V + 40.0, V + 55.0
    a_m = 0.1 * u / (1.0 - np.exp(-u / 10.0))
    b_m = 4.0 * np.exp(-(V + 65.0) / 18.0)
    a_h = 0.07 * np.exp(-(V + 65.0) / 20.0)
    b_h = 1.0 / (1.0 + np.exp(-(V + 35.0) / 10.0))
    a_n = 0.01 * w / (1.0 - np.exp(-w / 10.0))
    b_n = 0.125 * np.exp(-(V + 65.0) / 80.0)
    return a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)
