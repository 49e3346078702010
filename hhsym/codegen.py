"""Turn a :class:`~hhsym.model.ConductanceModel` into numba-compiled kernels.

For each (model structure, integration method) pair this module writes one
Python source file into the cache directory and imports it:

* model functions printed from sympy (``rhs_block``, ``rhs_one``,
  ``relax_block``) — straight-line code after common-subexpression
  elimination, with ``exp``/``tanh`` mapped to the vectorisable
  :mod:`hhsym.integrate.vmath` versions and removable singularities guarded
  (:func:`hhsym.symbolic.safe_expression`);
* the integrator's kernel source, copied verbatim from
  :mod:`hhsym.integrate` (its free names — ``rhs_block``, ``step``,
  ``N_STATES``... — are bound by the generated module).

Everything is compiled with ``numba.njit(cache=True)``; because the module is
a real file whose name is the hash of its content, a second process finds
both the source and numba's compiled objects on disk and pays no compile
time.  Parameter *values* are not baked in: they are passed as an array, so
``model.with_params(...)`` variants share one compiled kernel.

The cache lives in ``$HHSYM_CACHE_DIR`` or ``$XDG_CACHE_HOME/hhsym`` (default
``~/.cache/hhsym``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import re
import sys
import threading
from pathlib import Path

import sympy
from sympy.printing.pycode import PythonCodePrinter

from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError, UnknownNameError
from hhsym.integrate import dopri5, exp_euler, rk4
from hhsym.model.pools import pool_current, pool_symbols
from hhsym.symbolic import V

__all__ = ["compile_model", "generate_source", "cache_dir", "METHODS"]

#: Integration methods and the kernel modules that implement them.
METHODS = {"rk4": rk4, "exp_euler": exp_euler, "dopri5": dopri5}

_LOCK = threading.Lock()
_LOADED: dict = {}


def cache_dir() -> Path:
    """Directory holding generated kernel modules and numba's caches.

    Returns
    -------
    pathlib.Path
        ``$HHSYM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hhsym`` or ``~/.cache/hhsym``.
    """
    env = os.environ.get("HHSYM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hhsym"


class _KernelPrinter(PythonCodePrinter):
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


def _model_expressions(model):
    """Symbols, rate expressions and right-hand sides of ``model`` (parameters symbolic)."""
    psym = model.param_symbols()
    gates = model.gates
    xsym = {g.name: sympy.Symbol(g.name, real=True) for g in gates}
    xsym.update(pool_symbols(model))  # calcium pools: states too (rates may use them)
    # the stimulus of the current neuron, under a name no state or parameter of the model has
    I = sympy.Symbol(_fresh("I_j", set(xsym) | {str(s) for s in psym.values()}), real=True)
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


def _print_body(assignments, printer, indent, rate_values):
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
_FLAGS = 'cache=True, error_model="numpy", fastmath={"contract"}'
_JIT = f"@numba.njit({_FLAGS})"


#: Lane functions (one neuron's states as a tuple) are inlined into their callers' loops.
_LANE_JIT = f"@numba.njit({_FLAGS}, inline=\"always\")"


def _unpack(pad, names, source):
    """``a, b, c = source`` (a one-element target keeps its trailing comma)."""
    target = ", ".join(names) + ("," if len(names) == 1 else "")
    return [f"{pad}{target} = {source}"]


def _fresh(base, taken):
    """``base`` with underscores prepended until it is not in ``taken``."""
    while base in taken:
        base = "_" + base
    return base


def _lane_functions(states, params, rhs_body, current="I_j"):
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
    y_arg, p_arg = (_fresh(base, taken) for base in ("y", "p"))
    ys = ", ".join(f"Y[{i}, j]" for i in range(ns))
    ps = ", ".join(f"P[{i}, j]" for i in range(len(params)))
    tail = "," if ns == 1 else ""
    out = [
        _LANE_JIT,
        f"def rhs_lane({y_arg}, {current}, {p_arg}):",
        f'    """Derivatives (tuple, per ms) of one neuron: states {y_arg}, current {current} (µA/cm²), '
        f'parameters {p_arg}."""',
        *_unpack("    ", states, y_arg),
        *_unpack("    ", params, p_arg),
        *rhs_body,
        f"    return ({', '.join(f'd_{s}' for s in states)}{tail})",
        "",
        "",
        _LANE_JIT,
        "def load_state(Y, j):",
        '    """States of neuron (column) j of the block Y, as a tuple."""',
        f"    return ({ys}{tail})",
        "",
        "",
        _LANE_JIT,
        "def load_params(P, j):",
        '    """Parameters of neuron (column) j of P, as a tuple (order of PARAM_NAMES)."""',
        f"    return ({ps}{',' if len(params) == 1 else ''})",
        "",
        "",
        _LANE_JIT,
        "def store_state(Y, j, y):",
        '    """Write the state tuple y into column j of Y."""',
        *[f"    Y[{i}, j] = y[{i}]" for i in range(ns)],
        "",
        "",
        _LANE_JIT,
        "def axpy(a, x, y):",
        '    """y + a x, elementwise over the state tuples x, y."""',
        f"    return ({', '.join(f'y[{i}] + a * x[{i}]' for i in range(ns))}{tail})",
        "",
        "",
        _LANE_JIT,
        "def add(x, y):",
        '    """x + y, elementwise over the state tuples."""',
        f"    return ({', '.join(f'x[{i}] + y[{i}]' for i in range(ns))}{tail})",
        "",
        "",
    ]
    return out


