"""Symbolic helpers shared by the model, code generation and export.

* :data:`V` is *the* membrane-voltage symbol (mV) of every rate expression.
* :func:`parse_expression` turns user text into sympy through the whitelist
  reader of :mod:`hhsym.expressions` (nothing is evaluated), with errors that
  show the offending text and where it breaks (in the spirit of brian2).
* :func:`removable_singularities` and :func:`safe_expression` make linoid rates
  such as ``0.01 (V+55) / (1 - exp(-(V+55)/10))`` evaluate to their exact limit
  at the 0/0 point (here V = -55 mV) instead of NaN, in every evaluator hhsym
  generates (numpy and numba alike).
"""

from __future__ import annotations

import functools
import keyword
import math
import re

import numpy as np
import sympy
from sympy.core.parameters import distribute

from hhsym import expressions
from hhsym.errors import ModelError

__all__ = ["V", "parse_expression", "sympify_exact", "removable_singularities", "safe_expression"]

#: Membrane potential symbol (mV) used by every rate expression.
V = sympy.Symbol("V", real=True)

#: Half-width (mV) of the window around a removable singularity inside which
#: the Taylor polynomial replaces the 0/0-prone formula.  At 1e-3 mV the
#: cubic polynomial's truncation error is below 1e-18 relative for slopes of
#: a few mV, while the direct formula just outside keeps ~1e-12 relative.
SINGULARITY_HALF_WIDTH = 1e-3

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a valid, non-keyword Python identifier, else raise.

    Parameters
    ----------
    name : str
        Candidate name (e.g. a gate ``"m"`` or a channel ``"Na"``).
    what : str
        What the name is for, used in the error message.

    Returns
    -------
    str
        ``name`` unchanged.
    """
    if not isinstance(name, str) or not _IDENT.match(name) or keyword.iskeyword(name):
        raise ModelError(
            f"invalid {what} name {name!r}: expected an identifier "
            "(letters, digits and '_', not starting with a digit, not a Python keyword)"
        )
    return name


def parse_expression(text, allowed=(), where: str = "expression") -> sympy.Expr:
    """Parse a rate expression given as text or sympy into a sympy expression in :data:`V`.

    Text goes through the whitelist reader :func:`hhsym.expressions.parse`
    (nothing is evaluated); sympy input is re-bound to hhsym's real symbols
    and checked the same way.

    Parameters
    ----------
    text : str or sympy.Expr or float
        The expression, e.g. ``"0.1*(V + 40)/(1 - exp(-(V + 40)/10))"`` (1/ms).
        ``^`` is accepted for powers.
    allowed : iterable of str
        Names of parameters (besides ``V``) that may appear.
    where : str
        What the expression defines (e.g. ``"alpha_m"``), for error messages.

    Returns
    -------
    sympy.Expr
        The expression; every ``V`` in it is :data:`V`, every parameter a real
        symbol of the same name.

    Raises
    ------
    ModelError
        On a syntax error (the message shows the text and a caret where it
        breaks), on names that are neither ``V`` nor an allowed parameter, on
        the imaginary unit or an infinite constant.
    """
    allowed = tuple(allowed)
    symbols = {name: sympy.Symbol(name, real=True) for name in allowed}
    symbols["V"] = V
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if not math.isfinite(text):
            raise ModelError(f"invalid {where}={text!r}: expected a finite number")
        return sympy.Float(text)
    if isinstance(text, str):
        return expressions.parse(text, symbols, where=where)
    if not isinstance(text, sympy.Basic):
        raise ModelError(
            f"invalid {where}={text!r:.80}: expected a string, a number or a sympy expression in V"
        )
    # Re-bind plain symbols to the real-valued ones hhsym uses.
    with distribute(False):
        expr = text.xreplace({s: symbols.get(s.name, s) for s in text.free_symbols})
    expressions.check_sympy(expr, where)
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in symbols)
    if unknown:
        accepted = ", ".join(["V", *sorted(allowed)])
        raise ModelError(
            f"{where} uses unknown name(s) {', '.join(unknown)} in {text}: "
            f"accepted names are {accepted} (declare new constants as model parameters)"
        )
    return expr


def sympify_exact(text: str, allowed=(), where: str = "expression") -> sympy.Expr:
    """Rebuild an expression from its ``sympy.srepr`` text, exactly and without evaluating it.

    Parameters
    ----------
    text : str
        Output of :func:`sympy.srepr`.
    allowed : iterable of str
        Parameter names (besides ``V``) that may appear.
    where : str
        What the expression defines, for error messages.

    Returns
    -------
    sympy.Expr
        An expression equal (``==``) to the one that was written.
    """
    return expressions.parse_srepr(text, ("V", *allowed), where=where)


def _vanishes(numerator, root):
    """Whether ``numerator`` is zero at ``V = root`` (to float round-off when the root is numeric).

    With parameters, symbolically; where sympy's ``simplify`` fails on the expression (it can raise
    on its own NaN comparisons), numerically at three random positive values of the parameters.
    """
    root = sympy.sympify(root)
    at_root = numerator.subs(V, root)
    params = sorted((numerator.free_symbols - {V}) | root.free_symbols, key=str)
    if not params:
        return _vanishes_at(numerator, root)
    try:
        return sympy.simplify(at_root) == 0
    except (TypeError, ValueError):
        rng = np.random.default_rng(0)
        for _ in range(3):
            values = dict(zip(params, rng.uniform(0.5, 2.0, len(params))))
            if not _vanishes_at(numerator.subs(values), root.subs(values)):
                return False
        return True


def _vanishes_at(numerator, root):
    """Numeric :func:`_vanishes`: ``|N(root)|`` below 1e-9 of ``|N(root ± 1)|`` (False where not finite)."""
    try:
        scale = abs(complex(sympy.N(numerator.subs(V, root + 1)))) + \
            abs(complex(sympy.N(numerator.subs(V, root - 1))))
        value = abs(complex(sympy.N(numerator.subs(V, root))))
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(value) and value <= 1e-9 * max(scale, 1e-300))


def _is_zero(value):
    """Whether a Taylor coefficient is zero (exactly, or to round-off when numeric)."""
    if value.free_symbols:
        return sympy.simplify(value) == 0
    return value == 0 or abs(complex(sympy.N(value))) < 1e-300


def _taylor(expr, root, numerator=None, denominator=None, order=3):
    r"""Taylor polynomial of degree ``order`` of ``expr`` about ``V = root`` (may raise NotImplementedError).

    At a simple zero of both the numerator N and the denominator D (the
    linoid case) the polynomial is the quotient of their Taylor series,
    :math:`(n_1 + n_2 u + \dots)/(d_1 + d_2 u + \dots)` with
    :math:`u = V - V_0` and :math:`n_k = N^{(k)}(V_0)/k!`, divided term by
    term: derivatives and substitutions only, about a hundred times faster
    than :func:`sympy.series` (which took ~1.8 s per linoid rate).  Other
    cases (a double zero of D) go to :func:`sympy.series`.
    """
    if numerator is None or denominator is None:
        numerator, denominator = sympy.fraction(sympy.together(expr))
    n, d = [], []
    dn, dd = numerator, denominator
    fact = sympy.Integer(1)
    for k in range(1, order + 2):
        dn, dd = sympy.diff(dn, V), sympy.diff(dd, V)
        fact *= k
        n.append(dn.subs(V, root) / fact)
        d.append(dd.subs(V, root) / fact)
    if _is_zero(d[0]):
        return sympy.expand(sympy.series(expr, V, root, order + 1).removeO())
    c = []
    for j in range(order + 1):
        c.append((n[j] - sum(d[i] * c[j - i] for i in range(1, j + 1))) / d[0])
    u = V - root
    return sympy.expand(sum(cj * u**j for j, cj in enumerate(c)))


@functools.lru_cache(maxsize=512)
def removable_singularities(expr: sympy.Expr) -> tuple:
    """Find the removable (0/0) singularities of ``expr`` in :data:`V`.

    Parameters
    ----------
    expr : sympy.Expr
        A rate expression in ``V`` (mV), possibly with parameter symbols.

    Returns
    -------
    tuple of (sympy.Expr, sympy.Expr)
        Pairs ``(V0, poly)``: the singular voltage (a number or an expression
        in parameters) and the cubic Taylor polynomial of ``expr`` about it,
        whose value at ``V0`` is the exact limit.
    """
    numerator, denominator = sympy.fraction(sympy.together(expr))
    if V not in denominator.free_symbols:
        return ()
    try:
        roots = sympy.solveset(denominator, V, domain=sympy.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        return ()
    if not isinstance(roots, sympy.FiniteSet):
        return ()
    found = []
    for root in roots:
        if not _vanishes(numerator, root):
            continue  # a pole, not removable: leave it to the user
        try:
            poly = _taylor(expr, root, numerator, denominator)
        except (NotImplementedError, ValueError, TypeError, ZeroDivisionError):
            # sympy cannot expand this one: interpolate linearly between two points just
            # outside the window (error ~ f'' h^2 / 2, about 1e-7 relative for mV-scale slopes)
            h = 2 * SINGULARITY_HALF_WIDTH
            left, right = expr.subs(V, root - h), expr.subs(V, root + h)
            poly = left + (right - left) * (V - root + h) / (2 * h)
        found.append((root, poly))
    return tuple(found)


@functools.lru_cache(maxsize=512)
def safe_expression(expr: sympy.Expr) -> sympy.Expr:
    """Return ``expr`` guarded so that its removable singularities evaluate to their limits.

    Near each 0/0 point ``V0`` (within :data:`SINGULARITY_HALF_WIDTH` mV) the
    Taylor polynomial is used; elsewhere the original formula.  The result is
    a :class:`sympy.Piecewise` that every code printer (numpy, numba source)
    understands, so the numeric value at ``V0`` is the exact limit.

    Parameters
    ----------
    expr : sympy.Expr
        Rate expression in ``V`` (mV).

    Returns
    -------
    sympy.Expr
        ``expr`` itself when it has no removable singularity.
    """
    pieces = [
        (poly, sympy.Abs(V - root) < SINGULARITY_HALF_WIDTH)
        for root, poly in removable_singularities(expr)
    ]
    if not pieces:
        return expr
    return sympy.Piecewise(*pieces, (expr, True))
