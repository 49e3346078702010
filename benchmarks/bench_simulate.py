"""How fast does hhsym simulate Hodgkin–Huxley neurons, against its peers, in the same run?

Metric (shared/DESIGN.md): neuron-steps per second = N × steps / wall time,
compile time excluded and reported separately, best of a few repeats.  The
work: N = 1 and N = 1000 HH 1952 neurons (modern convention), 100 ms at
dt = 0.01 ms (10 000 steps), each driven by a step current on [10, 90) ms
(10 µA/cm² for N = 1; amplitudes spread evenly over 8..16 µA/cm² for N > 1,
so every neuron fires repetitively but not in lock-step).  Adaptive methods
are credited with the same N × 10 000 steps (their real step counts are
printed alongside).

Contenders
----------
* hhsym ``simulate()`` with ``rk4``, ``exp_euler`` (dt 0.01) and ``dopri5``
  (rtol 1e-6, atol 1e-8); figure = the whole ``simulate()`` call (input
  checks, stimulus encoding, kernel, output of every state at every step),
  and separately the generated kernel alone (``module.run``); rk4 and
  exp_euler also with ``record=()`` ("V only": V recorded at every step,
  like the hand-written kernels; every state is still checked for blow-up).
* a hand-written numba HH kernel (``_handwritten_hh.py``): RK4, ``prange``
  over neurons, ``math.exp`` ("scalar"), and a structure-of-arrays variant
  with ``hhsym.integrate.vmath.vexp`` ("block"), also compiled with fused
  multiply-adds like hhsym's kernels ("block FMA").  V recorded every step.
* scipy ``solve_ivp`` (RK45 and LSODA, rtol 1e-6, atol 1e-8, output at every
  0.01 ms): N = 1 directly; N = 1000 extrapolated linearly from a few
  neurons solved one by one (per-neuron error control, as in hhsym's dopri5),
  plus RK45 on all N neurons as one vectorised numpy system where that fits
  the time budget.
* NEURON's built-in ``hh`` mechanism: N single-compartment sections
  (L = diam, 100 µm²), IClamp scaled to the same µA/cm², backward Euler
  (``secondorder = 0``), celsius 6.3, dt 0.01, V of every section recorded;
  on 1 thread and on as many threads as numba uses.  Skipped, with the
  reason, if ``neuron`` does not import.

Issue 19 ("speed where users wait"), printed last, in the same run
-----------------------------------------------------------------------
* generated rk4 kernel (V only) / the hand-written blocked kernel compiled
  with fused multiply-adds (both 2 threads, N = 1000);
* the whole call: ``hhsym.simulate(hh, [N OUNoise], 100, record=())`` timed
  as the *first* call of a fresh process (its kernels on disk, loaded by that
  call; the OU currents generated inside the call), rk4 and exp_euler,
  against NEURON's ``hh`` on 1 thread under the same OU currents
  (``Vector.play`` with linear interpolation into an IClamp), V recorded by
  both; NEURON's building of sections and currents is not timed;
* the same for rk4 with one competing busy process (``while True: pass``)
  started before and killed after both measurements.

Usage::

    python benchmarks/bench_simulate.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_simulate.py --quick    # smoke run: N = 1 and 64, 10 ms

The full run compiles hhsym's kernels in a fresh temporary cache directory so
that the compile time printed is a real one (``--cache user`` uses the usual
cache instead; ``--quick`` does so by default).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

T_ON, T_OFF = 10.0, 90.0  # ms; with --quick (10 ms) the step is scaled to [1, 9) ms
RTOL, ATOL = 1e-6, 1e-8
# Targets of issue 2 ("Speed"), per core, at N = 1000.
TARGET_RK4 = 5e7
TARGET_EXP_EULER = 9e7
TARGET_VS_NEURON = 5.0


# ---------------------------------------------------------------------------- helpers

def cpu_model():
    """CPU model name from /proc/cpuinfo (or platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def amplitudes(n):
    """Step amplitudes (µA/cm²): 10 for a single neuron, evenly 8..16 for a batch."""
    return np.array([10.0]) if n == 1 else np.linspace(8.0, 16.0, n)


def n_spikes(v):
    """Upward crossings of 0 mV along the last axis."""
    v = np.asarray(v)
    return ((v[..., 1:] >= 0.0) & (v[..., :-1] < 0.0)).sum(axis=-1)


def best_of(fn, repeats, budget):
    """Best wall time (s) of up to ``repeats`` calls of fn(); stop early once ``budget`` s are spent."""
    times = []
    spent = 0.0
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        w = time.perf_counter() - t
        times.append(w)
        spent += w
        if spent > budget:
            break
    return min(times), len(times), out


class Row:
    """One line of the results table."""

    def __init__(self, name, n, wall, steps, threads, note="", compile_s=None, kernel=None):
        self.name, self.n, self.wall, self.steps = name, n, wall, steps
        self.threads, self.note, self.compile_s, self.kernel = threads, note, compile_s, kernel

    @property
    def rate(self):
        return self.n * self.steps / self.wall if self.wall else float("nan")

    @property
    def per_core(self):
        return self.rate / max(1, self.threads)

    @property
    def kernel_rate(self):
        return self.n * self.steps / self.kernel if self.kernel else None


def fmt_rate(x):
    return "-" if x is None or not np.isfinite(x) else f"{x:9.3g}"


# ---------------------------------------------------------------------------- hhsym

def bench_hhsym(methods, sizes, t_stop, dt, repeats, budget, log):
    import numba

    import hhsym.codegen as codegen
    import hhsym.library as L
    from hhsym.simulate import simulate
    from hhsym.stimuli import Step

    model = L.hodgkin_huxley()
    threads = numba.get_num_threads()
    steps = int(round(t_stop / dt))
    rows, spikes, compile_times = [], {}, {}
    for method in methods:
        kw = dict(rtol=RTOL, atol=ATOL) if method == "dopri5" else {}
        # compile time = first call - second identical call (a tiny run)
        t = time.perf_counter()
        module = codegen.compile_model(model, method)
        simulate(model, Step(10.0, 0.5, 1.0), t_stop=1.0, dt=dt, method=method, **kw)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        simulate(model, Step(10.0, 0.5, 1.0), t_stop=1.0, dt=dt, method=method, **kw)
        compile_times[method] = t_first - (time.perf_counter() - t)
        log(f"  hhsym {method}: first call (codegen + numba compile) {compile_times[method]:.1f} s")
        # time the generated kernel alone by wrapping module.run (simulate looks it up per call)
        orig = getattr(module, "run", None)
        kernel_times = []

        def timed(*a, _orig=orig):
            t0 = time.perf_counter()
            r = _orig(*a)
            kernel_times.append(time.perf_counter() - t0)
            return r

        # default: every state recorded at every step; "V only": record=() (as the hand-written kernels)
        records = (None, ()) if method != "dopri5" else (None,)
        for n in sizes:
            stims = [Step(float(a), T_ON, T_OFF) for a in amplitudes(n)]
            for record in records:
                kernel_times.clear()
                if orig is not None:
                    module.run = timed
                try:
                    wall, reps, tr = best_of(
                        lambda: simulate(model, stims, t_stop=t_stop, dt=dt, method=method, record=record, **kw),
                        repeats, budget)
                finally:
                    if orig is not None:
                        module.run = orig
                note = "all states recorded" if record is None else "V only recorded (record=())"
                if method == "dopri5":
                    st = np.asarray(tr.meta.get("steps", [np.nan]))
                    note = f"mean {st.mean():.0f} accepted+rejected steps/neuron"
                name = f"hhsym {method}" + ("" if record is None else " V only")
                rows.append(Row(name, n, wall, steps, threads, note, compile_times[method],
                                min(kernel_times) if kernel_times else None))
                if record is None:
                    spikes[(method, n)] = n_spikes(tr.V)
                log(f"  {name:20s} N={n:5d}: {wall:.3f} s (best of {reps})")
    return rows, spikes, compile_times


def warm_load_times(methods, dt):
    """First-call minus second-call time per method in a second process that finds the kernels on disk."""
    code = (
        "import time, sys\n"
        "import hhsym.library as L\nfrom hhsym.simulate import simulate\nfrom hhsym.stimuli import Step\n"
        "m = L.hodgkin_huxley()\n"
        f"for meth in {list(methods)!r}:\n"
        "    w = []\n"
        "    for _ in range(2):\n"
        "        t = time.perf_counter()\n"
        f"        simulate(m, Step(10.0, 0.5, 1.0), t_stop=1.0, dt={dt!r}, method=meth)\n"
        "        w.append(time.perf_counter() - t)\n"
        "    print(meth, w[0] - w[1])\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                             env=dict(os.environ), check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


# ---------------------------------------------------------------------------- hand-written numba

def bench_handwritten(sizes, t_stop, dt, repeats, budget, log):
    import numba

    import _handwritten_hh as H

    threads = numba.get_num_threads()
    steps = int(round(t_stop / dt))
    m0, h0, n0 = H.resting_state(-65.0)
    rows, spikes = [], {}
    for name, fn in (("hand-written rk4 scalar", H.hh_rk4_scalar), ("hand-written rk4 block", H.hh_rk4_block),
                     ("hand-written rk4 block FMA", H.hh_rk4_block_fma)):
        compile_s = None
        for n in sizes:
            amp = amplitudes(n)
            args = (np.full(n, -65.0), np.full(n, m0), np.full(n, h0), np.full(n, n0), amp, T_ON, T_OFF, dt, steps)
            if compile_s is None:
                t = time.perf_counter()
                fn(*args[:-1], 1, np.empty((n, 2)))
                compile_s = time.perf_counter() - t
                log(f"  {name}: compile (or load from numba's cache) {compile_s:.1f} s")

            def run():
                out = np.empty((n, steps + 1))
                fn(*args, out)
                return out

            wall, reps, out = best_of(run, repeats, budget)
            rows.append(Row(name, n, wall, steps, threads, "V only recorded", compile_s, wall))
            spikes[(name, n)] = n_spikes(out)
            log(f"  {name} N={n:5d}: {wall:.3f} s (best of {reps})")
    return rows, spikes


# ---------------------------------------------------------------------------- scipy

def _hh_rates(V, exp):
    u, w = V + 40.0, V + 55.0
    a_m = 0.1 * u / (1.0 - exp(-u / 10.0))
    b_m = 4.0 * exp(-(V + 65.0) / 18.0)
    a_h = 0.07 * exp(-(V + 65.0) / 20.0)
    b_h = 1.0 / (1.0 + exp(-(V + 35.0) / 10.0))
    a_n = 0.01 * w / (1.0 - exp(-w / 10.0))
    b_n = 0.125 * exp(-(V + 65.0) / 80.0)
    return a_m, b_m, a_h, b_h, a_n, b_n


def _rhs_one(amp):
    """Right-hand side of one neuron (floats, math.exp: the fastest pure-Python form)."""
    exp = math.exp

    def f(t, y):
        V, m, h, n = y
        I = amp if T_ON <= t < T_OFF else 0.0
        a_m, b_m, a_h, b_h, a_n, b_n = _hh_rates(V, exp)
        i_ion = 120.0 * m ** 3 * h * (V - 50.0) + 36.0 * n ** 4 * (V + 77.0) + 0.3 * (V + 54.387)
        return [I - i_ion, a_m * (1 - m) - b_m * m, a_h * (1 - h) - b_h * h, a_n * (1 - n) - b_n * n]

    return f


def _rhs_vec(amp):
    """Right-hand side of len(amp) neurons as one numpy system, states stacked [V..., m..., h..., n...]."""
    n_neurons = len(amp)

    def f(t, y):
        V, m, h, n = y.reshape(4, n_neurons)
        I = amp if T_ON <= t < T_OFF else 0.0
        a_m, b_m, a_h, b_h, a_n, b_n = _hh_rates(V, np.exp)
        i_ion = 120.0 * m ** 3 * h * (V - 50.0) + 36.0 * n ** 4 * (V + 77.0) + 0.3 * (V + 54.387)
        return np.concatenate([I - i_ion, a_m * (1 - m) - b_m * m, a_h * (1 - h) - b_h * h,
                               a_n * (1 - n) - b_n * n])

    return f


def bench_scipy(sizes, t_stop, dt, repeats, budget, n_sample, vec_budget, log):
    from scipy.integrate import solve_ivp

    import _handwritten_hh as H

    steps = int(round(t_stop / dt))
    t_eval = np.arange(steps + 1) * dt
    m0, h0, n0 = H.resting_state(-65.0)
    rows, spikes = [], {}
    for method in ("RK45", "LSODA"):
        for n in sizes:
            amp = amplitudes(n)
            if n == 1:
                f = _rhs_one(float(amp[0]))
                wall, reps, sol = best_of(lambda: solve_ivp(f, (0.0, t_stop), [-65.0, m0, h0, n0], method=method,
                                                            t_eval=t_eval, rtol=RTOL, atol=ATOL), repeats, budget)
                rows.append(Row(f"scipy {method}", 1, wall, steps, 1, f"{sol.nfev} RHS calls"))
                spikes[(method, 1)] = n_spikes(sol.y[0])
                log(f"  scipy {method} N=1: {wall:.3f} s (best of {reps})")
                continue
            # per neuron: a few neurons spread over the amplitude range, extrapolated linearly to n
            k = min(n, n_sample)
            pick = np.unique(np.linspace(0, n - 1, k).round().astype(int))
            t = time.perf_counter()
            for i in pick:
                solve_ivp(_rhs_one(float(amp[i])), (0.0, t_stop), [-65.0, m0, h0, n0], method=method,
                          t_eval=t_eval, rtol=RTOL, atol=ATOL)
            per = (time.perf_counter() - t) / len(pick)
            rows.append(Row(f"scipy {method}", n, per * n, steps, 1,
                            f"extrapolated from {len(pick)} neurons solved one by one"))
            log(f"  scipy {method} N={n}: {per:.3f} s per neuron -> {per * n:.1f} s extrapolated")
        if method == "RK45" and vec_budget > 0:
            n = max(sizes)
            amp = amplitudes(n)
            y0 = np.concatenate([np.full(n, -65.0), np.full(n, m0), np.full(n, h0), np.full(n, n0)])
            t = time.perf_counter()
            sol = solve_ivp(_rhs_vec(amp), (0.0, t_stop), y0, method="RK45", t_eval=t_eval, rtol=RTOL, atol=ATOL)
            wall = time.perf_counter() - t
            rows.append(Row("scipy RK45 vectorised", n, wall, steps, 1,
                            f"one {4 * n}-state system, shared step; {sol.nfev} RHS calls"))
            log(f"  scipy RK45 vectorised N={n}: {wall:.3f} s")
    return rows, spikes


# ---------------------------------------------------------------------------- NEURON

def neuron_status():
    """(h, None) if NEURON imports, else (None, reason)."""
    try:
        from neuron import h
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{type(exc).__name__}: {exc}"
    return h, None


def bench_neuron(h, sizes, t_stop, dt, repeats, budget, thread_counts, log):
    h.load_file("stdrun.hoc")
    h.celsius = 6.3
    h.secondorder = 0  # backward Euler
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.tstop = t_stop
    h.cvode_active(0)
    h.cvode.cache_efficient(1)
    pc = h.ParallelContext()
    d = math.sqrt(100.0 / math.pi)  # L = diam: lateral area pi d^2 = 100 µm^2 = 1e-6 cm^2
    area_cm2 = 1e-6
    steps = int(round(t_stop / dt))
    rows, spikes = [], {}
    for n in sizes:
        amp = amplitudes(n)
        secs, clamps, recs = [], [], []
        for i in range(n):
            s = h.Section(name=f"hh{i}")
            s.L = s.diam = d
            s.nseg = 1
            s.cm = 1.0
            s.insert("hh")  # defaults: gnabar 0.12, gkbar 0.036, gl 3e-4 S/cm², ena 50, ek -77, el -54.3 mV
            c = h.IClamp(s(0.5))
            c.delay, c.dur, c.amp = T_ON, T_OFF - T_ON, float(amp[i]) * area_cm2 * 1e3  # nA
            v = h.Vector()
            v.record(s(0.5)._ref_v)
            secs.append(s)
            clamps.append(c)
            recs.append(v)
        for nt in thread_counts:
            pc.nthread(nt)

            def run():
                h.finitialize(-65.0)
                h.continuerun(t_stop)

            wall, reps, _ = best_of(run, repeats, budget)
            rows.append(Row(f"NEURON hh, {nt} thread{'s' if nt > 1 else ''}", n, wall, steps, nt,
                            "backward Euler; V of every section recorded"))
            log(f"  NEURON N={n:5d}, {nt} thread(s): {wall:.3f} s (best of {reps})")
        spikes[n] = np.array([n_spikes(np.array(v)) for v in recs])
        pc.nthread(1)
        del recs, clamps, secs
    return rows, spikes


# ---------------------------------------------------------------------------- issue 19: the whole call

OU = dict(mean=8.0, sigma=4.0, tau=3.0)  # µA/cm², µA/cm², ms: every neuron fires irregularly


def _first_call_code(method, n, t_stop, dt):
    """Python source timing the first ``simulate`` call of a fresh process (kernels on disk)."""
    return (
        "import time\n"
        "import hhsym\nfrom hhsym.stimuli import OUNoise\n"
        "m = hhsym.library.hodgkin_huxley()\n"
        f"stims = [OUNoise({OU['mean']!r}, {OU['sigma']!r}, {OU['tau']!r}, seed=k) for k in range({n})]\n"
        "t = time.perf_counter()\n"
        f"tr = hhsym.simulate(m, stims, {t_stop!r}, dt={dt!r}, method={method!r}, record=())\n"
        "w = time.perf_counter() - t\n"
        "print(w, int(((tr.V[:, 1:] >= 0) & (tr.V[:, :-1] < 0)).sum()))\n"
    )


def first_call(method, n, t_stop, dt, repeats):
    """Best wall time (s) of the first ``simulate`` call in a fresh process, and its spike count.

    The call integrates ``n`` HH neurons under ``n`` OU currents generated inside it, recording V
    (``record=()``); the process finds the compiled kernels in the disk cache (the caller compiled
    them), so the time includes loading them, and nothing else a later call would not pay.
    """
    best, spikes = math.inf, None
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _first_call_code(method, n, t_stop, dt)],
                             capture_output=True, text=True, timeout=600, env=dict(os.environ), check=True)
        w, spikes = out.stdout.split()
        best = min(best, float(w))
    return best, int(spikes)


