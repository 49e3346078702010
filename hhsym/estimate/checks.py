"""Validation of the recordings handed to :class:`~hhsym.estimate.RateEstimator`."""

from __future__ import annotations

import warnings

import numpy as np

from hhsym.errors import ArgumentTypeError, IdentifiabilityWarning, InvalidArgumentError, invalid

__all__ = ["as_recordings", "noise_level", "membrane_areas", "NOISE_WARN"]

#: Below this peak-to-peak range (mV) a recording is treated as a flat line.
FLAT_RANGE = 1.0
#: Relative tolerance on the sampling step.
DT_RTOL = 1e-6
#: Estimated sample-to-sample noise on V (mV) from which a fit warns that the rates are only partly determined (and
#: RateEstimator adds its maximum-likelihood stage, distill refines by output error).
#: Measured (benchmarks/bench_fit.py, HH, 2 x 300 ms at 0.025 ms): 0.05 mV of Gaussian noise already left
#: the rates ~2x off where they matter, 0.5 mV far more; noise-free recordings read 0.000-0.007 mV here
#: (0.043 mV for a noisy current sampled at 0.1 ms: the signal's own roughness at that step).
NOISE_WARN = 0.05


def noise_level(V):
    r"""Robust estimate of white measurement noise on a sampled voltage (mV).

    From the second differences :math:`d_k = V_{k+1} - 2V_k + V_{k-1}`:
    for independent noise of standard deviation :math:`\sigma` they have
    variance :math:`6\sigma^2`, while a smooth signal sampled finely
    contributes little; the median absolute deviation ignores spikes.
    A signal that is rough at the sampling step (a noisy injected current
    sampled coarsely) reads as some noise too.

    Parameters
    ----------
    V : array_like
        Potential (mV) on a uniform grid.

    Returns
    -------
    float
        Estimated standard deviation of the noise (mV).
    """
    V = np.asarray(V, dtype=float)
    if V.size < 3:
        return 0.0
    d2 = V[2:] - 2.0 * V[1:-1] + V[:-2]
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def _one(trace, k):
    for attr in ("t", "V", "I"):
        if not hasattr(trace, attr):
            raise invalid(f"traces[{k}]", trace, "a hhsym Trace (with t, V, I arrays)", cls=ArgumentTypeError)
    arrays = {}
    for name, unit in (("t", "ms"), ("V", "mV"), ("I", "µA/cm²")):
        a = np.asarray(getattr(trace, name), dtype=float)
        if a.ndim != 1:
            raise invalid(f"traces[{k}].{name}", a.shape, f"a 1-D array ({unit})")
        arrays[name] = a
    t, V, I = arrays["t"], arrays["V"], arrays["I"]
    if not (t.size == V.size == I.size):
        raise invalid(f"traces[{k}]", f"len(t)={t.size}, len(V)={V.size}, len(I)={I.size}",
                      "t, V and I of the same length")
    if t.size < 10:
        raise invalid(f"traces[{k}]", f"{t.size} samples", "at least 10 samples")
    for name, a in arrays.items():
        bad = ~np.isfinite(a)
        if bad.any():
            i = int(np.argmax(bad))
            raise invalid(f"traces[{k}].{name}", f"{a[i]} at sample {i}", "finite numbers only (no NaN/inf)")
    steps = np.diff(t)
    dt = float(steps.mean())
    if dt <= 0 or np.max(np.abs(steps - dt)) > DT_RTOL * dt + 1e-12:
        i = int(np.argmax(np.abs(steps - dt)))
        raise invalid(f"traces[{k}].t", f"step {steps[i]:g} ms at sample {i} (mean {dt:g} ms)",
                      "uniform sampling (constant dt)", hint="resample the recording onto a uniform grid")
    _check_units(k, dt, t, V, I)
    return dt, np.ascontiguousarray(V), np.ascontiguousarray(I)


#: Smallest plausible sampling step (ms): 1 µs.  A smaller step means t is in seconds.
MIN_DT = 1e-3
#: Largest plausible |I| (µA/cm²); HH spikes from ~7.  Whole-cell currents in pA read far higher.
MAX_CURRENT = 5000.0


def _check_units(k, dt, t, V, I):
    """Name the unit mistakes that otherwise surface as baffling fit failures."""
    if dt < MIN_DT:
        raise invalid(f"traces[{k}].t", f"sampling step {dt:g} (duration {t[-1] - t[0]:g})",
                      "times in milliseconds (ms)",
                      hint=f"the step is below {MIN_DT:g} ms (1 µs): t looks like it is in seconds; multiply by 1000")
    vmax = float(np.max(np.abs(V)))
    if vmax < 0.5:
        raise invalid(f"traces[{k}].V", f"values within ±{vmax:.3g}", "membrane potentials in millivolts (mV)",
                      hint="|V| never exceeds 0.5: V looks like it is in volts; multiply by 1000")
    if vmax > 2000.0:
        raise invalid(f"traces[{k}].V", f"values up to {vmax:.4g}", "membrane potentials in millivolts (mV)",
                      hint="|V| exceeds 2000: V looks like it is in microvolts (divide by 1000) or is not a potential")
    imax = float(np.max(np.abs(I)))
    if imax > MAX_CURRENT:
        raise invalid(f"traces[{k}].I", f"values up to {imax:.4g}", "a current density in µA/cm²",
                      hint=f"|I| exceeds {MAX_CURRENT:g} µA/cm²: a whole-cell current in pA must be divided by "
                           "the membrane area (hhsym.io.read(...).to_traces(area_cm2=... or capacitance_pF=...))")


