"""Tests of CellEstimator (hhsym.estimate.cell_estimator) and the cell route of ``hhsym fit``."""

import os
import subprocess
import sys
import warnings

import pytest

import hhsym
from hhsym.errors import ArgumentTypeError, InvalidArgumentError, NotFittedError, PoorFitWarning
from hhsym.estimate import CellEstimator
from hhsym.estimate.spiking import kinetic_template
from hhsym.library import hodgkin_huxley
from hhsym.metrics import rate_errors
from hhsym.simulate import simulate
from hhsym.stimuli import Step

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


@pytest.fixture(scope="module")
def hh():
    return hodgkin_huxley()


def _cell(truth, amps=(-4.0, 4.0, 8.0, 14.0, 25.0, 40.0)):
    """Whole 'sweeps' of a synthetic cell: 200 ms steps from rest, sampled at 10 kHz."""
    return [simulate(truth, Step(a, 20.0, 220.0), 240.0, dt=0.025, dt_out=0.1) for a in amps]


@pytest.mark.slow
def test_known_scalars_and_kinetics_come_back(hh):
    """A synthetic cell (HH with its Na gates 1.3x faster, K's rates shifted by +3 mV, and other scalars),
    six 200 ms steps: the rates within 10 % where they matter, g_Na, g_K, E_L and C_m within 5 % (the
    issue's synthetic-cell target); g_L, which only the subthreshold potential sets (2 mV tolerance in
    the score), within 10 % (measured 8.8 %; 3.3 % with the 25 % box on C_m).

    One differential-evolution run can stop in a nearby optimum: with the 25 % box on C_m, seed 1 ends
    at score 0.048 with g_K 26 % off, seed 2 at 0.006 with every scalar within 2 % (notes/issue17.md).
    The score tells the two apart, so the test asks for the converged score as well."""
    truth = kinetic_template(hh).with_params(g_Na=110.0, g_K=32.0, g_L=0.3, E_L=-58.0, C_m=1.2,
                                             phi_Na=1.3, dV_K=3.0)
    free = "g_Na,g_K,g_L,E_L,C_m,phi_Na,dV_Na,phi_K,dV_K"
    est = CellEstimator(hh, free=free, generations=250, time_limit=600, random_state=2).fit(_cell(truth))
    assert est.quality_.ok, est.summary()
    assert est.score_ < 0.02 < est.start_score_
    for name in ("g_Na", "g_K", "C_m"):
        assert est.params_[name] == pytest.approx(truth.params[name], rel=0.05), name
    assert est.params_["g_L"] == pytest.approx(0.3, rel=0.10)
    assert est.params_["E_L"] == pytest.approx(-58.0, abs=0.05 * 58.0)
    errs = rate_errors(est.model_, truth, v_range=(-75.0, 20.0), min_share=0.05)
    assert max(errs.values()) < 0.10, errs


