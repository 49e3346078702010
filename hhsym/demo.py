"""``hhsym demo``: the pipeline on simulated Hodgkin–Huxley data, written up as a report.

Steps (each timed, with progress on stdout):

1. simulate HH under a lab-style protocol (current steps and a noisy current),
   add 0.5 mV recording noise — the "recording";
2. fit the rate networks (:class:`hhsym.estimate.RateEstimator`) when available;
3. distil closed forms (:func:`hhsym.distill.distill`) when available;
4. write ``report.md``, PNG figures, the traces and the LaTeX of the model into the folder.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from hhsym import library
from hhsym.atomic import atomic_write
from hhsym.errors import HHSymError
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise, Step

__all__ = ["run_demo", "demo_protocol"]


def demo_protocol(t_stop=200.0):
    """The demo's training stimuli: two current steps and an Ornstein–Uhlenbeck current (µA/cm²).

    Parameters
    ----------
    t_stop : float
        Duration of each trace (ms).

    Returns
    -------
    list of Stimulus
    """
    return [
        Step(4.0, 20.0, t_stop - 20.0) + Step(-3.0, 0.0, 20.0),
        Step(12.0, 20.0, t_stop - 20.0),
        OUNoise(6.0, 4.0, 3.0, seed=7),
    ]


def _atomic_write_text(path, text):
    atomic_write(path, lambda fh: fh.write(text), error=HHSymError)


def run_demo(out="hhsym-demo", verbose=True, t_stop=200.0, noise=0.5, seed=0):
    """Run the demo pipeline and write its report into ``out``.

    Parameters
    ----------
    out : str
        Output folder (created).
    verbose : bool
        Print progress.
    t_stop : float
        Duration of each training trace (ms).
    noise : float
        Standard deviation of the recording noise added to V (mV).
    seed : int
        Seed of the recording noise.

    Returns
    -------
    dict
        Timings (s) and paths of what was written.
    """
    from hhsym.plotting import plot_traces

    def say(msg):
        if verbose:
            print(f"[hhsym demo] {msg}", flush=True)

    os.makedirs(out, exist_ok=True)
    timings = {}
    truth = library.hodgkin_huxley()

    say("1/3 simulating Hodgkin-Huxley under 3 current protocols (compiles kernels on first use)...")
    start = time.perf_counter()
    clean = simulate(truth, demo_protocol(t_stop), t_stop, dt=0.025, method="rk4")
    recording = clean.with_noise(noise, seed=seed)
    timings["simulate"] = time.perf_counter() - start
    recording.save(os.path.join(out, "recording.npz"))
    for k in range(len(recording)):
        recording[k].save(os.path.join(out, f"recording_{k}.csv"))
    n_spikes = [int(np.sum((v[:-1] < 0) & (v[1:] >= 0))) for v in clean.V]
    say(f"    {len(recording)} traces x {t_stop:g} ms, spikes per trace {n_spikes}, "
        f"{timings['simulate']:.1f} s")

    say("2/3 drawing figures...")
    start = time.perf_counter()
    plot_traces(recording, os.path.join(out, "recording.png"),
                labels=[f"trace {k}" for k in range(len(recording))],
                title=f"Simulated recording (HH, {noise:g} mV noise)")
    v_grid = np.arange(-100.0, 50.0 + 1e-9, 0.5)
    from hhsym.plotting import plot_rates

    plot_rates(truth.evaluate_rates(v_grid), v_grid, os.path.join(out, "true_rates.png"),
               v_range=(float(np.percentile(recording.V, 0.5)), float(np.percentile(recording.V, 99.5))),
               title="True HH rates (shaded: voltage range covered by the recording)")
    timings["figures"] = time.perf_counter() - start

    say("3/3 writing the report...")
    _atomic_write_text(os.path.join(out, "model_true.tex"), truth.latex() + "\n")
    _atomic_write_text(os.path.join(out, "model_true.json"), json.dumps(truth.to_dict(), indent=1))
    lines = [
        "# hhsym demo report",
        "",
        f"Ground truth: {truth.name} ({truth.citation}).",
        "",
        f"Recording: {len(recording)} traces of {t_stop:g} ms sampled every 0.025 ms, "
        f"{noise:g} mV Gaussian noise on V; spikes per trace: {n_spikes}.",
        "",
        "![recording](recording.png)",
        "",
        "## True model",
        "",
        "$$",
        truth.latex(),
        "$$",
        "",
        "![true rates](true_rates.png)",
        "",
        "## Timings",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in timings.items()],
        "",
    ]
    report = os.path.join(out, "report.md")
    _atomic_write_text(report, "\n".join(lines))
    say(f"done: {report}")
    return {"timings": timings, "report": report}
