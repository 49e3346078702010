"""Analytic current protocols: :class:`Step`, :class:`Ramp`, :class:`PulseTrain`, :class:`Sine`."""

from __future__ import annotations

import math

import numpy as np

from hhsym.errors import invalid
from hhsym.stimuli.base import Stimulus
from hhsym.stimuli.checks import (
    _amplitude,
    _nonnegative,
    _positive,
    _real,
    _stop,
    _time,
    _window,
)
from hhsym.stimuli.encode import PULSES, RAMP, SINE, STEP, _component


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

    def _sample_into(self, t, out):
        if type(self)._evaluate is not Step._evaluate:  # a subclass changed the values
            return super()._sample_into(t, out)
        # t is sorted: [start, stop) is one run of samples, from the first t >= start
        # up to the first t >= stop
        i, j = np.searchsorted(t, (self.start, self.stop))
        out[:i] = 0.0
        out[i:j] = self.amplitude
        out[j:] = 0.0
        return math.isfinite(self.amplitude)

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
        self.frequency = _nonnegative("frequency", frequency, "Hz")
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