def _dependency_digest():
    """Hash of the kernel modules the generated code imports (vmath, stimulus kernel, schedule)."""
    from hhsym.integrate import schedule, stimulus_kernel, vmath

    text = inspect.getsource(vmath) + inspect.getsource(stimulus_kernel) + inspect.getsource(schedule)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generate_source(model, method):
    """Python/numba source of the kernel module for ``model`` and ``method``.

    Parameters
    ----------
    model : ConductanceModel
        The model (its parameter values are not used, only its structure).
    method : {"rk4", "exp_euler", "dopri5"}
        Integration method.

    Returns
    -------
    str
        Module source.
    """
    if method not in METHODS:
        raise UnknownNameError(f"unknown method {method!r}: accepted are {', '.join(METHODS)}")
    printer = _KernelPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": False})
    psym, xsym, I, rates, rsym, g_total, g_rev = _model_expressions(model)
    states = model.states
    params = list(model.params)
    C_m = psym["C_m"]

    # Right-hand side: rates as intermediate symbols, then derivatives.
    rate_values = {rsym[k]: rates[k] for k in rates}
    assign = []
    assign.append(("d_V", (I - (g_total * V - g_rev)) / C_m))
    for g in model.gates:
        x = xsym[g.name]
        assign.append((f"d_{g.name}", rsym[f"alpha_{g.name}"] * (1 - x) - rsym[f"beta_{g.name}"] * x))
    for pool in model.pools:
        assign.append((f"d_{pool.name}", pool.rhs(pool_current(model, pool, psym, xsym), psym)))
    rhs_body = _print_body(assign, printer, 4, rate_values)

    # Relaxation form for exponential Euler: dy/dt = (target - y) * rate.
    relax = [("k_V", g_total / C_m)]
    relax.append(("y_V", (I + g_rev) / g_total))
    for g in model.gates:
        a, b = rsym[f"alpha_{g.name}"], rsym[f"beta_{g.name}"]
        relax.append((f"k_{g.name}", a + b))
        relax.append((f"y_{g.name}", a / (a + b)))
    # a pool's right-hand side is linear in its concentration: exact relaxation form (rate 1/tau)
    for pool in model.pools:
        k, target = pool.relaxation(pool_current(model, pool, psym, xsym), psym)
        relax.append((f"k_{pool.name}", k))
        relax.append((f"y_{pool.name}", target))
    relax_body = _print_body(relax, printer, 8, rate_values)

    lines = [
        f'"""Kernels generated by hhsym.codegen for {model.name!r}, method {method!r}. Do not edit."""',
        # numba's cache does not see edits to imported kernels: their hash names this module
        f"# dependencies: {_dependency_digest()}",
        "import math",
        "import numba",
        "import numpy as np",
        "from hhsym.integrate.vmath import restrict_arrays, vexp, vtanh, wide_vectors",
        "from hhsym.integrate.stimulus_kernel import piecewise_constant, stage_currents, stim_in",
        "from hhsym.integrate.schedule import next_block",
        "",
        f"N_STATES = {len(states)}",
        f"N_PARAMS = {len(params)}",
        "# states 1 .. GATE_END - 1 are gates (checked to stay in [0, 1]); later ones are pools (finite)",
        f"GATE_END = {1 + len(model.gates)}",
        f"STATE_NAMES = {tuple(states)!r}",
        f"PARAM_NAMES = {tuple(params)!r}",
        "",
        "",
        *_lane_functions(states, params, rhs_body, str(I)),
        _JIT,
        "def rhs_point(Y, I, P, D, j):",
        '    """Derivatives of neuron j (column j of Y, P) into D[:, j]."""',
        "    store_state(D, j, rhs_lane(load_state(Y, j), I[j], load_params(P, j)))",
        "",
        "",
        _JIT,
        "def rhs_block(Y, I, P, D):",
        '    """Derivatives for every column (neuron) of Y: (n_states, n) arrays; I: (n,) µA/cm².',
        "",
        '    D must not overlap Y, I or P.',
        '    """',
        "    wide_vectors()",
        "    restrict_arrays()",
        "    for j in range(Y.shape[1]):",
        # rhs_lane is inlined into the loop (numba IR), so that LLVM vectorises it
        "        store_state(D, j, rhs_lane(load_state(Y, j), I[j], load_params(P, j)))",
        "",
        "",
        _JIT,
        "def relax_block(Y, I, P, K, T):",
        '    """Relaxation rates K (1/ms) and targets T of every state: dy/dt = K (T - y).',
        "",
        '    K and T must not overlap each other, Y, I or P.',
        '    """',
        "    wide_vectors()",
        "    restrict_arrays()",
        "    for j in range(Y.shape[1]):",
        *_unpack("        ", states, "load_state(Y, j)"),
        *_unpack("        ", params, "load_params(P, j)"),
        f"        {I} = I[j]",
        *relax_body,
        *[f"        K[{i}, j] = k_{s}" for i, s in enumerate(states)],
        *[f"        T[{i}, j] = y_{s}" for i, s in enumerate(states)],
        "",
        "",
    ]
    kernel = METHODS[method]
    helpers = []
    for module in (kernel,) + ((kernel.ENGINE,) if kernel.ENGINE is not None else ()):
        text = inspect.getsource(module).split("# --- kernel source below ---", 1)[1].strip("\n")
        lines.append(f"# ---- copied from {module.__name__} ----")
        lines.append(text)
        lines.append("")
        lines.append("")
        helpers += [
            node.name for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef) and node.name != kernel.ENTRY
        ]
    # the driver's INLINE helpers are inlined into their callers (numba IR); the others
    # (_flush, ...) allocate nothing: compiled without reference counting (_nrt=False), a call
    # per step from the driver costs no atomic inc/decrefs of its arrays
    inline = getattr(kernel.ENGINE or kernel, "INLINE", ())
    for name in helpers:
        how = 'inline="always"' if name in inline else "_nrt=False"
        lines.append(f"{name} = numba.njit({_FLAGS}, {how})({name})")
    lines.append(f"run = numba.njit({_FLAGS}, parallel=True)({kernel.ENTRY})")
    return "\n".join(lines) + "\n"


