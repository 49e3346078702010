"""hhsym.export: NEURON (NMODL), Brian2 and NeuroML 2 exports, each run in its own simulator.

Every model is run under a step and a noisy current for 200 ms in NEURON, Brian2 and
jNeuroML; spike counts must equal and spike times lie within 0.2 ms of hhsym's
tight-tolerance Dormand-Prince simulation of the same STIM.csv.  The runs of one model
start together (two at a time) the first time a test asks for them.
"""

import argparse
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hhsym
from hhsym import Channel, ConductanceModel, Gate, export
from hhsym.errors import HHSymError, InvalidArgumentError
from hhsym.export import common, runner
from hhsym.export.cli import add_parser
from hhsym.export.neuroml import standard_form
from hhsym.stimuli import FromArray, OUNoise, Step

T_STOP = 200.0  # ms
TOLERANCE = 0.2  # ms, largest spike-time difference allowed
SIMULATORS = ("neuron", "brian2", "jneuroml")


# ----------------------------------------------------------------------------- models
def hh_model():
    return hhsym.library.hodgkin_huxley()


def hh_m_model():
    """HH plus a slow M-type K current whose rates use a rate parameter (V_M)."""
    na, k, leak = hhsym.library.hodgkin_huxley().channels
    m_current = Channel("M", g=1.5, E=-77.0, gates=[
        Gate("p", "0.003*(V - V_M)/(1 - exp(-(V - V_M)/9))", "-0.003*(V - V_M)/(1 - exp((V - V_M)/9))", 1)])
    return ConductanceModel([na, k, m_current, leak], C_m=1.0, params={"V_M": -30.0},
                            name="HH + M current")


def distilled_model():
    """HH with rates of other closed forms, as a distillation returns them."""
    return hhsym.library.hodgkin_huxley().with_rates({
        "alpha_m": "0.105*(V + 40.5)/(1 - exp(-(V + 40.5)/9.8))",
        "beta_m": "4.2*exp(-(V + 65)/18.5)",
        "beta_h": "0.5*(1 + tanh((V + 35)/20))",
        "alpha_n": "0.01*(V + 55)/(1 - exp(-(V + 55)/10)) + 0.0005",
        "beta_n": "0.125*exp(-(V + 65)/80)/(1 + ((V + 65)/200)**2)",
    }, name="distilled HH")


def hybrid_model():
    """HH whose beta_m is a rate network (tanh units, log-linear Piecewise tails) near 4 exp(-(V+65)/18)."""
    from hhsym.estimate.rates.network import RateNetwork

    c, s = -40.0, 60.0
    theta = np.array([0.5, -0.3, 0.1, 0.2, 0.02, -0.02, math.log(4) - (c + 65) / 18, -s / 18])
    net = RateNetwork((2,), center=c, scale=s, theta=theta)
    return hhsym.library.hodgkin_huxley().with_rates({"beta_m": net.to_sympy()}, name="hybrid HH")


MODELS = {"hh": hh_model, "hh_m": hh_m_model, "distilled": distilled_model, "hybrid": hybrid_model}


# ----------------------------------------------------------------------------- stimuli and spikes
def write_csv(path, t, I):
    with open(path, "w") as f:
        f.write("t,I\n")
        for a, b in zip(t, I):
            f.write(f"{float(a)!r},{float(b)!r}\n")
    return path


def stimuli_csv(folder):
    """A step (10 µA/cm² from 20 to 180 ms) and an OU current, as STIM.csv files."""
    t = np.round(np.arange(0.0, T_STOP + 1e-9, 0.025), 10)
    step = write_csv(os.path.join(folder, "step.csv"), t, Step(10.0, 20.0, 180.0)(t))
    tn = np.round(np.arange(0.0, T_STOP + 1e-9, 0.5), 10)
    noise = write_csv(os.path.join(folder, "noise.csv"), tn, OUNoise(8.0, 4.0, 2.0, seed=3, dt=0.5)(tn))
    return {"step": step, "noise": noise}


def read_csv(path, header):
    with open(path) as f:
        assert f.readline().strip() == header
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).T


def spike_times(t, V, threshold=0.0):
    """Upward crossings of ``threshold`` (mV), linearly interpolated (ms)."""
    k = np.flatnonzero((V[:-1] < threshold) & (V[1:] >= threshold))
    return t[k] + (threshold - V[k]) * (t[k + 1] - t[k]) / (V[k + 1] - V[k])


