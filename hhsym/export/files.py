"""Files the exporters write: path checks, identifiers from names, atomic text writes."""

from __future__ import annotations

import os
import re

from hhsym.atomic import atomic_write
from hhsym.errors import ArgumentTypeError, InvalidArgumentError, invalid

__all__ = ["check_file", "check_directory", "write_text", "slug"]


def slug(text, default="model"):
    """An identifier made from ``text`` (letters, digits, ``_``; not starting with a digit).

    Parameters
    ----------
    text : str
    default : str
        Used when nothing of ``text`` is left.

    Returns
    -------
    str
    """
    out = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")
    if not out:
        out = default
    if out[0].isdigit():
        out = "_" + out
    return out


def _path(path, argument):
    try:
        return os.fspath(path)
    except TypeError:
        raise invalid(argument, path, "a file path (str or os.PathLike)", cls=ArgumentTypeError) from None


def check_file(path, argument, suffix=None):
    """Check that ``path`` can be written as a file; return it as a str.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; its folder must exist and be writable.
    argument : str
        Argument name for error messages.
    suffix : str, optional
        Required ending (e.g. ``".py"``).

    Returns
    -------
    str

    Raises
    ------
    ArgumentTypeError
        If ``path`` is not a path.
    InvalidArgumentError
        If it is a folder, its folder is missing or not writable, or it lacks ``suffix``.
    """
    p = _path(path, argument)
    if suffix and not p.endswith(suffix):
        raise invalid(argument, p, f"a file name ending in {suffix!r}")
    if os.path.isdir(p):
        raise invalid(argument, p, "a file path, not an existing folder")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise invalid(argument, p, "a path in an existing folder", hint=f"{folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise invalid(argument, p, "a path in a writable folder", hint=f"{folder} is not writable")
    return p


def check_directory(path, argument):
    """Create ``path`` as a folder if needed and check it is writable; return it as a str.

    Parameters
    ----------
    path : str or os.PathLike
    argument : str
        Argument name for error messages.

    Returns
    -------
    str
    """
    p = _path(path, argument)
    if os.path.exists(p) and not os.path.isdir(p):
        raise invalid(argument, p, "a folder (it exists and is a file)")
    try:
        os.makedirs(p, exist_ok=True)
    except OSError as exc:
        raise invalid(argument, p, "a folder that can be created", hint=str(exc)) from None
    if not os.access(p, os.W_OK):
        raise invalid(argument, p, "a writable folder")
    return p


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8, via :func:`hhsym.atomic.atomic_write`).

    Parameters
    ----------
    path : str
    text : str

    Raises
    ------
    InvalidArgumentError
        If the operating system refuses the write.
    """
    atomic_write(path, lambda f: f.write(text), error=InvalidArgumentError)
