r"""Validation of a fitted model on held-out sweeps: what ``hhsym validate`` computes.

The fitted model runs freely under each held-out sweep's recorded current (V from the
sweep's first sample, gates at their steady state there) and both the recording and the
model's V go through the same eFEL features (:func:`hhsym.analysis.features.features`) with
the same stimulus window, the test step of the recording's protocol
(:func:`hhsym.analysis.steps.protocol`).  Per sweep:

* spike counts (whole sweep and inside the test step), first-spike latency from the step
  onset (ms), AP peak (mV), AP half-width (ms), AHP depth (mV, relative to eFEL's voltage
  base), each the mean over the spikes in the test step and ``None`` without any;
* Γ, the coincidence factor (±2 ms, :func:`hhsym.metrics.coincidence_factor`) of the eFEL
  peak times, the recording as reference; ``None`` when neither side spikes;
* the subthreshold RMS of :math:`V_\mathrm{model} - V_\mathrm{recorded}` (mV) over the samples
  farther than 5 ms from every spike peak, recorded *or* predicted.

The model's current is a density (µA/cm²) and the recording's is in pA, so a membrane area
converts it: the one given (``area`` / ``capacitance``), else the one the fit was trained with
(a fit file records it per training file: that of the validated file, or the only one), else
estimated from the validated sweeps' passive responses as ``hhsym fit`` estimates it (the
result states which).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from hhsym.analysis.validation_metrics import gamma, side, subthreshold_rms, summarise
from hhsym.errors import ArgumentTypeError, HHSymError, SimulationError, invalid

__all__ = ["validate_fit", "ValidationResult"]

_ACCEPTED_FIT = ("a fit file (.npz, from 'hhsym fit' or FormEstimator.save) or a model file (.json, from "
                 "'hhsym distill --json', 'hhsym forms --json' or ConductanceModel.to_dict)")


# ------------------------------------------------------------------------- inputs
def _load_fit(fit):
    """The model to run and a description ``{"path", "kind"}`` of where it came from."""
    from hhsym.model import ConductanceModel

    if isinstance(fit, ConductanceModel):
        return fit, {"path": None, "kind": "model"}
    if hasattr(fit, "model_") and hasattr(fit, "v_range_"):
        return fit, {"path": None, "kind": type(fit).__name__}
    try:
        path = os.fspath(fit)
    except TypeError:
        raise invalid("fit", fit, _ACCEPTED_FIT + ", a ConductanceModel or a fitted estimator",
                      cls=ArgumentTypeError) from None
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".json"):
        raise invalid("fit", path, _ACCEPTED_FIT)
    if not os.path.isfile(path):
        raise invalid("fit", path, "an existing file: " + _ACCEPTED_FIT)
    try:
        if ext == ".npz":
            from hhsym.estimate import load

            obj = load(path)
            return obj, {"path": path, "kind": type(obj).__name__}
        from hhsym.export.model_json import load_model

        return load_model(path), {"path": path, "kind": "model"}
    except HHSymError as exc:
        raise invalid("fit", path, _ACCEPTED_FIT, hint=str(exc)) from None


def _trained_area(trained, file):
    """The training area (cm²) to use for ``file``: that file's, else the only one; None if none applies."""
    if not trained:
        return None
    same = [a for a in trained if a.get("file") and file and os.path.realpath(a["file"]) == os.path.realpath(file)]
    if same:
        return same[0]
    areas = {float(a["area_cm2"]) for a in trained}
    return trained[0] if len(areas) == 1 else None


