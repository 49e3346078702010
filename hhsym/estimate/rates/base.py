r"""The one contract of a rate parametrisation, shared by every loss.

A *rate parametrisation* maps a flat parameter vector ``p`` to the two rates
:math:`\alpha_j(V), \beta_j(V)` (1/ms) of every gate ``j`` of a model, V in
mV.  It holds no recordings: a loss (:mod:`hhsym.estimate.losses`) takes a
parametrisation and the recordings, asks it for node tables on the voltage
nodes it needs (:meth:`GateParametrisation.tables`) and evaluates its
residuals and exact Jacobian from them.

(Not to be confused with :class:`hhsym.estimate.refine.RateParametrisation`, one
closed-form expression with its constants as sympy symbols.)

Implementations:

* :class:`~hhsym.estimate.rates.network_rates.NetworkRates` — two tanh
  networks per gate (logit x_inf, log(tau - tau_min)), the estimator's final
  description (numba kernel :func:`hhsym.estimate.losses.tables.node_tables`);
* :class:`~hhsym.estimate.rates.curves.GateFamily`,
  :class:`~hhsym.estimate.rates.curves.SplineFamily` — curves linear in
  their coefficients (polynomials, cubic B-splines);
* :class:`~hhsym.estimate.rates.form_pairs.FormFamily` — closed literature
  forms, one per rate.

Losses taking a parametrisation:
:class:`~hhsym.estimate.losses.charge_balance.ChargeBalance` (stage-1 charge
balance), :class:`~hhsym.estimate.losses.charge_balance.ShootingProblem`
(charge balance plus multiple shooting, networks only) and
:class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` (output error).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["GateParametrisation", "RatesAt"]


class GateParametrisation(ABC):
    r"""Abstract rate parametrisation: what it maps, its exact Jacobian, its parameters.

    Contract (units: V in mV, rates and :math:`\lambda` in 1/ms, tau in ms):

    * :attr:`n_gates` — gates described, in the model's gate order;
    * :attr:`n_per_gate` — parameters per gate; ``p`` is flat, gate ``j``'s
      parameters are ``p[j * n_per_gate:(j + 1) * n_per_gate]`` (internal
      parameters: what an optimiser moves, e.g. a slope as ``log |k|``);
      :attr:`n_params` ``= n_gates * n_per_gate``;
    * :meth:`rates` — ``(alpha, beta)`` at any potentials, each ``(n_gates, len(V))``;
    * :meth:`tables` — on given voltage nodes, :math:`x_\infty = \alpha/(\alpha + \beta)`,
      :math:`\lambda = \alpha + \beta` and their *exact* derivatives with
      respect to the gate's own parameters, in the layout of
      :func:`hhsym.estimate.losses.tables.node_tables` (what every loss consumes);
      where :meth:`rates` and :meth:`tables` differ it is only by the
      guards of the tables (clipping of extreme values, documented per class);
    * :meth:`penalty_rows` — rows ``D`` of a roughness penalty ``|D p|²``
      (none by default);
    * :meth:`public` — the public constants at ``p`` (e.g. a closed form's
      ``A``, ``B``, ``k``); raises :class:`NotImplementedError` where a
      parametrisation has none (networks, free curves);
    * :meth:`to_sympy` — the rates as sympy expressions in
      :data:`hhsym.symbolic.V`; raises :class:`NotImplementedError` where
      there is no closed expression (documented per class).

    Attributes
    ----------
    tau_min : float
        Time-constant floor (ms) the parametrisation guarantees (0 if none).
    """

    tau_min = 0.0

    @property
    @abstractmethod
    def n_gates(self):
        """int: number of gates."""

    @property
    @abstractmethod
    def n_per_gate(self):
        """int: parameters per gate."""

    @property
    def n_params(self):
        """int: length of the flat parameter vector (``n_gates * n_per_gate``)."""
        return self.n_gates * self.n_per_gate

    @property
    def ng(self):
        """int: alias of :attr:`n_gates`."""
        return self.n_gates

    @abstractmethod
    def rates(self, p, V):
        """Rates at potentials ``V`` (mV).

        Parameters
        ----------
        p : ndarray (n_params,)
        V : array_like

        Returns
        -------
        alpha, beta : ndarray (n_gates, len(V))
            1/ms.
        """

    def at(self, p, names):
        """The rates at parameters ``p`` by name, as :func:`hhsym.metrics.rate_errors` takes a fitted model.

        Parameters
        ----------
        p : ndarray (n_params,)
        names : sequence of str
            The gates' names, in the parametrisation's order.

        Returns
        -------
        RatesAt
            ``predict_rates(V)`` -> ``{"alpha_<gate>": ndarray, "beta_<gate>": ndarray, ...}`` (1/ms).
        """
        return RatesAt(self, np.asarray(p, dtype=float), list(names))

    @abstractmethod
    def tables(self, p, nodes, jac):
        """Node tables of every gate on the voltage ``nodes`` (mV).

        Parameters
        ----------
        p : ndarray (n_params,)
        nodes : ndarray (K,)
            Potentials (mV), e.g. a loss's :class:`hhsym.estimate.losses.tables.VoltageTable` nodes.
        jac : bool
            Also the derivatives.

        Returns
        -------
        x_inf, lam : ndarray (n_gates, K)
            Steady state and rate :math:`\\lambda = 1/\\tau` (1/ms), C-contiguous.
        dx, dlam : ndarray (n_gates, K, n_per_gate)
            Their exact derivatives with respect to the gate's own
            parameters; ``(n_gates, 0, n_per_gate)`` unless ``jac``.
        """

    def penalty_rows(self):
        """Rows ``D`` (m, n_params) of a roughness penalty ``|D p|²`` (none by default)."""
        return np.zeros((0, self.n_params))

    def curve_jacobian(self, p, V):
        r"""Each gate's curves :math:`z = \mathrm{logit}\,x_\infty` and :math:`\ell = \log\tau` at ``V``, with
        their exact derivatives with respect to the gate's own parameters (from :meth:`tables`).

        Parameters
        ----------
        p : ndarray (n_params,)
        V : ndarray (K,)
            Potentials (mV).

        Returns
        -------
        z, ell : ndarray (n_gates, K)
            logit x_inf and log tau (tau in ms).
        dz, dell : ndarray (n_gates, K, n_per_gate)
        """
        XI, LA, DX, DL = self.tables(p, np.ascontiguousarray(V, dtype=float), True)
        XI = np.clip(XI, 1e-300, 1.0 - 1e-16)
        q = XI * (1.0 - XI)
        return (np.log(XI) - np.log1p(-XI), -np.log(LA), DX / q[:, :, None], -DL / LA[:, :, None])

    def rate_jacobian(self, p, V):
        r"""Rates :math:`\alpha = x_\infty\lambda`, :math:`\beta = (1 - x_\infty)\lambda` (1/ms) at ``V`` (mV)
        and their exact derivatives with respect to each gate's own parameters (from :meth:`tables`).

        Returns
        -------
        alpha, beta : ndarray (n_gates, K)
        dalpha, dbeta : ndarray (n_gates, K, n_per_gate)
        """
        XI, LA, DX, DL = self.tables(p, np.ascontiguousarray(V, dtype=float), True)
        x, lam = XI[:, :, None], LA[:, :, None]
        return XI * LA, (1.0 - XI) * LA, DX * lam + x * DL, -DX * lam + (1.0 - x) * DL

    def roughness(self, p, V, jac=True):
        r"""Second differences of every gate's curves on the uniform potentials ``V``: a roughness penalty.

        Rows :math:`(c_{k-1} - 2 c_k + c_{k+1})` for :math:`c = \mathrm{logit}\,x_\infty` and
        :math:`c = \log\tau` of each gate, in units of the curves (the penalty is what a
        loss adds as ``weight * rows``); unlike :meth:`penalty_rows` it acts on the curves, not
        on the parameters, so it means the same for networks, splines and closed forms.

        Parameters
        ----------
        p : ndarray (n_params,)
        V : ndarray (K,)
            Uniformly spaced potentials (mV), e.g. 1–2 mV apart over the data's range.
        jac : bool
            Also the Jacobian.

        Returns
        -------
        r : ndarray (2 n_gates (K - 2),)
        J : ndarray (len(r), n_params), only if ``jac``
        """
        z, ell, dz, dell = self.curve_jacobian(p, V)
        K, npg = len(V), self.n_per_gate
        D = np.diff(np.eye(K), 2, axis=0)
        r = np.concatenate([D @ c[j] for j in range(self.n_gates) for c in (z, ell)])
        if not jac:
            return r
        J = np.zeros((r.size, self.n_params))
        row = 0
        for j in range(self.n_gates):
            for dc in (dz, dell):
                J[row:row + K - 2, j * npg:(j + 1) * npg] = D @ dc[j]
                row += K - 2
        return r, J

    def public(self, p):
        """Public constants at internal parameters ``p``; NotImplementedError if the parametrisation has none."""
        raise NotImplementedError(f"{type(self).__name__} has no public constants")

    def to_sympy(self, p):
        """``[(alpha_j, beta_j)]`` per gate as sympy expressions in V; NotImplementedError where none."""
        raise NotImplementedError(f"{type(self).__name__} has no sympy form")


class RatesAt:
    """A parametrisation's rates at fixed parameters, by name (:meth:`GateParametrisation.at`)."""

    def __init__(self, rates, p, names):
        if len(names) != rates.n_gates:
            raise ValueError(f"names: {len(names)} given for a parametrisation of {rates.n_gates} gates")
        self.rates, self.p, self.names = rates, p, names

    def predict_rates(self, V):
        """``{"alpha_<gate>": ndarray, "beta_<gate>": ndarray}`` (1/ms) at potentials ``V`` (mV)."""
        a, b = self.rates.rates(self.p, np.atleast_1d(np.asarray(V, dtype=float)))
        return {f"{kind}_{g}": r[j] for j, g in enumerate(self.names) for kind, r in (("alpha", a), ("beta", b))}
