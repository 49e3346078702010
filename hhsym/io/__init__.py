"""Lab recordings in: ABF, NWB, Igor IBW and hhsym's CSV/NPZ, in whole-cell units.

:func:`read` returns a :class:`Recording` (t ms, V mV, I pA); :meth:`Recording.to_traces` turns
it into hhsym traces (µA/cm²) through a stated or estimated membrane area.
:func:`passive_properties` measures the passive cell and its artefacts, :func:`noise` the
recording noise; :func:`hhsym.io.features.features` the electrophysiology features (through
eFEL) and :func:`hhsym.io.inspect.inspect` the summary behind ``hhsym inspect``.
:func:`load_for_cli` reads any of these files for the command line.

The readers (pyabf, pynwb, igor2), eFEL and matplotlib load only when used.
"""

from hhsym.io.reader import read
from hhsym.io.recording import Recording

__all__ = ["read", "Recording", "passive_properties", "noise", "load_for_cli"]


def __getattr__(name):
    if name == "passive_properties":
        from hhsym.io.passive import passive_properties

        return passive_properties
    if name == "noise":
        from hhsym.io.features import noise

        return noise
    if name == "load_for_cli":
        from hhsym.io.cli import load_for_cli

        return load_for_cli
    raise AttributeError(f"module 'hhsym.io' has no attribute {name!r}")
