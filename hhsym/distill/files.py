"""What ``hhsym distill`` runs: a saved fit in, model files (JSON, LaTeX) out."""

from __future__ import annotations

import os

from hhsym.export.document import write_text

__all__ = ["distill_files"]


def distill_files(fit, json_path=None, latex_path=None, backend="auto", traces=(), refine=None,
                  standalone=True, **options):
    """Distil a saved fit and write the model files (what ``hhsym distill`` runs).

    Parameters
    ----------
    fit : str or os.PathLike
        A ``.npz`` written by :meth:`RateEstimator.save`.
    json_path, latex_path : str or os.PathLike, optional
        Where to write the JSON model and the LaTeX (atomically).
    backend : str
        Backend name (see :func:`hhsym.distill.distill`).
    traces : sequence of str, os.PathLike or Trace
        Trace files (``.csv``/``.npz``; sets are expanded) the fit was made on,
        or the traces themselves.
    refine : bool, optional
        Refine against ``traces``; default: whenever traces are given.
    standalone : bool
        Write a complete LaTeX document (True) or the ``align*`` block.
    **options
        Further keyword arguments of :func:`hhsym.distill.distill`.

    Returns
    -------
    Distillation
    """
    from hhsym.distill.distillation import distill
    from hhsym.estimate import load
    from hhsym.io import read_traces

    if isinstance(traces, (str, os.PathLike)):
        traces = [traces]
    recordings = []
    for item in traces:  # paths, or traces already read (e.g. from a lab file by the CLI)
        recordings.extend([item] if hasattr(item, "V") and hasattr(item, "I") else read_traces(item))
    refine = bool(recordings) if refine is None else refine
    dist = distill(load(fit), backend=backend, traces=recordings or None, refine=refine, **options)
    if json_path is not None:
        dist.to_json(json_path)
    if latex_path is not None:
        write_text(dist.latex(standalone=standalone), latex_path)
    return dist
