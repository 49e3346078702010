"""What ``hhsym fit`` runs: recording files in, a fitted :class:`RateEstimator` file out.

``hhsym fit`` and :func:`hhsym.fit_many` (one call per cell, on a Dask worker) both call
:func:`fit_files`, so a cell fitted in a batch is fitted exactly as ``hhsym fit`` would fit it.
"""

from __future__ import annotations

__all__ = ["fit_files"]


def fit_files(paths, out, model="hh", *, current=None, sweeps=None, area=None, capacitance=None,
              specific_capacitance=1.0, log=None, **estimator_options):
    """Read recordings, fit a :class:`RateEstimator` to them and save it to ``out`` (atomically).

    Parameters
    ----------
    paths : str, os.PathLike or sequence of them
        Recordings: hhsym CSV/NPZ, ABF, NWB, Igor IBW (a voltage wave or a glob of them).
    out : str or os.PathLike
        The fit file (``.npz``); :func:`hhsym.load` reads it back.
    model : ConductanceModel or str
        Template model, or a library name (``"hh"``).
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
        Called with one line per lab file: the membrane area used.
    **estimator_options
        Keyword arguments of :class:`RateEstimator` (``hidden``, ``random_state``,
        ``time_limit`` (s), ``max_iter``, ``verbose``, ...).

    Returns
    -------
    estimator : RateEstimator
        Fitted and saved; ``quality_`` says whether it reproduces its recordings.
    traces : list of Trace
        The traces it was fitted to: t (ms), V (mV), I (µA/cm²).
    """
    import os

    from hhsym.estimate.rate_estimator import RateEstimator
    from hhsym.io.cli import load_traces

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(model, str):
        from hhsym.library import get_model

        model = get_model(model)
    traces = load_traces(paths, current=current, sweeps=sweeps, area=area, capacitance=capacitance,
                         specific_capacitance=specific_capacitance, log=log)
    est = RateEstimator(model, **estimator_options).fit(traces)
    est.save(out)
    return est, traces
