"""Read the expression strings of symbolic-regression tools into sympy.

The strings come from other programs (Operon's infix formatter, PySR's hall
of fame), so they go through the whitelist reader of :mod:`hhsym.expressions`:
only numbers, the operators ``+ - * / ^ ( ) ,``, the variable names given and
a short list of function names are accepted. Nothing is ever evaluated.

Also here: :func:`refine_constants`, which re-fits the floating-point
constants of an open-form expression to relative residuals.
"""

from __future__ import annotations

import re

import numpy as np
import sympy
from scipy.optimize import least_squares

from hhsym import expressions
from hhsym.distill.base import V, evaluate_expr, relative_errors, round_sig
from hhsym.errors import ModelError

__all__ = ["parse_expression", "refine_constants", "round_constants", "FUNCTIONS"]

#: Function names accepted in expression strings, with their sympy meaning
#: (PySR's names for its safe operators included): name -> (callable, arities).
FUNCTIONS = {
    **expressions.FUNCTIONS,
    "square": (lambda x: x**2, (1,)),
    "cube": (lambda x: x**3, (1,)),
    "neg": (lambda x: -x, (1,)),
    "inv": (lambda x: 1 / x, (1,)),
}

_JULIA_FLOAT = re.compile(r"(?<![A-Za-z_0-9.])((?:\d+\.?\d*|\.\d+))[fF]([+-]?\d+)")


def parse_expression(text, variables=("V", "x0", "X1")):
    """Parse an infix expression string into a sympy expression in :data:`V`.

    The strings come from other programs; they go through the whitelist
    reader :func:`hhsym.expressions.parse` and are never evaluated.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"(4.0 * exp(x0 * -0.0555))"``. Julia-style
        floats (``1.5f-3``) are accepted.
    variables : sequence of str, optional
        Names that all stand for the voltage (mV); the defaults cover hhsym,
        PySR (``x0``) and Operon (``X1``).

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ModelError
        If the string holds anything but numbers, operators, the given
        variable names and the names in :data:`FUNCTIONS`, or is malformed.
    """
    if not isinstance(text, str):
        raise ModelError(f"invalid expression {text!r:.80}: expected a str")
    text = _JULIA_FLOAT.sub(r"\1e\2", text)
    return expressions.parse(text, {name: V for name in variables}, where="expression", functions=FUNCTIONS,
                             keep_products=False)


def round_constants(expr, digits=6):
    """``expr`` with every float constant rounded to ``digits`` significant digits."""
    floats = {f for f in sympy.preorder_traversal(expr) if isinstance(f, sympy.Float)}
    return expr.xreplace({f: sympy.Float(round_sig(float(f), digits)) for f in floats})


def refine_constants(expr, V_values, r, max_nfev=50):
    """Re-fit the float constants of ``expr`` to relative residuals.

    Minimises :math:`\\sum_k ((\\hat r(V_k) - r_k) / r_k)^2` over the float
    constants of ``expr`` (Levenberg-Marquardt from their current values).

    Parameters
    ----------
    expr : sympy.Expr
        Expression in :data:`V`.
    V_values, r : ndarray
        Voltages (mV) and rates (1/ms).
    max_nfev : int, optional
        Evaluation budget per constant.

    Returns
    -------
    sympy.Expr
        The expression with refitted constants, or ``expr`` unchanged if the
        refit fails or does not lower the error.
    """
    floats = sorted(
        {f for f in sympy.preorder_traversal(expr) if isinstance(f, sympy.Float)}, key=str
    )
    if not floats:
        return expr
    cs = sympy.symbols(f"c0:{len(floats)}", real=True)
    template = expr.xreplace(dict(zip(floats, cs)))
    f = sympy.lambdify((V, *cs), template, "numpy")

    def residuals(c):
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(np.asarray(f(V_values, *c), dtype=float), V_values.shape)
        e = relative_errors(pred, r)
        return np.where(np.isfinite(e), e, 1e6)

    c0 = np.array([float(x) for x in floats])
    before = residuals(c0)
    try:
        sol = least_squares(residuals, c0, method="lm", max_nfev=max_nfev * len(c0))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return expr
    if not np.all(np.isfinite(sol.x)):
        return expr
    new = template.xreplace({c: sympy.Float(float(v)) for c, v in zip(cs, sol.x)})
    after = relative_errors(evaluate_expr(new, V_values), r)
    if not np.all(np.isfinite(after)) or np.sum(after**2) >= np.sum(before**2):
        return expr
    return new
