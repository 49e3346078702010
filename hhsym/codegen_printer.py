"""sympy to kernel source for :mod:`hhsym.codegen`: the printer, the model's expressions, lane functions.

The printer maps ``exp``/``tanh`` to the vectorisable :mod:`hhsym.integrate.vmath` versions and
prints small integer powers as products; :func:`print_body` prints straight-line assignments after
common-subexpression elimination; :func:`lane_functions` prints the per-neuron right-hand side
that the rk4 driver keeps in registers.
"""

from __future__ import annotations

import sympy
from sympy.printing.pycode import PythonCodePrinter

from hhsym.model.pools import pool_symbols

__all__ = ["KernelPrinter", "model_expressions", "print_body", "lane_functions", "unpack", "fresh",
           "FLAGS", "JIT", "LANE_JIT"]


class KernelPrinter(PythonCodePrinter):
    """Prints sympy as numba-friendly Python: vexp/vtanh, plain floats, ternaries."""

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name == "exp":
            return f"vexp({self._print(expr.args[0])})"
        if name == "tanh":
            return f"vtanh({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def _print_exp(self, expr):
        return f"vexp({self._print(expr.args[0])})"

    def _print_tanh(self, expr):
        return f"vtanh({self._print(expr.args[0])})"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return repr(float(expr))

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent.is_Integer and 1 < abs(int(exponent)) <= 8:
            n = abs(int(exponent))
            b = self.parenthesize(base, 100)  # always parenthesise
            prod = "*".join([f"({self._print(base)})" if not base.is_Symbol else b] * n)
            return f"(1.0/({prod}))" if int(exponent) < 0 else f"({prod})"
        if exponent == -1:
            return f"(1.0/({self._print(base)}))"
        return super()._print_Pow(expr, rational=rational)


def model_expressions(model):
    """Symbols, rate expressions and right-hand sides of ``model`` (parameters symbolic)."""
    psym = model.param_symbols()
    gates = model.gates
    xsym = {g.name: sympy.Symbol(g.name, real=True) for g in gates}
    xsym.update(pool_symbols(model))  # calcium pools: states too (rates may use them)
    # the stimulus of the current neuron, under a name no state or parameter of the model has
    I = sympy.Symbol(fresh("I_j", set(xsym) | {str(s) for s in psym.values()}), real=True)
    rates = model.safe_rates()
    rsym = {k: sympy.Symbol(f"r_{k}", real=True) for k in rates}
    g_total = 0
    g_rev = 0
    for ch in model.channels:
        conductance = psym[f"g_{ch.name}"]
        for g in ch.gates:
            conductance = conductance * xsym[g.name] ** g.power
        g_total += conductance
        g_rev += conductance * psym[f"E_{ch.name}"]
    return psym, xsym, I, rates, rsym, g_total, g_rev


def print_body(assignments, printer, indent, rate_values):
    """Print ``target = expr`` lines after inlining the rates and eliminating common subexpressions."""
    lines = []
    exprs = [expr.xreplace(rate_values) for _, expr in assignments]
    replacements, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("c_"))
    pad = " " * indent
    for sym, expr in replacements:
        lines.append(f"{pad}{sym} = {printer.doprint(expr)}")
    for (target, _), expr in zip(assignments, reduced):
        lines.append(f"{pad}{target} = {printer.doprint(expr)}")
    return lines


# error_model="numpy": a float division by zero gives inf/nan (which the engines
# detect and report) instead of a Python exception check, whose branch would
# keep LLVM from vectorising the loops over neurons.  fastmath "contract" only:
# a*b + c may become one fused multiply-add (one rounding instead of two); no
# flag that assumes finite values, so NaN/inf checks keep working.
FLAGS = 'cache=True, error_model="numpy", fastmath={"contract"}'
JIT = f"@numba.njit({FLAGS})"


#: Lane functions (one neuron's states as a tuple) are inlined into their callers' loops.
LANE_JIT = f"@numba.njit({FLAGS}, inline=\"always\")"


def unpack(pad, names, source):
    """``a, b, c = source`` (a one-element target keeps its trailing comma)."""
    target = ", ".join(names) + ("," if len(names) == 1 else "")
    return [f"{pad}{target} = {source}"]


def fresh(base, taken):
    """``base`` with underscores prepended until it is not in ``taken``."""
    while base in taken:
        base = "_" + base
    return base


def lane_functions(states, params, rhs_body, current="I_j"):
    """Source of the per-neuron ("lane") functions the kernels are written with.

    ``rhs_lane(y, I_j, p)`` returns the derivatives of one neuron from its
    state tuple ``y``, current ``I_j`` (µA/cm²) and parameter tuple ``p``;
    ``load_state``/``load_params``/``store_state`` move a column of a block
    into and out of such tuples; ``axpy(a, x, y)`` is ``y + a x`` and
    ``add(x, y)`` is ``x + y``, elementwise over the states.  All are inlined
    (numba IR), so a method's loop over the neurons of a block holds every
    stage of a step in registers and LLVM vectorises it across neurons.
    ``current`` names the current's argument (``I_j`` unless the model has a name ``I_j``).
    """
    ns = len(states)
    # the lane's own argument names must not be a model name (a gate may be called "p" or "y")
    taken = set(states) | set(params) | {f"d_{s}" for s in states}
    y_arg, p_arg = (fresh(base, taken) for base in ("y", "p"))
    ys = ", ".join(f"Y[{i}, j]" for i in range(ns))
    ps = ", ".join(f"P[{i}, j]" for i in range(len(params)))
    tail = "," if ns == 1 else ""
    out = [
        LANE_JIT,
        f"def rhs_lane({y_arg}, {current}, {p_arg}):",
        f'    """Derivatives (tuple, per ms) of one neuron: states {y_arg}, current {current} (µA/cm²), '
        f'parameters {p_arg}."""',
        *unpack("    ", states, y_arg),
        *unpack("    ", params, p_arg),
        *rhs_body,
        f"    return ({', '.join(f'd_{s}' for s in states)}{tail})",
        "",
        "",
        LANE_JIT,
        "def load_state(Y, j):",
        '    """States of neuron (column) j of the block Y, as a tuple."""',
        f"    return ({ys}{tail})",
        "",
        "",
        LANE_JIT,
        "def load_params(P, j):",
        '    """Parameters of neuron (column) j of P, as a tuple (order of PARAM_NAMES)."""',
        f"    return ({ps}{',' if len(params) == 1 else ''})",
        "",
        "",
        LANE_JIT,
        "def store_state(Y, j, y):",
        '    """Write the state tuple y into column j of Y."""',
        *[f"    Y[{i}, j] = y[{i}]" for i in range(ns)],
        "",
        "",
        LANE_JIT,
        "def axpy(a, x, y):",
        '    """y + a x, elementwise over the state tuples x, y."""',
        f"    return ({', '.join(f'y[{i}] + a * x[{i}]' for i in range(ns))}{tail})",
        "",
        "",
        LANE_JIT,
        "def add(x, y):",
        '    """x + y, elementwise over the state tuples."""',
        f"    return ({', '.join(f'x[{i}] + y[{i}]' for i in range(ns))}{tail})",
        "",
        "",
    ]
    return out
