"""Export conductance-based models to the simulators the field uses.

* :func:`to_nmodl` — NEURON: one NMODL ``.mod`` file per channel (and one for a
  calcium pool, as ``cai``) and ``run_neuron.py``.
* :func:`to_brian2` — Brian2: one script ``FILE.py STIM.csv OUT.csv``.
* :func:`to_neuroml` — NeuroML 2 (cell and channels) plus a LEMS simulation file for jNeuroML.

Every exporter writes the model's numbers (C_m µF/cm², g mS/cm², E mV, rate
parameters substituted into the rates, rates in 1/ms of V in mV), evaluates
removable (0/0) singularities of linoid rates at their exact limits, and writes
its files atomically.  The runners read a stimulus CSV with the header ``t,I``
(ms, µA/cm², linear between samples) and write ``t,V`` (ms, mV).  Brian2 writes
calcium pools as states; NeuroML does not write them yet (a model with one
raises :class:`~hhsym.errors.UnsupportedModelError`).
"""

from hhsym.export.brian2 import to_brian2
from hhsym.export.neuroml import read_lems_output, to_neuroml
from hhsym.export.nmodl import to_nmodl

__all__ = ["to_nmodl", "to_brian2", "to_neuroml", "read_lems_output"]
