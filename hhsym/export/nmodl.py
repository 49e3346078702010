r"""Export a model to NEURON: one NMODL ``.mod`` file per channel and a runner script.

Each channel becomes a density mechanism ``SUFFIX <prefix><channel>`` with a
``NONSPECIFIC_CURRENT i`` and ``RANGE gbar, e, g, i`` (``gbar`` in S/cm², as
NEURON expects: hhsym's mS/cm² divided by 1000; ``e`` in mV).  Each rate is a
``FUNCTION`` of V (mV) returning 1/ms; within 1e-3 mV of a removable (0/0)
singularity an ``if`` switches to its Taylor polynomial, whose value at the
singular point is the exact limit.  Gates start at their steady state
:math:`\alpha/(\alpha+\beta)`.

A model's calcium pool (at most one, :class:`~hhsym.model.CalciumPool`) is
NEURON's ``cai``: a mechanism ``SUFFIX <prefix><pool>_pool`` (``USEION ca
READ ica WRITE cai``) integrates it, the channels that drive it write ``ica``
(their own constant reversal potential ``e``, not ``eca``), and rates that use
it are ``FUNCTION``\ s of ``(Vm, Ca)`` called with ``cai``.  The runner sets
``cai0_ca_ion`` to the pool's resting level, so every mechanism starts from
hhsym's resting state.  A second pool raises
:class:`~hhsym.errors.UnsupportedModelError`.

``DIR/run_neuron.py STIM.csv OUT.csv`` compiles the mechanisms with
``nrnivmodl`` when needed, builds a one-compartment cell of area 100 µm² with
the model's channels and C_m, injects the current of STIM.csv (header ``t,I``,
ms and µA/cm², linear between samples) through an ``IClamp``, starts at the
resting state under the first current sample, integrates with CVODE
(or NEURON's fixed step with ``--fixed``) and writes ``t,V`` (ms, mV).
"""

from __future__ import annotations

import os
import re

from hhsym.export import common, files, runner
from hhsym.export.common import NMODL, fmt, numeric_rates, poly_text, render
from hhsym.export.pieces import hoist, statements
from hhsym.errors import invalid

__all__ = ["to_nmodl"]

# names NMODL or NEURON already use inside a mechanism; gates so named get a trailing "_"
_RESERVED = {"v", "i", "e", "g", "gbar", "t", "dt", "celsius", "area", "diam", "L", "states", "rates",
             "Vm", "secondorder", "PI", "FARADAY", "R"}


def _state_name(name):
    return name + "_" if name in _RESERVED or name.startswith(("alpha_", "beta_")) else name


def _function(code, var="Vm", pools=()):
    args = "".join(f", {p} (mM)" for p in pools)
    lines = [f"FUNCTION {code.name}({var} (mV){args}) (/ms) {{"]
    body, local = hoist(code.expr)
    names = [n for n, _ in local] + list(pools)
    lines += statements(local, NMODL, var, "nmodl", pools)
    keyword = "if"
    for root, poly in code.guards:
        lines.append(f"    {keyword} (fabs({var} - ({fmt(root)})) < {fmt(common.WIDTH)}) {{")
        lines.append(f"        {code.name} = {poly_text(root, poly, NMODL, var)}")
        lines.append("    }")
        keyword = "else if"
    if code.guards:
        lines[-1] = "    } else {"
        lines.append(f"        {code.name} = {render(body, NMODL, var, names)}")
        lines.append("    }")
    else:
        lines.append(f"    {code.name} = {render(body, NMODL, var, names)}")
    lines.append("}")
    return "\n".join(lines)


def _pool_args(model, code):
    used = {s.name for s in code.expr.free_symbols}
    return [p.name for p in model.pools if p.name in used]


