r"""Passive properties and recording artefacts from current-step onsets.

Each step onset from the holding current is fitted, after the first samples (the
series-resistance jump), with one exponential

.. math:: V(t) = A + B\, e^{-(t - t_s)/\tau_m},

where :math:`t_s` is the switch time (half a sample before the first sample that moved).  From it
and the step amplitude :math:`\Delta I`:

- the bridge (series-resistance) jump: the mean of the samples skipped by the fit (the first
  0.25 ms, at least 2 samples) less the fitted charging since :math:`t_s`, minus
  :math:`V_\mathrm{base}`; :math:`R_\mathrm{bridge}` is the least-squares slope of the jumps
  against :math:`\Delta I` over the onsets;
- the membrane resistance of the charging phase :math:`R_\mathrm{fit} = -B/\Delta I` and the
  capacitance :math:`C = \tau_m / R_\mathrm{fit}`;
- the input resistance at the peak and at the steady state of the step, :math:`\Delta V/\Delta I`
  (the bridge jump removed when ``compensate_bridge``), and the sag ratio
  :math:`(\Delta V_\mathrm{peak} - \Delta V_\mathrm{ss}) / \Delta V_\mathrm{peak}`.

Hyperpolarising steps are used when the recording has them (each fitted up to the sag's peak;
values are medians over the onsets with their SD, one onset: the fit's standard error).
Otherwise the onsets of depolarising steps, each up to 2 ms before the first spike's onset (eFEL
``AP_begin_time``), are fitted together by one membrane (shared :math:`R`, :math:`\tau_m` and
bridge resistance; standard errors from the fit), and no sag ratio exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import curve_fit, least_squares

from hhsym.analysis.alignment import _ap_begin, _edges, alignment_lag
from hhsym.analysis.steps import protocol as _protocol
from hhsym.analysis.steps import white_sigma
from hhsym.jsontypes import json_types

__all__ = ["OnsetFit", "PassiveProperties", "passive_properties"]


@dataclass
class OnsetFit:
    """The fit of one step onset (mV, pA, ms, MΩ, pF)."""

    sweep: int
    sample: int
    kind: str
    dI_pA: float
    V_base_mV: float
    dV_peak_mV: float
    dV_ss_mV: float
    jump_mV: float
    tau_ms: float
    tau_se_ms: float
    R_fit_MOhm: float
    C_pF: float
    sag_ratio: float
    r2: float
    rmse_mV: float
    window_ms: tuple
    spiking: bool
    fit_start: int = 0
    fit_stop: int = 0


@dataclass
class PassiveProperties:
    """Passive properties of a recording, each with its SD (``*_sd``) and the fits behind them.

    Units: mV, MΩ, ms, pF, pA.  ``method`` is ``"hyperpolarising steps"``, ``"sub-threshold step
    onsets"`` or ``"none"`` (no usable onset: every fitted value is NaN).
    ``alignment_lag_samples`` > 0 means V moves that many samples before I at the step edges
    (shift I by ``-lag`` with :meth:`Recording.shift_current` to align); ``alignment_snr`` is the
    evidence for it.  ``V_rest_mV`` is the baseline at the holding current, ``V_rest_zero_mV`` its
    extrapolation to zero current through ``R_in_steady_MOhm``.
    """

    V_rest_mV: float
    V_rest_sd_mV: float
    V_rest_zero_mV: float
    holding_pA: float
    holding_sd_pA: float
    R_in_peak_MOhm: float = float("nan")
    R_in_peak_sd_MOhm: float = float("nan")
    R_in_steady_MOhm: float = float("nan")
    R_in_steady_sd_MOhm: float = float("nan")
    tau_m_ms: float = float("nan")
    tau_m_sd_ms: float = float("nan")
    C_pF: float = float("nan")
    C_sd_pF: float = float("nan")
    sag_ratio: float = float("nan")
    sag_ratio_sd: float = float("nan")
    R_bridge_MOhm: float = float("nan")
    R_bridge_sd_MOhm: float = float("nan")
    bridge_compensated: bool = False
    alignment_lag_samples: int = 0
    alignment_snr: float = 0.0
    method: str = "none"
    n_onsets: int = 0
    fit_r2_min: float = float("nan")
    fit_rmse_mV: float = float("nan")
    onsets: list = field(default_factory=list)

    def to_dict(self):
        """JSON-safe dict (NaN becomes None; ``onsets`` as a list of dicts)."""
        out = {}
        for k, v in asdict(self).items():
            out[k] = json_types(v)
        return out


def _exp(t, A, B, tau):
    return A + B * np.exp(-t / tau)


def _fit(t, v):
    A0 = float(np.mean(v[-max(3, v.size // 10):]))
    B0 = float(v[0] - A0)
    target = A0 + B0 / np.e
    cross = np.flatnonzero((v - target) * np.sign(B0) <= 0)
    tau0 = float(t[cross[0]]) if cross.size and t[cross[0]] > 0 else float(t[-1]) / 3
    span = float(t[-1])
    popt, pcov = curve_fit(_exp, t, v, p0=[A0, B0, max(tau0, 1e-3)],
                           bounds=([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 50 * span]),
                           maxfev=5000)
    resid = v - _exp(t, *popt)
    ss = float(np.sum((v - v.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss if ss > 0 else float("nan")
    se = float(np.sqrt(pcov[2, 2])) if np.all(np.isfinite(pcov)) else float("nan")
    return popt, se, r2, float(np.sqrt(np.mean(resid**2)))


def _smooth(v, w):
    if w <= 1 or v.size < w:
        return v
    return np.convolve(v, np.ones(w) / w, mode="valid")


def _onset(recording, s, k0, dI, prev, ep, lag, kind, ap_begin, base_ms=100.0):
    t, V, dt = recording.t, recording.V[s], recording.dt
    kv = k0 - lag
    nb = int(min(round(base_ms / dt), (prev.stop - prev.start) // 2))
    if nb < 5 or kv - nb < 0:
        return None
    V_base = float(np.mean(V[kv - nb:kv]))
    stop = min(ep.stop - lag, recording.n_samples)
    t_s = t[kv] - dt / 2
    spikes = [x for x in ap_begin if t[kv] <= x <= t[stop - 1]]
    spiking = bool(spikes)
    end = stop
    if spiking:
        if kind == "hyperpolarising":
            return None
        end = int(np.searchsorted(t, spikes[0] - 2.0))
    skip = max(2, int(round(0.25 / dt)))
    w = max(1, int(round(5.0 / dt)))  # 5-ms running mean for the peak
    seg = V[kv:end]
    if end - (kv + skip) < 10 or (end - kv) * dt < 5.0:
        return None
    dV_ss = float("nan")
    dV_peak = float("nan")
    if not spiking:
        tail = max(3, min((stop - kv) // 5, int(round(200.0 / dt))))
        dV_ss = float(np.mean(V[stop - tail:stop])) - V_base
        sm = _smooth(seg, w) - V_base
        j = int(np.argmax(sm * np.sign(dI)))
        dV_peak = float(sm[j])
        # a peak within 4 SDs of the running mean's noise beyond the steady state is no sag
        if abs(dV_peak) - abs(dV_ss) < 4.0 * white_sigma(seg) / np.sqrt(w) + 4.0 * white_sigma(seg) / np.sqrt(tail):
            dV_peak, j = dV_ss, sm.size - 1
        sag = (dV_peak - dV_ss) / dV_peak if dV_peak != 0 else float("nan")
        if kind == "hyperpolarising" and sag > 0.02 and j + w // 2 < seg.size - tail:
            end = kv + j + w // 2  # fit the charging phase up to the sag's peak
    try:
        (A, B, tau), se, r2, rmse = _fit(t[kv + skip:end] - t_s, V[kv + skip:end])
    except (RuntimeError, ValueError):
        return None
    # the jump: the first samples after the switch, less the fitted charging since t_s
    early = slice(kv, kv + skip)
    charge = B * (np.exp(-(t[early] - t_s) / tau) - 1.0)
    jump = float(np.mean(V[early] - charge)) - V_base
    if spiking:
        dV_ss = dV_peak = A - V_base
    R_fit = -B / dI * 1e3
    sag_ratio = (dV_peak - dV_ss) / dV_peak if kind == "hyperpolarising" and dV_peak else float("nan")
    return OnsetFit(int(s), int(kv), kind, float(dI), V_base, dV_peak, dV_ss, float(jump), float(tau),
                    se, float(R_fit), float(tau / R_fit * 1e3) if R_fit > 0 else float("nan"),
                    float(sag_ratio), r2, rmse,
                    (float(t[kv + skip] - t_s), float(t[end - 1] - t_s)), spiking, kv + skip, end)


def _joint_fit(recording, fits):
    r"""One membrane for all sub-threshold onsets: shared R (MΩ), τ (ms) and bridge R_b (MΩ).

    :math:`V_i(t) = V_{\mathrm{base},i} + 10^{-3}\,\Delta I_i\,(R_b + R\,(1 - e^{-t/\tau}))`.
    Returns ``(R, tau, R_b)``, their standard errors, R² and the RMS residual (mV).
    """
    dt = recording.dt
    segs = []
    for f in fits:
        t_s = recording.t[f.sample] - dt / 2
        sl = slice(f.fit_start, f.fit_stop)
        segs.append((recording.t[sl] - t_s, recording.V[f.sweep, sl], f.V_base_mV, f.dI_pA))

    def resid(p):
        R, tau, Rb = p
        return np.concatenate([v - (vb + 1e-3 * dI * (Rb + R * (1 - np.exp(-tt / tau))))
                               for tt, v, vb, dI in segs])

    R0 = float(np.median([f.R_fit_MOhm for f in fits]))
    tau0 = float(np.median([f.tau_ms for f in fits]))
    sol = least_squares(resid, [max(R0, 1e-3), max(tau0, 1e-3), 0.0],
                        bounds=([1e-6, 1e-3, -np.inf], [np.inf, np.inf, np.inf]))
    r = sol.fun
    dof = max(r.size - 3, 1)
    try:
        cov = np.linalg.inv(sol.jac.T @ sol.jac) * float(r @ r) / dof
    except np.linalg.LinAlgError:
        cov = np.full((3, 3), np.nan)
    allv = np.concatenate([v for _, v, _, _ in segs])
    ss = float(np.sum((allv - allv.mean()) ** 2))
    r2 = 1.0 - float(r @ r) / ss if ss > 0 else float("nan")
    return sol.x, cov, r2, float(np.sqrt(np.mean(r**2)))


def _stat(x, se=None):
    x = np.asarray([v for v in x if np.isfinite(v)], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(se) if se is not None else float("nan")
    return float(np.median(x)), float(np.std(x, ddof=1))


def passive_properties(recording, compensate_bridge=True, prot=None, ap_begin=None):
    """Resting potential, input resistance, time constant, capacitance, sag and artefacts.

    Parameters
    ----------
    recording : Recording
        Current-clamp sweeps (t ms, V mV, I pA) with current steps.
    compensate_bridge : bool, optional
        Remove the series-resistance (bridge) jump from the input resistances (default True);
        the jump is reported as ``R_bridge_MOhm`` either way.
    prot : Protocol, optional
        Step protocol (:func:`hhsym.analysis.steps.protocol`), computed when omitted.
    ap_begin : list of array_like, optional
        Spike onset times per sweep (ms); computed with eFEL (``AP_begin_time``) when omitted.

    Returns
    -------
    PassiveProperties
    """
    prot = _protocol(recording) if prot is None else prot
    if ap_begin is None:
        ap_begin = _ap_begin(recording)
    lag, snr = alignment_lag(recording, prot)
    use_lag = lag if snr > 5 else 0
    from_hold = [e for e in _edges(prot, recording)
                 if abs(e[3].level - prot.holding_pA[e[0]]) < prot.threshold_pA]
    fits = []
    for kind, sign in (("hyperpolarising", -1), ("sub-threshold", 1)):
        for s, k0, dI, prev, ep in from_hold:
            if np.sign(dI) == sign:
                f = _onset(recording, s, k0, dI, prev, ep, use_lag, kind, ap_begin[s])
                if f is not None and np.isfinite(f.tau_ms):
                    fits.append(f)
        if fits:
            break
    base = []
    for s, eps in enumerate(prot.epochs):
        first = eps[0]
        stop = first.stop
        if len(ap_begin[s]):
            stop = min(stop, int(np.searchsorted(recording.t, ap_begin[s][0] - 5.0)))
        if stop - first.start >= 5:
            base.append(float(np.mean(recording.V[s, first.start:stop])))
    V_rest, V_rest_sd = _stat(base)
    hold, hold_sd = _stat(prot.holding_pA)
    out = PassiveProperties(V_rest, V_rest_sd, float("nan"), hold, hold_sd,
                            alignment_lag_samples=use_lag, alignment_snr=snr,
                            bridge_compensated=bool(compensate_bridge))
    if not fits:
        return out
    out.method = "hyperpolarising steps" if fits[0].kind == "hyperpolarising" else "sub-threshold step onsets"
    out.n_onsets = len(fits)
    out.onsets = fits
    if out.method == "sub-threshold step onsets":
        (R, tau, Rb), cov, r2, rmse = _joint_fit(recording, fits)
        se = np.sqrt(np.abs(np.diag(cov)))
        C = tau / R * 1e3
        g = np.array([-C / R, C / tau, 0.0])  # dC/dR, dC/dtau
        out.R_bridge_MOhm, out.R_bridge_sd_MOhm = float(Rb), float(se[2])
        R_in = R + (0.0 if compensate_bridge else Rb)
        R_se = se[0] if compensate_bridge else float(np.sqrt(max(cov[0, 0] + cov[2, 2] + 2 * cov[0, 2], 0)))
        out.R_in_peak_MOhm = out.R_in_steady_MOhm = float(R_in)
        out.R_in_peak_sd_MOhm = out.R_in_steady_sd_MOhm = float(R_se)
        out.tau_m_ms, out.tau_m_sd_ms = float(tau), float(se[1])
        out.C_pF, out.C_sd_pF = float(C), float(np.sqrt(max(g @ cov @ g, 0.0)))
        out.fit_r2_min, out.fit_rmse_mV = float(r2), float(rmse)
        out.V_rest_zero_mV = V_rest - out.R_in_steady_MOhm * hold * 1e-3
        return out
    one = len(fits) == 1
    jumps = np.array([f.jump_mV for f in fits])
    dIs = np.array([f.dI_pA for f in fits]) * 1e-3  # nA: mV / nA = MΩ
    Rb = float(jumps @ dIs / (dIs @ dIs))  # least squares through the origin, large steps weigh most
    out.R_bridge_MOhm = Rb
    if len(fits) > 1:
        out.R_bridge_sd_MOhm = float(np.sqrt(np.sum((jumps - Rb * dIs) ** 2) / (len(fits) - 1) / (dIs @ dIs)))
    corr = np.full(len(fits), Rb if compensate_bridge else 0.0)
    out.R_in_peak_MOhm, out.R_in_peak_sd_MOhm = _stat(
        [f.dV_peak_mV / f.dI_pA * 1e3 - c for f, c in zip(fits, corr)])
    out.R_in_steady_MOhm, out.R_in_steady_sd_MOhm = _stat(
        [f.dV_ss_mV / f.dI_pA * 1e3 - c for f, c in zip(fits, corr)])
    out.tau_m_ms, out.tau_m_sd_ms = _stat([f.tau_ms for f in fits], fits[0].tau_se_ms if one else None)
    out.C_pF, out.C_sd_pF = _stat([f.C_pF for f in fits],
                                  fits[0].C_pF * fits[0].tau_se_ms / fits[0].tau_ms if one else None)
    out.sag_ratio, out.sag_ratio_sd = _stat([f.sag_ratio for f in fits])
    out.fit_r2_min = float(min(f.r2 for f in fits))
    out.fit_rmse_mV = float(np.median([f.rmse_mV for f in fits]))
    out.V_rest_zero_mV = V_rest - out.R_in_steady_MOhm * hold * 1e-3
    return out
