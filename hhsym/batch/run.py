"""``fit_many``: the run over a folder's cells on a Dask cluster, resumable, one atomic file per cell."""

from __future__ import annotations

import json
import os
import time

from hhsym.batch.cells import find_cells
from hhsym.batch.cluster import Cluster, one_line
from hhsym.batch.summary import FitManySummary
from hhsym.errors import ArgumentTypeError, invalid

__all__ = ["fit_many"]

_STATUS = ".status.json"


def _fit_cell(path, result, model, load_options, estimator_options):
    """Fit one cell (runs on a Dask worker): its row of the summary, never an exception."""
    import warnings

    from hhsym.errors import PoorFitWarning
    from hhsym.estimate.files import fit_files

    row = {}
    try:
        from distributed import get_worker

        row["worker"] = get_worker().address
    except (ImportError, ValueError):  # not on a worker
        pass
    start = time.perf_counter()
    lines = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est, traces = fit_files(path, result, model, **load_options, log=lines.append, verbose=0,
                                    **estimator_options)
    except Exception as exc:  # the cell failed; the others go on
        row.update(status="failed", error=one_line(exc), time_s=time.perf_counter() - start)
        return row
    quality = est.quality_
    messages = []
    for w in caught:
        text = str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
        if not issubclass(w.category, PoorFitWarning) and text not in messages:  # the verdict says it
            messages.append(text)
    row.update(status="ok" if quality.ok else "poor", time_s=time.perf_counter() - start,
               n_traces=len(traces), loss_mV2=float(est.cost_) if hasattr(est, "cost_") else None,
               score=getattr(est, "score_", None), estimator=type(est).__name__, v_range_mV=list(est.v_range_),
               quality=quality.to_dict(), membrane_area=lines, warnings=messages)
    return row


