"""Current steps in a sweep: piecewise-constant epochs of a protocol or a recorded current.

A protocol waveform (ABF ``sweepC``, NWB stimulus) changes exactly at its epoch edges; a
recorded current (Igor ``Ch0``) is noisy, quantised and has brief jumps, so its edges are where
a running median changes by more than five times the sample-to-sample noise.  :func:`protocol`
puts the sweeps of a recording side by side: the holding current, the windows shared by all
sweeps and the *test step*, the window whose amplitude varies most from sweep to sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter
from scipy.stats import trim_mean

__all__ = ["Epoch", "Protocol", "epochs", "protocol", "white_sigma"]


@dataclass(frozen=True)
class Epoch:
    """A stretch of constant current: samples ``[start, stop)`` at ``level`` (pA)."""

    start: int
    stop: int
    level: float


@dataclass
class Protocol:
    """The step protocol of a recording (all currents in pA, indices in samples).

    Attributes
    ----------
    epochs : list of list of Epoch
        Per sweep, its epochs in time order.
    holding_pA : numpy.ndarray
        Per sweep, the current of the first epoch (pA).
    threshold_pA : float
        Smallest current change taken as a step (pA).
    windows : list of tuple of int
        ``(start, stop)`` sample windows between the edges of all sweeps together.
    amplitudes_pA : numpy.ndarray, shape (n_sweeps, n_windows)
        Median current of each window minus the holding current (pA).
    test_window : tuple of int or None
        The window of the test step, None if no sweep has a step.
    I_step_pA : numpy.ndarray
        Per sweep, the test-step amplitude relative to holding (pA; 0 without a step).
    """

    epochs: list
    holding_pA: np.ndarray
    threshold_pA: float
    windows: list = field(default_factory=list)
    amplitudes_pA: np.ndarray = None
    test_window: tuple = None
    I_step_pA: np.ndarray = None


def white_sigma(x) -> float:
    r"""Robust sample-to-sample (white) noise SD of ``x``: 1.4826 MAD(diff x) / √2 (units of x)."""
    d = np.diff(np.asarray(x, dtype=float))
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _level(x):
    """Level of a stretch of current (pA): its 10 %-trimmed mean (brief jumps ignored)."""
    return float(trim_mean(x, 0.1)) if len(x) >= 10 else float(np.mean(x))


def epochs(I, dt, min_step_pA=2.0):
    """Split one sweep's current into epochs of constant level.

    Parameters
    ----------
    I : array_like, shape (n_samples,)
        Injected current (pA).
    dt : float
        Sampling step (ms).
    min_step_pA : float, optional
        Smallest change taken as a step (pA, default 2); a noisy current raises it to five
        times its white noise.

    Returns
    -------
    list of Epoch
        Epochs in time order covering the sweep; each level is the 10 %-trimmed mean (pA).
    threshold : float
        The step threshold used (pA).
    """
    I = np.asarray(I, dtype=float)
    n = I.size
    d = np.diff(I)
    scale = max(float(np.max(np.abs(I))), 1.0)
    changes = np.flatnonzero(np.abs(d) > 1e-9 * scale)
    sigma = white_sigma(I)
    if changes.size <= 64 or sigma == 0.0:  # a protocol waveform: exact edges
        thr = float(min_step_pA)
        edges = [int(k) + 1 for k in changes if abs(d[k]) >= thr]
    else:  # a recorded current: edges of a running median
        thr = max(float(min_step_pA), 5.0 * sigma)
        w = int(max(5, round(2.0 / dt))) | 1
        m = median_filter(I, size=w, mode="nearest")
        lag = np.zeros(n)
        h = w // 2 + 1
        lag[h:n - h] = m[2 * h:] - m[:n - 2 * h]  # centred difference across 2h samples
        mag = np.abs(lag)
        edges = []
        k = 0
        above = mag > thr
        while k < n:
            if not above[k]:
                k += 1
                continue
            j = k
            while j < n and above[j]:
                j += 1
            centre = k + int(np.argmax(mag[k:j]))
            lo, hi = max(1, centre - 2 * h), min(n - 1, centre + 2 * h)
            edges.append(lo + int(np.argmax(np.abs(I[lo:hi + 1] - I[lo - 1:hi]) * np.sign(lag[centre])
                                            * np.sign(I[lo:hi + 1] - I[lo - 1:hi]))))
            k = j
    bounds = [0] + sorted(set(e for e in edges if 0 < e < n)) + [n]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        level = _level(I[a:b])
        if out and abs(level - out[-1].level) < thr:
            prev = out.pop()
            a = prev.start
            level = _level(I[a:b])
        out.append(Epoch(int(a), int(b), level))
    return out, thr


def protocol(recording, min_step_pA=2.0):
    """The step protocol of a recording: holding current, shared windows, test step.

    Parameters
    ----------
    recording : Recording
        The sweeps (I in pA).
    min_step_pA : float, optional
        Smallest change taken as a step (pA, default 2).

    Returns
    -------
    Protocol
    """
    per, thrs = [], []
    for I in recording.I:
        e, thr = epochs(I, recording.dt, min_step_pA)
        per.append(e)
        thrs.append(thr)
    thr = float(max(thrs))
    holding = np.array([e[0].level for e in per])
    n = recording.n_samples
    tol = max(2, int(round(1.0 / recording.dt)))
    edges = sorted(ep.start for e in per for ep in e[1:])
    merged = []
    for x in edges:
        if not merged or x - merged[-1] > tol:
            merged.append(x)
    bounds = [0] + merged + [n]
    windows = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    amps = np.array([[_level(I[a + (b - a) // 10: b - (b - a) // 10 or b]) - h
                      for a, b in windows] for I, h in zip(recording.I, holding)])
    amps[np.abs(amps) < thr] = 0.0
    test = None
    steps = np.zeros(recording.n_sweeps)
    if np.any(amps != 0):
        if recording.n_sweeps > 1:
            score = np.round(np.std(amps, axis=0), 6)
            if np.all(score == 0):
                score = np.max(np.abs(amps), axis=0)
        else:
            score = np.abs(amps[0])
        j = int(np.argmax(score))  # first maximum: the earliest window
        test = windows[j]
        steps = amps[:, j].copy()
    return Protocol(per, holding, thr, windows, amps, test, steps)
