r"""The :class:`Recording`: whole-cell sweeps as the lab wrote them (t ms, V mV, I pA).

A recording keeps the lab's units until a membrane area turns its currents into the
densities (µA/cm²) of a membrane model, :meth:`Recording.to_traces`:

.. math:: I_\mathrm{density} = \frac{I\,[\mathrm{pA}] \cdot 10^{-6}}{A\,[\mathrm{cm^2}]},
   \qquad A = \frac{C\,[\mathrm{pF}] \cdot 10^{-6}}{c_m\,[\mathrm{µF/cm^2}]}.
"""

from __future__ import annotations

import numbers

import numpy as np

from hhsym.errors import ArgumentTypeError, InvalidArgumentError, TraceFileError, invalid

__all__ = ["Recording", "select_sweeps"]


def _positive(name, value, unit):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(name, value, f"a positive finite number ({unit})", cls=ArgumentTypeError)
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise invalid(name, value, f"a positive finite number ({unit})")
    return value


def select_sweeps(available, sweeps, path):
    """Positions (into ``available``) of the requested sweep numbers.

    Parameters
    ----------
    available : sequence of int
        Sweep numbers the file holds, in file order.
    sweeps : None, int or sequence of int
        Requested sweep numbers (as the file numbers them); ``None`` = all.
    path : str
        File (for the message).

    Returns
    -------
    list of int
        Positions into ``available``, in the requested order.

    Raises
    ------
    TraceFileError
        If a requested sweep is not in the file.
    """
    available = [int(s) for s in available]
    if sweeps is None:
        return list(range(len(available)))
    if isinstance(sweeps, numbers.Integral) and not isinstance(sweeps, bool):
        sweeps = [sweeps]
    try:
        wanted = [int(s) for s in sweeps]
    except (TypeError, ValueError):
        raise invalid("sweeps", sweeps, "None, an int or a sequence of int (sweep numbers)",
                      cls=ArgumentTypeError) from None
    if not wanted:
        raise invalid("sweeps", sweeps, "at least one sweep number")
    where = {s: k for k, s in enumerate(available)}
    missing = [s for s in wanted if s not in where]
    if missing:
        raise TraceFileError(
            f"{path}: sweep(s) {missing} not in the file; it holds sweeps {available}"
        )
    return [where[s] for s in wanted]


