r"""A library of published ion channels, each with its citation.

Every function returns a :class:`~hhsym.model.Channel` in hhsym's units (V
in mV, rates in 1/ms, conductances in mS/cm², reversal potentials in mV); its
citation is in :data:`CITATIONS` under the function's name (also
:func:`citation`).  The defaults are the published values where the paper has
one; conductance defaults are illustrative and meant to be overridden.

Conventions
-----------
* Every gate in hhsym is a first-order kinetic variable
  :math:`dx/dt = \alpha(1-x) - \beta x`.  Forms published as steady state
  and time constant convert exactly: :math:`\alpha = x_\infty/\tau`,
  :math:`\beta = (1-x_\infty)/\tau`.
* There are no instantaneous gates.  Where a paper uses one, this library
  takes a kinetic form from another source instead (the persistent sodium
  current below has kinetic activation after Magistretti & Alonso 1999).
* Channels without inactivation (M, Ih, KCa) simply have one gate.
* Temperature factors are folded in at the temperature the source states
  (given in each docstring); lower bounds on time constants that some NEURON
  files add (``taumin``) are left out, so the rates stay smooth.
* Linoid rates such as :math:`a (V - V_0)/(1 - e^{-(V-V_0)/k})` are written
  as published; hhsym evaluates their removable singularities at the exact
  limit (:func:`hhsym.symbolic.safe_expression`), as for Hodgkin–Huxley's
  :math:`\alpha_m, \alpha_n`.
* Reversal potentials are constant (Pospischil et al. 2008 compute
  :math:`E_{Ca}` from Nernst's equation; here it is a fixed parameter).
* The calcium-activated potassium channel's rate uses the concentration of a
  calcium pool (:class:`~hhsym.model.CalciumPool`, state ``Ca`` in mM by
  default), which the model must carry (see
  :func:`hhsym.library.pospischil_extended`).
"""

from __future__ import annotations

import sympy

from hhsym.errors import UnknownNameError
from hhsym.model import Channel, Gate
from hhsym.symbolic import parse_expression

__all__ = ["traub_sodium", "traub_potassium", "m_current", "l_calcium", "ih_kole", "a_connor_stevens",
           "nap_magistretti", "kca_destexhe", "CITATIONS", "citation"]

POSPISCHIL_2008 = (
    "Pospischil M, Toledo-Rodriguez M, Monier C, Piwkowska Z, Bal T, Fregnac Y, Markram H, Destexhe A (2008). "
    "Minimal Hodgkin-Huxley type models for different classes of cortical and thalamic neurons. "
    "Biol Cybern 99(4-5):427-441. doi:10.1007/s00422-008-0263-8"
)

#: Citation of each channel function, by function name.
CITATIONS = {
    "traub_sodium": "Traub RD, Miles R (1991). Neuronal Networks of the Hippocampus. Cambridge University "
                    "Press; in the form of " + POSPISCHIL_2008,
    "traub_potassium": "Traub RD, Miles R (1991). Neuronal Networks of the Hippocampus. Cambridge University "
                       "Press; in the form of " + POSPISCHIL_2008,
    "m_current": "Yamada WM, Koch C, Adams PR (1989). Multiple channels and calcium dynamics. In: Koch C, "
                 "Segev I (eds) Methods in Neuronal Modeling, MIT Press, pp 97-133; in the form of "
                 + POSPISCHIL_2008,
    "l_calcium": "Reuveni I, Friedman A, Amitai Y, Gutnick MJ (1993). Stepwise repolarization from Ca2+ "
                 "plateaus in neocortical pyramidal cells. J Neurosci 13(11):4609-4621; in the form of "
                 + POSPISCHIL_2008,
    "ih_kole": "Kole MHP, Hallermann S, Stuart GJ (2006). Single Ih channels in pyramidal neuron dendrites: "
               "properties, distribution, and impact on action potential output. J Neurosci 26(6):1677-1687. "
               "doi:10.1523/JNEUROSCI.3664-05.2006 (rates as in Hay E et al. (2011) PLoS Comput Biol "
               "7(7):e1002107, ModelDB 139653, Ih.mod)",
    "a_connor_stevens": "Connor JA, Stevens CF (1971). Prediction of repetitive firing behaviour from voltage "
                        "clamp data on an isolated neurone soma. J Physiol 213(1):31-53; in the form of Dayan P, "
                        "Abbott LF (2001). Theoretical Neuroscience, MIT Press, section 6.2",
    "nap_magistretti": "Magistretti J, Alonso A (1999). Biophysical properties and slow voltage-dependent "
                       "inactivation of a sustained sodium current in entorhinal cortex layer-II principal "
                       "neurons. J Gen Physiol 114(4):491-509; rates as in Hay E et al. (2011) PLoS Comput "
                       "Biol 7(7):e1002107, ModelDB 139653, Nap_Et2.mod (q10 2.3, 21 -> 34 degC)",
    "kca_destexhe": "Destexhe A, Contreras D, Sejnowski TJ, Steriade M (1994). A model of spindle rhythmicity "
                    "in the isolated thalamic reticular nucleus. J Neurophysiol 72(2):803-818 (IAHP, "
                    "ModelDB iahp.mod; no taumin bound)",
}


