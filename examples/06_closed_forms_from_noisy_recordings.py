"""Equations from noisy current-clamp recordings, with no model of the rates to start from.

A neuron with HH's channels but rate constants nobody told us is recorded with 0.5 mV of noise
on V.  Networks cannot learn its rates from such data (README, Limitations), so
hhsym.FormEstimator fits literature rate forms directly: every pattern of gate roles
(activating / inactivating) by the charge balance from random constants, the close contenders
by output error (the model runs freely over windows of 1.25 ms up to 40 ms from fitted states),
with Cramér-Rao error bars; the result is written as JSON (hhsym.load_model reads it) and LaTeX.
Run:  python examples/06_closed_forms_from_noisy_recordings.py [OUTPUT_DIR]
(HHSYM_EXAMPLE_QUICK=1 uses shorter recordings and fewer random starts: a rougher result.)
"""

import os
import sys
import warnings

import hhsym
from hhsym.export.document import write_text
from hhsym.stimuli import OUNoise

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
quick = os.environ.get("HHSYM_EXAMPLE_QUICK") == "1"
t_stop = 60.0 if quick else 300.0  # ms per recording

template = hhsym.library.hodgkin_huxley()  # conductances, reversal potentials, powers: known
cell = template.with_rates({
    "alpha_m": "0.15*(V + 38)/(1 - exp(-(V + 38)/9))", "beta_m": "3.5*exp(-(V + 62)/20)",
    "alpha_h": "0.05*exp(-(V + 62)/22)", "beta_h": "0.8/(1 + exp(-(V + 32)/9))",
    "alpha_n": "0.015*(V + 52)/(1 - exp(-(V + 52)/11))", "beta_n": "0.2*exp(-(V + 62)/60)",
}, name="the cell")
recordings = [hhsym.simulate(cell, OUNoise(mean=7.0 + 3 * k, sigma=6.0, tau=3.0, seed=11 + k), t_stop,
                             dt=0.005, dt_out=0.025).with_noise(0.5, seed=100 + k) for k in range(2)]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a rough quick run may not reach the noise level; the summary says so
    est = hhsym.FormEstimator(template, n_starts=10 if quick else 60, search=False, random_state=0)
    est.fit(recordings)
print(est.summary())
print("roles by charge-balance cost (mV^2):", {h.label: round(h.cost, 4) for h in est.hypotheses_})
est.to_json(os.path.join(out, "cell_model.json"))
write_text(est.latex(standalone=True), os.path.join(out, "cell_model.tex"))  # atomic, like every hhsym file
print("the recovered model ==", hhsym.load_model(os.path.join(out, "cell_model.json")) == est.model_)
