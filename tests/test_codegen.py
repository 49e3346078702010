"""Code generation: disk cache across processes, vectorisable math accuracy, source shape."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from hhsym.codegen import cache_dir, generate_source
from hhsym.errors import UnknownNameError
from hhsym.integrate.vmath import vexp, vexpm1_ratio, vtanh


@numba.njit
def _apply(f_id, x, out):
    for i in range(x.size):
        if f_id == 0:
            out[i] = vexp(x[i])
        elif f_id == 1:
            out[i] = vtanh(x[i])
        else:
            out[i] = vexpm1_ratio(x[i])


@numba.njit(fastmath={"contract"})  # as in the generated kernels: multiply-adds may fuse
def _vexp_fused(x, out):
    for i in range(x.size):
        out[i] = vexp(x[i])


@pytest.mark.parametrize("fused", [False, True])
def test_vexp_is_accurate_to_2_ulp(fused):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-700, 700, 200_000), np.linspace(-5, 5, 10_001),
                        rng.uniform(-0.35, 0.35, 100_000), [0.0, -708.0, 709.0]])
    out = np.empty_like(x)
    if fused:
        _vexp_fused(x, out)
    else:
        _apply(0, x, out)
    rel = np.abs(out / np.exp(x) - 1)
    assert rel.max() <= 2 * np.finfo(float).eps
    assert out[-3] == 1.0


def test_vtanh_and_linoid_kernel():
    x = np.linspace(-30, 30, 60_001)
    out = np.empty_like(x)
    _apply(1, x, out)
    np.testing.assert_allclose(out, np.tanh(x), rtol=0, atol=3e-16)
    _apply(2, x, out)
    with np.errstate(invalid="ignore"):
        ref = np.where(x == 0, 1.0, x / -np.expm1(-x))
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_source_has_no_hand_written_model(hh):
    src = generate_source(hh, "rk4")
    assert "def rhs_block" in src and "def fixed_run" in src and "math.exp" not in src
    assert "0.07" in src  # alpha_h's constant comes from the sympy expression
    with pytest.raises(UnknownNameError, match="rk45"):
        generate_source(hh, "rk45")


@pytest.mark.slow
def test_second_process_loads_compiled_kernels_from_disk(hh, tmp_path):
    """A fresh process reuses the generated module and numba's on-disk objects (cache hits)."""
    script = textwrap.dedent(
        """
        import hhsym.library as L
        from hhsym.simulate import simulate
        from hhsym.stimuli import Step
        from hhsym.codegen import compile_model
        m = L.hodgkin_huxley(g_K=30.0)  # other parameter values share the kernel
        simulate(m, Step(10.0, 1.0, 5.0), 5.0, method="exp_euler")
        k = compile_model(m, "exp_euler")
        print(sum(k.run.stats.cache_hits.values()), sum(k.run.stats.cache_misses.values()))
        """
    )
    env = {**os.environ, "HHSYM_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["0", "1"]
    assert second.stdout.split() == ["1", "0"]
    assert list(tmp_path.glob("hhsym_kernel_exp_euler_*.py"))


@pytest.mark.slow
def test_first_call_of_a_new_process_only_loads_the_cache(tmp_path):
    """A second process finds the kernel module through the index: no sympy printing, no compile.

    Nor does it build numpy functions with sympy for the rate check and the resting state (their
    results are on disk, :mod:`hhsym.diskcache`).  Its first simulate() call (OU currents generated
    inside) gives the same bits as the first process's.
    """
    script = textwrap.dedent(
        """
        import numpy as np
        import hashlib
        import sympy
        import hhsym
        import hhsym.codegen as cg
        from hhsym.stimuli import OUNoise
        calls, lambdas = [], []
        generate, lambdify = cg.generate_source, sympy.lambdify
        cg.generate_source = lambda *a: calls.append(a) or generate(*a)
        sympy.lambdify = lambda *a, **k: lambdas.append(a) or lambdify(*a, **k)
        tr = hhsym.simulate(hhsym.library.hodgkin_huxley(), [OUNoise(8, 4, 3, seed=k) for k in range(40)],
                            5.0, record=())
        k = cg.compile_model(hhsym.library.hodgkin_huxley(), "rk4")
        print(len(calls), sum(k.run.stats.cache_misses.values()), len(lambdas), hashlib.sha256(tr.V.tobytes()).hexdigest())
        """
    )
    env = {**os.environ, "HHSYM_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    generated, misses, lambdas, bits = first.stdout.split()
    assert (generated, misses) == ("1", "1") and int(lambdas) > 0
    assert second.stdout.split() == ["0", "0", "0", bits]
    assert len(list(tmp_path.glob("hhsym_index_rk4_*.txt"))) == 1


def test_a_corrupt_index_entry_regenerates_the_module(hh, tmp_path, monkeypatch):
    """An index naming no valid module is ignored: the module is generated and the index rewritten."""
    import hhsym.codegen as cg

    monkeypatch.setenv("HHSYM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cg, "_LOADED", {})
    index = tmp_path / f"hhsym_index_rk4_{cg._index_digest(hh, 'rk4')}.txt"
    index.write_text("../../elsewhere")
    module = cg.compile_model(hh, "rk4")
    assert index.read_text() == module.__name__
    assert (tmp_path / f"{module.__name__}.py").is_file()


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HHSYM_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path


def test_kernel_hints_reach_llvm():
    """wide_vectors / restrict_arrays mark the compiled function (512-bit preference, noalias data)."""
    from hhsym.integrate.vmath import restrict_arrays, wide_vectors

    @numba.njit
    def axpy(a, x, y):
        wide_vectors()
        restrict_arrays()
        for i in range(x.size):
            y[i] += a * x[i]

    x = np.arange(20.0)
    y = np.ones(20)
    axpy(2.0, x, y)
    np.testing.assert_array_equal(y, 1.0 + 2.0 * x)
    ir = next(iter(axpy.inspect_llvm().values()))
    header = next(line for line in ir.splitlines() if line.startswith("define") and "axpy" in line
                  and "cpython" not in line and "cfunc" not in line)
    assert "noalias" in header.split("%arg.x.4")[0].rsplit(",", 1)[-1]
    assert "noalias" in header.split("%arg.y.4")[0].rsplit(",", 1)[-1]
    assert '"prefer-vector-width"="512"' in ir


@pytest.mark.parametrize("method", ["rk4", "exp_euler", "dopri5"])
def test_model_names_never_clash_with_the_kernels_own_names(method):
    """Gates called like the generated lane's arguments (y, p, their underscored forms) still compile and run."""
    from hhsym import Channel, ConductanceModel, Gate, simulate
    from hhsym.stimuli import Step

    gates = [Gate(name, "0.1*exp((V + 60)/20)", "0.1*exp(-(V + 60)/20)") for name in ("y", "p", "_p")]
    model = ConductanceModel([Channel("A", 1.0, -80.0, gates[:2]), Channel("B", 0.5, -70.0, gates[2:]),
                              Channel("L", 0.3, -65.0)], C_m=1.0, name="clash")
    assert "def rhs_lane(_y, I_j, __p):" in generate_source(model, method)
    tr = simulate(model, Step(2.0, 5.0, 15.0), 20.0, dt=0.01, method=method)
    assert np.all(np.isfinite(tr.V)) and set(tr.states) >= {"y", "p", "_p"}


@pytest.mark.parametrize("method", ["rk4", "exp_euler"])
def test_a_gate_named_like_the_current_is_not_the_current(method):
    """A gate called I_j (the kernels' name of a neuron's current) simulates exactly like the same gate
    under another name (before, the gate's value stood in for the current, or the kernel failed)."""
    from hhsym import Channel, ConductanceModel, Gate, simulate
    from hhsym.stimuli import Step

    def model(name):
        gate = Gate(name, "0.1*exp((V + 60)/20)", "0.1*exp(-(V + 60)/20)")
        return ConductanceModel([Channel("A", 1.0, -80.0, [gate]), Channel("L", 0.3, -65.0)], C_m=1.0, name=name)

    a = simulate(model("I_j"), Step(2.0, 5.0, 15.0), 20.0, dt=0.01, method=method)
    b = simulate(model("x"), Step(2.0, 5.0, 15.0), 20.0, dt=0.01, method=method)
    np.testing.assert_array_equal(a.V, b.V)
