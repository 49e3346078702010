r"""Injected-current protocols, composable with ``+``.

A stimulus is the current :math:`I_{inj}(t)` injected into the membrane, in
µA/cm² (positive = depolarising), as a function of time in ms.  The classes
here are evaluated in Python (numpy-vectorised ``__call__``) and, through
:func:`encode_stimuli`, by the numba kernels in
:mod:`hhsym.integrate.stimulus_kernel`, which reproduce the Python values to
rounding error.

Examples
--------
>>> from hhsym.stimuli import Step, Sine
>>> s = Step(10.0, 5.0, 50.0) + Sine(1.0, 100.0)
>>> float(s(5.0))          # right-continuous: the step is on at t = start
10.0

Kernel encoding
---------------
A stimulus is a sum of *components*; each component is one row of the
``kind``/``par`` arrays of a :class:`StimulusTable`.  The layout of the eight
``par`` entries of a row depends on its kind:

============== ===============================================================
kind           par[0:8]
============== ===============================================================
STEP           amplitude, start, stop
RAMP           amplitude_start, amplitude_stop, start, stop
PULSES         amplitude, width, period, start, stop
SINE           amplitude, frequency (Hz), phase (rad), offset, start, stop
TABLE_UNIFORM  offset into data, n, t0, dt, lo, hi, right_closed
TABLE_SORTED   offset into data, n, -, -, lo, hi, right_closed
============== ===============================================================

Analytic kinds are non-zero on ``[start, stop)``.  Tables are non-zero on
``[lo, hi)`` (``[lo, hi]`` when ``right_closed`` is 1) and interpolate linearly
in ``data``: a uniform table holds its ``n`` values at ``t0 + k*dt``; a sorted
table holds ``n`` times followed by ``n`` values.
"""

from __future__ import annotations

import abc
import math
import numbers
from itertools import accumulate, islice
from typing import NamedTuple

import numpy as np

from hhsym.errors import ArgumentTypeError, UnknownNameError, invalid

__all__ = [
    "Stimulus",
    "Step",
    "Ramp",
    "PulseTrain",
    "Sine",
    "OUNoise",
    "FromArray",
    "Sum",
    "StimulusComponent",
    "StimulusTable",
    "encode_stimuli",
    "stimulus_from_dict",
    "STEP",
    "RAMP",
    "PULSES",
    "SINE",
    "TABLE_UNIFORM",
    "TABLE_SORTED",
    "N_PAR",
]

#: Kind codes of the kernel encoding (see the module docstring).  They are
#: repeated in hhsym/integrate/stimulus_kernel.py (tests check both agree).
STEP = 0
RAMP = 1
PULSES = 2
SINE = 3
TABLE_UNIFORM = 4
TABLE_SORTED = 5
#: Number of parameters per component row.
N_PAR = 8

_UNIFORM_RTOL = 1e-9
_BP_RTOL = 1e-11


