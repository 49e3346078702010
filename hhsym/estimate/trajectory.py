r"""Output-error residuals of a curve family: the model runs freely and V is compared with the recording.

The stage-1 charge balance (:mod:`hhsym.estimate.problem`) puts the *measured*
V inside the ionic current, so noise on V enters the model's own terms (an
errors-in-variables problem).  The output-error loss does not: the model
integrates V itself over windows of ``window`` ms from a free initial state
(potential and gates) per window, and the residuals are
:math:`V_\mathrm{model}(t_k) - V_\mathrm{meas}(t_k)` at the samples — for
Gaussian measurement noise on V this is the maximum-likelihood loss.  Free
initial states keep every window well posed (no spike is missed because the
window started from a noisy sample).

:class:`TrajectoryProblem` evaluates it, with the exact Jacobian (forward
sensitivities, :func:`hhsym.estimate.trajectory_kernel.trajectory_pass`), for
any :class:`~hhsym.estimate.family.CurveFamily`.  It is what
``benchmarks/bench_identifiability.py`` uses to measure how well V(t) and
I(t) determine the rates at a given noise level.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.trajectory_kernel import trajectory_pass

__all__ = ["TrajectoryProblem"]


class TrajectoryProblem:
    """Output-error residuals of a curve family over windows tiling each recording.

    Parameters
    ----------
    family : CurveFamily
        Supplies the recordings (its ``problem``), the model structure and the
        gate tables of its parameters.
    window : float
        Window length (ms); consecutive windows tile each trace.
    substeps : int
        RK4 sub-steps per sample.
    stride : int
        A residual every ``stride`` samples (the window's start included).
    free_states : bool
        Whether the initial states are parameters (noisy V); if False each
        window starts at the recorded V and the gate-driven pass's gates.

    Notes
    -----
    The parameter vector is ``[family parameters, initial states]`` with one
    initial state ``(V0 (mV), offsets of the gates)`` per window; the gates
    start at the gate-driven pass's value at the window start (a function of
    the family's parameters, :mod:`hhsym.estimate.tables`) plus the offset.
    Residuals are divided by the square root of their count (a mean square).
    """

    def __init__(self, family, window=5.0, substeps=1, stride=1, free_states=True):
        if not (isinstance(window, (int, float)) and np.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of milliseconds, got {window!r}")
        self.family = family
        self.substeps = int(substeps)
        self.stride = max(1, int(stride))
        self.free_states = bool(free_states)
        pr = family.problem
        self.windows = []
        for tr in pr.traces:
            L = max(self.stride, int(round(window / tr["dt"])) // self.stride * self.stride)
            starts = np.arange(0, len(tr["V"]) - 1 - L, L, dtype=np.int64)
            rec = np.unique(np.concatenate([tr["rec"], starts]))
            self.windows.append(dict(starts=starts, L=L, rec=rec, rec_f=np.ascontiguousarray(rec * tr["M"]),
                                     at=np.searchsorted(rec, starts), ib=np.searchsorted(rec, tr["bounds"])))
        self.ns = 1 + family.ng
        self.n_windows = sum(len(w["starts"]) for w in self.windows)
        self.n_residuals = sum(len(w["starts"]) * (w["L"] // self.stride + 1) for w in self.windows)
        self.n_family = family.ng * family.n_per_gate

    def initial_states(self):
        """Initial states from the recording: measured V at each window start, zero gate offsets.

        Empty without ``free_states`` (the recording's values are then used as they are).
        """
        if not self.free_states:
            return np.zeros(0)
        out = []
        for tr, w in zip(self.family.problem.traces, self.windows):
            y = np.zeros((len(w["starts"]), self.ns))
            y[:, 0] = tr["V"][w["starts"]]
            out.append(y.ravel())
        return np.concatenate(out)

    def _gate_starts(self, tabs, tr, w, jac):
        """Gates (and their parameter sensitivities) of the gate-driven pass at the window starts."""
        pr = self.family.problem
        local = dict(tr, rec=w["rec"], rec_f=w["rec_f"])
        ok, _, _, X, S = pr._gates(tabs, local, jac, self.n_family)
        return ok, X[w["at"]], (S[w["at"]] if jac else np.zeros((len(w["starts"]), self.family.ng, 0)))

    def evaluate(self, q, jac=True):
        """Residuals (mV / sqrt(count)) and Jacobian at ``q``.

        Parameters
        ----------
        q : ndarray
            ``[family parameters, initial states (n_windows * (1 + n_gates))]``.
        jac : bool

        Returns
        -------
        r : ndarray or None (non-finite)
        J : ndarray or None, only if ``jac``
        """
        fam, pr, ns, nf = self.family, self.family.problem, self.ns, self.n_family
        p = q[:nf]
        Y0 = np.asarray(q[nf:]).reshape(-1, ns) if self.free_states else None
        tabs = fam.tables(p, jac)
        a = pr.arr
        scale = 1.0 / np.sqrt(self.n_residuals)
        rs = []
        J = np.zeros((self.n_residuals, q.size)) if jac else None
        row = off = 0
        for tr, w in zip(pr.traces, self.windows):
            nw, L = len(w["starts"]), w["L"]
            ok, X, S = self._gate_starts(tabs, tr, w, jac)
            if not ok:
                return (None, None) if jac else None
            if self.free_states:
                y0 = Y0[off:off + nw].copy()
                y0[:, 1:] += X
            else:
                y0 = np.column_stack([tr["V"][w["starts"]], X])
            nres = L // self.stride + 1
            R = np.empty((nw, nres))
            Jt = np.empty((R.size if jac else 0, nf))
            JY = np.empty((R.size if jac else 0, ns))
            ok = trajectory_pass(tr["V"], tr["I"], tr["dt"], self.substeps, a["C"], a["ch_g"], a["ch_E"],
                                 a["gate_ch"], a["gate_pow"], pr.table.v0, pr.table.h, *tabs, w["starts"], L,
                                 self.stride,
                                 np.ascontiguousarray(y0), np.ascontiguousarray(S), jac, R, Jt, JY)
            if not ok:
                return (None, None) if jac else None
            rs.append(scale * R.ravel())
            if jac:
                J[row:row + R.size, :nf] = scale * Jt
                if self.free_states:
                    rows = np.arange(R.size)
                    cols = nf + (off + rows // nres) * ns
                    for k in range(ns):
                        J[row + rows, cols + k] = scale * JY[:, k]
            row += R.size
            off += nw
        r = np.concatenate(rs)
        if not np.all(np.isfinite(r)):
            return (None, None) if jac else None
        return (r, J) if jac else r

    def lm_fun(self, smooth=0.0):
        """``fun(q, jac)`` for :func:`~hhsym.estimate.optimize.levenberg_marquardt`, with the family's
        roughness penalty (weight ``smooth``) on its parameters."""
        D = np.sqrt(float(smooth)) * self.family.penalty_rows() if smooth > 0 else np.zeros((0, self.n_family))

        def fun(q, jac):
            out = self.evaluate(q, jac)
            pen = D @ q[:self.n_family]
            if not jac:
                return None if out is None else np.concatenate([out, pen])
            if out[0] is None:
                return None, None
            Jp = np.zeros((D.shape[0], q.size))
            Jp[:, :self.n_family] = D
            return np.concatenate([out[0], pen]), np.vstack([out[1], Jp])
        return fun
