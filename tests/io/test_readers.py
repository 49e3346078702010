"""hhsym.io readers: shared lab recordings, NWB written here with pynwb, failure modes, the CLI."""

import datetime
import json
import os
import struct
import warnings

import numpy as np
import pytest

import hhsym.io as hio
from hhsym.errors import InvalidArgumentError, TraceFileError
from hhsym.io import Recording, read
from hhsym.io.cli import add_parser, load_for_cli, parse_sweeps, run
from hhsym.io import TraceSet, read_traces

DATA = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "data"
ABF18 = DATA / "pyabf" / "171116sh_0018.abf"
ABF5 = DATA / "pyabf" / "File_axon_5.abf"
B6 = DATA / "bluepyefe" / "B6_Ch3_IDRest_*.ibw"
needs_data = pytest.mark.skipif(not ABF5.is_file() or not (DATA / "bluepyefe").is_dir(),
                                reason=f"shared recordings not found in {DATA}")


# -- helpers: files written here --------------------------------------------------------------
def write_ibw(path, data, unit="mV", dt_s=2.5e-4, name="wave", note=""):
    """A minimal Igor binary wave (version 5, float32), written byte by byte."""
    data = np.asarray(data, dtype="<f4")
    units, ext = unit.encode(), b""
    if len(units) > 3:
        ext, units = units, b""
    wh = bytearray(320)
    struct.pack_into("<i", wh, 12, data.size)            # npnts
    struct.pack_into("<h", wh, 16, 2)                    # NT_FP32
    struct.pack_into("<h", wh, 26, 1)                    # whVersion
    wh[28:28 + len(name[:31])] = name[:31].encode()      # bname
    struct.pack_into("<4i", wh, 68, data.size, 0, 0, 0)  # nDim
    struct.pack_into("<4d", wh, 84, dt_s, 1, 1, 1)       # sfA
    wh[148:148 + len(units)] = units                     # dataUnits
    noteb = note.encode()
    bh = bytearray(64)
    struct.pack_into("<h", bh, 0, 5)
    struct.pack_into("<i", bh, 4, 320 + data.nbytes)
    struct.pack_into("<i", bh, 12, len(noteb))
    struct.pack_into("<i", bh, 16, len(ext))
    s = sum(struct.unpack("<192h", bytes(bh) + bytes(wh))) & 0xFFFF
    struct.pack_into("<h", bh, 2, ((-s) + 0x8000) % 0x10000 - 0x8000)  # header sums to 0
    with open(path, "wb") as f:
        f.write(bytes(bh) + bytes(wh) + data.tobytes() + noteb + ext)


def _step(n=400, level=50.0, hold=-10.0):
    i = np.full(n, hold)
    i[100:300] += level
    return i


