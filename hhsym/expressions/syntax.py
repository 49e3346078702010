"""Shared pieces of the readers: limits, the syntax tree (parsed, never run), depth checks, errors."""

from __future__ import annotations

import ast
import math
import re

import sympy

from hhsym.errors import ModelError

#: Longest infix text accepted (characters); a textbook rate is under 100.
MAX_LENGTH = 20_000
#: Longest srepr text accepted (characters); srepr is about 5x longer than infix.
MAX_SREPR_LENGTH = 200_000
#: Deepest nesting accepted (a chain of ``+``/``-`` or ``*``/``/`` is one level).
MAX_DEPTH = 60
#: Largest magnitude of a numeric exponent (``x**5`` is fine, ``10**10**10`` is not).
MAX_EXPONENT = 1000

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