def reference(model, stim_csv):
    t, I = read_csv(stim_csv, "t,I")
    tr = hhsym.simulate(model, FromArray(t, I), T_STOP, method="dopri5", dt=0.025, rtol=1e-10, atol=1e-10)
    return spike_times(tr.t, tr.V)


# ----------------------------------------------------------------------------- simulator runs
def run(cmd, cwd):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def run_neuron(folder, stims):
    out = {}
    for name, stim in stims.items():  # one after the other: the first run compiles the mechanisms
        path = os.path.join(folder, f"neuron_{name}.csv")
        run([sys.executable, os.path.join(folder, "nmodl", "run_neuron.py"), stim, path], folder)
        out[name] = read_csv(path, "t,V")
    return out


def run_brian2(folder, stim, name):
    path = os.path.join(folder, f"brian2_{name}.csv")
    run([sys.executable, os.path.join(folder, "model_brian2.py"), stim, path, "--dt", "0.025"], folder)
    return read_csv(path, "t,V")


def run_jneuroml(model, folder, stim, name):
    from pyneuroml.pynml import run_lems_with_jneuroml

    files = export.to_neuroml(model, os.path.join(folder, f"model_{name}.nml"), stimulus=stim)
    ok = run_lems_with_jneuroml(files["lems"], nogui=True, load_saved_data=False, plot=False,
                                exec_in_dir=folder, verbose=False, max_memory="600M")
    assert ok, f"jNeuroML failed on {files['lems']}"
    return np.array(export.read_lems_output(files["output"]))


