"""Benchmark of issue 4: distilled rate forms, constants, held-out Γ and distillation time.

Run:  python benchmarks/bench_distill.py [--fits DIR] [--budget SECONDS] [--backend auto]

Data, models and estimator settings are those of ``bench_fit.py`` (issue 3):
Hodgkin–Huxley and a made-up-rates model (same channels, every constant
changed), two 300 ms training traces under OU current, fitted noise-free and
with 0.5 mV noise on V.  Each fitted :class:`~hhsym.estimate.RateEstimator`
(saved in / reused from ``--fits``) is distilled with
``hhsym.distill.distill(est, backend, traces=train)`` and scored:

* rates in the true family (out of 6) and the largest relative error of
  their constants (A, B, k of the forms backend's parametrisation;
  exponentials as A e^{V/k}) — target 6/6 within 2 % (5 % at 0.5 mV noise);
* the same count for the backend's own BIC pick on the same fronts (peer of
  the "simplest within tolerance" rule);
* max relative rate error of the distilled model on its sampled range;
* the estimator's loss (mV²) of its networks, of the distilled forms and of
  the refined forms, and of the true model (floor of that loss);
* held-out Γ (±2 ms, 300 ms step + OU stimulus) of the distilled model against
  the true one — target ≥ 0.98;
* distillation wall time (backend, refinement incl. one model compilation).

Each case is also run with a *stand-in* estimator whose "networks" are the true
rates times a smooth 2 % (noise-free) or 5 % (0.5 mV) relative error — the
accuracy issue 3 asks of the estimator — to measure distillation on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import data, made_up_model

from hhsym.distill import distill, get_backend, select_candidate
from hhsym.estimate.losses.shooting_loss import ShootingLoss
from hhsym.estimate import RateEstimator, load
from hhsym.estimate.checks import as_recordings
from hhsym.library import hodgkin_huxley
from hhsym.metrics import coincidence_factor, rate_errors, spike_times
from hhsym.simulate import simulate


class StandIn:
    """Stand-in estimator: the true rates times a smooth error of relative size ``error``.

    Its "networks" miss the truth by up to ``error`` (a sine in V, different
    phase per rate), the accuracy issue 3 asks of the estimator; its range
    is the 0.5-99.5 percentiles of the training V, as the estimator's.
    """

    def __init__(self, model, train, error):
        self.model, self.error = model, error
        self.v_range_ = tuple(float(v) for v in np.percentile(np.concatenate([t.V for t in train]), [0.5, 99.5]))

    def predict_rates(self, V):
        V = np.asarray(V, dtype=float)
        return {k: r * (1.0 + self.error * np.sin(V / 7.0 + i))
                for i, (k, r) in enumerate(self.model.evaluate_rates(V).items())}


def truth(model, v_range):
    """True family and constants per rate, in the forms backend's parametrisation."""
    V = np.arange(v_range[0], v_range[1], 0.5)
    rates = model.evaluate_rates(V)
    backend = get_backend("forms", fallback=None)
    return {k: (fit.best.form, fit.best.params) for k, fit in
            ((k, backend.fit_rate(V, r, k)) for k, r in rates.items())}


def constants_error(candidate_params, reference):
    return max(abs(candidate_params[p] - v) / abs(v) for p, v in reference.items())


def score_forms(forms, constants, true):
    ok = [k for k in true if forms[k] == true[k][0]]
    err = max((constants_error(constants[k], true[k][1]) for k in ok), default=float("nan"))
    return len(ok), err


def gamma(model, other, held):
    try:
        a = simulate(model, held, 300.0, dt=0.01)
        b = simulate(other, held, 300.0, dt=0.01)
    except Exception as exc:  # noqa: BLE001 - report, do not hide
        print(f"    held-out simulation failed: {type(exc).__name__}: {exc}")
        return float("nan"), (0, 0)
    sa, sb = spike_times(a.t, a.V), spike_times(b.t, b.V)
    return coincidence_factor(sa, sb, 2.0, 300.0), (len(sa), len(sb))