def test_round_trip_summary_and_errors(hh, tmp_path):
    truth = kinetic_template(hh).with_params(g_Na=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        est = CellEstimator(hh, free="g_Na,g_K", generations=3, popsize=2, time_limit=30).fit(_cell(truth)[:2])
    assert set(est.params_) == {"g_Na", "g_K"} and len(est.errors_) == 2
    assert "g_Na" in est.summary() and est.quality_.verdict in ("good", "poor")
    path = tmp_path / "cell.npz"
    est.save(path)
    back = hhsym.load(path)
    assert isinstance(back, CellEstimator)
    assert back.params_ == est.params_ and back.errors_ == est.errors_ and back.score_ == est.score_
    assert back.model_.params == est.model_.params and back.model_.rates == est.model_.rates
    assert back.quality_ == est.quality_ and back.summary() == est.summary()


def test_whole_cell_frees_scalars_and_kinetics(hh):
    from hhsym.estimate.cell_estimator import _free_names

    names = _free_names(kinetic_template(hh), "whole-cell", True, lab=False)
    assert set(names) == {"g_Na", "E_Na", "g_K", "E_K", "g_L", "E_L", "C_m", "phi_Na", "dV_Na", "phi_K", "dV_K"}
    assert "phi_Na" not in _free_names(hh, "whole-cell", False, lab=False)
    # on lab recordings (pA) the bridge error is free too
    assert "R_bridge" in _free_names(hh, "whole-cell", False, lab=True)


def test_bad_parameters_are_named(hh):
    data = _cell(hh, amps=(5.0,))
    with pytest.raises(InvalidArgumentError, match="generations"):
        CellEstimator(hh, generations=0).fit(data)
    with pytest.raises(InvalidArgumentError, match="model"):
        CellEstimator("hh").fit(data)
    with pytest.raises(InvalidArgumentError, match="free"):
        CellEstimator(hh, free="g_X").fit(data)
    with pytest.raises(NotFittedError):
        CellEstimator(hh).summary()


@pytest.mark.slow  # a real fit on a lab file
def test_fit_files_routes_lab_files_to_the_cell_estimator(tmp_path):
    """``route="auto"`` takes the cell route for an ABF; an option of the other route is named."""
    from hhsym.estimate.files import fit_files

    abf = os.path.join(DATA, "pyabf", "File_axon_5.abf")
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorFitWarning)
        est, traces = fit_files(abf, tmp_path / "fit.npz", "hh", sweeps="7", log=lines.append,
                                free="g_Na,g_K,g_L,E_L,C_m", generations=2, popsize=2, time_limit=20)
    assert isinstance(est, CellEstimator) and len(traces) == 1
    assert any(line.startswith("route: cell") for line in lines)
    assert est.membrane_area_ and isinstance(hhsym.load(tmp_path / "fit.npz"), CellEstimator)
    with pytest.raises(ArgumentTypeError, match="hidden"):
        fit_files(abf, tmp_path / "fit2.npz", "hh", sweeps="7", hidden=(4,))
    with pytest.raises(InvalidArgumentError, match="route"):
        fit_files(abf, tmp_path / "fit3.npz", "hh", route="fast")


