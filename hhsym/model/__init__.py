r"""Conductance-based (Hodgkin–Huxley-type) models as symbolic data.

A model is a membrane capacitance and a list of ohmic channels.  Channel
:math:`k` has a maximal conductance :math:`\bar g_k` (mS/cm²), a reversal
potential :math:`E_k` (mV) and gates :math:`x_j` raised to integer powers
:math:`p_j`; each gate obeys

.. math:: \frac{dx}{dt} = \alpha_x(V)\,(1 - x) - \beta_x(V)\,x

with rates :math:`\alpha_x, \beta_x` (1/ms) given as sympy expressions in
:data:`hhsym.symbolic.V`.  The membrane equation is

.. math:: C_m \frac{dV}{dt} = I - \sum_k \bar g_k \prod_j x_j^{p_j} (V - E_k).

A model may also carry calcium pools (:class:`CalciumPool`): non-gate
states (mM) with their own ODE, driven by channel currents, whose names gate
rates may use (e.g. a calcium-activated potassium channel).

Models are immutable: :meth:`ConductanceModel.with_params` and
:meth:`ConductanceModel.with_rates` return new models.
"""

from hhsym.model.conductance import ConductanceModel, check_model
from hhsym.model.gating import RATE_CHECK_RANGE, gating_from_rates, partner_rate
from hhsym.model.parts import Channel, Gate
from hhsym.model.pools import CalciumPool
from hhsym.symbolic import V

__all__ = ["Gate", "Channel", "CalciumPool", "ConductanceModel", "V", "gating_from_rates", "partner_rate", "check_model",
           "RATE_CHECK_RANGE"]