def _mod_text(model, channel, suffix, rates):
    states = [(_state_name(g.name), g) for g in channel.gates]
    # the model's calcium pool (at most one) is NEURON's cai: its driving channels write ica,
    # channels whose rates use it read cai
    drives = any(channel.name in p.channels for p in model.pools)
    reads = any(_pool_args(model, rates[f"{k}_{g.name}"]) for _, g in states for k in ("alpha", "beta"))

    def call(kind, g):
        code = rates[f"{kind}_{g.name}"]
        return f"{kind}_{g.name}({', '.join(['v'] + ['cai'] * len(_pool_args(model, code)))})"

    header = (
        f"TITLE {suffix}: channel {channel.name} of the hhsym model {model.name!r}\n\n"
        "COMMENT\nWritten by hhsym.export.to_nmodl. Units: v, e mV; gbar, g S/cm2; i mA/cm2;\n"
        "rates 1/ms. I = gbar * prod(gate^power) * (v - e).\n"
    )
    if model.rate_params:
        header += "Rate parameters (substituted): " + ", ".join(
            f"{k} = {fmt(v)}" for k, v in model.rate_params.items()) + "\n"
    header += "ENDCOMMENT\n"
    conductance = " * ".join(["gbar"] + [f"{s}^{g.power}" if g.power > 1 else s for s, g in states])
    ions = ("    USEION ca WRITE ica\n" if drives else "") + ("    USEION ca READ cai\n" if reads else "")
    parts = [
        header,
        "NEURON {\n"
        f"    SUFFIX {suffix}\n"
        + ("" if drives else "    NONSPECIFIC_CURRENT i\n") + ions +
        "    RANGE gbar, e, g, i\n"
        "}\n",
        "UNITS {\n    (mA) = (milliamp)\n    (mV) = (millivolt)\n    (S) = (siemens)\n    (mM) = (milli/liter)\n}\n",
        "PARAMETER {\n"
        f"    gbar = {fmt(channel.g / 1000.0)} (S/cm2)\n"
        f"    e = {fmt(channel.E)} (mV)\n"
        "}\n",
        "ASSIGNED {\n    v (mV)\n    i (mA/cm2)\n    g (S/cm2)\n"
        + ("    ica (mA/cm2)\n" if drives else "") + ("    cai (mM)\n" if reads else "") + "}\n",
    ]
    current = "    ica = g * (v - e)\n    i = ica\n" if drives else "    i = g * (v - e)\n"
    if states:
        parts.append("STATE {\n" + "".join(f"    {s}\n" for s, _ in states) + "}\n")
        parts.append("BREAKPOINT {\n    SOLVE states METHOD cnexp\n"
                     f"    g = {conductance}\n{current}}}\n")
        parts.append("INITIAL {\n" + "".join(
            f"    {s} = {call('alpha', g)} / ({call('alpha', g)} + {call('beta', g)})\n" for s, g in states) + "}\n")
        parts.append("DERIVATIVE states {\n" + "".join(
            f"    {s}' = {call('alpha', g)} * (1 - {s}) - {call('beta', g)} * {s}\n" for s, g in states) + "}\n")
        functions = [_function(rates[f"{kind}_{g.name}"], pools=_pool_args(model, rates[f"{kind}_{g.name}"]))
                     for _, g in states for kind in ("alpha", "beta")]
        parts.append("UNITSOFF\n" + "\n\n".join(functions) + "\nUNITSON\n")
    else:
        parts.append(f"BREAKPOINT {{\n    g = {conductance}\n{current}}}\n")
    return "\n".join(parts)


def _pool_text(model, pool, suffix):
    """NMODL of a calcium pool: NEURON's cai, driven by ica (Destexhe et al. 1994's cad.mod without rectification)."""
    from hhsym.model.pools import FARADAY

    return (
        f"TITLE {suffix}: calcium pool {pool.name} of the hhsym model {model.name!r}\n\n"
        "COMMENT\nWritten by hhsym.export.to_nmodl. The pool is NEURON's cai (mM), driven by the ica of\n"
        f"the channels {', '.join(pool.channels)} (which write it):\n"
        "cai' = -5000 ica / (F depth) + (cainf - cai) / taur  (ica mA/cm2, depth um, taur ms);\n"
        "not rectified. cai starts at cai0_ca_ion, which run_neuron.py sets to the resting level.\n"
        "ENDCOMMENT\n\n"
        "NEURON {\n"
        f"    SUFFIX {suffix}\n"
        "    USEION ca READ ica WRITE cai\n"
        "    RANGE depth, taur, cainf\n"
        "}\n\n"
        "UNITS {\n    (mA) = (milliamp)\n    (mM) = (milli/liter)\n    (um) = (micron)\n}\n\n"
        "PARAMETER {\n"
        f"    depth = {fmt(pool.depth)} (um)\n"
        f"    taur = {fmt(pool.tau)} (ms)\n"
        f"    cainf = {fmt(pool.Ca_inf)} (mM)\n"
        "}\n\n"
        "ASSIGNED {\n    ica (mA/cm2)\n}\n\n"
        "STATE {\n    cai (mM)\n}\n\n"
        "BREAKPOINT {\n    SOLVE state METHOD cnexp\n}\n\n"
        "UNITSOFF\n"
        "DERIVATIVE state {\n"
        f"    cai' = -5000 * ica / ({fmt(FARADAY)} * depth) + (cainf - cai) / taur\n"
        "}\n"
        "UNITSON\n"
    )


