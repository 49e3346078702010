"""The LEMS simulation file written beside a NeuroML export, and reading its output.

The injected current is a ``basePointCurrent`` whose current is the
piecewise-linear interpolation of the stimulus samples: one LEMS ``Regime``
per linear piece (samples where the slope does not change are merged, so a
finely sampled step has five pieces), held constant before the first and after
the last sample.
"""

from __future__ import annotations

import csv
import math
import os
from numbers import Real

import numpy as np

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, TraceFileError, invalid
from hhsym.export.common import LEMS, fmt, render
from hhsym.stimuli import Stimulus

__all__ = ["stimulus_samples", "lems_text", "read_lems_output"]

#: Sampling interval (ms) of an hhsym Stimulus given to the NeuroML export.
STIMULUS_DT = 0.025


def _read_csv(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise invalid("stimulus", path, "a readable CSV file with the header t,I", hint=str(exc)) from None
    if not rows or [h.strip() for h in rows[0][:2]] != ["t", "I"]:
        raise TraceFileError(f"{path}: expected the header 't,I' (ms, µA/cm²), got {rows[0] if rows else []}")
    try:
        data = np.array([[float(r[0]), float(r[1])] for r in rows[1:] if r], dtype=float)
    except (ValueError, IndexError):
        raise TraceFileError(f"{path}: every row after the header must hold two numbers t,I") from None
    return data.reshape(-1, 2).T


def stimulus_samples(stimulus, t_stop=None):
    """Samples ``(t, I)`` (ms, µA/cm²) of a stimulus given in one of the accepted ways.

    Parameters
    ----------
    stimulus : None, str, os.PathLike, (t, I) pair or hhsym.stimuli.Stimulus
        No current; a CSV file with the header ``t,I``; two arrays; or an hhsym
        stimulus, sampled every :data:`STIMULUS_DT` ms on ``[0, t_stop]``.
    t_stop : float, optional
        Duration (ms); default the last sample time (100 ms without samples).

    Returns
    -------
    t, I, t_stop : ndarray, ndarray, float
    """
    if t_stop is not None and (isinstance(t_stop, bool) or not isinstance(t_stop, Real)
                               or not math.isfinite(t_stop) or t_stop <= 0):
        raise invalid("t_stop", t_stop, "a positive finite duration (ms)")
    if stimulus is None:
        t_stop = 100.0 if t_stop is None else float(t_stop)
        return np.array([0.0, t_stop]), np.zeros(2), t_stop
    if isinstance(stimulus, Stimulus):
        if t_stop is None:
            raise invalid("t_stop", t_stop, "a duration (ms) to sample the hhsym Stimulus over")
        t = np.linspace(0.0, float(t_stop), int(round(t_stop / STIMULUS_DT)) + 1)
        return t, np.asarray(stimulus(t), dtype=float), float(t_stop)
    if isinstance(stimulus, (str, os.PathLike)):
        t, I = _read_csv(os.fspath(stimulus))
    elif isinstance(stimulus, (tuple, list)) and len(stimulus) == 2:
        try:
            t, I = (np.asarray(a, dtype=float).reshape(-1) for a in stimulus)
        except (TypeError, ValueError):
            raise invalid("stimulus", stimulus, "two arrays (t ms, I µA/cm²)", cls=ArgumentTypeError) from None
    else:
        raise invalid("stimulus", stimulus, "None, a CSV path (header t,I), a (t, I) pair of arrays "
                      "or a hhsym.stimuli.Stimulus", cls=ArgumentTypeError)
    if t.size < 2 or t.size != I.size or not (np.all(np.isfinite(t)) and np.all(np.isfinite(I))):
        raise invalid("stimulus", stimulus, "at least 2 finite samples, t and I of the same length")
    if np.any(np.diff(t) <= 0) or t[0] < 0:
        raise invalid("stimulus", stimulus, "sample times (ms) >= 0 and strictly increasing")
    return t, I, float(t[-1] if t_stop is None else t_stop)


def _segments(t, I):
    """Linear pieces ``(t_start, I_start, slope)`` of the stimulus, merged where the slope is unchanged."""
    slopes = np.diff(I) / np.diff(t)
    scale = max(float(np.max(np.abs(slopes))), 1e-300)
    pieces = [(float(t[0]), float(I[0]), float(slopes[0]))]
    for k in range(1, slopes.size):
        if abs(slopes[k] - pieces[-1][2]) > 1e-12 * scale:
            pieces.append((float(t[k]), float(I[k]), float(slopes[k])))
    pieces.append((float(t[-1]), float(I[-1]), 0.0))  # held after the last sample
    return pieces


def current_dynamics(t, I, indent="        "):
    """LEMS ``Dynamics`` of the piecewise-linear current: one regime per linear piece.

    In the regime of piece k the state holds its start time ``Tk`` (ms), value
    ``Ik`` (µA/cm², which is pA on the exported cell) and slope ``Sk``; the
    current is ``Ik + Sk (T - Tk)``, and reaching the next piece's start moves
    to its regime, so a step costs the same however many samples there are.
    The current is held at its first value before the first sample.

    Parameters
    ----------
    t, I : ndarray
        Sample times (ms, increasing) and currents (µA/cm²).
    indent : str
        Prefix of every line.

    Returns
    -------
    str
        The ``<Dynamics>`` element.
    """
    pieces = _segments(t, I)
    head = [(0.0, float(I[0]), 0.0)] if t[0] > 0 else []
    pieces = head + pieces
    lines = ["<Dynamics>"]
    for name in ("Tk", "Ik", "Sk"):
        lines.append(f'    <StateVariable name="{name}" dimension="none"/>')
    lines += ['    <DerivedVariable name="T" dimension="none" value="t / MS"/>',
              '    <DerivedVariable name="i" exposure="i" dimension="current" value="PA * (Ik + Sk * (T - Tk))"/>']

    def assign(piece):
        return [f'        <StateAssignment variable="{n}" value="{render(v, LEMS)}"/>'
                for n, v in zip(("Tk", "Ik", "Sk"), piece)]

    lines += ["    <OnStart>"] + assign(pieces[0]) + ["    </OnStart>"]
    for k, piece in enumerate(pieces):
        initial = ' initial="true"' if k == 0 else ""
        lines += [f'    <Regime name="piece{k}"{initial}>', "        <OnEntry>"]
        lines += ["    " + x for x in assign(piece)] + ["        </OnEntry>"]
        if k + 1 < len(pieces):
            lines += [f'        <OnCondition test="t .geq. {fmt(pieces[k + 1][0])} * MS">',
                      f'            <Transition regime="piece{k + 1}"/>', "        </OnCondition>"]
        lines.append("    </Regime>")
    lines.append("</Dynamics>")
    return "\n".join(indent + line for line in lines)


def lems_text(nml_name, cell_id, t, I, t_stop, dt, output, prefix="hhsym_"):
    """The LEMS simulation file: the cell of ``nml_name`` under the current ``(t, I)``.

    Parameters
    ----------
    nml_name : str
        File name of the NeuroML document (relative to the LEMS file).
    cell_id : str
        Id of the cell in it.
    t, I : ndarray
        Stimulus samples (ms, µA/cm²; linear between samples).
    t_stop, dt : float
        Duration and integration step (ms; jLEMS uses forward Euler).
    output : str
        File name of the voltage output (t in s, V in V, one row per step).
    prefix : str
        Start of the ids defined here.

    Returns
    -------
    str
    """
    stim_type = f"{cell_id}_current"
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<Lems>
    <!-- Written by hhsym.export.to_neuroml. Run: pynml LEMS_{os.path.basename(output).replace(".v.dat", "")}.xml -->
    <Target component="{prefix}sim"/>
    <Include file="Cells.xml"/>
    <Include file="Networks.xml"/>
    <Include file="Simulation.xml"/>
    <Include file="{nml_name}"/>

    <ComponentType name="{stim_type}" extends="basePointCurrent"
                   description="injected current: linear between the stimulus samples (uA/cm2 = pA on this cell)">
        <Constant name="MS" dimension="time" value="1ms"/>
        <Constant name="PA" dimension="current" value="1pA"/>
        <EventPort name="in" direction="in"/>
{current_dynamics(t, I)}
    </ComponentType>
    <Component id="{prefix}stimulus" type="{stim_type}"/>

    <network id="{prefix}network">
        <population id="{prefix}population" component="{cell_id}" size="1"/>
        <explicitInput target="{prefix}population[0]" input="{prefix}stimulus"/>
    </network>

    <Simulation id="{prefix}sim" length="{fmt(t_stop)}ms" step="{fmt(dt)}ms" target="{prefix}network">
        <OutputFile id="{prefix}output" fileName="{output}">
            <OutputColumn id="v" quantity="{prefix}population[0]/v"/>
        </OutputFile>
    </Simulation>
</Lems>
'''


def read_lems_output(path):
    """Read the voltage file the LEMS simulation writes; return ``(t, V)`` in ms and mV.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.v.dat`` file (columns t in s and V in V, whitespace separated).

    Returns
    -------
    t, V : ndarray
        Time (ms) and membrane potential (mV).

    Raises
    ------
    InvalidArgumentError
        If the file cannot be read.
    TraceFileError
        If it does not hold two numeric columns.
    """
    try:
        p = os.fspath(path)
    except TypeError:
        raise invalid("path", path, "a file path (str or os.PathLike)", cls=ArgumentTypeError) from None
    if not os.path.isfile(p):
        raise invalid("path", p, "an existing output file of the LEMS simulation", cls=InvalidArgumentError)
    try:
        data = np.loadtxt(p, ndmin=2)
    except ValueError as exc:
        raise TraceFileError(f"{p}: expected two numeric columns (t s, V V): {exc}") from None
    if data.shape[1] < 2 or data.shape[0] < 1 or not np.all(np.isfinite(data[:, :2])):
        raise TraceFileError(f"{p}: expected rows of two finite numbers (t s, V V)")
    return data[:, 0] * 1e3, data[:, 1] * 1e3