def _write_json(data, path):
    from hhsym.atomic import atomic_write
    from hhsym.jsontypes import json_types

    text = json.dumps(json_types(data), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write(path, lambda f: f.write(text))


def _previous(cell, result, status_path):
    """The row of a cell whose result exists: its status file's, else read from the fit itself."""
    row = None
    try:
        with open(status_path, encoding="utf-8") as f:
            row = json.load(f)
        if not isinstance(row, dict) or row.get("status") not in ("ok", "poor"):
            row = None
    except (OSError, ValueError):
        pass
    if row is None:  # interrupted between the fit and its status file: ask the fit
        try:
            from hhsym.estimate import load

            quality = load(result).quality_
            row = {"status": "ok" if quality.ok else "poor", "quality": quality.to_dict()}
        except Exception:  # noqa: BLE001 - unreadable: leave it to the user
            row = {"status": None}
    previous = row.pop("status")
    row.update(cell=cell.name, status="skipped", previous=previous, files=list(cell.files), result=result)
    return row


def _check_options(directory, out, model, workers, scheduler, sweeps, area, capacitance,
                   specific_capacitance, verbose, estimator_options, route="auto"):
    """Every argument of :func:`fit_many`, checked before any cluster starts; the model and sweeps."""
    from hhsym.estimate.rate_estimator import RateEstimator
    from hhsym.io.cli import parse_sweeps
    from hhsym.io.recording import _positive
    from hhsym.model import ConductanceModel
    from hhsym.validate import check_output_path

    try:
        directory = os.fspath(directory)
    except TypeError:
        raise invalid("directory", directory, "a folder path (str or os.PathLike)", cls=ArgumentTypeError) from None
    if not os.path.isdir(directory):
        raise invalid("directory", directory, "an existing folder of recordings")
    out = check_output_path(out, "out", what="folder")
    if os.path.realpath(out) == os.path.realpath(directory):
        raise invalid("out", out, "a folder other than the recordings' folder (results would be read as cells)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise invalid("workers", workers, "a positive integer (local Dask worker processes) or None")
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise invalid("scheduler", scheduler, "a Dask scheduler address such as 'tcp://10.0.0.5:8786'")
        if workers is not None:
            raise invalid("workers", workers, "None with scheduler= (an existing cluster keeps its own workers; "
                          "workers= sizes the local cluster)")
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose not in (0, 1, 2):
        raise invalid("verbose", verbose, "0 (silent), 1 (cluster line and a progress bar) or 2 (a line per cell)")
    if isinstance(model, str):
        from hhsym.library import get_model

        model = get_model(model)
    elif not isinstance(model, ConductanceModel):
        raise invalid("model", model, "a ConductanceModel or a library model name such as 'hh'",
                      cls=ArgumentTypeError)
    sweeps = parse_sweeps(sweeps)
    _positive("specific_capacitance", specific_capacitance, "µF/cm²")
    if area is not None and capacitance is not None:
        raise invalid("area", area, f"None when capacitance is given ({capacitance!r}): one of the two")
    if area is not None:
        _positive("area", area, "cm²")
    if capacitance is not None:
        _positive("capacitance", capacitance, "pF")
    from hhsym.estimate.files import route_estimators

    classes = route_estimators(route)
    # with "auto" the route of a cell is known once it is read: an option must fit one of the two (fit_files
    # names it if the cell's route does not take it)
    accepted = set().union(*(set(cls().get_params()) for cls in classes)) - {"model", "verbose"}
    for name in estimator_options:
        if name not in accepted:
            raise invalid(name, estimator_options[name], f"no such option of route {route!r}: "
                          f"{', '.join(sorted(accepted))}", cls=ArgumentTypeError)
    for cls in classes:
        own = {k: v for k, v in estimator_options.items() if k in cls().get_params()}
        if not (cls is RateEstimator and route == "auto" and getattr(model, "pools", ())):  # pools: cell route
            cls(model, **own)._check_params()
    return directory, out, model, sweeps


def fit_many(directory, out, model="hh", *, route="auto", workers=None, scheduler=None, sweeps=None, area=None,
             capacitance=None, specific_capacitance=1.0, verbose=1, **estimator_options):
    """Fit every cell of a folder as ``hhsym fit`` does, in parallel on a Dask cluster.

    Each cell (see :func:`find_cells`: one file, or one Igor prefix such as ``B6``) is fitted as
    ``hhsym fit`` fits it (:func:`hhsym.estimate.files.fit_files`), one Dask task per cell, and
    saved as ``out/<cell>.npz``; ``out/<cell>.status.json`` and, at the end, ``out/summary.json``
    record each cell's status, wall time and verdict (or error).  Every file is written
    atomically.  A cell whose ``.npz`` already exists is skipped, so a run that was interrupted
    resumes where it stopped (delete a result to fit that cell again); a cell that fails is
    reported and never stops the others.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of recordings: hhsym CSV/NPZ, ABF, NWB, Igor IBW (not its sub-folders).
    out : str or os.PathLike
        Results folder (created if missing; its parent must exist); not ``directory``.
    model : ConductanceModel or str
        Template model or a library name (default ``"hh"``), for every cell.
    route : {"auto", "networks", "cell"}
        :func:`hhsym.estimate.files.fit_files`: ``"auto"`` fits lab files (ABF, NWB, Igor) by
        :class:`CellEstimator`, densities by :class:`RateEstimator`.
    workers : int, optional
        Worker processes of the LocalCluster started on this machine (default: one per core,
        at most one per cell to fit).  Each worker runs one task at a time
        (``threads_per_worker=1``): numba parallelises inside a fit, over
        ``NUMBA_NUM_THREADS`` = cores // workers threads (unless set in the environment).
    scheduler : str, optional
        Address of an existing Dask scheduler (``"tcp://HOST:PORT"``) to use instead of a
        LocalCluster.  Its workers must import hhsym and see ``directory`` and ``out`` under
        the same paths (a shared file system).
    sweeps : str or sequence of int, optional
        Sweep numbers (``"0,2,5-7"``) read from every cell; default all.
    area : float, optional
        Membrane area (cm²) for every lab file's cell; default estimated per cell.
    capacitance : float, optional
        Whole-cell capacitance (pF) for every lab file's cell, at ``specific_capacitance``.
    specific_capacitance : float
        µF/cm² (default 1).
    verbose : int
        0 silent; 1 (default) prints the Dask scheduler and dashboard used and shows a progress
        bar over finished cells; 2 a line per finished cell instead of the bar.
    **estimator_options
        Options of the route's estimator for every cell (:class:`RateEstimator`: ``hidden``,
        ``random_state``, ``time_limit`` (s, per cell), ``max_iter``, ...; :class:`CellEstimator`:
        ``free``, ``random_state``, ``time_limit``, ...).  Fits run with ``verbose=0``.

    Returns
    -------
    FitManySummary
        One row per cell (``summary.cells``); ``summary.table()`` prints them.

    Raises
    ------
    InvalidArgumentError
        A bad argument (named, with what is accepted), a missing folder, or a folder without
        recordings — all before any cluster starts.
    BackendUnavailableError
        Dask distributed is not installed, or no scheduler answers at ``scheduler``.

    Notes
    -----
    The LocalCluster starts its workers as new processes, which import the calling script
    again: in a script, call ``fit_many`` under ``if __name__ == "__main__":``.  A cell's
    ``time_limit`` bounds its fit as in :class:`RateEstimator` and :class:`CellEstimator` (soft: each
    stage checks it between iterations).  ``summary.json`` is written when the run ends; an interrupted run leaves the
    per-cell files of the cells it finished, and no partial file.

    Examples
    --------
    >>> summary = hhsym.fit_many("cells/", "fits/", workers=2)      # doctest: +SKIP
    >>> print(summary.table())                                      # doctest: +SKIP
    """
    directory, out, model, sweeps = _check_options(directory, out, model, workers, scheduler, sweeps, area,
                                                   capacitance, specific_capacitance, verbose,
                                                   estimator_options, route)
    cells = find_cells(directory)
    if not cells:
        from hhsym.io.reader import FORMATS

        raise invalid("directory", directory, "a folder holding recordings "
                      f"({', '.join(sorted(FORMATS))} files); it has none")
    os.makedirs(out, exist_ok=True)
    load_options = dict(route=route, sweeps=sweeps, area=area, capacitance=capacitance,
                        specific_capacitance=specific_capacitance)
    rows, pending = {}, []
    for cell in cells:
        result = os.path.join(out, cell.name + ".npz")
        if os.path.exists(result):
            rows[cell.name] = _previous(cell, result, os.path.join(out, cell.name + _STATUS))
        else:
            pending.append(cell)
    address = dashboard = None
    if pending:
        address, dashboard = _run(pending, out, rows, model, load_options, estimator_options, workers,
                                  scheduler, verbose)
    elif verbose:
        print(f"[hhsym] fit-many: nothing to fit: all {len(cells)} cell(s) have results in {out}", flush=True)
    summary = FitManySummary([rows[c.name] for c in cells], directory, out, address, dashboard)
    _write_json(summary.to_dict(), summary.summary_path)
    return summary


def _run(pending, out, rows, model, load_options, estimator_options, workers, scheduler, verbose):
    """Fit the ``pending`` cells on the cluster, filling ``rows``; the scheduler's address and dashboard."""
    from hhsym.progress import progress_bar

    with Cluster(workers, scheduler, len(pending)) as cluster:
        from distributed import as_completed

        client = cluster.client
        address, dashboard = client.scheduler.address, cluster.dashboard()
        if verbose:
            where = f"dashboard {dashboard}" if dashboard else "no dashboard (pip install bokeh for one)"
            n = len(client.scheduler_info().get("workers", {}))
            print(f"[hhsym] Dask scheduler {address}, {where}; {n} worker(s); {len(pending)} cell(s) to fit, "
                  f"{len(rows)} already done", flush=True)
        futures = {}
        for cell in pending:
            result = os.path.join(out, cell.name + ".npz")
            future = client.submit(_fit_cell, cell.path, result, model, load_options, estimator_options,
                                   key=f"hhsym-fit-{cell.name}-{os.getpid()}-{time.time_ns()}", pure=False)
            futures[future] = (cell, result)
        bar = progress_bar(len(futures), "fit-many", verbose)
        try:
            for future in as_completed(futures):
                cell, result = futures[future]
                try:
                    row = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died (KilledWorker)
                    row = {"status": "failed", "error": one_line(exc)}
                row = {"cell": cell.name, **row, "files": list(cell.files),
                       "result": result if row["status"] != "failed" else None}
                rows[cell.name] = row
                _write_json(row, os.path.join(out, cell.name + _STATUS))
                bar.update(1)
                bar.set_postfix_str(f"{cell.name}: {row['status']}")
                if verbose == 2:
                    print(f"[hhsym] fit-many: {cell.name}: {row['status']}"
                          + (f" ({row['error']})" if row["status"] == "failed" else
                             f" in {row['time_s']:.1f} s"), flush=True)
        finally:
            bar.close()
    return address, dashboard
