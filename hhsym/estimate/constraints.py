"""Parameter constraints of the estimators, declared in one place per estimator.

Each estimator lists ``_parameter_constraints``: parameter name -> a
:class:`Constraint` (what is accepted, as a sentence for the error message,
and a check).  :func:`validate_params` runs them all at the start of ``fit``
(and when a fit file is read), so a bad value is named before any work, with
an :class:`~hhsym.errors.HHSymError` built by :func:`hhsym.errors.invalid`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hhsym.errors import (ArgumentTypeError, HHSymError, InvalidArgumentError, UnknownNameError, UnsupportedModelError,
                          invalid)

__all__ = ["Constraint", "validate_params", "real", "integer", "integers", "boolean", "choice", "model", "roles",
           "random_state", "optional", "names", "check_free_and_fixed"]


@dataclass(frozen=True)
class Constraint:
    """What one parameter accepts.

    Attributes
    ----------
    accepted : str
        The accepted values, as the error message states them.
    check : callable
        ``check(value) -> value`` (normalised) or raise ``ValueError`` (a bad
        value), ``LookupError`` (an unknown name) or ``TypeError`` (a bad type).
    """

    accepted: str
    check: Callable


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def real(low=None, high=None, *, strict_low=False, unit=""):
    """A finite real number in [low, high] (``strict_low``: > low)."""
    bound = ""
    if low is not None:
        bound = f" {'>' if strict_low else '>='} {low:g}"
    text = f"a finite number{bound}" + (f" ({unit})" if unit else "")

    def check(value):
        if not _is_real(value):
            raise TypeError
        if not math.isfinite(value) or (low is not None and (value <= low if strict_low else value < low)) \
                or (high is not None and value > high):
            raise ValueError
        return float(value)

    return Constraint(text, check)


def integer(low=0):
    """An integer >= low."""

    def check(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError
        if value < low:
            raise ValueError
        return int(value)

    return Constraint("a positive integer" if low == 1 else f"an integer >= {low}", check)


def integers(low=0, length=None, what="integers"):
    """A sequence of integers >= low (of a given length)."""
    count = f"{length} " if length else ""
    text = f"a tuple of {count}{what} >= {low}"

    def check(value):
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError from None
        if isinstance(value, (str, bytes)) or (length is not None and len(items) != length):
            raise ValueError
        for item in items:
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral) or item < low:
                raise ValueError
        return tuple(int(i) for i in items)

    return Constraint(text, check)


def lengths(unit="ms", what="window lengths"):
    """A sequence of positive finite numbers, increasing (e.g. window lengths); may be empty."""
    text = f"a tuple of increasing positive {what} ({unit}); () for none"

    def check(value):
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError from None
        if isinstance(value, (str, bytes)) or not all(_is_real(x) and math.isfinite(x) and x > 0 for x in items) \
                or any(b <= a for a, b in zip(items, items[1:])):
            raise ValueError
        return tuple(float(x) for x in items)

    return Constraint(text, check)


def boolean():
    """True or False."""

    def check(value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError
        return bool(value)

    return Constraint("True or False", check)


def choice(*names):
    """One of the strings ``names`` (an :class:`~hhsym.errors.UnknownNameError` for another string)."""
    text = "one of " + ", ".join(repr(n) for n in names)

    def check(value):
        if not isinstance(value, str):
            raise TypeError
        if value not in names:
            raise LookupError
        return value

    return Constraint(text, check)


def model(gated=True, pools=False):
    """A ConductanceModel (with at least one gated channel; with calcium pools only if ``pools``)."""
    from hhsym.model import ConductanceModel

    text = "a hhsym.ConductanceModel (e.g. hhsym.library.hodgkin_huxley())"
    if gated:
        text += " with at least one gated channel (rates to fit)"

    def check(value):
        if not isinstance(value, ConductanceModel):
            raise ValueError  # InvalidArgumentError, as hhsym.model.check_model
        if gated and not value.gates:
            raise ValueError
        if value.pools and not pools:
            names = ", ".join(repr(p.name) for p in value.pools)
            raise UnsupportedModelError(
                f"the estimators cannot fit model {value.name!r}: its calcium pool state(s) {names} "
                "(non-gate states with their own ODE, and any rates that use them) are not supported. "
                "Supported templates: states V and gates whose rates depend on V only"
            )
        return value

    return Constraint(text, check)


#: Spellings of a gate's role: +1 activating (opens on depolarisation), -1 inactivating.
ROLE_NAMES = {"+": 1, "activating": 1, "+1": 1, "-": -1, "inactivating": -1, "-1": -1}


def roles():
    """None or a dict gate name -> role (+1/-1, "+"/"-", "activating"/"inactivating"); values as +1/-1."""

    def check(value):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise TypeError
        out = {}
        for gate, role in value.items():
            if not isinstance(gate, str):
                raise TypeError
            if isinstance(role, str) and role.strip().lower() in ROLE_NAMES:
                out[gate] = ROLE_NAMES[role.strip().lower()]
            elif not isinstance(role, (bool, np.bool_, str)) and _is_real(role) and float(role) in (1.0, -1.0):
                out[gate] = int(role)
            else:
                raise ValueError
        return out

    return Constraint('None or a dict gate name -> +1 / "activating" or -1 / "inactivating", '
                      'e.g. {"m": 1, "h": -1}', check)


def names(what="parameter names"):
    """A sequence of distinct strings, or one comma-separated string (``"g_Na,g_K"``); may be empty."""
    text = f"a tuple of distinct {what} (or one comma-separated string); () for none"

    def check(value):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError from None
        if not all(isinstance(x, str) and x for x in items):
            raise TypeError
        if len(set(items)) != len(items):
            raise ValueError
        return items

    return Constraint(text, check)


def random_state():
    """None, a non-negative integer seed or a numpy Generator."""

    def check(value):
        if value is None or isinstance(value, np.random.Generator):
            return value
        return integer(0).check(value)

    return Constraint("None, a non-negative integer seed or a numpy.random.Generator", check)


def optional(constraint):
    """None or what ``constraint`` accepts."""

    def check(value):
        return None if value is None else constraint.check(value)

    return Constraint(f"None or {constraint.accepted}", check)


def validate_params(estimator):
    """Check every declared parameter of ``estimator``; the normalised values by name.

    Parameters
    ----------
    estimator : object
        An estimator with a ``_parameter_constraints`` dict and the parameters as attributes.

    Returns
    -------
    dict
        Parameter name -> normalised value (tuples for sequences, floats for reals).

    Raises
    ------
    ArgumentTypeError, InvalidArgumentError, UnknownNameError
        Naming the first offending parameter, its value and what it accepts
        (:class:`~hhsym.errors.UnknownNameError`, an ``InvalidArgumentError``, for a name outside a :func:`choice`).
    """
    out = {}
    for name, constraint in estimator._parameter_constraints.items():
        value = getattr(estimator, name)
        try:
            out[name] = constraint.check(value)
        except HHSymError:  # a check's own message (e.g. UnsupportedModelError) says more
            raise
        except TypeError:
            raise invalid(name, value, constraint.accepted, cls=ArgumentTypeError) from None
        except LookupError:
            raise invalid(name, value, constraint.accepted, cls=UnknownNameError) from None
        except ValueError:
            raise invalid(name, value, constraint.accepted, cls=InvalidArgumentError) from None
    return out


def check_free_and_fixed(model, free, fixed, start):
    """Raise unless ``free`` scalars and ``fixed`` gates fit ``model`` and ``start`` (FormEstimator; RateEstimator
    with ``start="model"``).

    Parameters
    ----------
    model : ConductanceModel
    free : tuple of str
        Scalars to fit (:class:`~hhsym.estimate.rates.scalars.ScalarParameters` names the first unusable one).
    fixed : tuple of str
        Gates kept as the template writes them: gate names of ``model``, with ``start == "model"``,
        not all of them unless scalars are fitted.
    start : str
    """
    if free:
        from hhsym.estimate.rates.scalars import ScalarParameters

        ScalarParameters(model, free)
    gates = [g.name for g in model.gates]
    for name in fixed:
        if name not in gates:
            raise invalid("fixed", list(fixed), f"gate names of {model.name} ({', '.join(gates)})")
    if fixed and start != "model":
        raise invalid("fixed", list(fixed), "() with start='roles' (kept gates need start='model': "
                      "their rates are the template's)")
    if fixed and len(fixed) == len(gates) and not free:
        raise invalid("fixed", list(fixed), "fewer than all gates, or scalars to fit (free=...)")
