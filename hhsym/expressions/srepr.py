"""The srepr reader's whitelist: sympy constructors and the tree walker."""

from __future__ import annotations

import ast
import re

import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from hhsym.expressions.syntax import _fail, _power

_RELATIONS = {
    "StrictLessThan": sympy.StrictLessThan,
    "LessThan": sympy.LessThan,
    "StrictGreaterThan": sympy.StrictGreaterThan,
    "GreaterThan": sympy.GreaterThan,
}

#: Constructors accepted in srepr text: name -> sympy callable.
SREPR_CONSTRUCTORS = {
    "Add": sympy.Add,
    "Mul": sympy.Mul,
    "Pow": sympy.Pow,
    "exp": sympy.exp,
    "log": sympy.log,
    "tanh": sympy.tanh,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "Abs": sympy.Abs,
    "Min": sympy.Min,
    "Max": sympy.Max,
    "Piecewise": sympy.Piecewise,
    "ExprCondPair": ExprCondPair,
    **_RELATIONS,
}

_SREPR_NAMES = {"pi": sympy.pi, "E": sympy.E, "true": sympy.true, "false": sympy.false}
_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class _Srepr:
    """Walk a :func:`sympy.srepr` syntax tree into sympy (whitelisted constructors only)."""

    def __init__(self, text, where, names):
        self.text, self.where, self.names = text, where, names

    def fail(self, message, node):
        return _fail(self.text, self.where, message, node)

    def walk(self, node):
        if isinstance(node, ast.Name) and node.id in _SREPR_NAMES:
            return _SREPR_NAMES[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.walk(node.operand)
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            raise self.fail(f"{type(node).__name__} is not a sympy constructor", node)
        name = node.func.id
        if name == "Symbol":
            return self.symbol(node)
        if name in ("Integer", "Float", "Rational"):
            return self.number(node, name)
        if name not in SREPR_CONSTRUCTORS:
            raise self.fail(
                f"the constructor {name!r} is not accepted: accepted are Symbol, Integer, Float, Rational, "
                f"{', '.join(SREPR_CONSTRUCTORS)}",
                node,
            )
        if node.keywords:
            raise self.fail(f"{name}() takes no keyword arguments here", node)
        args = [self.walk(a) for a in node.args]
        if name == "Pow":
            if len(args) != 2:
                raise self.fail("Pow() takes 2 arguments", node)
            return _power(args[0], args[1], self.text, self.where, node)
        return SREPR_CONSTRUCTORS[name](*args)

    def literal(self, node, kinds):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.literal(node.operand, kinds)
            return -value
        if not isinstance(node, ast.Constant) or isinstance(node.value, bool) or not isinstance(node.value, kinds):
            raise self.fail(f"expected a literal {' or '.join(k.__name__ for k in kinds)}", node)
        return node.value

    def symbol(self, node):
        if len(node.args) != 1:
            raise self.fail("Symbol() takes one name", node)
        name = self.literal(node.args[0], (str,))
        for kw in node.keywords:
            if kw.arg not in ("real", "positive", "negative", "nonnegative", "finite") or not (
                isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, bool)
            ):
                raise self.fail(f"Symbol() assumption {kw.arg!r} is not accepted", node)
        if name not in self.names:
            accepted = ", ".join(sorted(self.names)) or "none"
            raise self.fail(f"unknown name {name!r}: accepted names are {accepted}", node)
        return self.names[name]

    def number(self, node, kind):
        if kind == "Integer":
            if len(node.args) != 1 or node.keywords:
                raise self.fail("Integer() takes one integer", node)
            value = self.literal(node.args[0], (int,))
            if abs(value) > 10**300:
                raise self.fail("integer too large", node)
            return sympy.Integer(value)
        if kind == "Rational":
            if len(node.args) != 2 or node.keywords:
                raise self.fail("Rational() takes two integers", node)
            p, q = (self.literal(a, (int,)) for a in node.args)
            if q == 0 or max(abs(p), abs(q)) > 10**300:
                raise self.fail("Rational() needs a non-zero denominator and moderate integers", node)
            return sympy.Rational(p, q)
        if len(node.args) != 1:
            raise self.fail("Float() takes one number", node)
        value = self.literal(node.args[0], (str, int, float))
        precision = 53
        for kw in node.keywords:
            if kw.arg != "precision":
                raise self.fail(f"Float() keyword {kw.arg!r} is not accepted", node)
            precision = self.literal(kw.value, (int,))
        if not 1 <= precision <= 1024:
            raise self.fail("Float() precision must be between 1 and 1024 bits", node)
        if isinstance(value, str) and not _NUMBER_TEXT.match(value):
            raise self.fail(f"Float() text {value!r:.40} is not a finite number", node)
        result = sympy.Float(value, precision=precision)
        if not result.is_finite:
            raise self.fail("Float() is not finite", node)
        return result
