"""Classical fixed-step Runge–Kutta of order 4 (all states, one step size).

Stage stimuli are the one-sided values inside the step (``I3[0]`` at the
start, ``I3[1]`` the midpoint, ``I3[2]`` the end), so steps of the stimulus
that fall on the grid cost no accuracy.  Global error O(dt^4).
"""

from hhsym.integrate import engine_fixed

ENGINE = engine_fixed
ENTRY = engine_fixed.ENTRY

# --- kernel source below ---
STIM_STAGES = 3
WORK = 5


def step(Y, I3, P, dt, W):
    """Advance the block Y (n_states, n) by one RK4 step of dt (ms), in place."""
    wide_vectors()
    restrict_arrays()
    ns = Y.shape[0]
    nb = Y.shape[1]
    K1 = W[0]
    K2 = W[1]
    K3 = W[2]
    K4 = W[3]
    Yt = W[4]
    half = 0.5 * dt
    rhs_block(Y, I3[0], P, K1)
    for s in range(ns):
        for j in range(nb):
            Yt[s, j] = Y[s, j] + half * K1[s, j]
    rhs_block(Yt, I3[1], P, K2)
    for s in range(ns):
        for j in range(nb):
            Yt[s, j] = Y[s, j] + half * K2[s, j]
    rhs_block(Yt, I3[1], P, K3)
    for s in range(ns):
        for j in range(nb):
            Yt[s, j] = Y[s, j] + dt * K3[s, j]
    rhs_block(Yt, I3[2], P, K4)
    sixth = dt / 6.0
    for s in range(ns):
        for j in range(nb):
            Y[s, j] += sixth * (K1[s, j] + 2.0 * (K2[s, j] + K3[s, j]) + K4[s, j])
