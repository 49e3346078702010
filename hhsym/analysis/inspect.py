"""The summary behind ``hhsym inspect``: sweeps, passive properties, noise; JSON and figure.

The JSON (written atomically) has exactly these keys::

    n_sweeps            int
    sampling_rate_hz    float (Hz)
    sweeps              list of {index, I_step_pA, n_spikes, V_rest_mV}
    passive             {V_rest_mV, R_in_MOhm, tau_m_ms, C_pF, sag_ratio}
    noise               {white_mV, slow_mV}

``index`` is the sweep number as the file numbers it; ``I_step_pA`` the test-step amplitude
relative to the holding current; ``n_spikes`` eFEL's spike count over the whole sweep (upward
crossings of −20 mV); ``V_rest_mV`` the sweep's baseline before its first step (at the holding
current).  ``R_in_MOhm`` is the steady-state input resistance with the bridge jump removed;
``sag_ratio`` is null without hyperpolarising steps; values that cannot be measured are null.
"""

from __future__ import annotations

import json

import numpy as np

from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError
from hhsym.analysis.features import features as _features
from hhsym.analysis.features import noise as _noise
from hhsym.analysis.alignment import _ap_begin
from hhsym.analysis.passive import passive_properties
from hhsym.jsontypes import json_types
from hhsym.io.recording import Recording
from hhsym.analysis.steps import protocol as _protocol

__all__ = ["inspect", "summary_text", "write_json", "JSON_KEYS"]

#: The JSON keys (top level and nested), stable and documented.
JSON_KEYS = {
    "n_sweeps": None, "sampling_rate_hz": None,
    "sweeps": ("index", "I_step_pA", "n_spikes", "V_rest_mV"),
    "passive": ("V_rest_mV", "R_in_MOhm", "tau_m_ms", "C_pF", "sag_ratio"),
    "noise": ("white_mV", "slow_mV"),
}


class Inspection(dict):
    """The JSON summary (a dict) with the full analysis in attributes.

    Attributes
    ----------
    recording : Recording
    protocol : hhsym.analysis.steps.Protocol
    passive : hhsym.analysis.passive.PassiveProperties
    features : dict
        :func:`hhsym.analysis.features.features` output.
    noise : dict
        :func:`hhsym.analysis.features.noise` output.
    """


def _baseline(recording, prot, peaks):
    out = []
    for s, eps in enumerate(prot.epochs):
        stop = eps[0].stop
        if len(peaks[s]):
            stop = min(stop, int(np.searchsorted(recording.t, peaks[s][0] - 5.0)))
        out.append(float(np.mean(recording.V[s, :stop])) if stop >= 5 else None)
    return out


def inspect(source, current=None, sweeps=None, channel=None, json_path=None, plot_path=None,
            compensate_bridge=True):
    """Summarise a recording: sweeps, passive properties, noise; optionally JSON and a figure.

    Parameters
    ----------
    source : str, os.PathLike or Recording
        A file :func:`hhsym.io.read` reads, or a recording already read.
    current : str or os.PathLike, optional
        Igor only: the current wave(s).
    sweeps : int or sequence of int, optional
        Sweep numbers (as the file numbers them); default all.
    channel : int or str, optional
        Voltage channel (ABF) or electrode (NWB).
    json_path : str or os.PathLike, optional
        Write the summary here as JSON (atomically).
    plot_path : str or os.PathLike, optional
        Write the figure here (PNG; atomically).
    compensate_bridge : bool, optional
        Remove the bridge jump from the input resistance (default True).

    Returns
    -------
    Inspection
        The JSON summary (a dict with the keys of :data:`JSON_KEYS`; mV, pA, MΩ, ms, pF, Hz),
        with the full analysis as attributes.
    """
    if isinstance(source, Recording):
        rec = source if sweeps is None else source.select(sweeps)
    else:
        from hhsym.io.reader import read

        rec = read(source, current=current, sweeps=sweeps, channel=channel)
    prot = _protocol(rec)
    feats = _features(rec, prot)
    peaks = [np.array(s["spike_times_ms"]) for s in feats["sweeps"]]
    pas = passive_properties(rec, compensate_bridge=compensate_bridge, prot=prot, ap_begin=_ap_begin(rec))
    nz = _noise(rec, prot, peaks)
    base = _baseline(rec, prot, peaks)
    out = Inspection(json_types({
        "n_sweeps": rec.n_sweeps,
        "sampling_rate_hz": rec.sampling_rate_hz,
        "sweeps": [{"index": s["index"], "I_step_pA": s["I_step_pA"], "n_spikes": s["n_spikes"],
                    "V_rest_mV": base[k]} for k, s in enumerate(feats["sweeps"])],
        "passive": {"V_rest_mV": pas.V_rest_mV, "R_in_MOhm": pas.R_in_steady_MOhm,
                    "tau_m_ms": pas.tau_m_ms, "C_pF": pas.C_pF, "sag_ratio": pas.sag_ratio},
        "noise": {"white_mV": nz["white_mV"], "slow_mV": nz["slow_mV"]},
    }))
    out.recording, out.protocol, out.passive, out.features, out.noise = rec, prot, pas, feats, nz
    if json_path is not None:
        write_json(out, json_path)
    if plot_path is not None:
        from hhsym.analysis.plot import plot_inspection

        plot_inspection(out, plot_path)
    return out


