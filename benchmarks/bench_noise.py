"""Issue 16: the learned route (networks by maximum likelihood, then distilled) on noisy, lab-shaped recordings.

Run:  python benchmarks/bench_noise.py [--models HH,made-up,linoid-beta] [--noise 0,0.1,0.3]
                                       [--sweeps 8] [--duration 1000] [--start generic|forms]
                                       [--scaling 1,2,4,8] [--no-distill] [--floor] [--seed 0]

Data (the issue's): ``--sweeps`` sweeps of ``--duration`` ms sampled at 20 kHz (half noisy
currents, half two-level steps), white noise on V of ``--noise`` mV.  Models: HH, bench_fit's
made-up model, and a made-up model whose beta_m is a linoid (outside the textbook pair).

For each case it fits ``hhsym.RateEstimator`` with its stage 3 on (``ml_windows=ML_WINDOWS``: the
networks by maximum likelihood, :mod:`hhsym.estimate.likelihood`) and prints:

* the networks' max relative rate error where the rates matter (>= 5 % of alpha + beta, over
  [-75, 20] mV), and the share of that grid where the truth lies inside the 95 % bands
  (``predict_rates(V, return_std=True)``);
* the distilled model (``hhsym.distill`` with the traces, its defaults; on noisy data that is
  ``loss="output"``: forms compared by the BIC of the output error, constants refined by it): forms right, max relative
  rate error where the rates matter, held-out Γ (±2 ms) on a step + noise current;
* the time of fit and distillation.

``--start forms`` starts the networks from ``hhsym.FormEstimator``'s closed forms (the roles and
constants it finds by charge balance and output error, 30 starts per role pattern, no form
search; its time is included) and goes straight to the maximum-likelihood stage (the
charge-balance stages are biased by noise on V), instead of the networks' own generic start.  ``--scaling 1,2,4,8`` repeats the first model at the first noise
level with that many sweeps and prints how the error falls with the data.

``--floor`` also fits each case from the true rates (``prior=model``: the networks pretrained on
them, then the same maximum likelihood) and prints that fit's error and band coverage: what the
likelihood's own basin gives on these data, so a gap between the two columns is the search's, the
floor itself the data's.  ``--seed`` draws another noise realisation (and ``random_state``); seed 0
is the issue's table.

Issue targets at 0.3 mV on every model: networks within 5 % where the rates matter with the
truth inside the bands at >= 90 % of that grid; 6/6 forms; distilled rates within 3 % where
they matter; held-out Γ >= 0.98; fit + distil <= 5 min.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench_fit import made_up_model
from hhsym.errors import HHSymError
from hhsym.estimate import FormEstimator, RateEstimator
from hhsym.estimate.likelihood import ML_WINDOWS
from hhsym.library import hodgkin_huxley
from hhsym.metrics import band_coverage, coincidence_factor, rate_errors, spike_times
from hhsym.model import Channel, ConductanceModel, Gate
from hhsym.simulate import simulate
from hhsym.stimuli import OUNoise, Step

V_RANGE = (-75.0, 20.0)


def linoid_beta_model():
    """Made-up rates, beta_m a linoid (decreasing), outside the textbook (exponential) pair."""
    na = Channel("Na", 110.0, 52.0, [
        Gate("m", "0.12*(V + 42)/(1 - exp(-(V + 42)/8))", "0.35*(V + 68)/(exp((V + 68)/14) - 1)", 3),
        Gate("h", "0.06*exp(-(V + 64)/19)", "0.9/(1 + exp(-(V + 33)/11))", 1)])
    k = Channel("K", 34.0, -78.0, [
        Gate("n", "0.012*(V + 56)/(1 - exp(-(V + 56)/10))", "0.14*exp(-(V + 64)/70)", 4)])
    return ConductanceModel([na, k, Channel("L", 0.3, -58.0)], C_m=1.0, name="linoid-beta")


MODELS = {"HH": hodgkin_huxley, "made-up": made_up_model, "linoid-beta": linoid_beta_model}


def lab_data(model, noise, sweeps=8, duration=1000.0, dt=0.05, seed=0):
    """``sweeps`` recordings at 1/dt kHz: even ones a noisy current, odd ones two current steps; ``seed``
    draws the noise on V (the currents are the same for every seed)."""
    stims = []
    for k in range(sweeps):
        if k % 2 == 0:
            # on the recording's own grid: the current the cell gets is the one recorded (an OU grid finer
            # than the samples is input the recording misses; it biased the distilled rates ~5 %)
            stims.append(OUNoise(mean=5.0 + 2.0 * k, sigma=6.0, tau=3.0, seed=11 + k, dt=dt))
        else:
            a = 2.0 + 1.5 * k
            stims.append(Step(a, 0.1 * duration, 0.5 * duration) + Step(a + 4.0, 0.5 * duration, 0.9 * duration))
    train = list(simulate(model, stims, duration, dt=dt / 5, dt_out=dt))
    if noise:
        train = [tr.with_noise(noise, seed=100 + k + 1000 * seed) for k, tr in enumerate(train)]
    held = Step(8.0, 20.0, 280.0) + OUNoise(mean=0.0, sigma=4.0, tau=2.0, seed=99)
    return train, held


def where_error(rates, model):
    err = rate_errors(rates, model, V_RANGE, min_share=0.05)
    return float(np.nanmax(list(err.values())))


def coverage(est, model):
    """Share of the grid (where the rates matter) with the truth inside the 95 % bands, or nan."""
    if getattr(est, "covariance_", None) is None:
        return float("nan")
    return band_coverage(est, model, V_RANGE)


def true_forms(model, v_range):
    """Each rate's form as the model writes it (a family or sum reproduced to 0.1 % on ``v_range``).

    Not the forms backend's pick on the exact rates: its "simplest" rule takes a sigmoid for linoid-beta's
    decreasing linoid beta_m (within its 2 % tolerance), which would count the true linoid as wrong."""
    from hhsym.estimate.losses.output_error import model_forms

    V = np.linspace(float(v_range[0]), float(v_range[1]), 200)
    return {k: f.form for k, f in model_forms(model, V).items()}


def held_gamma(model, fitted, held):
    a = simulate(model, held, 300.0, dt=0.005, dt_out=0.025)
    try:
        b = simulate(fitted, held, 300.0, dt=0.005, dt_out=0.025)
    except HHSymError:
        return float("nan")
    return coincidence_factor(spike_times(a.t, a.V), spike_times(b.t, b.V), 2.0, 300.0)


def run_case(name, model, noise, sweeps, duration, start, distil, floor=False, seed=0):
    import hhsym

    train, held = lab_data(model, noise, sweeps, duration, seed=seed)
    t0 = time.perf_counter()
    if start == "forms":  # networks pretrained on the closed forms, then straight to maximum likelihood
        prior = FormEstimator(model, search=False, n_starts=30, random_state=0).fit(train).model_
        est = RateEstimator(model, prior=prior, spline_knots=(), max_iter=(0, 0, 30), n_shooting=0,
                            ml_windows=ML_WINDOWS, random_state=0).fit(train)
    else:
        est = RateEstimator(model, ml_windows=ML_WINDOWS, random_state=seed).fit(train)
    fit_s = time.perf_counter() - t0
    row = dict(model=name, noise=noise, sweeps=sweeps, err=where_error(est, model), cover=coverage(est, model),
               fit_s=fit_s, stage3=getattr(est, "covariance_", None) is not None)
    if floor:  # the same route from the true rates: the likelihood's own basin on these data
        best = RateEstimator(model, prior=model, ml_windows=ML_WINDOWS, random_state=seed).fit(train)
        row.update(floor=where_error(best, model), floor_cover=coverage(best, model))
    if distil:
        t1 = time.perf_counter()
        try:
            # the default (loss="auto"): on noisy recordings the route, forms compared by the BIC of the
            # output error and constants refined by it (the charge-balance refinement is biased by noise on V)
            dist = hhsym.distill(est, traces=train)
            true = true_forms(model, est.v_range_)
            row.update(forms=f"{sum(dist.forms[k] == f for k, f in true.items())}/{len(true)}",
                       wrong=", ".join(f"{k} {dist.forms[k]} (true {f})" for k, f in true.items()
                                       if dist.forms[k] != f),
                       d_err=where_error(dist.model, model), gamma=held_gamma(model, dist.model, held))
        except HHSymError as exc:
            print(f"  distillation failed: {exc}")
            row.update(forms="-", d_err=float("nan"), gamma=float("nan"))
        row["dist_s"] = time.perf_counter() - t1
    print(row, flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="HH,made-up,linoid-beta")
    ap.add_argument("--noise", default="0,0.1,0.3", help="noise levels on V (mV)")
    ap.add_argument("--sweeps", type=int, default=8)
    ap.add_argument("--duration", type=float, default=1000.0, help="sweep length (ms)")
    ap.add_argument("--start", choices=["generic", "forms"], default="generic")
    ap.add_argument("--scaling", default="", help="sweep counts for the error-vs-data table, e.g. 1,2,4,8")
    ap.add_argument("--distill", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--floor", action="store_true", help="also fit each case from the true rates")
    ap.add_argument("--seed", type=int, default=0, help="noise realisation and random_state")
    args = ap.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noises = [float(x) for x in args.noise.split(",")]
        for name in args.models.split(","):
            for noise in noises:
                rows.append(run_case(name, MODELS[name](), noise, args.sweeps, args.duration, args.start,
                                     args.distill, args.floor, args.seed))
        first = args.models.split(",")[0]
        done = {r["sweeps"]: r for r in rows if r["model"] == first and r["noise"] == noises[-1]}
        scaling = [done.get(int(n)) or run_case(first, MODELS[first](), noises[-1], int(n), args.duration,
                                                args.start, False, seed=args.seed)
                   for n in args.scaling.split(",") if n]  # the table's own fit is reused for its sweep count
    print()
    print(f"start: {args.start}; seed {args.seed}; {args.sweeps} sweeps x {args.duration:g} ms at 20 kHz; rate "
          "errors where the rate is >= 5 % of alpha + beta over [-75, 20] mV")
    floor = f" {'floor':>6s} {'band':>5s}" if args.floor else ""
    print(f"{'model':12s} {'noise':>5s} {'net err':>8s} {'in band':>7s} {'fit s':>6s}{floor} | {'forms':>5s} "
          f"{'d.err':>7s} {'Gamma':>6s} {'dist s':>6s}")
    for r in rows:
        floor = f" {r['floor']:6.3g} {r['floor_cover']:5.2f}" if args.floor else ""
        print(f"{r['model']:12s} {r['noise']:5.2f} {r['err']:8.3g} {r['cover']:7.2f} {r['fit_s']:6.0f}{floor} | "
              f"{r.get('forms', '-'):>5s} {r.get('d_err', float('nan')):7.3g} {r.get('gamma', float('nan')):6.3f} "
              f"{r.get('dist_s', float('nan')):6.0f}")
    if scaling:
        print(f"\nerror vs sweeps ({first}, {noises[-1]:g} mV):")
        for r in scaling:
            print(f"  {r['sweeps']:2d} sweeps: net err {r['err']:.3g}, in band {r['cover']:.2f}, {r['fit_s']:.0f} s")
    print("\ntargets (issue 16, 0.3 mV): net err <= 0.05, in band >= 0.90, 6/6 forms, d.err <= 0.03, "
          "Gamma >= 0.98, fit + distil <= 300 s")


if __name__ == "__main__":
    main()