def _trace_items(traces):
    """A Trace, a TraceSet or a list of Traces as a list of Traces (an ArgumentTypeError for anything else)."""
    if hasattr(traces, "t") and np.ndim(getattr(traces, "V")) == 1:
        return [traces]
    if hasattr(traces, "t") and np.ndim(getattr(traces, "V")) == 2 or isinstance(traces, (list, tuple)):
        return list(traces)
    raise invalid("traces", traces, "a Trace, a TraceSet or a list of Traces", cls=ArgumentTypeError)


def as_recordings(traces, threshold=0.0, noise_warning=True):
    """Turn a Trace, a TraceSet or a list of Traces into ``[(dt, V, I), ...]``.

    Parameters
    ----------
    traces : Trace, TraceSet or sequence of Trace
        Recordings with ``t`` (ms), ``V`` (mV) and ``I`` (µA/cm²) on uniform grids.
    threshold : float
        Spike detection level (mV) for the identifiability check.
    noise_warning : bool
        Warn about noise on V (below); False for callers that fit no free-form rates
        (closed forms, a distillation's refinement).

    Returns
    -------
    list of (float, ndarray, ndarray)
        Sampling step (ms), V (mV), I (µA/cm²) per trace.

    Raises
    ------
    InvalidArgumentError
        Mismatched lengths, NaN/inf, non-uniform sampling, too few samples,
        or a flat line (no information about any rate).

    Warns
    -----
    IdentifiabilityWarning
        When no trace crosses ``threshold`` upwards (no spikes): the rates are
        then only constrained over the subthreshold range.  When the noise on
        V (:func:`noise_level`) is at least :data:`NOISE_WARN` mV: the rates
        are then only partly determined by the data.
    """
    items = _trace_items(traces)
    if not items:
        raise invalid("traces", traces, "at least one trace")
    data = [_one(tr, k) for k, tr in enumerate(items)]
    V_all = np.concatenate([d[1] for d in data])
    span = float(V_all.max() - V_all.min())
    if span < FLAT_RANGE:
        raise InvalidArgumentError(
            f"invalid traces: V spans only {span:.3g} mV (a flat line); expected recordings whose "
            "voltage moves (e.g. spikes under a noisy current): a flat line cannot identify any rate")
    sigma = max(noise_level(d[1]) for d in data)
    if noise_warning and sigma >= NOISE_WARN:
        warnings.warn(
            f"V carries about {sigma:.2g} mV of sample-to-sample noise (robust estimate from second "
            "differences): it biases every charge-balance fit, and free-form rates are only partly "
            "determined by such data however they are fitted. Measured on 8 x 1 s at 20 kHz with 0.3 mV, "
            "the networks fitted by maximum likelihood (RateEstimator's stage 3, on by default here) came "
            "back 0.67-1.44x off where the rates matter, the truth inside their 95 % bands on 90-96 % of "
            "that range (benchmarks/bench_noise.py); a reproduced recording does not mean right rates. Read "
            "the rates with their bands (predict_rates(V, return_std=True)), distil them (hhsym.distill: "
            "closed forms chosen and refitted by output error, measured there within 2-4 %), record more or "
            "longer sweeps or average repeated trials, or fit literature forms directly "
            "(hhsym.FormEstimator, `hhsym forms`)",
            IdentifiabilityWarning, stacklevel=3)
    spiking = any(np.any((d[1][:-1] < threshold) & (d[1][1:] >= threshold)) for d in data)
    if not spiking:
        warnings.warn(
            f"no trace crosses {threshold:g} mV upwards (no spikes; V spans "
            f"[{V_all.min():.1f}, {V_all.max():.1f}] mV): the data cannot identify the rates above "
            "that range, and the fit reports the range it saw as v_range_", IdentifiabilityWarning,
            stacklevel=3)
    return data


def trace_areas(traces):
    """Per trace (in :func:`as_recordings`' order), the membrane area (cm²) that turned its pA into µA/cm².

    Parameters
    ----------
    traces : Trace, TraceSet or list of Trace

    Returns
    -------
    list of float or None
        None for a trace that carries no area (simulated, or an hhsym file: densities already).
    """
    out = []
    for tr in _trace_items(traces):
        area = (getattr(tr, "meta", None) or {}).get("membrane_area")
        out.append(float(area["area_cm2"]) if isinstance(area, dict) and "area_cm2" in area else None)
    return out


def membrane_areas(traces):
    """The membrane areas that turned lab files' pA into the traces' µA/cm², one entry per file.

    Parameters
    ----------
    traces : Trace, TraceSet or list of Trace
        As given to an estimator's ``fit``; traces read from lab files carry
        ``meta["membrane_area"]`` (:meth:`hhsym.io.Recording.to_traces`).

    Returns
    -------
    list of dict
        ``{"file", "area_cm2", "source", "capacitance_pF", "specific_capacitance_uF_per_cm2"}``
        per distinct file (empty for simulated traces or hhsym files: their currents are densities).
    """
    items = traces if isinstance(traces, (list, tuple)) else [traces]
    out = []
    for tr in items:
        meta = getattr(tr, "meta", None) or {}
        area = meta.get("membrane_area")
        if not isinstance(area, dict) or "area_cm2" not in area:
            continue
        entry = {"file": (meta.get("source") or {}).get("file"), **area}
        if entry not in out:
            out.append(entry)
    return out
