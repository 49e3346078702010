"""Piecewise rates (e.g. the log-linear tails of a rate network) in languages without ``if`` expressions.

:func:`hoist` moves every ``Piecewise`` of a rate out into a named local value
(innermost first), so that NMODL and Python write it as ``if``/``else``
statements and LEMS as a ``ConditionalDerivedVariable``; :func:`exclusive`
turns sympy's first-match conditions into mutually exclusive ones, as LEMS cases
and Brian2's ``int(condition)`` blend need them.
"""

from __future__ import annotations

import sympy

from hhsym.errors import ModelError

__all__ = ["hoist", "exclusive", "has_piecewise", "statements"]


def has_piecewise(expr):
    """Whether ``expr`` holds a ``sympy.Piecewise``.

    Parameters
    ----------
    expr : sympy.Expr

    Returns
    -------
    bool
    """
    return bool(sympy.sympify(expr).atoms(sympy.Piecewise))


def hoist(expr, prefix="pw"):
    """Replace every Piecewise of ``expr`` by a symbol, innermost first.

    Parameters
    ----------
    expr : sympy.Expr
        A rate in ``V`` (mV).
    prefix : str
        Names of the new symbols: ``pw0``, ``pw1``, ...

    Returns
    -------
    expr : sympy.Expr
        ``expr`` with symbols for its Piecewise parts.
    locals : list of (str, list of (sympy.Expr, condition))
        In evaluation order: each name and the (value, condition) pairs of its
        Piecewise, first match wins (the last condition is ``True`` or not).
    """
    expr = sympy.sympify(expr)
    found = []
    while True:
        inner = [p for p in expr.atoms(sympy.Piecewise) if not any(a.has(sympy.Piecewise) for a in p.args)]
        if not inner:
            return expr, found
        for p in sorted(inner, key=sympy.default_sort_key):
            name = f"{prefix}{len(found)}"
            for _, cond in p.args:
                if cond is not sympy.true and not isinstance(cond, (sympy.core.relational.Relational,
                                                                      sympy.And, sympy.Or, sympy.Not)):
                    raise ModelError(f"cannot export the condition {cond} of a piecewise rate")
            if p.args[-1][1] is not sympy.true:
                raise ModelError(f"cannot export the piecewise rate term {p}: it needs a last piece for "
                                 "every other V (condition True)")
            found.append((name, list(p.args)))
            expr = expr.xreplace({p: sympy.Symbol(name, real=True)})


def exclusive(pieces):
    """Conditions of first-match ``pieces`` made mutually exclusive.

    Parameters
    ----------
    pieces : list of (sympy.Expr, condition)

    Returns
    -------
    list of (sympy.Expr, condition)
        Condition k is ``c_k and not c_j`` for every earlier j (``True`` when
        that is always so); pieces that can never be chosen are dropped.
    """
    out, earlier = [], []
    for value, cond in pieces:
        joined = sympy.And(cond, *[sympy.Not(c) for c in earlier])
        if joined is not sympy.false:
            out.append((value, joined))
        earlier.append(cond)
        if cond is sympy.true:
            break
    return out


def statements(local, dialect, var, style, extra=()):
    """``if``/``else`` statements that compute hoisted Piecewise values.

    Parameters
    ----------
    local : list
        The second result of :func:`hoist`.
    dialect : hhsym.export.common.Dialect
    var : str
        Text that stands for ``V`` (mV).
    style : {"python", "nmodl"}
    extra : sequence of str
        Other names that may appear (e.g. a calcium pool), printed as themselves.

    Returns
    -------
    list of str
        Lines, indented by 4 spaces (NMODL ones start with a ``LOCAL`` line).
    """
    from hhsym.export.common import render

    names = [name for name, _ in local]
    lines = [f"    LOCAL {', '.join(names)}"] if style == "nmodl" and names else []
    names = names + list(extra)
    for name, pieces in local:
        for k, (value, cond) in enumerate(pieces):
            text = render(value, dialect, var, names)
            if style == "python":
                head = "else:" if cond is sympy.true else f"{'if' if k == 0 else 'elif'} {render(cond, dialect, var, names)}:"
                lines += [f"    {head}", f"        {name} = {text}"]
            else:
                if cond is sympy.true:
                    head = "} else {" if k else "{"
                else:
                    head = f"{'} else ' if k else ''}if ({render(cond, dialect, var, names)}) {{"
                lines += [f"    {head}", f"        {name} = {text}"]
        if style == "nmodl":
            lines.append("    }")
    return lines
