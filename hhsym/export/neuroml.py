r"""Export a model to NeuroML 2, with a LEMS simulation file for jNeuroML beside it.

``FILE.nml`` holds one ``ionChannelHH`` per gated channel (without gates
for a leak), each gate a ``gateHHrates`` with ``instances`` = its power, and a
one-compartment ``cell`` (a sphere of area 100 µm², the model's C_m, one
``channelDensity`` per channel with its g in mS/cm² and E in mV, starting at
the resting potential).  A rate of the form

* :math:`r\,e^{(V-V_{1/2})/s}` is written as ``HHExpRate``,
* :math:`r/(1 + e^{-(V-V_{1/2})/s})` as ``HHSigmoidRate``,
* :math:`r\,x/(1 - e^{-x})`, :math:`x = (V-V_{1/2})/s`, as ``HHExpLinearRate``,

when it has that form to 1e-9 relative over -150..100 mV; any other rate
becomes a LEMS ``ComponentType`` extending ``baseVoltageDepRate`` in the same
file, whose removable (0/0) singularities are evaluated by their Taylor
polynomial (a ``ConditionalDerivedVariable``).

``LEMS_<stem>.xml`` includes the cell, injects a current (a piecewise-linear
``basePointCurrent`` built from the stimulus samples), is integrated by
jLEMS (forward Euler, hence the small default step) and writes ``<stem>.v.dat`` (t in s, V in V: :func:`read_lems_output`
converts to ms and mV).  Run it with ``pynml LEMS_<stem>.xml`` or
``pyneuroml.pynml.run_lems_with_jneuroml``.
"""

from __future__ import annotations

import math
import os
from xml.sax.saxutils import quoteattr

import numpy as np
import sympy

from hhsym.errors import invalid
from hhsym.export import common, files
from hhsym.export.common import LEMS, fmt, numeric_rates, poly_text, render
from hhsym.export.pieces import exclusive, hoist
from hhsym.symbolic import V

__all__ = ["to_neuroml", "read_lems_output", "standard_form"]

_NS = ('xmlns="http://www.neuroml.org/schema/neuroml2" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
       'xsi:schemaLocation="http://www.neuroml.org/schema/neuroml2 '
       'https://raw.github.com/NeuroML/NeuroML2/development/Schemas/NeuroML2/NeuroML_v2.3.xsd"')


# ----------------------------------------------------------------------------- standard forms
def _linear(arg):
    """(s, c) with arg = s*V + c, or None."""
    try:
        poly = sympy.Poly(sympy.expand(arg), V)
    except sympy.PolynomialError:
        return None
    if poly.degree() > 1 or any(c.free_symbols for c in poly.all_coeffs()):
        return None
    coeffs = [float(c) for c in poly.all_coeffs()]
    return (coeffs[0], coeffs[1]) if len(coeffs) == 2 else (0.0, coeffs[0])


def _exp_term(term):
    """(q, s, c) with term = q*exp(s*V + c), or None."""
    q, rest = sympy.powsimp(term).as_independent(V, as_Add=False)
    if not isinstance(rest, sympy.exp):
        return None
    lin = _linear(rest.args[0])
    return None if lin is None or not q.is_number else (float(q), *lin)


def _sum_with_exp(den):
    """(p, q, s, c) with den = p + q*exp(s*V + c), or None."""
    p, rest = sympy.expand(den).as_independent(V, as_Add=True)
    found = _exp_term(rest)
    if found is None or not p.is_number or float(p) == 0:
        return None
    return (float(p), *found)


def _candidates(expr):
    """Possible (type, rate 1/ms, midpoint mV, scale mV) readings of a rate."""
    out = []
    found = _exp_term(expr)
    if found and found[1] != 0:
        q, s, c = found
        out.append(("HHExpRate", q, -c / s, 1.0 / s))
    for num, den in _fractions(expr):
        parts = _sum_with_exp(den)
        if parts is not None:
            out += _quotient_forms(num, *parts)
    return out