@pytest.mark.slow  # a real fit on a lab file
def test_cli_fit_on_a_lab_file_writes_a_cell_fit(tmp_path):
    abf = os.path.join(DATA, "pyabf", "File_axon_5.abf")
    out = tmp_path / "fit.npz"
    proc = subprocess.run([sys.executable, "-m", "hhsym", "fit", abf, "--sweeps", "7", "--out", str(out),
                           "--free", "g_Na,g_K,g_L,E_L,C_m,phi_K", "--kinetics", "K", "--bridge", "edges", "--time-limit", "10",
                           "--accept-poor-fit", "--quiet"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "route: cell" in proc.stdout and "CellEstimator on" in proc.stdout
    fit = hhsym.load(out)
    assert isinstance(fit, CellEstimator) and fit.kinetics == "K" and "phi_Na" not in fit.model_.params
    assert fit.bridge == "edges" and fit.observation_ == {"V_offset": 0.0, "R_bridge": fit.bridge_edges_}


@pytest.mark.slow  # compiles the eight-channel pool model
def test_a_template_with_a_calcium_pool_is_accepted():
    """The cell route only simulates, so a template with a calcium pool (KCa) is fitted like any other."""
    from hhsym.library import pospischil_extended

    m = pospischil_extended()
    trs = [simulate(m, Step(3.0, 20.0, 220.0), 240.0, dt=0.025, dt_out=0.1)]
    est = CellEstimator(m, generations=2, popsize=2, time_limit=60).fit(trs)
    assert "phi_KCa" in est.params_ and "E_CaL" not in est.params_  # calcium's E is kept
    assert est.score_ <= est.start_score_ < 0.01  # the template is the truth here


def test_a_bridge_error_is_fitted_saved_and_added_in_validation(hh, tmp_path):
    """A lab recording (pA) whose V carries 12 MΩ of uncompensated series resistance: the cell route
    finds it, saves it, and validate_fit adds it to the model's V on held-out sweeps."""
    from hhsym.analysis.validation import validate_fit
    from hhsym.estimate.observation import recorded_potential
    from hhsym.io.recording import Recording

    area = 1e-4  # cm²
    runs = _cell(hh, amps=(-4.0, 4.0, 10.0, 20.0))
    I_pA = [r.I * 1e6 * area for r in runs]
    V = [recorded_potential(r.V, i, 0.0, 12.0) for r, i in zip(runs, I_pA)]
    rec = Recording(runs[0].t, V, I_pA, {"file": "bridge.abf", "sweep_numbers": [0, 1, 2, 3]})
    train = rec.select([0, 2]).to_traces(area_cm2=area)
    est = CellEstimator(hh, free="g_L,R_bridge", kinetics=False, generations=30).fit(train)
    assert est.observation_ == {"V_offset": 0.0, "R_bridge": pytest.approx(12.0, abs=0.5)}
    est.save(tmp_path / "fit.npz")
    loaded = hhsym.load(tmp_path / "fit.npz")
    assert loaded.observation_ == est.observation_
    assert est.bridge_edges_ == pytest.approx(12.0, abs=1.0) and loaded.bridge_edges_ == est.bridge_edges_
    assert "step edges, model-free" in loaded.summary()
    res = validate_fit(loaded, rec, sweeps=[1, 3])
    assert res.to_dict()["fit"]["observation"] == loaded.observation_
    assert all(s["subthreshold_rms_mV"] < 0.3 for s in res.sweeps)
    assert res.sweeps[1]["model"]["n_spikes"] == res.sweeps[1]["recorded"]["n_spikes"]
    # without the bridge the held-out step sweeps sit 12 mV·nA off
    bare = validate_fit(loaded.model_, rec, sweeps=[1, 3], area=area)
    assert bare.sweeps[0]["subthreshold_rms_mV"] > 2.0


def test_kinetics_can_be_learned_for_some_channels_and_kept_for_others(hh):
    est = CellEstimator(hh, free="g_K,phi_K,dV_K", kinetics="K", generations=2).fit(_cell(hh, amps=(10.0,)))
    assert "phi_K" in est.model_.params and "phi_Na" not in est.model_.params
    with pytest.raises(ArgumentTypeError, match="kinetics"):
        CellEstimator(hh, kinetics=3).fit(_cell(hh, amps=(10.0,)))
    with pytest.raises(InvalidArgumentError, match="channels"):
        CellEstimator(hh, kinetics=("L",)).fit(_cell(hh, amps=(10.0,)))


def test_the_bridge_can_be_held_at_the_edges_or_a_value(hh):
    """bridge="edges" holds R_bridge at the step edges' value, a number at that value; both are saved."""
    from hhsym.estimate.observation import recorded_potential
    from hhsym.io.recording import Recording

    area = 1e-4
    runs = _cell(hh, amps=(-4.0, 10.0))
    I_pA = [r.I * 1e6 * area for r in runs]
    rec = Recording(runs[0].t, [recorded_potential(r.V, i, 0.0, 12.0) for r, i in zip(runs, I_pA)], I_pA,
                    {"file": "bridge.abf", "sweep_numbers": [0, 1]})
    traces = rec.to_traces(area_cm2=area)
    edges = CellEstimator(hh, free="g_L", kinetics=False, bridge="edges", generations=3).fit(traces)
    assert edges.observation_["R_bridge"] == edges.bridge_edges_ == pytest.approx(12.0, abs=1.0)
    assert "R_bridge" not in edges.params_
    with pytest.warns(PoorFitWarning):  # 5 MΩ where the recording has 12: its spikes' peaks are 7 mV·nA off
        held = CellEstimator(hh, free="g_L", kinetics=False, bridge=5.0, generations=3).fit(traces)
    assert held.observation_ == {"V_offset": 0.0, "R_bridge": 5.0}
    for bad, cls in (("wide", InvalidArgumentError), (float("nan"), InvalidArgumentError), ([1], ArgumentTypeError)):
        with pytest.raises(cls, match="bridge"):
            CellEstimator(hh, bridge=bad).fit(traces)
    with pytest.raises(InvalidArgumentError, match="bridge.*no bridge"):  # densities have no bridge
        CellEstimator(hh, free="g_L", kinetics=False, bridge=5.0, generations=3).fit(runs)