_RUNNER = '''#!/usr/bin/env python
"""NEURON runner written by hhsym.export.to_nmodl for the model {model_name!r}.

Usage: python run_neuron.py STIM.csv OUT.csv [--dt DT] [--fixed] [--atol ATOL]

STIM.csv: header t,I (ms, uA/cm2; linear between samples, from t = 0).  OUT.csv: header
t,V (ms, mV) every DT ms (default 0.025) up to the last stimulus time.  The cell is one
compartment of area {area:g} um2 (1 uA/cm2 = {nA_per_density:g} nA) starting at rest under I(0).
"""

import argparse
import csv
import glob
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
C_M = {C_m}  # uF/cm2
AREA_UM2 = {area!r}
# (SUFFIX, {{range variable: value}}): gbar S/cm2, e mV
MECHANISMS = {mechanisms}

{rates}
{tables}
{helpers}

def load_mechanisms(neuron):
    """Compile the .mod files beside this script when needed, then load them."""
    mods = glob.glob(os.path.join(HERE, "*.mod"))
    libs = glob.glob(os.path.join(HERE, "*", ".libs", "libnrnmech.so")) + glob.glob(
        os.path.join(HERE, "*", "libnrnmech.so"))
    if not libs or min(map(os.path.getmtime, libs)) < max(map(os.path.getmtime, mods)):
        done = subprocess.run(["nrnivmodl"], cwd=HERE, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit("nrnivmodl failed:\\n" + done.stdout[-2000:] + done.stderr[-2000:])
    if all(name in loaded_mechanisms(neuron.h) for name, _ in MECHANISMS):
        return  # NEURON loaded them itself (it loads those of the current folder)
    if not neuron.load_mechanisms(HERE):
        sys.exit(f"cannot load the compiled mechanisms in {{HERE}}")


def loaded_mechanisms(h):
    """Names of the density mechanisms NEURON knows."""
    types = h.MechanismType(0)
    names = set()
    for k in range(int(types.count())):
        types.select(k)
        name = h.ref("")
        types.selected(name)
        names.add(name[0])
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stim", metavar="STIM.csv")
    parser.add_argument("out", metavar="OUT.csv")
    parser.add_argument("--dt", type=float, default=0.025, help="output (and --fixed step) interval, ms")
    parser.add_argument("--fixed", action="store_true", help="fixed-step Crank-Nicolson instead of CVODE")
    parser.add_argument("--atol", type=float, default=1e-9, help="CVODE absolute tolerance")
    args = parser.parse_args(argv)
    t_stim, I_stim = read_stimulus(args.stim)
    import neuron
    from neuron import h

    load_mechanisms(neuron)
    h.load_file("stdrun.hoc")
    soma = h.Section(name="soma")
    soma.nseg = 1
    soma.L = soma.diam = math.sqrt(AREA_UM2 / math.pi)
    soma.cm = C_M
    for suffix, values in MECHANISMS:
        soma.insert(suffix)
        for name, value in values.items():
            setattr(soma(0.5), name + "_" + suffix, value)
    area = h.area(0.5, sec=soma)  # um2
    clamp = h.IClamp(soma(0.5))
    clamp.delay = 0.0
    clamp.dur = 1e9
    # times rounded to 1e-9 ms, so that a sample time and an output time meant to be equal are
    # one double (CVODE stops at both and asserts on two stops 1e-16 ms apart)
    t_stim = [round(t, 9) for t in t_stim]
    tvec = h.Vector(t_stim)
    ivec = h.Vector([I * area * 1e-5 for I in I_stim])  # uA/cm2 * um2 * 1e-8 cm2/um2 * 1e3 nA/uA
    ivec.play(clamp._ref_amp, tvec, True)
    t_stop = t_stim[-1]
    n = int(math.floor((t_stop - t_stim[0]) / args.dt + 1e-9)) + 1
    times = [round(t_stim[0] + k * args.dt, 9) for k in range(n)]
    trec = h.Vector(times)
    vrec = h.Vector()
    vrec.record(soma(0.5)._ref_v, trec)
    cvode = h.CVode()
    if args.fixed:
        cvode.active(0)
        h.secondorder = 2
        h.dt = args.dt
        h.steps_per_ms = 1.0 / args.dt
    else:
        cvode.active(1)
        cvode.atol(args.atol)
    h.tstop = t_stop
    h.t = t_stim[0]
    v0 = resting_potential(I_stim[0])
    for level in steady_pools(v0).values():  # the one calcium pool is NEURON's cai
        h.cai0_ca_ion = level
    h.finitialize(v0)
    h.continuerun(t_stop + 0.5 * args.dt)
    write_output(args.out, times, list(vrec)[:n])
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def to_nmodl(model, directory, prefix="hhsym_"):
    """Write ``model`` as NMODL mechanisms and a NEURON runner into ``directory``.

    Parameters
    ----------
    model : hhsym.ConductanceModel
        Any conductance-based model (any channels, gates and a leak); rate
        parameters are written as their values.
    directory : str or os.PathLike
        Output folder (created if missing).  It receives ``<prefix><channel>.mod``
        per channel, ``<prefix><pool>_pool.mod`` for a calcium pool, and ``run_neuron.py``.
    prefix : str
        Start of every mechanism's SUFFIX, so that models exported with
        different prefixes can be loaded together (default ``"hhsym_"``).

    Returns
    -------
    dict
        ``{"mod": [paths of the .mod files], "runner": path of run_neuron.py}``.

    Raises
    ------
    InvalidArgumentError
        If ``model`` is not a ConductanceModel, ``directory`` cannot be created
        or written, or ``prefix`` is not an identifier start.
    ModelError
        If a rate uses a construct NMODL cannot express here.
    UnsupportedModelError
        If the model has more than one calcium pool.

    Notes
    -----
    Units in the .mod files: v, e mV; gbar, g S/cm²; i mA/cm²; rates 1/ms.
    Run ``python DIR/run_neuron.py STIM.csv OUT.csv``: STIM.csv has the header
    ``t,I`` (ms, µA/cm²), OUT.csv gets ``t,V`` (ms, mV).

    Examples
    --------
    >>> import hhsym, hhsym.export, os, tempfile
    >>> out = hhsym.export.to_nmodl(hhsym.library.hodgkin_huxley(), tempfile.mkdtemp())
    >>> sorted(os.path.basename(p) for p in out["mod"])
    ['hhsym_K.mod', 'hhsym_L.mod', 'hhsym_Na.mod']
    """
    common.check_exportable(model, "to_nmodl", max_pools=1)
    if not isinstance(prefix, str) or not re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", prefix):
        raise invalid("prefix", prefix, "letters, digits and '_', not starting with a digit (e.g. 'hhsym_')")
    directory = files.check_directory(directory, "directory")
    rates = numeric_rates(model, max_pools=1)
    mods, mechanisms = [], []
    for channel in model.channels:
        suffix = prefix + channel.name
        path = os.path.join(directory, suffix + ".mod")
        files.write_text(path, _mod_text(model, channel, suffix, rates))
        mods.append(path)
        mechanisms.append((suffix, {"gbar": channel.g / 1000.0, "e": channel.E}))
    for pool in model.pools:
        suffix = prefix + pool.name + "_pool"
        path = os.path.join(directory, suffix + ".mod")
        files.write_text(path, _pool_text(model, pool, suffix))
        mods.append(path)
        mechanisms.append((suffix, {"depth": pool.depth, "taur": pool.tau, "cainf": pool.Ca_inf}))
    script = os.path.join(directory, "run_neuron.py")
    files.write_text(script, _RUNNER.format(
        model_name=model.name, area=common.AREA_UM2, nA_per_density=common.AREA_UM2 * 1e-5,
        C_m=fmt(model.params["C_m"]), mechanisms=repr(mechanisms),
        rates=runner.python_rates_source(model, max_pools=1), tables=runner.runner_tables(model),
        helpers=runner.RUNNER_HELPERS))
    return {"mod": mods, "runner": script}
