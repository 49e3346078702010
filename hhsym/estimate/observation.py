r"""What a current-clamp amplifier records: the membrane potential plus an offset and a bridge error.

.. math::

    V_\mathrm{rec}(t) = V_m(t) + V_\mathrm{offset} + R_\mathrm{bridge}\, I(t)

* :math:`V_\mathrm{offset}` (mV): a constant offset, e.g. the liquid-junction
  potential left uncorrected.  When every reversal potential and every
  channel's shift :math:`\Delta V_c` are free it is absorbed exactly by them
  (the model shifted as a whole), so :class:`~hhsym.estimate.CellEstimator`
  frees it only on request.
* :math:`R_\mathrm{bridge}` (MΩ): the part of the electrode's series
  resistance the bridge balance did not remove (negative when
  over-compensated).  Its drop follows the injected current :math:`I` (pA)
  instantly: 1 MΩ · 1 pA = 1 µV, so 10 MΩ under a 300 pA step shifts the
  recorded potential by 3 mV for the whole step — a jump at each step edge
  that no membrane can make (measured on pyABF's 171116sh_0018: about 12 MΩ).

A model predicts the recorded potential by adding both to its own :math:`V_m`
(:func:`recorded_potential`) and starts from the membrane potential under the
first sample (:func:`membrane_potential`).  The two parameters belong to the
recording, not to the cell: a fitted model exported alone (JSON, NMODL, …)
carries neither.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAMES", "BOX", "recorded_potential", "membrane_potential", "values"]

#: The observation parameters, in the order they are reported: mV, MΩ.
NAMES = ("V_offset", "R_bridge")
#: Default half-widths of their search box around 0 (mV, MΩ).
BOX = {"V_offset": 10.0, "R_bridge": 20.0}
#: mV per MΩ·pA.
_MV_PER_MOHM_PA = 1e-3


def values(params):
    """The observation parameters in ``params`` (a mapping of floats or arrays), 0.0 where absent.

    Returns
    -------
    dict
        ``{"V_offset": mV, "R_bridge": MΩ}``.
    """
    return {n: params.get(n, 0.0) for n in NAMES}


def recorded_potential(V_m, I_pA, V_offset=0.0, R_bridge=0.0):
    """The potential the amplifier records (mV).

    Parameters
    ----------
    V_m : array_like
        Membrane potential (mV).
    I_pA : array_like or None
        Injected current (pA) at the same times; None only when ``R_bridge`` is 0.
    V_offset : float or array_like
        Offset (mV).
    R_bridge : float or array_like
        Uncompensated series resistance (MΩ).

    Returns
    -------
    ndarray
        ``V_m + V_offset + R_bridge * I_pA * 1e-3``.
    """
    out = np.asarray(V_m, dtype=float) + V_offset
    if np.any(np.asarray(R_bridge) != 0.0):
        out = out + _MV_PER_MOHM_PA * np.asarray(R_bridge) * np.asarray(I_pA, dtype=float)
    return out


def membrane_potential(V_rec, I_pA, V_offset=0.0, R_bridge=0.0):
    """The membrane potential (mV) under a recorded one: the inverse of :func:`recorded_potential`."""
    out = np.asarray(V_rec, dtype=float) - V_offset
    if np.any(np.asarray(R_bridge) != 0.0):
        out = out - _MV_PER_MOHM_PA * np.asarray(R_bridge) * np.asarray(I_pA, dtype=float)
    return out
