"""Cramér–Rao error bars of a closed-form model's constants under output error.

:func:`standard_errors` inverts the Fisher information of the output error
(:mod:`hhsym.estimate.losses.output_error`) at given constants: how well recordings
with a given noise on V determine each rate constant, for any unbiased
estimator that fits a free initial state per window.
"""

from __future__ import annotations

import numpy as np

from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.estimate.optimise.window_lm import schur_information

__all__ = ["standard_errors"]

#: Largest RK4 step (ms) of the information matrix's runs when ``substeps`` is not given.
INFORMATION_STEP = 0.0125


def standard_errors(template, data, fits, sigma, window=30.0, substeps=None, stride=1, states=None):
    r"""Cramér–Rao standard deviations of the public constants of a closed-form model, at a noise level on V.

    The Fisher information of the output error at ``fits`` — every sample of
    V compared, Gaussian noise of standard deviation ``sigma`` (mV), a free
    initial state per window of ``window`` ms (profiled out through the
    Schur complement, :func:`hhsym.estimate.optimise.window_lm.schur_information`) — inverted: no
    unbiased estimator that uses these recordings with free initial states
    per window does better.  Longer windows carry more information (fewer
    free states): on bench_fit.py's 2 × 300 ms of HH at 0.5 mV the largest
    deviation falls from 72 % (3 ms, alpha_h's amplitude) to 3.2 % (30 ms).

    Parameters
    ----------
    template : ConductanceModel
        Structure, conductances, reversal potentials, C_m and powers.
    data : list of (dt, V, I)
        Recordings: step (ms), V (mV), I (µA/cm²); for a bound at the true
        model, noise-free recordings of it.
    fits : dict
        Rate name -> :class:`~hhsym.estimate.rates.formfit.FormFit` at which the information is evaluated.
    sigma : float
        Noise standard deviation on V (mV).
    window : float
        Window (ms) of each free initial state.
    substeps : int, optional
        RK4 sub-steps per sample; default: steps of at most 0.0125 ms (2 at 40 kHz, 20 at 4 kHz).
    stride : int
        A residual every ``stride`` samples.
    states : ndarray (n_windows, 1 + n_gates), optional
        Initial states of the windows to start their fit from, e.g. the
        ``states`` of an :class:`~hhsym.estimate.losses.output_error.OutputErrorFit`
        over the same windows.  By default each window starts at the recorded
        V, which on noisy recordings and long windows can leave the model
        firing at other times than the recording (a wrong information matrix).

    Returns
    -------
    dict
        Rate name -> {public constant: relative standard deviation}; for an
        exponential ``A`` (at V = 0) and ``k``, for a sigmoid or linoid
        ``A``, ``B`` and ``k`` (``B`` relative to its own value), for a
        constant ``c``; a sum's constants carry the suffixes 1 and 2.
        ``inf`` where the information matrix does not bound a constant (not
        positive definite there: e.g. a fit that misses the recording).
    """
    fam = FormFamily(template, fits)
    tp = TrajectoryProblem(fam, template, data, window=window, substeps=substeps, stride=stride,
                           max_step=INFORMATION_STEP)
    p = fam.pack(fits)
    _, Y, _ = tp.fit(p, states, max_iter=40, fit_family=False)
    S = schur_information(tp.blocks(p, Y, True), p, fam.used)
    var = np.diag(np.linalg.inv(S)) * float(sigma) ** 2 / tp.n_residuals
    # a non-positive variance: the information matrix is not positive definite there (the data do not
    # determine that constant at these constants, e.g. a model that misses the recording): unbounded
    sd = np.where(var > 0, np.sqrt(np.abs(var)), np.inf)
    col = {int(j): n for n, j in enumerate(fam.used)}
    P = p.reshape(len(fam.gate_names), fam.n_per_gate)
    out = {}
    for j, g in enumerate(fam.gate_names):
        for kind in ("alpha", "beta"):
            k = f"{kind}_{g}"
            off, fams = fam._slices[k].start, fam.families[k]
            out[k] = {}
            for n, f in enumerate(fams):
                x = "" if len(fams) == 1 else str(n + 1)
                s = [sd[col[j * fam.n_per_gate + off + q]] for q in range(f.n_params)]
                th = P[j, off:off + f.n_params]
                if f.name == "fixed":  # a kept rate: nothing fitted
                    pass
                elif f.name == "constant":
                    out[k]["c" + x] = float(s[0])
                elif f.name == "exponential":
                    out[k].update({"A" + x: float(s[0]), "k" + x: float(s[1] / abs(th[1]))})
                else:  # log A, B, log |k|
                    out[k].update({"A" + x: float(s[0]), "B" + x: float(s[1] / abs(th[1])), "k" + x: float(s[2])})
                off += f.n_params
    return out
