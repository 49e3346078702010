"""Define your own conductance-based model: HH plus an A-type potassium channel.

Rates are plain expressions in V (mV -> 1/ms); constants can be named parameters.
Run:  python examples/04_custom_channel_model.py [OUTPUT_DIR]
"""

import os
import sys

import hhsym
from hhsym.stimuli import Step

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
t_stop = float(os.environ.get("HHSYM_EXAMPLE_T_STOP", 100.0))

hh = hhsym.library.hodgkin_huxley()
sodium, potassium, leak = hh.channels
a_type = hhsym.Channel("A", g=20.0, E=-80.0, gates=[
    hhsym.Gate("a", "k_a*exp((V - V_a)/15)", "k_a*exp(-(V - V_a)/15)", power=3),
    hhsym.Gate("b", "0.02*exp(-(V + 70)/20)", "0.02*exp((V + 70)/20)", power=1),
])
model = hhsym.ConductanceModel([sodium, potassium, a_type, leak], C_m=1.0,
                               params={"k_a": 0.1, "V_a": -60.0}, name="HH + A-current")
print(model)
print(model.latex())

stim = Step(10.0, 10.0, t_stop - 10.0)
with_a = hhsym.simulate(model, stim, t_stop, method="dopri5", rtol=1e-8, atol=1e-10)
without = hhsym.simulate(hh, stim, t_stop, method="dopri5", rtol=1e-8, atol=1e-10)
first = lambda tr: tr.t[(tr.V > 0).argmax()]  # noqa: E731
print(f"first spike: {first(without):.2f} ms without, {first(with_a):.2f} ms with the A-current")
sweep = hhsym.simulate(model, stim, t_stop, params={"g_A": [0.0, 10.0, 20.0, 40.0]})
for g, v in zip([0, 10, 20, 40], sweep.V):
    print(f"g_A = {g:4.0f} mS/cm2: {int(((v[:-1] < 0) & (v[1:] >= 0)).sum())} spikes")
with open(os.path.join(out, "custom_model.tex"), "w") as fh:
    fh.write(model.latex() + "\n")
