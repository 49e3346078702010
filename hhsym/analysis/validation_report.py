"""The report of a held-out validation: f-I curve, voltage overlays and the table (``hhsym validate --report``).

The folder holds ``validation.md`` and ``validation.html`` (the table and the summary),
``fI.png`` (recorded and predicted firing rate in the test step against the step amplitude,
pA), ``overlay_<index>.png`` per sweep (recorded and predicted V, and the current in pA) and
``validation.json``.  It is built beside its target and swapped in whole
(:func:`hhsym.atomic.atomic_folder`).
"""

from __future__ import annotations

import os

from hhsym.atomic import atomic_folder, atomic_write
from hhsym.errors import HHSymError

__all__ = ["write_validation_report"]

_FEATURES = (("first_spike_latency_ms", "latency (ms)", ".1f"), ("AP_peak_mV", "AP peak (mV)", ".1f"),
             ("AP_half_width_ms", "half-width (ms)", ".2f"), ("AHP_depth_mV", "AHP depth (mV)", ".1f"))


def _fmt(value, spec):
    return "–" if value is None else format(value, spec)


def plot_fI(result, path):
    """Recorded and predicted firing rate in the test step (Hz) against the step amplitude (pA).

    Parameters
    ----------
    result : ValidationResult
    path : str
        PNG written atomically.
    """
    from hhsym.plotting import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    fI = result.fI
    ax.plot(fI["I_step_pA"], fI["rate_recorded_hz"], "o-", color="0.3", label="recorded")
    shown = [(i, r) for i, r in zip(fI["I_step_pA"], fI["rate_model_hz"]) if r is not None]
    if shown:
        ax.plot(*zip(*shown), "s--", color="C3", label="model")
    ax.set_xlabel("step amplitude (pA)")
    ax.set_ylabel("firing rate in the step (Hz)")
    ax.set_title("f-I curve, held-out sweeps")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_overlay(result, k, path):
    """Sweep ``k``: recorded and predicted V (mV), and the current (pA), against time (ms).

    Parameters
    ----------
    result : ValidationResult
    k : int
        Position of the sweep in ``result.sweeps``.
    path : str
        PNG written atomically.
    """
    from hhsym.plotting import _pyplot, save_figure

    plt = _pyplot()
    row = result.sweeps[k]
    fig, (ax_v, ax_i) = plt.subplots(2, 1, sharex=True, figsize=(8, 4.5), height_ratios=[3, 1])
    ax_v.plot(result.t, result.V_recorded[k], lw=1.6, color="0.6", label="recorded")
    if not row["diverged"]:
        ax_v.plot(result.t, result.V_model[k], lw=0.8, color="C3", label="model")
    gamma = _fmt(row["gamma"], ".2f")
    ax_v.set_title(f"Sweep {row['index']} ({row['I_step_pA']:.0f} pA): spikes {row['recorded']['n_spikes']} "
                   f"recorded / {'diverged' if row['diverged'] else row['model']['n_spikes']} model, Γ {gamma}")
    ax_v.set_ylabel("V (mV)")
    ax_v.legend(loc="upper right", fontsize=8)
    ax_i.plot(result.t, result.I_pA[k], lw=0.8, color="0.3")
    ax_i.set_ylabel("I (pA)")
    ax_i.set_xlabel("t (ms)")
    save_figure(fig, path)


def markdown(result, figures=()):
    """The report's Markdown: sources, summary, per-sweep table, figures.

    Parameters
    ----------
    result : ValidationResult
    figures : sequence of str
        Figure file names (relative to the report).

    Returns
    -------
    str
    """
    sm, area = result.summary, result.membrane_area
    fit = result.fit["path"] or result.fit["kind"]
    area_text = "none (hhsym densities)" if area.get("area_cm2") is None else f"{area['area_cm2']:.4g} cm²"
    lines = ["# Held-out validation", "",
             (f"Model: {fit} ({result.fit['kind']}). Recording: {result.recording['file']}, sweeps "
              f"{result.recording['sweeps']} at {result.recording['sampling_rate_hz']:.6g} Hz. Membrane area "
              f"{area_text} ({area.get('note', area.get('source'))})."), "",
             (f"Features by eFEL in the test step {result.stim_window_ms[0]:.1f}–{result.stim_window_ms[1]:.1f} "
              "ms; Γ ±2 ms on the peak times; subthreshold RMS of V_model − V_recorded farther than 5 ms from "
              "any recorded or predicted spike peak."), "",
             "## Summary", "", "| figure | value |", "|---|---|",
             f"| sweeps (model diverged) | {sm['n_sweeps']} ({sm['n_diverged']}) |",
             f"| spikes recorded / model | {sm['n_spikes_recorded']} / {sm['n_spikes_model']} |",
             f"| spike-count error, Σ abs(Δn) / Σ n_recorded | {_fmt(sm['spike_count_error'], '.3f')} |",
             f"| median Γ | {_fmt(sm['median_gamma'], '.3f')} |",
             f"| median subthreshold RMS (mV) | {_fmt(sm['median_subthreshold_rms_mV'], '.3f')} |"]
    lines += [f"| median abs. error, {label} | {_fmt(sm['median_abs_error'][k], spec)} |"
              for k, label, spec in _FEATURES]
    lines += ["", "## Sweeps (recorded / model)", "",
              "| sweep | I (pA) | spikes | Γ | " + " | ".join(label for _, label, _ in _FEATURES)
              + " | subthreshold RMS (mV) |", "|---" * (5 + len(_FEATURES)) + "|"]
    for s in result.sweeps:
        r, m = s["recorded"], s["model"]
        model_n = "diverged" if s["diverged"] else m["n_spikes"]
        cells = [f"{_fmt(r[k], spec)} / {_fmt(m[k], spec)}" for k, _, spec in _FEATURES]
        lines.append(f"| {s['index']} | {s['I_step_pA']:.1f} | {r['n_spikes']} / {model_n} | "
                     f"{_fmt(s['gamma'], '.2f')} | " + " | ".join(cells)
                     + f" | {_fmt(s['subthreshold_rms_mV'], '.2f')} |")
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def write_validation_report(result, folder):
    """Write the validation report folder, swapped in whole.

    Parameters
    ----------
    result : ValidationResult
    folder : str or os.PathLike
        The report folder (its parent must exist); a previous one is replaced as a whole.

    Returns
    -------
    str
        Path of ``validation.md`` in ``folder``.
    """
    from hhsym.analysis.validation_files import write_json
    from hhsym.report import _html  # the report's dependency-free Markdown -> HTML
    from hhsym.validate import check_output_path

    folder = check_output_path(folder, "report", what="folder")
    with atomic_folder(folder) as work:
        figures = ["fI.png"]
        plot_fI(result, os.path.join(work, "fI.png"))
        for k, row in enumerate(result.sweeps):
            name = f"overlay_{row['index']}.png"
            plot_overlay(result, k, os.path.join(work, name))
            figures.append(name)
        text = markdown(result, figures)
        for name, content in (("validation.md", text), ("validation.html", _html(text, "Held-out validation"))):
            atomic_write(os.path.join(work, name), lambda f, c=content: f.write(c), error=HHSymError)
        write_json(result, os.path.join(work, "validation.json"))
    return os.path.join(folder, "validation.md")
