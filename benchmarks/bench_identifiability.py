"""How well do V(t) and I(t) determine the rates?  Fits started AT the truth, two losses, two noise levels.

Run:  python benchmarks/bench_identifiability.py [--models HH,made-up] [--noise 0,0.5] [--knots 16]
                                                 [--window 5] [--iter 40]

The data are bench_fit.py's (two 300 ms traces of noisy current, sampled at
0.025 ms).  Each rate function is a free curve — logit x_inf and
log(tau - tau_min) as cubic B-splines with ``--knots`` knots
(hhsym.estimate.rates.curves.SplineFamily), the flexibility of the estimator's
spline stage — started at the projection of the true rates, and fitted by
Levenberg–Marquardt with two losses:

* the estimator's stage-1 charge balance (gates driven by the measured V);
* output error (hhsym.estimate.losses.trajectory.TrajectoryProblem): the model runs
  freely over ``--window`` ms windows from a free initial state each, and is
  compared with every sample of V — the maximum-likelihood loss for Gaussian
  noise on V.  The initial states are first fitted with the rates held at the
  truth.

For each it prints the cost at the (projected) truth, the cost after the fit,
and how far the fit moved the rates (max relative error over [-75, 20] mV,
and where each rate is >= 5 % of its gate's alpha + beta).  A fit that ends
below the truth's cost with rates far from the truth shows that the data
cannot tell those rates from the true ones under that loss: no estimator with
that much freedom can recover them there, however it is trained.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench_fit import cases
from hhsym.estimate.losses.charge_balance import ChargeBalance
from hhsym.estimate.rates.curves import SplineFamily, curves_from_rates
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.losses.trajectory import TrajectoryProblem
from hhsym.metrics import rate_errors

TAU_MIN = 0.01
SMOOTH = 1e-9


def true_start(fam, model, V):
    return fam.project(*curves_from_rates(model.evaluate_rates(V), [g.name for g in model.gates], TAU_MIN), V)


def rate_error(fam, p, model):
    """Max relative rate error over [-75, 20] mV, and where each rate is >= 5 % of alpha + beta."""
    rates = fam.at(p, [g.name for g in model.gates])
    everywhere = rate_errors(rates, model, (-75.0, 20.0))
    where = rate_errors(rates, model, (-75.0, 20.0), min_share=0.05)
    return max(everywhere.values()), float(np.nanmax(list(where.values())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="HH,made-up")
    ap.add_argument("--noise", default="0,0.5", help="noise levels on V (mV)")
    ap.add_argument("--knots", type=int, default=16)
    ap.add_argument("--window", type=float, default=5.0, help="output-error window (ms)")
    ap.add_argument("--iter", type=int, default=40, help="Levenberg-Marquardt iterations per fit")
    args = ap.parse_args()
    rows = []
    for name, model, noise, train, _ in cases(args.models, args.noise):
        recs = [(tr.dt, tr.V, tr.I) for tr in train]
        V = np.concatenate([tr.V for tr in train])
        lo, hi = float(V.min()), float(V.max())
        fam = SplineFamily(len(model.gates), 0.5 * (lo + hi), 0.51 * (hi - lo), knots=args.knots, tau_min=TAU_MIN)
        loss = ChargeBalance(fam, model, recs)
        p0 = true_start(fam, model, np.linspace(lo, hi, 400))
        free = np.zeros(p0.size)
        t0 = time.perf_counter()
        c_truth = loss.cost(p0)
        p, c_fit = levenberg_marquardt(loss.lm_fun(SMOOTH), p0, 0.0, free, max_iter=args.iter, mu0=1e-2,
                                       geodesic=True)
        rows.append((name, noise, "charge balance", c_truth, 0.5 * float(np.sum(loss.residuals(p) ** 2)),
                     *rate_error(fam, p, model), time.perf_counter() - t0))
        print(rows[-1], flush=True)
        t0 = time.perf_counter()
        tp = TrajectoryProblem(fam, model, recs, window=args.window, substeps=2, stride=1)
        fun = tp.lm_fun(SMOOTH)
        q0 = np.concatenate([p0, tp.initial_states()])
        states = np.arange(p0.size, q0.size)
        q0, _ = levenberg_marquardt(fun, q0, 0.0, np.zeros(q0.size), max_iter=args.iter, mu0=1e-2, free=states)
        r0 = tp.evaluate(q0, False)
        q, _ = levenberg_marquardt(fun, q0, 0.0, np.zeros(q0.size), max_iter=args.iter, mu0=1e-2)
        r1 = tp.evaluate(q, False)
        rows.append((name, noise, f"output error, {args.window:g} ms", 0.5 * float(r0 @ r0),
                     0.5 * float(r1 @ r1), *rate_error(fam, q[:p0.size], model), time.perf_counter() - t0))
        print(rows[-1], flush=True)
    print()
    print(f"{args.knots}-knot spline rates started at the truth; costs are half mean squares (mV^2); "
          "rate errors: max relative over [-75, 20] mV (where the rate is >= 5 % of alpha + beta)")
    print(f"{'model':8s} {'noise':>5s} {'loss':22s} {'cost at truth':>13s} {'cost of fit':>11s} "
          f"{'rates moved':>18s} {'s':>5s}")
    for name, noise, loss, ct, cf, e, ein, sec in rows:
        print(f"{name:8s} {noise:5.1f} {loss:22s} {ct:13.4g} {cf:11.4g} {f'{e:.3g} ({ein:.3g})':>18s} {sec:5.1f}")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main()
