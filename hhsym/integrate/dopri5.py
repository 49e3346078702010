"""Adaptive Dormand–Prince 5(4) with error control and dense output.

Each neuron runs its own step-size controller (neurons in parallel).  The
error of a step is the RMS over states of ``err_s / (atol + rtol max(|y_s|,
|y_new_s|))``; a step is accepted when it is <= 1, and the next step is
``h * clip(0.9 err^(-1/5), 0.2, 10)``.  Results at the requested sample times
come from the method's 4th-order continuous extension (Hairer, Nørsett &
Wanner, *Solving ODEs I*, II.6), so samples do not constrain the step size.
Steps never cross a stimulus breakpoint: the step is shortened to land on it
and the first stage is re-evaluated after it (FSAL is only reused across
smooth points).

Failure (``FAIL[i]`` = index of the first sample not reached): non-finite
state, gate outside ``[-GATE_TOL, 1 + GATE_TOL]`` at a sample (calcium pools: finite only), step size
below 1e-12 ms, or more than ``max_steps`` steps.
"""

import numba  # noqa: F401  (names used by the kernel source below)
import numpy as np  # noqa: F401

ENGINE = None
ENTRY = "dopri5_run"

# --- kernel source below ---
GATE_TOL = 1e-6
A21 = 1.0 / 5.0
A31, A32 = 3.0 / 40.0, 9.0 / 40.0
A41, A42, A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
A51, A52, A53, A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
A61, A62, A63, A64, A65 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0
B1, B3, B4, B5, B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
E1, E3, E4, E5, E6, E7 = (
    71.0 / 57600.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0
)
D1, D3, D4 = -12715105075.0 / 11282082432.0, 87487479700.0 / 32700410799.0, -10690763975.0 / 1880347072.0
D5, D6, D7 = 701980252875.0 / 199316789632.0, -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0


