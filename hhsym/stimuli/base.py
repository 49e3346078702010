"""The :class:`Stimulus` base class and :class:`Sum`, the result of ``s1 + s2``."""

from __future__ import annotations

import abc
import math
import numbers

import numpy as np

from hhsym.errors import ArgumentTypeError, invalid
from hhsym.stimuli.checks import _as_times, _bp_tol, _json_float, _t_stop


class Stimulus(abc.ABC):
    r"""Abstract base of injected-current protocols.

    Contract every stimulus fulfils:

    * ``s(t)`` is the injected current (µA/cm², positive = depolarising) at
      time(s) ``t`` (ms); numpy-vectorised, a scalar gives a ``float`` and an
      array an array of the same shape.  Values are **right-continuous**: at a
      jump the value after the jump is returned.  Non-finite ``t`` raises.
    * ``s + other`` (another stimulus) is a :class:`Sum`; ``0 + s`` is ``s``,
      so ``sum([s1, s2])`` works.
    * ``s.breakpoints(t_stop)`` are the sorted unique times in ``(0, t_stop)``
      where the value (or, for ramps, its slope) jumps; adaptive integrators
      stop there.
    * ``s.end_time`` (ms) is the last time at which the stimulus is defined:
      ``inf`` unless it is limited by data (:class:`FromArray`).
    * ``s.encode(t_stop)`` is the list of :class:`StimulusComponent` rows of
      the kernel encoding, valid on ``[0, t_stop]``.
    * ``s.to_dict()`` is JSON-safe (no NaN/inf) and
      :func:`stimulus_from_dict` rebuilds an equal stimulus from it.
    """

    # make ``numpy_scalar + stimulus`` defer to Stimulus.__radd__
    __array_ufunc__ = None

    # -- evaluation --------------------------------------------------------
    def __call__(self, t):
        """Injected current (µA/cm²) at time(s) ``t`` (ms), right-continuous.

        Parameters
        ----------
        t : float or array_like of float
            Time(s) in ms.

        Returns
        -------
        float or numpy.ndarray
            The current; a float for scalar ``t``, else an array shaped like ``t``.
        """
        arr, scalar = _as_times(t)
        out = self._evaluate(np.atleast_1d(arr)).reshape(arr.shape)
        return float(out) if scalar else out

    @abc.abstractmethod
    def _evaluate(self, t: np.ndarray) -> np.ndarray:
        """Values at the finite float64 times ``t`` (1-D or more)."""

    def _sample_into(self, t, out):
        """Write the values (µA/cm²) at the sorted times ``t`` (ms) into ``out``.

        The values are those of ``self(t)``, bit for bit; :func:`hhsym.simulate`
        fills its array of currents row by row with it.  Subclasses may use
        that ``t`` is sorted (finite float64, 1-D) to be faster.

        Parameters
        ----------
        t : numpy.ndarray
            Sorted finite float64 times (ms), shape ``(n,)``.
        out : numpy.ndarray
            Float64 array of shape ``(n,)``, overwritten.

        Returns
        -------
        bool
            Whether every value written is finite.
        """
        out[...] = self._evaluate(t)
        return bool(np.isfinite(out).all())

    # -- composition ---------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, Stimulus):
            return Sum(self, other)
        if isinstance(other, numbers.Number) and not isinstance(other, bool) and other == 0:
            return self
        raise invalid(
            "other",
            other,
            "a Stimulus (or 0); for a constant current use Step(amplitude, 0.0, np.inf)",
            cls=ArgumentTypeError,
        )

    def __radd__(self, other):
        if isinstance(other, Stimulus):
            return Sum(other, self)
        return self.__add__(other)

    # -- integrator support ------------------------------------------------
    def breakpoints(self, t_stop):
        """Times where the current jumps, for an integrator to stop at.

        Parameters
        ----------
        t_stop : float
            End of the simulation (ms).

        Returns
        -------
        numpy.ndarray
            Sorted unique float64 times (ms) in the open interval ``(0, t_stop)``.

        Notes
        -----
        Jumps of different terms computed in floating point can land a few
        ulp apart (e.g. ``6*0.7 + 0.3`` and ``4.5``).  Breakpoints closer than
        ``1e-11 * max(1, |t|)`` ms to the previous one kept are merged into it,
        and those that close to 0 or ``t_stop`` are dropped, so that an
        integrator stopping at each never has to take a step that short.
        """
        t_stop = _t_stop(t_stop)
        lo, hi = _bp_tol(0.0), t_stop - _bp_tol(t_stop)
        b = np.asarray(self._breakpoints(t_stop), dtype=np.float64).ravel().tolist()
        # plain Python: most stimuli have a handful of breakpoints, where numpy's
        # per-call costs dominate (and the merge below is a Python loop anyway)
        keep = []
        for x in sorted({x for x in b if lo < x < hi}):
            if not keep or x - keep[-1] > _bp_tol(x):
                keep.append(x)
        return np.array(keep, dtype=np.float64)

    @abc.abstractmethod
    def _breakpoints(self, t_stop: float) -> np.ndarray:
        """Candidate breakpoints; filtered to (0, t_stop) by :meth:`breakpoints`."""

    @property
    def end_time(self) -> float:
        """Last time (ms) at which the stimulus is defined (``inf`` if unlimited)."""
        return math.inf

    @property
    def sample_step(self) -> float:
        """Finest spacing (ms) of the samples the stimulus interpolates between (``inf`` for an analytic one):
        between two samples of a recording taken this often or more coarsely, its current has content the
        recording does not show (``hhsym.simulate`` warns then)."""
        return math.inf

    def encode(self, t_stop):
        """Kernel encoding of this stimulus on ``[0, t_stop]``.

        Parameters
        ----------
        t_stop : float
            End of the simulation (ms).

        Returns
        -------
        list of StimulusComponent
            The components whose sum is this stimulus.
        """
        return self._encode(_t_stop(t_stop))

    @abc.abstractmethod
    def _encode(self, t_stop: float) -> list:
        """Components valid on [0, t_stop] (t_stop already checked)."""

    # -- description -------------------------------------------------------
    @abc.abstractmethod
    def _params(self) -> dict:
        """Constructor arguments, as stored (floats, inf allowed)."""

    def to_dict(self):
        """JSON-safe description; inverse of :func:`stimulus_from_dict`.

        Returns
        -------
        dict
            ``{"type": <class name>, <constructor arguments>...}``; infinite
            times are stored as ``None``.
        """
        d = {"type": type(self).__name__}
        for k, v in self._params().items():
            d[k] = _json_float(v) if isinstance(v, float) else v
        return d

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class Sum(Stimulus):
    """The sum of several stimuli (nested sums are flattened).

    Parameters
    ----------
    *terms : Stimulus
        The stimuli to add; none gives zero current.
    """

    def __init__(self, *terms):
        flat = []
        for i, s in enumerate(terms):
            if isinstance(s, Sum):
                flat.extend(s.terms)
            elif isinstance(s, Stimulus):
                flat.append(s)
            else:
                raise invalid(f"terms[{i}]", s, "a Stimulus", cls=ArgumentTypeError)
        self.terms = tuple(flat)

    @property
    def end_time(self) -> float:
        """Earliest end time (ms) of the terms."""
        return min((s.end_time for s in self.terms), default=math.inf)

    @property
    def sample_step(self) -> float:
        """Finest sample spacing (ms) of the terms."""
        return min((s.sample_step for s in self.terms), default=math.inf)

    def _evaluate(self, t):
        out = np.zeros(t.shape)
        for s in self.terms:
            out = out + s._evaluate(t)
        return out

    def _breakpoints(self, t_stop):
        parts = [np.asarray(s._breakpoints(t_stop), dtype=np.float64) for s in self.terms]
        return np.concatenate(parts) if parts else np.empty(0)

    def _encode(self, t_stop):
        return [c for s in self.terms for c in s._encode(t_stop)]

    def _params(self):
        return {"terms": list(self.terms)}

    def to_dict(self):
        """JSON-safe description: ``{"type": "Sum", "terms": [...]}``."""
        return {"type": "Sum", "terms": [s.to_dict() for s in self.terms]}

    def __repr__(self):
        return "Sum(" + ", ".join(repr(s) for s in self.terms) + ")"
