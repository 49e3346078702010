r"""Rate networks as a rate parametrisation (:class:`NetworkRates`), over the numba table kernel.

Each gate ``j`` is two tanh networks of the same layout ``sizes``
(:mod:`hhsym.estimate.rates.netkernels`): :math:`f_x` (logit x_inf, row
``2j`` of ``thetas``) and :math:`f_\tau` (log(tau - tau_min), row ``2j + 1``),
as in :class:`~hhsym.estimate.rates.network.GateNetworks`.  The flat parameter
vector is ``thetas.ravel()``, so gate ``j``'s parameters are
``[theta_x (P), theta_tau (P)]`` and :attr:`NetworkRates.n_per_gate` is ``2 P``.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.losses.tables import node_tables
from hhsym.estimate.losses.threads import parallel_map
from hhsym.estimate.rates.base import GateParametrisation
from hhsym.estimate.rates.netkernels import log_rate_batch, n_params
from hhsym.estimate.rates.network import TAU_MIN, GateNetworks

__all__ = ["NetworkRates"]


class NetworkRates(GateParametrisation):
    """Two tanh networks per gate (steady state, time constant): the estimator's parametrisation.

    Parameters
    ----------
    sizes : int array
        Network layer widths ``[1, ..., 1]`` (all networks alike).
    norms : array (2 n_gates, 3)
        Per-network ``[center (mV), scale (mV), delta]``, rows as in the
        parameters: gate ``j``'s logit-x_inf network, then its log(tau - tau_min) one.
    tau_min : float
        Time-constant floor (ms): tau = tau_min + exp(f_tau).

    Notes
    -----
    No penalty rows (the estimator's ridge acts through :meth:`penalised`) and no
    public constants; :meth:`to_sympy` writes the networks out
    (:meth:`GateNetworks.to_sympy`, which needs one normalisation per gate).
    """

    def __init__(self, sizes, norms, tau_min=TAU_MIN):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.norms = np.ascontiguousarray(norms, dtype=float)
        if self.norms.ndim != 2 or self.norms.shape[1] != 3 or self.norms.shape[0] % 2:
            raise ValueError(f"norms must be (2 n_gates, 3), got shape {self.norms.shape}")
        self.tau_min = float(tau_min)

    @classmethod
    def from_gates(cls, gates):
        """The parametrisation of fitted gates and their flat parameters.

        Parameters
        ----------
        gates : sequence of GateNetworks
            Same layout and tau_min for all.

        Returns
        -------
        (NetworkRates, ndarray)
        """
        nets = [n for g in gates for n in (g.xnet, g.tnet)]
        norms = np.array([[n.center, n.scale, n.delta] for n in nets])
        theta = np.concatenate([np.asarray(n.theta, dtype=float) for n in nets])
        return cls(nets[0].sizes, norms, float(gates[0].tau_min)), theta

    @property
    def n_gates(self):
        """int: number of gates."""
        return self.norms.shape[0] // 2

    @property
    def P(self):
        """int: parameters per network."""
        return n_params(self.sizes)

    @property
    def n_per_gate(self):
        """int: parameters per gate (two networks)."""
        return 2 * self.P

    def thetas(self, p):
        """Parameters as the kernels take them: C-contiguous ``(2 n_gates, P)``."""
        return np.ascontiguousarray(np.asarray(p, dtype=float).reshape(2 * self.n_gates, -1))

    def penalised(self, mask):
        """Ridge mask over all parameters from one network's ``mask`` (:meth:`RateNetwork.penalised`)."""
        return np.tile(np.asarray(mask), 2 * self.n_gates)

    def rates(self, p, V):
        """alpha, beta (1/ms) at ``V`` (mV), each (n_gates, len(V)), computed stably in logs."""
        th = self.thetas(p)
        Vs = np.atleast_1d(np.asarray(V, dtype=float)).ravel()
        la, lb = [], []
        for j in range(self.n_gates):
            fx = log_rate_batch(th[2 * j], self.sizes, Vs, *self.norms[2 * j], False)[0]
            ft = log_rate_batch(th[2 * j + 1], self.sizes, Vs, *self.norms[2 * j + 1], False)[0]
            lt = np.logaddexp(np.log(self.tau_min), ft)
            la.append(-np.logaddexp(0.0, -fx) - lt)
            lb.append(-np.logaddexp(0.0, fx) - lt)
        return np.exp(np.array(la)), np.exp(np.array(lb))

    def tables(self, p, nodes, jac):
        """Node tables (:func:`hhsym.estimate.losses.tables.node_tables`, the numba kernel).

        ``p`` may be flat or already ``(2 n_gates, P)``.
        """
        thetas = self.thetas(p)
        nodes = np.asarray(nodes, dtype=float)
        K = len(nodes)
        P2 = 2 * thetas.shape[1]
        ng = self.n_gates
        XI = np.empty((ng, K))
        LA = np.empty((ng, K))
        DX = np.empty((ng, K if jac else 0, P2))
        DL = np.empty((ng, K if jac else 0, P2))

        def gate(j):  # each gate's rows on its own thread (the kernel is nogil); the same numbers
            s = slice(j, j + 1)
            node_tables(thetas[2 * j:2 * j + 2], self.sizes, self.norms[2 * j:2 * j + 2], nodes, self.tau_min, jac,
                        XI[s], LA[s], DX[s], DL[s])

        parallel_map(gate, range(ng))
        return XI, LA, DX, DL

    def gates(self, p):
        """One :class:`GateNetworks` per gate at parameters ``p`` (needs each gate's two norms equal)."""
        th = self.thetas(p)
        hidden = tuple(int(h) for h in self.sizes[1:-1])
        out = []
        for j in range(self.n_gates):
            nx, nt = self.norms[2 * j], self.norms[2 * j + 1]
            if not np.array_equal(nx, nt):
                raise NotImplementedError("GateNetworks share one normalisation per gate")
            out.append(GateNetworks(hidden, nx[0], nx[1], th[2 * j], th[2 * j + 1], self.tau_min, nx[2]))
        return out

    def to_sympy(self, p):
        """``[(alpha_j, beta_j)]`` per gate as sympy expressions in V (:meth:`GateNetworks.to_sympy`)."""
        return [g.to_sympy() for g in self.gates(p)]
