r"""The bridge error of a current-clamp recording, measured model-free at the current's step edges.

When the injected current steps by :math:`\Delta I` between two samples, the
membrane potential cannot jump (it charges through :math:`C_m` at a finite
rate), but the drop across the electrode's uncompensated series resistance
does, at once: the recorded potential jumps by :math:`R_\mathrm{bridge}\,\Delta I`
(:mod:`hhsym.estimate.observation`).  Per edge:

.. math::

    R_e = \frac{\hat V_\mathrm{after}(t_e) - \hat V_\mathrm{before}(t_e)}{\Delta I_e}

with :math:`\hat V_\mathrm{before}`, :math:`\hat V_\mathrm{after}` straight
lines through the :data:`EDGE_SAMPLES` samples before and after the edge
(leaving out :data:`EDGE_GAP` sample on each side, where amplifier filters and
channel skew smear the edge) extrapolated to its middle :math:`t_e`, and
:math:`\Delta I_e` the change of the current's median across it.  The estimate
is the median of :math:`R_e` over every edge of at least :data:`MIN_STEP` pA
with no spike nearby (an action potential's upstroke is no bridge).  This is
how an experimenter balances the bridge by eye: the jump removed.

Measured on the shared recordings (``python -m hhsym.analysis.bridge FILE``):
pyABF's 171116sh_0018 13–14 MΩ on every edge of every sweep (median 13.6),
File_axon_5 about −1.7 MΩ (over-compensated), BluePyEfe's B6 and B8 (4 kHz)
6–12 MΩ.
"""

from __future__ import annotations

import numpy as np

from hhsym.errors import invalid

__all__ = ["bridge_from_edges", "edge_resistances", "MIN_STEP", "EDGE_SAMPLES", "EDGE_GAP"]

#: Smallest current step (pA) an edge must make to be measured.
MIN_STEP = 40.0
#: Samples on each side of an edge a straight line is fitted through.
EDGE_SAMPLES = 4
#: Samples left out on each side of an edge.
EDGE_GAP = 1
#: An edge with a sample above this potential (mV) within the lines' reach is left out (a spike).
SPIKE_LEVEL = -20.0


def edge_resistances(V, I_pA, min_step=MIN_STEP):
    """Every measurable step edge of one sweep and its jump ratio (MΩ).

    Parameters
    ----------
    V : array_like
        Recorded potential (mV).
    I_pA : array_like
        Injected current (pA) on the same samples.
    min_step : float
        Smallest step (pA).

    Returns
    -------
    list of (int, float, float)
        Per edge: its first sample, the step (pA) and :math:`R_e` (MΩ).
    """
    V = np.asarray(V, dtype=float)
    I = np.asarray(I_pA, dtype=float)
    if V.shape != I.shape or V.ndim != 1:
        raise invalid("V, I_pA", (V.shape, I.shape), "two 1-D arrays of one length")
    n, g = EDGE_SAMPLES, EDGE_GAP
    reach = n + g + 1
    dI = np.abs(np.diff(I))
    out = []
    k = reach
    while k < I.size - 1 - reach:
        if dI[k] < min_step / 2.0:  # a step of min_step may be split over two samples by a filter
            k += 1
            continue
        a, b = k, k + 1  # the step happens between samples a and b (b: first sample after it)
        while b < I.size - 1 - reach and dI[b] >= min_step / 4.0:
            b += 1
        if b + reach >= I.size:
            break
        step = float(np.median(I[b:b + reach]) - np.median(I[a - reach + 1:a + 1]))
        window = V[a - reach + 1:b + reach]
        if abs(step) >= min_step and np.all(window < SPIKE_LEVEL):
            before = np.arange(a - g - n + 1, a - g + 1)
            after = np.arange(b + g, b + g + n)
            t_e = 0.5 * (a + b)
            v_before = np.polyval(np.polyfit(before, V[before], 1), t_e)
            v_after = np.polyval(np.polyfit(after, V[after], 1), t_e)
            out.append((a, step, 1e3 * (v_after - v_before) / step))  # mV / pA = GΩ -> MΩ
        k = b + 1
    return out


def bridge_from_edges(sweeps, min_step=MIN_STEP):
    """The bridge error (MΩ) of a recording: the median jump ratio over its step edges.

    Parameters
    ----------
    sweeps : iterable of (V, I_pA)
        Recorded potential (mV) and injected current (pA) per sweep.
    min_step : float
        Smallest step (pA) measured.

    Returns
    -------
    float or None
        MΩ (positive: under-compensated, negative: over-compensated); None when no edge
        of at least ``min_step`` pA away from spikes exists (e.g. noise-only currents).
    """
    R = [r for V, I in sweeps for _, _, r in edge_resistances(V, I, min_step)]
    return float(np.median(R)) if R else None


def _main(argv=None):
    import argparse

    from hhsym.io.reader import read

    ap = argparse.ArgumentParser(description="the bridge error of a recording, from its step edges")
    ap.add_argument("recording")
    args = ap.parse_args(argv)
    rec = read(args.recording)
    for k, s in enumerate(rec.sweep_numbers):
        edges = edge_resistances(rec.V[k], rec.I[k])
        print(f"sweep {s}: " + ", ".join(f"{step:+.0f} pA {r:.1f} MOhm" for _, step, r in edges))
    print(f"bridge error (median): {bridge_from_edges(zip(rec.V, rec.I))} MOhm")


if __name__ == "__main__":
    _main()