def compile_model(model, method):
    """Load (generating and compiling if needed) the kernel module of ``model``/``method``.

    Parameters
    ----------
    model : ConductanceModel
        Model to compile.
    method : {"rk4", "exp_euler", "dopri5"}
        Integration method.

    Returns
    -------
    module
        The generated module; its ``run`` is the integrator entry point (see
        the method's module in :mod:`hhsym.integrate` for the signature).
    """
    key = (model.structure_key(), method)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        # the index names the module generated for this structure by this version of the
        # generator, so a later process loads it without printing the model with sympy again
        index = folder / f"hhsym_index_{method}_{_index_digest(model, method)}.txt"
        name = _read_index(index, method)
        if name is None:
            source = generate_source(model, method)
            digest = hashlib.sha256(source.encode()).hexdigest()[:16]
            name = f"hhsym_kernel_{method}_{digest}"
            path = folder / f"{name}.py"
            if not path.exists() or path.read_text() != source:
                atomic_write(path, lambda fh: fh.write(source), error=HHSymError)
            atomic_write(index, lambda fh: fh.write(name), error=HHSymError)
        path = folder / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[key] = module
        return module


_GENERATOR: list = []


def _generator_digest():
    """Hash of everything that shapes a generated module besides the model (computed once)."""
    if not _GENERATOR:
        from hhsym import symbolic
        from hhsym.model import conductance, gating

        # the model package shapes the printed expressions too (safe rates, removable singularities)
        modules = [sys.modules[__name__], symbolic, conductance, gating, *METHODS.values(), *{m.ENGINE for m in METHODS.values()} - {None}]
        text = "".join(inspect.getsource(m) for m in sorted(modules, key=lambda m: m.__name__))
        text += _dependency_digest() + sympy.__version__
        _GENERATOR.append(hashlib.sha256(text.encode()).hexdigest()[:16])
    return _GENERATOR[0]


def _index_digest(model, method):
    """Name of the index entry of ``model``'s structure and ``method``."""
    text = f"{model.structure_key()}|{method}|{_generator_digest()}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _read_index(index, method):
    """Module name stored in ``index`` if it names an existing generated module, else None."""
    try:
        name = index.read_text().strip()
    except OSError:
        return None
    if not re.fullmatch(rf"hhsym_kernel_{method}_[0-9a-f]{{16}}", name):
        return None
    return name if (index.parent / f"{name}.py").is_file() else None
