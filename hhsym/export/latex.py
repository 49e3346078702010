"""LaTeX of conductance models: the ODE system, each rate, the parameter values (sympy's printer)."""

from __future__ import annotations

import sympy

from hhsym.errors import invalid
from hhsym.model.gating import _for_display

__all__ = ["model_latex"]


def model_latex(model, environment="align"):
    r"""Typeset a model's ODE system (see :meth:`hhsym.ConductanceModel.latex`).

    Parameters
    ----------
    model : ConductanceModel
    environment : {"align", "lines"}
        ``"align"``: one LaTeX ``align*`` block; ``"lines"``: ``(lhs, rhs)`` pairs.

    Returns
    -------
    str or list of (str, str)
    """

    if environment not in ("align", "lines"):
        raise invalid("environment", environment, "'align' or 'lines'")
    p = model.param_symbols()
    eqs = model.equations()
    # "\cdot" keeps "g_L (V - E_L)" from reading as a function call when parsed back
    lines = [(sympy.latex(p["C_m"]) + r" \frac{dV}{dt}", sympy.latex(eqs[0].rhs, mul_symbol="dot"))]
    for g in model.gates:
        a = sympy.Symbol(rf"\alpha_{{{g.name}}}")
        b = sympy.Symbol(rf"\beta_{{{g.name}}}")
        x = sympy.Symbol(g.name)
        lines.append((rf"\frac{{d{g.name}}}{{dt}}", sympy.latex(a * (1 - x) - b * x, mul_symbol="dot")))
    # calcium pools (mM/ms): their own right-hand side, after the gates (as in model.states)
    for k, pool in enumerate(model.pools):
        rhs = _for_display(eqs[1 + len(model.gates) + k].rhs)
        lines.append((rf"\frac{{d{sympy.latex(sympy.Symbol(pool.name))}}}{{dt}}", sympy.latex(rhs, mul_symbol="dot")))
    for g in model.gates:
        for kind, sym in (("alpha", r"\alpha"), ("beta", r"\beta")):
            expr = _for_display(model.rates[f"{kind}_{g.name}"])
            lines.append((rf"{sym}_{{{g.name}}}", sympy.latex(expr)))
    if environment == "lines":
        return lines
    units = {"C": r"\mu F/cm^2", "g": r"mS/cm^2", "E": "mV"}
    pool_units = {}
    for pool in model.pools:
        pool_units.update(zip(pool.param_names(), ("ms", r"\mu m", "mM")))
    values = ",\\; ".join(
        f"{sympy.latex(p[k])} = {v:g}\\,\\mathrm{{{units.get(k[0], '')}}}" if k[0] in units and k[1] == "_"
        else f"{sympy.latex(p[k])} = {v:g}\\,\\mathrm{{{pool_units[k]}}}" if k in pool_units
        else f"{sympy.latex(p[k])} = {v:g}"
        for k, v in model.params.items()
    )
    body = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in lines)
    return f"\\begin{{align*}}\n{body} \\\\\n&{values}\n\\end{{align*}}"
