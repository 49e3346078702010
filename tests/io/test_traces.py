"""Tests of hhsym.io."""

import json
import os

import numpy as np
import pytest

from hhsym.errors import ArgumentTypeError, HHSymError, InvalidArgumentError, TraceFileError
from hhsym.io import Trace, TraceSet, csv_io, npz_io, read_trace, read_traces


def make_trace(n=201, seed=0, states=True, meta=True):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 20.0, n)
    V = -65.0 + 30.0 * rng.standard_normal(n) / 3.0  # awkward floats
    I = rng.uniform(-1.0, 10.0, n) / 7.0
    st = {"m": rng.uniform(0, 1, n), "h": rng.uniform(0, 1, n) * 1e-17} if states else None
    md = {"model": "HH", "method": "rk4", "dt": 0.1, "params": {"g_Na": 120.0}} if meta else None
    return Trace(t, V, I, st, md)


def assert_same(a, b):
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.I, b.I)
    assert list(a.states) == list(b.states)
    for k in a.states:
        np.testing.assert_array_equal(a.states[k], b.states[k])
    assert a.meta == b.meta


def tmp_files(directory):
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- #
# construction and properties
# --------------------------------------------------------------------------- #
def test_trace_properties():
    tr = make_trace()
    assert len(tr) == tr.n_samples == 201
    assert tr.duration == 20.0
    assert tr.is_uniform
    assert tr.dt == pytest.approx(0.1, rel=1e-12)
    assert tr.t.dtype == np.float64 and tr.V.dtype == np.float64
    assert set(tr.states) == {"m", "h"}
    r = repr(tr)
    assert "n_samples=201" in r and "dt=0.1 ms" in r and "states=['m', 'h']" in r


def test_trace_copies_and_is_read_only():
    t = np.arange(5.0)
    V = np.zeros(5)
    tr = Trace(t, V, np.zeros(5), {"m": np.ones(5)}, {"a": [1, 2]})
    V[0] = 99.0
    assert tr.V[0] == 0.0
    with pytest.raises(ValueError):
        tr.V[0] = 1.0
    c = tr.copy()
    assert_same(c, tr)
    assert c.V is not tr.V and c.meta is not tr.meta
    c.meta["a"].append(3)
    assert tr.meta["a"] == [1, 2]


def test_trace_integer_inputs_and_numpy_meta():
    tr = Trace([0, 1, 2], [1, 2, 3], [0, 0, 0], meta={"n": np.int64(3), "x": np.arange(2)})
    assert tr.V.dtype == np.float64
    assert tr.meta == {"n": 3, "x": [0, 1]}


def test_non_uniform_dt_raises():
    tr = Trace([0.0, 1.0, 2.5, 3.0], np.zeros(4), np.zeros(4))
    assert not tr.is_uniform
    with pytest.raises(InvalidArgumentError, match="not uniform"):
        tr.dt
    assert "non-uniform" in repr(tr)
    # jitter within the tolerance is uniform
    t = np.arange(100) * 0.1 * (1 + 1e-8 * np.sin(np.arange(100)))
    assert Trace(t, np.zeros(100), np.zeros(100)).is_uniform


CONSTRUCTOR_ERRORS = [
    (dict(t=[0, 1, 2], V=[0, 1], I=[0, 1, 2]), InvalidArgumentError, "V="),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1]), InvalidArgumentError, "I="),
    (dict(t=[0, 1, 1], V=[0, 1, 2], I=[0, 1, 2]), InvalidArgumentError, r"t\[2\]=1.0 is not greater"),
    (dict(t=[0, 2, 1], V=[0, 1, 2], I=[0, 1, 2]), InvalidArgumentError, "t="),
    (dict(t=[0, np.nan, 2], V=[0, 1, 2], I=[0, 1, 2]), InvalidArgumentError, r"t\[1\] is nan"),
    (dict(t=[0, 1, 2], V=[0, np.inf, 2], I=[0, 1, 2]), InvalidArgumentError, r"V\[1\] is inf"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, np.nan]), InvalidArgumentError, r"I\[2\] is nan"),
    (dict(t=[0.0], V=[0.0], I=[0.0]), InvalidArgumentError, "at least 2"),
    (dict(t=[[0, 1, 2]], V=[0, 1, 2], I=[0, 1, 2]), InvalidArgumentError, r"t=.*shape \(1, 3\)"),
    (dict(t=[0, 1, 2], V=[[0, 1, 2]], I=[0, 1, 2]), InvalidArgumentError, r"V=.*1-D"),
    (dict(t=[0, 1, 2], V=["a", "b", "c"], I=[0, 1, 2]), ArgumentTypeError, "V="),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states={"m": [0, 1]}), InvalidArgumentError, r"states\['m'\]"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states={"m": [0, np.nan, 1]}), InvalidArgumentError, r"states\['m'\]\[1\] is nan"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states={"V": [0, 1, 2]}), InvalidArgumentError, "states"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states={"a,b": [0, 1, 2]}), InvalidArgumentError, "states"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states={3: [0, 1, 2]}), ArgumentTypeError, "states"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], states=[1]), ArgumentTypeError, "states"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], meta={"x": np.nan}), InvalidArgumentError, "meta"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], meta={"x": object()}), InvalidArgumentError, "meta"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], meta={"a:b": 1}), InvalidArgumentError, "meta"),
    (dict(t=[0, 1, 2], V=[0, 1, 2], I=[0, 1, 2], meta="HH"), ArgumentTypeError, "meta"),
]


