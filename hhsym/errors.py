"""Exceptions and warnings raised by hhsym.

Every error that reaches a user is an :class:`HHSymError`.  Subclasses also
derive from the matching built-in exception (``ValueError``, ``TypeError``,
``RuntimeError``) so that generic ``except ValueError`` code keeps working.
Messages name the offending argument, show the value received and say what is
accepted; :func:`invalid` builds such messages uniformly.
"""

from __future__ import annotations

__all__ = [
    "HHSymError",
    "InvalidArgumentError",
    "UnknownNameError",
    "ArgumentTypeError",
    "ModelError",
    "UnsupportedModelError",
    "TraceFileError",
    "SimulationError",
    "NotFittedError",
    "BackendUnavailableError",
    "IdentifiabilityWarning",
    "PoorFitWarning",
    "UndersampledStimulusWarning",
    "invalid",
]


class HHSymError(Exception):
    """Base class of every error raised by hhsym."""


class InvalidArgumentError(HHSymError, ValueError):
    """An argument has a value outside the accepted range or set."""


class UnknownNameError(InvalidArgumentError):
    """A name (parameter, state, method, rate, ...) is not one hhsym knows."""


class ArgumentTypeError(HHSymError, TypeError):
    """An argument has the wrong type."""


class ModelError(HHSymError, ValueError):
    """A model definition is inconsistent or an expression cannot be used."""


class UnsupportedModelError(ModelError):
    """A valid model uses a feature this part of hhsym does not support (yet), e.g. an exporter
    or an estimator meeting a calcium pool."""


class TraceFileError(HHSymError, ValueError):
    """A trace file is missing, malformed or holds invalid numbers."""


class SimulationError(HHSymError, RuntimeError):
    """A simulation diverged (NaN/inf, or gates left [0, 1])."""


class NotFittedError(HHSymError, AttributeError):
    """A fitted attribute was requested from an estimator before ``fit``."""


class BackendUnavailableError(HHSymError, RuntimeError):
    """An optional backend (e.g. PySR and its Julia runtime) cannot run here."""


class IdentifiabilityWarning(UserWarning):
    """The data cannot identify (part of) what is being estimated."""


class PoorFitWarning(UserWarning):
    """A fit does not reproduce the recordings it was fitted to (see ``quality_``)."""


class UndersampledStimulusWarning(UserWarning):
    """Simulated traces sample the injected current more coarsely than it changes: a fit of them sees
    only the samples, not the current the cell got."""


def _show(value, limit: int = 80) -> str:
    """``repr(value)``, shortened in the middle past ``limit`` characters (a long path keeps its file name)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head):]


def invalid(argument: str, value, accepted: str, cls=InvalidArgumentError, hint: str = ""):
    """Build an error naming ``argument``, the ``value`` received and what is ``accepted``.

    Parameters
    ----------
    argument : str
        Name of the argument as the user wrote it (e.g. ``"dt"``).
    value : object
        The value received; shown with ``repr`` (truncated).
    accepted : str
        Human description of accepted values (e.g. ``"a positive finite float (ms)"``).
    cls : type, optional
        The :class:`HHSymError` subclass to instantiate.
    hint : str, optional
        Extra sentence appended to the message.

    Returns
    -------
    HHSymError
        The exception instance (to be raised by the caller).
    """
    msg = f"invalid {argument}={_show(value)}: expected {accepted}"
    if hint:
        msg += f". {hint}"
    return cls(msg)