def _fractions(expr):
    """(numerator, denominator) splits of ``expr``: as written, then over a common denominator."""
    factors = sympy.Mul.make_args(expr)
    den = [f.base for f in factors if isinstance(f, sympy.Pow) and f.exp == -1]
    num = [f for f in factors if not (isinstance(f, sympy.Pow) and f.exp == -1)]
    out = [(sympy.Mul(*num), den[0])] if len(den) == 1 else []
    return out + [sympy.fraction(sympy.together(expr))]


def _quotient_forms(num, p, q, s, c):
    """Sigmoid and linoid readings of num / (p + q exp(s V + c))."""
    out = []
    if s == 0:
        return out
    if not num.free_symbols and q / p > 0:
        shift = c + math.log(q / p)
        out.append(("HHSigmoidRate", float(num) / p, -shift / s, -1.0 / s))
    lin = _linear(num)
    if lin and lin[0] != 0 and -q / p > 0:
        a, b = lin
        scale = -1.0 / s
        out.append(("HHExpLinearRate", a / p * scale, -b / a, scale))
    return out


def _evaluate(form, Vm):
    kind, rate, mid, scale = form
    x = (Vm - mid) / scale
    with np.errstate(all="ignore"):
        if kind == "HHExpRate":
            return rate * np.exp(x)
        if kind == "HHSigmoidRate":
            return rate / (1 + np.exp(-x))
        return np.where(x == 0, rate, rate * x / (1 - np.exp(-x)))


def standard_form(expr, rtol=1e-9):
    """Read a rate as one of NeuroML's standard HH rate forms, if it is one.

    Parameters
    ----------
    expr : sympy.Expr
        A rate (1/ms) in ``V`` (mV) with numbers for every parameter.
    rtol : float
        Largest relative difference allowed on -150..100 mV.

    Returns
    -------
    tuple or None
        ``(type, rate, midpoint, scale)``: ``"HHExpRate"``, ``"HHSigmoidRate"``
        or ``"HHExpLinearRate"``, rate in 1/ms, midpoint and scale in mV; None
        when the rate has none of these forms.
    """
    grid = np.linspace(-150.0, 100.0, 1001) + 1e-4 * math.pi  # off any round singular voltage
    with np.errstate(all="ignore"):
        truth = np.asarray(sympy.lambdify(V, expr, "numpy")(grid), dtype=float) * np.ones_like(grid)
    if not np.all(np.isfinite(truth)):
        return None
    for form in _candidates(expr):
        values = _evaluate(form, grid)
        if np.all(np.isfinite(values)) and np.all(np.abs(values - truth) <= rtol * np.abs(truth) + 1e-300):
            return form
    return None


# ----------------------------------------------------------------------------- XML pieces
def _q(value, unit):
    return quoteattr(f"{fmt(value)}{unit}")


def _custom_rate(type_name, code):
    """A LEMS ComponentType for one rate of arbitrary form."""
    expr, local = hoist(code.expr)
    names = [n for n, _ in local]
    body = render(expr, LEMS, "Vm", names)
    lines = [f'    <ComponentType name="{type_name}" extends="baseVoltageDepRate" '
             f'description="hhsym rate {code.name} (1/ms) of V (mV)">',
             '        <Constant name="MV" dimension="voltage" value="1mV"/>',
             '        <Constant name="PER_MS" dimension="per_time" value="1per_ms"/>',
             '        <Dynamics>',
             '            <DerivedVariable name="Vm" dimension="none" value="v / MV"/>']
    for name, pieces in local:  # Piecewise parts (e.g. a network's tails): exclusive cases
        lines.append(f'            <ConditionalDerivedVariable name="{name}" dimension="none">')
        for value, cond in exclusive(pieces):
            lines.append(f'                <Case condition="{render(cond, LEMS, "Vm", names)}" '
                         f'value="{render(value, LEMS, "Vm", names)}"/>')
        lines.append('            </ConditionalDerivedVariable>')
    if not code.guards and not local:
        lines.append(f'            <DerivedVariable name="r" exposure="r" dimension="per_time" '
                     f'value="PER_MS * {body}"/>')
    elif not code.guards:  # the schema puts every DerivedVariable before the conditional ones
        lines += ['            <ConditionalDerivedVariable name="r" exposure="r" dimension="per_time">',
                  f'                <Case value="PER_MS * {body}"/>',
                  '            </ConditionalDerivedVariable>']
    else:
        lines.append('            <ConditionalDerivedVariable name="r" exposure="r" dimension="per_time">')
        outside = []
        w = fmt(common.WIDTH)
        for root, poly in code.guards:
            d = f"(Vm - {render(sympy.Float(root), LEMS)})"
            lines.append(f'                <Case condition="{d} .lt. {w} .and. {d} .gt. (0 - {w})" '
                         f'value="PER_MS * {poly_text(root, poly, LEMS, "Vm")}"/>')
            outside.append(f"({d} .geq. {w} .or. {d} .leq. (0 - {w}))")
        lines.append(f'                <Case condition="{" .and. ".join(outside)}" value="PER_MS * {body}"/>')
        lines.append('            </ConditionalDerivedVariable>')
    lines += ['        </Dynamics>', '    </ComponentType>']
    return "\n".join(lines)


