"""NPZ archives of one trace or a set: writing (atomic, no pickles) and reading.

Format: arrays ``t``, ``V``, ``I`` (1-D for a trace, ``(n_traces, n_samples)``
for a set), ``state_<name>`` for each state, ``meta`` (a JSON string) and
``format``; read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np

from hhsym.errors import TraceFileError
from hhsym.atomic import atomic_write

_FORMAT = "hhsym.trace/1"
_STATE_PREFIX = "state_"


def _write_npz(f, arrays):
    np.savez(f, **arrays)


def _npz_arrays(obj):
    arrays = {
        "format": np.array(_FORMAT),
        "t": obj.t,
        "V": obj.V,
        "I": obj.I,
        "meta": np.array(json.dumps(obj.meta, allow_nan=False)),
    }
    for name, arr in obj.states.items():
        arrays[_STATE_PREFIX + name] = arr
    return arrays


def write_npz(path, obj):
    """Write ``obj`` (a :class:`Trace` or :class:`TraceSet`) to ``path``, atomically."""
    arrays = _npz_arrays(obj)
    atomic_write(path, lambda f: _write_npz(f, arrays), binary=True)


def _npz_get(path, npz, name, ndims):
    if name not in npz.files:
        raise TraceFileError(f"{path}: missing array {name!r} (found {sorted(npz.files)})")
    try:
        arr = npz[name]
    except Exception as exc:  # pickled/object arrays, corrupt members
        raise TraceFileError(f"{path}: array {name!r} cannot be read ({exc})") from None
    if arr.dtype.kind not in "iuf":
        raise TraceFileError(f"{path}: array {name!r} has dtype {arr.dtype}; expected numbers")
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise TraceFileError(f"{path}: array {name!r} has shape {arr.shape}; expected {want}")
    arr = arr.astype(np.float64, copy=False)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = tuple(int(i) for i in bad[0])
        raise TraceFileError(
            f"{path}: array {name!r}: element [{', '.join(map(str, idx))}] is "
            f"{float(arr[idx])!r}; expected finite numbers"
        )
    return arr


def read_npz(path):
    """(t, V, I, states, meta) from an .npz, V/I 1-D or 2-D."""
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise TraceFileError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise TraceFileError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise TraceFileError(f"{path}: holds a single array, not an .npz archive of t, V, I")
    with npz:
        t = _npz_get(path, npz, "t", (1,))
        V = _npz_get(path, npz, "V", (1, 2))
        I = _npz_get(path, npz, "I", (1, 2))
        if t.size < 2:
            raise TraceFileError(f"{path}: array 't' has {t.size} sample(s); at least 2 needed")
        nonincr = np.flatnonzero(~(np.diff(t) > 0))
        if nonincr.size:
            j = int(nonincr[0]) + 1
            raise TraceFileError(
                f"{path}: array 't': t[{j}]={float(t[j])!r} is not greater than "
                f"t[{j - 1}]={float(t[j - 1])!r}; t must increase strictly"
            )
        shape = (t.size,) if V.ndim == 1 else (V.shape[0], t.size)
        for name, arr in (("V", V), ("I", I)):
            if arr.shape != shape or (arr.ndim == 2 and arr.shape[0] < 1):
                raise TraceFileError(
                    f"{path}: array {name!r} has shape {arr.shape}; expected {shape} to match t"
                )
        states = {}
        for key in npz.files:
            if key.startswith(_STATE_PREFIX):
                name = key[len(_STATE_PREFIX):]
                arr = _npz_get(path, npz, key, (V.ndim,))
                if arr.shape != shape:
                    raise TraceFileError(
                        f"{path}: array {key!r} has shape {arr.shape}; expected {shape}"
                    )
                states[name] = arr
        meta = {}
        if "meta" in npz.files:
            try:
                meta = json.loads(str(npz["meta"]))
            except Exception as exc:
                raise TraceFileError(f"{path}: array 'meta' is not a JSON string ({exc})") from None
            if not isinstance(meta, dict):
                raise TraceFileError(f"{path}: array 'meta' does not hold a JSON object")
    return t, V, I, states, meta
