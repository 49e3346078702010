"""Argument checks and small helpers shared by the stimulus classes.

Each check returns the value as a float (or int) or raises an
:class:`~hhsym.errors.HHSymError` naming the argument (see :func:`hhsym.errors.invalid`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from hhsym.errors import ArgumentTypeError, invalid
from hhsym.validate import check_seed

_BP_RTOL = 1e-11


def _real(name, value, accepted, *, allow_inf=False):
    """Return ``value`` as a float, or raise an error naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise invalid(name, value, accepted)
    return v


def _amplitude(name, value):
    return _real(name, value, "a finite number (µA/cm²)")


def _time(name, value):
    return _real(name, value, "a finite number (ms)")


def _stop(value, start, *, allow_inf=True):
    what = "a number (ms) greater than start" + (", or inf" if allow_inf else "")
    if value is None and allow_inf:
        return math.inf
    stop = _real("stop", value, what, allow_inf=allow_inf)
    if not stop > start:
        raise invalid("stop", value, what, hint=f"start={start!r}")
    return stop


def _positive(name, value, unit):
    accepted = f"a positive finite number ({unit})"
    v = _real(name, value, accepted)
    if not v > 0:
        raise invalid(name, value, accepted)
    return v


def _nonnegative(name, value, unit):
    accepted = f"a non-negative finite number ({unit})"
    v = _real(name, value, accepted)
    if v < 0:
        raise invalid(name, value, accepted)
    return v


def _seed(value):
    return check_seed(value)


def _t_stop(value):
    return _positive("t_stop", value, "ms")


def _as_times(t):
    """Convert ``t`` (ms) to a float64 array; tell whether it was a scalar."""
    accepted = "a finite time or array of finite times (ms)"
    if isinstance(t, (bool, np.bool_)):
        raise invalid("t", t, accepted, cls=ArgumentTypeError)
    try:
        arr = np.asarray(t)
    except Exception:  # pragma: no cover - exotic inputs
        raise invalid("t", t, accepted, cls=ArgumentTypeError) from None
    if arr.dtype.kind not in "iuf":
        raise invalid("t", t, accepted, cls=ArgumentTypeError)
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        raise invalid("t", t, accepted, hint=f"element {bad} is {float(arr.ravel()[bad])!r}")
    return arr, arr.ndim == 0


def _bp_tol(t):
    """Breakpoints closer than this (ms) near time ``t`` (ms) are merged."""
    return _BP_RTOL * max(1.0, abs(t))


def _json_float(x):
    """inf -> None so that the dict stays strict JSON."""
    return None if math.isinf(x) else float(x)


def _window(t, start, stop):
    return (t >= start) & (t < stop)


def _data_array(name, value, unit):
    """1-D finite float64 copy of ``value`` or an error naming the first bad element."""
    accepted = f"a 1-D array of finite numbers ({unit})"
    try:
        arr = np.asarray(value)
    except Exception:  # pragma: no cover - exotic inputs
        raise invalid(name, value, accepted, cls=ArgumentTypeError) from None
    if arr.dtype.kind not in "iuf":
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    if arr.ndim != 1:
        raise invalid(name, value, accepted, hint=f"got an array of shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise invalid(name, value, accepted, hint=f"{name}[{bad[0]}] is {float(arr[bad[0]])!r}")
    return arr
