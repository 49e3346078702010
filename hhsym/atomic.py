"""Atomic writing: files and whole folders are built beside their target, then swapped in.

Every file hhsym writes (traces, figures, reports, generated kernels, fits) goes through
:func:`atomic_write`, and every output folder (``hhsym demo``, ``hhsym report``) through
:func:`atomic_folder`, so a crash never leaves a half-written result, or a folder mixing an
old run's files with a new one's, in place of a good one.  Temporary names start with a dot
and end in ``.<pid>.tmp``; those left by a process that was killed (``kill -9``) are removed
the next time the same target is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile

from hhsym.errors import HHSymError, TraceFileError

__all__ = ["atomic_write", "atomic_folder"]

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
        _remove_stale(directory, os.path.basename(path))
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=f".{os.getpid()}.tmp", dir=directory
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


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale(directory, name):
    """Remove temporaries of ``name`` left in ``directory`` by processes that no longer run.

    A folder swap interrupted between its two renames leaves the previous
    folder as ``.<name>.old.<pid>.tmp`` and no ``name``: it is put back.
    """
    pattern = re.compile(r"^\." + re.escape(name) + r"\.(old\.)?.*?(\d+)\.tmp$")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry)
        if m is None or _alive(int(m.group(2))):
            continue
        full = os.path.join(directory, entry)
        target = os.path.join(directory, name)
        try:
            if m.group(1) and not os.path.exists(target):
                os.rename(full, target)  # the swap stopped half-way: restore the previous result
            elif os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        except OSError:
            pass


@contextlib.contextmanager
def atomic_folder(path, error=HHSymError):
    """Build a folder beside ``path`` and swap it in whole when the block completes.

    Usage::

        with atomic_folder("report") as work:
            ...  # write every file into the folder ``work``

    On success the previous ``path`` (if any) is replaced by ``work`` with
    two renames (the old folder is moved aside, the new one moved in, the
    old one deleted); on any exception — signals turned into exceptions
    included — ``work`` is deleted and ``path`` is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        The output folder.  Its parent must exist.
    error : type, optional
        Exception class that OS errors are turned into.

    Yields
    ------
    str
        The temporary folder to write into.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.dirname(path), os.path.basename(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise error(f"{path}: cannot write a folder here: it is an existing file")
    _remove_stale(parent, name)
    try:
        work = tempfile.mkdtemp(prefix=f".{name}.", suffix=f".{os.getpid()}.tmp", dir=parent)
    except OSError as exc:
        raise error(f"{path}: cannot write: {exc}") from exc
    try:
        yield work
        os.chmod(work, 0o777 & ~_umask())
        old = None
        if os.path.exists(path):
            old = os.path.join(parent, f".{name}.old.{os.getpid()}.tmp")
            os.rename(path, old)
        os.rename(work, path)
    except BaseException as exc:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError):
            raise error(f"{path}: cannot write: {exc}") from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