def neuron_ou(h, n, t_stop, dt, repeats):
    """NEURON's ``hh``, 1 thread, under the same OU currents (played in, linear), V recorded.

    Returns the best wall time (s) of ``finitialize`` + ``continuerun`` (the building of the
    sections and the currents is not timed) and the spike count.
    """
    from hhsym.stimuli import OUNoise

    h.load_file("stdrun.hoc")
    h.celsius = 6.3
    h.secondorder = 0
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.tstop = t_stop
    h.cvode_active(0)
    h.cvode.cache_efficient(1)
    h.ParallelContext().nthread(1)
    d = math.sqrt(100.0 / math.pi)
    keep = []
    recs = []
    for k in range(n):
        t_grid, current = OUNoise(OU["mean"], OU["sigma"], OU["tau"], seed=k).samples(t_stop)
        s = h.Section(name=f"ou{k}")
        s.L = s.diam = d
        s.insert("hh")
        c = h.IClamp(s(0.5))
        c.delay, c.dur = 0.0, 1e9
        tv, iv = h.Vector(t_grid), h.Vector(current * 1e-6 * 1e3)  # µA/cm² x 1e-6 cm² -> nA
        iv.play(c._ref_amp, tv, 1)  # linear interpolation, as hhsym's tables
        v = h.Vector()
        v.record(s(0.5)._ref_v)
        keep += [s, c, tv, iv]
        recs.append(v)

    def run():
        h.finitialize(-65.0)
        h.continuerun(t_stop)

    wall, _, _ = best_of(run, repeats, budget=30.0)
    spikes = int(sum(n_spikes(np.array(v)) for v in recs))
    del keep, recs
    return wall, spikes


