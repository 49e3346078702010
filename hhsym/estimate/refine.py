"""Refinement: refit every rate constant of a distilled model against the traces.

Once each rate's form is chosen, its constants were fitted to samples of a
*network*, not to the data.  :func:`refine_constants` refits all of them at
once against the original recordings with the estimator's loss
(:class:`~hhsym.estimate.losses.shooting_loss.ShootingLoss`: charge balance with gates
driven by the measured V plus multiple shooting), by the estimator's own
Levenberg–Marquardt (:func:`hhsym.estimate.optimise.lm.levenberg_marquardt`)
with exact Jacobians (forward sensitivities of the rates' node tables).

A trust band (``trust``) optionally keeps every refined rate close to the
learned network on the sampled range: a penalty, zero inside the band, grows
steeply outside it (see :func:`hhsym.distill.distill` for why: with noisy V
the loss's minimum is biased).

Form candidates (constant, exponential, sigmoid, linoid and sums of two) are
refitted in their public parametrisation (A in 1/ms, B and k in mV, c in
1/ms), so refined constants stay comparable with the literature's; open-form
expressions (Operon, PySR) have each of their floating-point constants freed.
"""

from __future__ import annotations

import inspect
import math
import re
import time

import numpy as np
import sympy
from sympy.core.parameters import distribute

from hhsym.estimate.rates.closed_forms import round_sig
from hhsym.estimate.rates.closed_forms import FAMILIES
from hhsym.estimate.losses.shooting_loss import ShootingLoss
from hhsym.errors import SimulationError
from hhsym.symbolic import V

__all__ = ["RateParametrisation", "network_loss", "parametrise", "refine_constants"]

_SUM = re.compile(r"^sum\((\w+),(\w+)\)$")


def _over(num, kk, negate):
    """``(-1 if negate) * num / kk`` as an unevaluated product (the literature's look)."""
    factors = ([sympy.Integer(-1)] if negate else []) + [num, sympy.Pow(kk, -1, evaluate=False)]
    return sympy.Mul(*factors, evaluate=False)


def _template(family, sign, q):
    """Rate of ``family`` in internal symbols ``q``, written as :mod:`~hhsym.estimate.rates.closed_forms` writes it.

    Internal constants: ``A`` or ``s`` (1/ms, or 1/(ms mV) for the linoid's
    ``A/|k|``), ``b = -B`` (mV), ``kk = |k|`` (mV); the sign of the slope k
    is part of the structure (``sign``), so it cannot flip during the refit.
    """
    if family == "constant":
        return q["c"]
    if family == "exponential":
        return sympy.Mul(q["A"], sympy.exp(_over(V, q["kk"], sign < 0)), evaluate=False)
    d = sympy.Add(V, q["b"], evaluate=False)
    if family == "sigmoid":
        den = sympy.Add(1, sympy.exp(_over(d, q["kk"], sign > 0)), evaluate=False)
        return sympy.Mul(q["A"], sympy.Pow(den, -1, evaluate=False), evaluate=False)
    if sign > 0:  # linoid
        den = sympy.Add(1, sympy.Mul(-1, sympy.exp(_over(d, q["kk"], True)), evaluate=False), evaluate=False)
    else:
        den = sympy.Add(sympy.exp(_over(d, q["kk"], False)), -1, evaluate=False)
    return sympy.Mul(q["s"], d, sympy.Pow(den, -1, evaluate=False), evaluate=False)


_INTERNAL = {"constant": ("c",), "exponential": ("A", "kk"), "sigmoid": ("A", "b", "kk"), "linoid": ("s", "b", "kk")}


def _internal(family, pub):
    """Internal constants of a family from its public ones (c; A, k; A, B, k)."""
    if family == "constant":
        return [pub["c"]]
    kk = abs(pub["k"])
    if family == "exponential":
        return [pub["A"], kk]
    return [pub["A"] if family == "sigmoid" else pub["A"] / kk, -pub["B"], kk]