def citation(name):
    """The citation of the library channel ``name`` (a function name of this module).

    Parameters
    ----------
    name : str
        E.g. ``"m_current"``.

    Returns
    -------
    str
    """
    if name not in CITATIONS:
        raise UnknownNameError(f"unknown channel {name!r}: accepted names are {', '.join(CITATIONS)}")
    return CITATIONS[name]


def _num(x):
    """A float as text that parses back to the same float (negative values parenthesised)."""
    text = repr(float(x))
    return f"({text})" if text.startswith("-") else text


def _inf_tau_gate(name, x_inf, tau, power):
    """A Gate from steady state ``x_inf`` and time constant ``tau`` (ms) texts: exact conversion."""
    return Gate(name, f"({x_inf})/({tau})", f"(1 - ({x_inf}))/({tau})", power)


def traub_sodium(g=50.0, E=50.0, VT=-55.0, name="Na", gates=("m", "h")):
    r"""Fast sodium current of Traub & Miles (1991), :math:`m^3 h`, as in Pospischil et al. (2008).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV).
    VT : float
        Threshold shift :math:`V_T` (mV); the rates are functions of :math:`V - V_T`.
    name : str
        Channel name (parameters ``g_<name>``, ``E_<name>``).
    gates : (str, str)
        Names of the activation and inactivation gates.

    Returns
    -------
    Channel

    Notes
    -----
    With :math:`u = V - V_T` (mV), rates in 1/ms:
    :math:`\alpha_m = -0.32(u-13)/(e^{-(u-13)/4}-1)`, :math:`\beta_m = 0.28(u-40)/(e^{(u-40)/5}-1)`,
    :math:`\alpha_h = 0.128 e^{-(u-17)/18}`, :math:`\beta_h = 4/(1+e^{-(u-40)/5})`.
    """
    u = f"(V - {_num(VT)})"
    m = Gate(gates[0], f"-0.32*({u} - 13)/(exp(-({u} - 13)/4) - 1)", f"0.28*({u} - 40)/(exp(({u} - 40)/5) - 1)", 3)
    h = Gate(gates[1], f"0.128*exp(-({u} - 17)/18)", f"4/(1 + exp(-({u} - 40)/5))", 1)
    return Channel(name, g, E, [m, h])


def traub_potassium(g=5.0, E=-100.0, VT=-55.0, name="Kd", gate="n"):
    r"""Delayed-rectifier potassium current of Traub & Miles (1991), :math:`n^4`, as in Pospischil et al. (2008).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV).
    VT : float
        Threshold shift :math:`V_T` (mV).
    name, gate : str
        Channel and gate names.

    Returns
    -------
    Channel

    Notes
    -----
    :math:`\alpha_n = -0.032(u-15)/(e^{-(u-15)/5}-1)`, :math:`\beta_n = 0.5 e^{-(u-10)/40}`, :math:`u = V - V_T`.
    """
    u = f"(V - {_num(VT)})"
    n = Gate(gate, f"-0.032*({u} - 15)/(exp(-({u} - 15)/5) - 1)", f"0.5*exp(-({u} - 10)/40)", 4)
    return Channel(name, g, E, [n])


