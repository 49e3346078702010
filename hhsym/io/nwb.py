"""Neurodata Without Borders 2 (``.nwb``) through ``pynwb``: icephys current clamp.

Responses are the ``CurrentClampSeries`` of the file (``IZeroClampSeries`` excluded); each is
paired with its stimulus by the icephys ``intracellular_recordings`` table when present, else by
``sweep_number`` among the ``CurrentClampStimulusSeries``, else by order.  Values are
``data * conversion + offset`` in the series' unit (volts, amperes), converted to mV and pA.
"""

from __future__ import annotations

import os

import numpy as np

from hhsym.errors import TraceFileError
from hhsym.io.recording import Recording, select_sweeps
from hhsym.io.units import check_plausible, current_scale, voltage_scale

__all__ = ["read_nwb"]


def _values(series, scale, path):
    try:
        data = np.array(series.data[:], dtype=float)
    except Exception as exc:
        raise TraceFileError(f"{path}: channel {series.name!r}: cannot read the data "
                             f"({type(exc).__name__}: {exc})") from None
    if data.ndim != 1:
        raise TraceFileError(f"{path}: channel {series.name!r}: {data.ndim}-D data; expected one sweep")
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    factor = scale(series.unit, path, series.name)
    return (data * float(series.conversion) + offset) * factor


def _times(series, n, path):
    if series.timestamps is not None:
        ts = np.array(series.timestamps[:], dtype=float)
        if ts.size != n:
            raise TraceFileError(f"{path}: channel {series.name!r}: {ts.size} timestamps for {n} samples")
        return (ts - ts[0]) * 1e3
    rate = float(series.rate or 0.0)
    if not np.isfinite(rate) or rate <= 0:
        raise TraceFileError(f"{path}: channel {series.name!r}: sampling rate {rate!r} Hz")
    return np.arange(n) * (1e3 / rate)


def _pairs(nwb, path):
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries, IZeroClampSeries

    table = getattr(nwb, "intracellular_recordings", None)
    if table is not None and len(table) > 0:
        pairs = []
        for k in range(len(table)):
            resp = table["responses"]["response"][k]
            stim = table["stimuli"]["stimulus"][k]
            r = resp.timeseries if resp is not None else None
            s = stim.timeseries if stim is not None and stim.count >= 0 else None
            if isinstance(r, CurrentClampSeries) and not isinstance(r, IZeroClampSeries):
                pairs.append((r, s))
        if pairs:
            return pairs, "intracellular_recordings"
    responses = [s for s in nwb.acquisition.values()
                 if isinstance(s, CurrentClampSeries) and not isinstance(s, IZeroClampSeries)]
    stimuli = [s for s in nwb.stimulus.values() if isinstance(s, CurrentClampStimulusSeries)]
    by_sweep = {s.sweep_number: s for s in stimuli if s.sweep_number is not None}
    pairs = []
    for k, r in enumerate(responses):
        if r.sweep_number is not None and r.sweep_number in by_sweep:
            pairs.append((r, by_sweep[r.sweep_number]))
        elif len(stimuli) == len(responses):
            pairs.append((r, stimuli[k]))
        else:
            pairs.append((r, None))
    return pairs, "sweep_number"


def read_nwb(path, sweeps=None, channel=None):
    """Read current-clamp sweeps from an NWB 2 file.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.nwb`` file.
    sweeps : int or sequence of int, optional
        Sweep numbers (the series' ``sweep_number``, else their order from 0); default all.
    channel : str, optional
        Name of the intracellular electrode to read; default the electrode of the first response.

    Returns
    -------
    Recording
        t (ms), V (mV), I (pA, the stimulus series).

    Raises
    ------
    TraceFileError
        Corrupt file, no current-clamp response, a response without stimulus, mismatched
        lengths, missing or implausible units.
    """
    from pynwb import NWBHDF5IO

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TraceFileError(f"{path}: no such file")
    try:
        io = NWBHDF5IO(path, "r")
    except Exception as exc:
        raise TraceFileError(f"{path}: not a readable NWB file ({type(exc).__name__}: {exc})") from None
    try:
        try:
            nwb = io.read()
        except Exception as exc:
            raise TraceFileError(f"{path}: not a readable NWB file ({type(exc).__name__}: {exc})") from None
        pairs, how = _pairs(nwb, path)
        if not pairs:
            raise TraceFileError(f"{path}: channel 'V': no CurrentClampSeries in the file")
        electrodes = [getattr(r.electrode, "name", None) for r, _ in pairs]
        if channel is None:
            channel = electrodes[0]
        elif channel not in electrodes:
            raise TraceFileError(f"{path}: channel {channel!r}: no current-clamp response on this "
                                 f"electrode (electrodes: {sorted(set(map(str, electrodes)))})")
        pairs = [p for p, e in zip(pairs, electrodes) if e == channel]
        numbers = [r.sweep_number if r.sweep_number is not None else k for k, (r, _) in enumerate(pairs)]
        rows = select_sweeps([int(n) for n in numbers], sweeps, path)
        V, I, t, names = [], [], None, []
        for k in rows:
            resp, stim = pairs[k]
            if stim is None:
                raise TraceFileError(f"{path}: channel 'I': response {resp.name!r} has no stimulus series")
            v = _values(resp, voltage_scale, path)
            i = _values(stim, current_scale, path)
            if v.size != i.size:
                raise TraceFileError(f"{path}: channel {stim.name!r}: {i.size} samples but the response "
                                     f"{resp.name!r} has {v.size} (mismatched V/I lengths)")
            check_plausible(v, "V", path, resp.name, resp.unit)
            check_plausible(i, "I", path, stim.name, stim.unit)
            tk = _times(resp, v.size, path)
            if t is not None and (tk.size != t.size or not np.allclose(tk, t, rtol=1e-9, atol=1e-9)):
                raise TraceFileError(f"{path}: channel {resp.name!r}: sweeps on different time grids; "
                                     "select sweeps of one protocol with sweeps=")
            t = tk
            V.append(v)
            I.append(i)
            names.append((resp.name, stim.name))
            units = {"t": "s", "V": f"{resp.unit} x {resp.conversion:g}", "I": f"{stim.unit} x {stim.conversion:g}"}
            protocol = str(getattr(stim, "stimulus_description", "") or "")
        meta = {
            "file": path, "format": "nwb", "sweep_numbers": [int(numbers[k]) for k in rows],
            "units": units, "channels": {"V": names[0][0], "I": names[0][1], "electrode": str(channel)},
            "series": [list(n) for n in names], "paired_by": how,
            "current_source": "protocol", "protocol": protocol,
        }
    finally:
        io.close()
    return Recording(t, np.array(V), np.array(I), meta)
