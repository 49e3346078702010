"""What a held-out validation compares: Γ, subthreshold RMS, per-sweep features, the summary.

Used by :func:`hhsym.analysis.validation.validate_fit`; see its module for the definitions.
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import InvalidArgumentError

__all__ = ["subthreshold_rms", "gamma", "side", "summarise", "SPIKE_FEATURES"]

#: Per-spike features compared, as named in the result (units in the names).
SPIKE_FEATURES = ("first_spike_latency_ms", "AP_peak_mV", "AP_half_width_ms", "AHP_depth_mV")


def subthreshold_rms(t, V_recorded, V_model, peaks, exclude_ms=5.0):
    """RMS of ``V_model - V_recorded`` (mV) away from spikes.

    Parameters
    ----------
    t : numpy.ndarray
        Sample times (ms).
    V_recorded, V_model : numpy.ndarray
        Recorded and predicted potentials (mV) on ``t``.
    peaks : array_like
        Spike peak times (ms): the recorded *and* the predicted ones.
    exclude_ms : float, optional
        Samples within this distance of a peak are left out (ms, default 5).

    Returns
    -------
    rms : float or None
        mV; None when no sample is left.
    n : int
        Samples used.
    """
    keep = np.ones(t.size, dtype=bool)
    for p in np.asarray(peaks, dtype=float).ravel():
        keep[np.searchsorted(t, p - exclude_ms):np.searchsorted(t, p + exclude_ms, side="right")] = False
    n = int(keep.sum())
    if n == 0:
        return None, 0
    return float(np.sqrt(np.mean((V_model[keep] - V_recorded[keep]) ** 2))), n


def gamma(recorded, predicted, duration, window=2.0):
    """Coincidence factor Γ of two sweeps' spike peak times, the recording as reference.

    Parameters
    ----------
    recorded, predicted : sequence of float
        Peak times (ms).
    duration : float
        Sweep length (ms).
    window : float, optional
        Coincidence half-window (ms, default 2).

    Returns
    -------
    float or None
        :func:`hhsym.metrics.coincidence_factor`; None when neither side spikes (no spike
        timing to compare) or when the spikes are too dense for the window (2 rate window ≥ 1).
    """
    from hhsym.metrics import coincidence_factor

    if not len(recorded) and not len(predicted):
        return None
    try:
        return coincidence_factor(recorded, predicted, window=window, duration=float(duration))
    except InvalidArgumentError:  # 2 * rate * window >= 1: too dense for the window
        return None


def side(feats):
    """The compared features of one sweep, from a :func:`hhsym.analysis.features.features` sweep.

    Parameters
    ----------
    feats : dict or None
        One entry of ``features(...)["sweeps"]``; None where the model diverged.

    Returns
    -------
    dict
        ``n_spikes``, ``n_spikes_step``, :data:`SPIKE_FEATURES` (ms, mV; None without spikes),
        ``spike_times_ms``; every value None for ``None``.
    """
    if feats is None:
        return {"n_spikes": None, "n_spikes_step": None, **{k: None for k in SPIKE_FEATURES},
                "spike_times_ms": None}
    return {"n_spikes": feats["n_spikes"], "n_spikes_step": feats["n_spikes_step"],
            **{k: feats[k] for k in SPIKE_FEATURES}, "spike_times_ms": feats["spike_times_ms"]}


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(sweeps):
    """Overall held-out figures from the per-sweep table.

    Parameters
    ----------
    sweeps : list of dict
        :attr:`ValidationResult.sweeps`.

    Returns
    -------
    dict
        ``n_sweeps``, ``n_diverged`` (sweeps where the model diverged; left out of the rest),
        ``n_spikes_recorded`` / ``n_spikes_model`` (totals), ``spike_count_error`` (Σ|n_model −
        n_recorded| / Σ n_recorded; None without recorded spikes), ``mean_abs_spike_count_error``
        (spikes per sweep), ``median_gamma`` (over sweeps where either side spikes; None if none),
        ``median_subthreshold_rms_mV`` and ``median_abs_error`` (per spike feature, over sweeps
        where both sides have it; ms or mV).
    """
    ran = [s for s in sweeps if not s["diverged"]]
    n_rec = sum(s["recorded"]["n_spikes"] for s in ran)
    n_mod = sum(s["model"]["n_spikes"] for s in ran)
    diffs = [abs(s["model"]["n_spikes"] - s["recorded"]["n_spikes"]) for s in ran]
    errors = {}
    for k in SPIKE_FEATURES:
        errors[k] = _median([abs(s["model"][k] - s["recorded"][k]) for s in ran
                             if s["model"][k] is not None and s["recorded"][k] is not None])
    return {"n_sweeps": len(sweeps), "n_diverged": len(sweeps) - len(ran),
            "n_spikes_recorded": int(n_rec), "n_spikes_model": int(n_mod),
            "spike_count_error": float(sum(diffs) / n_rec) if n_rec else None,
            "mean_abs_spike_count_error": float(np.mean(diffs)) if diffs else None,
            "median_gamma": _median([s["gamma"] for s in ran]),
            "median_subthreshold_rms_mV": _median([s["subthreshold_rms_mV"] for s in ran]),
            "median_abs_error": errors}
