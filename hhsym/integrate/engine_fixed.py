"""Shared driver of the fixed-step methods.

Neurons are processed in blocks (columns of a small structure-of-arrays
block, so the model's loop over neurons vectorises), blocks in parallel:
one worker per thread (``numba.prange`` over the workers), each claiming
the next unprocessed block until none is left (:mod:`.schedule`), so a
thread slowed by another process on its core takes fewer blocks instead of
holding up the call.  The method module provides ``step(Y, I3, P, dt, W)``, ``WORK`` (number of
``(n_states, block)`` work arrays it needs) and ``STIM_STAGES``: 1 when the
step uses only the current at the start of the step (``I3[0]``), 3 when it
also uses the midpoint and end values (``I3[1]``, ``I3[2]``).

The stimulus values of a block's step come from ``stage_currents`` (one call
per step, compiled once for all models): stimuli that are constant between
their breakpoints (steps, pulse trains and sums of them) are evaluated once
per constant segment instead of three times per step; a step that comes
within a small margin of a breakpoint evaluates them as ``stim_in`` does, so
the values seen by the method are the same.  Stimuli that are one uniform
table (OU noise, uniformly sampled data) are looked up directly, with the
grid coordinate of each stage time computed once per block and grid; a block
whose tables all share one grid keeps each table's current segment.

Only the states listed in ``rec`` are stored (``OUT[q]`` holds state
``rec[q]``).  Failure detection looks at every state: at every recorded
sample, a neuron whose V or calcium pool is not finite or one of whose gates is not finite
or lies outside ``[-GATE_TOL, 1 + GATE_TOL]`` is marked failed in ``FAIL``
with the index of that step (``-1`` = fine).
"""

import numba  # noqa: F401  (names used by the kernel source below)
import numpy as np  # noqa: F401

ENTRY = "fixed_run"
#: Helpers of the kernel source that codegen inlines into their callers (numba IR): the step and
#: the blow-up check run once per block and time step, and inlined they cost no call passing ~7
#: scalars per array; the block's body allocates its work arrays, which the other helpers
#: (compiled without NRT) may not.
INLINE = ("_block_run", "step", "_count_bad")

# --- kernel source below ---
GATE_TOL = 1e-6
CHUNK = 32


def fixed_run(Y0, P, ptr, kind, par, data, bp_ptr, bp, rec, t0, dt, n_steps, rec_every, block, n_workers, OUT,
              FAIL):
    """Integrate every column of Y0 for n_steps of dt (ms), recording every rec_every steps.

    Blocks of ``block`` neurons are claimed one at a time by ``n_workers``
    workers running in parallel (normally ``numba.get_num_threads()``; the
    result does not depend on it).

    OUT has shape (rec.size, n_neurons, n_samples): the states ``rec`` (int
    indices into the state vector).  Samples are gathered per block in a
    small buffer of CHUNK samples (one contiguous row per sample, so storing
    a sample is a vector copy) and written out in contiguous runs.
    """
    N = Y0.shape[1]
    n_blocks = (N + block - 1) // block
    counter = np.zeros(1, dtype=np.int64)  # next unclaimed block
    for _ in numba.prange(max(1, min(n_workers, n_blocks))):
        wide_vectors()
        while True:
            b = next_block(counter)
            if b >= n_blocks:
                break
            _block_run(b * block, min(N, (b + 1) * block), Y0, P, ptr, kind, par, data, bp_ptr, bp, rec,
                       t0, dt, n_steps, rec_every, OUT, FAIL)