# --------------------------------------------------------------------------- #
# argument checking
# --------------------------------------------------------------------------- #
def _real(name, value, accepted, *, allow_inf=False):
    """Return ``value`` as a float, or raise an error naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise invalid(name, value, accepted)
    return v


def _amplitude(name, value):
    return _real(name, value, "a finite number (µA/cm²)")


def _time(name, value):
    return _real(name, value, "a finite number (ms)")


def _stop(value, start, *, allow_inf=True):
    what = "a number (ms) greater than start" + (", or inf" if allow_inf else "")
    if value is None and allow_inf:
        return math.inf
    stop = _real("stop", value, what, allow_inf=allow_inf)
    if not stop > start:
        raise invalid("stop", value, what, hint=f"start={start!r}")
    return stop


def _positive(name, value, unit):
    accepted = f"a positive finite number ({unit})"
    v = _real(name, value, accepted)
    if not v > 0:
        raise invalid(name, value, accepted)
    return v


def _seed(value):
    accepted = "a non-negative integer"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise invalid("seed", value, accepted, cls=ArgumentTypeError)
    if int(value) < 0:
        raise invalid("seed", value, accepted)
    return int(value)


def _t_stop(value):
    accepted = "a positive finite number (ms)"
    v = _real("t_stop", value, accepted)
    if not v > 0:
        raise invalid("t_stop", value, accepted)
    return v


def _as_times(t):
    """Convert ``t`` (ms) to a float64 array; tell whether it was a scalar."""
    accepted = "a finite time or array of finite times (ms)"
    if isinstance(t, (bool, np.bool_)):
        raise invalid("t", t, accepted, cls=ArgumentTypeError)
    try:
        arr = np.asarray(t)
    except Exception:  # pragma: no cover - exotic inputs
        raise invalid("t", t, accepted, cls=ArgumentTypeError) from None
    if arr.dtype.kind not in "iuf":
        raise invalid("t", t, accepted, cls=ArgumentTypeError)
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        raise invalid("t", t, accepted, hint=f"element {bad} is {float(arr.ravel()[bad])!r}")
    return arr, arr.ndim == 0


def _bp_tol(t):
    """Breakpoints closer than this (ms) near time ``t`` (ms) are merged."""
    return _BP_RTOL * max(1.0, abs(t))


def _json_float(x):
    """inf -> None so that the dict stays strict JSON."""
    return None if math.isinf(x) else float(x)


def _window(t, start, stop):
    return (t >= start) & (t < stop)


# --------------------------------------------------------------------------- #
# kernel encoding
# --------------------------------------------------------------------------- #
class StimulusComponent(NamedTuple):
    """One row of the kernel encoding of a stimulus.

    Attributes
    ----------
    kind : int
        One of the kind codes ``STEP`` ... ``TABLE_SORTED``.
    par : tuple of float
        ``N_PAR`` parameters (layout in the module docstring).  For table
        kinds ``par[0]`` is the offset into ``data`` *of this component*
        (0); :func:`encode_stimuli` shifts it into the shared array.
    data : numpy.ndarray
        Table values (float64), empty for analytic kinds.
    """

    kind: int
    par: tuple
    data: np.ndarray


def _component(kind, values, data=None):
    par = tuple(float(v) for v in values) + (0.0,) * (N_PAR - len(values))
    if data is None:
        data = np.empty(0, dtype=np.float64)
    return StimulusComponent(kind, par, np.ascontiguousarray(data, dtype=np.float64))


class StimulusTable(NamedTuple):
    """Arrays describing ``N`` stimuli for the numba kernels.

    Attributes
    ----------
    ptr : numpy.ndarray of int64, shape (N + 1,)
        Components of stimulus ``i`` are rows ``ptr[i]:ptr[i + 1]``.
    kind : numpy.ndarray of int64, shape (K,)
        Kind code of each component.
    par : numpy.ndarray of float64, shape (K, 8)
        Parameters of each component (offsets into ``data`` stored as floats).
    data : numpy.ndarray of float64, shape (D,)
        Concatenated tables.
    bp_ptr : numpy.ndarray of int64, shape (N + 1,)
        Breakpoints of stimulus ``i`` are ``bp[bp_ptr[i]:bp_ptr[i + 1]]``.
    bp : numpy.ndarray of float64, shape (B,)
        Sorted breakpoints (ms) in ``(0, t_stop)`` of each stimulus.
    """

    ptr: np.ndarray
    kind: np.ndarray
    par: np.ndarray
    data: np.ndarray
    bp_ptr: np.ndarray
    bp: np.ndarray


def encode_stimuli(stimuli, t_stop):
    """Encode stimuli as flat arrays for :mod:`hhsym.integrate.stimulus_kernel`.

    Parameters
    ----------
    stimuli : Stimulus, None or sequence of (Stimulus or None)
        The stimuli; ``None`` stands for no injected current.  A single
        stimulus is treated as a sequence of one.
    t_stop : float
        End of the simulation (ms); tables (noise) are generated to cover
        ``[0, t_stop]`` and breakpoints are those in ``(0, t_stop)``.

    Returns
    -------
    StimulusTable
        The CSR-style arrays.
    """
    t_stop = _t_stop(t_stop)
    if stimuli is None or isinstance(stimuli, Stimulus):
        stimuli = [stimuli]
    try:
        stimuli = list(stimuli)
    except TypeError:
        raise invalid(
            "stimuli", stimuli, "a Stimulus, None or a sequence of them", cls=ArgumentTypeError
        ) from None
    ptr = [0]
    kinds, pars, datas = [], [], []
    bp_ptr = [0]
    bps = []
    offset = 0
    for i, s in enumerate(stimuli):
        if s is None:
            comps, b = [], np.empty(0)
        elif isinstance(s, Stimulus):
            comps, b = s.encode(t_stop), s.breakpoints(t_stop)
        else:
            raise invalid(
                f"stimuli[{i}]", s, "a Stimulus or None", cls=ArgumentTypeError
            )
        for c in comps:
            par = list(c.par)
            if c.kind in (TABLE_UNIFORM, TABLE_SORTED):
                par[0] = float(offset)
            kinds.append(c.kind)
            pars.append(par)
            datas.append(c.data)
            offset += c.data.size
        ptr.append(len(kinds))
        bps.append(np.asarray(b, dtype=np.float64))
        bp_ptr.append(bp_ptr[-1] + len(b))
    return StimulusTable(
        ptr=np.asarray(ptr, dtype=np.int64),
        kind=np.asarray(kinds, dtype=np.int64),
        par=np.asarray(pars, dtype=np.float64).reshape(len(kinds), N_PAR),
        data=np.concatenate(datas) if datas else np.empty(0, dtype=np.float64),
        bp_ptr=np.asarray(bp_ptr, dtype=np.int64),
        bp=np.concatenate(bps) if bps else np.empty(0, dtype=np.float64),
    )


# --------------------------------------------------------------------------- #
# base class
# --------------------------------------------------------------------------- #
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
        b = np.unique(np.asarray(self._breakpoints(t_stop), dtype=np.float64).ravel())
        b = b[(b > _bp_tol(0.0)) & (b < t_stop - _bp_tol(t_stop))]
        if b.size < 2:
            return b
        keep = [float(b[0])]
        for x in b[1:].tolist():
            if x - keep[-1] > _bp_tol(x):
                keep.append(x)
        return np.array(keep, dtype=np.float64)

    @abc.abstractmethod
    def _breakpoints(self, t_stop: float) -> np.ndarray:
        """Candidate breakpoints; filtered to (0, t_stop) by :meth:`breakpoints`."""

    @property
    def end_time(self) -> float:
        """Last time (ms) at which the stimulus is defined (``inf`` if unlimited)."""
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


# --------------------------------------------------------------------------- #
# analytic stimuli
# --------------------------------------------------------------------------- #
class Step(Stimulus):
    r"""A rectangular current step.

    :math:`I(t) = A` for ``start <= t < stop``, else 0.

    Parameters
    ----------
    amplitude : float
        Step amplitude :math:`A` (µA/cm²).
    start : float
        Onset (ms).
    stop : float
        Offset (ms), greater than ``start``; ``np.inf`` for a holding current.
    """

    def __init__(self, amplitude, start, stop):
        self.amplitude = _amplitude("amplitude", amplitude)
        self.start = _time("start", start)
        self.stop = _stop(stop, self.start)

    def _evaluate(self, t):
        return np.where(_window(t, self.start, self.stop), self.amplitude, 0.0)

    def _breakpoints(self, t_stop):
        return np.array([self.start, self.stop])

    def _encode(self, t_stop):
        return [_component(STEP, (self.amplitude, self.start, self.stop))]

    def _params(self):
        return {"amplitude": self.amplitude, "start": self.start, "stop": self.stop}


class Ramp(Stimulus):
    r"""A linear current ramp.

    :math:`I(t) = A_0 + (A_1 - A_0)(t - t_0)/(t_1 - t_0)` for
    :math:`t_0 \le t < t_1`, else 0.

    Parameters
    ----------
    amplitude_start : float
        Current :math:`A_0` at ``start`` (µA/cm²).
    amplitude_stop : float
        Current :math:`A_1` approached at ``stop`` (µA/cm²).
    start : float
        Ramp onset :math:`t_0` (ms).
    stop : float
        Ramp end :math:`t_1` (ms), finite and greater than ``start``.
    """

    def __init__(self, amplitude_start, amplitude_stop, start, stop):
        self.amplitude_start = _amplitude("amplitude_start", amplitude_start)
        self.amplitude_stop = _amplitude("amplitude_stop", amplitude_stop)
        self.start = _time("start", start)
        self.stop = _stop(stop, self.start, allow_inf=False)

    def _evaluate(self, t):
        a0, a1, t0, t1 = self.amplitude_start, self.amplitude_stop, self.start, self.stop
        val = a0 + (a1 - a0) * ((t - t0) / (t1 - t0))
        return np.where(_window(t, t0, t1), val, 0.0)

    def _breakpoints(self, t_stop):
        return np.array([self.start, self.stop])

    def _encode(self, t_stop):
        return [
            _component(
                RAMP, (self.amplitude_start, self.amplitude_stop, self.start, self.stop)
            )
        ]

    def _params(self):
        return {
            "amplitude_start": self.amplitude_start,
            "amplitude_stop": self.amplitude_stop,
            "start": self.start,
            "stop": self.stop,
        }


def _pulse_onsets(t, start, period):
    """Onset ``start + k*period`` of the period containing ``t`` (t >= start).

    Computed so that ``t`` equal to a float onset (as produced by
    :meth:`PulseTrain._breakpoints`) belongs to the period starting there.
    The kernel uses the same arithmetic.
    """
    k = np.floor((t - start) / period)
    onset = start + k * period
    early = onset > t
    k = np.where(early, k - 1.0, k)
    nxt = start + (k + 1.0) * period
    late = nxt <= t
    k = np.where(late, k + 1.0, k)
    return start + k * period


class PulseTrain(Stimulus):
    r"""A periodic train of rectangular pulses.

    :math:`I(t) = A` while ``start <= t < stop`` and
    :math:`(t - t_{start}) \bmod T < w`, else 0.

    Parameters
    ----------
    amplitude : float
        Pulse amplitude :math:`A` (µA/cm²).
    width : float
        Pulse width :math:`w` (ms), positive.
    period : float
        Pulse period :math:`T` (ms), greater than ``width``.
    start : float, optional
        Onset of the first pulse (ms). Default 0.
    stop : float, optional
        End of the train (ms); a pulse running at ``stop`` is cut. Default ``inf``.
    """

    def __init__(self, amplitude, width, period, start=0.0, stop=np.inf):
        self.amplitude = _amplitude("amplitude", amplitude)
        self.width = _positive("width", width, "ms")
        self.period = _positive("period", period, "ms")
        if not self.period > self.width:
            raise invalid(
                "period", period, "a finite number (ms) greater than width",
                hint=f"width={self.width!r}",
            )
        self.start = _time("start", start)
        self.stop = _stop(stop, self.start)

    def _evaluate(self, t):
        inside = _window(t, self.start, self.stop)
        tc = np.where(inside, t, self.start)
        onset = _pulse_onsets(tc, self.start, self.period)
        on = inside & (tc < onset + self.width)
        return np.where(on, self.amplitude, 0.0)

    def _breakpoints(self, t_stop):
        end = min(self.stop, t_stop)
        k0 = max(0.0, math.floor(-self.start / self.period) - 1.0)
        k1 = math.ceil((end - self.start) / self.period) + 1.0
        if k1 < k0:
            return np.array([self.start, self.stop])
        k = np.arange(k0, k1 + 1.0)
        onsets = self.start + k * self.period
        offs = onsets + self.width
        b = np.concatenate([onsets, offs])
        b = b[(b >= self.start) & (b < self.stop)]
        return np.concatenate([b, [self.start, self.stop]])

    def _encode(self, t_stop):
        return [
            _component(
                PULSES, (self.amplitude, self.width, self.period, self.start, self.stop)
            )
        ]

    def _params(self):
        return {
            "amplitude": self.amplitude,
            "width": self.width,
            "period": self.period,
            "start": self.start,
            "stop": self.stop,
        }


class Sine(Stimulus):
    r"""A sinusoidal current.

    :math:`I(t) = c + A \sin(2\pi f t / 1000 + \varphi)` on ``[start, stop)``,
    else 0 (``t`` in ms, ``f`` in Hz, hence the 1000; the phase refers to
    ``t = 0``, not to ``start``).

    Parameters
    ----------
    amplitude : float
        Amplitude :math:`A` (µA/cm²).
    frequency : float
        Frequency :math:`f` (Hz), non-negative.
    start : float, optional
        Onset (ms). Default 0.
    stop : float, optional
        End (ms). Default ``inf``.
    phase : float, optional
        Phase :math:`\varphi` (rad) at ``t = 0``. Default 0.
    offset : float, optional
        Constant offset :math:`c` (µA/cm²) while on. Default 0.
    """

    def __init__(self, amplitude, frequency, start=0.0, stop=np.inf, phase=0.0, offset=0.0):
        self.amplitude = _amplitude("amplitude", amplitude)
        self.frequency = _real("frequency", frequency, "a non-negative finite number (Hz)")
        if self.frequency < 0:
            raise invalid("frequency", frequency, "a non-negative finite number (Hz)")
        self.start = _time("start", start)
        self.stop = _stop(stop, self.start)
        self.phase = _real("phase", phase, "a finite number (rad)")
        self.offset = _amplitude("offset", offset)

    def _evaluate(self, t):
        val = self.offset + self.amplitude * np.sin(
            2.0 * np.pi * self.frequency * t / 1000.0 + self.phase
        )
        return np.where(_window(t, self.start, self.stop), val, 0.0)

    def _breakpoints(self, t_stop):
        return np.array([self.start, self.stop])

    def _encode(self, t_stop):
        return [
            _component(
                SINE,
                (self.amplitude, self.frequency, self.phase, self.offset, self.start, self.stop),
            )
        ]

    def _params(self):
        return {
            "amplitude": self.amplitude,
            "frequency": self.frequency,
            "start": self.start,
            "stop": self.stop,
            "phase": self.phase,
            "offset": self.offset,
        }


# --------------------------------------------------------------------------- #
# tables
# --------------------------------------------------------------------------- #
def _interp_uniform(t, y, t0, dt):
    """Linear interpolation on the uniform grid ``t0 + k*dt`` (kernel formula)."""
    n = y.size
    u = (t - t0) / dt
    k = np.clip(np.floor(u), 0, n - 2).astype(np.int64)
    w = np.clip(u - k, 0.0, 1.0)
    return y[k] + w * (y[k + 1] - y[k])


def _interp_sorted(t, tt, y):
    """Linear interpolation at ``t`` in the sorted table ``(tt, y)`` (kernel formula)."""
    k = np.clip(np.searchsorted(tt, t, side="right") - 1, 0, tt.size - 2)
    return y[k] + (t - tt[k]) * ((y[k + 1] - y[k]) / (tt[k + 1] - tt[k]))


class OUNoise(Stimulus):
    r"""Ornstein–Uhlenbeck noise current.

    .. math::

        dI = -\frac{I - \mu}{\tau}\,dt + \sigma\sqrt{2/\tau}\,dW

    sampled on the grid ``start + k*dt`` with the exact update
    :math:`I_{k+1} = \mu + (I_k - \mu)a + \sigma\sqrt{1 - a^2}\,z_k`,
    :math:`a = e^{-dt/\tau}`, started from the stationary distribution
    :math:`N(\mu, \sigma^2)`, and interpolated linearly between grid points.
    The current is 0 outside ``[start, stop)``.

    The samples are drawn sequentially from ``np.random.default_rng(seed)``
    and cached on the object: the same seed gives the same current, and a
    longer simulation sees the same current over the common interval.

    Parameters
    ----------
    mean : float
        Stationary mean :math:`\mu` (µA/cm²).
    sigma : float
        Stationary standard deviation :math:`\sigma` (µA/cm²), non-negative.
    tau : float
        Correlation time :math:`\tau` (ms), positive.
    seed : int
        Seed of the random generator (non-negative integer).
    start : float, optional
        Onset (ms). Default 0.
    stop : float, optional
        End (ms). Default ``inf``.
    dt : float, optional
        Sampling step (ms) of the noise grid. Default 0.025.
    """

    def __init__(self, mean, sigma, tau, seed, start=0.0, stop=np.inf, dt=0.025):
        self.mean = _amplitude("mean", mean)
        self.sigma = _real("sigma", sigma, "a non-negative finite number (µA/cm²)")
        if self.sigma < 0:
            raise invalid("sigma", sigma, "a non-negative finite number (µA/cm²)")
        self.tau = _positive("tau", tau, "ms")
        self.seed = _seed(seed)
        self.start = _time("start", start)
        self.stop = _stop(stop, self.start)
        self.dt = _positive("dt", dt, "ms")
        self._rng = np.random.default_rng(self.seed)
        self._samples = np.empty(0, dtype=np.float64)
        self._last_dev = 0.0  # deviation from the mean of the last sample

    # -- sample generation ---------------------------------------------------
    def _n_for(self, t_max):
        """Number of grid samples needed to interpolate up to ``t_max`` (ms)."""
        return max(2, math.floor((t_max - self.start) / self.dt) + 2)

    def _ensure(self, n):
        """Extend the cached realisation to at least ``n`` samples."""
        have = self._samples.size
        if have >= n:
            return
        m = max(n - have, have)  # grow geometrically; values do not depend on it
        z = self._rng.standard_normal(m).tolist()
        a = math.exp(-self.dt / self.tau)
        b = self.sigma * math.sqrt(-math.expm1(-2.0 * self.dt / self.tau))


        def update(y, zk):  # exact OU step of the deviation from the mean
            return a * y + b * zk

        if have == 0:  # start from the stationary distribution
            steps = accumulate(z[1:], update, initial=self.sigma * z[0])
        else:
            steps = islice(accumulate(z, update, initial=self._last_dev), 1, None)
        dev = np.fromiter(steps, dtype=np.float64, count=m)
        self._last_dev = float(dev[-1])
        self._samples = np.concatenate([self._samples, self.mean + dev])

    def samples(self, t_stop):
        """The noise grid covering ``[start, min(stop, t_stop)]``.

        Parameters
        ----------
        t_stop : float
            Last time (ms) to cover.

        Returns
        -------
        t : numpy.ndarray
            Grid times ``start + k*dt`` (ms).
        I : numpy.ndarray
            Current (µA/cm²) at the grid times (a copy).
        """
        t_stop = _t_stop(t_stop)
        n = self._n_for(min(self.stop, max(t_stop, self.start)))
        self._ensure(n)
        return self.start + self.dt * np.arange(n), self._samples[:n].copy()

    # -- Stimulus interface -------------------------------------------------------
    def _evaluate(self, t):
        inside = _window(t, self.start, self.stop)
        out = np.zeros(t.shape)
        if np.any(inside):
            ti = t[inside]
            self._ensure(self._n_for(float(ti.max())))
            out[inside] = _interp_uniform(ti, self._samples, self.start, self.dt)
        return out

    def _breakpoints(self, t_stop):
        return np.array([self.start, self.stop])

    def _encode(self, t_stop):
        n = self._n_for(max(min(self.stop, t_stop), self.start))
        self._ensure(n)
        return [
            _component(
                TABLE_UNIFORM,
                (0.0, n, self.start, self.dt, self.start, self.stop, 0.0),
                self._samples[:n],
            )
        ]

    def _params(self):
        return {
            "mean": self.mean,
            "sigma": self.sigma,
            "tau": self.tau,
            "seed": self.seed,
            "start": self.start,
            "stop": self.stop,
            "dt": self.dt,
        }


def _data_array(name, value, unit):
    """1-D finite float64 copy of ``value`` or an error naming the first bad element."""
    accepted = f"a 1-D array of finite numbers ({unit})"
    try:
        arr = np.asarray(value)
    except Exception:  # pragma: no cover - exotic inputs
        raise invalid(name, value, accepted, cls=ArgumentTypeError) from None
    if arr.dtype.kind not in "iuf":
        raise invalid(name, value, accepted, cls=ArgumentTypeError)
    if arr.ndim != 1:
        raise invalid(name, value, accepted, hint=f"got an array of shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise invalid(name, value, accepted, hint=f"{name}[{bad[0]}] is {float(arr[bad[0]])!r}")
    return arr


class FromArray(Stimulus):
    r"""A measured current, interpolated linearly between samples.

    Defined on ``[t[0], t[-1]]`` only: evaluating outside raises (the kernel
    encoding holds 0 there; :attr:`end_time` lets a simulator check first).
    Uniformly sampled data (within a relative tolerance of 1e-9 of the step)
    is looked up in O(1); otherwise by binary search.

    Parameters
    ----------
    t : array_like of float
        Sample times (ms), finite and strictly increasing, at least 2.
    I : array_like of float
        Current (µA/cm²) at the sample times, finite, same length as ``t``.
    """

    def __init__(self, t, I):
        t = _data_array("t", t, "ms")
        I = _data_array("I", I, "µA/cm²")
        if t.size < 2:
            raise invalid("t", t, "at least 2 samples (ms)")
        if I.size != t.size:
            raise invalid(
                "I", I, f"an array of the same length as t ({t.size})",
                hint=f"got length {I.size}",
            )
        steps = np.diff(t)
        bad = np.flatnonzero(~(steps > 0))
        if bad.size:
            j = int(bad[0]) + 1
            raise invalid(
                "t", t, "strictly increasing times (ms)",
                hint=f"t[{j}]={float(t[j])!r} is not greater than t[{j - 1}]={float(t[j - 1])!r}",
            )
        self.t = t
        self.I = I
        self.t.flags.writeable = False
        self.I.flags.writeable = False
        n = t.size
        dt = (t[-1] - t[0]) / (n - 1)
        grid = t[0] + dt * np.arange(n)
        self._uniform = bool(np.max(np.abs(t - grid)) <= _UNIFORM_RTOL * dt)
        self._dt = float(dt)

    @property
    def is_uniform(self) -> bool:
        """Whether the samples are uniform (O(1) lookup) within rel. 1e-9."""
        return self._uniform

    @property
    def end_time(self) -> float:
        """Time of the last sample (ms)."""
        return float(self.t[-1])

    def _evaluate(self, t):
        t0, t1 = float(self.t[0]), float(self.t[-1])
        outside = (t < t0) | (t > t1)
        if np.any(outside):
            bad = t[outside].ravel()[0]
            raise invalid(
                "t", float(bad), f"times within the recorded interval [{t0!r}, {t1!r}] ms"
            )
        if self._uniform:
            return _interp_uniform(t, self.I, t0, self._dt)
        return _interp_sorted(t, self.t, self.I)

    def _breakpoints(self, t_stop):
        # the kernel holds 0 outside [t[0], t[-1]]: entering the data is a jump
        return np.array([self.t[0], self.t[-1]])

    def _encode(self, t_stop):
        n = self.t.size
        lo, hi = self.t[0], self.t[-1]
        if self._uniform:
            return [_component(TABLE_UNIFORM, (0.0, n, lo, self._dt, lo, hi, 1.0), self.I)]
        return [
            _component(
                TABLE_SORTED, (0.0, n, 0.0, 0.0, lo, hi, 1.0), np.concatenate([self.t, self.I])
            )
        ]

    def _params(self):
        return {"t": self.t.tolist(), "I": self.I.tolist()}

    def __repr__(self):
        how = f"uniform dt={self._dt!r}" if self._uniform else "non-uniform"
        t0, t1 = float(self.t[0]), float(self.t[-1])
        i0, i1 = float(self.I.min()), float(self.I.max())
        return (
            f"FromArray(n={self.t.size}, t=[{t0!r}, {t1!r}] ms, {how}, "
            f"I in [{i0!r}, {i1!r}] µA/cm²)"
        )


# --------------------------------------------------------------------------- #
# sums
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# dict round trip
# --------------------------------------------------------------------------- #
_CLASSES = {c.__name__: c for c in (Step, Ramp, PulseTrain, Sine, OUNoise, FromArray, Sum)}
_INF_KEYS = {"stop"}


def stimulus_from_dict(d):
    """Rebuild a stimulus from :meth:`Stimulus.to_dict` output.

    Parameters
    ----------
    d : dict
        ``{"type": <class name>, <constructor arguments>...}``; ``stop`` may
        be ``None`` for ``inf``.

    Returns
    -------
    Stimulus
        The stimulus described.
    """
    if not isinstance(d, dict):
        raise invalid("d", d, "a dict made by Stimulus.to_dict()", cls=ArgumentTypeError)
    kind = d.get("type")
    if kind not in _CLASSES:
        raise invalid("d['type']", kind, f"one of {sorted(_CLASSES)}", cls=UnknownNameError)
    cls = _CLASSES[kind]
    args = {k: v for k, v in d.items() if k != "type"}
    if cls is Sum:
        terms = args.pop("terms", None)
        if args or not isinstance(terms, list):
            raise invalid("d", d, "{'type': 'Sum', 'terms': [<stimulus dicts>]}")
        return Sum(*[stimulus_from_dict(x) for x in terms])
    for k in _INF_KEYS & args.keys():
        if args[k] is None:
            args[k] = math.inf
    try:
        return cls(**args)
    except TypeError as exc:
        if isinstance(exc, ArgumentTypeError):
            raise
        raise invalid(
            "d", d, f"the constructor arguments of {kind}", hint=str(exc)
        ) from None
