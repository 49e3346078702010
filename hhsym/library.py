"""Published conductance-based models, as data, each with its citation."""

from __future__ import annotations

from hhsym import channels
from hhsym.errors import UnknownNameError
from hhsym.model import CalciumPool, Channel, ConductanceModel, Gate

__all__ = ["hodgkin_huxley", "pospischil_rs", "pospischil_extended", "MODELS", "get_model"]

HH_CITATION = (
    "Hodgkin AL, Huxley AF (1952). A quantitative description of membrane current and its "
    "application to conduction and excitation in nerve. J Physiol 117(4):500-544. "
    "doi:10.1113/jphysiol.1952.sp004764 (modern convention, rest near -65 mV)"
)

_HH_DEFAULTS = {
    "C_m": 1.0,
    "g_Na": 120.0,
    "E_Na": 50.0,
    "g_K": 36.0,
    "E_K": -77.0,
    "g_L": 0.3,
    "E_L": -54.387,
}


def hodgkin_huxley(**overrides):
    r"""The Hodgkin–Huxley (1952) squid-axon model in the modern convention.

    Parameters
    ----------
    **overrides : float
        Any of ``C_m`` (µF/cm²), ``g_Na``, ``g_K``, ``g_L`` (mS/cm²),
        ``E_Na``, ``E_K``, ``E_L`` (mV).  Defaults: C_m = 1, g_Na = 120,
        g_K = 36, g_L = 0.3, E_Na = 50, E_K = -77, E_L = -54.387.

    Returns
    -------
    ConductanceModel
        States ``V, m, h, n``; sodium :math:`m^3 h`, potassium :math:`n^4`, leak.

    Notes
    -----
    Rates (1/ms, V in mV):
    :math:`\alpha_n = 0.01 (V+55)/(1 - e^{-(V+55)/10})`, :math:`\beta_n = 0.125 e^{-(V+65)/80}`,
    :math:`\alpha_m = 0.1 (V+40)/(1 - e^{-(V+40)/10})`, :math:`\beta_m = 4 e^{-(V+65)/18}`,
    :math:`\alpha_h = 0.07 e^{-(V+65)/20}`, :math:`\beta_h = 1/(1 + e^{-(V+35)/10})`.
    """
    unknown = sorted(set(overrides) - set(_HH_DEFAULTS))
    if unknown:
        raise UnknownNameError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for hodgkin_huxley: "
            f"accepted names are {', '.join(_HH_DEFAULTS)}"
        )
    p = {**_HH_DEFAULTS, **overrides}
    sodium = Channel(
        "Na",
        g=p["g_Na"],
        E=p["E_Na"],
        gates=[
            Gate("m", "0.1*(V + 40)/(1 - exp(-(V + 40)/10))", "4*exp(-(V + 65)/18)", power=3),
            Gate("h", "0.07*exp(-(V + 65)/20)", "1/(1 + exp(-(V + 35)/10))", power=1),
        ],
    )
    potassium = Channel(
        "K",
        g=p["g_K"],
        E=p["E_K"],
        gates=[Gate("n", "0.01*(V + 55)/(1 - exp(-(V + 55)/10))", "0.125*exp(-(V + 65)/80)", power=4)],
    )
    leak = Channel("L", g=p["g_L"], E=p["E_L"])
    # Validation of values (finite, g >= 0, C_m > 0) happens in the constructors.
    return ConductanceModel(
        [sodium, potassium, leak], C_m=p["C_m"], name="Hodgkin-Huxley 1952", citation=HH_CITATION
    )


