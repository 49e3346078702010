r"""Fits judge themselves: does the fitted model reproduce the recordings it was fitted to?

After ``fit`` an estimator runs its fitted model freely under each training
recording's current (V from the first sample, gates at steady state) and
compares the result with the recorded V:

* ``rms_mV`` — root-mean-square difference over all samples (mV);
* ``scale_mV`` — the recorded V's own standard deviation (mV): a model that
  sits at rest scores ``rms ≈ scale``;
* ``gamma`` — the spike coincidence factor Γ (±2 ms, Kistler et al. 1997)
  between recorded and reproduced spikes (upward crossings of 0 mV), pooled
  over the traces; ``None`` when neither has a spike;
* ``noise_mV`` — the estimated noise on the recorded V.

The verdict is ``"poor"`` when the model diverges, when Γ < :data:`GAMMA_MIN`
on recordings with spikes, or when ``rms > RMS_SHARE * scale`` and also more
than :data:`NOISE_FACTOR` times the noise (a fit cannot beat the noise);
otherwise ``"good"``.

One exception to the RMS rule: a spiking model run freely for hundreds of
milliseconds drifts in spike timing under the smallest error in its
constants (noise on the recording is enough), and every shifted spike costs
tens of mV of RMS.  An estimator that fits over windows restarted from the
recording (``FormEstimator``) therefore also passes its *windowed* output-error
RMS (``window_rms_mV``); when that is within :data:`NOISE_FACTOR` times the
noise and the spikes are reproduced (Γ ≥ :data:`GAMMA_MIN`), the free run's
RMS alone does not make the fit poor.  (Measured on 2 x 100 ms of HH with
0.5 mV of noise: windowed RMS 0.50–0.53 mV, free-run RMS 10–11 mV, Γ 1.0.)

These thresholds are deliberately lenient: a fit they call poor does not
reproduce its own training data, which no later step can repair.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from hhsym.errors import PoorFitWarning, SimulationError, TraceFileError
from hhsym.metrics import coincidence_factor, spike_times

__all__ = ["FitQuality", "judge_fit", "judge_replays", "judge_model", "free_run", "GAMMA_MIN", "RMS_SHARE", "NOISE_FACTOR"]

#: Largest integration step (ms) of a free run; coarser recordings are sub-stepped.
MAX_STEP = 0.025

#: Smallest training spike coincidence (Γ, ±2 ms) of a good fit.
GAMMA_MIN = 0.7
#: Largest output-error RMS of a good fit, as a share of the recorded V's standard deviation.
RMS_SHARE = 0.35
#: An RMS within this many noise standard deviations is never called poor.
NOISE_FACTOR = 3.0


@dataclass(frozen=True)
class FitQuality:
    """How well a fit reproduces its training recordings (see the module docstring).

    Attributes
    ----------
    rms_mV : float
        Output-error RMS (mV) of the freely running fitted model; ``inf`` if it diverges.
    noise_mV : float
        Estimated sample-to-sample noise on the recorded V (mV).
    scale_mV : float
        Standard deviation of the recorded V (mV).
    gamma : float or None
        Training spike coincidence factor Γ (±2 ms); None without spikes.
    n_spikes : tuple of int
        Spikes in the recordings and in the fitted model's runs.
    verdict : str
        ``"good"`` or ``"poor"``.
    reason : str
        One sentence: what is wrong and what to try (or why the fit is good).
    window_rms_mV : float or None
        Output-error RMS (mV) over windows restarted from the recording, for
        estimators that fit that way (``FormEstimator``); None otherwise.
    """

    rms_mV: float
    noise_mV: float
    scale_mV: float
    gamma: float | None
    n_spikes: tuple
    verdict: str
    reason: str
    window_rms_mV: float | None = None

    @property
    def ok(self):
        """bool: the verdict is ``"good"``."""
        return self.verdict == "good"

    def to_dict(self):
        """dict: JSON-safe fields (``inf`` RMS written as None)."""
        d = asdict(self)
        d["rms_mV"] = None if not np.isfinite(self.rms_mV) else float(self.rms_mV)
        d["n_spikes"] = list(self.n_spikes)
        return d

    @classmethod
    def from_dict(cls, data):
        """Rebuild from :meth:`to_dict` output.

        Parameters
        ----------
        data : dict

        Returns
        -------
        FitQuality
        """
        keys = {"rms_mV", "noise_mV", "scale_mV", "gamma", "n_spikes", "verdict", "reason"}
        if (not isinstance(data, dict) or set(data) - {"window_rms_mV"} != keys
                or data.get("verdict") not in ("good", "poor")):
            raise TraceFileError(f"malformed fit quality record {data!r:.100}: expected the keys {sorted(keys)} "
                                 "(and optionally window_rms_mV)")
        try:
            rms = float("inf") if data["rms_mV"] is None else float(data["rms_mV"])
            window = data.get("window_rms_mV")
            return cls(rms, float(data["noise_mV"]), float(data["scale_mV"]),
                       None if data["gamma"] is None else float(data["gamma"]),
                       tuple(int(n) for n in data["n_spikes"]), data["verdict"], str(data["reason"]),
                       None if window is None else float(window))
        except (TypeError, ValueError) as exc:
            raise TraceFileError(f"malformed fit quality record: {exc}") from None

    def __str__(self):
        g = "n/a" if self.gamma is None else f"{self.gamma:.2f}"
        window = "" if self.window_rms_mV is None else f", over windows {self.window_rms_mV:.3g} mV"
        return (f"{self.verdict} fit: output RMS {self.rms_mV:.3g} mV{window} (recorded V std "
                f"{self.scale_mV:.3g} mV, noise {self.noise_mV:.2g} mV), training spikes {self.n_spikes[0]} recorded / "
                f"{self.n_spikes[1]} reproduced, Γ {g}. {self.reason}")


def judge_replays(replay, data, noise, hint=""):
    """:func:`judge_fit` of a fitted estimator's free replays of its training recordings.

    Parameters
    ----------
    replay : callable
        ``replay(trace) -> Trace``: the fitted model run freely under a recording's current
        (e.g. :meth:`hhsym.estimate.RateEstimator.replay`); a :class:`~hhsym.errors.SimulationError`
        counts as a failed run.
    data : list of (dt, V, I)
        Step (ms), V (mV), I (µA/cm²) per training recording.
    noise : float
        Estimated noise on V (mV).
    hint : str
        What to try, appended to a poor verdict's reason.

    Returns
    -------
    FitQuality
    """
    from hhsym.io.trace import Trace

    def run(dt, V, I):
        try:
            return replay(Trace(dt * np.arange(V.size), V, I)).V
        except SimulationError:
            return None
    return _judge_runs(run, data, noise, hint=hint)


def _judge_runs(run, data, noise, **judge):
    """:func:`judge_fit` of ``run(dt, V, I)`` (the model's V, or None if it fails) on every recording of ``data``."""
    recordings = [(dt * np.arange(V.size), V) for dt, V, _ in data]
    return judge_fit(recordings, [run(dt, V, I) for dt, V, I in data], noise, **judge)


def judge_fit(recordings, runs, noise, hint="", warn=True, window_rms=None):
    """Compare a fitted model's free runs with the recordings and give a verdict.

    Parameters
    ----------
    recordings : list of (ndarray, ndarray)
        Per training trace, the times (ms) and recorded V (mV).
    runs : list of ndarray or None
        Per trace, the fitted model's V (mV) on the same grid, or None where it diverged.
    noise : float
        Estimated noise on the recorded V (mV).
    hint : str, optional
        What to try when the fit is poor (appended to the reason).
    warn : bool, optional
        Emit a :class:`~hhsym.errors.PoorFitWarning` for a poor verdict. Default True.
    window_rms : float, optional
        The fit's output-error RMS (mV) over windows restarted from the recording
        (see the module docstring for how it enters the verdict).

    Returns
    -------
    FitQuality
    """
    noise = float(noise)
    window_rms = None if window_rms is None else float(window_rms)
    V_all = np.concatenate([V for _, V in recordings])
    scale = float(np.std(V_all))
    rec_spikes = [spike_times(t, V) for t, V in recordings]
    n_rec = int(sum(s.size for s in rec_spikes))
    diverged = [k for k, run in enumerate(runs) if run is None or not np.all(np.isfinite(run))]
    if diverged:
        quality = FitQuality(float("inf"), noise, scale, None, (n_rec, 0), "poor",
                             f"the fitted model diverges when run under the current of training trace(s) "
                             f"{diverged}. {hint}".strip(), window_rms)
    else:
        err = np.concatenate([run - V for run, (_, V) in zip(runs, recordings)])
        rms = float(np.sqrt(np.mean(err**2)))
        model_spikes = [spike_times(t, run) for run, (t, _) in zip(runs, recordings)]
        n_mod = int(sum(s.size for s in model_spikes))
        gamma = None
        if n_rec or n_mod:
            # pooled: spike trains laid end to end, each trace offset by the previous durations
            offsets = np.cumsum([0.0] + [float(t[-1] - t[0]) + 10.0 for t, _ in recordings[:-1]])
            a = np.concatenate([s - t[0] + o for s, (t, _), o in zip(rec_spikes, recordings, offsets)])
            b = np.concatenate([s - t[0] + o for s, (t, _), o in zip(model_spikes, recordings, offsets)])
            duration = float(offsets[-1] + recordings[-1][0][-1] - recordings[-1][0][0])
            try:
                gamma = coincidence_factor(a, b, window=2.0, duration=duration)
            except ValueError:  # spikes too dense for a ±2 ms window: compare counts only
                gamma = 1.0 - abs(n_rec - n_mod) / max(n_rec, n_mod)
        reasons = []
        if gamma is not None and gamma < GAMMA_MIN:
            reasons.append(f"it reproduces the training spikes poorly ({n_rec} recorded, {n_mod} in the "
                           f"fitted model, coincidence Γ = {gamma:.2f} < {GAMMA_MIN})")
        drift = (window_rms is not None and window_rms <= NOISE_FACTOR * noise
                 and gamma is not None and gamma >= GAMMA_MIN)
        if rms > RMS_SHARE * scale and rms > NOISE_FACTOR * noise and not drift:
            reasons.append(f"its output error ({rms:.3g} mV RMS) is {rms / max(scale, 1e-12):.2f} of the "
                           f"recorded V's spread ({scale:.3g} mV) and {rms / max(noise, 1e-12):.3g}x the "
                           f"estimated noise ({noise:.2g} mV)")
        if reasons:
            text = "The fitted model does not reproduce its training recordings: " + "; ".join(reasons) + "."
            quality = FitQuality(rms, noise, scale, gamma, (n_rec, n_mod), "poor", f"{text} {hint}".strip(),
                                 window_rms)
        elif drift and rms > RMS_SHARE * scale:
            quality = FitQuality(rms, noise, scale, gamma, (n_rec, n_mod), "good",
                                 f"The fitted model reproduces its training recordings to the noise level over "
                                 f"windows ({window_rms:.3g} mV RMS against {noise:.2g} mV of noise) and their "
                                 f"spikes (Γ = {gamma:.2f}); run freely over whole traces its spike times drift "
                                 f"({rms:.3g} mV RMS), as any spiking model's do under small errors.",
                                 window_rms)
        else:
            quality = FitQuality(rms, noise, scale, gamma, (n_rec, n_mod), "good",
                                 "The fitted model reproduces its training recordings.", window_rms)
    if warn and not quality.ok:
        warnings.warn(quality.reason, PoorFitWarning, stacklevel=3)
    return quality


def free_run(model, dt, V, I, I_pA=None, V_offset=0.0, R_bridge=0.0):
    """Run ``model`` freely under a sampled current, from the recording's first V.

    Parameters
    ----------
    model : ConductanceModel
        Closed-form model.
    dt : float
        Sampling step of the recording (ms); the integration sub-steps it to
        at most :data:`MAX_STEP` ms (RK4).
    V, I : ndarray
        Recorded potential (mV; only ``V[0]`` is used) and current (µA/cm²).
    I_pA : ndarray, optional
        The same current in pA (needed when ``R_bridge`` is not 0).
    V_offset, R_bridge : float, optional
        What the amplifier adds to the membrane potential (mV, MΩ;
        :mod:`hhsym.estimate.observation`): the run starts from the membrane potential
        under ``V[0]`` and is returned as recorded.

    Returns
    -------
    ndarray or None
        The model's V (mV) on the recording's grid, or None if it diverges.
    """
    from hhsym.errors import HHSymError
    from hhsym.estimate.observation import membrane_potential, recorded_potential
    from hhsym.simulate import simulate
    from hhsym.stimuli import FromArray

    t = dt * np.arange(V.size)
    k = max(1, int(np.ceil(dt / MAX_STEP - 1e-9)))
    V0 = float(membrane_potential(V[0], None if I_pA is None else I_pA[0], V_offset, R_bridge))
    try:
        run = simulate(model, FromArray(t, I), float(t[-1]), dt=dt / k, dt_out=dt, method="rk4",
                       y0={"V": V0}, record=())
    except HHSymError:
        return None
    return recorded_potential(run.V, I_pA, V_offset, R_bridge)


def judge_model(model, data, noise, hint="", warn=True, window_rms=None):
    """:func:`judge_fit` for a closed-form model on recordings ``[(dt, V, I), ...]``.

    Parameters
    ----------
    model : ConductanceModel
        The fitted model.
    data : list of (float, ndarray, ndarray)
        Sampling step (ms), recorded V (mV), current (µA/cm²) per trace.
    noise : float
        Estimated noise on V (mV).
    hint : str, optional
        What to try when the fit is poor.
    warn : bool, optional
        Warn on a poor verdict. Default True.
    window_rms : float, optional
        The fit's output-error RMS over windows (mV), passed on to :func:`judge_fit`.

    Returns
    -------
    FitQuality
    """
    return _judge_runs(lambda dt, V, I: free_run(model, dt, V, I), data, noise, hint=hint, warn=warn,
                       window_rms=window_rms)
