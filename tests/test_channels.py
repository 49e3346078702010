"""The channel library (against the published formulas) and calcium pools (model, kernels, io, errors)."""

import importlib.util
import json
import math
import sys
import tempfile

import numpy as np
import pytest
import sympy
from scipy.integrate import solve_ivp

import hhsym
import hhsym.export
from hhsym import channels as C
from hhsym.errors import HHSymError, ModelError, UnknownNameError, UnsupportedModelError
from hhsym.io import Trace
from hhsym.library import MODELS, get_model
from hhsym.model import CalciumPool, Channel, ConductanceModel
from hhsym.model.pools import FARADAY
from hhsym.simulate import resting_state, simulate
from hhsym.stimuli import Step

VS = np.array([-120.3, -90.7, -70.1, -55.3, -30.9, -10.2, 0.4, 20.6, 45.5])  # off every 0/0 point


def _channel_model(channel, pools=()):
    return ConductanceModel([channel, Channel("L", 0.1, -70.0)], pools=pools)


def _gates(channel, V, **conc):
    m = _channel_model(channel, [CalciumPool("Ca", ("L",))] if conc else ())
    return m.steady_state(V, **conc), m.time_constants(V, **conc), m.evaluate_rates(V, **conc)


def _vtrap(x, y):
    """x / (1 - exp(-x/y)), with its limit y at x = 0 (independent of hhsym)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x / y) < 1e-7
    safe = np.where(small, 1.0, x)
    return np.where(small, y * (1 + x / y / 2), safe / (1 - np.exp(-safe / y)))


# ------------------------------------------------------------------ channels vs papers
def test_m_current_matches_yamada_koch_adams():
    inf, tau, _ = _gates(C.m_current(tau_max=1000.0), VS)
    np.testing.assert_allclose(inf["p"], 1 / (1 + np.exp(-(VS + 35) / 10)), rtol=1e-12)
    np.testing.assert_allclose(tau["p"], 1000 / (3.3 * np.exp((VS + 35) / 20) + np.exp(-(VS + 35) / 20)), rtol=1e-12)


def test_ih_matches_kole_2006():
    _, _, r = _gates(C.ih_kole(), VS)
    np.testing.assert_allclose(r["alpha_mh"], 0.001 * 6.43 * (VS + 154.9) / (np.exp((VS + 154.9) / 11.9) - 1),
                               rtol=1e-12)
    np.testing.assert_allclose(r["beta_mh"], 0.001 * 193 * np.exp(VS / 33.1), rtol=1e-12)
    # the 0/0 point at -154.9 mV evaluates to its limit 0.00643 * 11.9
    at = _channel_model(C.ih_kole()).evaluate_rates([-154.9])["alpha_mh"][0]
    assert at == pytest.approx(0.00643 * 11.9, rel=1e-12)


def test_a_current_matches_connor_stevens():
    inf, tau, _ = _gates(C.a_connor_stevens(), VS)
    a_inf = np.minimum((0.0761 * np.exp((VS + 94.22) / 31.84) / (1 + np.exp((VS + 1.17) / 28.93))) ** (1 / 3), 1)
    np.testing.assert_allclose(inf["a"], a_inf, rtol=1e-12)
    np.testing.assert_allclose(tau["a"], 0.3632 + 1.158 / (1 + np.exp((VS + 55.96) / 20.12)), rtol=1e-12)
    np.testing.assert_allclose(inf["b"], (1 / (1 + np.exp((VS + 53.3) / 14.54))) ** 4, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(tau["b"], 1.24 + 2.678 / (1 + np.exp((VS + 50) / 16.027)), rtol=1e-12)
    assert inf["a"].max() <= 1.0  # capped where the published fit exceeds 1


def test_nap_matches_magistretti_alonso_as_in_hay_2011():
    inf, tau, _ = _gates(C.nap_magistretti(), VS)
    qt = 2.3 ** ((34 - 21) / 10)
    am = 0.182 * (VS + 38) / (1 - np.exp(-(VS + 38) / 6))
    bm = 0.124 * (-VS - 38) / (1 - np.exp(-(-VS - 38) / 6))
    ah = -2.88e-6 * (VS + 17) / (1 - np.exp((VS + 17) / 4.63))
    bh = 6.94e-6 * (VS + 64.4) / (1 - np.exp(-(VS + 64.4) / 2.63))
    np.testing.assert_allclose(inf["mp"], 1 / (1 + np.exp(-(VS + 52.6) / 4.6)), rtol=1e-12)
    np.testing.assert_allclose(tau["mp"], 6 / (am + bm) / qt, rtol=1e-12)
    np.testing.assert_allclose(inf["hp"], 1 / (1 + np.exp((VS + 48.8) / 10)), rtol=1e-12)
    np.testing.assert_allclose(tau["hp"], 1 / (ah + bh) / qt, rtol=1e-12)
    # removable singularities of the linoid sums are evaluated at their limits (finite, continuous)
    m = _channel_model(C.nap_magistretti())
    for v0 in (-38.0, -17.0, -64.4):
        t = m.time_constants(v0 + np.array([-2e-3, 0.0, 2e-3]))
        for g in ("mp", "hp"):
            assert np.all(np.isfinite(t[g]))
            assert abs(t[g][1] - 0.5 * (t[g][0] + t[g][2])) < 1e-6 * t[g][1]


def test_l_calcium_matches_reuveni_as_in_pospischil():
    _, _, r = _gates(C.l_calcium(), VS)
    np.testing.assert_allclose(r["alpha_q"], 0.055 * (-27 - VS) / (np.exp((-27 - VS) / 3.8) - 1), rtol=1e-12)
    np.testing.assert_allclose(r["beta_q"], 0.94 * np.exp((-75 - VS) / 17), rtol=1e-12)
    np.testing.assert_allclose(r["alpha_r"], 0.000457 * np.exp((-13 - VS) / 50), rtol=1e-12)
    np.testing.assert_allclose(r["beta_r"], 0.0065 / (np.exp((-15 - VS) / 28) + 1), rtol=1e-12)


def test_traub_sodium_and_potassium_match_pospischil():
    VT = -55.0
    u = VS - VT
    _, _, r = _gates(C.traub_sodium(VT=VT), VS)
    np.testing.assert_allclose(r["alpha_m"], 0.32 * (13 - u) / (np.exp((13 - u) / 4) - 1), rtol=1e-12)
    np.testing.assert_allclose(r["beta_m"], 0.28 * (u - 40) / (np.exp((u - 40) / 5) - 1), rtol=1e-12)
    np.testing.assert_allclose(r["alpha_h"], 0.128 * np.exp((17 - u) / 18), rtol=1e-12)
    np.testing.assert_allclose(r["beta_h"], 4 / (1 + np.exp((40 - u) / 5)), rtol=1e-12)
    _, _, r = _gates(C.traub_potassium(VT=VT), VS)
    np.testing.assert_allclose(r["alpha_n"], 0.032 * (15 - u) / (np.exp((15 - u) / 5) - 1), rtol=1e-12)
    np.testing.assert_allclose(r["beta_n"], 0.5 * np.exp((10 - u) / 40), rtol=1e-12)


@pytest.mark.parametrize("ca", [0.0, 2.4e-4, 0.01, 0.025, 0.3])
def test_kca_matches_destexhe_1994(ca):
    inf, tau, _ = _gates(C.kca_destexhe(beta=0.03, Ca_half=0.025), VS, Ca=ca)
    car = (ca / 0.025) ** 2
    np.testing.assert_allclose(inf["w"], car / (1 + car) * np.ones_like(VS), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(tau["w"], 1 / 0.03 / (1 + car) * np.ones_like(VS), rtol=1e-12)


def test_every_channel_has_a_citation_and_nonnegative_rates():
    for name in C.__all__:
        if name in ("CITATIONS", "citation"):
            continue
        assert len(C.citation(name)) > 40
        channel = getattr(C, name)()
        pools = [CalciumPool("Ca", ("L",))] if name == "kca_destexhe" else ()
        _channel_model(channel, pools).check_rates()
    with pytest.raises(UnknownNameError, match="m_current"):
        C.citation("nope")


# ------------------------------------------------------------------ the pool in the model
def ca_model():
    """Traub Na/Kd, a strong CaL feeding a pool, KCa reading it, leak (states V m h n q r w Ca)."""
    chans = [C.traub_sodium(), C.traub_potassium(), C.l_calcium(g=1.0), C.kca_destexhe(g=2.0, beta=0.1),
             Channel("L", 0.1, -70.0)]
    return ConductanceModel(chans, pools=[CalciumPool("Ca", ("CaL",), tau=20.0, depth=0.1, Ca_inf=2.4e-4)],
                            name="ca test")


def test_pool_is_a_state_with_parameters_and_an_equation():
    m = ca_model()
    assert m.states == ("V", "m", "h", "n", "q", "r", "w", "Ca")
    assert list(m.params)[-3:] == ["tau_Ca", "depth_Ca", "Ca_inf"]
    eq = m.equations()[-1]
    assert str(eq.lhs) == "dCa/dt"
    p = m.param_symbols()
    q, r, Ca = (sympy.Symbol(s, real=True) for s in ("q", "r", "Ca"))
    expected = (-5 / FARADAY * p["g_CaL"] * q**2 * r * (hhsym.V - p["E_CaL"]) / p["depth_Ca"]
                + (p["Ca_inf"] - Ca) / p["tau_Ca"])
    assert sympy.simplify(eq.rhs - expected) == 0
    assert r"\frac{dCa}{dt}" in m.latex() and r"\tau_{Ca} = 20\,\mathrm{ms}" in m.latex()
    assert m.with_params(tau_Ca=50.0).pools[0].tau == 50.0


def test_json_round_trip_with_pool():
    m = ca_model()
    back = ConductanceModel.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.states == m.states and back.structure_key() == m.structure_key()
    assert back.rates == m.rates
    # the structure key sees which channels feed the pool
    other = ConductanceModel(m.channels, pools=[CalciumPool("Ca", ("CaL", "L"), 20.0, 0.1, 2.4e-4)])
    assert other.structure_key() != m.structure_key()
    bad = m.to_dict()
    bad["pools"][0]["volume"] = 1.0
    with pytest.raises(ModelError, match="volume"):
        ConductanceModel.from_dict(bad)


@pytest.mark.parametrize("kwargs, word", [
    ({"tau": 0.0}, "tau_Ca"), ({"depth": -1.0}, "depth_Ca"), ({"Ca_inf": -1e-3}, "Ca_inf"),
    ({"channels": ()}, "channels"), ({"name": "V"}, "reserved"), ({"name": "1x"}, "calcium pool name"),
])
def test_bad_pool_arguments(kwargs, word):
    with pytest.raises(HHSymError, match=word):
        CalciumPool(**{"name": "Ca", "channels": ("CaL",), **kwargs})


def test_bad_pool_in_a_model():
    chans = [C.l_calcium(), C.kca_destexhe(), Channel("L", 0.1, -70.0)]
    with pytest.raises(ModelError, match="names of the model's channels"):
        ConductanceModel(chans, pools=[CalciumPool("Ca", ("CaT",))])
    with pytest.raises(ModelError, match="unknown name"):
        ConductanceModel(chans)  # KCa reads Ca, which no pool defines
    with pytest.raises(ModelError, match="unique"):
        ConductanceModel(chans, pools=[CalciumPool("Ca", ("CaL",)), CalciumPool("Ca", ("CaL",))])
    with pytest.raises(ModelError, match="calcium pool and gate"):
        ConductanceModel(chans, pools=[CalciumPool("q", ("CaL",))])
    with pytest.raises(ModelError, match="depend on V only"):  # Ca-dependent inactivation
        ConductanceModel([C.kca_destexhe(), Channel("L", 0.1, -70.0)], pools=[CalciumPool("Ca", ("KCa",))])


def test_resting_state_holds_the_pool_at_its_steady_level():
    m = ca_model()
    rest = {k: float(v[0]) for k, v in resting_state(m).items()}
    p = m.params
    i_ca = p["g_CaL"] * rest["q"] ** 2 * rest["r"] * (rest["V"] - p["E_CaL"])
    assert rest["Ca"] == pytest.approx(p["Ca_inf"] - p["tau_Ca"] * 5 / FARADAY * i_ca / p["depth_Ca"], rel=1e-12)
    car = (rest["Ca"] / 0.025) ** 2
    assert rest["w"] == pytest.approx(car / (1 + car), rel=1e-10)


# ------------------------------------------------------------------ simulation
def ca_rhs_by_hand(I_of_t, p):
    """The right-hand side of ca_model() written by hand in numpy (independent of hhsym's code)."""
    def f(t, y):
        V, m, h, n, q, r, w, Ca = y
        u = V + 55.0
        am, bm = 0.32 * _vtrap(u - 13, 4), 0.28 * _vtrap(-(u - 40), 5)
        ah, bh = 0.128 * math.exp(-(u - 17) / 18), 4 / (1 + math.exp(-(u - 40) / 5))
        an, bn = 0.032 * _vtrap(u - 15, 5), 0.5 * math.exp(-(u - 10) / 40)
        aq, bq = 0.055 * _vtrap(V + 27, 3.8), 0.94 * math.exp((-75 - V) / 17)
        ar, br = 0.000457 * math.exp((-13 - V) / 50), 0.0065 / (math.exp((-15 - V) / 28) + 1)
        aw, bw = 0.1 * (Ca / 0.025) ** 2, 0.1
        i_ca = p["g_CaL"] * q * q * r * (V - p["E_CaL"])
        i_ion = (p["g_Na"] * m**3 * h * (V - p["E_Na"]) + p["g_Kd"] * n**4 * (V - p["E_Kd"]) + i_ca
                 + p["g_KCa"] * w * w * (V - p["E_KCa"]) + p["g_L"] * (V - p["E_L"]))
        dca = -10 * i_ca / (2 * FARADAY * p["depth_Ca"]) + (p["Ca_inf"] - Ca) / p["tau_Ca"]
        return [(I_of_t(t) - i_ion) / p["C_m"], am * (1 - m) - bm * m, ah * (1 - h) - bh * h,
                an * (1 - n) - bn * n, aq * (1 - q) - bq * q, ar * (1 - r) - br * r, aw * (1 - w) - bw * w, dca]
    return f


STIM = Step(4.0, 10.0, 110.0)


@pytest.fixture(scope="module")
def ca_reference():
    m = ca_model()
    rest = resting_state(m)
    y = np.array([rest[s][0] for s in m.states])
    t = np.arange(0, 15001) * 0.01
    out = np.empty((len(y), t.size))
    for a, b in ((0.0, 10.0), (10.0, 110.0), (110.0, 150.0)):  # between the step's breakpoints
        f = ca_rhs_by_hand(lambda s, c=float(STIM(0.5 * (a + b))): c, m.params)  # constant on the segment
        sol = solve_ivp(f, (a, b), y, method="DOP853", rtol=1e-11, atol=1e-13, dense_output=True)
        assert sol.success
        mask = (t >= a) & (t <= b)
        out[:, mask] = sol.sol(t[mask])
        y = sol.y[:, -1]
    return m, out


@pytest.mark.slow
def test_rk4_dopri5_and_scipy_agree_with_a_calcium_pool(ca_reference):
    m, ref = ca_reference
    assert np.sum((ref[0][:-1] < 0) & (ref[0][1:] >= 0)) >= 2  # it spikes (KCa then stops it)
    assert ref[-1].max() > 20 * m.params["Ca_inf"]  # the pool fills
    assert ref[6].max() > 0.05  # and KCa opens
    d5 = simulate(m, STIM, 150.0, dt=0.01, method="dopri5", rtol=1e-10, atol=1e-12)
    r4 = simulate(m, STIM, 150.0, dt=0.005, dt_out=0.01, method="rk4")
    # measured: dopri5 1.4e-8 mV, 1.1e-12 mM, 6.7e-11; rk4 (dt 5 µs) 2.4e-5 mV, 2.6e-9 mM, 2.7e-8
    for tr, tol_v, tol_ca, tol_w in ((d5, 1e-6, 1e-10, 1e-8), (r4, 1e-3, 1e-7, 1e-6)):
        assert np.max(np.abs(tr.V - ref[0])) < tol_v
        assert np.max(np.abs(tr.states["Ca"] - ref[-1])) < tol_ca
        assert np.max(np.abs(tr.states["w"] - ref[6])) < tol_w


@pytest.mark.slow
def test_exp_euler_converges_at_first_order_with_a_calcium_pool(ca_reference):
    m, ref = ca_reference
    stim = Step(4.0, 10.0, 110.0)
    errors = []
    for dt in (0.01, 0.005, 0.0025):
        tr = simulate(m, stim, 30.0, dt=dt, dt_out=0.01, method="exp_euler")  # the first spike
        errors.append(np.max(np.abs(tr.states["Ca"] - ref[-1][:3001])))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 0.8) and np.all(orders < 1.3), (errors, orders)


