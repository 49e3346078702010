"""The infix reader's whitelist: functions, constants, refused names, and the tree walker."""

from __future__ import annotations

import ast
import math

import sympy

from hhsym.expressions.syntax import _chain, _chain_family, _fail, _power

#: Functions accepted in infix text: name -> (sympy callable, accepted argument counts).
FUNCTIONS = {
    "exp": (sympy.exp, (1,)),
    "log": (sympy.log, (1,)),
    "sqrt": (sympy.sqrt, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "sinh": (sympy.sinh, (1,)),
    "cosh": (sympy.cosh, (1,)),
    "sin": (sympy.sin, (1,)),
    "cos": (sympy.cos, (1,)),
    "abs": (sympy.Abs, (1,)),
    "Abs": (sympy.Abs, (1,)),
    "min": (sympy.Min, (2, 3, 4)),
    "Min": (sympy.Min, (2, 3, 4)),
    "max": (sympy.Max, (2, 3, 4)),
    "Max": (sympy.Max, (2, 3, 4)),
}

#: Constant names accepted in infix text.
CONSTANTS = {"pi": sympy.pi}

#: Names refused with an explanation (unless the caller declares them as symbols).
_REFUSED = {
    "I": "sympy would read it as the imaginary unit; rates depend on V and the model's parameters only",
    "E": "sympy would read it as Euler's number; write exp(1) for e, or declare a parameter",
    "e": "write exp(1) for Euler's number, or declare a parameter",
    "S": "it is sympy's singleton registry, not a number",
    "N": "it is sympy's numeric-evaluation function, not a number",
    "oo": "infinite constants are not accepted in a rate",
    "zoo": "infinite constants are not accepted in a rate",
    "nan": "NaN is not accepted in a rate",
    "inf": "infinite constants are not accepted in a rate",
    "j": "complex numbers are not accepted in a rate",
}

class _Infix:
    """Walk an infix syntax tree into sympy (whitelisted node types only)."""

    def __init__(self, text, where, names, functions):
        self.text, self.where, self.names, self.functions = text, where, names, functions

    def fail(self, message, node):
        return _fail(self.text, self.where, message, node)

    def walk(self, node):
        family = _chain_family(node)
        if family is not None:
            return self.chain(node, family)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return _power(self.walk(node.left), self.walk(node.right), self.text, self.where, node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            raise self.fail(f"the operator {type(node.op).__name__} is not accepted (use + - * / **)", node)
        raise self.fail(
            f"{type(node).__name__} is not accepted: only numbers, names, + - * / ** and the "
            f"functions {', '.join(sorted(self.functions))}",
            node,
        )

    def chain(self, node, family):
        items = _chain(node, family)
        values = [(op, self.walk(operand)) for op, operand in items]
        if family == "add":
            terms = [v if op in (None, ast.Add) else -v for op, v in values]
            if len(terms) > 64:
                return sympy.Add(*terms)
            result = terms[0]
            for term in terms[1:]:
                result = result + term
            return result
        result = values[0][1]
        if len(values) > 64:
            factors = [v if op in (None, ast.Mult) else sympy.Pow(v, -1) for op, v in values]
            return sympy.Mul(*factors)
        for op, v in values[1:]:
            result = result * v if op is ast.Mult else result / v
        return result

    def number(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"the constant {value!r:.40} is not a real number", node)
        if isinstance(value, int):
            if abs(value) > 10**18:
                raise self.fail("integer constants above 1e18 are not accepted (write a float)", node)
            return sympy.Integer(value)
        if not math.isfinite(value):
            raise self.fail(f"the constant {value!r} is not finite", node)
        return sympy.Float(value)

    def name(self, node):
        name = node.id
        if name in self.names:
            return self.names[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        accepted = ", ".join(sorted(self.names)) or "none"
        if name in _REFUSED:
            raise self.fail(f"the name {name!r} is not accepted: {_REFUSED[name]} (names: {accepted})", node)
        if name in self.functions:
            raise self.fail(f"{name!r} is a function: call it, e.g. {name}(V)", node)
        raise self.fail(
            f"unknown name {name!r}: accepted names are {accepted} and the constant pi "
            "(declare new constants as model parameters)",
            node,
        )

    def call(self, node):
        if not isinstance(node.func, ast.Name):
            raise self.fail("only plain function names may be called (no attributes or expressions)", node)
        if node.func.id not in self.functions:
            shown = node.func.id
            if shown in _REFUSED:
                raise self.fail(f"{shown!r} is not accepted: {_REFUSED[shown]}", node)
            raise self.fail(
                f"the function {shown!r} is not accepted: accepted are {', '.join(sorted(self.functions))}",
                node,
            )
        func, arities = self.functions[node.func.id]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"{node.func.id}() takes plain arguments only", node)
        if len(node.args) not in arities:
            raise self.fail(
                f"{node.func.id}() takes {' or '.join(map(str, arities))} argument(s), got {len(node.args)}",
                node,
            )
        return func(*[self.walk(a) for a in node.args])
