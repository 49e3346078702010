"""Fit throughput (issue 19, item 3): sample-steps per second of the fit's sensitivity kernels, and cost per
sample against data length.

Run:  python benchmarks/bench_fit_scaling.py [--durations 0.3,1,3,10] [--repeat 3]

Data: HH under a noisy current (OU, mean 8, sigma 5 µA/cm², tau 3 ms) sampled at 20 kHz, one trace per
duration (s).  Per loss, one residual + exact Jacobian evaluation (the unit of every optimiser iteration),
best of ``--repeat`` after a warm-up call (compilation excluded):

* ``charge balance`` — the network route's stage 1
  (:class:`hhsym.estimate.losses.charge_balance.ShootingProblem`, stage 1 only: 16-unit networks, 0.25 ms
  windows);
* ``output error`` — the closed forms' loss
  (:class:`hhsym.estimate.losses.trajectory.TrajectoryProblem`, HH's forms, 5 ms windows, free initial
  states), as the window Levenberg–Marquardt evaluates it (``blocks``: residuals and per-window Jacobian
  blocks);
* ``LM iter, nets`` — one whole iteration of the noisy route's last stage: the same loss on 16-unit
  networks pretrained on HH's curves (300 weights, 10 ms windows), its blocks, normal equations and one
  damped step (:class:`hhsym.estimate.optimise.window_lm.ArrowSystem`).

Printed: seconds per evaluation, integration sample-steps per second (samples x RK4 sub-steps / s), and the
cost per sample relative to the shortest duration (the issue asks for it to stay within 20 % from 0.3 s to
10 s).

Then both cores: the issue's data shape, ``--sweeps`` sweeps of 1 s at 20 kHz, each loss evaluated on one
thread and on every numba thread (``numba.set_num_threads``; traces and chunks of windows run side by side,
:mod:`hhsym.estimate.losses.threads`), with the speed-up, in the same run.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from hhsym.estimate.losses.charge_balance import ShootingProblem
from hhsym.estimate.losses.output_error import model_forms
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.estimate.rates.form_pairs import FormFamily
from hhsym.estimate.rates.network import RateNetwork
from hhsym.estimate.rates.network_rates import NetworkRates
from hhsym.estimate.optimise.window_lm import ArrowSystem
from hhsym.estimate.search.network_start import pretrain, prior_curves
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise

DT = 0.05  # ms: 20 kHz


def data_for(hh, seconds, sweeps=1):
    out = []
    for seed in range(1, sweeps + 1):
        stim = OUNoise(mean=8.0, sigma=5.0, tau=3.0, seed=seed, dt=DT)  # on the recording's grid
        tr = simulate(hh, stim, seconds * 1e3, dt=0.025, dt_out=DT)
        out.append((tr.dt, tr.V, tr.I))
    return out


def best_time(fn, repeat):
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def networks(hh):
    """16-unit rate networks for ``hh``'s gates: ``(NetworkRates, prototype, random weights)``."""
    proto = RateNetwork((16,), -20.0, 60.0)
    ng = len(hh.gates)
    norms = np.tile([proto.center, proto.scale, proto.delta], (2 * ng, 1))
    rng = np.random.default_rng(0)
    theta = np.concatenate([RateNetwork.initial_theta((16,), rng, log_rate0=0.0) for _ in range(2 * ng)])
    return NetworkRates(proto.sizes, norms, 0.01), proto, theta


def charge_balance(hh, data):
    rates, _, theta = networks(hh)
    pr = ShootingProblem(rates, hh, data, window=0.25)
    steps = sum(len(d[1]) for d in data) * max(tr["M"] for tr in pr.traces)
    return (lambda: pr.evaluate(theta, True, stage=1)), steps


def output_error(hh, data):
    truth = model_forms(hh, np.linspace(-76.0, 35.0, 200))
    fam = FormFamily(hh, truth)
    tp = TrajectoryProblem(fam, hh, data, window=5.0)
    p, Y0 = fam.pack(truth), tp.initial_states().reshape(-1, tp.ns)
    steps = sum(len(d[1]) * w["substeps"] for d, w in zip(data, tp.windows))
    # blocks(): what the window Levenberg-Marquardt evaluates (per-window Jacobian blocks); evaluate() builds
    # the dense Jacobian over every window's initial state, quadratic in the data length
    return (lambda: tp.blocks(p, Y0, True)), steps


def network_iteration(hh, data):
    rates, proto, theta = networks(hh)
    grid = np.linspace(-80.0, 45.0, 200)
    curves = prior_curves(hh, [g.name for g in hh.gates], grid, 0.01)
    theta = pretrain((16,), proto.center, proto.scale, grid, curves, theta)
    tp = TrajectoryProblem(rates, hh, data, window=10.0)
    Y0 = tp.initial_states().reshape(-1, tp.ns)
    free = np.arange(theta.size)
    steps = sum(len(d[1]) * w["substeps"] for d, w in zip(data, tp.windows))
    return (lambda: ArrowSystem(tp.blocks(theta, Y0, True), theta, None, free).step(1e-2)), steps


LOSSES = (("charge balance", charge_balance), ("output error", output_error), ("LM iter, nets", network_iteration))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--durations", default="0.3,1,3,10", help="seconds of data, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweeps", type=int, default=8, help="sweeps of 1 s for the threads comparison (0: skip)")
    args = ap.parse_args()
    durations = [float(x) for x in args.durations.split(",")]
    hh = hodgkin_huxley()
    print(f"load average {os.getloadavg()[0]:.1f}; numba threads {numba.get_num_threads()}; 20 kHz, one trace",
          flush=True)
    print(f"{'loss':15s} {'data s':>7s} {'samples':>8s} {'s/eval':>9s} {'steps/s':>10s} {'cost/sample':>12s}")
    for name, build in LOSSES:
        base = None
        for seconds in durations:
            data = data_for(hh, seconds)
            fn, steps = build(hh, data)
            t = best_time(fn, args.repeat)
            per_sample = t / len(data[0][1])
            base = per_sample if base is None else base
            print(f"{name:15s} {seconds:7.1f} {len(data[0][1]):8d} {t:9.4f} {steps / t:10.3g} "
                  f"{per_sample / base:12.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}; target: cost per sample within 20 % (0.80-1.20) from "
          f"{durations[0]:g} s to {durations[-1]:g} s", flush=True)
    if args.sweeps > 0:
        threads(hh, args.sweeps, args.repeat)


def threads(hh, sweeps, repeat):
    """One thread against every numba thread on ``sweeps`` sweeps of 1 s."""
    n = numba.get_num_threads()
    data = data_for(hh, 1.0, sweeps)
    print(f"\n{sweeps} sweeps x 1 s at 20 kHz: one thread vs {n} (load average {os.getloadavg()[0]:.1f})")
    print(f"{'loss':15s} {'1 thread s':>11s} {f'{n} threads s':>12s} {'speed-up':>9s} {'steps/s':>10s}")
    for name, build in LOSSES:
        fn, steps = build(hh, data)
        try:
            numba.set_num_threads(1)
            t1 = best_time(fn, repeat)
        finally:
            numba.set_num_threads(n)
        tn = best_time(fn, repeat)
        print(f"{name:15s} {t1:11.4f} {tn:12.4f} {t1 / tn:9.2f} {steps / tn:10.3g}", flush=True)


if __name__ == "__main__":
    main()
