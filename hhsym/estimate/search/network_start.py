"""The generic start of :class:`~hhsym.estimate.RateEstimator`: gate-role hypotheses, spline stage, pretraining.

* :func:`role_search` — every sign pattern of dx_inf/dV
  (:mod:`hhsym.estimate.search.roles`) is searched in a polynomial gate family
  on every trace, sampled ~0.05 ms apart (:func:`family_search`); the best
  contenders are lifted to a richer family, restarted gate by gate
  (:func:`gate_restarts`) and refitted on all the data;
* :func:`settle_roles` — each contender's curves refined as splines at the
  first level of the spline stage; the lowest cost wins and goes on to the
  finer levels;
* :func:`spline_stage` — start curves refined as cubic B-splines, coarse to fine;
* :func:`spline_likelihood` — on noisy recordings, the finest splines refined by maximum
  likelihood (output error), which the charge balance's noise bias does not reach;
* :func:`pretrain` — each network fitted to its target curve.

The functions take the estimator (its parameters: ``model``, ``stretch``,
``n_starts``, ``window``, ``tau_min``, ``burn_in``, ``verbose``; its fixed gates
``_fixed`` and ``_wrap``, which puts them on the template's rates) and record
``hypotheses_``/``roles_`` on it.  Fixed gates keep the template's role.

*The screening family.*  Every gate is described by a steady state whose logit is
quadratic in V (a Boltzmann curve that may bend once) with a log-quadratic time
constant (bell-shaped, monotone or flat) — the generic two-state gating shape,
nothing specific to one model — in :class:`hhsym.estimate.rates.curves.GateFamily`
with degrees :data:`SCREEN_DEGREES`.  With ``signs`` given, the slope of logit x_inf
at the centre of the V range is ``signs[j] * exp(p)``, so a search stays inside one
role pattern; the screen's family is also ``monotone`` (every x_inf rises, or falls, over
the whole range, as a two-state gate's does).  A pure Boltzmann steady state (degree 1) is too stiff: HH's logit
x_inf bend (e.g. log alpha_h - log beta_h is linear plus a softplus), and on
4 x 300 ms of two-level steps and noisy currents the true rates refined in it
cost 0.46 mV² on the screen's data where the wrong pattern +++ reached 0.11; with
the bend the right pattern ranks first or second (notes/issue16.md, session 6).

*Settling.*  The charge balance of the richer family still ranks the contenders
wrong on such data (HH on 2 x 300 ms: -++ 1.47e-3, +++ 1.60e-3, +-+ 1.98e-3 mV²),
because the role-swapped patterns (m inactivating, h activating) mimic m^3 h on
charge balance.  Refined as splines, the right pattern reaches the discretisation
floor of the true rates (1.96e-4, truth 2.0e-4) while the others stay at
9.6e-4 and 1.2e-3: the spline stage's first level decides.

*Monotone steady states, gate-wise restarts.*  On bench_fit's made-up model (2 x 1 s
of lab-shaped sweeps) the role search ended in a wrong basin of the right pattern on
half the seeds, and the fit 40-2000x off.  Two causes, both measured (notes/issue16.md,
session 10): in the cubic family the fits let n, its slope positive at the centre, fall
again at depolarised potentials and take over h's inactivation (h then at 1 below
-20 mV); and the screen's successive halving ranks runs that have not converged while
the right basin converges slowly (3 of 40 random draws reached it, after 50-100
iterations).  So the screen and the restarts keep every x_inf monotone
(:class:`GateFamily` ``monotone=True``), and each contender is restarted gate by gate
(:func:`gate_restarts`), which from a fit with one gate wrong reaches the right basin
within a few draws.
"""

from __future__ import annotations

import time

import numpy as np

from hhsym.errors import SimulationError, invalid
from hhsym.estimate.budget import seconds_left
from hhsym.estimate.losses.charge_balance import DV_SCALE, ChargeBalance
from hhsym.estimate.optimise.lm import levenberg_marquardt
from hhsym.estimate.rates.curves import GateFamily, SplineFamily, curves_from_rates
from hhsym.estimate.rates.network import RateNetwork
from hhsym.estimate.search.halving import successive_halving, thirds_schedule
from hhsym.estimate.search.roles import pattern_label, role_search as search_roles, sign_patterns

__all__ = ["family_search", "role_search", "settle_roles", "spline_stage", "spline_likelihood", "pretrain"]

