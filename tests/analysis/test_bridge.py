"""The bridge error measured at step edges (hhsym.analysis.bridge)."""

from pathlib import Path

import numpy as np
import pytest

from hhsym.analysis.bridge import bridge_from_edges, edge_resistances
from hhsym.errors import InvalidArgumentError
from hhsym.estimate.observation import recorded_potential
from hhsym.library import hodgkin_huxley
from hhsym.simulate import simulate
from hhsym.stimuli import Step

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
AREA = 1e-4  # cm²: 1 µA/cm² is 100 pA


@pytest.fixture(scope="module")
def sweeps():
    """HH under a hyperpolarising, a subthreshold and a spiking step, as recorded through 12 MΩ."""
    hh = hodgkin_huxley()
    out = {}
    for dt in (0.05, 0.25):  # 20 kHz and 4 kHz
        runs = []
        for amp in (-3.0, 2.0, 10.0):
            tr = simulate(hh, Step(amp, 50.0, 150.0), 200.0, dt=0.025, dt_out=dt)
            I_pA = np.asarray(tr.I) * 1e6 * AREA
            runs.append((recorded_potential(tr.V, I_pA, 0.0, 12.0), I_pA))
        out[dt] = runs
    return out


@pytest.mark.parametrize("dt, tol", [(0.05, 0.3), (0.25, 1.5)])
def test_the_jump_at_step_edges_gives_the_bridge_error(sweeps, dt, tol):
    assert bridge_from_edges(sweeps[dt]) == pytest.approx(12.0, abs=tol)
    # the spiking step's edges are measured only where no spike is near: its onset, not its end mid-train
    edges = [edge_resistances(V, I) for V, I in sweeps[dt]]
    assert [len(e) for e in edges[:2]] == [2, 2] and len(edges[2]) >= 1


def test_no_edges_no_estimate_and_bad_input_is_named(sweeps):
    V, I = sweeps[0.05][1]
    assert bridge_from_edges([(V, np.zeros_like(I))]) is None
    with pytest.raises(InvalidArgumentError, match="V, I_pA"):
        edge_resistances(V, I[:-1])


@pytest.mark.skipif(not (DATA / "pyabf" / "171116sh_0018.abf").is_file(), reason=f"shared recordings not found in {DATA}")
def test_a_real_recording_with_a_bridge_error():
    """pyABF's 171116sh_0018 (20 kHz, pA): 74 edges, 9-15 MΩ (the small steps' ratios are coarse: V is
    stored in steps of ~0.03 mV), 80 % of them within 10.5-13.5 MΩ, median 11.7."""
    from hhsym.io.reader import read

    rec = read(DATA / "pyabf" / "171116sh_0018.abf")
    R = [r for V, I in zip(rec.V, rec.I) for _, _, r in edge_resistances(V, I)]
    assert len(R) > 30 and 10.5 < np.percentile(R, 10) and np.percentile(R, 90) < 13.5
    assert bridge_from_edges(zip(rec.V, rec.I)) == pytest.approx(11.7, abs=0.5)
