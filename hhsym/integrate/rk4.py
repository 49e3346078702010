"""Classical fixed-step Runge–Kutta of order 4 (all states, one step size).

Stage stimuli are the one-sided values inside the step (``I3[0]`` at the
start, ``I3[1]`` the midpoint, ``I3[2]`` the end), so steps of the stimulus
that fall on the grid cost no accuracy.  Global error O(dt^4).

The four stages of a neuron are computed in one pass over the block, its
states and stage derivatives held in tuples (registers), so that the loop over
the neurons of a block vectorises as one body.
"""

from hhsym.integrate import engine_fixed

ENGINE = engine_fixed
ENTRY = engine_fixed.ENTRY

# --- kernel source below ---
STIM_STAGES = 3
WORK = 0


def step(Y, I3, P, dt, W):
    """Advance the block Y (n_states, n) by one RK4 step of dt (ms), in place."""
    half = 0.5 * dt
    sixth = dt / 6.0
    for j in range(Y.shape[1]):
        y = load_state(Y, j)
        p = load_params(P, j)
        k1 = rhs_tuple(y, p, I3[0, j])
        k2 = rhs_tuple(axpy(y, half, k1), p, I3[1, j])
        k3 = rhs_tuple(axpy(y, half, k2), p, I3[1, j])
        k4 = rhs_tuple(axpy(y, dt, k3), p, I3[2, j])
        # y + dt/6 (k1 + 2 (k2 + k3) + k4)
        store_state(Y, j, axpy(y, sixth, axpy(axpy(k1, 2.0, axpy(k2, 1.0, k3)), 1.0, k4)))
