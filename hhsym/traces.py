r"""Recorded (or simulated) traces: time, membrane voltage and injected current.

A :class:`Trace` is what a lab records: samples of time ``t`` (ms), membrane
voltage ``V`` (mV) and injected current ``I`` (µA/cm², positive =
depolarising), plus, when simulated, the hidden states (gates ...).  A
:class:`TraceSet` holds several traces on one time grid.

Files
-----
CSV (one trace)
    Optional leading comment lines ``# key: <JSON value>`` carrying ``meta``,
    a header line ``t,V,I[,state,...]`` and one row per sample; floats are
    written with ``repr`` so that float64 values read back bit-exactly.
    Other ``#`` lines and blank lines are ignored; the columns ``t``, ``V``,
    ``I`` may come in any order, further columns are states.
NPZ (one trace or a set)
    Arrays ``t``, ``V``, ``I`` (1-D for a trace, ``(n_traces, n_samples)``
    for a set), ``state_<name>`` for each state, ``meta`` (a JSON string) and
    ``format``; written without pickles and read with ``allow_pickle=False``.

All writing is atomic: the data goes to a temporary file in the target
directory, is flushed and fsync'ed, and then replaces the target with
:func:`os.replace`; a failure midway leaves any previous file untouched.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
import zipfile

import numpy as np

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, TraceFileError, invalid

__all__ = ["Trace", "TraceSet", "read_trace", "read_traces"]

_FORMAT = "hhsym.trace/1"
_UNIFORM_RTOL = 1e-6
_CORE = ("t", "V", "I")
_UNITS = {"t": "ms", "V": "mV", "I": "µA/cm²"}
_STATE_PREFIX = "state_"
_BAD_NAME_CHARS = set(',#/\\"\'')


class TraceIndexError(InvalidArgumentError, IndexError):
    """An index into a :class:`TraceSet` is out of range."""


# --------------------------------------------------------------------------- #
# argument checking
# --------------------------------------------------------------------------- #
def _array(name, value, unit, ndim):
    """Finite float64 copy of ``value`` with ``ndim`` dimensions, or an error."""
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
    arr = np.array(arr, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(arr))
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


def _states(states, shape):
    if states is None:
        return {}
    if not isinstance(states, dict):
        raise invalid("states", states, "a dict name -> array", cls=ArgumentTypeError)
    out = {}
    for name, value in states.items():
        _check_state_name(name)
        arg = f"states[{name!r}]"
        arr = _array(arg, value, "state units", len(shape))
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
    accepted = "a non-negative integer"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise invalid("seed", value, accepted, cls=ArgumentTypeError)
    if int(value) < 0:
        raise invalid("seed", value, accepted)
    return int(value)


def _add_noise_record(meta, sigma_V, seed):
    """Copy of ``meta`` whose ``"noise"`` list ends with this noise record."""
    meta = dict(meta)
    before = meta.get("noise", [])
    before = list(before) if isinstance(before, list) else [before]
    meta["noise"] = before + [{"sigma_V": sigma_V, "seed": seed}]
    return meta


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


# --------------------------------------------------------------------------- #
# atomic writing
# --------------------------------------------------------------------------- #
_UMASK = None


def _umask():
    global _UMASK
    if _UMASK is None:
        current = os.umask(0o022)
        os.umask(current)
        _UMASK = current
    return _UMASK


def _atomic_write(path, write, binary):
    """Write via ``write(fileobj)`` to a temp file next to ``path``, then replace it.

    Exceptions raised by ``write`` propagate unchanged; OS errors become
    :class:`TraceFileError`.  The temporary file is removed on any failure.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise TraceFileError(f"{path}: cannot write: {exc}") from exc
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
            raise TraceFileError(f"{path}: cannot write: {exc}") from exc
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


