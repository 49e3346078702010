"""Small JSON entries in hhsym's cache directory, each named by a digest of its key.

What :func:`hhsym.simulate` would otherwise recompute with sympy in every new
process (that a model's rates passed their check, the source of its
steady-state functions) is kept here, beside the generated kernels
(:mod:`hhsym.codegen`).  Entries hold JSON numbers, strings, lists and dicts
only: nothing read back is executed, imported or unpickled.  An entry is
``{"key": key, "value": value}`` in ``hhsym_<kind>_<digest of key>.json``;
one whose file is missing, unreadable or not JSON, or whose stored key is not
the key asked for, is a miss.  Writes are atomic (:func:`hhsym.atomic.atomic_write`)
and best effort: a cache that cannot be written costs time, never a result.

The directory is ``$HHSYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/hhsym`` (default
``~/.cache/hhsym``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from pathlib import Path

from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError

__all__ = ["cache_dir", "source_digest", "entry_path", "read_entry", "write_entry"]


def cache_dir() -> Path:
    """Directory holding generated kernel modules, numba's caches and the JSON entries.

    Returns
    -------
    pathlib.Path
        ``$HHSYM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hhsym`` or ``~/.cache/hhsym``.
    """
    env = os.environ.get("HHSYM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hhsym"


def source_digest(modules) -> str:
    """Hash (16 hex digits) of the source of ``modules``, in name order.

    Parameters
    ----------
    modules : iterable of module
        The modules whose code shapes a cached value.

    Returns
    -------
    str
    """
    text = "".join(inspect.getsource(m) for m in sorted(modules, key=lambda m: m.__name__))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(key):
    """``key`` as the JSON text it is stored and compared as."""
    return json.dumps(key, sort_keys=True, allow_nan=False, separators=(",", ":"))


def entry_path(kind, key) -> Path:
    """File of the entry ``key`` of ``kind`` (a lower-case word, e.g. ``"rates_ok"``).

    Parameters
    ----------
    kind : str
        Letters, digits and underscores.
    key : JSON-serialisable
        Everything the cached value depends on (finite floats only).

    Returns
    -------
    pathlib.Path
    """
    if not re.fullmatch(r"[a-z0-9_]+", kind):
        raise ValueError(f"cache kind {kind!r} is not a lower-case word")
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()[:24]
    return cache_dir() / f"hhsym_{kind}_{digest}.json"


def read_entry(kind, key):
    """The value stored under ``key``, or None on a miss.

    Parameters
    ----------
    kind : str
        As for :func:`entry_path`.
    key : JSON-serialisable
        As for :func:`entry_path`.

    Returns
    -------
    object or None
        The JSON value (dict, list, str, number or bool).
    """
    try:
        with open(entry_path(kind, key), encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or _canonical(data.get("key")) != _canonical(key):
            return None
    except (OSError, ValueError, TypeError):
        return None
    return data.get("value")


def write_entry(kind, key, value):
    """Store ``value`` under ``key`` (atomically; silently skipped where the cache cannot be written).

    Parameters
    ----------
    kind : str
        As for :func:`entry_path`.
    key : JSON-serialisable
        As for :func:`entry_path`.
    value : JSON-serialisable
        The value (finite floats only).
    """
    try:
        path = entry_path(kind, key)
        text = json.dumps({"key": key, "value": value}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):  # not JSON (a non-finite number): not stored
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(text), error=HHSymError)
    except (OSError, HHSymError):
        pass
