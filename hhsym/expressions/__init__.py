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

import sympy
from sympy.core.parameters import distribute

from hhsym.errors import ModelError
from hhsym.expressions.infix import CONSTANTS, FUNCTIONS, _Infix
from hhsym.expressions.srepr import SREPR_CONSTRUCTORS, _Srepr
from hhsym.expressions.syntax import MAX_DEPTH, MAX_EXPONENT, MAX_LENGTH, MAX_SREPR_LENGTH, _syntax_tree

__all__ = ["parse", "parse_srepr", "check_sympy", "FUNCTIONS", "CONSTANTS", "SREPR_CONSTRUCTORS", "MAX_LENGTH",
           "MAX_SREPR_LENGTH", "MAX_DEPTH", "MAX_EXPONENT"]


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