class BusyProcess:
    """A competing process spinning on one core for the duration of a ``with`` block."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)  # let the scheduler see it
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def bench_whole_call(h, n, t_stop, dt, repeats, log):
    """Issue 19's figures: hhsym's first ``simulate`` call (OU generated inside) against NEURON.

    Returns a dict of rows: ``(label, hhsym s, NEURON s, ratio)``, measured idle and with one
    competing busy process.
    """
    import hhsym
    from hhsym.stimuli import OUNoise

    model = hhsym.library.hodgkin_huxley()
    for method in ("rk4", "exp_euler"):  # compile (or load) the kernels so a fresh process finds them
        hhsym.simulate(model, [OUNoise(1.0, 1.0, 1.0, seed=0)], 1.0, method=method, record=())
    results = {}
    for load in ("idle", "busy"):
        ctx = BusyProcess() if load == "busy" else None
        if ctx is not None:
            ctx.__enter__()
        try:
            w_nrn, s_nrn = neuron_ou(h, n, t_stop, dt, repeats) if h is not None else (None, None)
            for method in ("rk4", "exp_euler") if load == "idle" else ("rk4",):
                w, spikes = first_call(method, n, t_stop, dt, repeats)
                ratio = w_nrn / w if w_nrn else None
                results[(method, load)] = (w, spikes, w_nrn, s_nrn, ratio)
                log(f"  {method} first simulate() call, {load}: {w:.3f} s ({spikes} spikes); "
                    f"NEURON 1 thread {w_nrn if w_nrn is None else round(w_nrn, 3)} s ({s_nrn} spikes)")
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
    return results


# ---------------------------------------------------------------------------- report

def print_table(rows, n_big):
    print()
    print(f"{'contender':32s} {'N':>5s} {'wall s':>9s} {'n-steps/s':>10s} {'per core':>10s} {'kernel':>10s} "
          f"{'thr':>3s}  notes")
    print("-" * 110)
    for r in rows:
        print(f"{r.name:32s} {r.n:5d} {r.wall:9.4f} {fmt_rate(r.rate):>10s} {fmt_rate(r.per_core):>10s} "
              f"{fmt_rate(r.kernel_rate):>10s} {r.threads:3d}  {r.note}")
    print("  n-steps/s = N x steps / wall (whole call); per core = that / threads used; kernel = generated "
          "kernel alone (hhsym) or the kernel call (hand-written)")


def find(rows, name, n):
    for r in rows:
        if r.name == name and r.n == n:
            return r
    return None


def ratio(a, b, use_kernel=False, per_core=False):
    if a is None or b is None:
        return None
    if use_kernel:
        x, y = a.kernel_rate, b.kernel_rate
    elif per_core:
        x, y = a.per_core, b.per_core
    else:
        x, y = a.rate, b.rate
    return x / y if x and y else None


def mark(ok):
    return "PASS" if ok else "MISS"


def report(rows, n_big, threads, quick):
    out = []
    n = n_big
    rk4, ee, dp = (find(rows, f"hhsym {m}", n) for m in ("rk4", "exp_euler", "dopri5"))
    hw_s, hw_b = find(rows, "hand-written rk4 scalar", n), find(rows, "hand-written rk4 block", n)
    hw_f = find(rows, "hand-written rk4 block FMA", n)
    rk4v, eev = find(rows, "hhsym rk4 V only", n), find(rows, "hhsym exp_euler V only", n)
    nrn = [r for r in rows if r.name.startswith("NEURON") and r.n == n]
    # NEURON's best configuration (1 thread or numba's thread count), whole call and per core
    nrn_eq = max(nrn, key=lambda r: r.rate) if nrn else None
    nrn_core = max(nrn, key=lambda r: r.per_core) if nrn else None
    rk45, lsoda = find(rows, "scipy RK45", n), find(rows, "scipy LSODA", n)

    print(f"\nRatios at N = {n} (higher = hhsym faster; NEURON = its fastest thread count):")

    def line(label, r, fmt="{:.2f}x"):
        out.append((label, r))
        print(f"  {label:62s} {('-' if r is None else fmt.format(r)):>10s}")

    for m, row in (("rk4", rk4), ("exp_euler", ee)):
        if nrn_eq is not None:
            line(f"hhsym {m} / NEURON ({nrn_eq.threads} thr), whole call", ratio(row, nrn_eq))
            line(f"hhsym {m} / NEURON ({nrn_core.threads} thr), per core", ratio(row, nrn_core, per_core=True))
    for m, row in (("rk4", rk4), ("dopri5", dp)):
        for peer in (rk45, lsoda):
            if peer is not None:
                line(f"hhsym {m} / {peer.name} (1 thread; per core: divide by {threads})", ratio(row, peer))
    line("generated rk4 kernel / hand-written scalar (math.exp)", ratio(rk4, hw_s, use_kernel=True))
    line("generated rk4 kernel / hand-written block (vexp, SoA)", ratio(rk4, hw_b, use_kernel=True))
    line("generated rk4 kernel, V only / hand-written block (V only)", ratio(rk4v, hw_b, use_kernel=True))
    line("generated rk4 kernel, V only / hand-written block FMA", ratio(rk4v, hw_f, use_kernel=True))
    line("hhsym rk4 whole simulate() / hand-written block kernel", ratio(rk4, hw_b))
    line("hhsym rk4 whole simulate(record=()) / hand-written block", ratio(rk4v, hw_b))

    print(f"\nTargets (issue 2, N = {n}, per core = / {threads} numba threads)" +
          ("  [--quick: not meaningful]" if quick else ""))
    checks = []
    if rk4 is not None:
        checks.append((f"rk4 >= {TARGET_RK4:.0e} neuron-steps/s per core", rk4.per_core,
                       rk4.per_core >= TARGET_RK4, f"{rk4.per_core:.3g}"))
        if nrn_eq is not None:
            r = ratio(rk4, nrn_core, per_core=True)
            checks.append((f"rk4 >= {TARGET_VS_NEURON:g}x NEURON (per core)", r, r >= TARGET_VS_NEURON, f"{r:.2f}x"))
        else:
            checks.append((f"rk4 >= {TARGET_VS_NEURON:g}x NEURON", None, None, "NEURON not run"))
    if rk4v is not None:
        checks.append((f"rk4, V only, >= {TARGET_RK4:.0e} per core", rk4v.per_core,
                       rk4v.per_core >= TARGET_RK4, f"{rk4v.per_core:.3g}"))
    if ee is not None:
        checks.append((f"exp_euler >= {TARGET_EXP_EULER:.0e} neuron-steps/s per core", ee.per_core,
                       ee.per_core >= TARGET_EXP_EULER, f"{ee.per_core:.3g}"))
    if eev is not None:
        checks.append((f"exp_euler, V only, >= {TARGET_EXP_EULER:.0e} per core", eev.per_core,
                       eev.per_core >= TARGET_EXP_EULER, f"{eev.per_core:.3g}"))
    for hw in (hw_s, hw_b):
        r = ratio(rk4, hw, use_kernel=True)
        if r is not None:
            checks.append((f"generated rk4 kernel no slower than {hw.name}", r, r >= 1.0, f"{r:.2f}x"))
    for hw in (hw_b, hw_f):
        r = ratio(rk4v, hw, use_kernel=True)
        if r is not None:
            checks.append((f"same, both V only: vs {hw.name}", r, r >= 1.0, f"{r:.2f}x"))
    for label, _, ok, shown in checks:
        print(f"  {'----' if ok is None else mark(ok)}  {label:58s} {shown:>10s}")
    return out, checks


def report_issue19(rows, whole, n, n_whole, quick):
    """Print issue 19's ratios and targets; returns the checks (label, value, ok, shown)."""
    title = (f"\nIssue 19 (one run; kernels at N = {n}, whole call at N = {n_whole} under OU currents, "
             "first simulate() call of a fresh process, V recorded by both)")
    print(title + ("  [--quick: not meaningful]" if quick else ""))
    checks = []
    rk4v, hw_f = find(rows, "hhsym rk4 V only", n), find(rows, "hand-written rk4 block FMA", n)
    r = ratio(rk4v, hw_f, use_kernel=True)
    if r is not None:
        checks.append(("generated rk4 kernel / hand-written FMA kernel >= 1.0x", r, r >= 1.0, f"{r:.2f}x"))
    for (method, load), target in ((("rk4", "idle"), 5.0), (("rk4", "busy"), 2.0), (("exp_euler", "idle"), 8.0)):
        if (method, load) not in whole:
            continue
        w, _, w_nrn, _, r = whole[(method, load)]
        where = "no added process" if load == "idle" else "one competing busy process"
        label = f"{method} simulate() first call / NEURON 1 thread, {where} >= {target:g}x"
        if r is None:
            checks.append((label, None, None, "no NEURON"))
        else:
            checks.append((label, r, r >= target, f"{r:.2f}x"))
    for (method, load), (w, spikes, w_nrn, s_nrn, _) in sorted(whole.items()):
        print(f"  {method:9s} {load:4s}: hhsym {n_whole * STEPS_WHOLE[0] / w:9.3g} neuron-steps/s "
              f"({w:.3f} s, {spikes} spikes)" + ("" if w_nrn is None else
              f"; NEURON {n_whole * STEPS_WHOLE[0] / w_nrn:9.3g} ({w_nrn:.3f} s, {s_nrn} spikes)"))
    for label, _, ok, shown in checks:
        print(f"  {'----' if ok is None else mark(ok)}  {label:72s} {shown:>10s}")
    return checks