class Recording:
    r"""Whole-cell current-clamp sweeps on one time grid, in the lab's units.

    Parameters
    ----------
    t : array_like, shape (n_samples,)
        Sample times of every sweep (ms), from the sweep start, strictly increasing.
    V : array_like, shape (n_sweeps, n_samples)
        Membrane voltage (mV).
    I : array_like, shape (n_sweeps, n_samples)
        Injected current (pA, positive = depolarising), recorded or from the protocol.
    meta : dict, optional
        Source metadata.  The readers fill ``file``, ``format``, ``sweep_numbers`` (as the
        file numbers them), ``units`` (as found, e.g. ``{"V": "mV", "I": "pA", "t": "s"}``),
        ``channels``, ``current_source`` (``"recorded"`` or ``"protocol"``) and ``protocol``.
    area_cm2 : float, optional
        Membrane area (cm²) when the file fixes it (hhsym's own files hold densities; they
        are read with an area of 1 cm², so that ``I`` in pA is the density times 10⁶).

    Attributes
    ----------
    t, V, I : numpy.ndarray
        Read-only samples (ms, mV, pA).
    meta : dict
        Source metadata.
    area_cm2 : float or None
        Membrane area fixed by the file (cm²), else None.
    """

    def __init__(self, t, V, I, meta=None, area_cm2=None):
        path = (meta or {}).get("file", "<recording>")
        t = np.array(t, dtype=float)
        V = np.array(V, dtype=float)
        I = np.array(I, dtype=float)
        if V.ndim == 1:
            V = V[None, :]
        if I.ndim == 1:
            I = I[None, :]
        if t.ndim != 1 or t.size < 2:
            raise TraceFileError(f"{path}: time: expected at least 2 samples, got shape {t.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
            raise TraceFileError(f"{path}: time: samples are not finite and strictly increasing")
        if V.ndim != 2 or V.shape[1] != t.size:
            raise TraceFileError(
                f"{path}: channel 'V': {V.shape[-1]} samples per sweep but the time grid has "
                f"{t.size}")
        if I.shape != V.shape:
            raise TraceFileError(
                f"{path}: channel 'I': shape {I.shape} does not match V {V.shape} "
                f"(mismatched V/I lengths or sweep counts)")
        for name, arr in (("V", V), ("I", I)):
            bad = ~np.isfinite(arr)
            if bad.any():
                s, k = np.argwhere(bad)[0]
                raise TraceFileError(f"{path}: channel {name!r}: sweep {s} sample {k} is {arr[s, k]!r}")
        for arr in (t, V, I):
            arr.flags.writeable = False
        self.t, self.V, self.I = t, V, I
        self.meta = dict(meta or {})
        self.meta.setdefault("sweep_numbers", list(range(V.shape[0])))
        self.area_cm2 = None if area_cm2 is None else _positive("area_cm2", area_cm2, "cm²")

    # -- properties -------------------------------------------------------------------
    @property
    def n_sweeps(self) -> int:
        """Number of sweeps."""
        return int(self.V.shape[0])

    @property
    def n_samples(self) -> int:
        """Samples per sweep."""
        return int(self.t.size)

    @property
    def dt(self) -> float:
        """Mean sampling step (ms)."""
        return float((self.t[-1] - self.t[0]) / (self.t.size - 1))

    @property
    def sampling_rate_hz(self) -> float:
        """Sampling rate (Hz), ``1000 / dt``."""
        return 1000.0 / self.dt

    @property
    def sweep_numbers(self) -> list:
        """Sweep numbers as the file numbers them."""
        return list(self.meta["sweep_numbers"])

    @property
    def file(self) -> str:
        """The file read (``"<recording>"`` if built in memory)."""
        return str(self.meta.get("file", "<recording>"))

    def __len__(self):
        return self.n_sweeps

    def __repr__(self):
        return (f"Recording({self.file!r}, n_sweeps={self.n_sweeps}, n_samples={self.n_samples}, "
                f"{self.sampling_rate_hz:.6g} Hz, current {self.meta.get('current_source', '?')})")

    # -- derived recordings -------------------------------------------------------------
    def _derived(self, V=None, I=None, idx=None, **meta):
        V = self.V if V is None else V
        I = self.I if I is None else I
        m = dict(self.meta)
        if idx is not None:
            V, I = V[idx], I[idx]
            m["sweep_numbers"] = [self.meta["sweep_numbers"][k] for k in idx]
        m.update(meta)
        return Recording(self.t, V, I, m, self.area_cm2)

    def select(self, sweeps):
        """The recording restricted to some sweeps.

        Parameters
        ----------
        sweeps : int or sequence of int
            Sweep numbers (as the file numbers them, see :attr:`sweep_numbers`).

        Returns
        -------
        Recording
        """
        return self._derived(idx=select_sweeps(self.sweep_numbers, sweeps, self.file))

    def compensate_bridge(self, R_bridge_MOhm):
        r"""The recording with a series-resistance (bridge) drop removed from V.

        :math:`V_\mathrm{corr} = V - R_s (I - I_\mathrm{hold})`, with
        :math:`I_\mathrm{hold}` the median current of the first 5 % of each sweep.

        Parameters
        ----------
        R_bridge_MOhm : float
            Unbalanced series resistance (MΩ), e.g. ``passive_properties(rec).R_bridge_MOhm``.

        Returns
        -------
        Recording
            ``meta["bridge_compensated_MOhm"]`` records the resistance removed.
        """
        if isinstance(R_bridge_MOhm, bool) or not isinstance(R_bridge_MOhm, numbers.Real) \
                or not np.isfinite(R_bridge_MOhm):
            raise invalid("R_bridge_MOhm", R_bridge_MOhm, "a finite number (MΩ)")
        n0 = max(1, self.n_samples // 20)
        hold = np.median(self.I[:, :n0], axis=1, keepdims=True)
        V = self.V - float(R_bridge_MOhm) * (self.I - hold) * 1e-3  # MΩ·pA = µV
        return self._derived(V=V, bridge_compensated_MOhm=float(R_bridge_MOhm))

    def shift_current(self, lag_samples):
        """The recording with ``I`` moved later by ``lag_samples`` (edge samples repeated).

        Parameters
        ----------
        lag_samples : int
            Samples to delay I by (negative: to advance it).  To align a current that V leads
            by ``L`` samples (``passive_properties(rec).alignment_lag_samples == L``), advance
            it: ``rec.shift_current(-L)``.

        Returns
        -------
        Recording
            ``meta["current_shift_samples"]`` records the shift.
        """
        if isinstance(lag_samples, bool) or not isinstance(lag_samples, numbers.Integral):
            raise invalid("lag_samples", lag_samples, "an int (samples)", cls=ArgumentTypeError)
        k = int(lag_samples)
        if abs(k) >= self.n_samples:
            raise invalid("lag_samples", k, f"an int with |lag| < {self.n_samples}")
        I = np.array(self.I)
        if k > 0:
            I[:, k:] = self.I[:, :-k]
            I[:, :k] = self.I[:, :1]
        elif k < 0:
            I[:, :k] = self.I[:, -k:]
            I[:, k:] = self.I[:, -1:]
        return self._derived(I=I, current_shift_samples=k)

    # -- to membrane densities -------------------------------------------------------------
    def membrane_area(self, area_cm2=None, capacitance_pF=None, specific_capacitance=1.0):
        r"""The membrane area (cm²) used to turn pA into µA/cm², and where it came from.

        Parameters
        ----------
        area_cm2 : float, optional
            Membrane area (cm²), given by the user.
        capacitance_pF : float, optional
            Whole-cell capacitance (pF); the area is :math:`C \cdot 10^{-6} / c_m`.
        specific_capacitance : float, optional
            Specific membrane capacitance :math:`c_m` (µF/cm², default 1).

        Returns
        -------
        dict
            ``area_cm2``, ``source`` (``"area"``, ``"capacitance"``, ``"file"`` or
            ``"estimated"``), ``capacitance_pF`` and ``specific_capacitance_uF_per_cm2``.
            With neither argument and no area in the file, the capacitance is estimated by
            :func:`hhsym.analysis.passive.passive_properties`.
        """
        c_m = _positive("specific_capacitance", specific_capacitance, "µF/cm²")
        if area_cm2 is not None and capacitance_pF is not None:
            raise InvalidArgumentError(
                "give either area_cm2 or capacitance_pF, not both "
                f"(got area_cm2={area_cm2!r}, capacitance_pF={capacitance_pF!r})")
        if area_cm2 is not None:
            area, source = _positive("area_cm2", area_cm2, "cm²"), "area"
        elif capacitance_pF is not None:
            area = _positive("capacitance_pF", capacitance_pF, "pF") * 1e-6 / c_m
            source = "capacitance"
        elif self.area_cm2 is not None:
            area, source = self.area_cm2, "file"
        else:
            from hhsym.analysis.passive import passive_properties

            C = passive_properties(self).C_pF
            if not np.isfinite(C) or C <= 0:
                raise TraceFileError(
                    f"{self.file}: no membrane area: the capacitance cannot be estimated from "
                    "these sweeps; give area_cm2 (--area) or capacitance_pF (--capacitance)")
            area, source = C * 1e-6 / c_m, "estimated"
        return {"area_cm2": float(area), "source": source,
                "capacitance_pF": float(area * c_m * 1e6),
                "specific_capacitance_uF_per_cm2": c_m}

    def to_traces(self, area_cm2=None, capacitance_pF=None, specific_capacitance=1.0):
        r"""The sweeps as a hhsym :class:`~hhsym.io.TraceSet` in µA/cm².

        Parameters
        ----------
        area_cm2 : float, optional
            Membrane area (cm²).
        capacitance_pF : float, optional
            Whole-cell capacitance (pF), at ``specific_capacitance``.
        specific_capacitance : float, optional
            Specific membrane capacitance (µF/cm², default 1).

        Returns
        -------
        TraceSet
            t (ms), V (mV), I (µA/cm²); ``meta["membrane_area"]`` reports the area used
            (see :meth:`membrane_area`), ``meta["source"]`` the file and sweep numbers.
        """
        from hhsym.io import TraceSet

        area = self.membrane_area(area_cm2, capacitance_pF, specific_capacitance)
        density = self.I * 1e-6 / area["area_cm2"]
        meta = {"source": {k: v for k, v in self.meta.items() if _jsonable(v)},
                "membrane_area": area}
        return TraceSet(self.t, self.V, density, meta=meta)


def _jsonable(value):
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
