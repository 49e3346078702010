"""Atomic file writing: a temporary file next to the target, then :func:`os.replace`.

Every file hhsym writes (traces, figures, reports, generated kernels, fits) goes through
:func:`atomic_write`, so a crash never leaves a half-written file in place of a good one.

Other modules that write files can reuse :func:`atomic_write`.
"""

from __future__ import annotations

import os
import tempfile

from hhsym.errors import TraceFileError

__all__ = ["atomic_write"]

_UMASK = None


def _umask():
    global _UMASK
    if _UMASK is None:
        current = os.umask(0o022)
        os.umask(current)
        _UMASK = current
    return _UMASK


def atomic_write(path, write, *, binary=False, error=TraceFileError):
    """Write via ``write(fileobj)`` to a temp file next to ``path``, then replace it.

    The temporary file is flushed and fsync'ed before it replaces ``path``; it
    gets the permissions of the file it replaces (or the default ones of a new
    file under the current umask), and it is removed on any failure, so that a
    failure midway leaves any previous file untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Target file.
    write : callable
        ``write(f)`` writes the whole content to the open file object ``f``.
    binary : bool, optional
        Open ``f`` in binary mode; else as UTF-8 text with ``"\\n"`` newlines.
        Default False.
    error : type, optional
        Exception class that OS errors are turned into (its message names
        ``path``). Default :class:`~hhsym.errors.TraceFileError`.

    Notes
    -----
    Exceptions raised by ``write`` propagate unchanged.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise error(f"{path}: cannot write: {exc}") from exc
    try:
        if os.path.exists(path):
            mode = os.stat(path).st_mode & 0o7777
        else:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        if binary:
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"{path}: cannot write: {exc}") from exc
        raise
    try:  # make the rename itself durable (best effort, POSIX only)
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