def pospischil_rs(**overrides):
    r"""Regular-spiking cortical cell of Pospischil et al. (2008): Na, Kd, M-current, leak.

    Parameters
    ----------
    **overrides : float
        Any parameter of the model (see ``pospischil_rs().params``): ``C_m`` (µF/cm²),
        ``g_Na``, ``g_Kd``, ``g_M``, ``g_L`` (mS/cm²), ``E_Na``, ``E_Kd``, ``E_M``, ``E_L`` (mV).

    Returns
    -------
    ConductanceModel
        States ``V, m, h, n, p``.

    Notes
    -----
    Values of the paper's ModelDB demo (accession 123623, ``sPY_template``): C_m = 1,
    g_Na = 50, g_Kd = 5, g_M = 0.07, g_L = 0.1 mS/cm², E_Na = 50, E_K = -100, E_L = -70 mV,
    V_T = -55 mV, tau_max = 1000 ms (36 °C).  Channels: :func:`hhsym.channels.traub_sodium`,
    :func:`~hhsym.channels.traub_potassium`, :func:`~hhsym.channels.m_current`.
    """
    model = ConductanceModel(
        [channels.traub_sodium(), channels.traub_potassium(), channels.m_current(), Channel("L", 0.1, -70.0)],
        C_m=1.0, name="Pospischil 2008 RS", citation=channels.POSPISCHIL_2008,
    )
    return model.with_params(**overrides) if overrides else model


EXTENDED_CITATION = (
    "Composite model (not a published cell): the regular-spiking cell of " + channels.POSPISCHIL_2008
    + "; plus CaL (Reuveni et al. 1993, as in Pospischil et al. 2008), a calcium pool and IAHP "
    "(Destexhe et al. 1994, J Neurophysiol 72:803-818), Ih (Kole et al. 2006, J Neurosci 26:1677-1687), "
    "IA (Connor & Stevens 1971, J Physiol 213:31-53) and INaP (Magistretti & Alonso 1999, "
    "J Gen Physiol 114:491-509); see hhsym.channels.CITATIONS"
)


def pospischil_extended(**overrides):
    r"""Pospischil et al.'s regular-spiking cell with seven more currents and a calcium pool.

    Na, Kd, M (as :func:`pospischil_rs`), high-threshold CaL feeding a calcium pool ``Ca``
    (mM; Destexhe et al. 1994: depth 0.1 µm, tau 5 ms, resting 2.4e-4 mM), the
    calcium-activated IAHP (KCa), Ih, A-type K+ and persistent Na+, and a leak.

    Parameters
    ----------
    **overrides : float
        Any parameter of the model (see ``pospischil_extended().params``), e.g. ``g_KCa``
        (mS/cm²) or ``tau_Ca`` (ms).

    Returns
    -------
    ConductanceModel
        States ``V, m, h, n, p, q, r, w, mh, a, b, mp, hp, Ca``.

    Notes
    -----
    A composite for exercising every channel of :mod:`hhsym.channels` in one cell, not a
    published model: the conductances of the added currents (CaL 0.1, KCa 0.3, Ih 0.08,
    A 1.0, NaP 0.01 mS/cm²) are illustrative.  Reversal potentials: E_CaL = 120,
    E_KCa = E_A = -100, E_Ih = -45, E_NaP = 50 mV.
    """
    cells = [
        channels.traub_sodium(), channels.traub_potassium(), channels.m_current(),
        channels.l_calcium(g=0.1), channels.kca_destexhe(g=0.3), channels.ih_kole(g=0.08),
        channels.a_connor_stevens(g=1.0, E=-100.0), channels.nap_magistretti(g=0.01),
        Channel("L", 0.1, -70.0),
    ]
    pool = CalciumPool("Ca", ("CaL",), tau=5.0, depth=0.1, Ca_inf=2.4e-4)
    model = ConductanceModel(cells, C_m=1.0, name="Pospischil RS extended", citation=EXTENDED_CITATION,
                             pools=[pool])
    return model.with_params(**overrides) if overrides else model


#: Models by the short names the command line accepts.
MODELS = {"hh": hodgkin_huxley, "pospischil_rs": pospischil_rs, "pospischil_extended": pospischil_extended}


def get_model(name, **overrides):
    """Look a library model up by its short name (``"hh"``, ``"pospischil_rs"``, ``"pospischil_extended"``).

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    **overrides : float
        Parameter values passed to the model's constructor.

    Returns
    -------
    ConductanceModel
    """
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}: accepted names are {', '.join(MODELS)}")
    return MODELS[name](**overrides)
