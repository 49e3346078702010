"""Helpers shared by the exporters: numeric rates and their printers (files: :mod:`hhsym.export.files`).

Every exporter works on the *numeric* rates of a model: the values of its rate
parameters (:attr:`hhsym.ConductanceModel.rate_params`) are substituted, so the
exported code holds the numbers the model was simulated with.  Each rate comes
with the removable (0/0) singularities that :func:`hhsym.symbolic.removable_singularities`
finds; the exporters evaluate the Taylor polynomial of
:func:`hhsym.symbolic.safe_expression` within :data:`WIDTH` mV of each, as
hhsym's own kernels do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy

from hhsym.errors import ModelError, UnsupportedModelError
from hhsym.model import check_model
from hhsym.symbolic import SINGULARITY_HALF_WIDTH, V, removable_singularities

__all__ = ["WIDTH", "Dialect", "RateCode", "check_exportable", "numeric_rates", "render",
           "fmt", "poly_text", "number_text", "AREA_UM2", "NMODL", "PYTHON", "BRIAN2", "LEMS"]

#: Half-width (mV) of the window around a removable singularity where the Taylor polynomial is used.
WIDTH = SINGULARITY_HALF_WIDTH

#: Membrane area (µm²) of the one-compartment cells the exported runners build:
#: 100 µm² = 1e-6 cm², so 1 µA/cm² is 1 pA (1e-3 nA) on that cell.
AREA_UM2 = 100.0

_FUNCTIONS = {"exp", "log", "tanh", "sinh", "cosh", "Abs"}


@dataclass(frozen=True)
class Dialect:
    """How a target language writes arithmetic.

    Parameters
    ----------
    power : str
        Power operator (``"^"`` or ``"**"``).
    functions : dict
        sympy function name -> name in the target (``exp``, ``log``, ``Abs``, ...).
    negative : str
        How ``-x`` is written, with ``{}`` for ``x`` (LEMS has no unary minus: ``"(0 - {})"``).
    relations : tuple of str
        How ``<``, ``<=``, ``>``, ``>=`` are written.
    logic : tuple of str
        How ``and`` and ``or`` are written.
    inline_piecewise : bool
        Write a ``Piecewise`` inside an expression as a sum of ``int(condition) * value``
        (Brian2); otherwise it must be hoisted out first (:func:`hhsym.export.pieces.hoist`).
    """

    power: str
    functions: dict
    negative: str = "(-{})"
    relations: tuple = ("<", "<=", ">", ">=")
    logic: tuple = ("and", "or")
    inline_piecewise: bool = False


NMODL = Dialect("^", {"exp": "exp", "log": "log", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh",
                      "Abs": "fabs", "sqrt": "sqrt"}, logic=("&&", "||"))
PYTHON = Dialect("**", {"exp": "math.exp", "log": "math.log", "tanh": "math.tanh", "sinh": "math.sinh",
                        "cosh": "math.cosh", "Abs": "abs", "sqrt": "math.sqrt"})
BRIAN2 = Dialect("**", {"exp": "exp", "log": "log", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh",
                        "Abs": "abs", "sqrt": "sqrt"}, inline_piecewise=True)
LEMS = Dialect("^", {"exp": "exp", "log": "ln", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh",
                     "Abs": "abs", "sqrt": "sqrt"}, negative="(0 - {})",
               relations=(".lt.", ".leq.", ".gt.", ".geq."), logic=(".and.", ".or."))
_RELATIONS = {"<": 0, "<=": 1, ">": 2, ">=": 3}


def fmt(x):
    """Shortest round-tripping positional text of a float (no exponent).

    Parameters
    ----------
    x : float

    Returns
    -------
    str
    """
    x = float(x)
    if not math.isfinite(x):
        raise ModelError(f"cannot export the non-finite constant {x!r}")
    text = np.format_float_positional(x, unique=True, trim="-")
    return "0" if text in ("-0", "0") else text


def render(expr, dialect, var="V", names=()):
    """Print a sympy expression in ``V`` (mV) in a target's syntax.

    Parameters
    ----------
    expr : sympy.Expr
        Expression whose only free symbol is :data:`hhsym.V` (numbers elsewhere).
    dialect : Dialect
        The target syntax.
    var : str
        Text that stands for ``V`` (e.g. ``"Vm"``).
    names : iterable of str
        Other symbols that may appear, printed as their names (hoisted locals).

    Returns
    -------
    str
    """
    names = set(names)

    def neg(text):
        return dialect.negative.format(text)

    def number(x):
        x = float(x)
        return neg(fmt(-x)) if x < 0 else fmt(x)

    def go(e):
        if not e.free_symbols:
            try:
                return number(complex(sympy.N(e, 17)).real if e.is_real is not False else float("nan"))
            except (TypeError, ValueError):
                raise ModelError(f"cannot export the constant {e}") from None
        if isinstance(e, sympy.Symbol):
            if e == V or e.name == "V":
                return var
            if e.name in names:
                return e.name
            raise ModelError(f"cannot export the free name {e.name!r} (only V may remain)")
        if isinstance(e, sympy.Add):
            terms = list(e.as_ordered_terms())
            out = go(terms[0])
            for term in terms[1:]:
                if term.could_extract_minus_sign():
                    out += " - " + go(-term)
                else:
                    out += " + " + go(term)
            return f"({out})"
        if isinstance(e, sympy.Mul):
            if e.could_extract_minus_sign():
                return neg(go(-e))
            num, den = [], []
            for factor in e.as_ordered_factors():
                base, exponent = factor.as_base_exp()
                if exponent.is_number and exponent.is_negative:
                    den.append(base if exponent == -1 else sympy.Pow(base, -exponent, evaluate=False))
                else:
                    num.append(factor)
            top = " * ".join(go(f) for f in num) if num else "1"
            if not den:
                return f"({top})"
            bottom = " * ".join(go(f) for f in den)
            return f"({top} / ({bottom}))"
        if isinstance(e, sympy.Pow):
            base, exponent = e.args
            if exponent == sympy.Rational(1, 2):
                return f"{dialect.functions['sqrt']}({go(base)})"
            if exponent.is_number and exponent.is_negative:
                return f"(1 / {go(sympy.Pow(base, -exponent, evaluate=False))})"
            if exponent == 1:
                return go(base)
            return f"({go(base)}{dialect.power}{go(exponent)})"
        if isinstance(e, sympy.core.relational.Relational) and e.rel_op in _RELATIONS:
            return f"({go(e.lhs)} {dialect.relations[_RELATIONS[e.rel_op]]} {go(e.rhs)})"
        if isinstance(e, (sympy.And, sympy.Or)):
            joiner = f" {dialect.logic[0 if isinstance(e, sympy.And) else 1]} "
            return "(" + joiner.join(go(a) for a in e.args) + ")"
        if isinstance(e, sympy.Piecewise) and dialect.inline_piecewise:
            from hhsym.export.pieces import exclusive

            parts = [go(value) if cond is sympy.true else f"int({go(cond)}) * {go(value)}"
                     for value, cond in exclusive(e.args)]
            return "(" + " + ".join(parts) + ")"
        if isinstance(e, sympy.Function) and type(e).__name__ in _FUNCTIONS:
            if len(e.args) != 1:
                raise ModelError(f"cannot export {e}: one argument expected")
            return f"{dialect.functions[type(e).__name__]}({go(e.args[0])})"
        raise ModelError(
            f"cannot export the rate term {e} ({type(e).__name__}): exporters accept +, -, *, /, "
            f"powers, exp, log, sqrt, tanh, sinh, cosh and abs"
        )

    return go(sympy.sympify(expr))


@dataclass(frozen=True)
class RateCode:
    """One rate, ready for printing.

    Attributes
    ----------
    name : str
        ``alpha_<gate>`` or ``beta_<gate>``.
    expr : sympy.Expr
        The rate (1/ms) in ``V`` (mV), rate parameters substituted.
    guards : tuple of (float, sympy.Expr)
        ``(V0, poly)``: within :data:`WIDTH` mV of ``V0`` (mV) use ``poly``, a
        polynomial in ``u = V - V0`` written with the symbol ``V`` for ``u``
        (print it with :func:`poly_text`).
    """

    name: str
    expr: object
    guards: tuple


def check_exportable(model, exporter, max_pools=0):
    """Raise :class:`~hhsym.errors.UnsupportedModelError` if ``model`` has states ``exporter`` cannot write.

    Brian2 and NeuroML write gates only; NMODL writes one calcium pool (as
    NEURON's ``cai``).  A model with more pools than the exporter supports is
    refused, never exported without them.

    Parameters
    ----------
    model : hhsym.ConductanceModel
    exporter : str
        The exporter's name for the message, e.g. ``"to_brian2"``.
    max_pools : int
        How many calcium pools (:class:`~hhsym.model.CalciumPool`) the exporter writes.

    Returns
    -------
    hhsym.ConductanceModel
        ``model``.
    """
    check_model(model)
    if len(model.pools) > max_pools:
        names = ", ".join(repr(p.name) for p in model.pools)
        supported = "V and gates" + (f" and at most {max_pools} calcium pool" if max_pools else "")
        raise UnsupportedModelError(
            f"{exporter} cannot export model {model.name!r}: its calcium pool state(s) {names} (non-gate "
            f"states with their own ODE) are not supported by this exporter yet. Supported: {supported}. "
            "The model's JSON (model.to_dict()) and LaTeX (model.latex()) include the pools; "
            "hhsym.simulate integrates them" + ("; to_nmodl exports one pool" if not max_pools else "")
        )
    return model


def numeric_rates(model, max_pools=0):
    """The rates of ``model`` with parameter values substituted, and their 0/0 points.

    Parameters
    ----------
    model : hhsym.ConductanceModel
    max_pools : int
        Calcium pools the caller writes (their names may stay in the rates as symbols).

    Returns
    -------
    dict
        ``alpha_x``/``beta_x`` -> :class:`RateCode`.

    Raises
    ------
    ModelError
        If a rate uses a construct the exporters cannot write (e.g. ``Min``,
        ``Piecewise``) or a singular point is not a real number.
    """
    check_exportable(model, "this exporter", max_pools)
    subs = {sympy.Symbol(k, real=True): sympy.Float(v) for k, v in model.rate_params.items()}
    pools = {sympy.Symbol(p.name, real=True) for p in model.pools}
    out = {}
    for name, expr in model.rates.items():
        numeric = sympy.sympify(expr).xreplace(subs)
        if numeric.free_symbols - {V} - pools:
            names = sorted(s.name for s in numeric.free_symbols - {V} - pools)
            raise ModelError(f"{name} uses name(s) {names} that are not parameters of the model")
        guards = []
        for root, poly in removable_singularities(numeric):
            try:
                root = float(root)
            except TypeError:
                raise ModelError(f"{name}: singular point {root} is not a real number") from None
            # the polynomial in u = V - V0 (printed with V standing for u): no cancellation near V0;
            # V0 is shown to 12 digits (-30, not -29.999999999999996), far inside the 1e-3 mV window
            guards.append((float(f"{root:.12g}"), sympy.expand(poly.xreplace({V: V + root}))))
        code = RateCode(name, numeric, tuple(guards))
        check_printable(numeric, [p.name for p in model.pools])  # ModelError on what exporters cannot write
        out[name] = code
    return out


def check_printable(expr, pools=()):
    """Raise ModelError unless every exporter can print ``expr`` (Piecewise hoisted).

    Parameters
    ----------
    expr : sympy.Expr
        A rate in ``V`` with numbers for its parameters.
    pools : sequence of str
        Calcium pool names that may appear (printed as themselves).
    """
    from hhsym.export.pieces import hoist

    body, local = hoist(expr)
    names = [name for name, _ in local] + list(pools)
    for _, pieces in local:
        for value, cond in pieces:
            render(value, PYTHON, names=names)
            if cond is not sympy.true:
                render(cond, PYTHON, names=names)
    render(body, PYTHON, names=names)


def poly_text(root, poly, dialect, var="V"):
    """Print a guard polynomial of :class:`RateCode` as a function of ``var`` (mV).

    Parameters
    ----------
    root : float
        The singular voltage V0 (mV).
    poly : sympy.Expr
        The polynomial in ``u = V - V0``, written with the symbol ``V`` for ``u``.
    dialect : Dialect
    var : str
        Text that stands for the voltage (mV).

    Returns
    -------
    str
    """
    shift = f"({var} - {fmt(root)})" if root >= 0 else f"({var} + {fmt(-root)})"
    return render(poly, dialect, var=shift)


def number_text(x):
    """A float as Python/NMODL source, parenthesised when negative.

    Parameters
    ----------
    x : float

    Returns
    -------
    str
        E.g. ``"(-40)"`` or ``"0.5"``.
    """
    return f"({fmt(x)})" if float(x) < 0 else fmt(x)
