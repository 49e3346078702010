"""Igor Pro binary waves (``.ibw``) through ``igor2``, V and I in separate files.

BluePyEfe's layout: one wave per channel and sweep, ``<cell>_Ch3_<protocol>_<sweep>.ibw`` the
membrane voltage and ``<cell>_Ch0_<protocol>_<sweep>.ibw`` the recorded current.  ``path`` is one
voltage wave or a glob pattern of them (``B6_Ch3_IDRest_*.ibw``); the current comes from
``current`` (a file or pattern) or from the file whose name differs only in the ``_Ch<k>_`` tag
and whose unit is a current.  Roles follow the units the waves state, so a voltage and a current
given the other way round are swapped.
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np

from hhsym.errors import TraceFileError
from hhsym.io.recording import Recording, select_sweeps
from hhsym.io.units import check_plausible, clean_unit, current_scale, time_scale, voltage_scale

__all__ = ["read_ibw", "load_wave"]

_CH = re.compile(r"_Ch(\d+)_")
_NUM = re.compile(r"(\d+)$")


def _units(field):
    if isinstance(field, (bytes, bytearray)):
        return clean_unit(field)
    arr = np.asarray(field).ravel()
    return clean_unit(b"".join(bytes(x) for x in arr))


def load_wave(path):
    """One wave: samples, data unit, sampling step (ms) and note.

    Parameters
    ----------
    path : str
        An ``.ibw`` file.

    Returns
    -------
    dict
        ``data`` (float64 samples, as stored), ``unit`` (str), ``dt_ms`` (float), ``note``
        (str), ``name`` (the wave name).

    Raises
    ------
    TraceFileError
        If the file is missing or corrupt, or states an implausible sampling step.
    """
    from igor2 import binarywave

    if not os.path.isfile(path):
        raise TraceFileError(f"{path}: no such file")
    try:
        wave = binarywave.load(path)["wave"]
        data = np.array(wave["wData"], dtype=float)
        head = wave["wave_header"]
    except Exception as exc:  # igor2 raises struct/ValueError/KeyError on corrupt files
        raise TraceFileError(f"{path}: not a readable Igor binary wave ({type(exc).__name__}: {exc})") from None
    if data.ndim != 1:
        raise TraceFileError(f"{path}: channel {os.path.basename(path)!r}: a {data.ndim}-D wave; "
                             "expected one sweep (1-D)")
    unit = _units(wave.get("data_units", b"")) or _units(head.get("dataUnits", b""))
    x_unit = _units(wave.get("dimension_units", b"")) or _units(np.asarray(head.get("dimUnits", [b""]))[0]
                                                               if "dimUnits" in head else b"")
    hs = head.get("sfA", head.get("hsA"))
    step = float(np.ravel(hs)[0])
    if x_unit:
        dt_ms = step * time_scale(x_unit, path, "x (time)")
    else:  # Igor leaves the x unit empty; BluePyEfe takes it as seconds
        dt_ms = step * 1e3
    if not (1e-4 <= dt_ms <= 10.0):
        raise TraceFileError(f"{path}: channel 'x (time)': sampling step {dt_ms!r} ms (unit "
                             f"{x_unit or 's, assumed'}) is implausible for a recording")
    note = wave.get("note", b"")
    note = note.decode("latin-1", "replace") if isinstance(note, bytes) else str(note)
    name = head.get("bname", b"")
    name = name.decode("latin-1", "replace") if isinstance(name, bytes) else str(name)
    return {"data": data, "unit": unit, "dt_ms": dt_ms, "note": note, "name": name,
            "x_unit": x_unit or "s (assumed)"}


def _files(pattern, what):
    pattern = os.fspath(pattern)
    if any(c in pattern for c in "*?["):
        found = sorted(glob.glob(pattern))
        if not found:
            raise TraceFileError(f"{pattern}: no {what} file matches the pattern")
        return found
    if not os.path.isfile(pattern):
        raise TraceFileError(f"{pattern}: no such file")
    return [pattern]


def _sweep_number(path, k):
    m = _NUM.search(os.path.splitext(os.path.basename(path))[0])
    return int(m.group(1)) if m else k


def _partner(path):
    base = os.path.basename(path)
    if not _CH.search(base):
        raise TraceFileError(
            f"{path}: channel 'I': no current file given and the name has no _Ch<k>_ tag to pair it "
            "by; pass current=<file>")
    pattern = os.path.join(os.path.dirname(path), glob.escape(base[:_CH.search(base).start()])
                           + "_Ch*_" + glob.escape(base[_CH.search(base).end():]))
    others = [p for p in sorted(glob.glob(pattern)) if os.path.abspath(p) != os.path.abspath(path)]
    currents = [p for p in others if _is_current(load_wave(p)["unit"])]
    if not currents:
        raise TraceFileError(f"{path}: channel 'I': no partner wave with a current unit "
                             f"(looked for {os.path.basename(pattern)}); pass current=<file>")
    return currents[0]


def _is_current(unit):
    try:
        current_scale(unit, "", "")
    except TraceFileError:
        return False
    return True


def read_ibw(path, current=None, sweeps=None, channel=None):
    """Read sweeps from Igor binary waves, voltage and current in separate files.

    Parameters
    ----------
    path : str or os.PathLike
        A voltage wave or a glob pattern of them (one file per sweep).
    current : str or os.PathLike, optional
        The current wave(s): a file or glob pattern, paired with the voltage waves by the
        sweep number ending the file name (or by order); default, per voltage file, the wave
        whose name differs only in its ``_Ch<k>_`` tag.
    sweeps : int or sequence of int, optional
        Sweep numbers (those ending the file names); default all.
    channel : str, optional
        Only for symmetry with the other readers; must be None (the roles come from the units).

    Returns
    -------
    Recording
        t (ms), V (mV), I (pA, recorded).

    Raises
    ------
    TraceFileError
        Missing/corrupt files, missing or non-voltage/non-current units, waves of different
        lengths or sampling steps, or implausible values.
    """
    if channel is not None:
        raise TraceFileError(f"{path}: channel {channel!r}: Igor waves hold one channel each; "
                             "give the voltage file as path and the current file as current=")
    v_files = _files(path, "voltage")
    numbers = [_sweep_number(p, k) for k, p in enumerate(v_files)]
    rows = select_sweeps(numbers, sweeps, os.fspath(path))
    v_files = [v_files[k] for k in rows]
    numbers = [numbers[k] for k in rows]
    v_waves = [load_wave(p) for p in v_files]  # a corrupt voltage file is reported first
    if current is None:
        i_files = [_partner(p) for p in v_files]
    else:
        found = _files(current, "current")
        if len(found) == 1 and len(v_files) == 1:
            i_files = found
        else:
            by_num = {_sweep_number(p, k): p for k, p in enumerate(found)}
            missing = [n for n in numbers if n not in by_num]
            if missing:
                raise TraceFileError(f"{current}: channel 'I': no current wave for sweep(s) {missing}")
            i_files = [by_num[n] for n in numbers]
    V, I, dts, v_units, i_units = [], [], [], set(), set()
    for vf, cf, wv in zip(v_files, i_files, v_waves):
        wi = load_wave(cf)
        if _is_current(wv["unit"]) and not _is_current(wi["unit"]):
            (vf, wv), (cf, wi) = (cf, wi), (vf, wv)
        v = wv["data"] * voltage_scale(wv["unit"], vf, wv["name"] or "V")
        i = wi["data"] * current_scale(wi["unit"], cf, wi["name"] or "I")
        if v.size != i.size:
            raise TraceFileError(f"{cf}: channel {wi['name'] or 'I'!r}: {i.size} samples but the voltage "
                                 f"{os.path.basename(vf)} has {v.size} (mismatched V/I lengths)")
        if not np.isclose(wv["dt_ms"], wi["dt_ms"], rtol=1e-6):
            raise TraceFileError(f"{cf}: channel {wi['name'] or 'I'!r}: sampling step {wi['dt_ms']} ms "
                                 f"differs from the voltage's {wv['dt_ms']} ms")
        check_plausible(v, "V", vf, wv["name"] or "V", wv["unit"])
        check_plausible(i, "I", cf, wi["name"] or "I", wi["unit"])
        V.append(v)
        I.append(i)
        dts.append(wv["dt_ms"])
        v_units.add(wv["unit"])
        i_units.add(wi["unit"])
    if len({v.size for v in V}) != 1 or not np.allclose(dts, dts[0], rtol=1e-6):
        raise TraceFileError(f"{path}: channel 'V': the sweeps differ in length or sampling step; "
                             "select sweeps of one protocol with sweeps=")
    t = np.arange(V[0].size) * dts[0]
    note = v_waves[0]["note"]
    protocol = dict(kv.split(":", 1) for kv in note.split(";") if ":" in kv).get("PATTERN", "")
    meta = {
        "file": os.fspath(path), "format": "ibw", "files_V": v_files, "files_I": i_files,
        "sweep_numbers": numbers,
        "units": {"t": v_waves[0]["x_unit"], "V": "/".join(sorted(v_units)),
                  "I": "/".join(sorted(i_units))},
        "channels": {"V": os.path.basename(v_files[0]), "I": os.path.basename(i_files[0])},
        "current_source": "recorded", "protocol": protocol,
    }
    return Recording(t, np.array(V), np.array(I), meta)
