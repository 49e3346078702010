"""Argument checks shared by :class:`Trace`, :class:`TraceSet` and the file readers.

Each check returns a clean copy of its argument or raises an
:class:`~hhsym.errors.HHSymError` naming the argument (see :func:`hhsym.errors.invalid`).
"""

from __future__ import annotations

import json
import math
import numbers
import os

import numpy as np

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, invalid
from hhsym.validate import check_seed

_UNIFORM_RTOL = 1e-6
_CORE = ("t", "V", "I")
_BAD_NAME_CHARS = set(',#/\\"\'')


def _array(name, value, unit, ndim, check_finite=True):
    """Finite float64 copy of ``value`` with ``ndim`` dimensions, or an error.

    A read-only C-contiguous float64 array (whose base, if any, is read-only)
    is kept without copying.  ``check_finite=False`` skips the scan for
    NaN/inf, for arrays known to be finite (simulation output the kernel
    checked); everything else is checked as usual.
    """
    shape = "1-D array" if ndim == 1 else "2-D array (n_traces, n_samples)"
    accepted = f"a {shape} of finite numbers ({unit})"
    try:
        arr = np.asarray(value)
    except Exception:  # pragma: no cover - exotic inputs
        raise invalid(name, value, accepted, cls=ArgumentTypeError) from None
    if arr.dtype.kind not in "iuf":
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    if arr.ndim != ndim:
        raise invalid(name, value, accepted, hint=f"got an array of shape {arr.shape}")
    if not (arr.dtype == np.float64 and arr.flags.c_contiguous and not arr.flags.writeable
            and (arr.base is None or not arr.base.flags.writeable)):
        arr = np.array(arr, dtype=np.float64, order="C")  # a private copy; read-only input is kept
    if not check_finite:
        return arr
    bad = np.zeros((0,)) if np.isfinite(arr).all() else np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        where = ", ".join(map(str, idx))
        raise invalid(name, value, accepted, hint=f"{name}[{where}] is {float(arr[idx])!r}")
    return arr


def _times(t):
    t = _array("t", t, "ms", 1)
    if t.size < 2:
        raise invalid("t", t, "at least 2 samples (ms)")
    bad = np.flatnonzero(~(np.diff(t) > 0))
    if bad.size:
        j = int(bad[0]) + 1
        raise invalid(
            "t", t, "strictly increasing times (ms)",
            hint=f"t[{j}]={float(t[j])!r} is not greater than t[{j - 1}]={float(t[j - 1])!r}",
        )
    return t


def _check_state_name(name):
    accepted = (
        "a non-empty str other than 't', 'V', 'I', without surrounding spaces, "
        "control characters or any of , # / \\ \" '"
    )
    if not isinstance(name, str):
        raise invalid("states", name, f"keys that are {accepted}", cls=ArgumentTypeError)
    if (
        not name
        or name in _CORE
        or name != name.strip()
        or not name.isprintable()
        or _BAD_NAME_CHARS & set(name)
    ):
        raise invalid("states", name, f"keys that are {accepted}")
    return name


def _states(states, shape, check_finite=True):
    """Checked read-only arrays of ``states`` (name -> array of ``shape``); see :func:`_array`."""
    if states is None:
        return {}
    if not isinstance(states, dict):
        raise invalid("states", states, "a dict name -> array", cls=ArgumentTypeError)
    out = {}
    for name, value in states.items():
        _check_state_name(name)
        arg = f"states[{name!r}]"
        arr = _array(arg, value, "state units", len(shape), check_finite)
        if arr.shape != shape:
            raise invalid(arg, value, f"an array of shape {shape} like V", hint=f"got {arr.shape}")
        arr.flags.writeable = False
        out[name] = arr
    return out


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _meta(meta):
    """JSON-normalised deep copy of ``meta``."""
    accepted = "a JSON-safe dict (str keys without ':' or newlines; no NaN/inf)"
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise invalid("meta", meta, accepted, cls=ArgumentTypeError)
    for key in meta:
        if not isinstance(key, str) or not key.strip() or ":" in key or not key.isprintable():
            raise invalid("meta", meta, accepted, hint=f"bad key {key!r}")
    try:
        text = json.dumps(meta, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise invalid("meta", meta, accepted, hint=str(exc)) from None
    return json.loads(text)


def _nonneg(name, value, unit):
    accepted = f"a non-negative finite number ({unit})"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise invalid(name, value, accepted)
    return v


def _seed(value):
    return check_seed(value)


def _uniform_step(t):
    """(is_uniform, dt_mean, min step, max step) of the strictly increasing ``t``."""
    steps = np.diff(t)
    dt = (t[-1] - t[0]) / (t.size - 1)
    ok = bool(np.max(np.abs(steps - dt)) <= _UNIFORM_RTOL * dt)
    return ok, float(dt), float(steps.min()), float(steps.max())


def _dt_or_raise(t, owner):
    ok, dt, lo, hi = _uniform_step(t)
    if not ok:
        raise InvalidArgumentError(
            f"{owner}.dt is undefined: the sampling is not uniform (steps range from "
            f"{lo!r} to {hi!r} ms, more than {_UNIFORM_RTOL:g} relative apart); "
            f"check {owner}.is_uniform first or use t directly"
        )
    return dt


def _extension(path, accepted, cls):
    try:
        p = os.fspath(path)
    except TypeError:
        raise invalid("path", path, "a str or os.PathLike", cls=ArgumentTypeError) from None
    if not isinstance(p, str):
        p = os.fsdecode(p)
    ext = os.path.splitext(p)[1].lower()
    if ext not in accepted:
        raise invalid("path", p, "a path ending in " + " or ".join(accepted), cls=cls)
    return p, ext