@pytest.mark.slow
def test_pool_above_1_mM_is_not_a_blow_up():
    """Only gates must stay in [0, 1]: a pool starting at 2 mM simply relaxes, under every method."""
    m = ca_model()
    for method in ("rk4", "exp_euler", "dopri5"):
        # KCa's opening rate is 640/ms at 2 mM: a step rk4 is stable with
        tr = simulate(m, Step(0.0, 1.0, 2.0), 20.0, dt=0.002, method=method, y0={"V": -70.0, "Ca": 2.0})
        assert tr.states["Ca"][0] == 2.0 and tr.states["Ca"][-1] < 0.8
        assert tr.states["w"][0] == pytest.approx((2.0 / 0.025) ** 2 / (1 + (2.0 / 0.025) ** 2))


# ------------------------------------------------------------------ library, exporters, estimators
def test_library_models():
    assert {"hh", "pospischil_rs", "pospischil_extended"} <= set(MODELS)
    rs = get_model("pospischil_rs", g_M=0.1)
    assert rs.states == ("V", "m", "h", "n", "p") and rs.params["g_M"] == 0.1 and "Pospischil" in rs.citation
    ext = get_model("pospischil_extended")
    assert ext.states[-1] == "Ca" and len(ext.channels) == 9 and "Destexhe" in ext.citation
    with pytest.raises(UnknownNameError, match="g_Nope"):
        get_model("pospischil_extended", g_Nope=1.0)