#: Number of steps of the whole-call runs (set by main).
STEPS_WHOLE = [0]


def main(argv=None):
    """Run the benchmark; returns (rows, checks).  ``argv`` as for argparse (None = sys.argv)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: N = 1 and 64, 10 ms, one repeat")
    p.add_argument("--n", type=int, default=None, help="the large N (default 1000; 64 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="best of this many (default 3; 1 with --quick)")
    p.add_argument("--cache", choices=("fresh", "user"), default=None,
                   help="hhsym kernel cache: a fresh temporary directory (real compile time; default) "
                        "or the usual one (default with --quick)")
    p.add_argument("--skip", default="", help="comma-separated: hhsym,handwritten,scipy,neuron,warm,whole")
    args = p.parse_args(argv)

    quick = args.quick
    n_big = args.n or (64 if quick else 1000)
    sizes = [1, n_big]
    t_stop = 10.0 if quick else 100.0
    global T_ON, T_OFF
    T_ON, T_OFF = 0.1 * t_stop, 0.9 * t_stop
    dt = 0.01
    repeats = args.repeats or (1 if quick else 3)
    budget = 2.0 if quick else 8.0  # stop repeating once this many seconds went into one case
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    cache = args.cache or ("user" if quick else "fresh")
    tmp = None
    if cache == "fresh":
        tmp = tempfile.TemporaryDirectory(prefix="hhsym-bench-cache-")
        os.environ["HHSYM_CACHE_DIR"] = tmp.name

    import numba
    import scipy

    import hhsym.codegen

    threads = numba.get_num_threads()

    def log(msg):
        print(msg, flush=True)

    t_all = time.perf_counter()
    print("bench_simulate: HH 1952 neurons, %g ms at dt %g ms (%d steps), step current on [%g, %g) ms%s"
          % (t_stop, dt, int(round(t_stop / dt)), T_ON, T_OFF, "  [--quick]" if quick else ""))
    print(f"CPU: {cpu_model()}; {os.cpu_count()} logical CPUs; numba {numba.__version__} "
          f"({numba.config.THREADING_LAYER} threading layer), {threads} threads; "
          f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
          f"(other processes on the machine slow every contender)")
    print(f"hhsym kernel cache: {hhsym.codegen.cache_dir()} ({cache})\n", flush=True)

    rows, spikes = [], {}
    compile_times, warm = {}, {}
    if "hhsym" not in skip:
        log("hhsym")
        r, s, compile_times = bench_hhsym(("rk4", "exp_euler", "dopri5"), sizes, t_stop, dt, repeats, budget, log)
        rows += r
        spikes.update({("hhsym",) + k: v for k, v in s.items()})
        if not quick and "warm" not in skip:
            warm = warm_load_times(("rk4", "exp_euler", "dopri5"), dt)
    if "handwritten" not in skip:
        log("hand-written numba")
        r, s = bench_handwritten(sizes, t_stop, dt, repeats, budget, log)
        rows += r
        spikes.update({("hw",) + k: v for k, v in s.items()})
    if "scipy" not in skip:
        log("scipy solve_ivp")
        r, s = bench_scipy(sizes, t_stop, dt, repeats, budget, n_sample=2 if quick else 4,
                           vec_budget=0 if quick else 1, log=log)
        rows += r
        spikes.update({("scipy",) + k: v for k, v in s.items()})
    neuron_reason = "skipped by --skip"
    if "neuron" not in skip:
        h, neuron_reason = neuron_status()
        if h is None:
            print(f"NEURON: skipped, `from neuron import h` failed ({neuron_reason}); `pip install neuron`")
        else:
            log(f"NEURON {h.nrnversion(5) if hasattr(h, 'nrnversion') else ''}")
            tc = sorted({1, threads})
            r, s = bench_neuron(h, sizes, t_stop, dt, repeats, budget, tc, log)
            rows += r
            spikes.update({("neuron", k): v for k, v in s.items()})

    whole = {}
    if "whole" not in skip:
        h = None
        if "neuron" not in skip:
            h, _ = neuron_status()
        log("issue 19: the whole simulate() call (fresh process, OU currents generated inside) vs NEURON")
        STEPS_WHOLE[0] = int(round(t_stop / dt))
        whole = bench_whole_call(h, n_big, t_stop, dt, 1 if quick else 2, log)

    print_table(rows, n_big)
    if compile_times:
        print("\nhhsym compile time (excluded above): first call per method, codegen + numba, "
              f"{'cold (fresh cache dir)' if cache == 'fresh' else 'cache as found'}: "
              + ", ".join(f"{m} {t:.1f} s" for m, t in compile_times.items()))
        if warm:
            if "error" in warm:
                print(f"  second process, kernels on disk: failed ({warm['error']})")
            else:
                print("  second process, kernels loaded from the disk cache: "
                      + ", ".join(f"{m} {t:.2f} s" for m, t in warm.items()))
    hw = [r for r in rows if r.name.startswith("hand-written")]
    if hw:
        print("hand-written compile time (or numba cache load): " + ", ".join(
            f"{r.name.split('rk4 ')[1]} {r.compile_s:.1f} s" for r in hw if r.n == 1))

    # same work? spikes of the single neuron, and in total for the batch
    print("\nSame work (spikes of the N = 1 neuron / total spikes at N = %d):" % n_big)
    parts = []
    for label, k1, kb in (("hhsym rk4", ("hhsym", "rk4", 1), ("hhsym", "rk4", n_big)),
                          ("hhsym exp_euler", ("hhsym", "exp_euler", 1), ("hhsym", "exp_euler", n_big)),
                          ("hhsym dopri5", ("hhsym", "dopri5", 1), ("hhsym", "dopri5", n_big)),
                          ("hand-written", ("hw", "hand-written rk4 scalar", 1), ("hw", "hand-written rk4 scalar", n_big)),
                          ("scipy RK45", ("scipy", "RK45", 1), None),
                          ("NEURON", ("neuron", 1), ("neuron", n_big))):
        if k1 in spikes:
            a = int(np.sum(spikes[k1]))
            b = int(np.sum(spikes[kb])) if kb is not None and kb in spikes else None
            parts.append(f"{label} {a}/{'-' if b is None else b}")
    print("  " + "; ".join(parts))

    checks = []
    if rows:
        _, checks = report(rows, n_big, threads, quick)
    if rows or whole:
        checks += report_issue19(rows, whole, n_big, n_big, quick)
    if "neuron" not in skip and neuron_reason:
        print(f"\n(NEURON not measured: {neuron_reason})")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total benchmark time {time.perf_counter() - t_all:.0f} s")
    if tmp is not None:
        os.environ.pop("HHSYM_CACHE_DIR", None)
        tmp.cleanup()
    return rows, checks


if __name__ == "__main__":
    main()
