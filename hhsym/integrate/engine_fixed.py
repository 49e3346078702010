"""Shared driver of the fixed-step methods.

Neurons are processed in blocks (columns of a small structure-of-arrays
block, so the model's loop over neurons vectorises), blocks in parallel
(``numba.prange``).  The method module provides ``step(Y, I3, P, dt, W)``, ``WORK`` (number of
``(n_states, block)`` work arrays it needs) and ``STIM_STAGES``: 1 when the
step uses only the current at the start of the step (``I3[0]``), 3 when it
also uses the midpoint and end values (``I3[1]``, ``I3[2]``).

Stimuli that are constant between their breakpoints (steps, pulse trains and
sums of them, see ``piecewise_constant``) are evaluated once per constant
segment instead of three times per step; a step that comes within a small
margin of a breakpoint evaluates them as before (``stim_in``), so the values
seen by the method are the same.

Only the states listed in ``rec`` are stored (``OUT[q]`` holds state
``rec[q]``).  Failure detection looks at every state: at every recorded
sample, a neuron whose V is not finite or one of whose gates is not finite
or lies outside ``[-GATE_TOL, 1 + GATE_TOL]`` is marked failed in ``FAIL``
with the index of that step (``-1`` = fine).
"""

import numba  # noqa: F401  (names used by the kernel source below)
import numpy as np  # noqa: F401

ENTRY = "fixed_run"

# --- kernel source below ---
GATE_TOL = 1e-6
CHUNK = 64


def fixed_run(Y0, P, ptr, kind, par, data, bp_ptr, bp, rec, t0, dt, n_steps, rec_every, block, OUT, FAIL):
    """Integrate every column of Y0 for n_steps of dt (ms), recording every rec_every steps.

    OUT has shape (rec.size, n_neurons, n_samples): the states ``rec`` (int
    indices into the state vector).  Samples are gathered per block in a
    small buffer of CHUNK samples and copied out in contiguous runs.
    """
    ns = Y0.shape[0]
    nr = rec.shape[0]
    n_par = P.shape[0]
    N = Y0.shape[1]
    n_rec = OUT.shape[2]
    n_blocks = (N + block - 1) // block
    for b in numba.prange(n_blocks):
        j0 = b * block
        j1 = min(N, j0 + block)
        nb = j1 - j0
        Y = np.empty((ns, nb))
        Pb = np.empty((n_par, nb))
        buf = np.empty((nr, nb, CHUNK))
        for j in range(nb):
            for s in range(ns):
                Y[s, j] = Y0[s, j0 + j]
            for q in range(nr):
                buf[q, j, 0] = Y0[rec[q], j0 + j]
            for k in range(n_par):
                Pb[k, j] = P[k, j0 + j]
        W = np.empty((WORK, ns, nb))
        I3 = np.empty((3, nb))
        # piecewise-constant stimuli: value on the open segment (seg_lo, seg_hi) of breakpoints
        pconst = np.empty(nb, dtype=np.bool_)
        seg_lo = np.empty(nb)
        seg_hi = np.empty(nb)
        seg_val = np.zeros(nb)
        for j in range(nb):
            pconst[j] = piecewise_constant(j0 + j, ptr, kind)
            seg_lo[j] = np.inf  # empty segment: look it up at the first step
            seg_hi[j] = -np.inf
        failed = 0
        r = 0
        for n in range(n_steps):
            t = t0 + n * dt
            t1 = t0 + (n + 1) * dt
            tm = 0.5 * (t + t1)
            # a step uses the cached value only if [t - margin, t1 + margin] lies inside the
            # segment; the margin exceeds the breakpoint merging tolerance (1e-11 max(1, |t|))
            margin = 1e-9 * (max(1.0, abs(t), abs(t1)) + dt)
            a = t - margin
            z = t1 + margin
            for j in range(nb):
                i = j0 + j
                if pconst[j]:
                    if not (a > seg_lo[j] and z < seg_hi[j]):
                        lo, hi = constant_segment(i, tm, bp_ptr, bp)
                        if a > lo and z < hi:
                            seg_lo[j] = lo
                            seg_hi[j] = hi
                            seg_val[j] = stim_at(i, tm, ptr, kind, par, data)
                        else:  # near a breakpoint: evaluate the stages one by one
                            seg_lo[j] = np.inf
                            seg_hi[j] = -np.inf
                    if a > seg_lo[j] and z < seg_hi[j]:
                        I3[0, j] = seg_val[j]
                        if STIM_STAGES == 3:
                            I3[1, j] = seg_val[j]
                            I3[2, j] = seg_val[j]
                        continue
                I3[0, j] = stim_in(i, t, t, t1, ptr, kind, par, data)
                if STIM_STAGES == 3:
                    I3[1, j] = stim_in(i, tm, t, t1, ptr, kind, par, data)
                    I3[2, j] = stim_in(i, t1, t, t1, ptr, kind, par, data)
            step(Y, I3, Pb, dt, W)
            if (n + 1) % rec_every == 0:
                r = (n + 1) // rec_every
                c = r % CHUNK
                if c == 0:  # buffer full: flush samples r - CHUNK .. r - 1
                    _flush(buf, OUT, j0, r - CHUNK, CHUNK)
                for q in range(nr):
                    s = rec[q]
                    for j in range(nb):
                        buf[q, j, c] = Y[s, j]
                # blow-up check on every state: a branch-free count first (vectorises)
                nbad = 0
                for j in range(nb):
                    ok = abs(Y[0, j]) < np.inf
                    for s in range(1, ns):
                        x = Y[s, j]
                        ok = ok & (x >= -GATE_TOL) & (x <= 1.0 + GATE_TOL)
                    nbad += 0 if ok else 1
                if nbad > 0:
                    for j in range(nb):
                        bad = not (abs(Y[0, j]) < np.inf)
                        for s in range(1, ns):
                            x = Y[s, j]
                            if not (x >= -GATE_TOL and x <= 1.0 + GATE_TOL):
                                bad = True
                        if bad and FAIL[j0 + j] < 0:
                            FAIL[j0 + j] = n + 1
                            failed += 1
                    if failed == nb:
                        break
        done = min(r + 1, n_rec)
        start = (done - 1) - ((done - 1) % CHUNK)
        _flush(buf, OUT, j0, start, done - start)


def _flush(buf, OUT, j0, r0, count):
    """Copy ``count`` buffered samples of a block to OUT[:, j0:j0+nb, r0:r0+count]."""
    for s in range(buf.shape[0]):
        for j in range(buf.shape[1]):
            for c in range(count):
                OUT[s, j0 + j, r0 + c] = buf[s, j, c]