@pytest.mark.parametrize("kwargs, cls, text", CONSTRUCTOR_ERRORS)
def test_trace_constructor_errors(kwargs, cls, text):
    with pytest.raises(cls, match=text) as info:
        Trace(**kwargs)
    assert isinstance(info.value, HHSymError)


# --------------------------------------------------------------------------- #
# noise
# --------------------------------------------------------------------------- #
def test_with_noise_reproducible_and_recorded():
    tr = make_trace()
    a = tr.with_noise(2.0, seed=7)
    b = tr.with_noise(2.0, seed=7)
    c = tr.with_noise(2.0, seed=8)
    np.testing.assert_array_equal(a.V, b.V)
    assert not np.array_equal(a.V, c.V)
    np.testing.assert_array_equal(a.I, tr.I)
    np.testing.assert_array_equal(a.states["m"], tr.states["m"])
    assert a.meta["noise"] == [{"sigma_V": 2.0, "seed": 7}]
    assert "noise" not in tr.meta
    aa = a.with_noise(1.0, seed=1)
    assert aa.meta["noise"] == [{"sigma_V": 2.0, "seed": 7}, {"sigma_V": 1.0, "seed": 1}]
    np.testing.assert_array_equal(tr.with_noise(0.0, seed=1).V, tr.V)
    odd = Trace(tr.t, tr.V, tr.I, meta={"noise": "amplifier"}).with_noise(1.0, seed=2)
    assert odd.meta["noise"] == ["amplifier", {"sigma_V": 1.0, "seed": 2}]


def test_noise_statistics():
    n = 200_000
    tr = Trace(np.arange(n) * 0.01, np.full(n, -65.0), np.zeros(n))
    noise = tr.with_noise(1.5, seed=123).V + 65.0
    assert abs(noise.mean()) < 5 * 1.5 / np.sqrt(n)
    assert noise.std() == pytest.approx(1.5, rel=0.01)
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.01


@pytest.mark.parametrize(
    "args, cls, text",
    [
        ((-1.0, 1), InvalidArgumentError, "sigma_V"),
        ((np.nan, 1), InvalidArgumentError, "sigma_V"),
        (("1", 1), ArgumentTypeError, "sigma_V"),
        ((1.0, 1.5), ArgumentTypeError, "seed"),
        ((1.0, -2), InvalidArgumentError, "seed"),
        ((1.0, None), ArgumentTypeError, "seed"),
    ],
)
def test_with_noise_errors(args, cls, text):
    with pytest.raises(cls, match=text):
        make_trace().with_noise(*args)
    ts = TraceSet.from_traces([make_trace()])
    with pytest.raises(cls, match=text):
        ts.with_noise(*args)


# --------------------------------------------------------------------------- #
# round trips
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ext", [".csv", ".npz"])
def test_round_trip_bit_exact(tmp_path, ext):
    tr = make_trace()
    # extreme but finite values must survive too
    V = tr.V.copy()
    V[:6] = [5e-324, -0.0, 1.7976931348623157e308, 1 / 3, 0.1 + 0.2, -1e-300]
    tr = Trace(tr.t, V, tr.I, tr.states, tr.meta)
    path = tmp_path / f"trace{ext}"
    tr.save(path)
    back = read_trace(path)
    assert_same(back, tr)
    assert np.signbit(back.V[1])
    assert tmp_files(tmp_path) == [path.name]


