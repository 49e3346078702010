r"""The one safe reader of every expression hhsym takes from text.

Rate expressions reach hhsym as text from users (``Gate("m", "0.1*(V+40)/...")``),
from files (model JSON, fit NPZ metadata) and from other programs (PySR, Operon).
None of that text is ever evaluated: it is parsed by Python's :mod:`ast` module
(which only builds a syntax tree) and the tree is walked by a whitelist that
builds sympy objects directly.  Anything outside the whitelist raises a
:class:`~hhsym.errors.ModelError` that shows the text and a caret under the
offending part.

Two spellings are read:

* **infix** (:func:`parse`): numbers, the names the caller declares (the
  model's own symbols), ``+ - * / **`` (``^`` too), unary minus, parentheses
  and the functions of :data:`FUNCTIONS`.  The only constant name is ``pi``
  (:math:`\pi`); Euler's number is written ``exp(1)``.  ``I``, ``E``, ``S``,
  ``N``, ``e``, ``oo``, ``nan`` and ``j`` are refused with a message saying
  why: sympy would read ``I`` as the imaginary unit and ``E`` as Euler's
  number, which in a rate is almost never what was meant.
* **srepr** (:func:`parse_srepr`): the output of :func:`sympy.srepr`, which
  hhsym's model files store for an exact round trip.  Only the constructors of
  :data:`SREPR_CONSTRUCTORS` are accepted, and a ``Symbol`` must be one of the
  declared names.

Limits (:data:`MAX_LENGTH`, :data:`MAX_DEPTH`, :data:`MAX_EXPONENT`) bound the
work any text can cause; a chain ``a + b + c + ...`` counts as one level.
"""

from __future__ import annotations

import ast
import math
import re

import sympy
from sympy.core.parameters import distribute
from sympy.functions.elementary.piecewise import ExprCondPair

from hhsym.errors import ModelError

__all__ = ["parse", "parse_srepr", "check_sympy", "FUNCTIONS", "CONSTANTS", "MAX_LENGTH", "MAX_DEPTH"]

#: Longest infix text accepted (characters); a textbook rate is under 100.
MAX_LENGTH = 20_000
#: Longest srepr text accepted (characters); srepr is about 5x longer than infix.
MAX_SREPR_LENGTH = 200_000
#: Deepest nesting accepted (a chain of ``+``/``-`` or ``*``/``/`` is one level).
MAX_DEPTH = 60
#: Largest magnitude of a numeric exponent (``x**5`` is fine, ``10**10**10`` is not).
MAX_EXPONENT = 1000

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


def _fail(text, where, message, node=None):
    """A ModelError quoting ``text`` with a caret under ``node`` (when it has a position)."""
    shown = text if len(text) <= 200 else text[:197] + "..."
    caret = ""
    col = getattr(node, "col_offset", None)
    if isinstance(col, int) and getattr(node, "lineno", 1) == 1 and col < len(shown):
        caret = "\n    " + " " * col + "^"
    return ModelError(f"cannot read {where}: {message}\n    {shown}{caret}")


