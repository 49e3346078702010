"""Small argument checks shared across modules (messages built with :func:`hhsym.errors.invalid`)."""

from __future__ import annotations

import numbers

import numpy as np

from hhsym.errors import ArgumentTypeError, invalid

__all__ = ["check_seed"]


def check_seed(value, argument="seed"):
    """Return ``value`` as an int if it is a non-negative integer seed, else raise.

    Parameters
    ----------
    value : int
        Seed of ``numpy.random.default_rng``.
    argument : str
        Argument name for the error message.

    Returns
    -------
    int
    """
    accepted = "a non-negative integer"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise invalid(argument, value, accepted, cls=ArgumentTypeError)
    if int(value) < 0:
        raise invalid(argument, value, accepted)
    return int(value)