def test_round_trip_without_states_and_meta(tmp_path):
    tr = make_trace(states=False, meta=False)
    for name in ("a.csv", "a.npz"):
        tr.save(tmp_path / name)
        assert_same(read_trace(tmp_path / name), tr)
    tr.to_csv(tmp_path / "b.csv", include_meta=False)
    assert not (tmp_path / "b.csv").read_text().startswith("#")
    assert read_trace(str(tmp_path / "b.csv")).meta == {}


def test_csv_layout(tmp_path):
    tr = Trace([0.0, 0.1], [-65.0, 1 / 3], [0.0, 10.0], {"m": [0.05, 0.5]}, {"model": "HH"})
    tr.to_csv(tmp_path / "x.csv")
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines == [
        '# model: "HH"',
        "t,V,I,m",
        "0.0,-65.0,0.0,0.05",
        "0.1,0.3333333333333333,10.0,0.5",
    ]


def test_read_lab_csv_with_comments_and_column_order(tmp_path):
    p = tmp_path / "lab.csv"
    p.write_text(
        "# recorded by: Jane Doe\n"
        "# temperature: 6.3\n"
        "# free text without colon\n"
        "\n"
        "V, t, I, Ca\r\n"
        "-65.0, 0.0, 0.0, 1e-4\n"
        "# a comment between rows\n"
        "-64.5, 0.5, 1.5, 2e-4\n"
        "\n"
    )
    tr = read_trace(p)
    np.testing.assert_array_equal(tr.t, [0.0, 0.5])
    np.testing.assert_array_equal(tr.V, [-65.0, -64.5])
    np.testing.assert_array_equal(tr.states["Ca"], [1e-4, 2e-4])
    assert tr.meta == {"recorded by": "Jane Doe", "temperature": 6.3}


