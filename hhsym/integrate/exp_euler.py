"""Exponential Euler / Rush–Larsen: the neuroscience standard for HH models.

Every state is written in relaxation form dy/dt = K (T - y) with K, T taken
at the start of the step; gates (K = alpha + beta, T = x_inf) and V
(K = g_total / C_m, T = the potential where the ionic and injected currents
balance) are then advanced exactly: y <- T + (y - T) exp(-K dt).  Gates stay
in [0, 1] for any dt; global error O(dt).
"""

from hhsym.integrate import engine_fixed

ENGINE = engine_fixed
ENTRY = engine_fixed.ENTRY

# --- kernel source below ---
STIM_STAGES = 1
WORK = 0


def step(Y, I3, P, dt, W):
    """Advance the block Y (n_states, n) by one exponential-Euler step of dt (ms), in place."""
    for j in range(Y.shape[1]):
        y = load_state(Y, j)
        k, target = relax_tuple(y, load_params(P, j), I3[0, j])
        store_state(Y, j, exp_relax(y, k, target, dt))
