"""Fit the rate functions of a template model to your own recordings (CSV with header t,V,I).

Here the "recording" is simulated and saved first, so the script runs anywhere; replace the
CSV paths by your own files (t in ms, V in mV, I in µA/cm², uniform sampling).
Run:  python examples/02_fit_your_own_csv.py [OUTPUT_DIR]
"""

import os
import sys

import numpy as np

import hhsym
from hhsym.stimuli import OUNoise, Step

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
quick = bool(os.environ.get("HHSYM_EXAMPLE_QUICK"))
t_stop = 60.0 if quick else 200.0

# 1. make two CSV "recordings" (skip this with real data)
truth = hhsym.library.hodgkin_huxley()
sims = hhsym.simulate(truth, [Step(10.0, 5.0, t_stop - 5.0), OUNoise(6.0, 4.0, 3.0, seed=3)], t_stop, dt=0.025)
paths = []
for k in range(len(sims)):
    path = os.path.join(out, f"cell_{k}.csv")
    sims[k].with_noise(0.5, seed=k).to_csv(path)
    paths.append(path)

# 2. read them back and fit: the template's g, E, C_m and gate powers are known, its rates are not
traces = [hhsym.read_trace(p) for p in paths]
est = hhsym.RateEstimator(hhsym.library.hodgkin_huxley(), hidden=(8,), n_starts=4 if quick else 16,
                          time_limit=10.0 if quick else 60.0, random_state=0, verbose=0)
est.fit(traces)
print(f"loss {est.cost_:.4g} mV^2, supported range {est.v_range_[0]:.1f} .. {est.v_range_[1]:.1f} mV, "
      f"{est.fit_time_:.1f} s")
V = np.array([-70.0, -50.0, -30.0, -10.0])
for name, values in est.predict_rates(V).items():
    print(f"{name:8s}", " ".join(f"{v:9.4f}" for v in values), "1/ms at", V.tolist(), "mV")
est.save(os.path.join(out, "fit.npz"))
print("saved", os.path.join(out, "fit.npz"), "(hhsym.load reads it back)")