def _rate_element(tag, form, type_name):
    if form is None:
        return f'<{tag} type="{type_name}"/>'
    kind, rate, mid, scale = form
    return f'<{tag} type="{kind}" rate={_q(rate, "per_ms")} midpoint={_q(mid, "mV")} scale={_q(scale, "mV")}/>'


def nml_text(model, cell_id, v_init, prefix="hhsym_"):
    """The NeuroML 2 document (channels, custom rate types, cell) of ``model``.

    Parameters
    ----------
    model : hhsym.ConductanceModel
    cell_id : str
        Id of the cell.
    v_init : float
        Initial membrane potential (mV).
    prefix : str
        Start of the ids of channels and custom rate types.

    Returns
    -------
    str
    """
    rates = numeric_rates(model)
    types, channels, densities = [], [], []
    for ch in model.channels:
        cid = f"{prefix}{ch.name}"
        if not ch.gates:
            channels.append(f'    <ionChannelHH id="{cid}" conductance="10pS" species="non_specific"/>')
        else:
            gates = []
            for g in ch.gates:
                elements = []
                for kind, tag in (("alpha", "forwardRate"), ("beta", "reverseRate")):
                    code = rates[f"{kind}_{g.name}"]
                    form = standard_form(code.expr)
                    type_name = f"{prefix}{ch.name}_{code.name}"
                    if form is None:
                        types.append(_custom_rate(type_name, code))
                    elements.append("            " + _rate_element(tag, form, type_name))
                gates.append(f'        <gateHHrates id="{g.name}" instances="{g.power}">\n'
                             + "\n".join(elements) + "\n        </gateHHrates>")
            channels.append(f'    <ionChannelHH id="{cid}" conductance="10pS" species="non_specific">\n'
                            + "\n".join(gates) + "\n    </ionChannelHH>")
        densities.append(f'                <channelDensity id="{cid}_all" ionChannel="{cid}" '
                         f'condDensity={_q(ch.g, "mS_per_cm2")} erev={_q(ch.E, "mV")} ion="non_specific"/>')
    diameter = math.sqrt(common.AREA_UM2 / math.pi)
    notes = f"Written by hhsym.export.to_neuroml from the model {model.name!r}."
    if model.rate_params:
        notes += " Rate parameters (substituted): " + ", ".join(f"{k} = {fmt(v)}" for k, v in model.rate_params.items())
    cell = f'''    <cell id="{cell_id}">
        <notes>{_escape(notes)}</notes>
        <morphology id="{cell_id}_morphology">
            <segment id="0" name="soma">
                <proximal x="0" y="0" z="0" diameter="{fmt(diameter)}"/>
                <distal x="0" y="0" z="0" diameter="{fmt(diameter)}"/>
            </segment>
        </morphology>
        <biophysicalProperties id="{cell_id}_biophysics">
            <membraneProperties>
{chr(10).join(densities)}
                <spikeThresh value="0mV"/>
                <specificCapacitance value={_q(model.params["C_m"], "uF_per_cm2")}/>
                <initMembPotential value={_q(v_init, "mV")}/>
            </membraneProperties>
            <intracellularProperties>
                <resistivity value="100ohm_cm"/>
            </intracellularProperties>
        </biophysicalProperties>
    </cell>'''
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<neuroml {_NS} id="{cell_id}_doc">\n'
            + "\n".join(channels + [cell] + types) + "\n</neuroml>\n")


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ----------------------------------------------------------------------------- entry point
def to_neuroml(model, path, stimulus=None, t_stop=None, dt=0.0005, prefix="hhsym_"):
    """Write ``model`` as a NeuroML 2 cell and a LEMS simulation file beside it.

    Parameters
    ----------
    model : hhsym.ConductanceModel
        Any conductance-based model; rate parameters are written as their values.
    path : str or os.PathLike
        The NeuroML file (ending in ``.nml``); its folder must exist.  The
        LEMS file ``LEMS_<stem>.xml`` is written in the same folder.
    stimulus : None, str, os.PathLike, (t, I) pair or hhsym.stimuli.Stimulus, optional
        Current injected by the LEMS simulation (µA/cm², t in ms, linear between
        samples): none (default), a CSV file with the header ``t,I``, two
        arrays, or an hhsym stimulus (sampled every 0.025 ms).
    t_stop : float, optional
        Simulated duration (ms); default the last stimulus sample (100 ms
        without a stimulus).
    dt : float
        Step of jLEMS (ms, default 0.0005).  jNeuroML integrates with forward
        Euler, whose error grows with the step: 0.0005 ms keeps HH spike times
        within ~0.1 ms over 200 ms of firing (0.01 ms drifts by ~1.5 ms).
    prefix : str
        Start of the ids of channels, custom rate types and simulation elements.

    Returns
    -------
    dict
        ``{"nml": path, "lems": path of the LEMS file, "output": path of the
        voltage file the LEMS simulation writes}`` (read it with :func:`read_lems_output`).

    Raises
    ------
    InvalidArgumentError
        If ``model`` is not a ConductanceModel, a path cannot be written, or
        ``stimulus``/``t_stop``/``dt`` are invalid.
    ModelError
        If a rate uses a construct LEMS cannot express here.

    Notes
    -----
    The cell is a sphere of area 100 µm², so 1 µA/cm² is injected as 1 pA.
    It starts at the resting state of the model under the first current sample.

    Examples
    --------
    >>> import hhsym, hhsym.export, tempfile, os
    >>> files = hhsym.export.to_neuroml(hhsym.library.hodgkin_huxley(),
    ...                                 os.path.join(tempfile.mkdtemp(), "hh.nml"))
    >>> os.path.basename(files["lems"])
    'LEMS_hh.xml'
    """
    import re

    from hhsym.export import lems
    from hhsym.simulate import resting_state

    common.check_exportable(model, "to_neuroml")
    path = files.check_file(path, "path", suffix=".nml")
    if not isinstance(prefix, str) or not re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", prefix):
        raise invalid("prefix", prefix, "letters, digits and '_', not starting with a digit (e.g. 'hhsym_')")
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) or not math.isfinite(dt) or dt <= 0:
        raise invalid("dt", dt, "a positive finite step (ms)")
    t, I, t_stop = lems.stimulus_samples(stimulus, t_stop)
    if dt > t_stop:
        raise invalid("dt", dt, f"a step no larger than t_stop={t_stop:g} ms")
    folder, name = os.path.split(path)
    stem = name[: -len(".nml")]
    cell_id = files.slug(prefix + stem)
    v_init = float(resting_state(model, I0=float(I[0]))["V"][0])
    nml = nml_text(model, cell_id, v_init, prefix)
    lems_path = os.path.join(folder, f"LEMS_{stem}.xml")
    output = f"{stem}.v.dat"
    text = lems.lems_text(name, cell_id, t, I, t_stop, float(dt), output, prefix)
    files.write_text(path, nml)
    files.write_text(lems_path, text)
    return {"nml": path, "lems": lems_path, "output": os.path.join(folder, output)}


def read_lems_output(path):
    """Read the voltage file of the LEMS simulation: ``(t, V)`` in ms and mV.

    Parameters
    ----------
    path : str or os.PathLike
        The ``<stem>.v.dat`` file (t in s, V in V).

    Returns
    -------
    t, V : ndarray
        Time (ms) and membrane potential (mV).
    """
    from hhsym.export import lems

    return lems.read_lems_output(path)
