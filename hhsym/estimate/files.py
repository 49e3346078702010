"""What ``hhsym fit`` runs: recording files in, a fitted estimator file out.

Two routes: ``"networks"`` (:class:`RateEstimator`: gate curves as networks inside the
template, for recordings in µA/cm² such as simulations) and ``"cell"``
(:class:`CellEstimator`: a template's whole-cell scalars and each channel's kinetics fitted
to whole sweeps of a real cell).  ``"auto"`` takes the cell route when a file is a lab
recording (its pA turned into µA/cm² by a membrane area), the networks route otherwise.

``hhsym fit`` and :func:`hhsym.fit_many` (one call per cell, on a Dask worker) both call
:func:`fit_files`, so a cell fitted in a batch is fitted exactly as ``hhsym fit`` would fit it.
"""

from __future__ import annotations

__all__ = ["fit_files", "route_estimators", "ROUTES"]


ROUTES = ("auto", "networks", "cell")


def route_estimators(route):
    """The estimator classes of a route: one, or both for ``"auto"`` (decided per recording).

    Raises
    ------
    InvalidArgumentError
        For a route not in :data:`ROUTES`.
    """
    from hhsym.errors import invalid
    from hhsym.estimate.cell_estimator import CellEstimator
    from hhsym.estimate.rate_estimator import RateEstimator

    if route not in ROUTES:
        raise invalid("route", route, "'auto', 'networks' or 'cell'")
    return {"networks": [RateEstimator], "cell": [CellEstimator]}.get(route, [RateEstimator, CellEstimator])


def fit_files(paths, out, model="hh", *, route="auto", current=None, sweeps=None, area=None, capacitance=None,
              specific_capacitance=1.0, log=None, **estimator_options):
    """Read recordings, fit an estimator to them and save it to ``out`` (atomically).

    Parameters
    ----------
    paths : str, os.PathLike or sequence of them
        Recordings: hhsym CSV/NPZ, ABF, NWB, Igor IBW (a voltage wave or a glob of them).
    out : str or os.PathLike
        The fit file (``.npz``); :func:`hhsym.load` reads it back.
    model : ConductanceModel or str
        Template model, or a library name (``"hh"``, ``"pospischil_rs"``, ...).
    route : {"auto", "networks", "cell"}
        ``"networks"``: :class:`RateEstimator`; ``"cell"``: :class:`CellEstimator`; ``"auto"``
        (default): the cell route for lab files (ABF, NWB, Igor, in pA), else networks.
    current : str, optional
        Igor only: the current wave(s); default paired by name (``_Ch3_`` -> ``_Ch0_``).
    sweeps : str or sequence of int, optional
        Sweep numbers as the files number them (``"0,2,5-7"``); default all.
    area : float, optional
        Membrane area (cm²) turning a lab file's pA into µA/cm².
    capacitance : float, optional
        Whole-cell capacitance (pF) giving the area at ``specific_capacitance``.
    specific_capacitance : float
        µF/cm² (default 1).
    log : callable, optional
        Called with one line per lab file (the membrane area used) and the route taken.
    **estimator_options
        Keyword arguments of the route's estimator (:class:`RateEstimator`: ``hidden``,
        ``random_state``, ``time_limit`` (s), ``max_iter``, ``verbose``, ...;
        :class:`CellEstimator`: ``free``, ``kinetics``, ``random_state``, ``time_limit``, ...).

    Returns
    -------
    estimator : RateEstimator or CellEstimator
        Fitted and saved; ``quality_`` says whether it reproduces its recordings.
    traces : list of Trace
        The traces it was fitted to: t (ms), V (mV), I (µA/cm²).
    """
    import os

    from hhsym.errors import ArgumentTypeError, invalid
    from hhsym.estimate.checks import membrane_areas
    from hhsym.io.cli import load_traces

    route_estimators(route)  # a bad route is named before any file is read
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(model, str):
        from hhsym.library import get_model

        model = get_model(model)
    traces = load_traces(paths, current=current, sweeps=sweeps, area=area, capacitance=capacitance,
                         specific_capacitance=specific_capacitance, log=log)
    if route == "auto":
        lab = bool(membrane_areas(traces))  # lab files carry the area that turned their pA into µA/cm²
        route = "cell" if lab else "networks"
        if log is not None:
            log(f"route: {route} ({'lab recording: whole-cell scalars and channel kinetics fitted to whole sweeps' if lab else 'densities: rate networks'})")
    cls, = route_estimators(route)
    accepted = set(cls().get_params()) - {"model"}
    for name, value in estimator_options.items():
        if name not in accepted:
            raise invalid(name, value, f"no such option of the {route} route ({cls.__name__}: "
                          f"{', '.join(sorted(accepted))})", cls=ArgumentTypeError)
    est = cls(model, **estimator_options).fit(traces)
    est.save(out)
    return est, traces
