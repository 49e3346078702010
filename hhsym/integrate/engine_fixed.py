"""Shared driver of the fixed-step methods.

Neurons are processed in blocks (columns of a small structure-of-arrays
block, so the model's loop over neurons vectorises), blocks in parallel
(``numba.prange``).  The method module provides ``step(Y, I3, P, dt, W)`` and
``WORK`` (number of ``(n_states, block)`` work arrays it needs).

Failure detection: at every recorded sample, a neuron whose V is not finite
or one of whose gates is not finite or lies outside ``[-GATE_TOL, 1 + GATE_TOL]``
is marked failed in ``FAIL`` with the index of that step (``-1`` = fine).
"""

import numba  # noqa: F401  (names used by the kernel source below)
import numpy as np  # noqa: F401

ENTRY = "fixed_run"

# --- kernel source below ---
GATE_TOL = 1e-6


def fixed_run(Y0, P, ptr, kind, par, data, t0, dt, n_steps, rec_every, block, OUT, FAIL):
    """Integrate every column of Y0 for n_steps of dt (ms), recording every rec_every steps."""
    ns = Y0.shape[0]
    n_par = P.shape[0]
    N = Y0.shape[1]
    n_blocks = (N + block - 1) // block
    for b in numba.prange(n_blocks):
        j0 = b * block
        j1 = min(N, j0 + block)
        nb = j1 - j0
        Y = np.empty((ns, nb))
        Pb = np.empty((n_par, nb))
        for j in range(nb):
            for s in range(ns):
                Y[s, j] = Y0[s, j0 + j]
                OUT[s, j0 + j, 0] = Y0[s, j0 + j]
            for k in range(n_par):
                Pb[k, j] = P[k, j0 + j]
        W = np.empty((WORK, ns, nb))
        I3 = np.empty((3, nb))
        failed = 0
        for n in range(n_steps):
            t = t0 + n * dt
            t1 = t0 + (n + 1) * dt
            tm = 0.5 * (t + t1)
            for j in range(nb):
                i = j0 + j
                I3[0, j] = stim_in(i, t, t, t1, ptr, kind, par, data)
                I3[1, j] = stim_in(i, tm, t, t1, ptr, kind, par, data)
                I3[2, j] = stim_in(i, t1, t, t1, ptr, kind, par, data)
            step(Y, I3, Pb, dt, W)
            if (n + 1) % rec_every == 0:
                r = (n + 1) // rec_every
                for j in range(nb):
                    bad = not np.isfinite(Y[0, j])
                    OUT[0, j0 + j, r] = Y[0, j]
                    for s in range(1, ns):
                        x = Y[s, j]
                        OUT[s, j0 + j, r] = x
                        if not (x >= -GATE_TOL and x <= 1.0 + GATE_TOL):
                            bad = True
                    if bad and FAIL[j0 + j] < 0:
                        FAIL[j0 + j] = n + 1
                        failed += 1
                if failed == nb:
                    break