def dopri5_run(Y0, P, ptr, kind, par, data, bp_ptr, bp, t_out, rtol, atol, h_max, max_steps,
               OUT, FAIL, STATS):
    """Integrate each column of Y0 from t_out[0], writing states at every t_out (ms)."""
    ns = Y0.shape[0]
    n_par = P.shape[0]
    N = Y0.shape[1]
    n_out = t_out.shape[0]
    t_end = t_out[n_out - 1]
    for i in numba.prange(N):
        y = np.empty((ns, 1))
        p = np.empty((n_par, 1))
        for s in range(ns):
            y[s, 0] = Y0[s, i]
            OUT[s, i, 0] = Y0[s, i]
        for k in range(n_par):
            p[k, 0] = P[k, i]
        k1 = np.empty((ns, 1))
        k2 = np.empty((ns, 1))
        k3 = np.empty((ns, 1))
        k4 = np.empty((ns, 1))
        k5 = np.empty((ns, 1))
        k6 = np.empty((ns, 1))
        k7 = np.empty((ns, 1))
        yt = np.empty((ns, 1))
        yn = np.empty((ns, 1))
        cur = np.empty(1)
        t = t_out[0]
        ib = bp_ptr[i]
        while ib < bp_ptr[i + 1] and bp[ib] <= t:
            ib += 1
        h = min(0.01, h_max)
        fresh = True
        nxt = 1
        n_steps = 0
        n_rejected = 0
        while nxt < n_out:
            seg_end = t_end
            if ib < bp_ptr[i + 1] and bp[ib] < seg_end:
                seg_end = bp[ib]
            if h > seg_end - t:
                h = seg_end - t
            if h < 1e-12:
                FAIL[i] = nxt
                break
            lo = t
            hi = t + h
            if hi > seg_end or seg_end - hi < 1e-12 * (1.0 + abs(seg_end)):
                hi = seg_end
                h = hi - t
            if fresh:
                cur[0] = stim_in(i, t, lo, hi, ptr, kind, par, data)
                rhs_point(y, cur, p, k1, 0)
                fresh = False
            for s in range(ns):
                yt[s, 0] = y[s, 0] + h * A21 * k1[s, 0]
            cur[0] = stim_in(i, t + 0.2 * h, lo, hi, ptr, kind, par, data)
            rhs_point(yt, cur, p, k2, 0)
            for s in range(ns):
                yt[s, 0] = y[s, 0] + h * (A31 * k1[s, 0] + A32 * k2[s, 0])
            cur[0] = stim_in(i, t + 0.3 * h, lo, hi, ptr, kind, par, data)
            rhs_point(yt, cur, p, k3, 0)
            for s in range(ns):
                yt[s, 0] = y[s, 0] + h * (A41 * k1[s, 0] + A42 * k2[s, 0] + A43 * k3[s, 0])
            cur[0] = stim_in(i, t + 0.8 * h, lo, hi, ptr, kind, par, data)
            rhs_point(yt, cur, p, k4, 0)
            for s in range(ns):
                yt[s, 0] = y[s, 0] + h * (A51 * k1[s, 0] + A52 * k2[s, 0] + A53 * k3[s, 0] + A54 * k4[s, 0])
            cur[0] = stim_in(i, t + h * (8.0 / 9.0), lo, hi, ptr, kind, par, data)
            rhs_point(yt, cur, p, k5, 0)
            for s in range(ns):
                yt[s, 0] = y[s, 0] + h * (A61 * k1[s, 0] + A62 * k2[s, 0] + A63 * k3[s, 0]
                                          + A64 * k4[s, 0] + A65 * k5[s, 0])
            cur[0] = stim_in(i, hi, lo, hi, ptr, kind, par, data)
            rhs_point(yt, cur, p, k6, 0)
            for s in range(ns):
                yn[s, 0] = y[s, 0] + h * (B1 * k1[s, 0] + B3 * k3[s, 0] + B4 * k4[s, 0]
                                          + B5 * k5[s, 0] + B6 * k6[s, 0])
            rhs_point(yn, cur, p, k7, 0)
            err = 0.0
            for s in range(ns):
                e = h * (E1 * k1[s, 0] + E3 * k3[s, 0] + E4 * k4[s, 0] + E5 * k5[s, 0]
                         + E6 * k6[s, 0] + E7 * k7[s, 0])
                sc = atol + rtol * max(abs(y[s, 0]), abs(yn[s, 0]))
                err += (e / sc) * (e / sc)
            err = np.sqrt(err / ns)
            if not np.isfinite(err):
                err = 1e10  # the trial step overflowed: reject it and shrink
            n_steps += 1
            if n_steps > max_steps:
                FAIL[i] = nxt
                break
            if err <= 1.0:
                # dense output for the samples in (t, hi]
                while nxt < n_out and t_out[nxt] <= hi + 1e-12 * (1.0 + abs(hi)):
                    theta = (t_out[nxt] - t) / h
                    theta1 = 1.0 - theta
                    bad = False
                    for s in range(ns):
                        r2 = yn[s, 0] - y[s, 0]
                        r3 = h * k1[s, 0] - r2
                        r4 = r2 - h * k7[s, 0] - r3
                        r5 = h * (D1 * k1[s, 0] + D3 * k3[s, 0] + D4 * k4[s, 0] + D5 * k5[s, 0]
                                  + D6 * k6[s, 0] + D7 * k7[s, 0])
                        v = y[s, 0] + theta * (r2 + theta1 * (r3 + theta * (r4 + theta1 * r5)))
                        OUT[s, i, nxt] = v
                        if s == 0 or s >= GATE_END:  # V and calcium pools: finite
                            if not np.isfinite(v):
                                bad = True
                        elif not (v >= -GATE_TOL and v <= 1.0 + GATE_TOL):
                            bad = True
                    if bad:
                        FAIL[i] = nxt
                        break
                    nxt += 1
                if FAIL[i] >= 0:
                    break
                for s in range(ns):
                    y[s, 0] = yn[s, 0]
                    k1[s, 0] = k7[s, 0]
                t = hi
                if hi >= seg_end and ib < bp_ptr[i + 1] and bp[ib] <= hi:
                    ib += 1
                    fresh = True  # the stimulus jumps here: no FSAL
                fac = 0.9 * err ** -0.2 if err > 0.0 else 10.0
                h = h * min(10.0, max(0.2, fac))
            else:
                n_rejected += 1
                h = h * max(0.2, 0.9 * err ** -0.2)
            if h > h_max:
                h = h_max
        STATS[0, i] = n_steps
        STATS[1, i] = n_rejected
