"""The :class:`TraceSet` class: several traces sharing one time grid."""

from __future__ import annotations

import numbers
import os

import numpy as np

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, invalid
from hhsym.io.trace_checks import (
    _array,
    _extension,
    _meta,
    _states,
    _times,
)
from hhsym.io.npz_io import write_npz
from hhsym.io.trace import TimeGrid, Trace, _extras_text, _grid_text, _with_noise


class TraceIndexError(InvalidArgumentError, IndexError):
    """An index into a :class:`TraceSet` is out of range."""


class TraceSet(TimeGrid):
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
        self._init(t, V, I, states, meta, check_finite=True)

    def _init(self, t, V, I, states, meta, check_finite):
        self.t = _times(t)
        n = self.t.size
        self.V = _array("V", V, "mV", 2, check_finite)
        self.I = _array("I", I, "µA/cm²", 2, check_finite)
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
        self.states = _states(states, self.V.shape, check_finite)
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
        return TraceSet(self.t.copy(), self.V.copy(), self.I.copy(),
                     {k: v.copy() for k, v in self.states.items()}, self.meta)

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
        V, meta = _with_noise(self.V, self.meta, sigma_V, seed)
        return TraceSet(self.t, V, self.I, dict(self.states), meta)

    # -- writing -----------------------------------------------------------------
    def to_npz(self, path):
        """Write the set as an uncompressed ``.npz`` archive (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Target file (written as given; no extension is appended).
        """
        write_npz(os.fspath(path), self)

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
        return (
            f"TraceSet(n_traces={self.n_traces}, n_samples={self.n_samples}, "
            f"{_grid_text(self.t)}{_extras_text(self)})"
        )