def write_json(summary, path):
    """Write the JSON summary atomically.

    Parameters
    ----------
    summary : dict
        :func:`inspect` output.
    path : str or os.PathLike
        Target file.
    """
    text = json.dumps(dict(summary), indent=1, allow_nan=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text), error=HHSymError)


def _pm(value, sd, fmt="{:.4g}"):
    if value is None or not np.isfinite(value):
        return "n/a"
    text = fmt.format(value)
    if sd is not None and np.isfinite(sd):
        text += " ± " + fmt.format(sd)
    return text


def summary_text(ins):
    """The one-screen text summary of an :func:`inspect` result.

    Parameters
    ----------
    ins : Inspection
        :func:`inspect` output.

    Returns
    -------
    str
    """
    rec, pas, nz = ins.recording, ins.passive, ins.noise
    m = rec.meta
    lines = [
        f"{rec.file}  [{m.get('format', '?')}]  protocol {m.get('protocol', '') or '-'}",
        f"{rec.n_sweeps} sweeps of {rec.t[-1] - rec.t[0] + rec.dt:.6g} ms at {rec.sampling_rate_hz:.6g} Hz; "
        f"units as found V {m.get('units', {}).get('V', '?')}, I {m.get('units', {}).get('I', '?')} "
        f"({m.get('current_source', '?')} current); holding {_pm(pas.holding_pA, pas.holding_sd_pA)} pA",
        "",
        f"{'sweep':>6} {'I_step pA':>10} {'spikes':>6} {'V_rest mV':>10} {'latency ms':>10}",
    ]
    for s, row in zip(ins.features["sweeps"], ins["sweeps"]):
        lat = s["first_spike_latency_ms"]
        vr = row["V_rest_mV"]
        lines.append(f"{row['index']:>6} {row['I_step_pA']:>10.1f} {row['n_spikes']:>6d} "
                     f"{(f'{vr:.2f}' if vr is not None else 'n/a'):>10} "
                     f"{(f'{lat:.1f}' if lat is not None else '-'):>10}")
    comp = "removed" if pas.bridge_compensated else "included"
    lines += [
        "",
        f"passive ({pas.method}, {pas.n_onsets} onset(s); fit R² ≥ {_pm(pas.fit_r2_min, None, '{:.3f}')}, "
        f"RMS {_pm(pas.fit_rmse_mV, None, '{:.3f}')} mV):",
        f"  V_rest {_pm(pas.V_rest_mV, pas.V_rest_sd_mV)} mV (at the holding current; "
        f"{_pm(pas.V_rest_zero_mV, None)} mV at 0 pA)",
        f"  R_in steady {_pm(pas.R_in_steady_MOhm, pas.R_in_steady_sd_MOhm)} MΩ, peak "
        f"{_pm(pas.R_in_peak_MOhm, pas.R_in_peak_sd_MOhm)} MΩ (bridge {comp})",
        f"  tau_m {_pm(pas.tau_m_ms, pas.tau_m_sd_ms)} ms, C {_pm(pas.C_pF, pas.C_sd_pF)} pF "
        f"(area {_pm(pas.C_pF * 1e-6, None, '{:.3g}')} cm² at 1 µF/cm²), "
        f"sag ratio {_pm(pas.sag_ratio, pas.sag_ratio_sd, '{:.3f}')}",
        f"  bridge jump {_pm(pas.R_bridge_MOhm, pas.R_bridge_sd_MOhm)} MΩ; V/I alignment: V leads I by "
        f"{pas.alignment_lag_samples} sample(s) (evidence {pas.alignment_snr:.1f} SD)",
        f"noise in quiet stretches: white {_pm(nz['white_mV'], None, '{:.3f}')} mV, slow "
        f"{_pm(nz['slow_mV'], None, '{:.3f}')} mV ({nz['n_stretches']} stretches)",
    ]
    return "\n".join(lines)
