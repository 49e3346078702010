"""hhsym validate / hhsym.validate_fit: held-out sweeps of real recordings and a self-consistency check."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import hhsym
from hhsym.cli import main
from hhsym.export.model_json import model_to_dict
from hhsym.io import Recording
from hhsym.library import hodgkin_huxley

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
B6 = DATA / "bluepyefe" / "B6_Ch3_IDRest_*.ibw"
ABF = DATA / "pyabf" / "171116sh_0018.abf"
needs_data = pytest.mark.skipif(not ABF.is_file() or not (DATA / "bluepyefe").is_dir(),
                                reason=f"shared recordings not found in {DATA}")

SIDE_KEYS = {"n_spikes", "n_spikes_step", "first_spike_latency_ms", "AP_peak_mV", "AP_half_width_ms",
             "AHP_depth_mV", "spike_times_ms"}
SWEEP_KEYS = {"index", "I_step_pA", "diverged", "recorded", "model", "gamma", "subthreshold_rms_mV",
              "subthreshold_samples"}


@pytest.fixture(scope="module")
def hh_json(tmp_path_factory):
    """Textbook HH as a model file (what 'hhsym distill --json' writes holds the same description)."""
    path = tmp_path_factory.mktemp("model") / "hh.json"
    path.write_text(json.dumps(model_to_dict(hodgkin_huxley())))
    return path


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


# ------------------------------------------------------------------ real recordings
@needs_data
def test_igor_sweeps_json_and_traces(hh_json, tmp_path, capsys):
    import igor2.binarywave as bw

    out, traces = tmp_path / "b6.json", tmp_path / "b6"
    code = main(["validate", str(hh_json), str(B6), "--sweeps", "183,185", "--capacitance", "86.55",
                 "--json", str(out), "--traces", str(traces)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "183" in printed and "median Γ" in printed
    res = json.loads(out.read_text())
    assert res["membrane_area"]["source"] == "capacitance"
    assert res["membrane_area"]["area_cm2"] == pytest.approx(86.55e-6)
    assert res["recording"]["sweeps"] == [183, 185] and res["recording"]["sampling_rate_hz"] == 4000.0
    assert set(res["summary"]) >= {"n_sweeps", "n_diverged", "n_spikes_recorded", "n_spikes_model",
                                   "spike_count_error", "median_gamma", "median_subthreshold_rms_mV"}
    assert [s["index"] for s in res["sweeps"]] == [183, 185]
    for s in res["sweeps"]:
        assert set(s) == SWEEP_KEYS and set(s["recorded"]) == SIDE_KEYS == set(s["model"])
        assert not s["diverged"] and -1.0 <= s["gamma"] <= 1.0 and s["subthreshold_rms_mV"] > 0
    assert [s["recorded"]["n_spikes"] for s in res["sweeps"]] == [68, 89]   # as 'hhsym inspect' counts
    assert res["fI"]["rate_recorded_hz"] == sorted(res["fI"]["rate_recorded_hz"])
    assert sorted(p.name for p in traces.iterdir()) == ["sweep_183.csv", "sweep_185.csv"]
    for index in (183, 185):
        header, data = read_csv(traces / f"sweep_{index}.csv")
        assert header == ["t", "V_recorded", "V_model", "I"]
        V = bw.load(str(DATA / "bluepyefe" / f"B6_Ch3_IDRest_{index}.ibw"))["wave"]["wData"]
        I = bw.load(str(DATA / "bluepyefe" / f"B6_Ch0_IDRest_{index}.ibw"))["wave"]["wData"]
        assert np.array_equal(data[:, 1], V.astype(float))        # the file's own samples, mV
        assert np.array_equal(data[:, 3], I.astype(float))        # pA, as recorded
        np.testing.assert_allclose(data[:, 0], 0.25 * np.arange(V.size), atol=1e-9)   # ms at 4 kHz
        assert np.all(np.isfinite(data[:, 2])) and data[:, 2].max() > 0               # the model spikes (mV)


@needs_data
def test_abf_spike_free_sweeps_give_nulls_and_the_api_matches(hh_json, tmp_path):
    import pyabf

    res = hhsym.validate_fit(hh_json, ABF, "0,6,10,14", capacitance=100.0)
    quiet = res.sweeps[0]
    assert quiet["recorded"]["n_spikes"] == 0 and quiet["gamma"] is None          # no spike on either side
    assert all(quiet["recorded"][k] is None for k in ("first_spike_latency_ms", "AP_peak_mV",
                                                      "AP_half_width_ms", "AHP_depth_mV"))
    assert [s["recorded"]["n_spikes"] for s in res.sweeps] == [0, 2, 10, 16]
    assert res.fI["I_step_pA"] == [-100.0, 50.0, 150.0, 250.0]
    path = tmp_path / "abf.json"
    res.write_json(path)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["sweeps"][0]["recorded"]["AP_peak_mV"] is None
    res.write_traces(tmp_path / "tr")
    abf = pyabf.ABF(str(ABF))
    for index in (0, 6, 10, 14):
        abf.setSweep(index)
        _, data = read_csv(tmp_path / "tr" / f"sweep_{index}.csv")
        assert np.array_equal(data[:, 1], abf.sweepY.astype(float))
        assert np.array_equal(data[:, 3], abf.sweepC.astype(float))
    spiking = res.sweeps[2]
    assert spiking["recorded"]["first_spike_latency_ms"] == pytest.approx(39.7, abs=0.5)
    assert 50 < spiking["recorded"]["AP_peak_mV"] < 60 and 1.0 < spiking["recorded"]["AP_half_width_ms"] < 2.0
    sm = res.summary
    assert sm["n_spikes_recorded"] == 28 and sm["median_subthreshold_rms_mV"] > 0


@needs_data
def test_report_folder(hh_json, tmp_path):
    res = hhsym.validate_fit(hh_json, ABF, [0, 10], capacitance=100.0)
    md = Path(res.write_report(tmp_path / "rep"))
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["fI.png", "overlay_0.png", "overlay_10.png", "validation.html", "validation.json",
                     "validation.md"]
    text = md.read_text()
    assert "| 10 | 150.0 | 10 / " in text and "![fI.png](fI.png)" in text


@needs_data
def test_traces_folder_is_replaced_whole_and_kept_on_failure(hh_json, tmp_path, capsys):
    folder = tmp_path / "tr"
    folder.mkdir()
    (folder / "sweep_99.csv").write_text("old run\n")
    assert main(["validate", str(hh_json), str(ABF), "--sweeps", "3", "--traces", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["sweep_3.csv"]     # no file of the old run left
    before = (folder / "sweep_3.csv").read_bytes()
    # a failing run (bad sweep) leaves the previous folder as it was, and no temporary beside it
    assert main(["validate", str(hh_json), str(ABF), "--sweeps", "3,40", "--traces", str(folder)]) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["sweep_3.csv"]
    assert (folder / "sweep_3.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tr"]


@needs_data
@pytest.mark.parametrize("args, words", [
    (["{hh}", "{abf}", "--sweeps", "3,40"], ["sweeps", "40", "[0, 1, 2"]),
    (["{tmp}/missing.json", "{abf}"], ["fit", "missing.json", "existing file"]),
    (["{tmp}/trace.npz", "{abf}"], ["fit", "trace.npz", "fit file"]),          # a trace, not a fit
    (["{abf}", "{abf}"], ["fit", ".abf", "model file (.json"]),
    (["{hh}", "{abf}", "--sweeps", "x"], ["--sweeps", "'x'"]),
    (["{hh}", "{abf}", "--json", "{tmp}/out.txt"], ["--json", "out.txt", ".json"]),
    (["{hh}", "{abf}", "--area", "1e-4", "--capacitance", "100"], ["area_cm2", "capacitance_pF"]),
])
def test_bad_input_is_a_usage_error_naming_argument_and_accepted(hh_json, tmp_path, capsys, args, words):
    trace = tmp_path / "trace.npz"
    hhsym.simulate(hodgkin_huxley(), hhsym.stimuli.Step(10.0, 5.0, 15.0), 20.0).save(trace)
    argv = [a.format(hh=hh_json, abf=ABF, tmp=tmp_path) for a in args]
    assert main(["validate", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_missing_recording_is_one_line(hh_json, tmp_path, capsys):
    assert main(["validate", str(hh_json), str(tmp_path / "nothing.abf")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing.abf" in err[0]


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(fit=3), hhsym.ArgumentTypeError, ["fit=3", "a fit file"]),
    (dict(recording=3.5), hhsym.ArgumentTypeError, ["recording=3.5", "Recording"]),
    (dict(window_ms=0.0), hhsym.InvalidArgumentError, ["window_ms=0.0", "> 0 (ms)"]),
    (dict(exclude_ms=float("nan")), hhsym.InvalidArgumentError, ["exclude_ms=nan", ">= 0"]),
    (dict(area=-1.0), hhsym.InvalidArgumentError, ["area_cm2=-1.0", "positive"]),
])
def test_api_bad_arguments(kwargs, error, words):
    args = dict(fit=hodgkin_huxley(), recording=simulated_cell(hodgkin_huxley(), amplitudes=(0.0, 5.0)))
    args.update(kwargs)
    with pytest.raises(error) as info:
        hhsym.validate_fit(args.pop("fit"), args.pop("recording"), **args)
    for word in words:
        assert word in str(info.value)


# ------------------------------------------------------------------ self-consistency
def simulated_cell(model, area_cm2=2e-5, amplitudes=(0.0, 6.0, 10.0, 20.0), dt=0.1):
    """Sweeps of ``model`` under 200 ms steps, as a lab recording in pA (area ``area_cm2``)."""
    t = dt * np.arange(int(round(300.0 / dt)) + 1)
    I_density = np.array([np.where((t >= 50.0) & (t < 250.0), a, 0.0) for a in amplitudes])
    # the sampled current, as a recording gives it (linear between samples), at 0.025 ms
    runs = [hhsym.simulate(model, hhsym.stimuli.FromArray(t, I), float(t[-1]), dt=0.025, dt_out=dt)
            for I in I_density]
    return Recording(t, np.array([r.V for r in runs]), I_density * area_cm2 * 1e6, {"file": "simulated"})


def test_a_model_predicts_its_own_recording():
    model = hodgkin_huxley()
    rec = simulated_cell(model)
    res = hhsym.validate_fit(model, rec, area=2e-5)
    counts = [(s["recorded"]["n_spikes"], s["model"]["n_spikes"]) for s in res.sweeps]
    assert all(a == b for a, b in counts) and counts[0] == (0, 0) and counts[-1][0] > 5
    assert [s["gamma"] for s in res.sweeps[1:]] == [pytest.approx(1.0)] * 3 and res.sweeps[0]["gamma"] is None
    assert res.summary["median_gamma"] == pytest.approx(1.0) and res.summary["spike_count_error"] == 0.0
    assert max(s["subthreshold_rms_mV"] for s in res.sweeps) < 1e-6
    for s in res.sweeps[1:]:
        # the 20 µA/cm² sweep's last spike peaks 1.4 ms before the step ends and falls after it
        assert 1.0 < s["recorded"]["AP_half_width_ms"] < 1.5 and 20 < s["recorded"]["AP_peak_mV"] < 40
        for k in ("first_spike_latency_ms", "AP_peak_mV", "AP_half_width_ms"):
            assert s["model"][k] == pytest.approx(s["recorded"][k], rel=0.02, abs=0.1)
    assert res.membrane_area["source"] == "area"


@pytest.mark.slow
def test_a_fit_file_predicts_its_own_training_cell(tmp_path):
    """A FormEstimator fit file (.npz) through the command line, on an hhsym .npz recording."""
    from hhsym.estimate import FormEstimator
    from hhsym.io import TraceSet

    model = hodgkin_huxley()
    rec = simulated_cell(model, area_cm2=1.0)        # hhsym files hold densities: pA at 1 cm²
    data = tmp_path / "cell.npz"
    TraceSet(rec.t, rec.V, rec.I * 1e-6).save(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = FormEstimator(model, start="model", search=False, max_iter=2).fit(
            [hhsym.simulate(model, hhsym.stimuli.Step(10.0, 5.0, 95.0), 100.0, dt=0.025)])
    est.save(tmp_path / "fit.npz")
    out = tmp_path / "v.json"
    assert main(["validate", str(tmp_path / "fit.npz"), str(data), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["fit"]["kind"] == "FormEstimator" and res["membrane_area"]["source"] == "file"
    assert res["summary"]["median_gamma"] > 0.9 and res["summary"]["spike_count_error"] < 0.1


@pytest.mark.slow
def test_a_rate_estimator_fit_is_replayed_sub_stepped(tmp_path):
    """A RateEstimator (networks) runs by its compile-free replay, sub-stepped to 0.025 ms on coarse sweeps."""
    from hhsym.estimate import RateEstimator

    model = hodgkin_huxley()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateEstimator(model, hidden=(3,), max_iter=(0, 1, 0), spline_knots=()).fit(
            hhsym.simulate(model, hhsym.stimuli.Step(10.0, 5.0, 95.0), 100.0, dt=0.025))
    est.save(tmp_path / "fit.npz")
    coarse = hhsym.validate_fit(tmp_path / "fit.npz", simulated_cell(model, dt=0.1), area=2e-5)
    fine = hhsym.validate_fit(est, simulated_cell(model, dt=0.025), area=2e-5)
    assert coarse.fit["kind"] == "RateEstimator" and coarse.V_model.shape == coarse.V_recorded.shape
    assert not any(s["diverged"] for s in coarse.sweeps + fine.sweeps)
    # the same integration (0.025 ms steps): equal up to the current's edges, sampled 0.1 vs 0.025 ms apart
    assert np.max(np.abs(coarse.V_model - fine.V_model[:, ::4])) < 1.0


@pytest.mark.slow
def test_the_training_area_travels_in_the_fit_file(tmp_path):
    """A fit on a lab recording records its membrane area; validation uses it when none is given."""
    from hhsym.estimate import FormEstimator, load

    model = hodgkin_huxley()
    rec = simulated_cell(model, area_cm2=3e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = FormEstimator(model, start="model", search=False, max_iter=2, uncertainty=False).fit(
            rec.select([rec.sweep_numbers[-1]]).to_traces(area_cm2=3e-5))
    assert [a["area_cm2"] for a in est.membrane_area_] == [pytest.approx(3e-5)]
    assert est.membrane_area_[0]["source"] == "area" and est.membrane_area_[0]["file"] == "simulated"
    est.save(tmp_path / "fit.npz")
    assert load(tmp_path / "fit.npz").membrane_area_ == est.membrane_area_
    res = hhsym.validate_fit(tmp_path / "fit.npz", rec)
    assert res.membrane_area["source"] == "fit" and res.membrane_area["area_cm2"] == pytest.approx(3e-5)
    assert res.summary["median_gamma"] > 0.9
    given = hhsym.validate_fit(tmp_path / "fit.npz", rec, area=6e-5)      # a given area wins
    assert given.membrane_area["source"] == "area"
