"""Fit a real cell from its recording file and check it on sweeps it never saw.

The recording ships with hhsym: BluePyEfe's test cell B6 (Igor waves, 4 kHz, five 3 s sweeps of a
2 s current step, the current in pA).  A whole-cell recording fixes none of a model's conductances,
reversal potentials or its capacitance, and a real cell's channels are faster or slower and
shifted in voltage against any textbook template.  hhsym.CellEstimator frees all of them — per
channel a rate scale phi_<c> and a shift dV_<c> (mV) of every gate's rates, and the amplifier's
bridge error R_bridge (MΩ) — and fits them to whole sweeps by what validation measures: spike
counts, first-spike latency, AP peak and half-width, interspike troughs and the subthreshold
potential.  It is trained on the lowest and the highest step (181, 185) and checked on the three in
between.  This is what ``hhsym fit RECORDING --sweeps ...`` runs on a lab file.

Run:  python examples/07_fit_a_real_cell.py [OUTPUT_DIR]
(HHSYM_EXAMPLE_QUICK=1 gives the search 20 s instead of 240 s: a poor fit, but the same steps.)
"""

import os
import sys
import warnings

import hhsym
from hhsym.demo_real import HELD_OUT, TRAIN, shipped_recording
from hhsym.estimate import CellEstimator
from hhsym.io.reader import read

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
quick = os.environ.get("HHSYM_EXAMPLE_QUICK") == "1"

rec = read(shipped_recording())                 # current in pA, V in mV
traces = rec.to_traces()                        # µA/cm², the membrane area estimated from the passive steps
print(f"{rec.n_sweeps} sweeps; membrane area {traces.meta['membrane_area']['area_cm2']:.3g} cm²")
train = [traces[k] for k, s in enumerate(rec.sweep_numbers) if s in TRAIN]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", hhsym.PoorFitWarning)   # the verdict is printed below
    est = CellEstimator(hhsym.library.pospischil_rs(), time_limit=20.0 if quick else 240.0).fit(train)
print(est.summary())
est.save(os.path.join(out, "B6_fit.npz"))       # hhsym.load() reads it back; `hhsym validate` takes it

result = hhsym.validate_fit(est, rec, list(HELD_OUT))   # at the membrane area it was trained with
print(result.table())
result.write_report(os.path.join(out, "B6_validation"))