def write_nwb(path, sweeps, rate, table=True, v_conversion=1.0, v_scale=1e-3, stim=True,
              stim_len=None):
    """NWB with one CurrentClampSeries (+ stimulus) per (sweep_number, V mV, I pA)."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = NWBFile(session_description="hhsym test", identifier="hhsym-test",
                  session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    dev = nwb.create_device(name="amplifier")
    el = nwb.create_icephys_electrode(name="elec0", description="patch", device=dev)
    for number, V, I in sweeps:
        I = I if stim_len is None else I[:stim_len]
        st = CurrentClampStimulusSeries(name=f"stim_{number}", data=np.asarray(I) * 1e-12,
                                        starting_time=0.0, rate=float(rate), electrode=el, gain=1.0,
                                        sweep_number=number)
        rs = CurrentClampSeries(name=f"resp_{number}", data=np.asarray(V) * v_scale,
                                conversion=v_conversion, starting_time=0.0, rate=float(rate),
                                electrode=el, gain=1.0, sweep_number=number)
        if table and stim:
            nwb.add_intracellular_recording(electrode=el, stimulus=st, response=rs)
        else:
            nwb.add_acquisition(rs)
            if stim:
                nwb.add_stimulus(st)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return path


def _raises(fn, *words):
    with pytest.raises(TraceFileError) as info:
        fn()
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    return info.value


# -- shared recordings ---------------------------------------------------------------------------
@needs_data
def test_abf_protocol_current_matches_pyabf():
    import pyabf

    rec = read(ABF18)
    abf = pyabf.ABF(str(ABF18))
    assert rec.n_sweeps == 17 and rec.sampling_rate_hz == pytest.approx(20000)
    assert rec.meta["current_source"] == "protocol" and rec.meta["units"]["V"] == "mV"
    assert rec.meta["units"]["I"] == "pA" and "steps" in rec.meta["protocol"]
    abf.setSweep(16)
    np.testing.assert_array_equal(rec.V[16], abf.sweepY)
    np.testing.assert_array_equal(rec.I[16], abf.sweepC)
    np.testing.assert_allclose(rec.t, abf.sweepX * 1e3)
    sub = read(ABF18, sweeps=[3, 0])
    assert sub.sweep_numbers == [3, 0]
    np.testing.assert_array_equal(sub.V[1], rec.V[0])
    assert read(ABF5).n_sweeps == 9


@needs_data
def test_igor_pairs_current_by_name_or_argument():
    rec = read(B6)
    assert rec.sweep_numbers == [181, 182, 183, 184, 185]
    assert rec.sampling_rate_hz == pytest.approx(4000) and rec.n_samples == 12000
    assert rec.meta["current_source"] == "recorded" and rec.meta["protocol"] == "IDRest"
    assert all("_Ch0_" in f for f in rec.meta["files_I"])
    v = str(DATA / "bluepyefe" / "B6_Ch3_IDRest_183.ibw")
    i = str(DATA / "bluepyefe" / "B6_Ch0_IDRest_183.ibw")
    one = read(v, current=i)
    np.testing.assert_array_equal(one.V[0], rec.V[2])
    np.testing.assert_array_equal(one.I[0], rec.I[2])
    swapped = read(i, current=v)  # roles follow the units
    np.testing.assert_array_equal(swapped.V[0], rec.V[2])
    both = read(B6, current=str(DATA / "bluepyefe" / "B6_Ch0_IDRest_*.ibw"), sweeps=[185, 181])
    np.testing.assert_array_equal(both.I[0], rec.I[4])
    assert read(DATA / "bluepyefe", sweeps=[145]).n_sweeps == 1  # a folder: its *_Ch3_* waves


@needs_data
def test_nwb_written_from_abf_reads_back_the_same_numbers(tmp_path):
    abf = read(ABF5)
    sweeps = [(k, abf.V[k], abf.I[k]) for k in range(abf.n_sweeps)]
    for table in (True, False):
        path = write_nwb(tmp_path / f"cell_{table}.nwb", sweeps, abf.sampling_rate_hz, table=table)
        rec = read(path)
        assert rec.meta["paired_by"] == ("intracellular_recordings" if table else "sweep_number")
        assert rec.sweep_numbers == list(range(9))
        np.testing.assert_allclose(rec.V, abf.V, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(rec.I, abf.I, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(rec.t, abf.t, rtol=0, atol=1e-9)
    # the same summary from the NWB copy as from the ABF
    from hhsym.analysis.inspect import inspect

    a, b = inspect(ABF5), inspect(path)
    assert [s["n_spikes"] for s in a["sweeps"]] == [s["n_spikes"] for s in b["sweeps"]]
    for key in ("passive", "noise"):
        for name, value in a[key].items():
            assert b[key][name] == pytest.approx(value, rel=1e-6), (key, name)
    # data stored in mV with conversion 1e-3 (to volts): the same numbers
    path = write_nwb(tmp_path / "mv.nwb", sweeps[:2], abf.sampling_rate_hz, v_scale=1.0, v_conversion=1e-3)
    np.testing.assert_allclose(read(path, sweeps=[1]).V[0], abf.V[1], atol=1e-9)
    assert read(path, channel="elec0").n_sweeps == 2


def test_hhsym_files_round_trip(tmp_path):
    t = np.arange(300) * 0.05
    ts = TraceSet(t, np.vstack([np.sin(t) - 65, np.cos(t) - 65]), np.vstack([_step(300) / 10] * 2))
    ts.save(tmp_path / "s.npz")
    rec = read(tmp_path / "s.npz")
    assert rec.area_cm2 == 1.0 and rec.meta["units"]["I"] == "µA/cm²"
    back = rec.to_traces()
    np.testing.assert_allclose(back.I, ts.I, rtol=1e-14)
    assert back.meta["membrane_area"]["source"] == "file"
    exact, rec2 = load_for_cli(tmp_path / "s.npz", sweeps="1")
    np.testing.assert_array_equal(exact.I, ts.I[1:])
    np.testing.assert_array_equal(exact.V, read_traces(tmp_path / "s.npz").V[1:])
    ts[0].save(tmp_path / "one.csv")
    assert read(tmp_path / "one.csv").n_sweeps == 1
    with pytest.raises(InvalidArgumentError):
        load_for_cli(tmp_path / "s.npz", area=1e-5)


def test_to_traces_area_and_capacitance():
    t = np.arange(400) * 0.1
    rec = Recording(t, np.full((1, 400), -65.0), _step()[None], {"file": "mem"})
    ts = rec.to_traces(area_cm2=1e-4)
    np.testing.assert_allclose(ts.I, rec.I * 1e-6 / 1e-4)
    assert ts.meta["membrane_area"] == {"area_cm2": 1e-4, "source": "area", "capacitance_pF": 100.0,
                                        "specific_capacitance_uF_per_cm2": 1.0}
    ts2 = rec.to_traces(capacitance_pF=90.0, specific_capacitance=0.9)
    assert ts2.meta["membrane_area"]["area_cm2"] == pytest.approx(1e-4)
    np.testing.assert_allclose(ts2.I, ts.I)
    with pytest.raises(InvalidArgumentError):
        rec.to_traces(area_cm2=1e-4, capacitance_pF=100)
    with pytest.raises(InvalidArgumentError):
        rec.to_traces(area_cm2=-1.0)


# -- failure modes: each a TraceFileError naming the file and the channel --------------------------
def test_missing_unknown_and_corrupt_files(tmp_path):
    _raises(lambda: read(tmp_path / "nothing.abf"), "nothing.abf", "no such file")
    (tmp_path / "x.txt").write_text("1,2,3")
    _raises(lambda: read(tmp_path / "x.txt"), "x.txt", "unknown file type")
    rng = np.random.default_rng(0)
    for name in ("bad.abf", "bad.nwb", "bad.ibw"):
        (tmp_path / name).write_bytes(rng.bytes(700))
        _raises(lambda: read(tmp_path / name), name, "not a readable")
    write_ibw(tmp_path / "c_Ch3_P_1.ibw", np.full(100, -65.0))
    (tmp_path / "c_Ch0_P_1.ibw").write_bytes((tmp_path / "c_Ch3_P_1.ibw").read_bytes()[:200])
    _raises(lambda: read(tmp_path / "c_Ch3_P_1.ibw"), "c_Ch0_P_1.ibw", "not a readable")


def test_igor_unit_and_channel_failures(tmp_path):
    v = tmp_path / "c_Ch3_P_1.ibw"
    i = tmp_path / "c_Ch0_P_1.ibw"
    write_ibw(v, np.full(100, -65.0), "mV")
    _raises(lambda: read(v), "c_Ch3_P_1.ibw", "channel 'I'")                  # no partner
    write_ibw(i, np.zeros(100), "")
    _raises(lambda: read(v), "channel 'I'")                                   # partner without unit
    _raises(lambda: read(v, current=i), "c_Ch0_P_1.ibw", "channel", "states no unit")
    write_ibw(i, np.zeros(100), "s")
    _raises(lambda: read(v, current=i), "c_Ch0_P_1.ibw", "'s' is not a current unit")
    write_ibw(i, np.zeros(90), "pA")
    _raises(lambda: read(v, current=i), "c_Ch0_P_1.ibw", "channel", "mismatched V/I lengths")
    write_ibw(i, np.zeros(100), "pA")
    write_ibw(v, np.full(100, -65.0), "V")                                    # mV numbers labelled V
    _raises(lambda: read(v, current=i), "c_Ch3_P_1.ibw", "channel", "wrong unit")
    write_ibw(v, np.full(100, -0.065), "mV")                                  # V numbers labelled mV
    _raises(lambda: read(v, current=i), "c_Ch3_P_1.ibw", "channel", "wrong unit")
    write_ibw(v, np.full(100, -65.0), "mV")
    write_ibw(i, np.full(100, 5.0), "A")                                      # 5 A: no cell
    _raises(lambda: read(v, current=i), "c_Ch0_P_1.ibw", "channel", "wrong unit")
    write_ibw(i, np.full(100, 5.0), "nA")
    assert read(v, current=i).I[0, 0] == pytest.approx(5000.0)                 # nA -> pA
    write_ibw(v, np.full(100, -0.065), "volts")
    assert read(v, current=i).V[0, 0] == pytest.approx(-65.0, rel=1e-6)       # long unit, V -> mV
    _raises(lambda: read(v, current=i, sweeps=[7]), "sweep(s) [7] not in the file")
    _raises(lambda: read(v, current=i, channel="Ch1"), "channel 'Ch1'")


def test_nwb_failures(tmp_path):
    V, I = np.full(400, -65.0), _step()
    p = write_nwb(tmp_path / "nostim.nwb", [(0, V, I)], 10000, table=False, stim=False)
    _raises(lambda: read(p), "nostim.nwb", "channel 'I'", "no stimulus")
    p = write_nwb(tmp_path / "short.nwb", [(0, V, I)], 10000, stim_len=300)
    _raises(lambda: read(p), "short.nwb", "channel 'stim_0'", "mismatched V/I lengths")
    p = write_nwb(tmp_path / "units.nwb", [(0, V, I)], 10000, v_scale=1.0)  # mV numbers as volts
    _raises(lambda: read(p), "units.nwb", "channel 'resp_0'", "wrong unit")
    p = write_nwb(tmp_path / "ok.nwb", [(0, V, I), (1, V, I)], 10000)
    _raises(lambda: read(p, channel="elec9"), "ok.nwb", "channel 'elec9'")
    _raises(lambda: read(p, sweeps=[4]), "ok.nwb", "sweep(s) [4]")
    _raises(lambda: read(p, current=p), "ok.nwb", "channel 'I'")
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(session_description="x", identifier="x",
                  session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
    nwb.add_acquisition(TimeSeries(name="other", data=V, unit="volts", rate=1e4))
    with NWBHDF5IO(str(tmp_path / "none.nwb"), "w") as io:
        io.write(nwb)
    _raises(lambda: read(tmp_path / "none.nwb"), "none.nwb", "channel 'V'", "no CurrentClampSeries")


def test_abf_written_by_pyabf_without_units_or_voltage(tmp_path):
    from pyabf import abfWriter

    data = np.random.default_rng(1).normal(-65.0, 0.1, (2, 2000))
    abfWriter.writeABF1(data, str(tmp_path / "v.abf"), 10000, units="mV")
    _raises(lambda: read(tmp_path / "v.abf"), "v.abf", "channel 'sweepC (protocol)'", "no unit")
    abfWriter.writeABF1(data, str(tmp_path / "vc.abf"), 10000, units="pA")
    _raises(lambda: read(tmp_path / "vc.abf"), "vc.abf", "channel 'V'", "no ADC channel has a voltage unit")


@needs_data
def test_abf_channel_and_sweep_failures():
    _raises(lambda: read(ABF5, channel=3), "File_axon_5.abf", "channel 3")
    _raises(lambda: read(ABF5, sweeps=[9]), "File_axon_5.abf", "sweep(s) [9]")


def test_recording_rejects_bad_arrays():
    t = np.arange(10.0)
    _raises(lambda: Recording(t, np.zeros((2, 10)), np.zeros((2, 9)), {"file": "f"}), "f", "channel 'I'")
    bad = np.zeros((1, 10))
    bad[0, 3] = np.nan
    _raises(lambda: Recording(t, bad, np.zeros((1, 10)), {"file": "f"}), "channel 'V'", "sample 3")


# -- command line ------------------------------------------------------------------------------------
def test_parse_sweeps():
    assert parse_sweeps("0,2,5-7") == [0, 2, 5, 6, 7]
    assert parse_sweeps(None) is None
    with pytest.raises(InvalidArgumentError):
        parse_sweeps("a-b")


@needs_data
def test_cli_inspect_writes_json_and_plot(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="hhsym")
    add_parser(parser.add_subparsers(dest="command"))
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    args = parser.parse_args(["inspect", str(ABF5), "--json", str(out), "--plot", str(png)])
    assert args.func is run and args.func(args) == 0
    text = capsys.readouterr().out
    assert "passive (hyperpolarising steps" in text and "noise" in text
    summary = json.loads(out.read_text())
    assert set(summary) == {"n_sweeps", "sampling_rate_hz", "sweeps", "passive", "noise"}
    assert summary["n_sweeps"] == 9 and summary["sampling_rate_hz"] == 20000.0
    assert all(set(s) == {"index", "I_step_pA", "n_spikes", "V_rest_mV"} for s in summary["sweeps"])
    assert set(summary["passive"]) == {"V_rest_mV", "R_in_MOhm", "tau_m_ms", "C_pF", "sag_ratio"}
    assert set(summary["noise"]) == {"white_mV", "slow_mV"}
    assert [s["n_spikes"] for s in summary["sweeps"]] == [0, 0, 0, 0, 0, 0, 2, 2, 3]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    bad = parser.parse_args(["inspect", str(ABF5), "--json", str(tmp_path / "no" / "s.json")])
    with pytest.raises(InvalidArgumentError, match="--json"):
        run(bad)
    bad = parser.parse_args(["inspect", str(ABF5), "--plot", str(tmp_path / "s.txt")])
    with pytest.raises(InvalidArgumentError, match="--plot"):
        run(bad)


@needs_data
def test_load_for_cli_lab_file_reports_area():
    ts, rec = load_for_cli(str(B6), sweeps="181")
    a = ts.meta["membrane_area"]
    assert a["source"] == "estimated" and 50 < a["capacitance_pF"] < 120
    np.testing.assert_allclose(ts.I[0], rec.I[0] * 1e-6 / a["area_cm2"])
    ts2, _ = load_for_cli(str(ABF5), capacitance=100.0, sweeps=[0])
    assert ts2.meta["membrane_area"]["area_cm2"] == pytest.approx(1e-4)
    assert hio.read is read
