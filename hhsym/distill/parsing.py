"""Read the expression strings of symbolic-regression tools into sympy.

The strings come from other programs (Operon's infix formatter, PySR's hall
of fame), so they are *checked token by token* before sympy sees them: only
numbers, the operators ``+ - * / ^ ( ) ,``, the variable names given and a
short list of function names are accepted. Nothing else is ever evaluated.

Also here: :func:`refine_constants`, which re-fits the floating-point
constants of an open-form expression to relative residuals.
"""

from __future__ import annotations

import re

import numpy as np
import sympy
from scipy.optimize import least_squares

from hhsym.distill.base import V, evaluate_expr, relative_errors, round_sig
from hhsym.errors import ModelError

__all__ = ["parse_expression", "refine_constants", "round_constants", "FUNCTIONS"]

#: Function names accepted in expression strings, with their sympy meaning
#: (PySR's names for its safe operators included).
FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "tanh": sympy.tanh,
    "square": lambda x: x**2,
    "cube": lambda x: x**3,
    "neg": lambda x: -x,
    "inv": lambda x: 1 / x,
}

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eEfF][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))"
)


def parse_expression(text, variables=("V", "x0", "X1")):
    """Parse an infix expression string into a sympy expression in :data:`V`.

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
        raise ModelError(f"invalid expression {text!r}: expected a str")
    pieces, pos = [], 0
    stripped = text.strip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise ModelError(
                f"invalid expression {text!r}: unexpected {stripped[pos:pos + 10]!r} "
                "(accepted: numbers, + - * / ^ ( ), variables "
                f"{list(variables)} and functions {sorted(FUNCTIONS)})"
            )
        if m.group("num"):
            pieces.append(re.sub(r"[fF]", "e", m.group("num")))
        elif m.group("name"):
            name = m.group("name")
            if name not in variables and name not in FUNCTIONS:
                raise ModelError(
                    f"invalid expression {text!r}: unknown name {name!r} "
                    f"(accepted: variables {list(variables)}, functions {sorted(FUNCTIONS)})"
                )
            pieces.append(name)
        else:
            pieces.append("**" if m.group("op") in ("^", "**") else m.group("op"))
        pos = m.end()
    local = {name: V for name in variables}
    local.update(FUNCTIONS)
    try:
        expr = sympy.parse_expr(" ".join(pieces), local_dict=local)
    except Exception as exc:  # tokenize, syntax and sympy errors alike: checked text only
        raise ModelError(f"invalid expression {text!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(expr, sympy.Expr):
        raise ModelError(f"invalid expression {text!r}: not a scalar expression")
    return expr


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
