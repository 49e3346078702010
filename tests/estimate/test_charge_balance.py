"""The charge-balance loss's window layout (hhsym.estimate.losses.charge_balance): current jumps."""

import numpy as np

from hhsym.estimate.losses.charge_balance import current_jumps, window_layout


# ---------------------------------------------------------------------- current jumps
def test_current_jumps_are_the_edges_of_steps_only():
    dt = 0.025
    t = np.arange(0.0, 50.0 + dt / 2, dt)
    step = np.where((t >= 10.0) & (t < 30.0), 4.0, -1.0)
    edges = current_jumps(step)
    assert list(edges) == [int(round(10.0 / dt)) - 1, int(round(30.0 / dt)) - 1]
    rng = np.random.default_rng(0)
    ou = np.zeros(t.size)
    for k in range(1, t.size):  # an Ornstein-Uhlenbeck current, tau 3 ms, sigma 4
        ou[k] = ou[k - 1] * np.exp(-dt / 3.0) + 4.0 * np.sqrt(1 - np.exp(-2 * dt / 3.0)) * rng.standard_normal()
    assert current_jumps(ou).size == 0
    assert list(current_jumps(ou + step)) == list(edges)  # 5 µA/cm² steps stand out of the noise
    assert current_jumps(np.full(t.size, 3.0)).size == 0
    lsb = 0.001 * rng.integers(-1, 2, t.size) * (rng.random(t.size) < 0.05)  # digitiser flicker
    assert list(current_jumps(step + lsb)) == list(edges)


def test_windows_holding_a_current_jump_are_left_out():
    dt = 0.025
    t = np.arange(0.0, 50.0 + dt / 2, dt)
    I = np.where(t >= 10.0, 4.0, 0.0)
    V = -65.0 + 0.1 * np.sin(t)
    bounds, starts, Ls, stride, w1 = window_layout(V, dt, 0.25, 0.0, 3.0, 0.1, 40, I=I)
    jump = int(round(10.0 / dt)) - 1
    holding = [j for j in range(len(w1)) if bounds[j] <= jump < bounds[j + 1]]
    assert len(holding) == 1 and w1[holding[0]] == 0.0
    assert np.all(np.delete(w1, holding) > 0.9)
    assert all(not (s <= jump < s + Ls) for s in starts)
    _, starts_all, *_ = window_layout(V, dt, 0.25, 0.0, 3.0, 0.1, 40)
    assert len(starts) == len(starts_all) - sum(s <= jump < s + Ls for s in starts_all)