def _public(family, sign, vals):
    """Public constants (c; A, k; A, B, k) from internal ones."""
    if family == "constant":
        return {"c": vals[0]}
    if family == "exponential":
        return {"A": vals[0], "k": sign * vals[1]}
    A = vals[0] if family == "sigmoid" else vals[0] * vals[2]
    return {"A": A, "B": -vals[1], "k": sign * vals[2]}


class RateParametrisation:
    """One chosen expression with its constants as free symbols.

    Attributes
    ----------
    name : str
        Rate name (``"alpha_m"``).
    form : str
        Candidate form (family, ``sum(a,b)`` or an open form).
    expr : sympy.Expr
        The rate with symbols ``<name>__<constant>`` in place of its numbers.
    names : list of str
        Symbol names, in order.
    values : ndarray
        Their values, rounded to six significant digits, in the chosen candidate.
    """

    def __init__(self, name, form, expr, names, values, public):
        self.name, self.form, self.expr = name, form, expr
        self.names = list(names)
        self.values = self.round(values)
        self._public = public
        self._symbols = [sympy.Symbol(n, real=True) for n in self.names]

    @staticmethod
    def round(values):
        """Constants rounded to six significant digits (as written in the expressions)."""
        return np.array([round_sig(v) for v in np.asarray(values, dtype=float)])

    def build(self, values):
        """(numeric sympy expression, public constants) for ``values`` (rounded first).

        The expression is :attr:`expr` with the rounded numbers substituted, so
        the model evaluates exactly what the parametric model evaluates there.
        """
        vals = self.round(values)
        mapping = {s: sympy.Float(v) for s, v in zip(self._symbols, vals)}
        return _replace(self.expr, mapping), {k: round_sig(v) for k, v in self._public(vals).items()}


def parametrise(name, candidate):
    """Free the constants of a chosen :class:`~hhsym.distill.base.Candidate`.

    Family forms and sums of two are rewritten from their public constants
    (``candidate.params``) in the families' own layout; any other expression
    has each distinct floating-point number freed (equal numbers stay tied).

    Parameters
    ----------
    name : str
        Rate name; prefixes the symbols (``alpha_m__kk``).
    candidate : Candidate

    Returns
    -------
    RateParametrisation
    """
    form, pub = candidate.form, dict(candidate.params)
    m = _SUM.match(form)
    families = [form] if form in FAMILIES else ([m.group(1), m.group(2)] if m else None)
    if families and all(f in FAMILIES for f in families):
        sfx = [""] if len(families) == 1 else ["1", "2"]
        if all(p + x in pub for f, x in zip(families, sfx) for p in FAMILIES[f].names):
            terms, names, values, layout = [], [], [], []
            for f, x in zip(families, sfx):
                own = {p: pub[p + x] for p in FAMILIES[f].names}
                sign = -1 if own.get("k", 1.0) < 0 else 1
                q = {p: sympy.Symbol(f"{name}__{p}{x}", real=True) for p in _INTERNAL[f]}
                terms.append(_template(f, sign, q))
                names += [f"{name}__{p}{x}" for p in _INTERNAL[f]]
                values += _internal(f, own)
                layout.append((f, x, sign, len(_INTERNAL[f])))

            def public(vals):
                out, i = {}, 0
                for f, x, sign, n in layout:
                    out.update({k + x: v for k, v in _public(f, sign, vals[i:i + n]).items()})
                    i += n
                return out

            expr = terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)
            return RateParametrisation(name, form, expr, names, values, public)
    # open form: every distinct Float is a constant
    floats = sorted({a for a in sympy.preorder_traversal(candidate.expr) if isinstance(a, sympy.Float)},
                    key=sympy.default_sort_key)
    names = [f"{name}__c{i}" for i in range(len(floats))]
    expr = _replace(candidate.expr, {f: sympy.Symbol(n, real=True) for f, n in zip(floats, names)})
    return RateParametrisation(name, form, expr, names, [float(f) for f in floats],
                              lambda vals: {f"c{i}": v for i, v in enumerate(vals)})


