"""Distil learned rate functions into closed forms and export the model as LaTeX and JSON.

To keep this example fast and deterministic, the "learned" rates come from a small stand-in for a
fitted estimator whose rates are the true HH rates with a few percent of smooth distortion; with a
real fit, pass the RateEstimator (and its training traces, to refine the constants).
Run:  python examples/03_distill_and_export_latex.py [OUTPUT_DIR]
"""

import os
import sys

import numpy as np

import hhsym
from hhsym.distill import distill, load_model

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)


class LearnedRates:
    """Anything with predict_rates(V), v_range_ (mV) and the template model can be distilled."""

    def __init__(self, model):
        self.model = model
        self.v_range_ = (-76.0, 35.0)

    def predict_rates(self, V):
        V = np.asarray(V, dtype=float)
        wobble = 1.0 + 0.02 * np.sin(V / 13.0)  # a smooth 2 % network error
        return {k: v * wobble for k, v in self.model.evaluate_rates(V).items()}


truth = hhsym.library.hodgkin_huxley()
dist = distill(LearnedRates(truth), backend="forms", refine=False)
for name, res in dist.rates.items():
    print(f"{name:8s} {res.form:12s} {res.expr}")
dist.to_json(os.path.join(out, "model.json"))
with open(os.path.join(out, "model.tex"), "w") as fh:
    fh.write(dist.latex(standalone=True))
again = load_model(os.path.join(out, "model.json"))
assert again == dist.model
print("LaTeX ->", os.path.join(out, "model.tex"), "; JSON ->", os.path.join(out, "model.json"))
print(dist.latex()[:400], "...")
