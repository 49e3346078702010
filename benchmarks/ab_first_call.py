"""Issue 19's whole-call figure for two versions of hhsym, interleaved, against the same NEURON runs.

    python benchmarks/ab_first_call.py OLD_SRC NEW_SRC [--rounds 3]

OLD_SRC and NEW_SRC are directories holding an ``hhsym`` package (e.g. ``git archive <commit> |
tar -x -C /tmp/old``).  Each round times NEURON under the OU currents (1 thread) and the first
``simulate()`` call of a fresh process for each version and method (``bench_simulate.first_call``),
first with no added process, then with one competing busy process (rk4 only, as bench_simulate
does); the best of the rounds is reported.  Kernels are compiled first, in ``$HHSYM_CACHE_DIR`` if
set, else in a fresh temporary cache.  On a shared machine the load changes from minute to
minute: interleaving keeps the two versions comparable when the absolute figures are not.

The fresh processes run from a temporary directory: ``python -c`` puts the working directory
before ``PYTHONPATH`` on ``sys.path``, so run from a checkout they would import that checkout's
``hhsym`` whatever ``PYTHONPATH`` says.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_simulate as B  # noqa: E402

WARM = ("import hhsym\nfrom hhsym.stimuli import OUNoise\nm = hhsym.library.hodgkin_huxley()\n"
        "for meth in ('rk4', 'exp_euler'):\n"
        "    hhsym.simulate(m, [OUNoise(1.0, 1.0, 1.0, seed=0)], 1.0, method=meth, record=())\n")


def main(argv=None):
    """Run the rounds and print the best times and ratios."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", help="directory holding the old hhsym package")
    p.add_argument("new", help="directory holding the new hhsym package")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args(argv)
    code = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    n, t_stop, dt = args.n, 100.0, 0.01
    work = tempfile.TemporaryDirectory(prefix="hhsym-ab-")
    os.chdir(work.name)
    # each version compiles its kernels once (in a fresh cache unless HHSYM_CACHE_DIR is set)
    os.environ.setdefault("HHSYM_CACHE_DIR", os.path.join(work.name, "cache"))
    for path in code.values():
        subprocess.run([sys.executable, "-c", WARM], env={**os.environ, "PYTHONPATH": path}, check=True)
    h, why = B.neuron_status()
    if h is None:
        sys.exit(f"NEURON is needed: {why}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    best = {}
    for load in ("idle", "busy"):
        busy = B.BusyProcess() if load == "busy" else None
        if busy is not None:
            busy.__enter__()
        try:
            for r in range(args.rounds):
                w_nrn, s_nrn = B.neuron_ou(h, n, t_stop, dt, 1)
                best[("neuron", load)] = min(best.get(("neuron", load), math.inf), w_nrn)
                line = [f"{load} round {r}: NEURON {w_nrn:.3f} s ({s_nrn} spikes)"]
                for meth in ("rk4", "exp_euler") if load == "idle" else ("rk4",):
                    for name, path in code.items():
                        os.environ["PYTHONPATH"] = path
                        w, spikes = B.first_call(meth, n, t_stop, dt, 1)
                        best[(name, meth, load)] = min(best.get((name, meth, load), math.inf), w)
                        line.append(f"{name} {meth} {w:.3f} s ({spikes})")
                print("; ".join(line) + f" | load {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            if busy is not None:
                busy.__exit__(None, None, None)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for load in ("idle", "busy"):
        nrn = best[("neuron", load)]
        for meth in ("rk4", "exp_euler"):
            for name in code:
                if (name, meth, load) in best:
                    w = best[(name, meth, load)]
                    print(f"{load:4s} {meth:9s} {name}: best {w:.3f} s; NEURON best {nrn:.3f} s; ratio {nrn / w:.2f}x")


if __name__ == "__main__":
    main()
