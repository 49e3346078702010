r"""Export a model to Brian2: one self-contained script ``FILE.py STIM.csv OUT.csv``.

The script holds the model's equations with units (``v`` in volt, currents in
amp/meter², rates in Hz, each rate written as a dimensionless function of
``u = v/mV`` divided by ``ms``), a namespace with the parameter values
(C_m µF/cm², g mS/cm², E mV), and the initial state (the resting state under
the first current sample, gates at :math:`\alpha/(\alpha+\beta)`, calcium pools
at their steady level).  Removable
(0/0) singularities of linoid rates are evaluated through their Taylor
polynomial within 1e-3 mV of the singular point: ``int(abs(u - V0) < w)``
selects the polynomial, and the formula is evaluated at ``u`` shifted out of
the window there, so that no NaN is ever formed.

The current of STIM.csv (header ``t,I``, ms and µA/cm², linear between
samples) is played through a ``TimedArray`` sampled at the middle of every
time step; the script writes ``t,V`` (ms, mV) at every step of ``--dt``
(default 0.025 ms, ``method="rk4"``, code generation target ``numpy``).
"""

from __future__ import annotations

import sympy

from hhsym.export import common, files, runner
from hhsym.export.common import BRIAN2, RateCode, fmt, numeric_rates, poly_text, render
from hhsym.model.pools import FARADAY

__all__ = ["to_brian2"]

# names Brian2 (or the script) gives a meaning; gates so named get the ending "_gate"
_RESERVED = {"t", "dt", "xi", "i", "N", "t_in_timesteps", "lastspike", "not_refractory", "u", "v",
             "I_inj", "C_m", "mV", "ms", "Hz", "volt", "amp", "meter", "exp", "log", "abs", "sqrt", "tanh",
             "sinh", "cosh", "int", "second", "siemens", "farad", "cm", "uF", "msiemens", "uA", "True",
             "False", "and", "or", "not"}


def _state_name(name):
    return name + "_gate" if name in _RESERVED or name.startswith(("alpha_", "beta_", "xi_")) else name


def _rate_text(code, pools=()):
    """Brian2 expression (dimensionless, in u = v/mV) of one rate, guarded at its 0/0 points.

    ``pools``: state names of the calcium pools the rate may use (concentrations in mM).
    """
    if not code.guards:
        return render(code.expr, BRIAN2, "u", pools)
    width = fmt(common.WIDTH)
    conds = [f"int(abs(u - ({fmt(root)})) < {width})" for root, _ in code.guards]
    inside = " + ".join(f"{c} * {poly_text(root, poly, BRIAN2, 'u')}" for c, (root, poly) in zip(conds, code.guards))
    hits = " + ".join(conds)
    shifted = f"(u + {fmt(2 * common.WIDTH)} * ({hits}))"
    return f"{inside} + (1 - ({hits})) * {render(code.expr, BRIAN2, shifted, pools)}"


