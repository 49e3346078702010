"""The ``hhsym inspect`` figure: all sweeps (V, I), the f-I curve and the passive fit."""

from __future__ import annotations

import os

import numpy as np

from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError

__all__ = ["plot_inspection"]


def plot_inspection(ins, path):
    """Draw an :func:`hhsym.analysis.inspect.inspect` result and save it atomically (PNG).

    Parameters
    ----------
    ins : Inspection
        :func:`hhsym.analysis.inspect.inspect` output.
    path : str or os.PathLike
        Target image (``.png``; ``.pdf`` and ``.svg`` also work).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rec, pas, feats = ins.recording, ins.passive, ins.features
    fig = Figure(figsize=(11, 7), layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 2, height_ratios=[2, 1])
    axV, axI = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[1, 0])
    axF, axP = fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
    colors = [f"C{k % 10}" for k in range(rec.n_sweeps)]
    step = max(1, rec.n_samples // 6000)
    for k in range(rec.n_sweeps):
        axV.plot(rec.t[::step], rec.V[k, ::step], lw=0.6, color=colors[k])
        axI.plot(rec.t[::step], rec.I[k, ::step], lw=0.6, color=colors[k])
    axV.set(ylabel="V (mV)", title=f"{os.path.basename(rec.file)}: {rec.n_sweeps} sweeps")
    axI.set(xlabel="t (ms)", ylabel="I (pA)")
    fI = feats["fI"]
    axF.plot(fI["I_step_pA"], fI["rate_hz"], "o-", color="k")
    axF.set(xlabel="I step (pA)", ylabel="rate in step (Hz)", title="f-I curve (eFEL, −20 mV)")
    dt = rec.dt
    joint = pas.method == "sub-threshold step onsets"
    for f in pas.onsets[:8]:
        t_s = rec.t[f.sample] - dt / 2
        lo = max(0, f.sample - int(round(5.0 / dt)))
        sl = slice(lo, f.fit_stop)
        axP.plot(rec.t[sl] - t_s, rec.V[f.sweep, sl], lw=0.6, color=colors[f.sweep % len(colors)])
        tt = rec.t[f.fit_start:f.fit_stop] - t_s
        if joint:  # the one membrane fitted to all onsets
            Rm = pas.R_in_steady_MOhm - (0.0 if pas.bridge_compensated else pas.R_bridge_MOhm)
            curve = f.V_base_mV + 1e-3 * f.dI_pA * (pas.R_bridge_MOhm + Rm * (1 - np.exp(-tt / pas.tau_m_ms)))
        else:  # this onset's own fit
            B = -f.R_fit_MOhm * f.dI_pA * 1e-3
            v = rec.V[f.sweep, f.fit_start:f.fit_stop]
            curve = float(np.mean(v - B * np.exp(-tt / f.tau_ms))) + B * np.exp(-tt / f.tau_ms)
        axP.plot(tt, curve, "k--", lw=0.8)
    axP.set(xlabel="t from step onset (ms)", ylabel="V (mV)",
            title=f"passive fit ({pas.method}): τ={pas.tau_m_ms:.3g} ms, R={pas.R_in_steady_MOhm:.3g} MΩ, "
                  f"C={pas.C_pF:.3g} pF")
    axP.title.set_fontsize(9)
    path = os.fspath(path)
    fmt = (os.path.splitext(path)[1] or ".png")[1:]
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=110), binary=True, error=HHSymError)
