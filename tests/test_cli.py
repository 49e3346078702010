"""The hhsym command: exit codes, outputs, messages."""

import subprocess
import sys

import numpy as np
import pytest

from hhsym.cli import main, parse_stimulus
from hhsym.stimuli import OUNoise, Step
from hhsym.io import read_trace


def test_simulate_writes_csv_and_plot(tmp_path, capsys):
    out = tmp_path / "tr.csv"
    png = tmp_path / "tr.png"
    code = main(["simulate", "--stimulus", "step:10,5,25", "--stimulus", "sine:1,50", "--t-stop", "30",
                 "--out", str(out), "--plot", str(png)])
    assert code == 0
    tr = read_trace(out)
    assert tr.t[-1] == pytest.approx(30.0) and tr.V.max() > 0
    assert png.stat().st_size > 1000


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["simulate", "--stimulus", "stp:1", "--out", str(tmp_path / "a.csv")]) == 2
    assert "accepted are step" in capsys.readouterr().err
    assert main(["simulate", "--stimulus", "step:1,2", "--out", str(tmp_path / "a.csv")]) == 2
    assert main(["simulate", "--stimulus", "step:1,2,3", "--dt", "-1", "--out", str(tmp_path / "a.csv")]) == 2
    assert "dt" in capsys.readouterr().err
    assert main(["simulate", "--param", "gNa=1", "--stimulus", "step:1,2,3", "--out", str(tmp_path / "a.csv")]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["distill", str(tmp_path / "fit.npz"), "--json", str(tmp_path / "m.json"), "--loss", "charge"]) == 2
    assert "shooting" in capsys.readouterr().err
    assert main(["distill", str(tmp_path / "fit.npz"), "--json", str(tmp_path / "m.json"), "--time-limit", "0"]) == 2
    from hhsym.cli import _parser

    args = _parser().parse_args(["distill", "fit.npz", "--json", "m.json", "--time-limit", "240"])
    assert args.loss == "auto" and args.time_limit == 240.0  # output error when the fit measured noise


