"""Matplotlib figures.  matplotlib is imported lazily, with a non-interactive backend."""

from __future__ import annotations

import os

import numpy as np

from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError
from hhsym.model import gating_from_rates

__all__ = ["plot_traces", "plot_rates", "plot_gating", "save_figure"]


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Save ``fig`` to ``path`` atomically (temporary file, then rename) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
        Destination; the format follows the extension (``.png``, ``.pdf``, ``.svg``).
    """
    path = os.fspath(path)
    fmt = (os.path.splitext(path)[1] or ".png")[1:]
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=120, bbox_inches="tight"),
                     binary=True, error=HHSymError)
    finally:
        _pyplot().close(fig)


def plot_traces(traces, path=None, labels=None, title=None, max_traces=6):
    """Voltage (mV) and injected current (µA/cm²) against time (ms).

    Parameters
    ----------
    traces : Trace, TraceSet or list of Trace
        What to draw; several entries (e.g. data, hybrid, distilled) overlay.
    path : str, optional
        Where to save the figure (PNG); returned unsaved when None.
    labels : list of str, optional
        Legend entries, one per entry of ``traces``.
    title : str, optional
    max_traces : int
        At most this many traces of a TraceSet are drawn.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure when ``path`` is None.
    """
    from hhsym.io import Trace

    plt = _pyplot()
    items = [traces] if isinstance(traces, Trace) else list(traces)[:max_traces]
    fig, (ax_v, ax_i) = plt.subplots(2, 1, sharex=True, figsize=(8, 4.5), height_ratios=[3, 1])
    styles = ["-", "--", ":", "-."]
    for k, tr in enumerate(items):
        label = labels[k] if labels and k < len(labels) else None
        if labels and k == 0:  # the reference (e.g. the recording): wide and pale under the rest
            ax_v.plot(tr.t, tr.V, lw=2.5, color="0.6", label=label)
        else:
            ax_v.plot(tr.t, tr.V, styles[k % 4] if labels else "-", lw=1.0, label=label)
        ax_i.plot(tr.t, tr.I, lw=0.9)
    ax_v.set_ylabel("V (mV)")
    ax_i.set_ylabel("I (µA/cm²)")
    ax_i.set_xlabel("t (ms)")
    if labels:
        ax_v.legend(loc="upper right", fontsize=8)
    if title:
        ax_v.set_title(title)
    if path is None:
        return fig
    save_figure(fig, path)
    return None


def plot_rates(curves, V_grid, path=None, reference=None, v_range=None, title=None, extra=None):
    """Rate functions (1/ms, log scale) against V (mV), optionally against a reference.

    Parameters
    ----------
    curves : dict
        Rate name -> array over ``V_grid`` (the learned or distilled rates).
    V_grid : array_like
        Voltages (mV).
    path : str, optional
        Where to save (PNG); returned unsaved when None.
    reference : dict, optional
        Rate name -> array, drawn dashed (e.g. the true rates).
    v_range : (float, float), optional
        Supported voltage range (mV), shaded.
    title : str, optional
    extra : dict, optional
        Rate name -> array, drawn dotted (e.g. the distilled closed forms).

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    plt = _pyplot()
    names = list(curves)
    cols = 2
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(8, 2.4 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        ax.semilogy(V_grid, _drawable(curves[name]), lw=1.5, label="learned")
        if extra is not None and name in extra:
            ax.semilogy(V_grid, _drawable(extra[name]), ":", color="C3", lw=1.5, label="distilled")
        if reference is not None and name in reference:
            ax.semilogy(V_grid, reference[name], "k--", lw=1, label="true")
        if v_range is not None:
            ax.axvspan(v_range[0], v_range[1], color="0.9", zorder=0)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("V (mV)")
        ax.set_ylabel("1/ms")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is None:
        return fig
    save_figure(fig, path)
    return None


def _drawable(values, lo=1e-8, hi=1e8):
    """Values for a log axis: non-finite or out-of-range points become gaps, not errors."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values) & (values > lo) & (values < hi), values, np.nan)


def plot_gating(rates, V_grid, path=None, reference=None, v_range=None, extra=None):
    """Steady states x_inf(V) and time constants tau(V) (ms) of every gate.

    Parameters
    ----------
    rates : dict
        ``alpha_x``/``beta_x`` -> array over ``V_grid`` (1/ms).
    V_grid : array_like
        Voltages (mV).
    path : str, optional
        Where to save (PNG); returned unsaved when None.
    reference, extra : dict, optional
        Rates of the true / distilled model, drawn dashed / dotted.
    v_range : (float, float), optional
        Supported voltage range (mV), shaded.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    plt = _pyplot()
    curves = gating_from_rates(rates)
    fig, (ax_x, ax_t) = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, (g, (xinf, tau)) in enumerate(curves.items()):
        color = f"C{k}"
        ax_x.plot(V_grid, xinf, color=color, label=f"{g} learned")
        ax_t.semilogy(V_grid, tau, color=color)
        for other, style, label in ((extra, ":", "distilled"), (reference, "--", "true")):
            if other is not None:
                ox, ot = gating_from_rates(other)[g]
                ax_x.plot(V_grid, ox, style, color=color, lw=1, label=f"{g} {label}")
                ax_t.semilogy(V_grid, _drawable(ot), style, color=color, lw=1)
    for ax in (ax_x, ax_t):
        if v_range is not None:
            ax.axvspan(v_range[0], v_range[1], color="0.92", zorder=0)
        ax.set_xlabel("V (mV)")
    ax_x.set_ylabel("x_inf")
    ax_t.set_ylabel("tau (ms)")
    ax_x.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    if path is None:
        return fig
    save_figure(fig, path)
    return None
