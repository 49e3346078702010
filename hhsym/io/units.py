"""Units as lab files state them: scale factors to mV (voltage), pA (current), ms (time).

Every reader turns the unit string a file states into a factor with :func:`voltage_scale`,
:func:`current_scale` or :func:`time_scale`; a missing or unknown unit raises a
:class:`~hhsym.errors.TraceFileError` naming the file and the channel.  :func:`check_plausible`
then rejects numbers that the stated unit makes implausible for a whole-cell recording
(e.g. a membrane potential of 60 V because the file said V but meant mV).
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import TraceFileError

__all__ = ["voltage_scale", "current_scale", "time_scale", "check_plausible", "clean_unit"]

_PREFIX = {"": 1.0, "k": 1e3, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9, "p": 1e-12,
           "f": 1e-15}
_WORDS = {"volt": "V", "volts": "V", "ampere": "A", "amperes": "A", "amp": "A", "amps": "A",
          "second": "s", "seconds": "s", "sec": "s"}

#: Whole-cell bounds of plausible magnitudes after conversion (mV and pA).
V_BOUND_MV = 500.0
I_BOUND_PA = 1e6
#: A membrane potential whose largest magnitude over a sweep stays below this (mV) is a voltage
#: in volts labelled mV (a cell rests tens of mV from 0).
V_FLOOR_MV = 2.0


def clean_unit(unit) -> str:
    """The unit as a stripped ``str`` (bytes decoded; ``None`` becomes ``""``)."""
    if unit is None:
        return ""
    if isinstance(unit, (bytes, bytearray)):
        unit = bytes(unit).decode("latin-1", "replace")
    return str(unit).replace("\x00", "").strip().strip("()[]").strip()


def _scale(unit, base, to_prefix, path, channel, quantity):
    text = clean_unit(unit)
    word = _WORDS.get(text.lower())
    if word is not None:
        text = word
    for prefix in sorted(_PREFIX, key=len, reverse=True):
        if text == prefix + base:
            return _PREFIX[prefix] / _PREFIX[to_prefix]
    accepted = ", ".join(p + base for p in ("", "m", "u", "n", "p"))
    if not text:
        raise TraceFileError(f"{path}: channel {channel!r}: the file states no unit for this "
                             f"{quantity} (accepted: {accepted})")
    raise TraceFileError(
        f"{path}: channel {channel!r}: unit {clean_unit(unit)!r} is not a {quantity} unit "
        f"(accepted: {accepted}, or the word for {base})"
    )


def voltage_scale(unit, path, channel) -> float:
    """Factor turning values in ``unit`` into mV.

    Parameters
    ----------
    unit : str or bytes
        The unit the file states (``"V"``, ``"mV"``, ``"volts"`` ...).
    path : str
        File (for the error message).
    channel : str or int
        Channel (for the error message).

    Returns
    -------
    float
        ``value_mV = value * factor``.

    Raises
    ------
    TraceFileError
        If the unit is missing or not a voltage unit.
    """
    return _scale(unit, "V", "m", path, channel, "voltage")


def current_scale(unit, path, channel) -> float:
    """Factor turning values in ``unit`` (``"A"``, ``"nA"``, ``"pA"`` ...) into pA.

    Parameters
    ----------
    unit : str or bytes
        The unit the file states.
    path : str
        File (for the error message).
    channel : str or int
        Channel (for the error message).

    Returns
    -------
    float
        ``value_pA = value * factor``.

    Raises
    ------
    TraceFileError
        If the unit is missing or not a current unit.
    """
    return _scale(unit, "A", "p", path, channel, "current")


def time_scale(unit, path, channel) -> float:
    """Factor turning values in ``unit`` (``"s"``, ``"ms"`` ...) into ms.

    Parameters
    ----------
    unit : str or bytes
        The unit the file states.
    path : str
        File (for the error message).
    channel : str or int
        Channel (for the error message).

    Returns
    -------
    float
        ``value_ms = value * factor``.
    """
    return _scale(unit, "s", "m", path, channel, "time")


def check_plausible(values, kind, path, channel, unit) -> None:
    """Reject non-finite values and magnitudes no whole-cell recording has.

    Parameters
    ----------
    values : numpy.ndarray
        Converted samples (mV when ``kind == "V"``, pA when ``kind == "I"``).
    kind : {"V", "I"}
        The quantity.
    path : str
        File (for the message).
    channel : str or int
        Channel (for the message).
    unit : str
        The unit the file stated (for the message).

    Raises
    ------
    TraceFileError
        If a sample is NaN/inf, if ``|V|`` exceeds 500 mV anywhere or stays below 2 mV
        everywhere (a wrong unit), or if ``|I|`` exceeds 1 µA.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise TraceFileError(f"{path}: channel {channel!r}: no samples")
    if not np.all(np.isfinite(values)):
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        raise TraceFileError(f"{path}: channel {channel!r}: sample {k} is {values.flat[k]!r}")
    peak = float(np.max(np.abs(values)))
    if kind == "V":
        if peak > V_BOUND_MV:
            raise TraceFileError(
                f"{path}: channel {channel!r}: |V| reaches {peak:.4g} mV with the stated unit "
                f"{unit!r}; a membrane potential stays within {V_BOUND_MV:g} mV (wrong unit?)"
            )
        if peak < V_FLOOR_MV:
            raise TraceFileError(
                f"{path}: channel {channel!r}: |V| stays below {peak:.3g} mV with the stated unit "
                f"{unit!r}; not a membrane potential (wrong unit?)"
            )
    elif peak > I_BOUND_PA:
        raise TraceFileError(
            f"{path}: channel {channel!r}: |I| reaches {peak:.4g} pA with the stated unit "
            f"{unit!r}; a whole-cell current stays within {I_BOUND_PA:g} pA (wrong unit?)"
        )
