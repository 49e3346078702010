"""Published conductance-based models, as data, each with its citation."""

from __future__ import annotations

from hhsym.errors import UnknownNameError
from hhsym.model import Channel, ConductanceModel, Gate

__all__ = ["hodgkin_huxley", "MODELS", "get_model"]

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


#: Models by the short names the command line accepts.
MODELS = {"hh": hodgkin_huxley}


def get_model(name, **overrides):
    """Look a library model up by its short name (``"hh"``).

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
