"""Real cells (issue 17): fit on a few sweeps of a shared recording, validate on all the others.

Run:  python benchmarks/bench_real.py [--cells B6,B8,171116,axon5] [--crop 700] [--routes baseline,forms]

Cells (``../shared/data``, README there): BluePyEfe's B6 and B8 (Igor, 4 kHz, five 3 s sweeps of a
2 s step) and pyABF's 171116sh_0018 (20 kHz, 17 sweeps) and File_axon_5 (20 kHz, 9 sweeps).  Each is
trained on at most three sweeps (``CELLS``, or ``--train``), each cut to ``--crop`` ms from 100 ms before the step
(the fit's cost grows with the samples), and validated on every other sweep with
:func:`hhsym.validate_fit` at the training membrane area.  Routes:

* ``baseline`` — textbook HH kinetics kept, every conductance, reversal potential and C_m fitted
  by output error (what brian2modelfitting or BluePyOpt would give for this template);
* ``forms`` — ``hhsym.FormEstimator(start="model", search=False, free=<same scalars>)``: HH's
  closed forms as the start, their constants fitted with the scalars;
* ``forms34`` — the same from HH's rates brought to 34 °C (every rate x Q10^((34 - 6.3)/10),
  Q10 = 3: x 21), since the cells were recorded near physiological temperature;
* ``rs`` — Pospischil et al.'s regular-spiking cortical template (Traub Na and Kd, M current, leak;
  :func:`hhsym.library.pospischil_rs`), kinetics kept, every conductance, reversal potential and C_m
  fitted like ``baseline``; ``rs-forms`` — its Na and Kd forms fitted too, the M gate kept;
* ``spk-base``, ``spk-hh``, ``spk-rs`` — the cell route (:class:`hhsym.estimate.CellEstimator`, the
  spiking stage :func:`hhsym.estimate.spiking.fit_spiking`: free runs over the whole training sweeps
  scored by spike count, latency, peak, half-width, trough, subthreshold RMS and Γ; differential
  evolution): ``spk-base`` fits HH's scalars with its kinetics kept (the feature-based fixed-kinetics
  baseline, what BluePyOpt does), ``spk-hh`` and ``spk-rs`` run ``free="whole-cell"`` (what ``hhsym fit``
  runs on a lab file: every scalar, each channel's rate scale and shift
  (:func:`hhsym.estimate.spiking.kinetic_template`) and the bridge error) on HH and on Pospischil's RS
  cell; ``spk-rs-nb`` is ``spk-rs`` without the bridge error, ``spk-rs-edges`` with it held at the value
  measured at the current's step edges (:func:`hhsym.analysis.bridge.bridge_from_edges`).

Printed per cell and route: fit time, training RMS, and on the held-out sweeps the spike counts
(recorded / model), the largest count error among sweeps with >= 5 spikes, median Γ (±2 ms),
median |latency error|, |peak error|, half-width ratio error and subthreshold RMS, against the
issue's targets (counts within 15 %, latency 3 ms, peak 5 mV, half-width 20 %, RMS <= 2 mV, fit
<= 10 min).
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import numpy as np

import hhsym
from hhsym.estimate import CellEstimator, FormEstimator
from hhsym.estimate.checks import as_recordings
from hhsym.estimate.losses.output_error import fit_output_error, model_forms
from hhsym.io import Trace
from hhsym.io.reader import read
from hhsym.library import hodgkin_huxley, pospischil_rs

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
CELLS = {
    # the training sweeps span each file's steps (lowest and highest): a fit trained on 145 and 148 of B8
    # (94-227 pA) fired 141 spikes of -18 mV peak at 274 pA (149), outside what it had seen (notes/issue17.md);
    # B8 with its middle step too: first-spike latency 2.8 ms held out (3.5 on 145 + 149 alone)
    "B6": ("bluepyefe/B6_Ch3_IDRest_*.ibw", (181, 185)),
    "B8": ("bluepyefe/B8_Ch3_IDRest_*.ibw", (145, 147, 149)),
    "171116": ("pyabf/171116sh_0018.abf", (2, 10, 16)),
    "axon5": ("pyabf/File_axon_5.abf", (1, 6, 8)),  # 6: the first step that fires (2 spikes)
}


def free_scalars(model):
    """Every maximal conductance, reversal potential and C_m of ``model``."""
    return tuple(k for k in model.params if k.startswith(("g_", "E_"))) + ("C_m",)


def training_traces(rec, sweeps, crop_ms, start_ms):
    """The training sweeps in µA/cm² (area estimated from all of the file's sweeps), cut to ``crop_ms``."""
    traces = rec.to_traces()
    area = traces.meta["membrane_area"]
    keep = (traces.t >= start_ms - 100.0) & (traces.t <= start_ms - 100.0 + crop_ms)
    out = []
    for k, s in enumerate(rec.sweep_numbers):
        if s in sweeps:
            out.append(Trace(traces.t[keep] - traces.t[keep][0], traces.V[k][keep], traces.I[k][keep],
                             meta={"membrane_area": area, "source": {"file": rec.file}}))
    return out, area


#: Rate factor taking HH (6.3 °C) to 34 °C with Q10 = 3.
WARM = 3.0 ** ((34.0 - 6.3) / 10.0)


def fit_route(route, hh, traces, time_limit, whole=None):
    """The fitted model (or estimator) and its training score (RMS in mV, or the spiking stage's score)."""
    if route.startswith("spk-"):
        template = pospischil_rs() if route.startswith("spk-rs") else hh
        if route == "spk-base":  # the fixed-kinetics baseline: scalars only, no bridge error
            free = free_scalars(template)
        elif route.endswith("-nb"):  # learned kinetics without the bridge error
            free = list(free_scalars(template)) + [f"{p}_{c.name}" for c in template.channels if c.gates
                                                   for p in ("phi", "dV")]
        else:  # what `hhsym fit` runs on a lab file: whole-cell scalars, kinetics, the bridge error
            free = "whole-cell"
        bridge = "edges" if route.endswith("-edges") else "fit"  # held at the step edges' value, or fitted
        est = CellEstimator(template, free=free, kinetics=route != "spk-base", bridge=bridge, generations=1000,
                            time_limit=time_limit).fit(whole)
        return est, est.score_
    if route in ("rs", "rs-forms"):
        hh = pospischil_rs()
    free = free_scalars(hh)
    if route == "forms34":
        hh = hh.with_rates({k: WARM * e for k, e in hh.rates.items()}, name="HH at 34 °C")
    if route in ("baseline", "rs"):  # fixed kinetics: every gate kept, the scalars fitted
        data = as_recordings(traces)
        allV = np.concatenate([d[1] for d in data])
        start = model_forms(hh, np.linspace(*np.percentile(allV, [0.5, 99.5]), 200),
                            fixed=[g.name for g in hh.gates])
        fit = fit_output_error(hh, data, start, free=free, fit_rates=False, time_limit=time_limit)
        return fit.model(hh), fit.rms
    fixed = ("p",) if route == "rs-forms" else ()
    est = FormEstimator(hh, start="model", search=False, uncertainty=False, free=free, fixed=fixed,
                        time_limit=time_limit).fit(traces)
    return est.model_, est.rms_


def _median(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def held_out_row(result):
    """Figures of a ValidationResult against the issue's targets."""
    rows = [s for s in result.sweeps if not s["diverged"]]
    rec_n = [s["recorded"]["n_spikes_step"] for s in result.sweeps]
    mod_n = [None if s["diverged"] else s["model"]["n_spikes_step"] for s in result.sweeps]
    big = [(r, m) for r, m in zip(rec_n, mod_n) if r >= 5]
    count_err = max((abs((m if m is not None else 0) - r) / r for r, m in big), default=math.nan)

    def diff(key, rel=False):
        out = []
        for s in rows:
            a, b = s["recorded"].get(key), s["model"].get(key)
            if a is not None and b is not None:
                out.append(abs(b / a - 1.0) if rel else abs(b - a))
        return _median(out)

    return {"spikes": f"{sum(rec_n)}/{sum(m or 0 for m in mod_n)}", "count_err": count_err,
            "gamma": _median([s["gamma"] for s in rows]), "latency": diff("first_spike_latency_ms"),
            "peak": diff("AP_peak_mV"), "half_width": diff("AP_half_width_ms", rel=True),
            "rms": _median([s["subthreshold_rms_mV"] for s in rows]),
            "diverged": sum(s["diverged"] for s in result.sweeps)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--routes", default="baseline,forms,forms34")
    ap.add_argument("--crop", type=float, default=700.0, help="ms of each training sweep (default 700)")
    ap.add_argument("--time-limit", type=float, default=600.0, help="s per fit (default 600)")
    ap.add_argument("--spike-time", type=float, default=420.0,
                    help="s of differential evolution per spiking-route fit (default 420)")
    ap.add_argument("--train", action="append", default=[], metavar="CELL=S,S",
                    help="training sweeps of a cell instead of TRAIN's (e.g. B8=145,149)")
    ap.add_argument("--save", default=None, metavar="DIR",
                    help="save each spiking route's fit as DIR/<cell>_<route>.npz (for hhsym validate)")
    args = ap.parse_args()
    for item in args.train:
        cell, _, sweeps = item.partition("=")
        CELLS[cell] = (CELLS[cell][0], tuple(int(s) for s in sweeps.split(",")))
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    hh = hodgkin_huxley()
    head = ("cell", "route", "fit s", "train RMS / score", "spikes rec/mod", "count err", "Γ", "latency ms", "peak mV",
            "half-width", "sub RMS mV", "diverged")
    print(" | ".join(head), flush=True)
    for cell in args.cells.split(","):
        pattern, train = CELLS[cell]
        rec = read(os.path.join(DATA, pattern))
        from hhsym.analysis.features import features
        from hhsym.analysis.steps import protocol

        start_ms = features(rec, protocol(rec))["stim_window_ms"][0]
        traces, area = training_traces(rec, train, args.crop, start_ms)
        full = rec.to_traces()  # the spiking routes train on the whole training sweeps
        whole = [full[k] for k, s in enumerate(rec.sweep_numbers) if s in train]
        held = [s for s in rec.sweep_numbers if s not in train]
        for route in args.routes.split(","):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    model, rms = fit_route(route, hh, traces, args.time_limit if not route.startswith("spk-")
                                           else args.spike_time, whole)
                except hhsym.errors.HHSymError as exc:
                    print(f"{cell} | {route} | failed: {type(exc).__name__}: {exc}", flush=True)
                    continue
                seconds = time.perf_counter() - t0
                if args.save and hasattr(model, "save"):
                    os.makedirs(args.save, exist_ok=True)
                    model.save(os.path.join(args.save, f"{cell}_{route}.npz"))
                res = hhsym.validate_fit(model, rec, held, area=area["area_cm2"])
            r = held_out_row(res)
            print(f"{cell} | {route} | {seconds:.0f} | {rms:.3g} | {r['spikes']} | {r['count_err']:.2f} | "
                  f"{r['gamma']:.2f} | {r['latency']:.1f} | {r['peak']:.1f} | {r['half_width']:.2f} | "
                  f"{r['rms']:.2f} | {r['diverged']}", flush=True)
            fitted = getattr(model, "model_", model)
            print("    scalars: " + ", ".join(f"{k} {fitted.params[k]:.4g}" for k in free_scalars(fitted))
                  + "".join(f", {k} {v:.3g}" for k, v in getattr(model, "observation_", {}).items()), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}; targets: count err <= 0.15, latency <= 3 ms, peak <= 5 mV, "
          "half-width <= 0.20, sub RMS <= 2 mV, fit <= 600 s", flush=True)


if __name__ == "__main__":
    main()
