"""Electrophysiology features through eFEL, and the noise of a recording.

Spikes and their features come from eFEL (the Blue Brain library ``efel``) with its default
settings (spikes = upward crossings of −20 mV); nothing here detects spikes by hand.
:func:`noise` measures the voltage noise in quiet stretches: at the holding current, away from
step edges and spikes.
"""

from __future__ import annotations

import numpy as np

from hhsym.analysis.steps import protocol as _protocol

__all__ = ["spike_times", "features", "noise", "EFEL_FEATURES"]

#: eFEL features computed per sweep (eFEL names).
EFEL_FEATURES = ("peak_time", "spike_count", "spike_count_stimint", "AP_amplitude", "peak_voltage",
                 "AP_duration_half_width", "AHP_depth", "time_to_first_spike", "ISI_CV",
                 "voltage_base")


#: After the test step, eFEL's view of a sweep runs on for at most this long (ms), so that the last
#: spike of the step repolarises inside it, and stops this long before a later spike (ms).
_AFTER_STEP_MS, _BEFORE_NEXT_MS = 20.0, 5.0


def _efel(recording, start_ms, stop_ms, names, strict=False, peaks=None):
    """eFEL features per sweep; ``strict``: only the spikes of the window ``[start_ms, stop_ms]`` count.

    Without ``strict`` a spike before the window enters ``time_to_first_spike``, ``peak_voltage``,
    ... and can void the half-width.  ``strict`` sets eFEL's ``strict_stiminterval`` for this call
    and hands eFEL each sweep cut to ``0.9 start_ms`` (eFEL's voltage base, the 10 % before the
    window, is kept) up to :data:`_AFTER_STEP_MS` after ``stop_ms`` but :data:`_BEFORE_NEXT_MS`
    before the sweep's first spike after the window (``peaks``: whole-sweep peak times, ms).
    eFEL 5.7 needs both: ``strict_stiminterval`` alone gives the last spike in the window a
    half-width reaching to the next spike after it, and a cut at ``stop_ms`` a negative one when
    that spike has not repolarised by then.
    """
    import efel

    t = np.asarray(recording.t)
    traces = []
    for k, V in enumerate(recording.V):
        keep = np.ones(t.size, dtype=bool)
        if strict:
            later = [p for p in (peaks[k] if peaks is not None else ()) if p > stop_ms]
            end = max(stop_ms, min(stop_ms + _AFTER_STEP_MS, min(later, default=np.inf) - _BEFORE_NEXT_MS))
            keep = (t >= 0.9 * start_ms) & (t <= end)
        traces.append({"T": t[keep], "V": np.asarray(V)[keep], "stim_start": [float(start_ms)],
                       "stim_end": [float(stop_ms)]})
    if not strict:
        return efel.get_feature_values(traces, list(names), raise_warnings=False)
    efel.set_setting("strict_stiminterval", True)
    try:
        return efel.get_feature_values(traces, list(names), raise_warnings=False)
    finally:
        efel.set_setting("strict_stiminterval", False)  # eFEL's default, which hhsym uses elsewhere


def _window_ms(recording, prot):
    if prot.test_window is None:
        return float(recording.t[0]), float(recording.t[-1])
    a, b = prot.test_window
    return float(recording.t[a]), float(recording.t[min(b, recording.n_samples - 1)])


def spike_times(recording):
    """Spike peak times per sweep (ms), eFEL ``peak_time`` over the whole sweep.

    Parameters
    ----------
    recording : Recording
        The sweeps (t ms, V mV).

    Returns
    -------
    list of numpy.ndarray
        Per sweep, the peak times (ms; empty when the sweep has no spike).
    """
    out = _efel(recording, recording.t[0], recording.t[-1], ["peak_time"])
    return [np.array(o["peak_time"] if o["peak_time"] is not None else [], dtype=float) for o in out]


def _scalar(value, reduce=np.mean):
    if value is None or len(value) == 0:
        return None
    return float(reduce(np.asarray(value, dtype=float)))


def features(recording, prot=None):
    """eFEL features of every sweep and the f-I curve of the test step.

    Parameters
    ----------
    recording : Recording
        The sweeps (t ms, V mV, I pA).
    prot : Protocol, optional
        Its step protocol (:func:`hhsym.analysis.steps.protocol`); computed when omitted.

    Returns
    -------
    dict
        ``sweeps``: a list, per sweep, of ``index`` (the file's sweep number),
        ``I_step_pA``, ``spike_times_ms``, ``n_spikes`` (whole sweep), ``n_spikes_step`` (in the
        test step), ``AP_amplitude_mV``, ``AP_peak_mV`` (absolute peak potential),
        ``AP_half_width_ms``, ``AHP_depth_mV`` (means over the
        spikes inside the test step; AHP relative to eFEL's voltage base), ``first_spike_latency_ms`` (from the
        test-step onset), ``ISI_CV``; ``fI``: ``I_step_pA`` and ``rate_hz`` (spikes in the test
        step per second of step) sorted by current; ``stim_window_ms``: the test step
        ``[start, stop]`` (ms).  Features a sweep does not have (no spikes, one ISI) are None.
    """
    prot = _protocol(recording) if prot is None else prot
    start, stop = _window_ms(recording, prot)
    whole = _efel(recording, recording.t[0], recording.t[-1], ["peak_time", "spike_count"])
    whole = [np.array(w["peak_time"] if w["peak_time"] is not None else [], dtype=float) for w in whole]
    inside = _efel(recording, start, stop, EFEL_FEATURES, strict=True, peaks=whole)
    sweeps = []
    for k, (peaks, o) in enumerate(zip(whole, inside)):
        sweeps.append({
            "index": int(recording.sweep_numbers[k]),
            "I_step_pA": float(prot.I_step_pA[k]),
            "spike_times_ms": [float(x) for x in peaks],
            "n_spikes": int(peaks.size),
            "n_spikes_step": int(np.sum((peaks >= start) & (peaks <= stop))),
            "AP_amplitude_mV": _scalar(o["AP_amplitude"]),
            "AP_peak_mV": _scalar(o["peak_voltage"]),
            "AP_half_width_ms": _scalar(o["AP_duration_half_width"]),
            "AHP_depth_mV": _scalar(o["AHP_depth"]),
            "first_spike_latency_ms": _scalar(o["time_to_first_spike"], np.min),
            "ISI_CV": _scalar(o["ISI_CV"]),
        })
    order = np.argsort([s["I_step_pA"] for s in sweeps], kind="stable")
    seconds = max(stop - start, 1e-12) / 1e3
    fI = {"I_step_pA": [sweeps[k]["I_step_pA"] for k in order],
          "rate_hz": [sweeps[k]["n_spikes_step"] / seconds for k in order]}
    return {"sweeps": sweeps, "fI": fI, "stim_window_ms": [start, stop]}