@pytest.mark.parametrize("export", ["to_nmodl", "to_neuroml"])
def test_exporters_refuse_unsupported_pools_clearly(export):
    m = get_model("pospischil_extended")
    if export == "to_nmodl":  # NMODL writes one pool (NEURON's cai), not two
        m = ConductanceModel(m.channels, pools=[m.pools[0], CalciumPool("Ca2", ("NaP",))], name="two pools")
    folder = tempfile.mkdtemp()
    path = {"to_nmodl": folder, "to_neuroml": folder + "/m.nml"}[export]
    with pytest.raises(UnsupportedModelError, match=f"{export} cannot export .*'Ca'.*not supported"):
        getattr(hhsym.export, export)(m, path)


def test_nmodl_writes_the_pool_as_cai(tmp_path):
    files = hhsym.export.to_nmodl(ca_model(), str(tmp_path))
    text = {p.rsplit("/", 1)[1]: open(p).read() for p in files["mod"]}
    assert "USEION ca READ ica WRITE cai" in text["hhsym_Ca_pool.mod"]
    assert "cai' = -5000 * ica / (96485.33212 * depth) + (cainf - cai) / taur" in text["hhsym_Ca_pool.mod"]
    assert "USEION ca WRITE ica" in text["hhsym_CaL.mod"] and "NONSPECIFIC_CURRENT" not in text["hhsym_CaL.mod"]
    assert "USEION ca READ cai" in text["hhsym_KCa.mod"] and "alpha_w(v, cai)" in text["hhsym_KCa.mod"]
    assert "NONSPECIFIC_CURRENT i" in text["hhsym_KCa.mod"]