def _syntax_tree(text, where, limit):
    """Check length and type, then parse ``text`` into an ast expression (never run)."""
    if not isinstance(text, str):
        raise ModelError(f"cannot read {where}: expected text, got {type(text).__name__} {text!r:.80}")
    if len(text) > limit:
        raise ModelError(
            f"cannot read {where}: the text is {len(text)} characters long; "
            f"at most {limit} are accepted"
        )
    if not text.strip():
        raise ModelError(f"cannot read {where}: the text is empty")
    if "\n" in text.strip() or ";" in text:
        raise ModelError(f"cannot read {where}: expected one expression on one line\n    {text[:200]!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        caret = ""
        if isinstance(exc.offset, int) and 0 < exc.offset <= len(text) + 1:
            caret = "\n    " + " " * (exc.offset - 1) + "^"
        hint = ""
        if re.search(r"\d[A-Za-z_(]", text):
            hint = " (write products with '*', e.g. 2*V, not 2V)"
        raise ModelError(f"cannot read {where}: {exc.msg}{hint}\n    {text.strip()[:200]}{caret}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ModelError(f"cannot read {where}: too deeply nested or malformed ({type(exc).__name__})") from None
    _check_depth(tree.body, text, where)
    return tree.body


def _chain_family(node):
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return "add"
        if isinstance(node.op, (ast.Mult, ast.Div)):
            return "mul"
    return None


def _check_depth(root, text, where):
    """Raise when the tree nests deeper than :data:`MAX_DEPTH` (iteratively: no recursion)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _fail(text, where, f"nested more than {MAX_DEPTH} levels deep", node)
        family = _chain_family(node)
        for child in ast.iter_child_nodes(node):
            same = family is not None and _chain_family(child) == family and child is getattr(node, "left", None)
            stack.append((child, depth if same else depth + 1))


def _chain(node, family):
    """Flatten a left-nested chain ``a + b - c ...`` into [(op, operand), ...] without recursion."""
    items = []
    while _chain_family(node) == family:
        items.append((type(node.op), node.right))
        node = node.left
    items.append((None, node))
    items.reverse()
    return items


def _power(base, exponent, text, where, node):
    """``base ** exponent`` with numeric exponents bounded (no giant integers)."""
    if isinstance(exponent, sympy.Number):
        if not exponent.is_finite or abs(float(exponent)) > MAX_EXPONENT:
            raise _fail(text, where, f"the exponent {exponent} exceeds {MAX_EXPONENT} in magnitude", node)
        if isinstance(base, sympy.Number):
            try:
                size = abs(float(exponent)) * math.log10(max(abs(float(base)), 1e-300))
            except (OverflowError, ValueError):
                size = math.inf
            if not math.isfinite(size) or abs(size) > 300:
                raise _fail(text, where, "the power's value is out of the floating-point range", node)
    return base**exponent


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


def _symbols(names):
    """``names`` as a dict name -> sympy object (strings become real symbols; V is hhsym's V)."""
    from hhsym.symbolic import V

    table = {}
    for name in names if not isinstance(names, dict) else names.keys():
        value = names[name] if isinstance(names, dict) else None
        if value is None:
            value = V if name == "V" else sympy.Symbol(name, real=True)
        table[name] = value
    return table


def check_sympy(expr, where, text=None):
    """Raise unless ``expr`` is a real, finite-valued sympy expression.

    Parameters
    ----------
    expr : sympy.Basic
        Expression to check.
    where : str
        What the expression defines (for the message).
    text : str, optional
        The text it came from (for the message).

    Returns
    -------
    sympy.Expr
        ``expr``.
    """
    shown = text if text is not None else str(expr)[:200]
    if not isinstance(expr, sympy.Expr):
        raise ModelError(f"cannot read {where}: not an algebraic expression\n    {shown}")
    if expr.has(sympy.I):
        raise ModelError(f"cannot read {where}: it contains the imaginary unit I; rates are real\n    {shown}")
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ModelError(f"cannot read {where}: it evaluates to an infinite or undefined constant\n    {shown}")
    return expr


def parse(text, names=("V",), where="expression", functions=None, keep_products=True):
    """Read an infix expression such as ``"0.1*(V + 40)/(1 - exp(-(V + 40)/10))"``.

    Parameters
    ----------
    text : str
        The expression (at most :data:`MAX_LENGTH` characters).  ``^`` means
        a power, as ``**`` does.
    names : iterable of str or dict, optional
        The names that may appear: a string becomes a real sympy symbol of that
        name (``"V"`` becomes :data:`hhsym.symbolic.V`); a dict maps names to
        the sympy objects they stand for.  Default ``("V",)``.
    where : str, optional
        What the expression defines (e.g. ``"alpha_m"``), for error messages.
    functions : dict, optional
        Function table ``name -> (callable, arities)``; default :data:`FUNCTIONS`.
    keep_products : bool, optional
        Keep a number times a sum as written (``0.1*(V + 40)``, default) or
        let sympy distribute it (``0.1*V + 4.0``).

    Returns
    -------
    sympy.Expr
        The expression, built with numbers kept as written (``0.1*(V + 40)``
        is not distributed).

    Raises
    ------
    ModelError
        On anything outside the whitelist, with the text and a caret.
    """
    if isinstance(text, str):
        text = text.replace("^", "**")  # as sympy's convert_xor: 2^3*V is 8*V
    tree = _syntax_tree(text, where, MAX_LENGTH)
    walker = _Infix(text.strip(), where, _symbols(names), FUNCTIONS if functions is None else functions)
    try:
        with distribute(not keep_products):
            expr = walker.walk(tree)
    except (RecursionError, MemoryError, OverflowError):
        raise ModelError(f"cannot read {where}: too large to build") from None
    except ModelError:
        raise
    except (TypeError, ValueError) as exc:  # sympy refusing a combination (e.g. Min of a relation)
        raise ModelError(f"cannot read {where}: {exc}\n    {text[:200]}") from None
    return check_sympy(sympy.sympify(expr) if isinstance(expr, (int, float)) else expr, where, text)


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


def parse_srepr(text, names=("V",), where="expression"):
    """Read the :func:`sympy.srepr` text of an expression, exactly and safely.

    Parameters
    ----------
    text : str
        srepr text (at most :data:`MAX_SREPR_LENGTH` characters), e.g.
        ``"Mul(Float('0.1', precision=53), Symbol('V', real=True))"``.
    names : iterable of str or dict, optional
        Symbol names that may appear (see :func:`parse`).  Default ``("V",)``.
    where : str, optional
        What the expression defines, for error messages.

    Returns
    -------
    sympy.Expr
        The expression, equal (``==``) to the one :func:`sympy.srepr` was given
        when its symbols are the declared ones.

    Raises
    ------
    ModelError
        On any constructor, keyword or name outside the whitelist.
    """
    tree = _syntax_tree(text, where, MAX_SREPR_LENGTH)
    walker = _Srepr(text.strip(), where, _symbols(names))
    try:
        with distribute(False):
            expr = walker.walk(tree)
    except (RecursionError, MemoryError, OverflowError):
        raise ModelError(f"cannot read {where}: too large to build") from None
    except ModelError:
        raise
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"cannot read {where}: {exc}\n    {text[:200]}") from None
    return check_sympy(expr, where, text[:200])
