"""Rebuilding stimuli from :meth:`Stimulus.to_dict` output."""

from __future__ import annotations

import math

from hhsym.errors import ArgumentTypeError, UnknownNameError, invalid
from hhsym.stimuli.analytic import PulseTrain, Ramp, Sine, Step
from hhsym.stimuli.base import Sum
from hhsym.stimuli.data import FromArray, OUNoise

_CLASSES = {c.__name__: c for c in (Step, Ramp, PulseTrain, Sine, OUNoise, FromArray, Sum)}
_INF_KEYS = {"stop"}


def stimulus_from_dict(d):
    """Rebuild a stimulus from :meth:`Stimulus.to_dict` output.

    Parameters
    ----------
    d : dict
        ``{"type": <class name>, <constructor arguments>...}``; ``stop`` may
        be ``None`` for ``inf``.

    Returns
    -------
    Stimulus
        The stimulus described.
    """
    if not isinstance(d, dict):
        raise invalid("d", d, "a dict made by Stimulus.to_dict()", cls=ArgumentTypeError)
    kind = d.get("type")
    if kind not in _CLASSES:
        raise invalid("d['type']", kind, f"one of {sorted(_CLASSES)}", cls=UnknownNameError)
    cls = _CLASSES[kind]
    args = {k: v for k, v in d.items() if k != "type"}
    if cls is Sum:
        terms = args.pop("terms", None)
        if args or not isinstance(terms, list):
            raise invalid("d", d, "{'type': 'Sum', 'terms': [<stimulus dicts>]}")
        return Sum(*[stimulus_from_dict(x) for x in terms])
    for k in _INF_KEYS & args.keys():
        if args[k] is None:
            args[k] = math.inf
    try:
        return cls(**args)
    except TypeError as exc:
        if isinstance(exc, ArgumentTypeError):
            raise
        raise invalid(
            "d", d, f"the constructor arguments of {kind}", hint=str(exc)
        ) from None