# --------------------------------------------------------------------------- #
# Trace
# --------------------------------------------------------------------------- #
class Trace:
    r"""One recording: time, membrane voltage, injected current (and hidden states).

    The arrays are copied and stored read-only; derive new traces with the
    methods (or by constructing a new one).

    Parameters
    ----------
    t : array_like, shape (n_samples,)
        Sample times (ms), finite and strictly increasing, at least 2.
    V : array_like, shape (n_samples,)
        Membrane voltage (mV).
    I : array_like, shape (n_samples,)
        Injected current (µA/cm², positive = depolarising).
    states : dict of str to array_like, optional
        Hidden states from a simulation (e.g. gates ``m, h, n``; dimensionless
        for gates), each of shape ``(n_samples,)``.
    meta : dict, optional
        JSON-safe description (model name, method, ``dt`` ...).

    Attributes
    ----------
    t, V, I : numpy.ndarray
        The samples (ms, mV, µA/cm²).
    states : dict of str to numpy.ndarray
        Hidden states (possibly empty).
    meta : dict
        Metadata.
    """

    def __init__(self, t, V, I, states=None, meta=None):
        self.t = _times(t)
        n = self.t.size
        self.V = _array("V", V, "mV", 1)
        self.I = _array("I", I, "µA/cm²", 1)
        for name, arr in (("V", self.V), ("I", self.I)):
            if arr.size != n:
                raise invalid(
                    name, arr, f"an array of the same length as t ({n})",
                    hint=f"got length {arr.size}",
                )
        for arr in (self.t, self.V, self.I):
            arr.flags.writeable = False
        self.states = _states(states, (n,))
        self.meta = _meta(meta)

    # -- properties ----------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.t.size)

    @property
    def duration(self) -> float:
        """``t[-1] - t[0]`` (ms)."""
        return float(self.t[-1] - self.t[0])

    @property
    def is_uniform(self) -> bool:
        """Whether all sampling steps equal the mean step within relative 1e-6."""
        return _uniform_step(self.t)[0]

    @property
    def dt(self) -> float:
        """The uniform sampling step (ms); raises if the sampling is not uniform."""
        return _dt_or_raise(self.t, "Trace")

    def __len__(self):
        return self.n_samples

    # -- derived traces --------------------------------------------------------
    def copy(self):
        """An independent copy (arrays and meta copied)."""
        return Trace(self.t, self.V, self.I, dict(self.states), self.meta)

    def with_noise(self, sigma_V, seed):
        """This trace with seeded Gaussian measurement noise added to ``V``.

        Parameters
        ----------
        sigma_V : float
            Standard deviation of the noise (mV), non-negative.
        seed : int
            Seed of ``numpy.random.default_rng`` (non-negative integer).

        Returns
        -------
        Trace
            A new trace; ``meta["noise"]`` lists the noise added so far as
            ``{"sigma_V": ..., "seed": ...}`` records.
        """
        sigma_V = _nonneg("sigma_V", sigma_V, "mV")
        seed = _seed(seed)
        rng = np.random.default_rng(seed)
        V = self.V + sigma_V * rng.standard_normal(self.n_samples)
        meta = _add_noise_record(self.meta, sigma_V, seed)
        return Trace(self.t, V, self.I, dict(self.states), meta)

    # -- writing -----------------------------------------------------------------
    def to_csv(self, path, include_meta=True):
        """Write the trace as CSV (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Target file.
        include_meta : bool, optional
            Write ``meta`` as leading ``# key: <JSON>`` comment lines. Default True.
        """
        p = os.fspath(path)

        def write(f):
            for line in _csv_lines(self, include_meta):
                f.write(line)

        _atomic_write(p, write, binary=False)

    def to_npz(self, path):
        """Write the trace as an uncompressed ``.npz`` archive (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Target file (written as given; no extension is appended).
        """
        arrays = _npz_arrays(self)
        _atomic_write(os.fspath(path), lambda f: _write_npz(f, arrays), binary=True)

    def save(self, path):
        """Write to ``.csv`` or ``.npz`` according to the extension of ``path``.

        Parameters
        ----------
        path : str or os.PathLike
            Target file ending in ``.csv`` or ``.npz``.
        """
        p, ext = _extension(path, (".csv", ".npz"), InvalidArgumentError)
        if ext == ".csv":
            self.to_csv(p)
        else:
            self.to_npz(p)

    def __repr__(self):
        n = self.n_samples
        ok, dt, _, _ = _uniform_step(self.t)
        grid = f"dt={dt:.6g} ms" if ok else "non-uniform"
        states = f", states={list(self.states)}" if self.states else ""
        meta = f", meta keys={list(self.meta)}" if self.meta else ""
        return (
            f"Trace(n_samples={n}, t=[{float(self.t[0]):.6g}, {float(self.t[-1]):.6g}] ms, "
            f"{grid}, V in [{float(self.V.min()):.6g}, {float(self.V.max()):.6g}] mV, "
            f"I in [{float(self.I.min()):.6g}, {float(self.I.max()):.6g}] µA/cm²"
            f"{states}{meta})"
        )