def _replace(expr, mapping):
    """Substitute atoms without re-evaluating the tree (keeps ``-(V + 40.0)/10.0`` as written)."""
    if expr in mapping:
        return mapping[expr]
    if not expr.args:
        return expr
    args = [_replace(a, mapping) for a in expr.args]
    with distribute(False):
        if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Pow)):
            return expr.func(*args, evaluate=False)
        return expr.func(*args)


def network_loss(estimator, data, options):
    """The estimator's own final-stage cost (mV², without ridge) of its networks, or None.

    Evaluated by :class:`hhsym.estimate.losses.charge_balance.ShootingProblem` on the fitted
    networks when the estimator holds them (``gates_``: per gate a
    :class:`~hhsym.estimate.rates.network.GateNetworks` with ``xnet``/``tnet``);
    otherwise the same loss (:class:`ShootingLoss`) on ``estimator.model_`` when
    that exists (one compilation of the network model); else ``None``.
    """
    try:
        prob, theta = _estimator_problem(estimator, data, options)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        prob = None  # an estimator of another make: fall through
    if prob is not None:
        r = prob.evaluate(theta, False, 2)
        return None if r is None else 0.5 * float(r @ r)
    learned = getattr(estimator, "model_", None)
    if learned is not None:
        try:
            return ShootingLoss(learned, data, **options).cost()
        except SimulationError:
            return None
    return None


def _estimator_problem(estimator, data, options):
    """(ShootingProblem, theta) of a fitted RateEstimator, or (None, None)."""
    from hhsym.estimate.losses.charge_balance import ShootingProblem
    from hhsym.estimate.rates.network_rates import NetworkRates

    accepted = set(inspect.signature(ShootingProblem).parameters) - {"rates", "model", "data"}
    kwargs = {k: v for k, v in options.items() if k in accepted}
    gate_names = [g.name for g in estimator.model.gates]
    gates = getattr(estimator, "gates_", None)
    if not gates:
        return None, None
    rates, theta = NetworkRates.from_gates([gates[g] for g in gate_names])  # logit x_inf, log(tau - tau_min)
    template = getattr(estimator, "template_", estimator.model)  # with the fitted scalars
    return ShootingProblem(rates, template, data, **kwargs), theta