#: Role patterns whose family cost is within this factor of the best are refitted on all the data
#: (the screening family can rank them wrong, so by default the best ``MAX_PATTERNS`` all are).
ROLE_MARGIN = np.inf
#: Shares of ``time_limit`` after which no new role pattern is screened, no new contender refitted,
#: and no new contender settled by the spline stage.
SCREEN_SHARE, REFIT_SHARE, SETTLE_SHARE = 0.5, 0.6, 0.7
#: At most this many role patterns (best family cost first) get gate-wise restarts and are refitted on
#: all the data; of those, at most ``MAX_SETTLED`` (best richer-family cost first) are settled.
MAX_PATTERNS, MAX_SETTLED = 4, 3
#: Polynomial degrees (logit x_inf, log tau) of the family that screens the role patterns.
SCREEN_DEGREES = (2, 2)
#: Sampling step (ms) of the data the role patterns are screened on (every k-th sample of finer
#: recordings), and the screen's charge-balance window in samples.  The screen integrates the gates
#: without sub-steps, so the step must resolve the fastest gate: at 0.1-0.2 ms the made-up model of
#: bench_fit (40 kHz) lost its right pattern, at 0.05 ms it is settled 5e-7 against 2.6e-3.
SCREEN_DT, SCREEN_WINDOW = 0.05, 5
#: With free whole-cell scalars (which the screen holds at the template's values) the screen runs on the
#: most active this many ms of each trace, where a wrong leak matters least: on whole traces a template
#: with g_L +33 %, E_L +2.7 mV, C_m +10 % bent the screen's gates and the fit failed (rates 26x off);
#: on 60 ms it recovers them within 1.7 % (test_passive_scalars_come_back_with_the_networks).
SCALARS_STRETCH = 60.0
#: Polynomial degrees (logit x_inf, log tau) of the family that refits the contenders on all the data.
RICH_DEGREES = (3, 3)
#: Levenberg–Marquardt iterations per level of the spline stage.
SPLINE_ITER = 100
#: Weight of the spline stage's second-difference penalty (per unit of the mean-square residual, mV²).
#: Started at the true rates, the unpenalised spline fit drifts 2-5 % along the loss's flat directions
#: to fit the discretisation error; 1e-9 keeps it within ~1-2 % (demo data), 1e-8 slows convergence.
SPLINE_SMOOTH = 1e-9
#: Range of logit x_inf and of log(tau - tau_min) (log ms) the maximum-likelihood splines start in
#: (:func:`spline_likelihood`).  Beyond it a gate is saturated (x_inf within 5e-5 of 0 or 1), instantaneous
#: or frozen (tau > 1 s) over any recording, the output error has no gradient, and the fit stays where the
#: charge balance put it: on HH 2 x 1 s at 0.3 mV its curves reached logit 36 and log tau -12 and 22, and the
#: first bridge length ended at 0.0639 mV² (the truth's 0.0439); clipped, at 0.0447.
START_Z, START_LT = 10.0, (-5.0, 7.0)
#: Gate-wise restarts after the screen's successive halving (:func:`gate_restarts`): fresh draws per gate
#: and Levenberg–Marquardt iterations per draw (the role search draws ``min(n_starts, GATE_DRAWS)`` per gate
#: and runs ``GATE_ITER_SHARE`` of the start's iterations, ``max_iter[0]``: 8 and 24 at the defaults).
GATE_DRAWS, GATE_ITER = 8, 24
GATE_ITER_SHARE = 0.6
#: At most this many passes over the gates; another pass follows one that lowered the cost by more than
#: ``GATE_GAIN`` (relative).
GATE_PASSES, GATE_GAIN = 3, 0.05


def _interleave(z, lt):
    """Per-gate curves ``(n_gates, len(grid))`` in the start's layout ``[z_0, lt_0, z_1, lt_1, ...]``."""
    return [cc for j in range(len(z)) for cc in (z[j], lt[j])]