def equations_text(model):
    """The Brian2 equations of ``model`` (one neuron, a current ``I_inj(t)`` in amp/meter²).

    Parameters
    ----------
    model : hhsym.ConductanceModel

    Returns
    -------
    str
        Equations for :class:`brian2.NeuronGroup`; parameters are names in the
        namespace the script builds (``C_m``, ``g_<channel>``, ``E_<channel>``).
    """
    common.check_exportable(model, "equations_text (Brian2)", max_pools=len(getattr(model, "pools", ())))
    rates = numeric_rates(model, max_pools=len(getattr(model, "pools", ())))
    # calcium pools are dimensionless states (mM); rates read them under their state names
    rename = {sympy.Symbol(p.name, real=True): sympy.Symbol(_state_name(p.name), real=True) for p in model.pools}
    pools = [_state_name(p.name) for p in model.pools]
    rates = {k: RateCode(c.name, c.expr.xreplace(rename), c.guards) for k, c in rates.items()}
    currents = " + ".join(f"I_{ch.name}" for ch in model.channels)
    lines = [f"dv/dt = (I_inj(t) - ({currents})) / C_m : volt", "u = v / mV : 1"]
    for ch in model.channels:
        factors = [f"g_{ch.name}"] + [
            f"{_state_name(g.name)}**{g.power}" if g.power > 1 else _state_name(g.name) for g in ch.gates]
        lines.append(f"I_{ch.name} = {' * '.join(factors)} * (v - E_{ch.name}) : amp/meter**2")
    for g in model.gates:
        x = _state_name(g.name)
        lines.append(f"d{x}/dt = alpha_{g.name} * (1 - {x}) - beta_{g.name} * {x} : 1")
        for kind in ("alpha", "beta"):
            name = f"{kind}_{g.name}"
            lines.append(f"{name} = ({_rate_text(rates[name], pools)}) / ms : Hz")
    for pool in model.pools:
        x, (tau, depth, inf) = _state_name(pool.name), pool.param_names()
        current = " + ".join(f"I_{c}" for c in pool.channels)
        lines.append(f"d{x}/dt = (-{fmt(5.0 / FARADAY)} * ({current}) / (uA/cm**2) / {depth} "
                     f"+ ({inf} - {x}) / {tau}) / ms : 1")
    return "\n".join(lines) + "\n"


_COMPAT = '''
def _brian2_numpy_compat():
    """Brian2 <= 2.9.0 reads numpy.ndarray.ptp, which numpy >= 2.4 removed: give that module np.ptp."""
    import importlib.machinery
    import numpy as np

    if hasattr(np.ndarray, "ptp"):
        return

    class Loader(importlib.machinery.SourceFileLoader):
        def get_code(self, fullname):
            source = self.get_data(self.path).replace(b"np.ndarray.ptp", b"np.ptp")
            return compile(source, self.path, "exec", dont_inherit=True)

    class Finder:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "brian2.units.fundamentalunits":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                spec.loader = Loader(name, spec.origin)
            return spec

    sys.meta_path.insert(0, Finder)
'''