def test_read_csv_with_byte_order_mark(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes("t,V,I\r\n0,1,2\r\n1,2,3\r\n".encode("utf-8-sig"))
    np.testing.assert_array_equal(read_trace(p).I, [2.0, 3.0])


def test_traceset_round_trip_and_access(tmp_path):
    trs = [make_trace(seed=k) for k in range(3)]
    ts = TraceSet.from_traces(trs)
    assert len(ts) == ts.n_traces == 3 and ts.n_samples == 201
    assert ts.V.shape == (3, 201) and ts.states["m"].shape == (3, 201)
    assert ts.meta == trs[0].meta  # common to all
    assert ts.dt == pytest.approx(0.1) and ts.is_uniform and ts.duration == 20.0
    one = ts[1]
    assert isinstance(one, Trace)
    np.testing.assert_array_equal(one.V, trs[1].V)
    assert one.meta["trace_index"] == 1
    assert ts[-1].meta["trace_index"] == 2
    np.testing.assert_array_equal(ts[np.int64(2)].I, trs[2].I)
    sub = ts[1:]
    assert isinstance(sub, TraceSet) and len(sub) == 2
    np.testing.assert_array_equal(sub.V[0], trs[1].V)
    assert [tr.meta["trace_index"] for tr in ts] == [0, 1, 2]
    # items taken out and stacked again give the same set
    again = TraceSet.from_traces(list(ts))
    np.testing.assert_array_equal(again.V, ts.V)
    assert again.meta == ts.meta
    path = tmp_path / "set.npz"
    ts.save(path)
    back = read_traces(path)
    assert_same(back, ts)
    assert "n_traces=3" in repr(ts)
    c = ts.copy()
    assert_same(c, ts)


def test_traceset_noise():
    ts = TraceSet.from_traces([make_trace(seed=k) for k in range(2)])
    a, b = ts.with_noise(0.5, seed=3), ts.with_noise(0.5, seed=3)
    np.testing.assert_array_equal(a.V, b.V)
    assert not np.array_equal(a.V[0] - ts.V[0], a.V[1] - ts.V[1])
    assert a.meta["noise"] == [{"sigma_V": 0.5, "seed": 3}]


def test_single_trace_file_as_set_and_set_of_one_as_trace(tmp_path):
    tr = make_trace()
    tr.save(tmp_path / "one.npz")
    tr.save(tmp_path / "one.csv")
    for name in ("one.npz", "one.csv"):
        s = read_traces(tmp_path / name)
        assert isinstance(s, TraceSet) and len(s) == 1
        np.testing.assert_array_equal(s.V[0], tr.V)
    TraceSet.from_traces([tr]).save(tmp_path / "set1.npz")
    back = read_trace(tmp_path / "set1.npz")
    np.testing.assert_array_equal(back.V, tr.V)
    TraceSet.from_traces([tr, tr]).save(tmp_path / "set2.npz")
    with pytest.raises(TraceFileError, match="read_traces"):
        read_trace(tmp_path / "set2.npz")


TRACESET_ERRORS = [
    (lambda: TraceSet([0, 1, 2], [0, 1, 2], [[0, 1, 2]]), InvalidArgumentError, "V="),
    (lambda: TraceSet([0, 1, 2], [[0, 1]], [[0, 1]]), InvalidArgumentError, r"V=.*\(1, 2\)"),
    (lambda: TraceSet([0, 1, 2], [[0, 1, 2]], [[0, 1, 2], [0, 1, 2]]), InvalidArgumentError, "I="),
    (lambda: TraceSet([0, 1, 2], np.zeros((0, 3)), np.zeros((0, 3))), InvalidArgumentError, "V="),
    (lambda: TraceSet([0, 1, 2], [[0, 1, np.nan]], [[0, 1, 2]]), InvalidArgumentError, r"V\[0, 2\] is nan"),
    (lambda: TraceSet([0, 1, 2], [[0, 1, 2]], [[0, 1, 2]], {"m": [0, 1, 2]}), InvalidArgumentError, r"states\['m'\]"),
    (lambda: TraceSet.from_traces([]), InvalidArgumentError, "traces"),
    (lambda: TraceSet.from_traces([make_trace(), "x"]), ArgumentTypeError, r"traces\[1\]"),
    (lambda: TraceSet.from_traces([make_trace(), make_trace(n=101)]), InvalidArgumentError, r"traces\[1\].*time grid"),
    (lambda: TraceSet.from_traces([make_trace(), make_trace(states=False)]), InvalidArgumentError, r"traces\[1\].*states"),
    (lambda: TraceSet.from_traces(5), ArgumentTypeError, "traces"),
    (lambda: TraceSet.from_traces([make_trace()])[1], IndexError, r"k=1.*\[-1, 1\)"),
    (lambda: TraceSet.from_traces([make_trace()])[-2], InvalidArgumentError, "k=-2"),
    (lambda: TraceSet.from_traces([make_trace()])["a"], ArgumentTypeError, "k="),
    (lambda: TraceSet.from_traces([make_trace()])[5:], InvalidArgumentError, "k="),
]


@pytest.mark.parametrize("make, cls, text", TRACESET_ERRORS)
def test_traceset_errors(make, cls, text):
    with pytest.raises(cls, match=text) as info:
        make()
    assert isinstance(info.value, HHSymError)


# --------------------------------------------------------------------------- #
# file errors
# --------------------------------------------------------------------------- #
GOOD_HEAD = "t,V,I\n0.0,-65.0,0.0\n0.1,-64.0,1.0\n"
CSV_ERRORS = [
    ("", "empty file"),
    ("# only: 1\n\n", "empty file"),
    ("t,V\n0,1\n1,2\n", r"line 1: .*lacks column\(s\) 'I'"),
    ("time,V,I\n0,1,2\n1,2,3\n", r"line 1: .*'t'"),
    ("t,V,I,t\n0,1,2,0\n1,2,3,1\n", r"line 1: .*'t' twice"),
    ("t,V,I\n", "0 sample"),
    ("t,V,I\n0,1,2\n", "1 sample"),
    (GOOD_HEAD + "0.2,abc,0.0\n", r"line 4, column 'V': cannot read 'abc'"),
    (GOOD_HEAD + "0.2,,0.0\n", r"line 4, column 'V': cannot read ''"),
    (GOOD_HEAD + "0.2,1.0\n", r"line 4: expected 3 cells .* found 2"),
    (GOOD_HEAD + "0.2,1.0,2.0,3.0\n", r"line 4: expected 3 cells .* found 4"),
    (GOOD_HEAD + "0.1,1.0,2.0\n", r"line 4: t=0.1 is not greater .*line 3"),
    (GOOD_HEAD + "0.05,1.0,2.0\n", r"line 4: t=0.05"),
    (GOOD_HEAD + "0.2,nan,2.0\n", r"line 4, column 'V': value nan is not finite"),
    ("# c\n" + GOOD_HEAD + "0.2,1.0,inf\n", r"line 5, column 'I': value inf"),
    ("t,V,I,m\n0,1,2,0.5\n1,2,3,-inf\n", r"line 3, column 'm'"),
]


@pytest.mark.parametrize("content, text", CSV_ERRORS)
def test_bad_csv(tmp_path, content, text):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(TraceFileError, match=text) as info:
        read_trace(p)
    assert str(p) in str(info.value)
    with pytest.raises(TraceFileError):
        read_traces(p)


def test_bad_csv_not_utf8(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"t,V,I\n\xff\xfe\x00\n")
    with pytest.raises(TraceFileError, match="UTF-8"):
        read_trace(p)


def test_missing_file_and_bad_extension(tmp_path):
    for name in ("nope.csv", "nope.npz"):
        with pytest.raises(TraceFileError, match="nope.*not found"):
            read_trace(tmp_path / name)
    with pytest.raises(TraceFileError, match=r"path=.*\.csv or \.npz"):
        read_trace(tmp_path / "x.txt")
    with pytest.raises(TraceFileError, match="not found"):
        read_traces(tmp_path / "nope.npz")
    with pytest.raises(InvalidArgumentError, match=r"path=.*\.csv or \.npz"):
        make_trace().save(tmp_path / "x.txt")
    with pytest.raises(InvalidArgumentError, match=r"path=.*\.npz"):
        TraceSet.from_traces([make_trace()]).save(tmp_path / "x.csv")
    with pytest.raises(ArgumentTypeError, match="path"):
        make_trace().save(3.5)
    with pytest.raises(TraceFileError, match="cannot write"):
        make_trace().save(tmp_path / "no_such_dir" / "x.csv")


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


T3 = np.array([0.0, 0.1, 0.2])
NPZ_ERRORS = [
    (dict(V=T3, I=T3), r"missing array 't'"),
    (dict(t=T3, I=T3), r"missing array 'V'"),
    (dict(t=T3, V=T3), r"missing array 'I'"),
    (dict(t=T3, V=np.array([0.0, np.nan, 1.0]), I=T3), r"array 'V': element \[1\] is nan"),
    (dict(t=T3, V=T3, I=np.array([0.0, 1.0, np.inf])), r"array 'I': element \[2\] is inf"),
    (dict(t=np.array([0.0, 0.2, 0.1]), V=T3, I=T3), r"array 't': t\[2\]=0.1"),
    (dict(t=np.array([0.0]), V=np.array([0.0]), I=np.array([0.0])), r"array 't' has 1 sample"),
    (dict(t=T3, V=T3[:2], I=T3), r"array 'V' has shape \(2,\)"),
    (dict(t=T3, V=T3, I=np.zeros((2, 3))), r"array 'I' has shape \(2, 3\)"),
    (dict(t=T3.reshape(3, 1), V=T3, I=T3), r"array 't' has shape \(3, 1\)"),
    (dict(t=T3, V=np.array(["a", "b", "c"]), I=T3), r"array 'V' has dtype"),
    (dict(t=T3, V=T3, I=T3, state_m=np.zeros(2)), r"array 'state_m' has shape"),
    (dict(t=T3, V=T3, I=T3, state_m=np.array([0.0, np.nan, 0.0])), r"array 'state_m': element \[1\]"),
    (dict(t=T3, V=T3, I=T3, meta=np.array("{not json")), r"array 'meta' is not a JSON"),
    (dict(t=T3, V=T3, I=T3, meta=np.array("[1, 2]")), r"array 'meta' does not hold a JSON object"),
    (dict(t=T3, V=T3, I=T3, V2=np.array([{}], dtype=object)), None),  # extra pickled array is ignored
    (dict(t=T3, V=np.array([{}, 1, 2], dtype=object), I=T3), r"array 'V' cannot be read"),
]


@pytest.mark.parametrize("arrays, text", NPZ_ERRORS)
def test_bad_npz(tmp_path, arrays, text):
    p = tmp_path / "bad.npz"
    write_npz(p, **arrays)
    if text is None:
        read_trace(p)
        return
    with pytest.raises(TraceFileError, match=text) as info:
        read_trace(p)
    assert str(p) in str(info.value)


def test_npz_not_an_archive(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("t,V,I\n0,1,2\n")
    with pytest.raises(TraceFileError, match="not a readable .npz"):
        read_trace(p)
    p.write_bytes(b"")
    with pytest.raises(TraceFileError, match="not a readable .npz"):
        read_trace(p)
    with open(p, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(TraceFileError, match="single array"):
        read_trace(p)


def test_npz_from_other_tool_without_meta(tmp_path):
    p = tmp_path / "lab.npz"
    write_npz(p, t=T3, V=np.array([1, 2, 3], dtype=np.int32), I=T3.astype(np.float32))
    tr = read_trace(p)
    assert tr.meta == {} and tr.V.dtype == np.float64


def test_npz_bad_state_name_is_file_error(tmp_path):
    p = tmp_path / "x.npz"
    write_npz(p, t=T3, V=T3, I=T3, **{"state_a,b": T3})
    with pytest.raises(TraceFileError, match="x.npz"):
        read_trace(p)


# --------------------------------------------------------------------------- #
# atomic writing
# --------------------------------------------------------------------------- #
def test_csv_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "trace.csv"
    good = make_trace()
    good.save(path)
    before = path.read_bytes()

    def failing_lines(trace, include_meta):
        yield "t,V,I\n"
        yield "0.0,1.0,2.0\n"
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(csv_io, "_csv_lines", failing_lines)
    with pytest.raises(RuntimeError, match="disk on fire"):
        make_trace(seed=5).save(path)
    assert path.read_bytes() == before
    assert tmp_files(tmp_path) == ["trace.csv"]
    monkeypatch.undo()
    assert_same(read_trace(path), good)


def test_npz_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "set.npz"
    ts = TraceSet.from_traces([make_trace()])
    ts.save(path)
    before = path.read_bytes()

    def failing_write(f, arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(npz_io, "_write_npz", failing_write)
    with pytest.raises(KeyboardInterrupt):
        ts.with_noise(1.0, seed=0).save(path)
    with pytest.raises(KeyboardInterrupt):
        make_trace().to_npz(tmp_path / "new.npz")
    assert path.read_bytes() == before
    assert tmp_files(tmp_path) == ["set.npz"]


def test_overwrite_keeps_permissions(tmp_path):
    path = tmp_path / "x.csv"
    make_trace().save(path)
    os.chmod(path, 0o640)
    make_trace(seed=2).save(path)
    assert (os.stat(path).st_mode & 0o777) == 0o640
    assert_same(read_trace(path), make_trace(seed=2))
    new = tmp_path / "y.npz"
    make_trace().save(new)
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(new).st_mode & 0o777) == (0o666 & ~umask)


def test_meta_json_in_csv(tmp_path):
    meta = {"model": "HH 'quoted'\nline", "dt": 0.025, "nested": {"a": [1, 2, None]}, "ok": True}
    tr = Trace([0.0, 1.0], [0.0, 0.0], [0.0, 0.0], meta=meta)
    tr.save(tmp_path / "m.csv")
    assert read_trace(tmp_path / "m.csv").meta == meta
    json.dumps(read_trace(tmp_path / "m.csv").meta, allow_nan=False)


def test_from_finite_equals_the_checked_constructor():
    """The constructors simulate() uses skip only the NaN/inf scans of V, I and states."""
    tr = make_trace()
    fast = Trace._from_finite(tr.t, tr.V, tr.I, tr.states, tr.meta)
    assert type(fast) is Trace
    assert_same(fast, tr)
    assert fast.V is tr.V  # read-only float64 input is kept, as by Trace()
    n = tr.t.size
    V2 = np.stack([tr.V, tr.V + 1.0])
    V2.flags.writeable = False
    st = {"m": np.stack([tr.states["m"]] * 2)}
    fast_set = TraceSet._from_finite(tr.t, V2, np.zeros((2, n)), st, {"a": 1})
    ref_set = TraceSet(tr.t, V2, np.zeros((2, n)), st, {"a": 1})
    assert type(fast_set) is TraceSet and fast_set.V is V2
    for a, b in zip(fast_set, ref_set):
        assert_same(a, b)
    for arr in (fast_set.t, fast_set.V, fast_set.I, fast_set.states["m"]):
        assert not arr.flags.writeable
    # everything but finiteness is still checked
    with pytest.raises(InvalidArgumentError, match="t"):
        Trace._from_finite(tr.t[::-1], tr.V, tr.I)
    with pytest.raises(InvalidArgumentError, match="same length"):
        Trace._from_finite(tr.t, tr.V[:-1], tr.I)
    with pytest.raises(InvalidArgumentError, match="shape"):
        TraceSet._from_finite(tr.t, V2, np.zeros((3, n)))
    with pytest.raises(InvalidArgumentError, match="states"):
        TraceSet._from_finite(tr.t, V2, np.zeros((2, n)), {"V": V2})
