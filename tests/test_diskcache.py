"""The JSON disk cache and what simulate() keeps in it: rate checks, steady-state functions."""

import json
import math
import sys

import numpy as np
import pytest
import sympy

import hhsym
from hhsym import library
from hhsym import diskcache, resting
from hhsym.errors import ModelError
from hhsym.lambdified import from_entry, to_entry
from hhsym.model import gating


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, and no entry remembered by this process."""
    monkeypatch.setenv("HHSYM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gating, "_PASSED", set())
    monkeypatch.setattr(resting, "_STEADY", {})
    return tmp_path


MODELS = [library.hodgkin_huxley, library.pospischil_rs, library.pospischil_extended]


# --------------------------------------------------------------------------- #
# the store
# --------------------------------------------------------------------------- #
def test_entries_round_trip_and_miss_on_another_key(cache):
    key = ["k", 1.5, [0.1, 2]]
    assert diskcache.read_entry("thing", key) is None
    diskcache.write_entry("thing", key, {"a": [1.0, 2.0]})
    assert diskcache.read_entry("thing", key) == {"a": [1.0, 2.0]}
    assert diskcache.read_entry("thing", ["k", 1.5, [0.1, 3]]) is None
    assert diskcache.read_entry("other", key) is None
    assert diskcache.entry_path("thing", key).parent == cache


def test_a_corrupt_or_foreign_entry_is_a_miss(cache):
    key = ["k"]
    path = diskcache.entry_path("thing", key)
    for text in ("{not json", "[1, 2]", json.dumps({"key": ["other"], "value": 1}),
                 '{"key": NaN, "value": 1}'):
        path.write_text(text)
        assert diskcache.read_entry("thing", key) is None
    path.write_text(json.dumps({"key": key, "value": 7}))
    assert diskcache.read_entry("thing", key) == 7


def test_unstorable_values_and_unwritable_folders_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("HHSYM_CACHE_DIR", str(tmp_path))
    diskcache.write_entry("thing", ["k", math.inf], 1)  # not JSON: nothing written, no error
    diskcache.write_entry("thing", ["k"], math.nan)
    assert not list(tmp_path.iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HHSYM_CACHE_DIR", str(blocker / "sub"))
    diskcache.write_entry("thing", ["k"], 1)  # cannot create the folder: skipped
    assert diskcache.read_entry("thing", ["k"]) is None
    with pytest.raises(ValueError):
        diskcache.entry_path("../x", ["k"])


# --------------------------------------------------------------------------- #
# interpreted lambdified functions
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("make", MODELS)
def test_interpreted_steady_states_are_bit_identical_to_lambdify(make):
    model = make()
    (gates, pools), entry = resting._build_steady(model)
    assert entry is not None
    again = {part: {k: from_entry(json.loads(json.dumps(e))) for k, e in funcs.items()}
             for part, funcs in entry.items()}
    V = np.concatenate([np.linspace(-150.0, 100.0, 20001), [-40.0, -55.0, -40.0005, 1e3, -1e3]])
    params = [np.full(1, v) for v in model.params.values()]
    conc = [np.array([[1e-4], [2.4e-4], [0.01]])] * len(pools)
    with np.errstate(all="ignore"):
        for name, f in gates.items():
            a, b = f(V, *conc, *params), again["gates"][name](V, *conc, *params)
            assert a.tobytes() == b.tobytes(), name
        for name, f in pools.items():
            assert f(V, *params).tobytes() == again["pools"][name](V, *params).tobytes(), name


@pytest.mark.parametrize("source", [
    "def f(x):\n    return __import__('os').system('true')\n",
    "def f(x):\n    return x.__class__\n",
    "def f(x):\n    return open('/etc/passwd')\n",
    "def f(x):\n    return [y for y in x]\n",
    "def f(x):\n    return exp(x)[0]\n",
    "def f(x):\n    return select(*x)\n",
    "def f(x):\n    return 'text'\n",
    "def f(x):\n    y = x\n    return y\n",
    "def f(x, *a):\n    return x\n",
    "import os\n",
    "def f(x):\n    return exp(x)\ndef g(x):\n    return x\n",
])
def test_an_entry_outside_the_interpreted_subset_is_refused(source):
    with pytest.raises(ValueError):
        from_entry({"args": ["x"], "source": source})


def test_malformed_entries_are_refused():
    for entry in (None, [], {"args": ["x"]}, {"args": ["y"], "source": "def f(x):\n    return x\n"}):
        with pytest.raises(ValueError):
            from_entry(entry)
    f = from_entry({"args": ["x", "y"], "source": "def f(x, y):\n    return -1/10*x**2 + exp(y)\n"})
    assert f(2.0, 0.0) == -1 / 10 * 2.0**2 + np.exp(0.0)
    with pytest.raises(TypeError):
        f(1.0)


def test_only_functions_over_numpy_are_stored():
    x = sympy.Symbol("x", real=True)
    assert to_entry(sympy.lambdify([x], sympy.exp(-x / 3), modules="numpy")) is not None
    assert to_entry(sympy.lambdify([x], sympy.besselj(0, x), modules="scipy")) is None
    assert to_entry(lambda x: x) is None
    assert to_entry(len) is None


# --------------------------------------------------------------------------- #
# rate checks
# --------------------------------------------------------------------------- #
def _fresh(model):
    """A copy of ``model`` that remembers nothing (a new process's model)."""
    return model.with_params()


def test_a_passed_rate_check_is_kept_on_disk(cache, monkeypatch):
    hh = library.hodgkin_huxley()
    hh.check_rates()
    assert len(list(cache.glob("hhsym_rates_ok_*.json"))) == 1
    calls = []
    monkeypatch.setattr(gating, "_PASSED", set())  # as in a new process
    monkeypatch.setattr(type(hh), "evaluate_rates", lambda *a, **k: calls.append(a) or {})
    assert _fresh(hh).check_rates() is not None
    assert calls == []  # the entry answered, no rate was evaluated


def test_a_changed_model_does_not_hit_a_stale_rate_check(cache):
    hh = library.hodgkin_huxley()
    hh.check_rates()
    # other rates, another rate constant, other range: each a new check, which fails
    bad = hh.with_rates({"beta_n": "0.125*exp(-(V + 65)/80) - 0.2"})
    with pytest.raises(ModelError, match="beta_n"):
        bad.check_rates()
    scaled = hh.with_rates({"alpha_h": "k_h*0.07*exp(-(V + 65)/20)"}, params={"k_h": 1.0})
    scaled.check_rates()
    with pytest.raises(ModelError, match="alpha_h"):
        scaled.with_params(k_h=-1.0).check_rates()
    with pytest.raises(ModelError):
        hh.with_rates({"alpha_m": "0.1*(V + 40)/(1 - exp(-(V + 40)/10)) - 1e-6*V**2"}).check_rates()
    assert len(list(cache.glob("hhsym_rates_ok_*.json"))) == 2  # hh and scaled: only passes are stored


def test_a_failed_check_is_never_stored(cache):
    bad = library.hodgkin_huxley().with_rates({"beta_n": "-1"})
    for _ in range(2):
        with pytest.raises(ModelError):
            bad.check_rates()
    assert not list(cache.glob("hhsym_rates_ok_*.json"))


# --------------------------------------------------------------------------- #
# resting states
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("make", MODELS)
def test_resting_states_from_the_disk_entry_equal_the_sympy_path(cache, make, monkeypatch):
    model = make()
    I0 = np.array([0.0, 1.5, -2.0, 6.0])
    direct = resting.resting_state(model, I0, None, 4)
    assert len(list(cache.glob("hhsym_steady_*.json"))) == 1
    monkeypatch.setattr(resting, "_STEADY", {})  # as in a new process
    monkeypatch.setattr(sympy, "lambdify", lambda *a, **k: pytest.fail("sympy was used"))
    again = _fresh(model)
    got = resting.resting_state(again, I0, None, 4)
    assert all(f.__qualname__.startswith("from_entry") for f in again._hhsym_steady[0].values())
    for name in model.states:
        assert got[name].tobytes() == direct[name].tobytes(), name


def test_a_changed_model_does_not_hit_stale_steady_functions(cache, monkeypatch):
    hh = library.hodgkin_huxley()
    resting.resting_state(hh)
    monkeypatch.setattr(resting, "_STEADY", {})
    slow = hh.with_rates({"alpha_n": hh.rates["alpha_n"] / 2})
    rest, want = resting.resting_state(slow), resting.resting_state(hh)
    assert len(list(cache.glob("hhsym_steady_*.json"))) == 2
    assert rest["n"][0] != want["n"][0] and rest["V"][0] != want["V"][0]
    expected = hhsym.library.hodgkin_huxley().with_rates({"alpha_n": hh.rates["alpha_n"] / 2})
    assert resting._steady_key(expected) == resting._steady_key(slow) != resting._steady_key(hh)


def test_a_corrupt_steady_entry_is_rebuilt(cache, monkeypatch):
    hh = library.hodgkin_huxley()
    want = resting.resting_state(hh)
    (path,) = cache.glob("hhsym_steady_*.json")
    data = json.loads(path.read_text())
    data["value"]["gates"]["m"]["source"] = "def f(V):\n    return __import__('os')\n"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(resting, "_STEADY", {})
    got = resting.resting_state(_fresh(hh))
    assert got["V"].tobytes() == want["V"].tobytes()
    assert "__import__" not in path.read_text()  # rebuilt from sympy and stored again
    assert "hhsym.lambdified" in sys.modules
