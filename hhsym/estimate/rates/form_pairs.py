r"""Closed-form rates as a rate parametrisation: charge balance and output error with exact Jacobians.

:class:`FormFamily` puts one literature form per rate (a family of
:mod:`hhsym.estimate.rates.closed_forms` or a sum of two, as
:class:`~hhsym.estimate.rates.formfit.FormFit` holds them) into the table-family
contract of :class:`hhsym.estimate.rates.base.GateParametrisation`: the gate's
:math:`x_\infty = \alpha/(\alpha + \beta)` and :math:`\lambda = \alpha + \beta`
on the voltage nodes, with their exact derivatives with respect to the
constants.  :class:`~hhsym.estimate.losses.charge_balance.ChargeBalance` fits them by the
stage-1 charge balance; :class:`~hhsym.estimate.losses.trajectory.TrajectoryProblem` fits
the constants by output error (the model runs freely and is compared with the
recorded V), which is the maximum-likelihood loss under measurement noise on
V (:mod:`hhsym.estimate.losses.output_error`).

Parameters are each term's internal ones (:class:`~hhsym.estimate.rates.closed_forms.Family`),
except that a slope ``k`` of a sigmoid or linoid is optimised as
``log |k|`` with its sign fixed (the sign is part of the form).  Gates with
fewer constants than the widest gate are padded with parameters that do
nothing; :attr:`FormFamily.used` lists the others.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.rates.formfit import FormFit
from hhsym.estimate.rates.base import GateParametrisation

__all__ = ["FormFamily"]

#: Rates are clipped to [RATE_FLOOR, RATE_CEIL] (1/ms) on the nodes (an overflowing form cannot poison a table).
RATE_FLOOR, RATE_CEIL = 1e-12, 1e6


class FormFamily(GateParametrisation):
    """Closed-form rates (one :class:`FormFit` per rate) as a rate parametrisation.

    Parameters
    ----------
    gates : sequence of str or ConductanceModel
        Gate names in the model's order (or the template model, whose gates are taken).
    fits : dict
        ``"alpha_<gate>"`` / ``"beta_<gate>"`` -> :class:`FormFit` (forms, and the
        starting constants that fix each slope's sign).

    Notes
    -----
    The tables clip every rate to [:data:`RATE_FLOOR`, :data:`RATE_CEIL`] (1/ms)
    (derivative 0 where clipped or non-finite); :meth:`rates` does not clip.
    :meth:`public` gives each rate's public constants (:meth:`FormFit.params`),
    :meth:`to_sympy` its expression (:meth:`FormFit.expr`, six significant digits).
    """

    def __init__(self, gates, fits):
        gates = getattr(gates, "gates", gates)
        self.gate_names = [getattr(g, "name", g) for g in gates]
        self.rate_names = [f"{k}_{g}" for g in self.gate_names for k in ("alpha", "beta")]
        self.families = {k: fits[k].families for k in self.rate_names}
        self._slices, self._slopes, self._signs = {}, {}, {}
        width = 0
        for g in self.gate_names:
            off = 0
            for kind in ("alpha", "beta"):
                k = f"{kind}_{g}"
                fams = self.families[k]
                n = sum(f.n_params for f in fams)
                self._slices[k] = slice(off, off + n)
                slopes, i = [], 0
                for f in fams:
                    if f.slope_index is not None:
                        slopes.append(i + f.slope_index)
                    i += f.n_params
                self._slopes[k] = np.array(slopes, dtype=np.int64)
                theta = np.asarray(fits[k].theta, dtype=float)
                self._signs[k] = np.where(theta[self._slopes[k]] < 0, -1.0, 1.0)
                off += n
            width = max(width, off)
        self._width = width

    # ------------------------------------------------------------------ parameters
    @property
    def n_gates(self):
        """int: number of gates."""
        return len(self.gate_names)

    @property
    def n_per_gate(self):
        """int: parameters per gate (the widest gate's; narrower gates are padded)."""
        return self._width

    @property
    def used(self):
        """ndarray of int: indices of the parameters that are constants of some rate (not padding)."""
        out = []
        for j, g in enumerate(self.gate_names):
            for kind in ("alpha", "beta"):
                s = self._slices[f"{kind}_{g}"]
                out.extend(range(j * self._width + s.start, j * self._width + s.stop))
        return np.array(out, dtype=np.int64)

    @property
    def n_constants(self):
        """int: number of rate constants (the model's degrees of freedom)."""
        return int(self.used.size)

    def pack(self, fits):
        """Parameters of the rates ``fits`` (dict of :class:`FormFit`, same forms as this family)."""
        P = np.zeros((len(self.gate_names), self._width))
        for j, g in enumerate(self.gate_names):
            for kind in ("alpha", "beta"):
                k = f"{kind}_{g}"
                theta = np.array(fits[k].theta, dtype=float)
                theta[self._slopes[k]] = np.log(np.abs(theta[self._slopes[k]]))
                P[j, self._slices[k]] = theta
        return P.ravel()

    def _theta(self, P, j, k):
        theta = P[j, self._slices[k]].copy()
        theta[self._slopes[k]] = self._signs[k] * np.exp(np.clip(theta[self._slopes[k]], -50.0, 50.0))
        return theta

    def fits(self, p):
        """Rate name -> :class:`FormFit` at parameters ``p``."""
        P = np.asarray(p, dtype=float).reshape(len(self.gate_names), self._width)
        return {k: FormFit(self.families[k], self._theta(P, j, k))
                for j, g in enumerate(self.gate_names) for k in (f"alpha_{g}", f"beta_{g}")}

    def public(self, p):
        """Rate name -> {public constant: value} at parameters ``p`` (:meth:`FormFit.params`)."""
        return {k: f.params() for k, f in self.fits(p).items()}

    def to_sympy(self, p):
        """``[(alpha_j, beta_j)]`` per gate as sympy expressions in V (constants to six significant digits)."""
        fits = self.fits(p)
        return [(fits[f"alpha_{g}"].expr(), fits[f"beta_{g}"].expr()) for g in self.gate_names]

    # ------------------------------------------------------------------ rates and tables
    def _rate(self, P, j, k, V, jac):
        theta = self._theta(P, j, k)
        fit = FormFit(self.families[k], theta)
        with np.errstate(all="ignore"):
            r = fit.evaluate(V)
            if not jac:
                return r, None
            G = np.concatenate([f.gradient(t, V) for f, t in zip(fit.families, fit.split())], axis=1)
        G[:, self._slopes[k]] *= theta[self._slopes[k]]  # d/dlog|k| = k d/dk
        return r, G

    def rates(self, p, V):
        """alpha, beta (1/ms) at ``V`` (mV), each (n_gates, len(V))."""
        V = np.atleast_1d(np.asarray(V, dtype=float))
        P = np.asarray(p, dtype=float).reshape(len(self.gate_names), self._width)
        a = np.array([self._rate(P, j, f"alpha_{g}", V, False)[0] for j, g in enumerate(self.gate_names)])
        b = np.array([self._rate(P, j, f"beta_{g}", V, False)[0] for j, g in enumerate(self.gate_names)])
        return a, b

    def tables(self, p, nodes, jac):
        """Node tables (:meth:`~hhsym.estimate.rates.base.GateParametrisation.tables`); rates clipped to
        [1e-12, 1e6] 1/ms."""
        V = np.asarray(nodes, dtype=float)
        P = np.asarray(p, dtype=float).reshape(len(self.gate_names), self._width)
        ng, K = len(self.gate_names), V.size
        xinf, lam = np.empty((ng, K)), np.empty((ng, K))
        DX = np.zeros((ng, K if jac else 0, self._width))
        DL = np.zeros((ng, K if jac else 0, self._width))
        for j, g in enumerate(self.gate_names):
            ka, kb = f"alpha_{g}", f"beta_{g}"
            a, Ga = self._rate(P, j, ka, V, jac)
            b, Gb = self._rate(P, j, kb, V, jac)
            ina = np.isfinite(a) & (a >= RATE_FLOOR) & (a <= RATE_CEIL)
            inb = np.isfinite(b) & (b >= RATE_FLOOR) & (b <= RATE_CEIL)
            a = np.clip(np.nan_to_num(a, nan=RATE_CEIL, posinf=RATE_CEIL), RATE_FLOOR, RATE_CEIL)
            b = np.clip(np.nan_to_num(b, nan=RATE_CEIL, posinf=RATE_CEIL), RATE_FLOOR, RATE_CEIL)
            s = a + b
            xinf[j], lam[j] = a / s, s
            if jac:
                Ga = np.where(ina[:, None] & np.isfinite(Ga), Ga, 0.0)
                Gb = np.where(inb[:, None] & np.isfinite(Gb), Gb, 0.0)
                sa, sb = self._slices[ka], self._slices[kb]
                DX[j, :, sa] = (b / (s * s))[:, None] * Ga
                DX[j, :, sb] = -(a / (s * s))[:, None] * Gb
                DL[j, :, sa] = Ga
                DL[j, :, sb] = Gb
        return np.ascontiguousarray(xinf), np.ascontiguousarray(lam), DX, DL