def m_current(g=0.07, E=-100.0, tau_max=1000.0, name="M", gate="p"):
    r"""Slow non-inactivating potassium M-current (Kv7/KCNQ), :math:`p`, Yamada, Koch & Adams (1989).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²); Pospischil et al.'s regular-spiking demo uses 0.07.
    E : float
        Reversal potential (mV).
    tau_max : float
        Peak time constant (ms, at 36 °C).
    name, gate : str
        Channel and gate names.

    Returns
    -------
    Channel

    Notes
    -----
    :math:`p_\infty = 1/(1+e^{-(V+35)/10})`,
    :math:`\tau_p = \tau_{max}/(3.3 e^{(V+35)/20} + e^{-(V+35)/20})` (ms).
    """
    inf = "1/(1 + exp(-(V + 35)/10))"
    tau = f"{_num(tau_max)}/(3.3*exp((V + 35)/20) + exp(-(V + 35)/20))"
    return Channel(name, g, E, [_inf_tau_gate(gate, inf, tau, 1)])


def l_calcium(g=0.1, E=120.0, name="CaL", gates=("q", "r")):
    r"""High-threshold (L-type) calcium current, :math:`q^2 r`, Reuveni et al. (1993) as in Pospischil et al. (2008).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV), constant here.
    name : str
        Channel name; name it in a :class:`~hhsym.model.CalciumPool` to feed the pool.
    gates : (str, str)
        Names of the activation and inactivation gates.

    Returns
    -------
    Channel

    Notes
    -----
    Rates at 36 °C (1/ms): :math:`\alpha_q = 0.055(-27-V)/(e^{(-27-V)/3.8}-1)`,
    :math:`\beta_q = 0.94 e^{(-75-V)/17}`, :math:`\alpha_r = 0.000457 e^{(-13-V)/50}`,
    :math:`\beta_r = 0.0065/(e^{(-15-V)/28}+1)`.
    """
    q = Gate(gates[0], "0.055*(-27 - V)/(exp((-27 - V)/3.8) - 1)", "0.94*exp((-75 - V)/17)", 2)
    r = Gate(gates[1], "0.000457*exp((-13 - V)/50)", "0.0065/(exp((-15 - V)/28) + 1)", 1)
    return Channel(name, g, E, [q, r])


def ih_kole(g=0.08, E=-45.0, name="Ih", gate="mh"):
    r"""Hyperpolarisation-activated cation current Ih (HCN), :math:`m`, Kole et al. (2006).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV).
    name, gate : str
        Channel and gate names.

    Returns
    -------
    Channel

    Notes
    -----
    :math:`\alpha = 0.00643 (V+154.9)/(e^{(V+154.9)/11.9}-1)`, :math:`\beta = 0.193 e^{V/33.1}` (1/ms).
    """
    alpha = "0.00643*(V + 154.9)/(exp((V + 154.9)/11.9) - 1)"
    return Channel(name, g, E, [Gate(gate, alpha, "0.193*exp(V/33.1)", 1)])


def a_connor_stevens(g=47.7, E=-75.0, name="A", gates=("a", "b")):
    r"""Transient (A-type) potassium current, :math:`a^3 b`, Connor & Stevens (1971).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²); Dayan & Abbott's value 0.477 mS/mm² is the default.
    E : float
        Reversal potential (mV).
    name : str
        Channel name.
    gates : (str, str)
        Names of the activation and inactivation gates.

    Returns
    -------
    Channel

    Notes
    -----
    :math:`a_\infty = (0.0761 e^{(V+94.22)/31.84}/(1+e^{(V+1.17)/28.93}))^{1/3}`,
    :math:`\tau_a = 0.3632 + 1.158/(1+e^{(V+55.96)/20.12})`,
    :math:`b_\infty = (1+e^{(V+53.3)/14.54})^{-4}`,
    :math:`\tau_b = 1.24 + 2.678/(1+e^{(V+50)/16.027})` (ms).  The published :math:`a_\infty`
    exceeds 1 above +39.8 mV (by up to 1.4 % near +65 mV), which would make :math:`\beta_a`
    negative: it is capped at 1 (a ``Piecewise``).
    """
    # the published fit exceeds 1 above +39.8 mV (by up to 1.4 % near +65 mV): capped at 1 so that
    # beta >= 0, as a Piecewise (which every exporter writes; Min is not exportable)
    fit = parse_expression("(0.0761*exp((V + 94.22)/31.84)/(1 + exp((V + 1.17)/28.93)))^(1/3)", where="a_inf")
    a_inf = sympy.Piecewise((fit, fit < 1), (sympy.Integer(1), True))
    a_tau = parse_expression("0.3632 + 1.158/(1 + exp((V + 55.96)/20.12))", where="tau_a")
    a = Gate(gates[0], a_inf / a_tau, (1 - a_inf) / a_tau, 3)
    b_inf = "1/(1 + exp((V + 53.3)/14.54))^4"
    b_tau = "1.24 + 2.678/(1 + exp((V + 50)/16.027))"
    return Channel(name, g, E, [a, _inf_tau_gate(gates[1], b_inf, b_tau, 1)])