def _load_recording(recording, sweeps, current, area, capacitance, specific_capacitance, trained=()):
    """The held-out sweeps in pA (Recording) and in µA/cm² (TraceSet), and the area used."""
    from hhsym.io.cli import parse_sweeps
    from hhsym.io.recording import Recording

    sweeps = parse_sweeps(sweeps)
    if isinstance(recording, Recording):
        rec = recording
    else:
        from hhsym.io.reader import read

        try:
            os.fspath(recording)
        except TypeError:
            raise invalid("recording", recording, "a recording file path or a Recording",
                          cls=ArgumentTypeError) from None
        rec = read(recording, current=current)
    if sweeps is not None:
        missing = [s for s in sweeps if s not in rec.sweep_numbers]
        if missing or not sweeps:
            raise invalid("sweeps", sweeps, f"sweep numbers of {rec.file}, which holds {rec.sweep_numbers}")
        rec = rec.select(sweeps)
    if rec.area_cm2 is not None and (area is not None or capacitance is not None):
        raise invalid("area/capacitance", area if area is not None else capacitance,
                      "no area for an hhsym .csv/.npz file (its currents are µA/cm² already)")
    fit_area = None
    if rec.area_cm2 is None and area is None and capacitance is None:
        fit_area = _trained_area(trained, rec.file)
        area = None if fit_area is None else float(fit_area["area_cm2"])
    traces = rec.to_traces(area_cm2=area, capacitance_pF=capacitance, specific_capacitance=specific_capacitance)
    used = dict(traces.meta["membrane_area"])
    used["note"] = {"area": "given", "capacitance": "from the given capacitance",
                    "file": "hhsym file: its currents are densities (read at 1 cm², I in pA = µA/cm² x 1e6)",
                    "estimated": "estimated from the validated sweeps' passive responses (the fit records no "
                                 "training area for this file: give the one 'hhsym fit' printed with --area)"
                    }[used["source"]]
    if fit_area is not None:
        used["source"] = "fit"
        used["note"] = f"the area the fit was trained with ({fit_area.get('source')}, file {fit_area.get('file')})"
    return rec, traces, used


