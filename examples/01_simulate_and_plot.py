"""Simulate the Hodgkin-Huxley model under a current step and plot V(t) and I(t).

Run:  python examples/01_simulate_and_plot.py [OUTPUT_DIR]
"""

import os
import sys

import hhsym
from hhsym.plotting import plot_traces
from hhsym.stimuli import Step

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
t_stop = float(os.environ.get("HHSYM_EXAMPLE_T_STOP", 100.0))

model = hhsym.library.hodgkin_huxley()
traces = {
    method: hhsym.simulate(model, Step(10.0, 10.0, t_stop - 10.0), t_stop, dt=0.01, method=method)
    for method in ("rk4", "exp_euler", "dopri5")
}
for method, tr in traces.items():
    spikes = int(((tr.V[:-1] < 0) & (tr.V[1:] >= 0)).sum())
    print(f"{method:9s}: {spikes} spikes, V range [{tr.V.min():.1f}, {tr.V.max():.1f}] mV")
traces["rk4"].to_csv(os.path.join(out, "hh_step.csv"))
plot_traces(list(traces.values()), os.path.join(out, "hh_step.png"), labels=list(traces))
print("wrote", os.path.join(out, "hh_step.csv"), "and hh_step.png")