def refine_constants(template, params, data, options, max_iter=30, time_limit=None, verbose=0,
                     anchor=None, grid=None, trust=None):
    """Refit all constants of the closed-form rates against recordings.

    One loss (:class:`~hhsym.estimate.losses.shooting_loss.ShootingLoss` of
    the parametric model, every constant a model parameter) serves the
    initial loss, every Levenberg–Marquardt iteration (residuals and exact
    Jacobian) and the loss at the refined constants rounded to six
    significant digits, i.e. at exactly the numbers the distilled
    expressions show.

    Parameters
    ----------
    template : ConductanceModel
        Known structure (C_m µF/cm², g mS/cm², E mV, gate powers).
    params : dict
        Rate name -> :class:`RateParametrisation` (every rate of ``template``).
    data : list of (dt, V, I)
        Recordings: step (ms), V (mV), I (µA/cm²).
    options : dict
        Loss windows (``window``, ``burn_in``, ``shooting_window``,
        ``n_shooting``), as the estimator's.
    max_iter : int
        Maximum accepted Levenberg–Marquardt steps (0: only the losses).
    time_limit : float, optional
        Soft wall-time budget (s).
    verbose : int
        Progress lines when > 0.
    anchor : dict, optional
        Rate name -> the learned rates (1/ms) on ``grid`` (mV).
    grid : ndarray, optional
        Voltages (mV) of ``anchor``.
    trust : float, optional
        Trust band: a penalty keeps every refined rate within a relative
        distance ``max(trust, d0)`` of ``anchor`` on ``grid`` (in log rate),
        ``d0`` being the unrefined expression's own largest distance; zero
        inside the band, so the fit is free there.  ``None``: unconstrained.

    Returns
    -------
    dict
        ``values`` (rate name -> refined, rounded constants),
        ``loss_initial`` and ``loss_refined`` (mV², at the rounded
        constants; ``inf`` where the model diverges on the data),
        ``problem`` (why the refit could not run, or None), ``iterations``, ``history``, ``seconds`` and
        ``parametric_model`` (the model with the refined constants as
        parameters).
    """
    from hhsym.estimate.optimise.lm import levenberg_marquardt

    t0 = time.perf_counter()
    names = [n for p in params.values() for n in p.names]
    p0 = np.concatenate([p.values for p in params.values()])
    model = template.with_rates({k: p.expr for k, p in params.items()}, params=dict(zip(names, p0)))
    loss = ShootingLoss(model, data, free=names, **options)
    scale = np.where(p0 != 0, np.abs(p0), 1.0)

    penalty = None
    if trust is not None and anchor is not None:
        log_net = {k: np.log(np.asarray(anchor[k], dtype=float)) for k in params}
        r0 = loss.rates(grid, p0)
        with np.errstate(all="ignore"):
            band = {k: max(math.log1p(trust), float(np.max(np.abs(np.log(r0[k]) - log_net[k])))) for k in params}
        try:
            weight = math.sqrt(200.0 * max(loss.cost(p0), 1e-12) / (len(params) * len(grid))) / trust
        except SimulationError:
            weight = 1.0

        def trust_band(p, jac):
            """Trust-band residuals (and their Jacobian): zero inside the band, linear in log rate outside."""
            R = loss.rates(grid, p, jac)
            parts, rows = [], []
            with np.errstate(all="ignore"):
                for k in params:
                    r, G = R[k] if jac else (R[k], None)
                    d = np.log(r) - log_net[k]
                    out = np.maximum(np.abs(d) - band[k], 0.0)
                    parts.append(weight * out)
                    if jac:
                        rows.append(np.where((out > 0)[:, None], weight * (np.sign(d) / r)[:, None] * G, 0.0))
            out = np.concatenate(parts)
            ok = np.isfinite(out)
            out = np.where(ok, out, 1e6)
            if not jac:
                return out
            Jp = np.concatenate(rows, axis=0)
            return out, np.where(ok[:, None] & np.isfinite(Jp), Jp, 0.0)

        penalty = trust_band

    def fun(z, jac):
        p = p0 + scale * z
        try:
            if jac:
                r, J = loss.evaluate(p, True)
                if penalty is not None:
                    rp, Jp = penalty(p, True)
                    r, J = np.concatenate([r, rp]), np.vstack([J, Jp])
                return r, J * scale[None, :]
            r = loss.evaluate(p, False)
            return r if penalty is None else np.concatenate([r, penalty(p, False)])
        except SimulationError:
            return (None, None) if jac else None

    history, problem = [], None
    z = np.zeros_like(p0)
    try:
        loss_initial = loss.cost(p0)
        if max_iter > 0:
            z, _ = levenberg_marquardt(fun, z, 0.0, np.zeros_like(p0), max_iter=max_iter, label="refine",
                                       mu0=1e-3, time_limit=time_limit, history=history, verbose=verbose)
    except (FloatingPointError, SimulationError) as exc:  # the distilled model fails on the data
        loss_initial, problem = np.inf, str(exc)
    values, refined, i = {}, [], 0
    for k, p in params.items():
        values[k] = p.round((p0 + scale * z)[i:i + len(p.names)])
        refined.append(values[k])
        i += len(p.names)
    refined = np.concatenate(refined)
    try:
        loss_refined = loss.cost(refined) if problem is None else np.inf
    except SimulationError:
        loss_refined = np.inf
    return {"values": values, "loss_initial": float(loss_initial), "loss_refined": float(loss_refined),
            "problem": problem,
            "iterations": max(len(history) - 1, 0), "history": history, "seconds": time.perf_counter() - t0,
            "parametric_model": model.with_params(**dict(zip(names, refined)))}
