"""Exponential Euler / Rush–Larsen: the neuroscience standard for HH models.

Every state is written in relaxation form dy/dt = K (T - y) with K, T taken
at the start of the step; gates (K = alpha + beta, T = x_inf) and V
(K = g_total / C_m, T = the potential where the ionic and injected currents
balance) are then advanced exactly: y <- T + (y - T) exp(-K dt).  Calcium
pools take the same exponential step (K = 1/tau, T = the concentration their
current at the start of the step would hold: exact for a frozen current).
Gates stay in [0, 1] for any dt; global error O(dt).
"""

from hhsym.integrate import engine_fixed

ENGINE = engine_fixed
ENTRY = engine_fixed.ENTRY

# --- kernel source below ---
STIM_STAGES = 1
WORK = 2


def step(Y, I3, P, dt, W):
    """Advance the block Y (n_states, n) by one exponential-Euler step of dt (ms), in place."""
    wide_vectors()
    restrict_arrays()
    ns = Y.shape[0]
    nb = Y.shape[1]
    K = W[0]
    T = W[1]
    relax_block(Y, I3[0], P, K, T)
    for s in range(ns):
        for j in range(nb):
            Y[s, j] = T[s, j] + (Y[s, j] - T[s, j]) * vexp(-dt * K[s, j])
