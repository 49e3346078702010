"""``hhsym demo --real``: a real cell fitted on two sweeps and validated on three it never saw.

The recording ships with hhsym (``hhsym/data/bluepyefe_B6``: BluePyEfe's test cell B6, Igor
waves, 4 kHz, five 3 s sweeps of a 2 s current step; BSD-licensed test data).  Steps:

1. read the cell's waves (current in pA; the membrane area estimated from the passive
   responses);
2. fit :class:`~hhsym.estimate.CellEstimator` — Pospischil et al.'s regular-spiking template
   (Na, Kd, M, leak), every conductance, reversal potential and C_m free with each channel's
   rate scale and shift, and the bridge error — to sweeps 181 and 185 (the lowest and the highest
   step: the fit interpolates, never extrapolates), as ``hhsym fit`` does on a lab file;
3. validate on sweeps 182, 183 and 184 (:func:`hhsym.validate_fit`): spike counts, Γ,
   first-spike latency, AP peak and half-width, AHP, subthreshold RMS, and the report.
"""

from __future__ import annotations

import os
import time
import warnings

from hhsym.atomic import atomic_folder

__all__ = ["run_real_demo", "shipped_recording", "TRAIN", "HELD_OUT"]

#: Sweeps the demo trains on, and the sweeps it validates on.
TRAIN, HELD_OUT = (181, 185), (182, 183, 184)


def shipped_recording():
    """str: the glob of the shipped cell's voltage waves (``B6_Ch3_IDRest_*.ibw``)."""
    return os.path.join(os.path.dirname(__file__), "data", "bluepyefe_B6", "B6_Ch3_IDRest_*.ibw")


def run_real_demo(out="hhsym-demo-real", verbose=True, time_limit=240.0, seed=0):
    """Fit the shipped real cell on two sweeps, validate on the other three, write the results.

    Parameters
    ----------
    out : str
        Output folder (swapped in whole at the end: :func:`hhsym.atomic.atomic_folder`):
        ``fit.npz``, ``validation.json``, ``report/`` (f-I curve, overlays, table).
    verbose : bool
        Print progress and the validation table.
    time_limit : float
        Soft budget (s) of the fit's search.
    seed : int
        Seed of the search.

    Returns
    -------
    dict
        ``estimator`` (the fitted CellEstimator), ``validation`` (ValidationResult), ``out``
        (path), ``timings`` (s).
    """
    from hhsym.analysis.validation import validate_fit
    from hhsym.errors import PoorFitWarning
    from hhsym.estimate import CellEstimator
    from hhsym.io.reader import read
    from hhsym.library import pospischil_rs

    def say(msg):
        if verbose:
            print(f"[hhsym demo --real] {msg}", flush=True)

    timings = {}
    with atomic_folder(out) as work:
        start = time.perf_counter()
        rec = read(shipped_recording())
        traces = rec.to_traces()
        area = traces.meta["membrane_area"]
        train = [traces[k] for k, s in enumerate(rec.sweep_numbers) if s in TRAIN]
        say(f"1/3 read cell B6 (BluePyEfe test data): {rec.n_sweeps} sweeps at {1.0 / rec.dt:g} kHz; "
            f"membrane area {area['area_cm2']:.3g} cm² ({area.get('source', 'estimated')})")
        say(f"2/3 fitting Pospischil's RS template (whole-cell scalars, each channel's kinetics) to sweeps "
            f"{', '.join(map(str, TRAIN))}, {time_limit:g} s budget...")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PoorFitWarning)  # the verdict is printed below
            est = CellEstimator(pospischil_rs(), time_limit=time_limit, random_state=seed,
                                verbose=1 if verbose else 0).fit(train)
        timings["fit"] = time.perf_counter() - start
        est.save(os.path.join(work, "fit.npz"))
        for line in est.summary().splitlines():
            say("    " + line)
        say(f"3/3 validating on held-out sweeps {', '.join(map(str, HELD_OUT))}...")
        start = time.perf_counter()
        result = validate_fit(est, rec, list(HELD_OUT), area=area["area_cm2"])
        result.write_json(os.path.join(work, "validation.json"))
        result.write_report(os.path.join(work, "report"))
        timings["validate"] = time.perf_counter() - start
        if verbose:
            print(result.table(), flush=True)
    say(f"done: {out} (fit.npz, validation.json, report/validation.md) in {sum(timings.values()):.0f} s")
    return {"estimator": est, "validation": result, "out": out, "timings": timings}
