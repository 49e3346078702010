"""hhsym.batch (hhsym.fit_many, hhsym fit-many): cells, a real Dask LocalCluster of 2 workers, resuming, failures, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hhsym
from hhsym.cli import main
from hhsym.errors import ArgumentTypeError, BackendUnavailableError, InvalidArgumentError, UnknownNameError
from hhsym.batch import find_cells
from hhsym.stimuli import OUNoise

distributed = pytest.importorskip("distributed")

# every test that talks to the module's cluster runs in one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("fit_many")

#: Tiny fits (a second each once the kernels are compiled): one stage-1 iteration, no search.
TINY = dict(hidden=(3,), max_iter=(0, 1, 0), spline_knots=(), n_shooting=0, random_state=0)


def _write_cell(path, seed):
    model = hhsym.library.hodgkin_huxley()
    hhsym.simulate(model, OUNoise(8, 4, 3, seed=seed), 30.0, dt=0.005, dt_out=0.025).save(path)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes started by the test: its scheduler's address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as local, distributed.Client(local) as client:
        yield client.scheduler.address, client
        local.scale(0)


def test_find_cells_files_igor_prefixes_and_clashes(tmp_path):
    for name in ("a.csv", "a.npz", "b.abf", "B6_Ch3_IDRest_1.ibw", "B6_Ch3_IDRest_2.ibw", "B6_Ch0_IDRest_1.ibw",
                 "B6_Ch0_IDRest_2.ibw", "B9_Ch0_IDRest_1.ibw", "lone.ibw", "notes.txt", ".hidden.csv"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.csv").write_bytes(b"")
    cells = find_cells(tmp_path)
    assert [c.name for c in cells] == ["B6", "a_csv", "a_npz", "b", "lone"]
    b6 = cells[0]
    assert b6.path == str(tmp_path / "B6_Ch3_*.ibw") and len(b6.files) == 4  # voltage waves and currents
    assert cells[1].path == str(tmp_path / "a.csv") and cells[1].files == ("a.csv",)
    assert find_cells(tmp_path / "sub")[0].name == "c"


def test_find_cells_on_the_shared_recordings():
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not data.exists():
        pytest.skip("the shared recordings (../shared/data) are not beside the repository")
    assert [c.name for c in find_cells(data / "bluepyefe")] == ["B6", "B8"]
    assert [c.name for c in find_cells(data / "pyabf")] == ["171116sh_0018", "File_axon_5"]
    from hhsym.io.cli import load_for_cli

    traces, _ = load_for_cli(find_cells(data / "bluepyefe")[0].path)  # the cell's 5 sweeps, paired by name
    assert len(traces) == 5


@pytest.fixture
def cells(tmp_path):
    folder = tmp_path / "cells"
    folder.mkdir()
    for k in range(2):
        _write_cell(folder / f"cell_{k}.csv", seed=k + 1)
    (folder / "bad.csv").write_text("t,V,I\n0,1\nnot a number\n")
    (folder / "README.txt").write_text("not a recording")
    return folder


@pytest.mark.parametrize("kwargs, cls, words", [
    (dict(workers=0), InvalidArgumentError, ["workers=0", "positive integer"]),
    (dict(workers=True), InvalidArgumentError, ["workers=True"]),
    (dict(workers="2"), InvalidArgumentError, ["workers='2'"]),
    (dict(scheduler=""), InvalidArgumentError, ["scheduler=''", "tcp://"]),
    (dict(scheduler="tcp://127.0.0.1:8786", workers=2), InvalidArgumentError, ["workers=2", "scheduler"]),
    (dict(verbose=5), InvalidArgumentError, ["verbose=5"]),
    (dict(model=3), ArgumentTypeError, ["model=3", "ConductanceModel"]),
    (dict(model="hx"), UnknownNameError, ["'hx'", "hh"]),
    (dict(area=1e-4, capacitance=100.0), InvalidArgumentError, ["area", "capacitance"]),
    (dict(area=-1.0), InvalidArgumentError, ["area", "-1"]),
    (dict(sweeps="x"), InvalidArgumentError, ["sweeps", "'x'"]),
    (dict(max_iterations=3), ArgumentTypeError, ["max_iterations=3", "max_iter"]),
    (dict(hidden=(0,)), InvalidArgumentError, ["hidden"]),
])
def test_bad_arguments_are_named_before_any_cluster_starts(cells, tmp_path, kwargs, cls, words):
    with pytest.raises(cls) as info:
        hhsym.fit_many(cells, tmp_path / "out", **kwargs)
    for word in words:
        assert word in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_folders(cells, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("x")
    for folder in ("empty", "text"):
        with pytest.raises(InvalidArgumentError, match="holding recordings.*it has none"):
            hhsym.fit_many(tmp_path / folder, tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match="existing folder"):
        hhsym.fit_many(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InvalidArgumentError, match="other than the recordings' folder"):
        hhsym.fit_many(cells, cells)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="existing file"):
        hhsym.fit_many(cells, tmp_path / "file")


@pytest.mark.slow
def test_fit_many_on_a_local_cluster_resumes_and_reports_failures(cells, tmp_path, cluster, capsys):
    out = tmp_path / "fits"
    # 1. a LocalCluster of 2 workers started by fit_many; the corrupt cell fails, the others are fitted
    summary = hhsym.fit_many(cells, out, workers=2, **TINY)
    printed = capsys.readouterr()
    assert f"Dask scheduler {summary.scheduler}" in printed.out and summary.scheduler.startswith("tcp://")
    assert [r["cell"] for r in summary.cells] == ["bad", "cell_0", "cell_1"]
    bad = summary["bad"]
    assert bad["status"] == "failed" and bad["error"].startswith("TraceFileError") and "bad.csv" in bad["error"]
    assert bad["result"] is None and not (out / "bad.npz").exists()
    for name in ("cell_0", "cell_1"):
        row = summary[name]
        assert row["status"] in ("ok", "poor") and row["n_traces"] == 1 and row["time_s"] > 0
        assert row["quality"]["verdict"] == ("good" if row["status"] == "ok" else "poor")
        est = hhsym.load(out / f"{name}.npz")
        assert isinstance(est, hhsym.RateEstimator) and est.quality_.verdict == row["quality"]["verdict"]
        assert json.loads((out / f"{name}.status.json").read_text())["status"] == row["status"]
    assert json.loads((out / "bad.status.json").read_text())["status"] == "failed"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["counts"] == summary.counts() and len(saved["cells"]) == 3
    assert "bad" in summary.table() and "failed" in summary.table()
    assert sorted(os.listdir(out)) == ["bad.status.json", "cell_0.npz", "cell_0.status.json", "cell_1.npz",
                                       "cell_1.status.json", "summary.json"]  # no temporaries left

    # 2. resumed on an existing cluster (--scheduler): done cells skipped and untouched, a new cell
    #    fitted on that cluster's workers, the failed cell tried again
    address, client = cluster
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("cell_*")}
    _write_cell(cells / "cell_2.csv", seed=3)
    again = hhsym.fit_many(cells, out, scheduler=address, verbose=0, **TINY)
    assert capsys.readouterr().out == ""
    assert again.scheduler == address
    assert {r["cell"]: r["status"] for r in again} == {"bad": "failed", "cell_0": "skipped", "cell_1": "skipped",
                                                       "cell_2": again["cell_2"]["status"]}
    assert again["cell_2"]["status"] in ("ok", "poor")
    assert again["cell_2"]["worker"] in client.scheduler_info()["workers"]
    assert again["cell_0"]["previous"] == summary["cell_0"]["status"]
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("cell_[01]*")} == before

    # 3. the command line, everything done: no cluster, all skipped; the exit code is the fits' verdict
    (cells / "bad.csv").unlink()
    code = main(["fit-many", str(cells), "--out", str(out)])
    printed = capsys.readouterr()
    assert "nothing to fit" in printed.out and "3 cell(s): 3 skipped" in printed.out
    poor = [r["cell"] for r in again if (r.get("previous") or r["status"]) == "poor"]
    assert code == (3 if poor else 0)
    assert main(["fit-many", str(cells), "--out", str(out), "--accept-poor-fit", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["counts"] == {"skipped": 3}


def test_cli_failed_cell_exits_1_on_an_existing_cluster(tmp_path, cluster, capsys):
    folder = tmp_path / "cells"
    folder.mkdir()
    (folder / "broken.npz").write_bytes(b"this is no npz")
    address, _ = cluster
    code = main(["fit-many", str(folder), "--out", str(tmp_path / "fits"), "--scheduler", address,
                 "--hidden", "3", "--seed", "1", "--time-limit", "5"])
    printed = capsys.readouterr()
    assert code == 1
    assert f"Dask scheduler {address}" in printed.out
    assert "broken" in printed.out and "failed" in printed.out
    assert "1 of 1 cell(s) failed" in printed.err
    assert json.loads((tmp_path / "fits" / "broken.status.json").read_text())["status"] == "failed"


def test_cli_usage_errors_exit_2(cells, tmp_path, capsys):
    out = str(tmp_path / "fits")
    cases = [
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "workers=2"),
        (["--hidden", "0"], "--hidden"),
        (["--model", "hx"], "'hx'"),
        (["--sweeps", "1-x"], "--sweeps"),
        (["--current", "x.ibw"], "--current"),  # Igor currents are paired by name, cell by cell
    ]
    for extra, word in cases:
        assert main(["fit-many", str(cells), "--out", out, *extra]) == 2, extra
        assert word in capsys.readouterr().err, extra
    (tmp_path / "empty").mkdir()
    assert main(["fit-many", str(tmp_path / "empty"), "--out", out]) == 2
    assert "it has none" in capsys.readouterr().err
    assert main(["fit-many", str(cells), "--out", str(cells)]) == 2
    assert not (tmp_path / "fits").exists()


def test_cli_help_has_the_options_of_fit():
    from hhsym.cli import _parser

    text = _parser()._subparsers._group_actions[0].choices["fit-many"].format_help()
    for option in ("--out", "--workers", "--scheduler", "--model", "--param", "--hidden", "--seed", "--time-limit",
                   "--accept-poor-fit", "--quiet", "--verbose", "--sweeps", "--area", "--capacitance",
                   "--specific-capacitance"):
        assert option in text, option


def test_scheduler_that_does_not_answer(cells, tmp_path):
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailableError, match=f"scheduler='tcp://127.0.0.1:{port}'"):
        hhsym.fit_many(cells, tmp_path / "fits", scheduler=f"tcp://127.0.0.1:{port}", verbose=0)


def test_import_hhsym_does_not_import_dask():
    code = ("import sys, hhsym; f = hhsym.fit_many; assert 'fit_many' in hhsym.__all__; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hhsym.PoorFitWarning")
def test_fit_files_is_what_fit_runs(tmp_path):
    from hhsym.estimate.files import fit_files

    _write_cell(tmp_path / "c.csv", seed=1)
    est, traces = fit_files(tmp_path / "c.csv", tmp_path / "c.npz", "hh", **TINY)
    assert len(traces) == 1
    again = hhsym.load(tmp_path / "c.npz")
    assert again.cost_ == est.cost_
    assert main(["fit", str(tmp_path / "c.csv"), "--out", str(tmp_path / "d.npz"), "--hidden", "3",
                 "--time-limit", "0.5", "--quiet", "--accept-poor-fit"]) == 0
    assert isinstance(hhsym.load(tmp_path / "d.npz"), hhsym.RateEstimator)
