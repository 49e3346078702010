"""Numpy functions from ``sympy.lambdify`` kept as source text and evaluated without executing it.

A new process would otherwise rebuild and print the same sympy expressions
(0.1-0.3 s) before its first simulation.  :func:`to_entry` turns a function
that ``sympy.lambdify(..., modules="numpy")`` made into a JSON-safe entry: its
argument names and the expression it returns, as source.  :func:`from_entry`
turns such an entry back into a callable that *interprets* the expression's
syntax tree: numbers, the arguments, ``+ - * / **``, unary minus, lists,
and calls of a fixed list of numpy functions and constants.  Nothing in an entry is
executed, imported or looked up outside that list, so an entry from
an untrusted place can give wrong numbers but run no code.

The interpreter applies the same Python operators to the same objects as
the compiled function (CPython folds constant sub-expressions such as
``-1/10`` with the same float arithmetic), so the values are bit-identical
to those of the lambdified function.
"""

from __future__ import annotations

import ast
import inspect
import math
import operator

import numpy as np

__all__ = ["to_entry", "from_entry"]

#: Numpy functions and constants an interpreted expression may name.
NAMES = (
    "abs", "absolute", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh",
    "ceil", "cos", "cosh", "e", "equal", "exp", "exp2", "expm1", "floor", "greater",
    "greater_equal", "heaviside", "inf", "isnan", "less", "less_equal", "log", "log10", "log1p",
    "log2", "logical_and", "logical_not", "logical_or", "maximum", "minimum", "nan", "not_equal",
    "pi", "power", "select", "sign", "sin", "sinh", "sqrt", "square", "tan", "tanh", "where",
)

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _namespace():
    """Name -> numpy object for :data:`NAMES` (those this numpy has)."""
    return {name: getattr(np, name) for name in NAMES if hasattr(np, name)}


def _same_object(a, b):
    """Whether ``a`` and ``b`` are the same numpy function, or equal constants (nan equals nan)."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return False


def _function_def(source):
    """The ``FunctionDef`` of ``source`` if it is one function returning one expression, else None."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, TypeError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return None
    fn = tree.body[0]
    a = fn.args
    if (a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or fn.decorator_list
            or len(fn.body) != 1 or not isinstance(fn.body[0], ast.Return) or fn.body[0].value is None):
        return None
    return fn


def _compile(node, index, names):
    """A closure ``f(args) -> value`` evaluating the expression ``node``.

    ``index`` maps argument names to positions; ``names`` the other allowed names to objects.
    Raises ValueError for any other construct.
    """
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        value = node.value
        return lambda args: value
    if isinstance(node, ast.Name):
        if node.id in index:
            k = index[node.id]
            return lambda args: args[k]
        if node.id in names:
            obj = names[node.id]
            return lambda args: obj
        raise ValueError(f"name {node.id!r} is not allowed")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op, left, right = _BINARY[type(node.op)], _compile(node.left, index, names), _compile(node.right, index, names)
        return lambda args: op(left(args), right(args))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        op, operand = _UNARY[type(node.op)], _compile(node.operand, index, names)
        return lambda args: op(operand(args))
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_compile(e, index, names) for e in node.elts]
        kind = list if isinstance(node, ast.List) else tuple
        return lambda args: kind(f(args) for f in items)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
        fn = names[node.func.id]
        if not callable(fn) or any(k.arg is None for k in node.keywords):
            raise ValueError("only calls of numpy functions with plain arguments are allowed")
        pos = [_compile(e, index, names) for e in node.args]
        kw = [(k.arg, _compile(k.value, index, names)) for k in node.keywords]
        return lambda args: fn(*[f(args) for f in pos], **{k: f(args) for k, f in kw})
    raise ValueError(f"construct {type(node).__name__} is not allowed")


def to_entry(func):
    """The JSON-safe entry of a function made by ``sympy.lambdify(..., modules="numpy")``, or None.

    None when the function is not one returned expression over its arguments
    and :data:`NAMES` (bound, in its namespace, to the numpy objects of those
    names): such a function is not stored.

    Parameters
    ----------
    func : callable
        The lambdified function.

    Returns
    -------
    dict or None
        ``{"args": [names], "source": text}``.
    """
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    fn = _function_def(source)
    if fn is None:
        return None
    args = [a.arg for a in fn.args.args]
    space = getattr(func, "__globals__", {})
    names = _namespace()
    used = {n.id for n in ast.walk(fn.body[0].value) if isinstance(n, ast.Name)} - set(args)
    if not all(n in names and n in space and _same_object(space[n], names[n]) for n in used):
        return None
    try:
        _compile(fn.body[0].value, {a: k for k, a in enumerate(args)}, names)
    except ValueError:
        return None
    return {"args": args, "source": source}


def from_entry(entry):
    """A callable evaluating a stored entry (see :func:`to_entry`), bit-identical to the original.

    Parameters
    ----------
    entry : dict
        ``{"args": [names], "source": text}`` as stored.

    Returns
    -------
    callable
        ``f(*args)`` with positional arguments only.

    Raises
    ------
    ValueError
        When the entry is malformed or its expression uses anything outside
        the interpreted subset (a corrupt or foreign cache file).
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ValueError("not a stored function")
    fn = _function_def(entry["source"])
    if fn is None:
        raise ValueError("not one function returning one expression")
    args = [a.arg for a in fn.args.args]
    if entry.get("args") != args:
        raise ValueError("argument names differ from the source")
    body = _compile(fn.body[0].value, {a: k for k, a in enumerate(args)}, _namespace())
    n = len(args)

    def evaluate(*values):
        if len(values) != n:
            raise TypeError(f"expected {n} arguments ({', '.join(args)}), got {len(values)}")
        return body(values)

    evaluate.__doc__ = f"Interpreted ``{fn.name}({', '.join(args)})`` (see hhsym.lambdified)."
    return evaluate
