"""Bad and hostile input, API and command line: each kind gets a named HHSymError, never a raw
exception, a NaN or a silent answer, and nothing read from text ever runs.

The table ``CASES`` lists one row per kind: an id, a callable taking the shared context, the
expected error class and a fragment of its message.  Hostile payloads try to create a sentinel
file; every test checks that it never appears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import hhsym
from hhsym import Channel, ConductanceModel, Gate, stimuli
from hhsym.errors import (ArgumentTypeError, HHSymError, InvalidArgumentError, ModelError, NotFittedError,
                          TraceFileError, UnknownNameError)
from hhsym.expressions import parse, parse_srepr
from hhsym.io.trace import Trace

SENTINEL = "hhsym_sentinel_must_not_exist"


def payload(ctx, kind="system"):
    """Python that would create the sentinel file if it were ever evaluated."""
    path = ctx.sentinel
    return {
        "system": f"__import__('os').system('touch {path}')",
        "open": f"open('{path}', 'w').write('x')",
        "lambda": f"(lambda: __import__('os').system('touch {path}'))()",
        "dunder": "().__class__.__bases__[0].__subclasses__()",
        "getattr": f"getattr(__import__('os'), 'system')('touch {path}')",
    }[kind]


def hh_dict():
    return hhsym.library.hodgkin_huxley().to_dict()


def model_with_rate(ctx, text, kind="alpha"):
    d = hh_dict()
    d["channels"][0]["gates"][0][kind] = text
    return d


def write_json(ctx, name, data):
    path = ctx.tmp / name
    path.write_text(json.dumps(data))
    return str(path)


def fit_file_with_meta(ctx, change):
    """A copy of the fitted estimator's file whose metadata went through ``change(meta)``."""
    with np.load(ctx.fit_path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    path = ctx.tmp / f"meta_{abs(hash(str(meta))) % 10**8}.npz"
    np.savez(path, **arrays)
    return str(path)


def damaged(ctx, how):
    data = bytearray(open(ctx.fit_path, "rb").read())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "crc":  # flip a byte inside the first member's compressed data
        data[200] ^= 0xFF
    elif how == "random":
        data = bytearray(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif how == "empty":
        data = bytearray()
    path = ctx.tmp / f"damaged_{how}.npz"
    path.write_bytes(bytes(data))
    return str(path)


def csv(ctx, name, text):
    path = ctx.tmp / name
    path.write_text(text)
    return str(path)


def trace(t_scale=1.0, v_scale=1.0, i_scale=1.0, n=2001):
    hh = hhsym.library.hodgkin_huxley()
    tr = hhsym.simulate(hh, stimuli.Step(10.0, 5.0, 45.0), 50.0, dt=0.025)
    return Trace(tr.t * t_scale, tr.V * v_scale, tr.I * i_scale)


def no_gates():
    return ConductanceModel([Channel("L", 0.3, -54.4)])


def negative_rates():
    return ConductanceModel([Channel("K", 36, -77, [Gate("n", "-0.01*exp(V/20)", "-0.125*exp(-(V+65)/80)", 4)]),
                             Channel("L", 0.3, -54.4)])


def gate(alpha, beta="1.0"):
    return ConductanceModel([Channel("K", 36, -77, [Gate("n", alpha, beta, 4)]), Channel("L", 0.3, -54.4)])


def cli(*argv):
    from hhsym.cli import main

    return main([str(a) for a in argv])


# (id, callable(ctx), expected error class, message fragment)
CASES = [
    # ---- expressions from user strings (Gate / ConductanceModel)
    ("expr-import-system", lambda c: gate(payload(c)), ModelError, "only plain function names"),
    ("expr-open-file", lambda c: gate(payload(c, "open")), ModelError, "only plain function names"),
    ("expr-lambda", lambda c: gate(payload(c, "lambda")), ModelError, "only plain function names"),
    ("expr-dunder-subclasses", lambda c: gate(payload(c, "dunder")), ModelError, "only plain function names"),
    ("expr-getattr", lambda c: gate(payload(c, "getattr")), ModelError, "only plain function names"),
    ("expr-bare-lambda", lambda c: gate("lambda: 1"), ModelError, "Lambda is not accepted"),
    ("expr-subscript", lambda c: gate("V[0]"), ModelError, "Subscript is not accepted"),
    ("expr-walrus", lambda c: gate("(x := V)"), ModelError, "NamedExpr is not accepted"),
    ("expr-bitwise", lambda c: gate("V | 1"), ModelError, "BitOr"),
    ("expr-imaginary-I", lambda c: gate("I*V"), ModelError, "'I' is not accepted"),
    ("expr-euler-E", lambda c: gate("E*exp(V)"), ModelError, "'E' is not accepted"),
    ("expr-sympy-S", lambda c: gate("S(1)*V"), ModelError, "'S' is not accepted"),
    ("expr-sympy-N", lambda c: gate("N(V)"), ModelError, "'N' is not accepted"),
    ("expr-unknown-name", lambda c: gate("0.1*x*V"), ModelError, "unknown name 'x'"),
    ("expr-unclosed", lambda c: gate("exp(V"), ModelError, "never closed"),
    ("expr-implicit-product", lambda c: gate("2V"), ModelError, "write products with '*'"),
    ("expr-attribute", lambda c: gate("V.real"), ModelError, "Attribute is not accepted"),
    ("expr-comparison", lambda c: gate("V < 0"), ModelError, "Compare is not accepted"),
    ("expr-conditional", lambda c: gate("1 if V else 2"), ModelError, "IfExp is not accepted"),
    ("expr-string-literal", lambda c: gate("'abc'"), ModelError, "not a real number"),
    ("expr-complex-literal", lambda c: gate("1j*V"), ModelError, "not a real number"),
    ("expr-huge-power", lambda c: gate("10**10**10"), ModelError, "exceeds 1000"),
    ("expr-division-by-zero", lambda c: gate("1/0"), ModelError, "infinite or undefined"),
    ("expr-10MB", lambda c: gate("V+" * 5_000_000 + "V"), ModelError, "characters long"),
    ("expr-100k-terms", lambda c: gate("+".join(["V"] * 100_000)), ModelError, "characters long"),
    ("expr-deep-nesting", lambda c: gate("-" * 5000 + "V"), ModelError, "nested"),
    ("expr-deep-parentheses", lambda c: gate("(" * 5000 + "V" + ")" * 5000), ModelError, "nested"),
    ("expr-wrong-arity", lambda c: gate("exp(V, 2)"), ModelError, "takes 1 argument"),
    ("expr-keyword-argument", lambda c: gate("exp(x=V)"), ModelError, "plain arguments"),
    ("expr-two-statements", lambda c: gate("V; V"), ModelError, "one expression"),
    ("expr-empty", lambda c: gate("   "), ModelError, "empty"),
    ("expr-list-value", lambda c: gate([1, 2]), ModelError, "a string, a number or a sympy expression"),
    ("expr-nan-number", lambda c: gate(float("nan")), ModelError, "finite number"),
    ("expr-sympy-imaginary", lambda c: gate(hhsym.V * __import__("sympy").I), ModelError, "imaginary unit"),
    # ---- model structure
    ("model-channels-dict", lambda c: ConductanceModel({"L": Channel("L", 0.3, -54.4)}), ModelError,
     "channels must be Channel objects"),
    ("model-no-channels", lambda c: ConductanceModel([]), ModelError, "at least one channel"),
    ("model-negative-conductance", lambda c: Channel("K", -1.0, -77.0), InvalidArgumentError, "g_K"),
    ("model-bad-gate-name", lambda c: Gate("1x", "V", "V"), ModelError, "invalid gate name"),
    ("model-power-zero", lambda c: Gate("n", "V", "V", 0), ModelError, "an integer >= 1"),
    ("model-unknown-param", lambda c: hhsym.library.hodgkin_huxley().with_params(g_Xx=1.0), UnknownNameError,
     "g_Xx"),
    ("model-negative-rates-simulated", lambda c: hhsym.simulate(negative_rates(), stimuli.Step(1, 1, 5), 10),
     ModelError, "must be finite and >= 0"),
    # ---- model JSON (load_model / from_dict)
    ("json-srepr-payload", lambda c: hhsym.load_model(write_json(c, "m1.json", model_with_rate(c, payload(c)))),
     ModelError, "not a sympy constructor"),
    ("json-srepr-unknown-constructor",
     lambda c: hhsym.load_model(write_json(c, "m2.json", model_with_rate(c, "Function('f')(Symbol('V'))"))),
     ModelError, "not"),
    ("json-srepr-unknown-symbol",
     lambda c: hhsym.load_model(write_json(c, "m3.json", model_with_rate(c, "Symbol('x', real=True)"))),
     ModelError, "unknown name 'x'"),
    ("json-srepr-float-text",
     lambda c: hhsym.load_model(write_json(c, "m4.json", model_with_rate(c, "Float('__import__', precision=53)"))),
     ModelError, "not a finite number"),
    ("json-unknown-key", lambda c: hhsym.load_model(write_json(c, "m5.json", {**hh_dict(), "evil": 1})),
     ModelError, "unknown key"),
    ("json-channels-not-list", lambda c: hhsym.load_model(write_json(c, "m6.json", {**hh_dict(), "channels": {}})),
     ModelError, "'channels' a list"),
    ("json-missing-key", lambda c: hhsym.load_model(
        write_json(c, "m7.json", {k: v for k, v in hh_dict().items() if k != "C_m"})), ModelError, "'C_m'"),
    ("json-not-json", lambda c: hhsym.load_model(csv(c, "m8.json", "{not json")), InvalidArgumentError,
     "cannot read model file"),
    ("json-missing-file", lambda c: hhsym.load_model(c.tmp / "absent.json"), InvalidArgumentError, "an existing"),
    ("json-wrong-format", lambda c: hhsym.load_model(write_json(c, "m9.json", {"format": "x"})), ModelError,
     "no hhsym model"),
    # ---- fit files (hhsym.load)
    ("fit-truncated", lambda c: hhsym.load(damaged(c, "truncated")), TraceFileError, "damaged"),
    ("fit-bad-crc", lambda c: hhsym.load(damaged(c, "crc")), TraceFileError, "damaged"),
    ("fit-random-bytes", lambda c: hhsym.load(damaged(c, "random")), TraceFileError, "damaged"),
    ("fit-empty-file", lambda c: hhsym.load(damaged(c, "empty")), TraceFileError, "damaged"),
    ("fit-missing", lambda c: hhsym.load(c.tmp / "absent.npz"), TraceFileError, "an existing fit file"),
    ("fit-unknown-meta-key", lambda c: hhsym.load(fit_file_with_meta(c, lambda m: m.update(evil=1))),
     TraceFileError, "unknown metadata key"),
    ("fit-unknown-param", lambda c: hhsym.load(fit_file_with_meta(c, lambda m: m["params"].update(evil=1))),
     TraceFileError, "unknown estimator parameter"),
    ("fit-hostile-rate", lambda c: hhsym.load(fit_file_with_meta(
        c, lambda m: m["model"]["channels"][0]["gates"][0].update(alpha=payload(c)))), ModelError,
     "not a sympy constructor"),
    ("fit-meta-wrong-type", lambda c: hhsym.load(fit_file_with_meta(c, lambda m: m.update(names="m"))),
     TraceFileError, "'names' must be a list"),
    ("fit-bad-param-value", lambda c: hhsym.load(fit_file_with_meta(c, lambda m: m["params"].update(ridge=-1))),
     TraceFileError, "parameters are invalid"),
    # ---- estimator parameters and predictions
    ("est-random-state-text", lambda c: hhsym.RateEstimator(c.hh, random_state="abc").fit(c.traces),
     ArgumentTypeError, "random_state"),
    ("est-random-state-negative", lambda c: hhsym.RateEstimator(c.hh, random_state=-1).fit(c.traces),
     InvalidArgumentError, "random_state"),
    ("est-no-gates", lambda c: hhsym.RateEstimator(no_gates()).fit(c.traces), InvalidArgumentError,
     "at least one gated channel"),
    ("est-time-limit-negative", lambda c: hhsym.RateEstimator(c.hh, time_limit=-5).fit(c.traces),
     InvalidArgumentError, "time_limit"),
    ("est-free-unknown-scalar", lambda c: hhsym.RateEstimator(c.hh, free="g_X").fit(c.traces),
     InvalidArgumentError, "names among"),
    ("est-free-bounds-exclude-start", lambda c: hhsym.RateEstimator(c.hh, free="E_L=-90:-80").fit(c.traces),
     InvalidArgumentError, "bounds of E_L"),
    ("est-fixed-not-a-list", lambda c: hhsym.RateEstimator(c.hh, fixed=3).fit(c.traces), ArgumentTypeError,
     "fixed"),
    ("est-hidden-zero", lambda c: hhsym.RateEstimator(c.hh, hidden=(0,)).fit(c.traces), InvalidArgumentError,
     "hidden"),
    ("est-model-string", lambda c: hhsym.RateEstimator("hh").fit(c.traces), InvalidArgumentError,
     "ConductanceModel"),
    ("est-predict-text", lambda c: c.est.predict_rates("abc"), ArgumentTypeError, "membrane potentials"),
    ("est-predict-nan", lambda c: c.est.predict_rates([np.nan, -60.0]), InvalidArgumentError, "finite"),
    ("est-predict-unfitted", lambda c: hhsym.RateEstimator(c.hh).predict_rates([-60.0]), NotFittedError,
     "not fitted"),
    ("est-save-wrong-suffix", lambda c: c.est.save(c.tmp / "fit.txt"), InvalidArgumentError, ".npz"),
    ("est-save-missing-folder", lambda c: c.est.save(c.tmp / "absent" / "fit.npz"), InvalidArgumentError,
     "does not exist"),
    ("forms-no-gates", lambda c: hhsym.FormEstimator(no_gates()).fit(c.traces), InvalidArgumentError,
     "at least one gated channel"),
    ("forms-random-state-text", lambda c: hhsym.FormEstimator(c.hh, random_state="abc").fit(c.traces),
     ArgumentTypeError, "random_state"),
    # ---- recordings: units and shapes
    ("traces-t-in-seconds", lambda c: hhsym.RateEstimator(c.hh).fit([trace(t_scale=1e-3)]),
     InvalidArgumentError, "seconds"),
    ("traces-V-in-volts", lambda c: hhsym.RateEstimator(c.hh).fit([trace(v_scale=1e-3)]),
     InvalidArgumentError, "volts"),
    ("traces-I-in-pA", lambda c: hhsym.RateEstimator(c.hh).fit([trace(i_scale=1e4)]),
     InvalidArgumentError, "pA"),
    ("traces-not-traces", lambda c: hhsym.RateEstimator(c.hh).fit("cell.csv"), ArgumentTypeError, "traces"),
    ("traces-empty-list", lambda c: hhsym.RateEstimator(c.hh).fit([]), InvalidArgumentError, "at least one"),
    ("traces-nan", lambda c: hhsym.RateEstimator(c.hh).fit([Trace(np.arange(20.0), np.r_[np.nan, np.zeros(19)],
                                                                  np.zeros(20))]),
     InvalidArgumentError, "finite"),
    # ---- trace files
    ("csv-missing-column", lambda c: hhsym.read_trace(csv(c, "a.csv", "t,V\n0,1\n1,2\n")), TraceFileError, "I"),
    ("csv-not-numbers", lambda c: hhsym.read_trace(csv(c, "b.csv", "t,V,I\n0,a,1\n1,2,3\n")), TraceFileError,
     "b.csv"),
    ("csv-empty", lambda c: hhsym.read_trace(csv(c, "c.csv", "")), TraceFileError, "c.csv"),
    ("npz-random-bytes", lambda c: hhsym.read_traces(csv(c, "d.npz", "garbage" * 100)), TraceFileError, "d.npz"),
    # ---- simulate
    ("simulate-too-long", lambda c: hhsym.simulate(c.hh, stimuli.Step(1, 0, 1e8), 3e6, dt=0.01),
     InvalidArgumentError, "fits in memory"),
    ("simulate-negative-dt", lambda c: hhsym.simulate(c.hh, stimuli.Step(1, 0, 10), 10, dt=-0.01),
     InvalidArgumentError, "dt"),
    ("simulate-unknown-method", lambda c: hhsym.simulate(c.hh, stimuli.Step(1, 0, 10), 10, method="euler"),
     UnknownNameError, "euler"),
    ("simulate-not-stimulus", lambda c: hhsym.simulate(c.hh, 5.0, 10), ArgumentTypeError, "stimulus"),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    hh = hhsym.library.hodgkin_huxley()
    traces = [hhsym.simulate(hh, stimuli.OUNoise(8.0, 3.0, 2.0, s), 30.0, dt=0.025) for s in (1, 2)]
    est = hhsym.RateEstimator(hh, max_iter=(0, 2, 0), spline_knots=(), n_shooting=0, random_state=0)
    with pytest.warns(hhsym.PoorFitWarning):
        est.fit(traces)
    fit_path = str(tmp / "fit.npz")
    est.save(fit_path)
    return SimpleNamespace(tmp=tmp, hh=hh, traces=traces, est=est, fit_path=fit_path,
                           sentinel=str(tmp / SENTINEL))


def test_at_least_sixty_kinds():
    ids = [case[0] for case in CASES]
    assert len(set(ids)) == len(ids)
    assert len(ids) + len(CLI_CASES) >= 60


@pytest.mark.parametrize("kind, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(ctx, kind, call, error, fragment):
    with pytest.raises(error) as info:
        call(ctx)
    assert isinstance(info.value, HHSymError)
    message = str(info.value)
    assert fragment in message
    assert len(message) < 2000  # a 5000-deep nesting must not give a 170 KB message
    assert not os.path.exists(ctx.sentinel)


# (id, argv builder(ctx), exit code, stderr fragment)
CLI_CASES = [
    ("cli-seed-negative", lambda c: ["fit", c.csv, "--seed", "-1", "--out", c.tmp / "f.npz"], 2, "--seed"),
    ("cli-time-limit-negative", lambda c: ["fit", c.csv, "--time-limit", "-5", "--out", c.tmp / "f.npz"], 2,
     "--time-limit"),
    ("cli-fit-out-txt", lambda c: ["fit", c.csv, "--out", c.tmp / "f.txt"], 2, ".npz"),
    ("cli-fit-fixed-unknown-gate", lambda c: ["fit", c.csv, "--fixed", "q", "--out", c.tmp / "f.npz"], 2,
     "gate names of"),
    ("cli-fit-out-missing-folder", lambda c: ["fit", c.csv, "--out", c.tmp / "absent" / "f.npz"], 2,
     "does not exist"),
    ("cli-fit-out-read-only", lambda c: ["fit", c.csv, "--out", c.readonly / "f.npz"], 2, "not writable"),
    ("cli-fit-out-under-a-file", lambda c: ["fit", c.csv, "--out", os.path.join(c.csv, "f.npz")], 2,
     "does not exist"),
    ("cli-distill-json-missing-folder", lambda c: ["distill", c.fit_path, "--json", c.tmp / "absent" / "m.json"], 2,
     "does not exist"),
    ("cli-distill-hostile-fit", lambda c: ["distill", c.hostile_fit, "--json", c.tmp / "m.json"], 1, "ModelError"),
    ("cli-report-hostile-model", lambda c: ["report", c.fit_path, c.csv, "--model-json", c.hostile_json,
                                            "--out", c.tmp / "rep"], 1, "ModelError"),
    ("cli-simulate-too-long", lambda c: ["simulate", "--stimulus", "step:1,0,1e8", "--t-stop", "3e6",
                                         "--out", c.tmp / "s.npz"], 2, "fits in memory"),
    ("cli-simulate-bad-stimulus", lambda c: ["simulate", "--stimulus", "zap:1", "--out", c.tmp / "s.npz"], 2,
     "unknown stimulus kind"),
    ("cli-param-not-number", lambda c: ["simulate", "--stimulus", "step:1,0,5", "--param", "g_Na=abc",
                                        "--out", c.tmp / "s.npz"], 2, "not a number"),
    ("cli-demo-out-is-file", lambda c: ["demo", "--out", c.csv], 2, "existing file"),
    ("cli-forms-time-limit-zero", lambda c: ["forms", c.csv, "--time-limit", "0", "--json", c.tmp / "m.json"], 2,
     "--time-limit"),
]


@pytest.fixture(scope="module")
def cli_ctx(ctx):
    c = SimpleNamespace(**vars(ctx))
    c.csv = str(ctx.tmp / "cell.csv")
    ctx.traces[0].save(c.csv)
    c.readonly = ctx.tmp / "readonly"
    c.readonly.mkdir()
    c.readonly.chmod(0o555)
    c.hostile_json = write_json(ctx, "hostile.json", model_with_rate(ctx, payload(ctx)))
    c.hostile_fit = fit_file_with_meta(
        ctx, lambda m: m["model"]["channels"][0]["gates"][0].update(beta=payload(ctx, "open")))
    return c


@pytest.mark.parametrize("kind, argv, code, fragment", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(cli_ctx, capsys, kind, argv, code, fragment):
    if kind == "cli-fit-out-read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    assert cli(*argv(cli_ctx)) == code
    assert fragment in capsys.readouterr().err
    assert not os.path.exists(cli_ctx.sentinel)


def test_hostile_model_file_in_a_fresh_process(ctx, tmp_path):
    """The whole round: a model JSON with a payload, loaded by a new interpreter and by the CLI."""
    hostile = write_json(ctx, "fresh.json", model_with_rate(ctx, payload(ctx, "getattr"), kind="beta"))
    code = f"import hhsym\ntry:\n    hhsym.load_model({hostile!r})\nexcept hhsym.HHSymError as e:\n    print('named', type(e).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "named ModelError" in out.stdout
    assert not os.path.exists(ctx.sentinel)


def test_expression_reader_keeps_textbook_rates_exact(hh):
    for name, expr in hh.rates.items():
        again = parse(str(expr), ("V",), where=name)
        assert again == expr
        import sympy

        assert parse_srepr(sympy.srepr(expr), ("V",), where=name) == expr
    assert parse("2^3*V") == 8 * hhsym.V
    assert parse("pi*V") == __import__("sympy").pi * hhsym.V


def test_fit_judges_itself(ctx):
    q = ctx.est.quality_
    assert q.verdict == "poor" and not q.ok
    assert "does not reproduce" in q.reason
    assert q.n_spikes[0] > 0
    again = hhsym.load(ctx.fit_path)
    assert again.quality_ == q


@pytest.mark.slow
def test_cli_poor_fit_exit_code(cli_ctx, capsys):
    """A fit that cannot reproduce its data exits 3 unless --accept-poor-fit (the fit is written anyway)."""
    flipped = str(cli_ctx.tmp / "flipped.csv")
    tr = cli_ctx.traces[0]
    Trace(tr.t, tr.V, -tr.I).save(flipped)
    out = cli_ctx.tmp / "poor.npz"
    assert cli("fit", flipped, "--time-limit", "5", "--quiet", "--out", out) == 3
    assert "poor fit" in capsys.readouterr().err
    assert out.exists()
    assert cli("fit", flipped, "--time-limit", "5", "--quiet", "--accept-poor-fit", "--out", out) == 0