def _spline_start(est, curves, q, knots, center, scale, grid, z_lim, lt_lim):
    """``(family, p0, n)``: curves (the start's layout, clipped to ``±z_lim`` and ``lt_lim``) projected on a
    ``knots``-knot :class:`SplineFamily`, then the free scalars' coordinates ``q`` (default the template's);
    ``n`` is the number of spline parameters."""
    fam = SplineFamily(len(curves) // 2, center, scale, knots=knots, tau_min=float(est.tau_min))
    p0 = fam.project(np.clip(curves[0::2], -z_lim, z_lim), np.clip(curves[1::2], *lt_lim), grid)
    n = p0.size
    if est._scalars is not None:
        p0 = np.concatenate([p0, est._scalars.pack() if q is None else q])
    return fam, p0, n


def _stretch(data, length):
    """The ``length`` ms of each trace with the most upward mid-range crossings (``None``: whole traces)."""
    if length is None:
        return list(data)
    out = []
    for dt, V, I in data:
        n = int(round(length / dt)) + 1
        if n >= len(V):
            out.append((dt, V, I))
            continue
        mid = 0.5 * (V.min() + V.max())
        up = np.zeros(len(V))
        up[1:] = (V[:-1] < mid) & (V[1:] >= mid)
        cs = np.concatenate([[0.0], np.cumsum(up)])
        counts = cs[n:] - cs[:-n]
        s = int(np.argmax(counts))
        out.append((dt, np.ascontiguousarray(V[s:s + n]), np.ascontiguousarray(I[s:s + n])))
    return out


def _screen_data(data, length):
    """The role screen's data: :func:`_stretch` of each trace, every k-th sample so that the step is
    about :data:`SCREEN_DT` (never finer than the recording's); returns ``(data, window)`` with the
    screen's charge-balance window (ms, :data:`SCREEN_WINDOW` samples)."""
    out, dts = [], []
    for dt, V, I in _stretch(data, length):
        k = max(1, int(round(SCREEN_DT / dt)))
        out.append((dt * k, np.ascontiguousarray(V[::k]), np.ascontiguousarray(I[::k])))
        dts.append(dt * k)
    return out, SCREEN_WINDOW * max(dts)


def _successive_halving(loss, starts, n_refine, max_iter, label, kw):
    """Refine the first ``n_refine`` of the ``(cost, params)`` starts by successive halving.

    Many short Levenberg–Marquardt runs first (``max_iter // 6``, at least 3); the best third
    continues with twice the iterations, until two or fewer remain
    (:func:`~hhsym.estimate.search.halving.thirds_schedule`).  Falls back to the first start if
    every run fails.

    Returns
    -------
    (params, cost)
    """

    def refine(p, n_iter, r, k):
        try:
            q, c = levenberg_marquardt(loss.lm_fun(), p, 0.0, np.zeros(p.size), max_iter=n_iter, mu0=1e-2,
                                       label=f"{label}{r}.{k}", **kw)
        except FloatingPointError:
            return None
        return c, q

    def progress(r, n_iter, ranked):
        if kw.get("verbose", 0) > 1:
            print(f"[hhsym.fit] {label} round {r}: {n_iter} iter, costs",
                  " ".join(f"{c:.3g}" for c, _ in ranked[:12]))

    schedule = thirds_schedule(max(1, int(n_refine)), max(3, int(max_iter) // 6))
    ranked, _ = successive_halving(starts, refine, schedule, on_round=progress)
    return ranked[0][1], ranked[0][0]


def gate_restarts(loss, fam, p, cost, rng, v_lim, gates=None, n_draws=GATE_DRAWS, max_iter=GATE_ITER,
                  passes=GATE_PASSES, gain=GATE_GAIN, label="gates", kw=None, time_limit=None):
    """Iterated local search over gates: redraw one gate's parameters, keep the others, refine.

    For each gate in turn, ``n_draws`` fresh random draws of that gate's parameters
    (:meth:`GateFamily.random_start`) replace its part of the incumbent ``p``; each is refined
    by ``max_iter`` Levenberg–Marquardt iterations and the best replaces the incumbent when its
    cost is lower.  Successive halving from joint random draws finds a basin where every gate is
    right together rarely (made-up model of bench_fit, 2 x 1 s: 3 of 40 and 3 of 120 draws reached
    it, and they converge slowly, so early rounds rank them low); its result usually has all gates
    but one right, and one gate redrawn then reaches the right basin within a few draws
    (notes/issue16.md, session 10).

    Parameters
    ----------
    loss : ChargeBalance
        The family's loss.
    fam : GateFamily
    p : ndarray
        Incumbent parameters.
    cost : float
        Its cost (mV²).
    rng : numpy.random.Generator
    v_lim : (float, float)
        Range (mV) of the random half-activation potentials.
    gates : sequence of int, optional
        The gates redrawn, in this order (default all; fixed gates have no parameters to redraw).
    n_draws, max_iter : int
        Draws per gate and iterations per draw.
    passes, gain : int, float
        At most ``passes`` passes over the gates; another follows a pass that lowered the cost by
        more than the share ``gain``.
    label : str
        Prefix of progress lines.
    kw : dict, optional
        ``verbose`` and ``history`` for :func:`levenberg_marquardt`.
    time_limit : float, optional
        Soft budget (s): no new draw starts after it.

    Returns
    -------
    (params, cost)
    """
    kw = {} if kw is None else kw
    t0 = time.perf_counter()
    best, c_best = np.asarray(p, dtype=float), float(cost)
    for r in range(int(passes)):
        c_pass = c_best
        for j in range(fam.ng) if gates is None else gates:
            found = None
            for k in range(int(n_draws)):
                if seconds_left(time_limit, t0) == 0.0:
                    break
                q = best.reshape(fam.ng, -1).copy()
                q[j] = fam.random_start(rng, *v_lim).reshape(fam.ng, -1)[j]
                try:
                    q, c = levenberg_marquardt(loss.lm_fun(), q.ravel(), 0.0, np.zeros(q.size), max_iter=max_iter,
                                               mu0=1e-2, label=f"{label}{r}.{j}.{k}", **kw)
                except FloatingPointError:
                    continue
                if np.isfinite(c) and (found is None or c < found[0]):
                    found = (c, q)
            if found is not None and found[0] < c_best:
                c_best, best = float(found[0]), found[1]
            if kw.get("verbose", 0) > 1:
                print(f"[hhsym.fit] {label} pass {r} gate {j} redrawn: cost {c_best:.4g}")
        if not c_best < (1.0 - gain) * c_pass:
            break
    return best, c_best


def family_search(model, data, center, scale, rng, signs=None, n_starts=300, n_refine=32, window=0.25,
                  max_iter=40, tau_min=0.0, v_lim=None, verbose=0, history=None, label="search",
                  dv_scale=DV_SCALE, substeps=None, wrap=None, deg=SCREEN_DEGREES, monotone=False):
    """Multi-start search of a polynomial gate family (optionally sign-constrained).

    Parameters
    ----------
    model : ConductanceModel
        Template (structure, conductances, reversal potentials, powers).
    data : list of (dt, V, I)
        The recordings to fit (e.g. a stretch of each trace).
    center, scale : float
        V normalisation (mV).
    rng : numpy.random.Generator
    signs : array of ±1, optional
        Sign of dx_inf/dV per gate at the centre of the V range (``None``: free).
    n_starts, n_refine : int
        Random starts drawn; the first ``n_refine`` with finite cost are
        refined by successive halving (a raw start's cost does not predict
        where Levenberg–Marquardt takes it, so none is preferred by it).
    window : float
        Charge-balance window (ms).
    max_iter : int
        Levenberg–Marquardt iterations of the longest refinement.
    tau_min : float
        Time-constant floor (ms).
    v_lim : (float, float), optional
        Range (mV) of the random half-activation potentials (default: the data's).
    dv_scale, substeps :
        Window weights and sub-steps (:class:`GateFamily`).
    wrap : callable, optional
        ``wrap(family)`` -> the parametrisation the loss sees (e.g. with fixed gates,
        :class:`~hhsym.estimate.rates.fixed_gates.FixedGates`); default the family itself.
    deg : (int, int)
        Polynomial degrees of logit x_inf and log tau (random starts are
        Boltzmann / log-quadratic; higher coefficients start at zero).
    monotone : bool
        With ``signs``: every x_inf monotone over the range (:class:`GateFamily`).

    Returns
    -------
    fam : GateFamily
    p : ndarray
        Best parameters.
    cost : float
        Its cost.
    """
    if v_lim is None:
        v_lim = (min(float(d[1].min()) for d in data), max(float(d[1].max()) for d in data))
    fam = GateFamily(len(model.gates), center, scale, deg=deg, signs=signs, monotone=monotone, tau_min=tau_min)
    loss = ChargeBalance(fam if wrap is None else wrap(fam), model, data, window=window, dv_scale=dv_scale,
                         substeps=substeps)
    starts = []
    for _ in range(int(n_starts)):  # the cost of a raw start says nothing of where LM takes it: keep draw order
        p = fam.random_start(rng, *v_lim)
        c = loss.cost(p)
        if np.isfinite(c):
            starts.append((c, p))
    if not starts:
        raise FloatingPointError("no random start of the gate family gives finite residuals")
    kw = dict(verbose=verbose, history=history)
    best, cost = _successive_halving(loss, starts, n_refine, max_iter, label, kw)
    return fam, best, cost


def _patterns(model, grid, fixed):
    """Sign patterns over the learned gates; a fixed gate (index in ``fixed``) keeps the template's sign
    (that of x_inf(grid[-1]) - x_inf(grid[0]))."""
    names = [g.name for g in model.gates]
    learned = [j for j in range(len(names)) if j not in fixed]
    if not fixed:
        return sign_patterns(len(names))
    r = model.evaluate_rates(np.array([grid[0], grid[-1]], dtype=float))
    sign = {}
    for j in fixed:
        a, b = r[f"alpha_{names[j]}"], r[f"beta_{names[j]}"]
        x = a / (a + b)
        sign[j] = 1 if x[1] >= x[0] else -1
    out = []
    for sg in sign_patterns(len(learned)):
        full = dict(zip(learned, sg)) | sign
        out.append(tuple(full[j] for j in range(len(names))))
    return out


def role_search(est, data, center, scale, grid, gate_names, rng, max_iter, opts, kw, t_start=None):
    """Generic start: role hypotheses screened in a polynomial family, contenders refitted (module docstring).

    1. every sign pattern of dx_inf/dV (:func:`hhsym.estimate.search.roles.role_search`):
       a :func:`family_search` in :data:`SCREEN_DEGREES` constrained to it on every trace
       (or its most active ``est.stretch`` ms), sampled ~:data:`SCREEN_DT` apart;
    2. patterns within ``ROLE_MARGIN`` of the best family cost (at most
       ``MAX_PATTERNS``) are lifted to the richer ``RICH_DEGREES`` family with
       the pattern's signs, refined on the screen's data and restarted gate by
       gate (:func:`gate_restarts`), then refitted on all the data with free
       signs: the best ``MAX_SETTLED`` of those are the contenders, which
       :func:`settle_roles` decides between.

    With a time budget (``est.time_limit``, counted from ``t_start``) no new pattern is screened after
    :data:`SCREEN_SHARE` of it (the first always is) and no new contender refitted after
    :data:`REFIT_SHARE` (the first always is; its iterations stop there too).

    Records ``est.hypotheses_`` (one dict per pattern screened: ``signs``, ``family_cost``,
    ``restart_cost`` (after the gate-wise restarts), ``full_cost`` (richer family, all the data) and
    ``settled_cost`` (:func:`settle_roles`), None where not reached).  Returns the contenders, lowest
    ``full_cost`` first, at most :data:`MAX_SETTLED`: ``(k, curves)`` with ``k`` the index in
    ``est.hypotheses_`` and ``curves`` on ``grid``: ``[logit x_inf, log(tau - tau_min)]`` per gate.
    """
    ng = len(gate_names)
    stretch = est.stretch
    if stretch is None and est._scalars is not None:
        stretch = SCALARS_STRETCH
    short, screen_window = _screen_data(data, None if stretch is None else float(stretch))
    patterns = _patterns(est.model, grid, est._fixed)
    learned = [j for j in range(ng) if j not in est._fixed]
    v_lim = (min(float(d[1].min()) for d in short), max(float(d[1].max()) for d in short))
    seeds = rng.integers(0, 2**63 - 1, size=len(patterns))
    tau_min = float(est.tau_min)
    # the screen integrates without sub-steps, on its own grid (fine enough for fast gates: SCREEN_DT)
    copts = dict(window=screen_window, dv_scale=opts["dv_scale"], substeps=1)  # the screen's charge balance
    lopts = dict(window=est.window, dv_scale=opts["dv_scale"], substeps=opts["substeps"])

    def screen(k, sg):
        label = pattern_label(sg)
        _, p, c = family_search(est.model, short, center, scale, np.random.default_rng(int(seeds[k])),
                                signs=sg, n_starts=3 * int(est.n_starts), n_refine=3 * int(est.n_starts),
                                max_iter=max_iter[0], history=kw["history"], label=f"roles{label}.",
                                wrap=est._wrap, monotone=True, v_lim=v_lim, tau_min=tau_min, **copts)
        return c, p, [c]

    hyps = search_roles(gate_names, screen, patterns, time_limit=est._left(t_start, SCREEN_SHARE),
                        verbose=est.verbose, tag="hhsym.fit", what="family cost")
    est.hypotheses_ = [{"signs": h.signs, "family_cost": h.cost, "restart_cost": None, "full_cost": None,
                        "settled_cost": None} for h in hyps]
    order = sorted(range(len(hyps)), key=lambda k: hyps[k].cost)
    c0 = hyps[order[0]].cost
    contenders = [k for k in order if np.isfinite(hyps[k].cost) and hyps[k].cost <= ROLE_MARGIN * c0]
    contenders = contenders[:MAX_PATTERNS]
    if est.verbose:
        print("[hhsym.fit] role hypotheses (family cost):",
              " ".join(f"{hyps[k].label} {hyps[k].cost:.3g}" for k in order), flush=True)
    out = []
    for n, k in enumerate(contenders):
        left = est._left(t_start, REFIT_SHARE)
        if n and left is not None and left <= 0:
            break
        sg, label = np.array(patterns[k], dtype=float), hyps[k].label
        fam = GateFamily(ng, center, scale, deg=SCREEN_DEGREES, signs=sg, monotone=True, tau_min=tau_min)
        signed = GateFamily(ng, center, scale, deg=RICH_DEGREES, signs=sg, monotone=True, tau_min=tau_min)
        rich = GateFamily(ng, center, scale, deg=RICH_DEGREES, tau_min=tau_min)
        try:
            # the pattern's fit lifted to the richer family (same signs), refined and restarted gate by
            # gate on the screen's data, then refined with free signs on all the data
            screen_loss = ChargeBalance(est._wrap(signed), est.model, short, **copts)
            p, c = levenberg_marquardt(screen_loss.lm_fun(), signed.lift(hyps[k].fits, fam), 0.0,
                                       np.zeros(signed.n_params), max_iter=max_iter[0], mu0=1e-2,
                                       label=f"roles{label}*", time_limit=left, **kw)
            p, c = gate_restarts(screen_loss, signed, p, c, np.random.default_rng([int(seeds[k]), 1]), v_lim,
                                 gates=learned, n_draws=min(int(est.n_starts), GATE_DRAWS),
                                 max_iter=max(1, int(GATE_ITER_SHARE * max_iter[0])), label=f"roles{label}g", kw=kw,
                                 time_limit=est._left(t_start, REFIT_SHARE))
            est.hypotheses_[k]["restart_cost"] = float(c)
            q, c = levenberg_marquardt(ChargeBalance(est._wrap(rich), est.model, data, **lopts).lm_fun(),
                                       rich.lift(p, signed), 0.0, np.zeros(rich.n_params), max_iter=max_iter[0],
                                       mu0=1e-2, label=f"roles{label}**",
                                       time_limit=est._left(t_start, REFIT_SHARE), **kw)
        except FloatingPointError:  # non-finite on all the data: not a contender
            continue
        est.hypotheses_[k]["full_cost"] = float(c)
        out.append((float(c), k, _interleave(*rich.curves(q, grid))))
    if not out:
        raise SimulationError("no gate-role hypothesis gives finite gate trajectories on these traces; "
                              "check the template's conductances and reversal potentials, or pass a prior")
    if est.verbose:
        print("[hhsym.fit] role hypotheses (gate-wise restarts):",
              " ".join(f"{hyps[k].label} {est.hypotheses_[k]['restart_cost']:.3g}" for _, k, _ in out), flush=True)
        print("[hhsym.fit] role hypotheses (all data, richer family):",
              " ".join(f"{hyps[k].label} {c:.3g}" for c, k, _ in out), flush=True)
    return [(k, curves) for _, k, curves in sorted(out, key=lambda t: t[0])][:MAX_SETTLED]


def settle_roles(est, data, center, scale, grid, contenders, knots, opts, kw, t_start):
    """Decide between the role contenders by the spline stage; the winner goes on to the finer levels.

    Each contender's curves (:func:`role_search`) are refined at the first level of ``knots``
    (:func:`spline_stage`); the lowest cost wins (recorded as ``settled_cost`` in
    ``est.hypotheses_``), and only the winner is refined further.  ``est.roles_`` are the signs of
    the median slope of x_inf over ``grid`` in the final curves (fixed gates: the template's).  No new contender
    is settled after :data:`SETTLE_SHARE` of the time budget (the first always is).  A single
    contender skips the comparison.

    Returns
    -------
    (curves, q)
        As :func:`spline_stage`.
    """
    k, curves = contenders[0]
    q, rest = None, list(knots)
    if len(contenders) > 1:
        best = None
        for n, (h, start) in enumerate(contenders):
            left = est._left(t_start, SETTLE_SHARE)
            if n and left is not None and left <= 0:
                break
            c, qh, cost = spline_stage(est, data, center, scale, grid, start, knots[:1], opts, kw, t_start)
            est.hypotheses_[h]["settled_cost"] = None if cost is None else float(cost)
            if cost is not None and (best is None or cost < best[0]):
                best = (cost, h, c, qh)
        if est.verbose:
            print("[hhsym.fit] role hypotheses (settled, splines):",
                  " ".join(f"{pattern_label(est.hypotheses_[h]['signs'].values())} {est.hypotheses_[h]['settled_cost']}"
                           for h, _ in contenders), flush=True)
        if best is not None:  # else no contender's level stayed finite: the first one's curves as they are
            _, k, curves, q = best
            rest = list(knots[1:])
    curves, q, _ = spline_stage(est, data, center, scale, grid, curves, rest, opts, kw, t_start, q=q)
    # the roles of the curves that won: the richer family and the splines have free signs, so a
    # contender started in one pattern can end in another (then two settle at the same cost)
    # (the median slope: a curve's ends, where the data pin it least, can turn)
    est.roles_ = {}
    for j, (g, v) in enumerate(est.hypotheses_[k]["signs"].items()):
        slope = float(np.median(np.diff(curves[2 * j])))
        est.roles_[g] = float(v) if j in est._fixed or slope == 0 else float(np.sign(slope))
    return curves, q


def spline_stage(est, data, center, scale, grid, curves, knots, opts, kw, t_start, q=None):
    """Refine start curves in spline families, coarse to fine (:class:`~hhsym.estimate.rates.curves.SplineFamily`).

    Each level projects the current curves on its B-splines and runs
    ``SPLINE_ITER`` Levenberg–Marquardt iterations (geodesic) on all the
    data; the finest level's curves on ``grid`` are returned (same layout as
    ``curves``).  Stops early when the stage-1 share of the time budget
    is spent; a level whose start is non-finite keeps the curves it got.
    With the estimator's free scalars (``est._scalars``) they are fitted with the
    curves from their internal coordinates ``q`` (default the template's).
    Returns ``(curves, q, cost)``: ``q`` None without free scalars, ``cost`` that of
    the last level fitted (None if none was).
    """
    lopts = dict(window=est.window, burn_in=est.burn_in, dv_scale=opts["dv_scale"], substeps=opts["substeps"])
    sc = est._scalars
    cost = None
    for nk in knots:
        left = est._left(t_start, 0.85)
        if left is not None and left <= 0:
            break
        fam, p0, n = _spline_start(est, curves, q, nk, center, scale, grid, 30.0, (-30.0, 30.0))
        try:
            loss = ChargeBalance(est._wrap(fam), est.model, data, scalars=sc, **lopts)
            p, cost = levenberg_marquardt(loss.lm_fun(SPLINE_SMOOTH), p0, 0.0, np.zeros(p0.size),
                                          max_iter=SPLINE_ITER, mu0=1e-2, geodesic=True,
                                          label=f"spline{nk}", time_limit=left, **kw)
        except FloatingPointError:
            continue
        curves = _interleave(*fam.curves(p[:n], grid))
        if sc is not None:
            q = p[n:]
    return curves, q, cost


def spline_likelihood(est, data, center, scale, grid, curves, q, knots, windows, v_range, t_start,
                      charge_start=True):
    """Refine the spline stage's curves by maximum likelihood before the networks are fitted to them.

    Under noise on V the charge balance is biased (:mod:`hhsym.estimate.likelihood`: the noise inside
    the ionic current), so its curves are a start, not an answer: they are projected on
    ``knots``-knot splines and fitted by the output error with the roughness prior
    (:func:`~hhsym.estimate.likelihood.maximum_likelihood`: its potential-only bridge, then
    ``windows``), on the estimator's free scalars too.  Splines are linear in their
    coefficients, so this is better conditioned than the same stage on the networks' weights,
    which then only has to polish.  ``charge_start``: the curves come from the charge balance, so
    they are first clipped to :data:`START_Z`, :data:`START_LT` and go through the potential-only
    bridge (:data:`~hhsym.estimate.likelihood.BRIDGE_WINDOWS`); False for a prior's curves, used as
    they are (a real slow gate may exceed the clip) and without the bridge (whose own bias would move
    a good start).  Uses up to 85 % of the time budget.

    Returns
    -------
    (curves, q, states)
        ``curves``, ``q`` as :func:`spline_stage`: those of the last window length that ran (finite)
        when run freely, or the start's; ``states`` the windows' fitted initial states at the last
        length of ``windows`` (None if it did not run): a start for the networks' own fit there.
    """
    from hhsym.estimate.likelihood import BRIDGE_WINDOWS, maximum_likelihood

    fam, p0, n = _spline_start(est, curves, q, knots, center, scale, grid,
                               *((START_Z, START_LT) if charge_start else (np.inf, (-np.inf, np.inf))))
    sc = est._scalars
    if est.verbose:
        print(f"[hhsym.fit] splines by maximum likelihood (noise {est.noise_:.2g} mV)", flush=True)
    run, _ = maximum_likelihood(est._wrap(fam), est.model, data, p0, est.noise_, v_range, windows,
                                float(est.smoothing), max_iter=30, time_limit=est._left(t_start, 0.85),
                                scalars=sc, bridge=BRIDGE_WINDOWS if charge_start else (), with_covariance=False)
    # a length that fails (non-finite) leaves the last good one's parameters in run.p
    states = run.states if np.isfinite(run.cost) and run.windows[-1:] == (float(windows[-1]),) else None
    return _interleave(*fam.curves(run.p[:n], grid)), (run.p[n:] if sc is not None else q), states


#: Levenberg–Marquardt iterations (at most) fitting each network to its curve (:func:`pretrain`).
PRETRAIN_ITER = 1000


def pretrain(hidden, center, scale, grid, curves, theta0, converge=False):
    """Fit each network's output to a target curve on ``grid`` (mV); returns all parameters.

    A ``None`` curve leaves its network's parameters as they are in ``theta0``.

    Parameters
    ----------
    hidden : tuple of int
    center, scale : float
        The networks' input normalisation (mV).
    grid : ndarray
        Potentials (mV).
    curves : list of ndarray or None
        Target log-rates (:func:`prior_curves` layout) on ``grid``.
    theta0 : ndarray
        All networks' parameters, one block per curve.
    converge : bool
        Fit to convergence (up to :data:`PRETRAIN_ITER` accelerated Levenberg–Marquardt iterations, a
        few seconds), for a hand-over where only a short local refinement follows (the noisy route's
        maximum likelihood, whose splines the networks take over): there a curve missed by 0.1–0.2 in
        logit x_inf shifts spikes.  On linoid-beta (8 x 1 s at 20 kHz, 0.3 mV) networks pretrained
        for 100 plain iterations on the maximum-likelihood splines (m's logit missed by up to 0.18
        below 30 mV) started the networks' own maximum likelihood at cost 1.18 against the splines'
        0.0443, and it ended at 0.62; 1000 accelerated iterations (every curve within 0.004) start it
        at 0.04426.  Default (100 plain iterations): a start that stage 1 refits by charge balance
        (converged there, the fixed-gate and passive-scalar tests' fits ended worse: h 62 % off,
        scalars 3.5 % off).
    """
    out = []
    P = len(theta0) // len(curves)
    for i, y in enumerate(curves):
        if y is None:
            out.append(np.asarray(theta0[i * P:(i + 1) * P], dtype=float))
            continue
        net = RateNetwork(hidden, center, scale, theta0[i * P:(i + 1) * P])
        y = np.clip(np.asarray(y, dtype=float), -30.0, 30.0)

        def fun(th, jac, net=net, y=y):
            net.theta[:] = th
            f, _, G = net.log_rate(grid, grad=True)
            return (f - y, G) if jac else f - y

        opts = dict(max_iter=PRETRAIN_ITER, ftol=1e-10, geodesic=True) if converge else dict(max_iter=100)
        th, _ = levenberg_marquardt(fun, net.theta.copy(), 1e-10, net.penalised(), mu0=1.0, **opts)
        out.append(th)
    return np.concatenate(out)



def prior_curves(prior, gate_names, grid, tau_min):
    """A prior model's curves (logit x_inf, log(tau - tau_min)) per gate on ``grid`` (mV), the networks' start.

    Parameters
    ----------
    prior : ConductanceModel
        Rates (1/ms) for every gate of ``gate_names``.
    gate_names : list of str
    grid : ndarray
        Potentials (mV).
    tau_min : float
        Time-constant floor (ms).

    Returns
    -------
    list of ndarray
        ``[z_0, lt_0, z_1, lt_1, ...]``.
    """
    target = prior.evaluate_rates(grid)
    for g in gate_names:
        for kind in ("alpha", "beta"):
            if f"{kind}_{g}" not in target:
                raise invalid("prior", prior, f"a model with a rate {kind}_{g!r} (same gates as model)")
    return _interleave(*curves_from_rates(target, gate_names, tau_min))