def fitted(name, model, noise, train, folder, budget):
    path = None if folder is None else os.path.join(folder, f"{name}_{noise:.1f}.npz")
    if path and os.path.exists(path):
        return load(path), True
    est = RateEstimator(model, hidden=(16, 16), time_limit=budget, random_state=0, max_iter=(20, 200, 10),
                        n_starts=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(train)
    if path:
        est.save(path)
    return est, False


def run(label, est, model, train, held, args):
    lo, hi = est.v_range_
    true = truth(model, (lo, hi))
    net_err = rate_errors(est, model, (np.ceil(lo), np.floor(hi)))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trust = None if args.trust.lower() == "none" else float(args.trust)
        dist = distill(est, backend=args.backend, traces=train, max_iter=args.max_iter, trust=trust)
    t_distill = time.perf_counter() - t0
    for w in caught:
        print(f"    warning: {w.message}")
    n_ok, err = score_forms(dist.forms, dist.constants, true)
    n_bic = sum(select_candidate(r.fit, "bic").form == true[k][0] for k, r in dist.rates.items())
    _, err_pre = score_forms(dist.forms, {k: r.chosen.params for k, r in dist.rates.items()}, true)
    dist_err = rate_errors(dist.model, model, (np.ceil(lo), np.floor(hi)))
    g, spikes = gamma(model, dist.model, held)
    ref = dist.refinement
    floor = ShootingLoss(model, as_recordings(train), **ref["options"]).cost()
    print(f"  {label}: v_range [{lo:.1f}, {hi:.1f}] mV, network max rate err {max(net_err.values()):.3g}")
    for k, r in dist.rates.items():
        print(f"    {k:8s} {r.form:26s} true {true[k][0]:12s} {r.expr}")
    net = "n/a" if ref["loss_network"] is None else f"{ref['loss_network']:.4g}"
    print(f"    loss (mV^2): network {net}, distilled {ref['loss_distilled']:.4g}, refined "
          f"{ref['loss_refined']:.4g} ({'kept' if ref['accepted'] else 'not kept'}), true model {floor:.4g}; "
          f"Gamma {g:.3f}, spikes true/distilled {spikes[0]}/{spikes[1]}; distill {t_distill:.1f} s "
          f"(backend {sum(dist.timings['backend'].values()):.1f} s, refine {dist.timings['refine']:.1f} s, "
          f"{ref['iterations']} iterations)", flush=True)
    return dict(label=label, n_ok=n_ok, err=err, err_pre=err_pre, n_bic=n_bic, net_err=max(net_err.values()),
                dist_err=max(dist_err.values()), gamma=g, spikes=spikes, t=t_distill,
                t_backend=sum(dist.timings["backend"].values()), ref=ref, floor=floor)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", default=None, help="directory to keep/reuse the fitted estimators (.npz)")
    ap.add_argument("--budget", type=float, default=55.0, help="time_limit of each fit (s), as bench_fit")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--max-iter", type=int, default=30, help="refinement iterations")
    ap.add_argument("--trust", default="0.05", help="refinement trust band (relative), or 'none'")
    ap.add_argument("--no-estimator", action="store_true", help="stand-in networks only (no RateEstimator fits)")
    args = ap.parse_args()
    if args.fits:
        os.makedirs(args.fits, exist_ok=True)
    rows = []
    for name, model in (("HH", hodgkin_huxley()), ("made-up", made_up_model())):
        for noise in (0.0, 0.5):
            train, held = data(model, noise)
            error = 0.02 if noise == 0 else 0.05
            print(f"{name} noise {noise:.1f} mV", flush=True)
            rows.append(run(f"{name:8s} {noise:.1f} stand-in {error:.0%}", StandIn(model, train, error), model,
                            train, held, args))
            if not args.no_estimator:
                est, reused = fitted(name, model, noise, train, args.fits, args.budget)
                label = f"{name:8s} {noise:.1f} RateEstimator"
                rows.append(run(label + (" (reused fit)" if reused else f" (fit {est.fit_time_:.0f} s)"),
                                est, model, train, held, args))
    print()
    print(f"{'model    noise networks':36s} {'forms':>5s} {'BIC':>4s} {'const err':>9s} {'(unref.)':>9s} "
          f"{'net err':>8s} {'dist err':>8s} {'loss net':>9s} {'loss ref':>9s} {'loss true':>9s} "
          f"{'Gamma':>6s} {'spikes':>8s} {'t dist':>7s} {'t back':>6s}")
    for r in rows:
        ln = r["ref"]["loss_network"]
        spikes = "{}/{}".format(*r["spikes"])
        print(f"{r['label']:36s} {r['n_ok']:3d}/6 {r['n_bic']:2d}/6 {r['err']:9.2%} "
              f"{r['err_pre']:9.2%} {r['net_err']:8.3g} {r['dist_err']:8.3g} "
              f"{(float('nan') if ln is None else ln):9.3g} {r['ref']['loss_refined']:9.3g} {r['floor']:9.3g} "
              f"{r['gamma']:6.3f} {spikes:>8s} {r['t']:7.1f} {r['t_backend']:6.1f}")
    print()
    print("targets (issue 4): 6/6 forms, constants within 2 % (5 % at 0.5 mV noise), held-out Gamma >= 0.98")
    print("forms / BIC: rates in the true family by the 'simplest within 2 % RMS' rule / by the backend's BIC pick")
    print("const err: max relative error of the constants of rates in the true family, refined (unrefined)")
    print("net err / dist err: max relative rate error of the networks / the distilled model on v_range_")
    print("loss: the estimator's cost (mV^2) of the networks / refined closed forms / the true model")


if __name__ == "__main__":
    main()