def _block_run(j0, j1, Y0, P, ptr, kind, par, data, bp_ptr, bp, rec, t0, dt, n_steps, rec_every, OUT, FAIL):
    """Integrate neurons ``j0 .. j1 - 1`` (one block) as :func:`fixed_run` describes."""
    wide_vectors()
    ns = Y0.shape[0]
    nr = rec.shape[0]
    n_par = P.shape[0]
    nb = j1 - j0
    Y = np.empty((ns, nb))
    Pb = np.empty((n_par, nb))
    buf = np.empty((nr, CHUNK, nb))
    for s in range(ns):
        for j in range(nb):
            Y[s, j] = Y0[s, j0 + j]
    for k in range(n_par):
        for j in range(nb):
            Pb[k, j] = P[k, j0 + j]
    for q in range(nr):
        for j in range(nb):
            buf[q, 0, j] = Y0[rec[q], j0 + j]
    W = np.empty((WORK, ns, nb))
    I3 = np.empty((3, nb))
    # how each stimulus is evaluated; piecewise-constant ones: value on the open segment
    # (seg[0], seg[1]) of breakpoints
    how = np.empty(nb, dtype=np.int64)
    seg = np.zeros((3, nb))
    for j in range(nb):
        how[j] = stimulus_class(j0 + j, ptr, kind)
        seg[0, j] = np.inf  # empty segment: look it up at the first step
        seg[1, j] = -np.inf
    span = np.empty(2)
    span[0] = np.inf
    span[1] = -np.inf
    # a block whose stimuli are tables on one grid (OU noise): each table's current segment
    tab = np.empty((2, nb))
    tstate = np.empty(2)
    tstate[0] = 1.0 if shared_table_grid(j0, nb, ptr, kind, par) else 0.0
    tstate[1] = -1.0
    failed = 0
    r = 0  # index of the last sample taken
    c = 0  # its row in buf
    wait = rec_every  # steps to the next sample
    for n in range(n_steps):
        t = t0 + n * dt
        t1 = t0 + (n + 1) * dt
        stage_currents(j0, t, t1, STIM_STAGES, ptr, kind, par, data, bp_ptr, bp, how, seg, span, tab, tstate,
                       I3)
        step(Y, I3, Pb, dt, W)
        wait -= 1
        if wait > 0:
            continue
        wait = rec_every
        r += 1
        c += 1
        if c == CHUNK:  # buffer full: write samples r - CHUNK .. r - 1
            _flush(buf, OUT, j0, r - CHUNK, CHUNK)
            c = 0
        for q in range(nr):
            s = rec[q]
            for j in range(nb):
                buf[q, c, j] = Y[s, j]
        if _count_bad(Y) > 0:
            for j in range(nb):
                bad = not (abs(Y[0, j]) < np.inf)
                for s in range(1, GATE_END):
                    x = Y[s, j]
                    if not (x >= -GATE_TOL and x <= 1.0 + GATE_TOL):
                        bad = True
                for s in range(GATE_END, ns):
                    if not (abs(Y[s, j]) < np.inf):
                        bad = True
                if bad and FAIL[j0 + j] < 0:
                    FAIL[j0 + j] = n + 1
                    failed += 1
            if failed == nb:
                break
    _flush(buf, OUT, j0, r - c, c + 1)




def _count_bad(Y):
    """Number of (state, neuron) entries of the block Y that signal a blow-up.

    V or a calcium pool not finite, or a gate not finite or outside ``[-GATE_TOL, 1 + GATE_TOL]``
    (gates are states ``1 .. GATE_END - 1``, which the generated module defines);
    branch-free loops over the neurons, so they vectorise.
    """
    wide_vectors()
    nb = Y.shape[1]
    nbad = 0
    for j in range(nb):
        nbad += 0 if abs(Y[0, j]) < np.inf else 1
    for s in range(1, GATE_END):
        for j in range(nb):
            x = Y[s, j]
            nbad += 0 if (x >= -GATE_TOL) & (x <= 1.0 + GATE_TOL) else 1
    for s in range(GATE_END, Y.shape[0]):
        for j in range(nb):
            nbad += 0 if abs(Y[s, j]) < np.inf else 1
    return nbad


def _flush(buf, OUT, j0, r0, count):
    """Copy ``count`` buffered samples of a block (rows of buf) to OUT[:, j0:j0+nb, r0:r0+count]."""
    restrict_arrays()
    for q in range(buf.shape[0]):
        for j in range(buf.shape[2]):
            for c in range(count):
                OUT[q, j0 + j, r0 + c] = buf[q, c, j]
