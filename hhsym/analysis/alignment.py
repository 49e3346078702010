"""V/I alignment at step edges, and spike onsets (eFEL) for the passive analysis."""

from __future__ import annotations

import numpy as np

from hhsym.analysis.steps import protocol as _protocol
from hhsym.analysis.steps import white_sigma

__all__ = ["alignment_lag"]


def _edges(prot, recording):
    """(sweep, first sample at the new level, dI pA, previous epoch, this epoch) of every edge."""
    out = []
    for s, eps in enumerate(prot.epochs):
        for prev, ep in zip(eps[:-1], eps[1:]):
            out.append((s, ep.start, ep.level - prev.level, prev, ep))
    return out


def alignment_lag(recording, prot=None, max_lag=3):
    """Samples by which V moves before I at the step edges (negative: after).

    The signed voltage increments at each lag around every edge are summed (signed by the
    current step); the lag with the largest magnitude wins.

    Parameters
    ----------
    recording : Recording
        The sweeps (mV, pA).
    prot : Protocol, optional
        Step protocol (computed when omitted).
    max_lag : int, optional
        Largest lag tried (samples, default 3).

    Returns
    -------
    lag : int
        Samples (positive: V leads I).
    snr : float
        Margin of the best lag over the runner-up, in SDs of the summed noise (> 5: resolved).
    """
    prot = _protocol(recording) if prot is None else prot
    n = recording.n_samples
    lags = np.arange(-max_lag, max_lag + 1)
    score = np.zeros(lags.size)
    count = 0
    noise = np.median([white_sigma(v) for v in recording.V]) * np.sqrt(2.0)
    for s, k0, dI, _, _ in _edges(prot, recording):
        if k0 - max_lag - 1 < 0 or k0 + max_lag + 1 >= n:
            continue
        dV = np.diff(recording.V[s])
        score += np.sign(dI) * np.array([dV[k0 - 1 - lag] for lag in lags])
        count += 1
    if count == 0:
        return 0, 0.0
    mag = np.abs(score)
    order = np.argsort(mag)[::-1]
    snr = (mag[order[0]] - mag[order[1]]) / max(noise * np.sqrt(count), 1e-12)
    return int(lags[order[0]]), float(snr)


def _ap_begin(recording):
    import efel

    traces = [{"T": recording.t, "V": np.asarray(V), "stim_start": [float(recording.t[0])],
               "stim_end": [float(recording.t[-1])]} for V in recording.V]
    res = efel.get_feature_values(traces, ["AP_begin_time"], raise_warnings=False)
    return [np.array(r["AP_begin_time"] if r["AP_begin_time"] is not None else [], float) for r in res]