def _clipped_sd(x, k=5.0, rounds=3):
    x = np.asarray(x, dtype=float)
    keep = np.ones(x.size, bool)
    for _ in range(rounds):
        sd = float(np.std(x[keep]))
        if sd == 0:
            break
        new = np.abs(x - np.mean(x[keep])) <= k * sd
        if np.array_equal(new, keep):
            break
        keep = new
    return float(np.std(x[keep])), int(keep.sum())


def quiet_stretches(recording, prot=None, spikes=None, settle_ms=200.0, after_spike_ms=200.0,
                    min_ms=20.0):
    """Sample ranges at the holding current, away from step edges and spikes.

    Parameters
    ----------
    recording : Recording
        The sweeps.
    prot : Protocol, optional
        Step protocol (computed when omitted).
    spikes : list of numpy.ndarray, optional
        Spike times per sweep (ms; eFEL, computed when omitted).
    settle_ms : float, optional
        Skipped after every step edge (ms, default 200).
    after_spike_ms : float, optional
        Excluded after a spike (ms, default 200; 5 ms before it).
    min_ms : float, optional
        Shortest stretch kept (ms, default 20).

    Returns
    -------
    list of tuple
        ``(sweep_position, start, stop)`` sample ranges.
    """
    prot = _protocol(recording) if prot is None else prot
    spikes = spike_times(recording) if spikes is None else spikes
    dt = recording.dt
    out = []
    for s, eps in enumerate(prot.epochs):
        hold = prot.holding_pA[s]
        for j, ep in enumerate(eps):
            if abs(ep.level - hold) >= prot.threshold_pA:
                continue
            a = ep.start + (0 if j == 0 else int(round(settle_ms / dt)))
            b = ep.stop - (0 if j == len(eps) - 1 else int(round(1.0 / dt)))
            mask = np.zeros(recording.n_samples, bool)
            mask[max(a, 0):max(b, 0)] = True
            for tp in spikes[s]:
                lo = int(np.searchsorted(recording.t, tp - 5.0))
                hi = int(np.searchsorted(recording.t, tp + after_spike_ms))
                mask[lo:hi] = False
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            cuts = np.flatnonzero(np.diff(idx) > 1)
            for lo, hi in zip(np.r_[0, cuts + 1], np.r_[cuts + 1, idx.size]):
                if (idx[hi - 1] - idx[lo] + 1) * dt >= min_ms:
                    out.append((s, int(idx[lo]), int(idx[hi - 1]) + 1))
    return out


def noise(recording, prot=None, spikes=None):
    r"""Voltage noise in quiet stretches: white (sample to sample) and slow.

    ``white_mV`` is :math:`\mathrm{SD}(\Delta V)/\sqrt 2` of consecutive samples (5-σ clipped);
    ``slow_mV`` is the remaining fluctuation, the median over the stretches of
    :math:`\sqrt{\max(0, \mathrm{Var}(V - \mathrm{trend}) - \sigma_\mathrm{white}^2)}` with the
    linear trend of each stretch (drift, the tail of a step response) removed.

    Parameters
    ----------
    recording : Recording
        The sweeps (mV).
    prot : Protocol, optional
        Step protocol (computed when omitted).
    spikes : list of numpy.ndarray, optional
        Spike times per sweep (ms; computed with eFEL when omitted).

    Returns
    -------
    dict
        ``white_mV``, ``slow_mV`` (None when no quiet stretch of 20 ms exists), ``n_samples``
        and ``n_stretches`` used.
    """
    stretches = quiet_stretches(recording, prot, spikes)
    if not stretches:
        return {"white_mV": None, "slow_mV": None, "n_samples": 0, "n_stretches": 0}
    diffs = np.concatenate([np.diff(recording.V[s, a:b]) for s, a, b in stretches])
    white = _clipped_sd(diffs)[0] / np.sqrt(2.0)
    slows, n = [], 0
    for s, a, b in stretches:
        v = recording.V[s, a:b]
        x = np.arange(v.size, dtype=float)
        res = v - np.polyval(np.polyfit(x, v, 1), x)
        slows.append(np.sqrt(max(_clipped_sd(res, k=8.0)[0] ** 2 - white**2, 0.0)))
        n += v.size
    slow = float(np.median(slows))
    return {"white_mV": float(white), "slow_mV": slow, "n_samples": int(n),
            "n_stretches": len(stretches)}
