"""Fast gates in the output error: the rate cap of the free run and a penalty that keeps rates under it.

A gate whose rate :math:`\\lambda = 1/\\tau` exceeds RK4's stability bound of the sub-step would make the
free-running model diverge (a charge-balance start on 4 kHz data reached 6e5 /ms).
:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` caps such rates at
:data:`~hhsym.estimate.losses.trajectory.STABLE_STEP` over the sub-step; :func:`rate_bound_penalty` pulls a
start that exceeds the cap back under it, so that the fitted closed forms also run without the cap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rate_bound_penalty"]


def rate_bound_penalty(rates, V, cap, n_family, weight=1.0):
    r"""A penalty keeping every gate rate :math:`\lambda = 1/\tau` below ``cap`` on the potentials ``V``.

    Residuals ``weight * max(0, ln(lambda / cap))`` per gate and potential (cost
    ``0.5 |r|²`` in the loss's units, mV²): zero for rates under the cap, so a
    fit that never reaches it is unchanged; a start beyond it (a charge-balance
    fit on coarse data) is pulled back to rates the free-running model follows
    without the cap of :class:`TrajectoryProblem`.

    Parameters
    ----------
    rates : GateParametrisation
    V : ndarray
        Potentials (mV), e.g. the recorded range.
    cap : float
        1/ms (:func:`~hhsym.estimate.losses.trajectory.rate_cap_for`).
    n_family : int
        Length of the parameter vector (the rates' then e.g. the scalars': zero columns).
    weight : float
        Residual per e-fold over the cap.

    Returns
    -------
    callable
        ``penalty(p, jac)`` -> ``r`` or ``(r, dr/dp)`` (:meth:`TrajectoryProblem.fit`).
    """
    V = np.asarray(V, dtype=float)
    nr, npg = rates.n_params, rates.n_per_gate

    def penalty(p, jac):
        _, LA, _, DL = rates.tables(np.asarray(p, dtype=float)[:nr], V, jac)
        over = np.log(np.maximum(LA, 1e-300) / cap)
        r = weight * np.maximum(over, 0.0).ravel()
        if not jac:
            return r
        J = np.zeros((r.size, n_family))
        active = (over > 0.0)
        for j in range(rates.n_gates):
            rows = j * V.size + np.flatnonzero(active[j])
            J[rows, j * npg:(j + 1) * npg] = weight * DL[j, active[j]] / LA[j, active[j], None]
        return r, J
    return penalty
