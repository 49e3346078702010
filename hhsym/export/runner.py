"""Python source shared by the generated NEURON and Brian2 runners.

The runners are standalone scripts: they hold the model's rates as plain Python
functions (exact at removable singularities) to find the resting state under
the first current sample, read STIM.csv (``t,I``: ms, µA/cm²) and write OUT.csv
(``t,V``: ms, mV).
"""

from __future__ import annotations

import sympy

from hhsym.export.common import PYTHON, WIDTH, fmt, number_text, numeric_rates, poly_text, render
from hhsym.export.pieces import hoist, statements

__all__ = ["python_rates_source", "runner_tables", "RUNNER_HELPERS"]


def _pool_args(model, code):
    """Names of the calcium pools (mM) a rate uses, in the model's order."""
    used = {s.name for s in code.expr.free_symbols}
    return [p.name for p in model.pools if p.name in used]


def python_rates_source(model, indent="", max_pools=0):
    """Python source (``import math`` assumed) defining each rate as a function of V (mV).

    Parameters
    ----------
    model : hhsym.ConductanceModel
    indent : str
        Prefix of every line.
    max_pools : int
        Calcium pools the caller supports (see :func:`hhsym.export.common.numeric_rates`).

    Returns
    -------
    str
        ``def alpha_m(V): ...`` for every rate (1/ms), exact at removable singularities;
        a rate that uses calcium pools takes them (mM) after V: ``def alpha_w(V, Ca): ...``.
    """
    lines = []
    for name, code in numeric_rates(model, max_pools).items():
        pools = _pool_args(model, code)
        lines.append(f"def {name}({', '.join(['V', *pools])}):")
        for root, poly in code.guards:
            lines.append(f"    if abs(V - {number_text(root)}) < {fmt(WIDTH)}:")
            lines.append(f"        return {poly_text(root, poly, PYTHON)}")
        body, local = hoist(code.expr)
        lines += statements(local, PYTHON, "V", "python", pools)
        lines.append(f"    return {render(body, PYTHON, names=[n for n, _ in local] + pools)}")
        lines.append("")
    return "\n".join(indent + line if line else "" for line in lines)


# A Python snippet shared by the generated NEURON and Brian2 runners: read STIM.csv, write OUT.csv,
# and find the resting state under the initial current (the most hyperpolarised stable root).
RUNNER_HELPERS = '''
def read_stimulus(path):
    """Read STIM.csv (header t,I; ms and uA/cm2; t increasing from 0)."""
    t, I = [], []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = [h.strip() for h in next(rows, [])]
        if header[:2] != ["t", "I"]:
            sys.exit(f"{path}: expected the header 't,I', got {header}")
        for k, row in enumerate(rows, start=2):
            if not row:
                continue
            try:
                t.append(float(row[0]))
                I.append(float(row[1]))
            except (ValueError, IndexError):
                sys.exit(f"{path}: line {k}: expected two numbers, got {row}")
    if len(t) < 2 or any(b <= a for a, b in zip(t, t[1:])) or not all(map(math.isfinite, t + I)):
        sys.exit(f"{path}: expected at least 2 rows of finite values with t strictly increasing")
    return t, I


def write_output(path, t, V):
    """Write OUT.csv (header t,V; ms and mV) through a temporary file."""
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write("t,V\\n")
        for a, b in zip(t, V):
            f.write(f"{a!r},{b!r}\\n")
    os.replace(tmp, path)


def _conductance(channel, V, conc):
    """Conductance (mS/cm2) of a CHANNELS entry at V (mV), gates at steady state, pools at conc (mM)."""
    g, E, gates = channel
    for gate, power in gates:
        a, b = (RATES[k + gate](V, *[conc[p] for p in RATE_POOLS.get(k + gate, ())]) for k in ("alpha_", "beta_"))
        g = g * (a / (a + b)) ** power
    return g


def steady_pools(V):
    """Calcium pools (name -> mM) at their steady level at V (mV): inf - 5 tau I / (F depth)."""
    conc = {}
    for name, tau, depth, inf, drivers in POOLS:
        current = sum(_conductance(CHANNELS[k], V, conc) * (V - CHANNELS[k][1]) for k in drivers)
        conc[name] = inf - 5.0 / FARADAY * tau * current / depth
    return conc


def steady_current(V):
    """Ionic current (uA/cm2) at V (mV) with every gate and pool at its steady state."""
    conc = steady_pools(V)
    return sum(_conductance(channel, V, conc) * (V - channel[1]) for channel in CHANNELS)


def resting_potential(I0):
    """Most hyperpolarised stable V (mV) where the steady ionic current equals I0 (uA/cm2)."""
    grid = [-150.0 + 0.1 * k for k in range(2501)]
    f = [I0 - steady_current(v) for v in grid]
    for k in range(len(grid) - 1):
        if f[k] >= 0.0 > f[k + 1] or f[k] == 0.0:
            lo, hi = grid[k], grid[k + 1]
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                if I0 - steady_current(mid) >= 0.0:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)
    sys.exit(f"no resting potential in [-150, 100] mV for I = {I0} uA/cm2")
'''


def runner_tables(model):
    """Python source of the ``CHANNELS`` and ``RATES`` tables used by :data:`RUNNER_HELPERS`.

    Parameters
    ----------
    model : hhsym.ConductanceModel

    Returns
    -------
    str
        ``CHANNELS``: ``(g mS/cm², E mV, [(gate, power), ...])`` per channel;
        ``RATES``: rate name -> the function :func:`python_rates_source` defines.
    """
    from hhsym.model.pools import FARADAY

    chans = ",\n    ".join(
        f"({fmt(ch.g)}, {fmt(ch.E)}, [{', '.join(f'({g.name!r}, {g.power})' for g in ch.gates)}])"
        for ch in model.channels
    )
    names = ", ".join(f"{k!r}: {k}" for k in model.rates)
    index = {ch.name: k for k, ch in enumerate(model.channels)}
    pools = "".join(
        f"    ({p.name!r}, {fmt(p.tau)}, {fmt(p.depth)}, {fmt(p.Ca_inf)}, {[index[c] for c in p.channels]!r}),\n"
        for p in model.pools)
    uses = {k: tuple(p.name for p in model.pools if sympy.Symbol(p.name, real=True) in e.free_symbols)
            for k, e in model.rates.items()}
    uses = {k: v for k, v in uses.items() if v}
    return (f"# (g mS/cm2, E mV, [(gate, power), ...]) per channel\nCHANNELS = [\n    {chans},\n]\n"
            f"RATES = {{{names}}}\n"
            "# calcium pools: (name, tau ms, depth um, resting mM, [indices of the driving CHANNELS])\n"
            f"POOLS = [\n{pools}]\nRATE_POOLS = {uses!r}  # rate -> the pools (mM) it takes after V\n"
            f"FARADAY = {FARADAY!r}  # C/mol\n")
