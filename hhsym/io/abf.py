"""Axon Binary Format (ABF 1 and 2) through ``pyabf``.

The voltage is the ADC channel whose unit is a voltage (or the one named by ``channel``);
the current is a recorded ADC channel with a current unit when the file has one, else the
protocol waveform ``sweepC`` of the command channel (``meta["current_source"]`` says which).
"""

from __future__ import annotations

import os

import numpy as np

from hhsym.errors import TraceFileError
from hhsym.io.recording import Recording, select_sweeps
from hhsym.io.units import check_plausible, clean_unit, current_scale, voltage_scale

__all__ = ["read_abf"]


def _is(unit, scale):
    try:
        scale(unit, "", "")
    except TraceFileError:
        return False
    return True


def read_abf(path, sweeps=None, channel=None):
    """Read current-clamp sweeps from an ABF file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.abf`` file.
    sweeps : int or sequence of int, optional
        Sweep numbers (pyabf's, from 0); default all.
    channel : int, optional
        ADC channel holding the membrane voltage; default the first with a voltage unit.

    Returns
    -------
    Recording
        t (ms), V (mV), I (pA).

    Raises
    ------
    TraceFileError
        If the file is missing or corrupt, has no voltage channel, or states units that are
        missing or implausible.
    """
    import pyabf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TraceFileError(f"{path}: no such file")
    try:
        abf = pyabf.ABF(path)
    except Exception as exc:  # pyabf raises anything from struct.error to NotImplementedError
        raise TraceFileError(f"{path}: not a readable ABF file ({type(exc).__name__}: {exc})") from None
    units = [clean_unit(u) for u in abf.adcUnits]
    names = list(abf.adcNames)
    if channel is None:
        v_chans = [c for c in abf.channelList if _is(units[c], voltage_scale)]
        if not v_chans:
            raise TraceFileError(
                f"{path}: channel 'V': no ADC channel has a voltage unit (channels "
                f"{list(zip(names, units))}); is this a voltage-clamp file?")
        v_chan = v_chans[0]
    else:
        if channel not in abf.channelList:
            raise TraceFileError(f"{path}: channel {channel!r}: not in the file (channels {abf.channelList})")
        v_chan = int(channel)
    v_scale = voltage_scale(units[v_chan], path, names[v_chan])
    i_chans = [c for c in abf.channelList if c != v_chan and _is(units[c], current_scale)]
    rows = select_sweeps(abf.sweepList, sweeps, path)
    V, I = [], []
    c_unit = None
    try:
        for k in rows:
            s = abf.sweepList[k]
            abf.setSweep(s, channel=v_chan)
            V.append(np.array(abf.sweepY, dtype=float) * v_scale)
            t = np.array(abf.sweepX, dtype=float) * 1e3
            if i_chans:
                abf.setSweep(s, channel=i_chans[0])
                c_unit = units[i_chans[0]]
                I.append(np.array(abf.sweepY, dtype=float)
                         * current_scale(c_unit, path, names[i_chans[0]]))
            else:
                abf.setSweep(s, channel=v_chan)
                c_unit = clean_unit(abf.sweepUnitsC)
                I.append(np.array(abf.sweepC, dtype=float)
                         * current_scale(c_unit, path, "sweepC (protocol)"))
    except TraceFileError:
        raise
    except Exception as exc:
        raise TraceFileError(f"{path}: channel {names[v_chan]!r}: cannot read the sweeps "
                             f"({type(exc).__name__}: {exc})") from None
    if len({v.size for v in V} | {i.size for i in I}) != 1:
        raise TraceFileError(f"{path}: channel 'I': sweeps of different lengths or V/I mismatch")
    V, I = np.array(V), np.array(I)
    check_plausible(V, "V", path, names[v_chan], units[v_chan])
    i_name = names[i_chans[0]] if i_chans else "sweepC (protocol)"
    check_plausible(I, "I", path, i_name, c_unit)
    meta = {
        "file": path, "format": "abf", "abf_version": str(abf.abfVersionString),
        "sweep_numbers": [int(abf.sweepList[k]) for k in rows],
        "units": {"t": "s", "V": units[v_chan], "I": c_unit},
        "channels": {"V": names[v_chan], "I": i_name},
        "current_source": "recorded" if i_chans else "protocol",
        "protocol": str(abf.protocol),
    }
    return Recording(t, V, I, meta)