def nap_magistretti(g=0.01, E=50.0, name="NaP", gates=("mp", "hp")):
    r"""Persistent sodium current, :math:`m^3 h`, Magistretti & Alonso (1999) as in Hay et al. (2011).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV).
    name : str
        Channel name.
    gates : (str, str)
        Names of the activation and (slow) inactivation gates.

    Returns
    -------
    Channel

    Notes
    -----
    At 34 °C (:math:`q_t = 2.3^{1.3}`):
    :math:`m_\infty = 1/(1+e^{-(V+52.6)/4.6})`, :math:`\tau_m = 6/(q_t(\alpha_m+\beta_m))` with
    :math:`\alpha_m = 0.182(V+38)/(1-e^{-(V+38)/6})`, :math:`\beta_m = -0.124(V+38)/(1-e^{(V+38)/6})`;
    :math:`h_\infty = 1/(1+e^{(V+48.8)/10})`, :math:`\tau_h = 1/(q_t(\alpha_h+\beta_h))` with
    :math:`\alpha_h = -2.88\cdot10^{-6}(V+17)/(1-e^{(V+17)/4.63})`,
    :math:`\beta_h = 6.94\cdot10^{-6}(V+64.4)/(1-e^{-(V+64.4)/2.63})`.
    """
    qt = _num(2.3 ** 1.3)
    m_sum = "(0.182*(V + 38)/(1 - exp(-(V + 38)/6)) - 0.124*(V + 38)/(1 - exp((V + 38)/6)))"
    h_sum = "(-2.88e-6*(V + 17)/(1 - exp((V + 17)/4.63)) + 6.94e-6*(V + 64.4)/(1 - exp(-(V + 64.4)/2.63)))"
    m = _inf_tau_gate(gates[0], "1/(1 + exp(-(V + 52.6)/4.6))", f"6/({qt}*{m_sum})", 3)
    h = _inf_tau_gate(gates[1], "1/(1 + exp((V + 48.8)/10))", f"1/({qt}*{h_sum})", 1)
    return Channel(name, g, E, [m, h])


def kca_destexhe(g=0.1, E=-100.0, beta=0.03, Ca_half=0.025, pool="Ca", name="KCa", gate="w"):
    r"""Calcium-activated potassium current (slow AHP, SK-like), :math:`w^2`, Destexhe et al. (1994).

    Parameters
    ----------
    g : float
        Maximal conductance (mS/cm²).
    E : float
        Reversal potential (mV).
    beta : float
        Closing rate (1/ms) at 22 °C, the NEURON file's value; that file divides the time constant
        by :math:`3^{(T-22)/10}`, so pass ``beta=0.03 * 3**1.4`` for 36 °C.
    Ca_half : float
        Half-activating concentration (mM).
    pool : str
        Name of the calcium pool state the rate reads (mM).
    name, gate : str
        Channel and gate names.

    Returns
    -------
    Channel

    Notes
    -----
    Kinetic scheme closed + 2 Ca <-> open: :math:`\alpha = \beta ([Ca]/Ca_{1/2})^2`, :math:`\beta`
    constant, so :math:`w_\infty = c/(1+c)` and :math:`\tau_w = 1/(\beta(1+c))` with
    :math:`c = ([Ca]/Ca_{1/2})^2`.  Voltage-independent.
    """
    alpha = f"{_num(beta)}*({pool}/{_num(Ca_half)})^2"
    return Channel(name, g, E, [Gate(gate, alpha, _num(beta), 2)])