def _check_ms(name, value, strict):
    """Raise unless ``value`` is a finite number of ms, > 0 (``strict``) or >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(name, value, "a number (ms)", cls=ArgumentTypeError)
    if not np.isfinite(value) or value < 0 or (strict and value == 0):
        raise invalid(name, value, f"a finite number {'>' if strict else '>='} 0 (ms)")


# ------------------------------------------------------------------------- running
def _predict(model, dt, V, I, I_pA, observation):
    """The model's V (mV) on the sweep's grid, run freely under I (µA/cm²; ``I_pA`` in pA); None if it diverges.

    Closed-form models run through :func:`hhsym.estimate.quality.free_run`, as the amplifier
    records (``observation``: the fit's offset and bridge error, :mod:`hhsym.estimate.observation`); a fitted
    :class:`~hhsym.estimate.RateEstimator` by its compile-free replay on the grid refined to at
    most :data:`hhsym.estimate.quality.MAX_STEP` (0.025) ms (the current linearly interpolated), every k-th sample kept.
    """
    from hhsym.estimate.quality import MAX_STEP, free_run
    from hhsym.model import ConductanceModel

    if not isinstance(model, ConductanceModel) and getattr(model, "gates_", None):
        from hhsym.io import Trace

        k = max(1, int(np.ceil(dt / MAX_STEP - 1e-9)))
        t = dt * np.arange(V.size)
        fine = (dt / k) * np.arange((V.size - 1) * k + 1)
        try:
            run = model.replay(Trace(fine, np.full(fine.size, float(V[0])), np.interp(fine, t, I))).V[::k]
        except SimulationError:
            return None
        return run if np.all(np.isfinite(run)) else None
    if not isinstance(model, ConductanceModel):
        model = model.model_
    run = free_run(model, dt, V, I, I_pA, **observation)
    return run if run is not None and np.all(np.isfinite(run)) else None


def _protocol_rows(prot, rows):
    """The protocol restricted to some sweep positions (same windows and test step)."""
    from hhsym.analysis.steps import Protocol

    return Protocol([prot.epochs[k] for k in rows], prot.holding_pA[rows], prot.threshold_pA, prot.windows,
                    None if prot.amplitudes_pA is None else prot.amplitudes_pA[rows], prot.test_window,
                    prot.I_step_pA[rows])


# ------------------------------------------------------------------------- result
@dataclass
class ValidationResult:
    """A fitted model against held-out sweeps (see the module docstring for the definitions).

    Attributes
    ----------
    sweeps : list of dict
        Per sweep: ``index`` (the file's sweep number), ``I_step_pA``, ``diverged``, ``recorded``
        and ``model`` (each ``n_spikes``, ``n_spikes_step``, ``first_spike_latency_ms``,
        ``AP_peak_mV``, ``AP_half_width_ms``, ``AHP_depth_mV``, ``spike_times_ms``; None where a
        sweep has no spike, all None for the model where it diverged), ``gamma`` and
        ``subthreshold_rms_mV`` (None without spikes / samples), ``subthreshold_samples``.
    summary : dict
        :func:`hhsym.analysis.validation_metrics.summarise` of :attr:`sweeps`.
    fI : dict
        ``I_step_pA``, ``rate_recorded_hz``, ``rate_model_hz`` (spikes in the test step per
        second of step; None where the model diverged), sorted by current.
    stim_window_ms : list of float
        The test step ``[start, stop]`` (ms) both sides' features were computed in.
    fit, recording, membrane_area : dict
        Where the model came from (with ``observation``, the offset (mV) and bridge error (MΩ)
        added to its V, for a fit that has them); the file, format, sweeps and sampling rate; the
        area (cm²) that converted pA into µA/cm² and its source.
    t : numpy.ndarray
        Sample times (ms).
    V_recorded, V_model, I_pA : numpy.ndarray, shape (n_sweeps, n_samples)
        The file's own V samples (mV), the model's V (mV; NaN where it diverged), the current (pA).
    """

    sweeps: list
    summary: dict
    fI: dict
    stim_window_ms: list
    fit: dict
    recording: dict
    membrane_area: dict
    t: np.ndarray = field(repr=False)
    V_recorded: np.ndarray = field(repr=False)
    V_model: np.ndarray = field(repr=False)
    I_pA: np.ndarray = field(repr=False)

    def to_dict(self):
        """dict: every field but the arrays, JSON-safe (non-finite numbers as None)."""
        from hhsym.jsontypes import json_types

        return json_types({"format": "hhsym.validation/1", "fit": self.fit, "recording": self.recording,
                           "membrane_area": self.membrane_area, "stim_window_ms": self.stim_window_ms,
                           "summary": self.summary, "sweeps": self.sweeps, "fI": self.fI})

    def table(self):
        """str: one line per sweep (counts, Γ, latency, peak, half-width, AHP, RMS), recorded / model."""
        from hhsym.analysis.validation_files import table_text

        return table_text(self)

    def write_json(self, path):
        """Write :meth:`to_dict` to ``path`` (``.json``) atomically.

        Parameters
        ----------
        path : str or os.PathLike
        """
        from hhsym.analysis.validation_files import write_json

        write_json(self, path)

    def write_traces(self, folder):
        """Write one CSV per sweep, ``sweep_<index>.csv``, into ``folder``, swapped in whole.

        Parameters
        ----------
        folder : str or os.PathLike
            Built beside itself and renamed into place when complete: a previous folder is
            replaced as a whole, never mixed with this run's files or left half-written.
            Columns ``t,V_recorded,V_model,I`` (ms, mV, mV, pA); V_recorded is the file's own
            samples written exactly (shortest round-trip text), V_model is ``nan`` where the model
            diverged.
        """
        from hhsym.analysis.validation_files import write_traces

        write_traces(self, folder)

    def write_report(self, folder):
        """Write the report folder: f-I curve, one overlay per sweep, the table (Markdown, HTML), the JSON.

        Parameters
        ----------
        folder : str or os.PathLike
            Swapped in whole (see :func:`hhsym.analysis.validation_report.write_validation_report`).

        Returns
        -------
        str
            Path of the report's ``validation.md``.
        """
        from hhsym.analysis.validation_report import write_validation_report

        return write_validation_report(self, folder)


def validate_fit(fit, recording, sweeps=None, *, current=None, area=None, capacitance=None,
                 specific_capacitance=1.0, window_ms=2.0, exclude_ms=5.0):
    """Run a fitted model under held-out sweeps and compare it with them.

    Parameters
    ----------
    fit : str, os.PathLike, ConductanceModel or fitted estimator
        A fit file (``.npz``: RateEstimator or FormEstimator), a model file (``.json``), or the
        model / estimator itself.
    recording : str, os.PathLike or Recording
        The recording (ABF, NWB, Igor ``.ibw`` or glob, hhsym CSV/NPZ), t in ms, V in mV, I in pA.
    sweeps : str or sequence of int, optional
        The held-out sweeps as the file numbers them (``"6,10,14"``); default all.
    current : str, optional
        Igor only: the current wave(s); default paired by name (``_Ch3_`` -> ``_Ch0_``).
    area : float, optional
        Membrane area (cm²) turning pA into µA/cm².  Default: the area the fit was trained
        with (its ``membrane_area_``: the validated file's, or the only one), else estimated
        from the validated sweeps.
    capacitance : float, optional
        Whole-cell capacitance (pF), at ``specific_capacitance``, instead of ``area``.
    specific_capacitance : float, optional
        µF/cm² (default 1).
    window_ms : float, optional
        Coincidence half-window of Γ (ms, default 2).
    exclude_ms : float, optional
        Samples this close to a recorded or predicted spike peak are left out of the
        subthreshold RMS (ms, default 5).

    Returns
    -------
    ValidationResult

    Raises
    ------
    InvalidArgumentError
        A fit that is neither a fit file nor a model file, a missing file, sweeps the file
        does not hold, an area for an hhsym file (its currents are densities), a window that is
        not a positive number of ms.
    ArgumentTypeError
        ``fit`` or ``recording`` of a type that is neither a path nor what it names.
    TraceFileError
        An unreadable recording, or no area given and none estimable.
    """
    from hhsym.analysis.features import features
    from hhsym.analysis.steps import protocol
    from hhsym.io.recording import Recording

    _check_ms("window_ms", window_ms, strict=True)
    _check_ms("exclude_ms", exclude_ms, strict=False)
    model, fit_info = _load_fit(fit)
    rec, traces, area_used = _load_recording(recording, sweeps, current, area, capacitance, specific_capacitance,
                                             getattr(model, "membrane_area_", None) or ())
    observation = getattr(model, "observation_", None) or {}
    if observation:
        fit_info["observation"] = dict(observation)  # what was added to the model's V (mV, MΩ)
    bridge = observation.get("R_bridge", 0.0)
    if bridge and rec.area_cm2 is not None:
        raise invalid("recording", rec.file, f"a lab recording (currents in pA): the fit's bridge error "
                      f"({bridge:.3g} MΩ) does not apply to an hhsym file's current densities")
    prot = protocol(rec)
    runs = [_predict(model, rec.dt, traces.V[k], traces.I[k], rec.I[k], observation) for k in range(rec.n_sweeps)]
    ok = [k for k, r in enumerate(runs) if r is not None]
    recorded = features(rec, prot)
    predicted = {}
    if ok:
        pred_rec = Recording(rec.t, np.array([runs[k] for k in ok]), rec.I[ok],
                             {"file": "model", "sweep_numbers": [rec.sweep_numbers[k] for k in ok]})
        predicted = dict(zip(ok, features(pred_rec, _protocol_rows(prot, ok))["sweeps"]))
    V_model = np.full(rec.V.shape, np.nan)
    duration = float(rec.t[-1] - rec.t[0])
    sweeps_out = []
    for k, r in enumerate(recorded["sweeps"]):
        p = predicted.get(k)
        row = {"index": r["index"], "I_step_pA": r["I_step_pA"], "diverged": p is None,
               "recorded": side(r), "model": side(p), "gamma": None, "subthreshold_rms_mV": None,
               "subthreshold_samples": 0}
        if p is not None:
            V_model[k] = runs[k]
            row["gamma"] = gamma(r["spike_times_ms"], p["spike_times_ms"], duration, window_ms)
            row["subthreshold_rms_mV"], row["subthreshold_samples"] = subthreshold_rms(
                rec.t, rec.V[k], runs[k], r["spike_times_ms"] + p["spike_times_ms"], exclude_ms)
        sweeps_out.append(row)
    start, stop = recorded["stim_window_ms"]
    seconds = max(stop - start, 1e-12) / 1e3
    order = np.argsort([s["I_step_pA"] for s in sweeps_out], kind="stable")
    fI = {"I_step_pA": [sweeps_out[k]["I_step_pA"] for k in order],
          "rate_recorded_hz": [sweeps_out[k]["recorded"]["n_spikes_step"] / seconds for k in order],
          "rate_model_hz": [None if sweeps_out[k]["diverged"] else sweeps_out[k]["model"]["n_spikes_step"] / seconds
                            for k in order]}
    rec_info = {"file": rec.file, "format": rec.meta.get("format"), "sweeps": rec.sweep_numbers,
                "sampling_rate_hz": rec.sampling_rate_hz, "current_source": rec.meta.get("current_source")}
    return ValidationResult(sweeps_out, summarise(sweeps_out), fI, [start, stop], fit_info, rec_info, area_used,
                            np.array(rec.t), np.array(rec.V), V_model, np.array(rec.I))
