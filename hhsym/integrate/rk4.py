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
WORK = 0


def step(Y, I3, P, dt, W):
    """Advance the block Y (n_states, n) by one RK4 step of dt (ms), in place.

    One loop over the neurons holds all four stages of a neuron in registers
    (``rhs_lane`` and the tuple helpers are inlined), so nothing but the
    states goes through memory and LLVM vectorises the loop across neurons.
    """
    wide_vectors()
    restrict_arrays()
    half = 0.5 * dt
    sixth = dt / 6.0
    for j in range(Y.shape[1]):
        y = load_state(Y, j)
        p = load_params(P, j)
        k1 = rhs_lane(y, I3[0, j], p)
        k2 = rhs_lane(axpy(half, k1, y), I3[1, j], p)
        k3 = rhs_lane(axpy(half, k2, y), I3[1, j], p)
        k4 = rhs_lane(axpy(dt, k3, y), I3[2, j], p)
        # y + dt/6 (k1 + 2 (k2 + k3) + k4)
        store_state(Y, j, axpy(sixth, add(axpy(2.0, add(k2, k3), k1), k4), y))