# --------------------------------------------------------------------------- #
# TraceSet
# --------------------------------------------------------------------------- #
class TraceSet:
    r"""Several traces sharing one time grid.

    Parameters
    ----------
    t : array_like, shape (n_samples,)
        Sample times (ms), finite and strictly increasing, at least 2.
    V : array_like, shape (n_traces, n_samples)
        Membrane voltages (mV), one row per trace.
    I : array_like, shape (n_traces, n_samples)
        Injected currents (µA/cm²).
    states : dict of str to array_like, optional
        Hidden states, each of shape ``(n_traces, n_samples)``.
    meta : dict, optional
        JSON-safe metadata of the whole set.
    """

    def __init__(self, t, V, I, states=None, meta=None):
        self.t = _times(t)
        n = self.t.size
        self.V = _array("V", V, "mV", 2)
        self.I = _array("I", I, "µA/cm²", 2)
        if self.V.shape[0] < 1 or self.V.shape[1] != n:
            raise invalid(
                "V", self.V, f"an array of shape (n_traces >= 1, {n}) matching t",
                hint=f"got shape {self.V.shape}",
            )
        if self.I.shape != self.V.shape:
            raise invalid(
                "I", self.I, f"an array of the same shape as V {self.V.shape}",
                hint=f"got shape {self.I.shape}",
            )
        for arr in (self.t, self.V, self.I):
            arr.flags.writeable = False
        self.states = _states(states, self.V.shape)
        self.meta = _meta(meta)

    @classmethod
    def from_traces(cls, traces, meta=None):
        """Stack traces that share the same time grid.

        Parameters
        ----------
        traces : sequence of Trace
            At least one trace; all with identical ``t`` and the same state names.
        meta : dict, optional
            Metadata of the set; by default the items common to all traces.

        Returns
        -------
        TraceSet
            The stacked traces.
        """
        try:
            traces = list(traces)
        except TypeError:
            raise invalid("traces", traces, "a sequence of Trace", cls=ArgumentTypeError) from None
        if not traces:
            raise invalid("traces", traces, "a non-empty sequence of Trace")
        for k, tr in enumerate(traces):
            if not isinstance(tr, Trace):
                raise invalid(f"traces[{k}]", tr, "a Trace", cls=ArgumentTypeError)
        first = traces[0]
        for k, tr in enumerate(traces[1:], 1):
            if not np.array_equal(tr.t, first.t):
                raise invalid(
                    f"traces[{k}]", tr, "traces sharing the time grid t of traces[0] exactly",
                )
            if set(tr.states) != set(first.states):
                raise invalid(
                    f"traces[{k}]", tr,
                    f"traces with the same states as traces[0] ({sorted(first.states)})",
                    hint=f"got {sorted(tr.states)}",
                )
        if meta is None:
            meta = {
                key: value
                for key, value in first.meta.items()
                if all(key in tr.meta and tr.meta[key] == value for tr in traces[1:])
            }
        states = {n: np.stack([tr.states[n] for tr in traces]) for n in first.states}
        return cls(
            first.t,
            np.stack([tr.V for tr in traces]),
            np.stack([tr.I for tr in traces]),
            states,
            meta,
        )

    # -- properties ----------------------------------------------------------
    @property
    def n_traces(self) -> int:
        """Number of traces."""
        return int(self.V.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples per trace."""
        return int(self.t.size)

    @property
    def duration(self) -> float:
        """``t[-1] - t[0]`` (ms)."""
        return float(self.t[-1] - self.t[0])

    @property
    def is_uniform(self) -> bool:
        """Whether all sampling steps equal the mean step within relative 1e-6."""
        return _uniform_step(self.t)[0]

    @property
    def dt(self) -> float:
        """The uniform sampling step (ms); raises if the sampling is not uniform."""
        return _dt_or_raise(self.t, "TraceSet")

    # -- sequence protocol -------------------------------------------------------
    def __len__(self):
        return self.n_traces

    def __getitem__(self, k):
        """Trace ``k`` (int; ``meta["trace_index"]`` records ``k``) or a sub-set (slice)."""
        if isinstance(k, slice):
            rows = np.arange(self.n_traces)[k]
            if rows.size == 0:
                raise invalid("k", k, "a slice selecting at least one trace", cls=TraceIndexError)
            return TraceSet(
                self.t, self.V[rows], self.I[rows],
                {n: a[rows] for n, a in self.states.items()}, self.meta,
            )
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise invalid("k", k, "an int or a slice", cls=ArgumentTypeError)
        n = self.n_traces
        if not -n <= int(k) < n:
            raise invalid("k", k, f"an index in [{-n}, {n})", cls=TraceIndexError)
        i = int(k) % n
        meta = dict(self.meta)
        meta["trace_index"] = i
        return Trace(
            self.t, self.V[i], self.I[i], {n: a[i] for n, a in self.states.items()}, meta
        )

    def __iter__(self):
        for i in range(self.n_traces):
            yield self[i]

    # -- derived sets ----------------------------------------------------------
    def copy(self):
        """An independent copy."""
        return TraceSet(self.t, self.V, self.I, dict(self.states), self.meta)

    def with_noise(self, sigma_V, seed):
        """This set with seeded Gaussian noise (mV) added to every ``V``.

        The noise of all traces comes from one generator (``(n_traces,
        n_samples)`` draws), so trace ``k`` of the result differs from
        ``self[k].with_noise(sigma_V, seed)``.

        Parameters
        ----------
        sigma_V : float
            Standard deviation of the noise (mV), non-negative.
        seed : int
            Seed of ``numpy.random.default_rng`` (non-negative integer).

        Returns
        -------
        TraceSet
            A new set; ``meta["noise"]`` records the noise added.
        """
        sigma_V = _nonneg("sigma_V", sigma_V, "mV")
        seed = _seed(seed)
        rng = np.random.default_rng(seed)
        V = self.V + sigma_V * rng.standard_normal(self.V.shape)
        meta = _add_noise_record(self.meta, sigma_V, seed)
        return TraceSet(self.t, V, self.I, dict(self.states), meta)

    # -- writing -----------------------------------------------------------------
    def to_npz(self, path):
        """Write the set as an uncompressed ``.npz`` archive (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Target file (written as given; no extension is appended).
        """
        arrays = _npz_arrays(self)
        _atomic_write(os.fspath(path), lambda f: _write_npz(f, arrays), binary=True)

    def save(self, path):
        """Write to ``.npz`` (the only format holding several traces).

        Parameters
        ----------
        path : str or os.PathLike
            Target file ending in ``.npz``.
        """
        p, _ = _extension(path, (".npz",), InvalidArgumentError)
        self.to_npz(p)

    def __repr__(self):
        ok, dt, _, _ = _uniform_step(self.t)
        grid = f"dt={dt:.6g} ms" if ok else "non-uniform"
        states = f", states={list(self.states)}" if self.states else ""
        meta = f", meta keys={list(self.meta)}" if self.meta else ""
        return (
            f"TraceSet(n_traces={self.n_traces}, n_samples={self.n_samples}, "
            f"t=[{float(self.t[0]):.6g}, {float(self.t[-1]):.6g}] ms, {grid}{states}{meta})"
        )


# --------------------------------------------------------------------------- #
# reading
# --------------------------------------------------------------------------- #
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


def _read_csv(path):
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
    try:
        return Trace(t, col["V"], col["I"], states, meta)
    except InvalidArgumentError as exc:  # pragma: no cover - checked above
        raise TraceFileError(f"{path}: {exc}") from None


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


def _read_npz(path):
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


def _build(cls, path, *args):
    try:
        return cls(*args)
    except (InvalidArgumentError, ArgumentTypeError) as exc:
        raise TraceFileError(f"{path}: {exc}") from None


def read_trace(path):
    """Read one trace from a ``.csv`` or ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`Trace.save` (or any CSV with columns ``t``
        (ms), ``V`` (mV), ``I`` (µA/cm²) and optional state columns).

    Returns
    -------
    Trace
        The trace.

    Raises
    ------
    TraceFileError
        If the file is missing or malformed; the message names the file and
        the line (CSV) or the array (NPZ).
    """
    p, ext = _extension(path, (".csv", ".npz"), TraceFileError)
    if ext == ".csv":
        return _read_csv(p)
    t, V, I, states, meta = _read_npz(p)
    if V.ndim == 2:
        if V.shape[0] != 1:
            raise TraceFileError(
                f"{p}: array 'V' holds {V.shape[0]} traces; use read_traces() to read a TraceSet"
            )
        V, I = V[0], I[0]
        states = {n: a[0] for n, a in states.items()}
    return _build(Trace, p, t, V, I, states, meta)


def read_traces(path):
    """Read a :class:`TraceSet` from a ``.npz`` (or one trace from ``.csv``).

    Parameters
    ----------
    path : str or os.PathLike
        File written by :meth:`TraceSet.save` or :meth:`Trace.save`; a single
        trace gives a set of one.

    Returns
    -------
    TraceSet
        The traces.

    Raises
    ------
    TraceFileError
        If the file is missing or malformed.
    """
    p, ext = _extension(path, (".csv", ".npz"), TraceFileError)
    if ext == ".csv":
        return TraceSet.from_traces([_read_csv(p)])
    t, V, I, states, meta = _read_npz(p)
    if V.ndim == 1:
        V, I = V[None, :], I[None, :]
        states = {n: a[None, :] for n, a in states.items()}
    return _build(TraceSet, p, t, V, I, states, meta)