_SCRIPT = '''#!/usr/bin/env python
"""Brian2 script written by hhsym.export.to_brian2 for the model {model_name!r}.

Usage: python {file_name} STIM.csv OUT.csv [--dt DT] [--method rk4] [--target numpy]

STIM.csv: header t,I (ms, uA/cm2; linear between samples).  OUT.csv: header t,V (ms, mV)
at every time step up to the last stimulus time.  Starts at rest under I at the first sample.
"""

import argparse
import csv
import math
import os
import sys

EQUATIONS = """
{equations}"""

# state variable of each gate and calcium pool (mM) in EQUATIONS
GATE_STATES = {gate_states!r}
POOL_STATES = {pool_states!r}

{rates}
{tables}
{helpers}
{compat}

def namespace(b2):
    """Parameter values with units: C_m uF/cm2, g mS/cm2, E mV."""
    uF_cm2, mS_cm2 = b2.uF / b2.cm ** 2, b2.msiemens / b2.cm ** 2
    return {{
{namespace}
    }}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stim", metavar="STIM.csv")
    parser.add_argument("out", metavar="OUT.csv")
    parser.add_argument("--dt", type=float, default=0.025, help="time step, ms (default 0.025)")
    parser.add_argument("--method", default="rk4", help="Brian2 state updater (default rk4)")
    parser.add_argument("--target", default="numpy", help="code generation target (default numpy)")
    args = parser.parse_args(argv)
    t_stim, I_stim = read_stimulus(args.stim)
    _brian2_numpy_compat()
    import numpy as np
    import brian2 as b2

    b2.prefs.codegen.target = args.target
    dt = args.dt
    t0, t_stop = t_stim[0], t_stim[-1]
    n = int(math.floor((t_stop - t0) / dt + 1e-9)) + 1
    middle = t0 + (np.arange(n + 1) + 0.5) * dt
    ns = namespace(b2)
    ns["I_inj"] = b2.TimedArray(np.interp(middle, t_stim, I_stim) * b2.uA / b2.cm ** 2, dt=dt * b2.ms)
    clock = b2.Clock(dt=dt * b2.ms)
    group = b2.NeuronGroup(1, EQUATIONS, method=args.method, namespace=ns, clock=clock)
    v0 = resting_potential(I_stim[0])
    group.v = v0 * b2.mV
    conc = steady_pools(v0)
    for pool, state in POOL_STATES.items():
        setattr(group, state, conc[pool])
    for gate, state in GATE_STATES.items():
        a, b = (RATES[k + gate](v0, *[conc[p] for p in RATE_POOLS.get(k + gate, ())]) for k in ("alpha_", "beta_"))
        setattr(group, state, a / (a + b))
    monitor = b2.StateMonitor(group, "v", record=0, clock=clock)
    network = b2.Network(group, monitor)
    network.run(n * dt * b2.ms, namespace={{}})
    t = t0 + np.asarray(monitor.t / b2.ms)[:n]
    V = np.asarray(monitor.v[0] / b2.mV)[:n]
    write_output(args.out, t.tolist(), V.tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def to_brian2(model, path):
    """Write ``model`` as a runnable Brian2 script.

    Parameters
    ----------
    model : hhsym.ConductanceModel
        Any conductance-based model; rate parameters are written as their values.
    path : str or os.PathLike
        The script to write (ending in ``.py``); its folder must exist.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    InvalidArgumentError
        If ``model`` is not a ConductanceModel or ``path`` cannot be written.
    ModelError
        If a rate uses a construct the exporter cannot write.

    Notes
    -----
    Calcium pools are dimensionless states (their concentration in mM), with
    ``tau_<pool>`` (ms), ``depth_<pool>`` (µm) and ``<pool>_inf`` (mM) plain
    numbers in the namespace; they start at their resting level.

    Run ``python FILE.py STIM.csv OUT.csv [--dt 0.025] [--method rk4] [--target numpy]``:
    STIM.csv has the header ``t,I`` (ms, µA/cm²), OUT.csv gets ``t,V`` (ms, mV).
    Units inside: v volt, currents amp/meter², C_m farad/meter², g siemens/meter²,
    rates Hz; the namespace states them as µF/cm², mS/cm², mV.

    Examples
    --------
    >>> import hhsym, hhsym.export, tempfile, os
    >>> script = hhsym.export.to_brian2(hhsym.library.hodgkin_huxley(),
    ...                                 os.path.join(tempfile.mkdtemp(), "hh.py"))
    """
    common.check_exportable(model, "to_brian2", max_pools=len(getattr(model, "pools", ())))
    path = files.check_file(path, "path", suffix=".py")
    import os

    items = [f'        "C_m": {fmt(model.params["C_m"])} * uF_cm2,']
    for ch in model.channels:
        items.append(f'        "g_{ch.name}": {fmt(ch.g)} * mS_cm2,')
        items.append(f'        "E_{ch.name}": {fmt(ch.E)} * b2.mV,')
    for pool in model.pools:  # plain numbers: tau ms, depth um, resting level mM
        items += [f'        "{k}": {fmt(v)},' for k, v in pool.param_values().items()]
    text = _SCRIPT.format(
        model_name=model.name, file_name=os.path.basename(path), equations=equations_text(model),
        gate_states={g.name: _state_name(g.name) for g in model.gates},
        pool_states={p.name: _state_name(p.name) for p in model.pools},
        rates=runner.python_rates_source(model, max_pools=len(model.pools)), tables=runner.runner_tables(model),
        helpers=runner.RUNNER_HELPERS, compat=_COMPAT, namespace="\n".join(items))
    files.write_text(path, text)
    return path
