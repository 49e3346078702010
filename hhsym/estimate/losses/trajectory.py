r"""Output-error residuals of a rate parametrisation: the model runs freely and V is compared with the recording.

The stage-1 charge balance (:mod:`hhsym.estimate.losses.charge_balance`) puts the *measured*
V inside the ionic current, so noise on V enters the model's own terms (an
errors-in-variables problem).  The output-error loss does not: the model
integrates V itself over windows of ``window`` ms from a free initial state
(potential and gates) per window, and the residuals are
:math:`V_\mathrm{model}(t_k) - V_\mathrm{meas}(t_k)` at the samples — for
Gaussian measurement noise on V this is the maximum-likelihood loss.  Free
initial states keep every window well posed (no spike is missed because the
window started from a noisy sample).

:class:`TrajectoryProblem` evaluates it, with the exact Jacobian (forward
sensitivities, :func:`hhsym.estimate.losses.trajectory_kernel.trajectory_pass`), for
any :class:`~hhsym.estimate.rates.base.GateParametrisation` (curves, closed forms, networks).  It is what
``benchmarks/bench_identifiability.py`` uses to measure how well V(t) and
I(t) determine the rates at a given noise level.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.losses.tables import gate_starts_table, substeps_for
from hhsym.estimate.losses.threads import chunks, parallel_map
from hhsym.estimate.losses.trajectory_kernel import NO_SCALARS, trajectory_pass

__all__ = ["TrajectoryProblem", "OUTPUT_SUBSTEP", "OUTPUT_SPACING", "STABLE_STEP", "rate_cap_for"]

#: Largest RK4 step (ms) of the free-running model when ``substeps`` is not given (one step at 40 kHz).
OUTPUT_SUBSTEP = 0.025
#: Spacing (ms) of the compared samples when ``stride`` is not given (every other sample at 40 kHz).
OUTPUT_SPACING = 0.05
#: Largest dense Jacobian (entries) :meth:`TrajectoryProblem.evaluate` builds: 2e8 float64 = 1.6 GB.
DENSE_LIMIT = 200_000_000
#: Largest ``lambda * h`` of an RK4 sub-step ``h``: gate rates lambda = 1/tau above ``STABLE_STEP / h`` are capped
#: there (RK4's stability bound on the real axis is 2.785).
STABLE_STEP = 2.5


class TrajectoryProblem:
    """Output-error residuals of a rate parametrisation over windows tiling each recording.

    Parameters
    ----------
    rates : GateParametrisation
        Supplies the gate tables of its parameters (:mod:`hhsym.estimate.rates.base`).
    model : ConductanceModel
        Template (structure, g in mS/cm², E in mV, C_m in µF/cm², powers).
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace.
    window : float
        Window length (ms); consecutive windows tile each trace.
    substeps : int, optional
        RK4 sub-steps per sample.  Default: as many as make each step at most
        ``max_step`` ms (:func:`~hhsym.estimate.losses.tables.substeps_for`),
        per trace, so that a coarse sampling grid (4 kHz: 0.25 ms) never
        becomes the integration step (one RK4 step of 0.25 ms through a spike
        diverges).
    stride : int, optional
        A residual every ``stride`` samples (the window's start included).
        Default: the whole number of samples closest to :data:`OUTPUT_SPACING`
        ms, at least 1 (2 at 40 kHz, 1 at 20 kHz and below).
    free_states : bool or "V"
        Which initial states are parameters: ``True`` the potential and the
        gate offsets (noisy V: maximum likelihood); ``"V"`` the potential only,
        the gates starting at the gate-driven pass's values (a bridge from a
        charge-balance start: the model's own V, not the noisy measured V,
        drives the ionic current over the window, yet the gates stay pinned
        to the recording, so the rates cannot hide in free offsets); ``False``
        none: each window starts at the recorded V and the gate-driven pass's gates.
    stage1 : dict, optional
        Options of the gate-driven pass that gives the gates at the window
        starts (:class:`~hhsym.estimate.losses.charge_balance.ChargeBalance`:
        ``window``, ``burn_in``, ``substeps``); its defaults if omitted.
    max_step : float
        Largest RK4 step (ms) when ``substeps`` is not given.
    scalars : ScalarParameters, optional
        Whole-cell scalars fitted with the rates (:mod:`hhsym.estimate.rates.scalars`):
        their internal coordinates follow the rates' parameters in the parameter vector,
        with exact forward sensitivities.  Default: none (the template's values).

    Attributes
    ----------
    balance : ChargeBalance
        The gate-driven pass on the recordings (its traces, nodes and model arrays).
    rate_cap : float
        Largest gate rate λ = 1/τ (1/ms) the free-running model uses:
        :data:`STABLE_STEP` over the longest RK4 sub-step (100 /ms at 0.025 ms).  A faster
        gate (a charge-balance start on 4 kHz data reached 6e5 /ms) runs at this rate, its
        steady state unchanged, so that RK4 never diverges on it; the cap's derivative
        with respect to the rate is 0.  Models whose rates stay below it are unaffected.

    Notes
    -----
    The parameter vector is ``[family parameters, initial states]`` (the family
    parameters being the rates' then the free scalars') with one
    initial state ``(V0 (mV), offsets of the gates)`` per window (``V0`` alone with
    ``free_states="V"``: :attr:`n_free` entries); the gates
    start at the gate-driven pass's value at the window start (a function of
    the parametrisation's parameters, :mod:`hhsym.estimate.losses.tables`) plus the offset.
    Residuals are divided by the square root of their count (a mean square).
    """

    def __init__(self, rates, model, data, window=5.0, substeps=None, stride=None, free_states=True, stage1=None,
                 max_step=OUTPUT_SUBSTEP, scalars=None):
        if not (isinstance(window, (int, float)) and np.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of milliseconds, got {window!r}")
        self.rates = rates
        if not (free_states is True or free_states is False or free_states == "V"):
            raise ValueError(f"free_states must be True, False or 'V', got {free_states!r}")
        self.free_states = free_states
        self.balance = pr = ChargeBalance(rates, model, data, **(stage1 or {}))
        self.windows = []
        for tr in pr.traces:
            M = substeps_for(tr["dt"], max_step) if substeps is None else int(substeps)
            st = max(1, int(round(OUTPUT_SPACING / tr["dt"]))) if stride is None else max(1, int(stride))
            L = max(st, int(round(window / tr["dt"])) // st * st)
            starts = np.arange(0, len(tr["V"]) - 1 - L, L, dtype=np.int64)
            self.windows.append(dict(starts=starts, L=L, rec_f=np.ascontiguousarray(starts * tr["M"]),
                                     substeps=M, stride=st))
        self.rate_cap = rate_cap_for(data, substeps, max_step)
        self.ns = 1 + rates.n_gates
        #: fitted initial-state entries per window: potential and gate offsets, the potential, or none
        self.n_free = self.ns if free_states is True else int(free_states == "V")
        self.n_windows = sum(len(w["starts"]) for w in self.windows)
        self.n_residuals = sum(len(w["starts"]) * (w["L"] // w["stride"] + 1) for w in self.windows)
        self.scalars = scalars
        self.n_rates = rates.n_params
        self.n_family = rates.n_params + (scalars.n_params if scalars is not None else 0)
        if scalars is not None:
            self._sc = (scalars.kind, scalars.channel)
        else:
            self._sc = (NO_SCALARS, NO_SCALARS)

    def penalty_rows(self):
        """The rates' roughness rows (:meth:`GateParametrisation.penalty_rows`), zero on the scalars' columns."""
        D = np.asarray(self.rates.penalty_rows(), dtype=float).reshape(-1, self.n_rates)
        return np.hstack([D, np.zeros((D.shape[0], self.n_family - self.n_rates))])

    def initial_states(self):
        """Initial states from the recording: measured V at each window start, zero gate offsets.

        ``n_free`` entries per window (none without ``free_states``: the recording's values are then
        used as they are).
        """
        if not self.free_states:
            return np.zeros(0)
        out = []
        for tr, w in zip(self.balance.traces, self.windows):
            y = np.zeros((len(w["starts"]), self.n_free))
            y[:, 0] = tr["V"][w["starts"]]
            out.append(y.ravel())
        return np.concatenate(out)

    def carry_states(self, other, Y, offsets=False):
        """Initial states for this problem's windows from states ``Y`` fitted on ``other``'s windows.

        A window that starts where one of ``other``'s does takes its fitted
        potential (the noise on V averaged out by that fit) and, with
        ``offsets``, its gate offsets; any other starts at the recorded V
        with zero offsets.  (Over a longer window an offset fitted on a
        shorter one can drive the model off, or be what keeps it on.)

        Parameters
        ----------
        other : TrajectoryProblem
            A problem on the same recordings (e.g. with shorter windows).
        Y : ndarray (other.n_windows, other.n_free)
        offsets : bool
            Carry the gate offsets too (where both problems have them).

        Returns
        -------
        ndarray (n_windows, n_free)
        """
        out, off = [], 0
        Y = np.asarray(Y, dtype=float).reshape(-1, other.n_free)
        k = 1 + (min(self.n_free, other.n_free) - 1) * bool(offsets)
        for tr, w, wo in zip(self.balance.traces, self.windows, other.windows):
            n_o = len(wo["starts"])
            y = np.zeros((len(w["starts"]), self.n_free))
            y[:, 0] = tr["V"][w["starts"]]
            i = np.minimum(np.searchsorted(wo["starts"], w["starts"]), max(n_o - 1, 0))
            hit = (wo["starts"][i] == w["starts"]) if n_o else np.zeros(len(w["starts"]), dtype=bool)
            y[hit, :k] = Y[off + i[hit], :k]
            out.append(y)
            off += n_o
        return np.concatenate(out)

    def _gate_starts(self, tabs, tr, w, jac):
        """Gates (and their parameter sensitivities) of the gate-driven pass at the window starts."""
        nw, ng = len(w["starts"]), self.rates.n_gates
        X = np.empty((nw, ng))
        S = np.empty((nw, ng, tabs[2].shape[2] if jac else 0))
        ok = gate_starts_table(ng, tr["dt"] / tr["M"], tr["idx"], tr["wt"], tr["idx0"], tr["wt0"], *tabs,
                               w["rec_f"], jac, X, S)
        return ok, X, S

    def blocks(self, p, Y0, jac=True, family=True):
        """Residuals per window, with the Jacobian split into family and initial-state parts.

        Parameters
        ----------
        p : ndarray
            Family parameters.
        Y0 : ndarray (n_windows, n_free) or None
            Initial states (potential in mV, then with ``free_states=True`` the gate offsets);
            ignored without ``free_states``.
        jac : bool
        family : bool
            With ``jac``, also the derivatives with respect to ``p`` (False: ``Jp`` has no
            columns and the sensitivities run over the initial states alone, a fraction of the
            cost: what a fit of the states alone needs).

        Returns
        -------
        list of (R, Jp, JY) per trace, or None if a value was non-finite
            ``R (nw, m)`` residuals (mV / sqrt(count)), ``Jp (nw, m, n_family)`` (``(nw, m, 0)``
            without ``family``) their derivatives with respect to ``p`` and ``JY (nw, m, n_free)``
            with respect to each window's own free initial state (``None`` unless ``jac``
            and ``free_states``).
        """
        pr, ns, nf, nr = self.balance, self.ns, self.n_family, self.n_rates
        p = np.asarray(p, dtype=float)
        tabs = pr.tables(p[:nr], jac and family)
        run_tabs = self._capped(tabs, jac and family)
        if jac and not family:  # tangents over the initial states only: no parameter columns
            none = np.zeros(run_tabs[0].shape + (0,))
            run_tabs = (run_tabs[0], run_tabs[1], none, none)
        a = pr.arr
        C, ch_g, ch_E = (a["C"], a["ch_g"], a["ch_E"]) if self.scalars is None else self.scalars.arrays(p[nr:], a)
        chain = None if self.scalars is None else self.scalars.chain(p[nr:])
        scale = 1.0 / np.sqrt(self.n_residuals)
        pairs = list(zip(pr.traces, self.windows))
        starts = parallel_map(lambda tw: self._gate_starts(tabs, tw[0], tw[1], jac and family), pairs)
        if not all(ok for ok, _, _ in starts):
            return None
        runs, off = [], 0
        for (tr, w), (_, X, S) in zip(pairs, starts):
            nw, L = len(w["starts"]), w["L"]
            if self.free_states:
                y0 = np.zeros((nw, ns))
                y0[:, :self.n_free] = np.asarray(Y0[off:off + nw], dtype=float).reshape(nw, self.n_free)
                y0[:, 1:] += X
            else:
                y0 = np.column_stack([tr["V"][w["starts"]], X])
            nres = L // w["stride"] + 1
            R = np.empty((nw, nres))
            Jt = np.empty((R.size if jac else 0, nf if family else 0))
            JY = np.empty((R.size if jac else 0, ns))
            runs.append((tr, w, np.ascontiguousarray(y0), np.ascontiguousarray(S), R, Jt, JY))
            off += nw
        # contiguous chunks of windows, handed to the threads as they come free; each writes its own rows
        pieces = [(run, lo, hi) for run in runs for lo, hi in chunks(len(run[1]["starts"]), self.n_windows)]

        def piece(item):
            (tr, w, y0, S, R, Jt, JY), lo, hi = item
            rows = slice(lo * R.shape[1], hi * R.shape[1]) if jac else slice(0, 0)
            return trajectory_pass(tr["V"], tr["I"], tr["dt"], w["substeps"], C, ch_g, ch_E, a["gate_ch"],
                                   a["gate_pow"], pr.table.v0, pr.table.h, *run_tabs, w["starts"][lo:hi], w["L"],
                                   w["stride"], y0[lo:hi], S[lo:hi], jac, R[lo:hi], Jt[rows], JY[rows],
                                   *(self._sc if family else (NO_SCALARS, NO_SCALARS)))

        if not all(parallel_map(piece, pieces)):
            return None
        out = []
        for tr, w, y0, S, R, Jt, JY in runs:
            if not np.all(np.isfinite(R)):
                return None
            nw, nres = R.shape
            if jac and family and chain is not None:
                Jt[:, nr:] *= chain
            if jac:
                out.append((scale * R, scale * Jt.reshape(nw, nres, Jt.shape[1]),
                            scale * JY.reshape(nw, nres, ns)[:, :, :self.n_free] if self.free_states
                            else None))
            else:
                out.append((scale * R, None, None))
        return out

    def _capped(self, tabs, jac):
        """The node tables with every rate above :attr:`rate_cap` set to it (derivative 0 there)."""
        XI, LA, DX, DL = tabs
        hit = LA > self.rate_cap
        if not hit.any():
            return tabs
        LA = np.ascontiguousarray(np.where(hit, self.rate_cap, LA))
        if jac:
            DL = DL.copy()
            DL[hit] = 0.0
        return XI, LA, DX, DL

    def evaluate(self, q, jac=True):
        """Residuals (mV / sqrt(count)) and Jacobian at ``q``.

        Parameters
        ----------
        q : ndarray
            ``[family parameters, initial states (n_windows * n_free)]``.
        jac : bool

        Returns
        -------
        r : ndarray or None (non-finite)
        J : ndarray or None, only if ``jac``

        Raises
        ------
        InvalidArgumentError
            When the dense Jacobian would exceed :data:`DENSE_LIMIT` entries (it grows as the
            square of the data length: every window has its own initial-state columns);
            :meth:`fit` works on per-window blocks (:meth:`blocks`) instead.
        """
        nf, ns = self.n_family, self.n_free
        if jac and self.n_residuals * np.size(q) > DENSE_LIMIT:
            from hhsym.errors import invalid

            raise invalid("q", f"<{np.size(q)} parameters>", f"a problem whose dense Jacobian stays under "
                          f"{DENSE_LIMIT:.0e} entries (this one: {self.n_residuals} x {np.size(q)}); fit with "
                          "TrajectoryProblem.fit, which works on per-window blocks, or on shorter data")
        Y0 = np.asarray(q[nf:]).reshape(-1, ns) if self.free_states else None
        out = self.blocks(q[:nf], Y0, jac)
        if out is None:
            return (None, None) if jac else None
        r = np.concatenate([R.ravel() for R, _, _ in out])
        if not jac:
            return r
        J = np.zeros((self.n_residuals, q.size))
        row = off = 0
        for R, Jp, JY in out:
            nw, nres = R.shape
            J[row:row + R.size, :nf] = Jp.reshape(R.size, nf)
            if self.free_states:
                rows = np.arange(R.size)
                cols = nf + (off + rows // nres) * ns
                for k in range(ns):
                    J[row + rows, cols + k] = JY.reshape(R.size, ns)[:, k]
            row += R.size
            off += nw
        return r, J

    def fit(self, p0, Y0=None, free=None, smooth=0.0, max_iter=50, ftol=1e-6, mu0=1e-2, time_limit=None,
            fit_family=True, penalty=None, geodesic=False):
        """Levenberg–Marquardt on the output error, initial states eliminated window by window.

        Parameters
        ----------
        p0 : ndarray
            Starting family parameters.
        Y0 : ndarray (n_windows, n_free), optional
            Starting initial states (default :meth:`initial_states`); needs ``free_states``.
        free : array of int, optional
            Indices of the family parameters to fit (default all).
        smooth : float
            Weight of the family's roughness penalty.
        max_iter, ftol, mu0, time_limit :
            As for :func:`hhsym.estimate.optimise.window_lm.levenberg_marquardt_windows`.
        fit_family : bool
            False fits the initial states only.
        penalty : callable, optional
            A penalty ``penalty(p, jac)`` -> ``r`` or ``(r, dr/dp)`` added as ``0.5 |r|²``
            (e.g. a weighted :meth:`~hhsym.estimate.rates.base.GateParametrisation.roughness`);
            replaces ``smooth``.
        geodesic : bool
            Geodesic acceleration on each step
            (:func:`~hhsym.estimate.optimise.window_lm.levenberg_marquardt_windows`).

        Returns
        -------
        p : ndarray
        Y : ndarray (n_windows, n_free)
        cost : float
            Half the mean square of ``V_model - V_meas`` (mV²), penalty included.
        """
        from hhsym.estimate.optimise.window_lm import levenberg_marquardt_windows

        if not self.free_states:
            raise ValueError("fit needs free initial states (free_states=True or 'V')")
        Y0 = self.initial_states().reshape(-1, self.n_free) if Y0 is None else np.asarray(Y0, dtype=float)
        free = np.arange(self.n_family) if free is None else np.asarray(free, dtype=np.int64)
        if not fit_family:
            free = np.zeros(0, dtype=np.int64)
        D = np.sqrt(float(smooth)) * self.penalty_rows() if smooth > 0 else None
        if penalty is not None:
            D = penalty
        # a fit of the states alone needs no parameter sensitivities (:meth:`blocks`' ``family``)
        fun = self.blocks if fit_family else (lambda p, Y, jac: self.blocks(p, Y, jac, family=False))
        return levenberg_marquardt_windows(fun, np.asarray(p0, dtype=float), Y0, free, penalty=D,
                                           max_iter=max_iter, ftol=ftol, mu0=mu0, time_limit=time_limit,
                                           geodesic=geodesic and fit_family)

    def lm_fun(self, smooth=0.0):
        """``fun(q, jac)`` for :func:`~hhsym.estimate.optimise.lm.levenberg_marquardt`, with the family's
        roughness penalty (weight ``smooth``) on its parameters."""
        D = np.sqrt(float(smooth)) * self.penalty_rows() if smooth > 0 else np.zeros((0, self.n_family))

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


def rate_cap_for(data, substeps=None, max_step=OUTPUT_SUBSTEP):
    """The :attr:`TrajectoryProblem.rate_cap` (1/ms) a problem on ``data`` will have.

    Parameters
    ----------
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per trace.
    substeps : int, optional
        RK4 sub-steps per sample (default: steps of at most ``max_step`` ms).
    max_step : float
        ms.

    Returns
    -------
    float
    """
    steps = [d[0] / (substeps_for(d[0], max_step) if substeps is None else int(substeps)) for d in data]
    return STABLE_STEP / max(steps)
