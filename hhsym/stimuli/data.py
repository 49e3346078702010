"""Data-driven currents: :class:`OUNoise` (generated) and :class:`FromArray` (measured).

Both are tables for the kernels, interpolated linearly between samples.
"""

from __future__ import annotations

import math
import numpy as np

from hhsym.errors import invalid
from hhsym.integrate.noise import ou_recurrence, sample_uniform
from hhsym.stimuli.base import Stimulus
from hhsym.stimuli.checks import (
    _amplitude,
    _data_array,
    _nonnegative,
    _positive,
    _seed,
    _stop,
    _t_stop,
    _time,
    _window,
)
from hhsym.stimuli.encode import TABLE_SORTED, TABLE_UNIFORM, _component

_UNIFORM_RTOL = 1e-9


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
        self.sigma = _nonnegative("sigma", sigma, "µA/cm²")
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
        """Extend the cached realisation to at least ``n`` samples.

        One vectorised draw of the normals, then the exact OU update
        :math:`y_{k+1} = a y_k + b z_k` of the deviation from the mean in a
        compiled loop (:func:`hhsym.integrate.noise.ou_recurrence`); the
        values are those of the same update done sample by sample in Python.
        """
        have = self._samples.size
        if have >= n:
            return
        m = max(n - have, have)  # grow geometrically; values do not depend on it
        z = self._rng.standard_normal(m)
        a = math.exp(-self.dt / self.tau)
        b = self.sigma * math.sqrt(-math.expm1(-2.0 * self.dt / self.tau))
        dev = np.empty(m)
        if have == 0:  # start from the stationary distribution
            dev[0] = self.sigma * z[0]
            ou_recurrence(z[1:], a, b, dev[0], dev[1:])
        else:
            ou_recurrence(z, a, b, self._last_dev, dev)
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

    def _sample_into(self, t, out):
        if type(self)._evaluate is not OUNoise._evaluate:  # a subclass changed the values
            return super()._sample_into(t, out)
        # t is sorted: the last time inside [start, stop) sets how much of the noise is needed
        last = int(np.searchsorted(t, self.stop)) - 1
        if last >= 0 and t[last] >= self.start:
            self._ensure(self._n_for(float(t[last])))
        # the same interpolation as _evaluate, compiled: no temporaries over the samples
        return bool(sample_uniform(t, self._samples, self.start, self.dt, self.start, self.stop, out))

    @property
    def sample_step(self) -> float:
        """The step (ms) of the noise's grid, ``dt``."""
        return self.dt

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
        self._min_step = float(steps.min())

    @property
    def is_uniform(self) -> bool:
        """Whether the samples are uniform (O(1) lookup) within rel. 1e-9."""
        return self._uniform

    @property
    def end_time(self) -> float:
        """Time of the last sample (ms)."""
        return float(self.t[-1])

    @property
    def sample_step(self) -> float:
        """The shortest interval (ms) between two samples."""
        return self._dt if self._uniform else self._min_step

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

    def _sample_into(self, t, out):
        if type(self)._evaluate is not FromArray._evaluate or not self._uniform or not (t.size and t[0] >= self.t[0] and t[-1] <= self.t[-1]):
            return super()._sample_into(t, out)  # non-uniform, or a time outside the data: raises
        return bool(sample_uniform(t, self.I, float(self.t[0]), self._dt, -np.inf, np.inf, out))

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
