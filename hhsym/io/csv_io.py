"""CSV files of one trace: writing (atomic) and reading with line-numbered errors.

Format: optional leading comment lines ``# key: <JSON value>`` carrying
``meta``, a header line ``t,V,I[,state,...]`` and one row per sample; floats
are written with ``repr`` so that float64 values read back bit-exactly.
"""

from __future__ import annotations

import json

import numpy as np

from hhsym.errors import InvalidArgumentError, TraceFileError
from hhsym.atomic import atomic_write
from hhsym.io.trace_checks import _CORE, _check_state_name


def _csv_lines(trace, include_meta):
    """Lines (with newline) of the CSV serialisation of ``trace``."""
    if include_meta:
        for key, value in trace.meta.items():
            yield f"# {key}: {json.dumps(value, allow_nan=False)}\n"
    names = list(trace.states)
    yield ",".join(list(_CORE) + names) + "\n"
    columns = [trace.t.tolist(), trace.V.tolist(), trace.I.tolist()]
    columns += [trace.states[n].tolist() for n in names]
    for row in zip(*columns):
        yield ",".join(map(repr, row)) + "\n"


def write_csv(path, trace, include_meta):
    """Write ``trace`` (a :class:`Trace`) to ``path`` as CSV, atomically."""

    def write(f):
        for line in _csv_lines(trace, include_meta):
            f.write(line)

    atomic_write(path, write, binary=False)


def _parse_meta_comment(text, meta):
    body = text[1:].strip()
    key, sep, value = body.partition(":")
    key = key.strip()
    if not sep or not key:
        return
    value = value.strip()
    try:
        meta[key] = json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        meta[key] = value


def _reject_constant(name):
    raise ValueError(f"{name} is not accepted in meta")


def read_csv(path):
    """(t, V, I, states, meta) from a CSV trace file, checked line by line."""
    try:
        f = open(path, encoding="utf-8-sig", newline=None)
    except FileNotFoundError:
        raise TraceFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise TraceFileError(f"{path}: cannot open: {exc}") from None
    meta = {}
    header = None
    rows = []
    lines = []
    try:
        with f:
            for lineno, line in enumerate(f, 1):
                s = line.strip()
                if not s:
                    continue
                if s.startswith("#"):
                    if header is None:
                        _parse_meta_comment(s, meta)
                    continue
                cells = [c.strip() for c in s.split(",")]
                if header is None:
                    header = _check_header(path, lineno, cells)
                    continue
                if len(cells) != len(header):
                    raise TraceFileError(
                        f"{path}: line {lineno}: expected {len(header)} cells "
                        f"({','.join(header)}), found {len(cells)}"
                    )
                try:
                    rows.append(list(map(float, cells)))
                except ValueError:
                    for name, cell in zip(header, cells):
                        try:
                            float(cell)
                        except ValueError:
                            raise TraceFileError(
                                f"{path}: line {lineno}, column {name!r}: "
                                f"cannot read {cell!r} as a number"
                            ) from None
                lines.append(lineno)
    except UnicodeDecodeError as exc:
        raise TraceFileError(f"{path}: not a UTF-8 text file ({exc})") from None
    if header is None:
        raise TraceFileError(f"{path}: empty file (no header line 't,V,I,...')")
    if len(rows) < 2:
        raise TraceFileError(f"{path}: {len(rows)} sample(s); a trace needs at least 2")
    data = np.array(rows, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(data))
    if bad.size:
        r, c = (int(x) for x in bad[0])
        raise TraceFileError(
            f"{path}: line {lines[r]}, column {header[c]!r}: "
            f"value {float(data[r, c])!r} is not finite"
        )
    col = {name: data[:, j] for j, name in enumerate(header)}
    t = col["t"]
    nonincr = np.flatnonzero(~(np.diff(t) > 0))
    if nonincr.size:
        r = int(nonincr[0]) + 1
        raise TraceFileError(
            f"{path}: line {lines[r]}: t={float(t[r])!r} is not greater than the "
            f"previous t={float(t[r - 1])!r} (line {lines[r - 1]}); t must increase strictly"
        )
    states = {name: col[name] for name in header if name not in _CORE}
    return t, col["V"], col["I"], states, meta


def _check_header(path, lineno, cells):
    where = f"{path}: line {lineno}: header {','.join(cells)!r}"
    missing = [c for c in _CORE if c not in cells]
    if missing:
        raise TraceFileError(
            f"{where} lacks column(s) {', '.join(map(repr, missing))}; "
            "expected 't,V,I' followed by optional state columns"
        )
    seen = set()
    for c in cells:
        if c in seen:
            raise TraceFileError(f"{where} has the column {c!r} twice")
        seen.add(c)
        if c not in _CORE:
            try:
                _check_state_name(c)
            except InvalidArgumentError:
                raise TraceFileError(f"{where}: {c!r} is not a usable column name") from None
    return cells
