"""The :class:`Trace` class: one recording of t (ms), V (mV), I (µA/cm²)."""

from __future__ import annotations

import os

import numpy as np

from hhsym.errors import InvalidArgumentError, invalid
from hhsym.io.trace_checks import (
    _array,
    _dt_or_raise,
    _extension,
    _meta,
    _nonneg,
    _seed,
    _states,
    _times,
    _uniform_step,
)
from hhsym.io.csv_io import write_csv
from hhsym.io.npz_io import write_npz


class TimeGrid:
    """Properties of the sample times ``t`` (ms) shared by :class:`Trace` and ``TraceSet``.

    Subclasses build themselves in ``_init(t, V, I, states, meta, check_finite)``.
    """

    @classmethod
    def _from_finite(cls, t, V, I, states=None, meta=None):
        """An instance whose ``V``, ``I`` and ``states`` are known to be finite.

        Same as ``cls(t, V, I, states, meta)`` but without scanning ``V``,
        ``I`` and ``states`` for NaN/inf (~10 ms per 80 MB array, i.e. per
        quantity of 1000 traces of 10^4 samples): :func:`hhsym.simulate` uses
        it for kernel output (checked by the kernel sample by sample) and
        currents it has checked.  Everything else (``t``, shapes, names, meta)
        is checked as usual.
        """
        self = cls.__new__(cls)
        self._init(t, V, I, states, meta, check_finite=False)
        return self

    @property
    def n_samples(self) -> int:
        """Number of samples (per trace)."""
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
        return _dt_or_raise(self.t, type(self).__name__)


def _add_noise_record(meta, sigma_V, seed):
    """Copy of ``meta`` whose ``"noise"`` list ends with this noise record."""
    meta = dict(meta)
    before = meta.get("noise", [])
    before = list(before) if isinstance(before, list) else [before]
    meta["noise"] = before + [{"sigma_V": sigma_V, "seed": seed}]
    return meta


def _with_noise(V, meta, sigma_V, seed):
    """``V`` (mV) plus seeded Gaussian noise, and ``meta`` with the noise recorded."""
    sigma_V = _nonneg("sigma_V", sigma_V, "mV")
    seed = _seed(seed)
    rng = np.random.default_rng(seed)
    noisy = V + sigma_V * rng.standard_normal(V.shape)
    return noisy, _add_noise_record(meta, sigma_V, seed)


def _grid_text(t):
    """``t=[t0, t1] ms, dt=... ms`` (or ``non-uniform``) for a repr."""
    ok, dt, _, _ = _uniform_step(t)
    grid = f"dt={dt:.6g} ms" if ok else "non-uniform"
    return f"t=[{float(t[0]):.6g}, {float(t[-1]):.6g}] ms, {grid}"


def _extras_text(obj):
    """``, states=[...], meta keys=[...]`` (each only when non-empty) for a repr."""
    states = f", states={list(obj.states)}" if obj.states else ""
    meta = f", meta keys={list(obj.meta)}" if obj.meta else ""
    return states + meta


class Trace(TimeGrid):
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
        self._init(t, V, I, states, meta, check_finite=True)

    def _init(self, t, V, I, states, meta, check_finite):
        self.t = _times(t)
        n = self.t.size
        self.V = _array("V", V, "mV", 1, check_finite)
        self.I = _array("I", I, "µA/cm²", 1, check_finite)
        for name, arr in (("V", self.V), ("I", self.I)):
            if arr.size != n:
                raise invalid(
                    name, arr, f"an array of the same length as t ({n})",
                    hint=f"got length {arr.size}",
                )
        for arr in (self.t, self.V, self.I):
            arr.flags.writeable = False
        self.states = _states(states, (n,), check_finite)
        self.meta = _meta(meta)

    # -- properties ----------------------------------------------------------
    def __len__(self):
        return self.n_samples

    # -- derived traces --------------------------------------------------------
    def copy(self):
        """An independent copy (arrays and meta copied)."""
        return Trace(self.t.copy(), self.V.copy(), self.I.copy(),
                     {k: v.copy() for k, v in self.states.items()}, self.meta)

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
        V, meta = _with_noise(self.V, self.meta, sigma_V, seed)
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
        write_csv(os.fspath(path), self, include_meta)

    def to_npz(self, path):
        """Write the trace as an uncompressed ``.npz`` archive (atomically).

        Parameters
        ----------
        path : str or os.PathLike
            Target file (written as given; no extension is appended).
        """
        write_npz(os.fspath(path), self)

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
        return (
            f"Trace(n_samples={self.n_samples}, {_grid_text(self.t)}, "
            f"V in [{float(self.V.min()):.6g}, {float(self.V.max()):.6g}] mV, "
            f"I in [{float(self.I.min()):.6g}, {float(self.I.max()):.6g}] µA/cm²"
            f"{_extras_text(self)})"
        )
