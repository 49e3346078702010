"""Property tests (hypothesis): any expression string, any damaged file either works or raises an
HHSymError — never another exception, never code run — and output folders are swapped in whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hhsym
from hhsym.atomic import atomic_folder
from hhsym.errors import HHSymError
from hhsym.expressions import parse, parse_srepr

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ATOMS = ["V", "x", "I", "E", "S", "N", "pi", "1", "0.5", "2e3", "1e999", "exp", "log", "sqrt", "abs",
          "__import__", "os", "system", "lambda", "'s'", "j", "1j", "0"]
_OPS = ["+", "-", "*", "/", "**", "^", "(", ")", ",", ".", "[", "]", " ", ":", "=", ";", "<", "|"]
tokens = st.lists(st.sampled_from(_ATOMS + _OPS), min_size=1, max_size=25).map("".join)


def _works_or_named(call):
    try:
        result = call()
    except HHSymError:
        return None
    return result


@PROPERTY
@given(st.one_of(tokens, st.text(max_size=60)))
def test_any_expression_string_parses_or_raises_a_named_error(text):
    expr = _works_or_named(lambda: parse(text, ("V",), where="alpha_m"))
    if expr is not None:
        assert isinstance(expr, sympy.Expr)
        assert expr.free_symbols <= {hhsym.V}
        assert not expr.has(sympy.I)


@PROPERTY
@given(st.one_of(tokens, st.text(max_size=60)))
def test_any_srepr_string_parses_or_raises_a_named_error(text):
    expr = _works_or_named(lambda: parse_srepr(text, ("V",), where="alpha_m"))
    if expr is not None:
        assert isinstance(expr, sympy.Expr)


@PROPERTY
@given(st.sampled_from(["0.1*(V + 40)/(1 - exp(-(V + 40)/10))", "4*exp(-(V + 65)/18)",
                        "1/(1 + exp(-(V + 35)/10))"]),
       st.integers(0, 60), st.sampled_from(["", "x", ")", "(", "*", "**", "I", "__", ".", "'", "9" * 30]))
def test_mutated_rates_parse_or_raise_a_named_error(text, at, insert):
    at = min(at, len(text))
    mutated = text[:at] + insert + text[at:]
    _works_or_named(lambda: hhsym.Gate("m", mutated, "1.0") and
                    hhsym.ConductanceModel([hhsym.Channel("Na", 1.0, 50.0, [hhsym.Gate("m", mutated, "1.0")]),
                                            hhsym.Channel("L", 0.3, -54.4)]))


def _damage(data: bytes, how, position, value):
    if not data:
        return bytes([value])
    position %= len(data)
    if how == "truncate":
        return data[:position]
    if how == "flip":
        b = bytearray(data)
        b[position] ^= value or 1
        return bytes(b)
    return data[:position] + bytes([value]) * 16 + data[position:]


damage = st.tuples(st.sampled_from(["truncate", "flip", "insert"]), st.integers(0, 10**6), st.integers(0, 255))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("damaged")
    hh = hhsym.library.hodgkin_huxley()
    tr = hhsym.simulate(hh, hhsym.stimuli.Step(10.0, 2.0, 8.0), 10.0, dt=0.05)
    tr.save(tmp / "t.csv")
    tr.save(tmp / "t.npz")
    (tmp / "m.json").write_text(json.dumps(hh.to_dict()))
    return {name: (tmp / name).read_bytes() for name in ("t.csv", "t.npz", "m.json")}, tmp


@PROPERTY
@given(st.sampled_from(["t.csv", "t.npz", "m.json"]), damage)
def test_damaged_files_read_or_raise_a_named_error(files, name, how):
    originals, tmp = files
    path = tmp / f"d_{name}"
    path.write_bytes(_damage(originals[name], *how))
    if name == "m.json":
        _works_or_named(lambda: hhsym.load_model(path))
    else:
        _works_or_named(lambda: hhsym.read_traces(path))


@PROPERTY
@given(st.binary(max_size=300))
def test_random_bytes_read_or_raise_a_named_error(files, data):
    _, tmp = files
    for name in ("r.csv", "r.npz", "r.json"):
        (tmp / name).write_bytes(data)
    _works_or_named(lambda: hhsym.read_traces(tmp / "r.csv"))
    _works_or_named(lambda: hhsym.read_traces(tmp / "r.npz"))
    _works_or_named(lambda: hhsym.load_model(tmp / "r.json"))
    _works_or_named(lambda: hhsym.load(tmp / "r.npz"))


# ---------------------------------------------------------------- whole-folder swaps


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "report"
    with atomic_folder(out) as work:
        (tmp_path / "x").write_text("")  # unrelated
        open(os.path.join(work, "old.txt"), "w").write("old")
    assert sorted(os.listdir(out)) == ["old.txt"]
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as work:
            open(os.path.join(work, "new.txt"), "w").write("new")
            raise RuntimeError("crash midway")
    assert sorted(os.listdir(out)) == ["old.txt"]
    with atomic_folder(out) as work:
        open(os.path.join(work, "new.txt"), "w").write("new")
    assert sorted(os.listdir(out)) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["report", "x"]  # no temporaries left


def _kill_midway(tmp_path, sig):
    """Start a process that writes a folder slowly, kill it with ``sig`` midway; the process's exit code."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from hhsym.cli import _on_signals
        from hhsym.atomic import atomic_folder, atomic_write
        _on_signals()
        try:
            with atomic_folder({str(tmp_path / 'out')!r}) as work:
                atomic_write(os.path.join(work, 'a.txt'), lambda f: f.write('new'))
                print('ready', flush=True)
                # short sleeps: the signal may land on a native thread (BLAS), which does not wake a long one
                atomic_write(os.path.join(work, 'b.txt'), lambda f: (f.write('x'), f.flush(), [time.sleep(0.05) for _ in range(1200)]))
        except BaseException as exc:
            sys.exit(143)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    return proc.wait(timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_writer_leaves_the_old_folder_and_no_temporaries(tmp_path, sig):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    code = _kill_midway(tmp_path, sig)
    assert code != 0
    assert sorted(os.listdir(out)) == ["a.txt"] and (out / "a.txt").read_text() == "old"
    if sig == signal.SIGTERM:
        assert sorted(os.listdir(tmp_path)) == ["out"]  # cleaned up on the way out
    else:
        # kill -9 cannot be caught: the next write of the same folder removes what it left
        with atomic_folder(out) as work:
            open(os.path.join(work, "a.txt"), "w").write("newer")
        assert sorted(os.listdir(tmp_path)) == ["out"]
        assert (out / "a.txt").read_text() == "newer"


def test_interrupted_swap_is_restored(tmp_path):
    """A crash between the swap's two renames leaves the previous folder aside; the next write restores it."""
    aside = tmp_path / ".report.old.999999.tmp"
    aside.mkdir()
    (aside / "old.txt").write_text("old")
    from hhsym.atomic import _remove_stale

    _remove_stale(str(tmp_path), "report")
    assert (tmp_path / "report" / "old.txt").read_text() == "old"
    assert not aside.exists()


def test_report_folder_is_swapped_in_whole(tmp_path):
    """write_report builds beside the target: a failure leaves the previous report as it was."""
    from hhsym.report import write_report

    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.md").write_text("previous")
    with pytest.raises(HHSymError):
        write_report(out, [], estimator=hhsym.RateEstimator())  # not fitted: fails midway
    assert sorted(os.listdir(out)) == ["report.md"] and (out / "report.md").read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["rep"]