def test_failure_exits_1_with_one_line(tmp_path, capsys):
    code = main(["simulate", "--stimulus", "file:" + str(tmp_path / "missing.csv"), "--out", str(tmp_path / "a.csv")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0]


def test_help_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "hhsym", "simulate", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "examples:" in result.stdout


def test_parse_stimulus():
    assert repr(parse_stimulus("step:10,5,25")) == repr(Step(10.0, 5.0, 25.0))
    s = parse_stimulus("ou:8,3,2,1")
    assert isinstance(s, OUNoise)
    np.testing.assert_array_equal(s(np.arange(10.0)), OUNoise(8.0, 3.0, 2.0, seed=1)(np.arange(10.0)))


@pytest.mark.slow
def test_forms_writes_json_and_latex(tmp_path, capsys):
    from hhsym.distill import load_model

    tr = tmp_path / "tr.npz"
    assert main(["simulate", "--stimulus", "ou:9,6,3,11", "--t-stop", "60", "--dt", "0.025", "--out", str(tr)]) == 0
    assert main(["forms", str(tr)]) == 2 and "--json" in capsys.readouterr().err
    # a short run: one role pattern (the budget is spent after the first), no form search; the fit
    # does not reproduce its recording, so the command says so and exits 3 (the files are written)
    code = main(["forms", str(tr), "--no-search", "--time-limit", "0.001", "--quiet",
                 "--json", str(tmp_path / "m.json"), "--latex", str(tmp_path / "m.tex")])
    assert code == 3, capsys.readouterr()
    assert "poor fit" in capsys.readouterr().err
    model = load_model(tmp_path / "m.json")
    assert set(model.rates) == {f"{k}_{g}" for g in "mhn" for k in ("alpha", "beta")}
    assert (tmp_path / "m.tex").read_text().startswith("\\documentclass{article}")


def test_forms_start_is_parsed_and_a_bad_one_is_a_usage_error(tmp_path, capsys):
    from hhsym.cli import _parser

    args = _parser().parse_args(["forms", "tr.npz", "--json", "m.json"])
    assert args.start == "roles"
    args = _parser().parse_args(["forms", "tr.npz", "--start", "model", "--json", "m.json"])
    assert args.start == "model"
    assert main(["forms", str(tmp_path / "tr.npz"), "--start", "literature", "--json", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "--start" in err and "'roles'" in err and "'model'" in err
    assert "--start model" in _parser()._subparsers._group_actions[0].choices["forms"].format_help()


@pytest.mark.slow
def test_forms_start_model_refits_the_template(tmp_path, capsys):
    from hhsym.distill import load_model

    tr = tmp_path / "tr.npz"
    assert main(["simulate", "--stimulus", "ou:9,6,3,11", "--t-stop", "100", "--dt", "0.025", "--out", str(tr)]) == 0
    code = main(["forms", str(tr), "--start", "model", "--no-search", "--quiet", "--json", str(tmp_path / "m.json")])
    out = capsys.readouterr()
    assert code == 0, out
    assert "its own rates refitted" in out.out and "m activating, h inactivating, n activating" in out.out
    model = load_model(tmp_path / "m.json")
    assert model.name.endswith("(refitted)")
    grid = np.linspace(-70.0, 20.0, 10)
    from hhsym.library import hodgkin_huxley

    a, b = model.evaluate_rates(grid), hodgkin_huxley().evaluate_rates(grid)
    for k in a:  # the data are the template's own: it stays where it is
        np.testing.assert_allclose(a[k], b[k], rtol=0.01)


def test_commands_read_lab_files_with_sweeps_and_area(capsys):
    """fit/forms/report/distill read ABF (and NWB, Igor) files through hhsym.io, in µA/cm²."""
    from pathlib import Path

    import pytest

    from hhsym.cli import _parser
    from hhsym.cli.commands import _read_traces

    abf = Path(__file__).resolve().parents[2] / "shared" / "data" / "pyabf" / "File_axon_5.abf"
    if not abf.exists():
        pytest.skip("the shared recordings (../shared/data) are not beside the repository")
    args = _parser().parse_args(["fit", str(abf), "--sweeps", "6,8", "--capacitance", "100", "--out", "f.npz"])
    traces = _read_traces(args.traces, args)
    assert len(traces) == 2
    assert "area" in capsys.readouterr().out
    # 100 pF at 1 µF/cm² is 1e-4 cm²: a +300 pA step is 3 µA/cm²
    assert max(abs(tr.I).max() for tr in traces) == pytest.approx(3.0, rel=0.05)
    for command in ("forms", "report", "distill", "validate"):
        assert "--sweeps" in _parser()._subparsers._group_actions[0].choices[command].format_help()


def test_fit_networks_with_fixed_gate_and_free_scalars(tmp_path, capsys):
    """``hhsym fit --fixed n --free C_m``: n kept at the template's rates, C_m fitted, both in the saved fit."""
    import hhsym
    from hhsym.estimate import load
    from hhsym.library import hodgkin_huxley

    model = hodgkin_huxley()
    tr = hhsym.simulate(model, OUNoise(mean=8.0, sigma=6.0, tau=3.0, seed=4), 120.0, dt=0.005, dt_out=0.025)
    data, out = tmp_path / "tr.npz", tmp_path / "fit.npz"
    tr.save(data)
    code = main(["fit", str(data), "--param", "C_m=1.1", "--fixed", "n", "--free", "C_m", "--hidden", "6",
                 "--quiet", "--accept-poor-fit", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    est = load(out)
    assert est.fixed_ == ("n",) and set(est.networks_) == {"alpha_m", "beta_m", "alpha_h", "beta_h"}
    assert est.model_.rates["alpha_n"] == model.rates["alpha_n"]
    assert abs(est.scalars_["C_m"] - 1.0) < 0.02  # the template's 1.1 fitted back


def test_fit_likelihood_option_turns_the_stage_on_and_is_checked(tmp_path, capsys):
    """``hhsym fit --likelihood on|off|auto`` sets the networks route's ``ml_windows``; a bad value, or the
    option on the cell route (which has no such stage), is a usage error naming it."""
    import hhsym
    from hhsym.cli import _parser
    from hhsym.cli.commands import _estimator_options
    from hhsym.estimate.likelihood import ML_WINDOWS
    from hhsym.library import hodgkin_huxley

    def options(*extra):
        return _estimator_options(_parser().parse_args(["fit", "x.csv", "--out", "f.npz", *extra]))

    assert "ml_windows" not in options()
    for value, windows in (("on", ML_WINDOWS), ("off", ()), ("auto", None)):
        assert options("--likelihood", value)["ml_windows"] == windows
    data = tmp_path / "tr.csv"
    hhsym.simulate(hodgkin_huxley(), Step(8.0, 5.0, 30.0), 40.0, dt=0.01, dt_out=0.05).to_csv(data)
    out = str(tmp_path / "fit.npz")
    assert main(["fit", str(data), "--likelihood", "maybe", "--out", out]) == 2
    assert "--likelihood" in capsys.readouterr().err
    assert main(["fit", str(data), "--route", "cell", "--likelihood", "on", "--out", out]) == 2
    assert "ml_windows" in capsys.readouterr().err