class Runs:
    """Exports each model once and runs it in the three simulators (lazily, per model)."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    def __call__(self, key):
        if key not in self.cache:
            try:
                self.cache[key] = self._run(key)
            except Exception as exc:  # every test of this model reports it, none runs it again
                self.cache[key] = exc
        if isinstance(self.cache[key], Exception):
            raise self.cache[key]
        return self.cache[key]

    def _run(self, key):
        model = MODELS[key]()
        folder = os.path.join(self.root, key)
        os.makedirs(folder)
        stims = stimuli_csv(folder)
        export.to_nmodl(model, os.path.join(folder, "nmodl"))
        export.to_brian2(model, os.path.join(folder, "model_brian2.py"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = {("neuron", None): pool.submit(run_neuron, folder, stims)}
            for name, stim in stims.items():
                jobs[("brian2", name)] = pool.submit(run_brian2, folder, stim, name)
                jobs[("jneuroml", name)] = pool.submit(run_jneuroml, model, folder, stim, name)
            refs = {name: reference(model, stim) for name, stim in stims.items()}
            traces, errors = {}, {}
            for (sim, name), job in jobs.items():
                try:
                    result = job.result()
                except Exception as exc:  # reported by the test of that simulator
                    errors[sim] = f"{type(exc).__name__}: {exc}"
                    continue
                if sim == "neuron":
                    for stim_name, trace in result.items():
                        traces[(sim, stim_name)] = trace
                else:
                    traces[(sim, name)] = result
        return {"model": model, "folder": folder, "refs": refs, "traces": traces, "errors": errors}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return Runs(str(tmp_path_factory.mktemp("export")))


# one worker runs each model's simulators once (pytest-xdist --dist loadgroup)
CASES = [pytest.param(key, sim, id=f"{key}-{sim}",
                      marks=(pytest.mark.xdist_group(f"export-{key}"),) + (() if key == "hh" else (pytest.mark.slow,)))
         for key in MODELS for sim in SIMULATORS]


@pytest.mark.parametrize("key, simulator", CASES)
def test_spikes_match_hhsym(runs, key, simulator):
    result = runs(key)
    assert simulator not in result["errors"], result["errors"].get(simulator)
    for stim in ("step", "noise"):
        t, V = result["traces"][(simulator, stim)]
        assert t[-1] == pytest.approx(T_STOP, abs=0.03) and np.all(np.isfinite(V))
        ref, got = result["refs"][stim], spike_times(t, V)
        assert len(ref) >= 5, f"{key}/{stim}: the reference fires only {len(ref)} spikes"
        assert len(got) == len(ref), f"{key}/{stim} in {simulator}: {len(got)} spikes, hhsym {len(ref)}"
        worst = float(np.max(np.abs(got - ref)))
        print(f"{key} {stim} {simulator}: {len(ref)} spikes, max |dt| = {worst:.4f} ms")
        assert worst < TOLERANCE, f"{key}/{stim} in {simulator}: spike times differ by up to {worst:.3f} ms"


@pytest.mark.parametrize("key", [pytest.param(k, marks=() if k == "distilled" else pytest.mark.slow)
                                 for k in MODELS])
def test_neuroml_validates(tmp_path, key):
    files = export.to_neuroml(MODELS[key](), tmp_path / "model.nml", stimulus=(np.array([0.0, 5.0]), np.zeros(2)))
    done = subprocess.run(["pynml", os.path.basename(files["nml"]), "-validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode == 0 and "All valid" in text, text[-3000:]


# ----------------------------------------------------------------------------- exported text
def test_nmodl_files_and_singularity_guard(tmp_path):
    model = hh_m_model()
    out = export.to_nmodl(model, tmp_path / "mods")
    names = sorted(os.path.basename(p) for p in out["mod"])
    assert names == ["hhsym_K.mod", "hhsym_L.mod", "hhsym_M.mod", "hhsym_Na.mod"]
    na = (tmp_path / "mods" / "hhsym_Na.mod").read_text()
    assert "SUFFIX hhsym_Na" in na and "RANGE gbar, e, g, i" in na and "gbar = 0.12 (S/cm2)" in na
    assert "if (fabs(Vm - (-40)) < 0.001)" in na  # alpha_m's 0/0 point
    m = (tmp_path / "mods" / "hhsym_M.mod").read_text()
    assert "V_M" not in m.split("ENDCOMMENT")[1] and "(-30)" in m  # the rate parameter's value
    leak = (tmp_path / "mods" / "hhsym_L.mod").read_text()
    assert "STATE" not in leak and "e = -54.387 (mV)" in leak
    assert not [p for p in os.listdir(tmp_path / "mods") if p.endswith(".tmp")]


def test_runner_rates_are_exact_at_singularities():
    model = distilled_model()
    namespace = {"math": math}
    exec(runner.python_rates_source(model), namespace)
    truth = model.rate_functions()
    for V0 in (-55.0, -55.0 + 1e-7, -40.5, -40.5 - 5e-4, -30.0, 12.3):
        for name in model.rates:
            assert namespace[name](V0) == pytest.approx(float(truth[name](np.array([V0]))[0]), rel=1e-9)


def test_brian2_equations_guard_linoid_rates():
    from hhsym.export.brian2 import equations_text

    text = equations_text(hh_model())
    assert "dv/dt = (I_inj(t) - (I_Na + I_K + I_L)) / C_m : volt" in text
    assert "int(abs(u - (-55)) < 0.001)" in text and ": Hz" in text


def test_neuroml_standard_forms():
    rates = common.numeric_rates(hh_model())
    kinds = {name: standard_form(code.expr) for name, code in rates.items()}
    assert kinds["alpha_m"] == pytest.approx(("HHExpLinearRate", 1.0, -40.0, 10.0))
    assert kinds["beta_m"] == pytest.approx(("HHExpRate", 4.0, -65.0, -18.0))
    assert kinds["beta_h"] == pytest.approx(("HHSigmoidRate", 1.0, -35.0, 10.0))
    assert kinds["alpha_n"] == pytest.approx(("HHExpLinearRate", 0.1, -55.0, 10.0))
    distilled = common.numeric_rates(distilled_model())
    assert standard_form(distilled["beta_h"].expr) is None  # tanh: a custom ComponentType
    assert standard_form(distilled["alpha_n"].expr) is None
    assert standard_form(distilled["alpha_m"].expr)[0] == "HHExpLinearRate"


def test_neuroml_custom_rate_types(tmp_path):
    files = export.to_neuroml(distilled_model(), tmp_path / "d.nml", stimulus=None)
    text = open(files["nml"]).read()
    assert 'extends="baseVoltageDepRate"' in text and "ConditionalDerivedVariable" in text
    assert 'type="hhsym_Na_beta_h"' in text and "tanh(" in text
    lems = open(files["lems"]).read()
    assert 'length="100ms"' in lems and '<Include file="d.nml"/>' in lems


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_hhsym_errors(tmp_path):
    model = hh_model()
    for call in (lambda: export.to_nmodl("hh", tmp_path / "x"),
                 lambda: export.to_brian2(None, tmp_path / "x.py"),
                 lambda: export.to_neuroml({"format": "hhsym.model/1"}, tmp_path / "x.nml")):
        with pytest.raises(InvalidArgumentError, match="model"):
            call()
    with pytest.raises(InvalidArgumentError, match="existing folder"):
        export.to_brian2(model, tmp_path / "missing" / "x.py")
    with pytest.raises(InvalidArgumentError, match=".py"):
        export.to_brian2(model, tmp_path / "x.txt")
    (tmp_path / "x.csv").write_text("t,I\n")
    with pytest.raises(InvalidArgumentError, match="folder"):
        export.to_nmodl(model, tmp_path / "x.csv")
    with pytest.raises(InvalidArgumentError, match="prefix"):
        export.to_nmodl(model, tmp_path / "m", prefix="1bad")
    with pytest.raises(HHSymError):
        export.to_neuroml(model, tmp_path / "x.nml", stimulus=(np.array([0.0, 0.0]), np.zeros(2)))
    with pytest.raises(HHSymError):
        export.to_neuroml(model, tmp_path / "x.nml", dt=-1.0)
    with pytest.raises(HHSymError):
        export.to_brian2(model, 42)
    os.chmod(tmp_path, 0o500)
    try:
        if not os.access(tmp_path, os.W_OK):  # root may write anyway
            with pytest.raises(InvalidArgumentError, match="writable"):
                export.to_brian2(model, tmp_path / "x.py")
    finally:
        os.chmod(tmp_path, 0o700)


# ----------------------------------------------------------------------------- command line
def _parse(argv):
    parser = argparse.ArgumentParser(prog="hhsym")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_exports_library_and_json_models(tmp_path, capsys):
    args = _parse(["export", "--model", "hh", "--param", "g_Na=100", "--nmodl", str(tmp_path / "n"),
                   "--brian2", str(tmp_path / "b.py"), "--neuroml", str(tmp_path / "m.nml")])
    assert args.func(args) == 0
    assert "gbar = 0.1 (S/cm2)" in (tmp_path / "n" / "hhsym_Na.mod").read_text()
    assert (tmp_path / "b.py").exists() and (tmp_path / "LEMS_m.xml").exists()
    assert "NEURON" in capsys.readouterr().out
    path = tmp_path / "model.json"
    path.write_text(json.dumps(distilled_model().to_dict()))
    args = _parse(["export", str(path), "--brian2", str(tmp_path / "d.py")])
    assert args.func(args) == 0 and "tanh" in (tmp_path / "d.py").read_text()


def test_cli_usage_errors(tmp_path):
    for argv in (["export", "--nmodl", str(tmp_path)],  # no model
                 ["export", "--model", "hh"],  # no target
                 ["export", "--model", "hh", "--param", "g_Na", "--nmodl", str(tmp_path)]):
        args = _parse(argv)
        with pytest.raises(InvalidArgumentError):
            args.func(args)


def test_gate_names_the_simulators_reserve_are_renamed(tmp_path):
    gate = Gate("i", "0.02*exp((V + 40)/20)", "0.02*exp(-(V + 40)/20)", 2)
    model = ConductanceModel([Channel("K", 5.0, -80.0, [gate]), Channel("L", 0.1, -65.0)], name="odd names")
    export.to_nmodl(model, tmp_path / "n")
    mod = (tmp_path / "n" / "hhsym_K.mod").read_text()
    assert "i_' = alpha_i(v) * (1 - i_) - beta_i(v) * i_" in mod and "gbar * i_^2" in mod
    script = export.to_brian2(model, tmp_path / "b.py")
    text = open(script).read()
    assert "di_gate/dt = alpha_i * (1 - i_gate) - beta_i * i_gate : 1" in text
    assert "GATE_STATES = {'i': 'i_gate'}" in text


def test_piecewise_network_rate_is_written_as_branches(tmp_path):
    model = hybrid_model()
    export.to_nmodl(model, tmp_path / "n")
    mod = (tmp_path / "n" / "hhsym_Na.mod").read_text()
    assert "LOCAL pw0" in mod and "if ((Vm < (-100))) {" in mod and "beta_m = exp(pw0)" in mod
    namespace = {"math": math}
    exec(runner.python_rates_source(model), namespace)
    truth = model.rate_functions()["beta_m"]
    for V0 in (-130.0, -100.0, -60.0, 20.0, 45.0):
        assert namespace["beta_m"](V0) == pytest.approx(float(truth(np.array([V0]))[0]), rel=1e-12)
    files = export.to_neuroml(model, tmp_path / "h.nml")
    assert '<ConditionalDerivedVariable name="pw0" dimension="none">' in open(files["nml"]).read()
