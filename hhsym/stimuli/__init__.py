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

from hhsym.stimuli.analytic import PulseTrain, Ramp, Sine, Step
from hhsym.stimuli.base import Stimulus, Sum
from hhsym.stimuli.data import FromArray, OUNoise
from hhsym.stimuli.encode import (
    N_PAR,
    PULSES,
    RAMP,
    SINE,
    STEP,
    TABLE_SORTED,
    TABLE_UNIFORM,
    StimulusComponent,
    StimulusTable,
    encode_stimuli,
)
from hhsym.stimuli.serialise import stimulus_from_dict

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
