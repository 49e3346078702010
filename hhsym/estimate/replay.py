"""Free-running the hybrid model (networks inside the known equations) without code generation.

``estimator.model_`` is an ordinary :class:`~hhsym.model.ConductanceModel`, so
:func:`hhsym.simulate.simulate` runs it — after compiling the networks' sympy
expressions, which takes tens of seconds for a new fit.  The estimator's own
multiple-shooting kernel (:func:`hhsym.estimate.losses.kernels.shoot_pass`, compiled
once for every model) integrates the same hybrid model with classical RK4 on
the recording's grid, the current linearly interpolated at half steps — the
scheme of ``simulate(method="rk4")`` with a sampled current — so it replays a
fit at once.
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import SimulationError
from hhsym.estimate.losses.kernels import shoot_pass
from hhsym.estimate.losses.charge_balance import model_arrays

__all__ = ["replay"]


def replay(estimator, trace):
    """Run a fitted estimator's hybrid model under a recording's current.

    Parameters
    ----------
    estimator : RateEstimator
        Fitted (per-gate networks in ``gates_``).
    trace : Trace
        Uniformly sampled recording: its current I (µA/cm²) drives the model,
        its first V (mV) is the initial potential; the gates start at their
        learned steady state there.

    Returns
    -------
    Trace
        Times (ms), the hybrid model's V (mV) and the current, on the
        recording's grid.

    Raises
    ------
    SimulationError
        If the hybrid model diverges under this current.
    """
    from hhsym.io.trace import Trace

    names = [g.name for g in estimator.model.gates]
    gates = [estimator.gates_[g] for g in names]
    nets = [n for g in gates for n in (g.xnet, g.tnet)]
    thetas = np.ascontiguousarray(np.array([n.theta for n in nets]))
    norms = np.ascontiguousarray([[n.center, n.scale, n.delta] for n in nets], dtype=float)
    t = np.asarray(trace.t, dtype=float)
    I = np.ascontiguousarray(trace.I, dtype=float)
    n = t.size
    dt = float(t[1] - t[0])
    a = model_arrays(getattr(estimator, "template_", estimator.model))  # with the fitted scalars
    V0 = float(trace.V[0])
    X0 = np.array([[float(g.x_inf(np.array([V0]))[0]) for g in gates]])
    R = np.empty((1, n - 1))
    target = np.zeros(n)  # the kernel starts from target[0] and returns V_model - target
    target[0] = V0
    ok = shoot_pass(target, I, dt, a["C"], a["ch_g"], a["ch_E"], a["gate_ch"], a["gate_pow"], thetas,
                    nets[0].sizes, norms, np.zeros(1, dtype=np.int64), n - 1, 1, X0,
                    np.zeros((1, len(names), 0)), False, R, np.empty((0, 0)), float(gates[0].tau_min))
    if not ok or not np.all(np.isfinite(R)):
        raise SimulationError(f"the hybrid model diverges under this current (rk4, dt = {dt:g} ms)")
    return Trace(t, np.concatenate([[V0], R[0]]), np.asarray(trace.I, dtype=float))