def test_brian2_equations_carry_the_pool():
    text = hhsym.export.brian2.equations_text(ca_model())
    assert "alpha_w = ((160 * (Ca**2))) / ms : Hz" in text
    assert "/ (uA/cm**2) / depth_Ca + (Ca_inf - Ca) / tau_Ca) / ms : 1" in text
    assert "dCa/dt = (-0.000051821348283088646 * (I_CaL)" in text  # 5 / F, F = 96485.33212 C/mol


@pytest.mark.slow
@pytest.mark.parametrize("key, simulator", [("ca", "neuron"), ("extended", "neuron"), ("ca", "brian2")])
def test_simulators_match_hhsym_with_a_calcium_pool(tmp_path, key, simulator):
    """The NMODL export in NEURON (CVODE) and the Brian2 export (rk4, 25 us) spike when hhsym's
    dopri5 does, within tests/test_export.py's 0.2 ms."""
    if importlib.util.find_spec(simulator) is None:  # not imported here: the scripts patch Brian2 for numpy 2.4
        pytest.skip(f"{simulator} is not installed")
    from test_export import TOLERANCE, read_csv, run, spike_times, write_csv

    model = ca_model() if key == "ca" else get_model("pospischil_extended", g_CaL=1.0, g_KCa=2.0)
    if simulator == "neuron":
        hhsym.export.to_nmodl(model, str(tmp_path / "nmodl"))
        script = str(tmp_path / "nmodl" / "run_neuron.py")
    else:
        script = hhsym.export.to_brian2(model, str(tmp_path / "model_brian2.py"))
    t = np.round(np.arange(0.0, 300.0 + 1e-9, 0.025), 10)
    stim = Step(4.0 if key == "ca" else 8.0, 20.0, 280.0)
    write_csv(str(tmp_path / "stim.csv"), t, stim(t))
    run([sys.executable, script, "stim.csv", "out.csv"], str(tmp_path))
    tn, Vn = read_csv(str(tmp_path / "out.csv"), "t,V")
    ref = simulate(model, stim, 300.0, dt=0.025, method="dopri5", rtol=1e-10, atol=1e-10)
    mine, theirs = spike_times(ref.t, ref.V), spike_times(tn, Vn)
    assert len(mine) >= 2 and len(mine) == len(theirs)
    assert np.max(np.abs(mine - theirs)) < TOLERANCE
    assert Vn[0] == pytest.approx(ref.V[0], abs=1e-6)  # the same resting state (pool included)
    assert ref.states["Ca"].max() > 10 * model.params["Ca_inf"]  # the pool matters


@pytest.mark.parametrize("estimator", ["RateEstimator", "FormEstimator"])
def test_estimators_refuse_the_pool_at_fit(estimator):
    t = np.arange(0, 2001) * 0.05
    trace = Trace(t, -65 + 10 * np.sin(t), np.ones_like(t))
    est = getattr(hhsym, estimator)(model=ca_model())
    with pytest.raises(UnsupportedModelError, match="calcium pool state.*'Ca'.*Supported templates"):
        est.fit(trace)


def test_per_trace_pool_parameters_are_checked():
    from hhsym.resting import param_matrix

    m = ca_model()
    for name, bad, word in (("tau_Ca", 0.0, "time constant"), ("depth_Ca", -0.1, "depth"), ("Ca_inf", -1.0, "concentration")):
        with pytest.raises(HHSymError, match=f"params\\['{name}'\\].*{word}"):
            param_matrix(m, {name: [1.0, bad]}, 2)
    with pytest.raises(HHSymError, match="tau_Ca"):
        m.with_params(tau_Ca=0.0)
    assert "pool Ca <- CaL" in repr(m)


def test_rates_take_pool_concentrations_by_name():
    m = ca_model()
    assert m.evaluate_rates([-70.0], Ca=0.025)["alpha_w"][0] == pytest.approx(0.1)
    assert m.evaluate_rates([-70.0])["alpha_w"][0] == pytest.approx(0.1 * (2.4e-4 / 0.025) ** 2)  # at rest
    with pytest.raises(UnknownNameError, match="Cb.*accepted names are Ca"):
        m.evaluate_rates([-70.0], Cb=1.0)
